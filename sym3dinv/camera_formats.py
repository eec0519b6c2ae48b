"""Camera labels in other conventions: ``to_label`` (their numbers -> the EG3D label) and ``from_label``.

The EG3D label (:mod:`sym3dinv.cameras`) is 25 floats: the row-major 4x4 cam2world in the OpenCV camera
convention (x right, y down, z forward; world y up, cameras on a sphere of radius 2.7 around the origin)
and the row-major 3x3 intrinsics normalised by the image size. The other formats are flat float lists,
pose first, optionally followed by 9 intrinsics (row-major 3x3; normalised, or in pixels when ``size``
is given). Without intrinsics a label gets FFHQ's (focal 4.2647, principal point 0.5).

``eg3d``        16 cam2world (OpenCV camera) [+ 9].
``opencv``      12: the world-to-camera extrinsics ``[R | t]`` row-major (``x_cam = R x_world + t``) [+ 9].
``opengl``      16 cam2world in the OpenGL/Blender camera convention (x right, y up, looking along -z) as
                nerfstudio's and instant-ngp's ``transforms.json`` store it (``transform_matrix``;
                instant-ngp rescales and permutes axes only when it loads the file) [+ 9].
                ``nerfstudio`` and ``instant-ngp`` are other names of this format.
``colmap``      7: ``qvec`` (w, x, y, z; world-to-camera rotation, OpenCV camera) then ``tvec`` [+ 9].
``deep3dface``  6: Deep3DFaceRecon's Euler ``angle`` (x, y, z) and ``trans``, turned into a label as
                EG3D's FFHQ preprocessing does (``3dface2idr_mat.py`` then ``preprocess_face_cameras.py
                --mode orig``): rotation ``R = (Rz Ry Rx)^T`` (its ``compute_rotation``), camera centre
                ``c = 0.27 * -R (trans - (0, 0, 10)) + (0, 0.006, 0.161)`` rescaled to radius 2.7,
                cam2world rotation ``R diag(1, -1, -1)``; its intrinsics are FFHQ's [+ 9].
                The rescaling drops the length of ``c``, so ``from_label`` returns the ``trans`` whose
                ``|c|`` is 2.7 (Deep3DFaceRecon's own camera distance, 10, times 0.27): the same label.

Round trips are exact to float64 rounding (tests/test_camera_formats.py). COLMAP quaternions come back
with ``w >= 0`` (q and -q are the same rotation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from sym3dinv.config.align import CAMERA_FORMATS, CameraFormat
from sym3dinv.eg3d_constants import FFHQ_FOCAL, RADIUS

CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])
"""Right-multiply a cam2world to flip the camera's y and z axes (OpenCV <-> OpenGL; its own inverse)."""
ALIASES: dict[str, str] = {"nerfstudio": "opengl", "instant-ngp": "opengl"}
POSE_LENGTH: dict[str, int] = {"eg3d": 16, "opencv": 12, "opengl": 16, "colmap": 7, "deep3dface": 6}
"""Floats of each format's pose part (intrinsics may follow: 9 more)."""
_D3D_DISTANCE = 10.0  # Deep3DFaceRecon's camera distance
_D3D_SCALE = 0.27  # EG3D's "normalize camera radius"
_D3D_OFFSET = np.array([0.0, 0.006, 0.161])  # EG3D's "additional offset used in submission"
_FLIP_YZ = np.diag([1.0, -1.0, -1.0])


def canonical_format(fmt: str) -> str:
    """The format's canonical name (aliases resolved); ValueError for unknown names."""
    name = ALIASES.get(fmt, fmt)
    if name not in POSE_LENGTH:
        raise ValueError(f"unknown camera format {fmt!r}; known: {', '.join(CAMERA_FORMATS)}")
    return name


def ffhq_intrinsics() -> np.ndarray:
    return np.array([[FFHQ_FOCAL, 0.0, 0.5], [0.0, FFHQ_FOCAL, 0.5], [0.0, 0.0, 1.0]])


def _scale(size: tuple[float, float] | None) -> np.ndarray:
    """Pixel -> normalised intrinsics multiplier (left), identity without a size."""
    if size is None:
        return np.eye(3)
    w, h = size
    return np.diag([1.0 / w, 1.0 / h, 1.0])


def _split(values: Sequence[float] | np.ndarray, fmt: str) -> tuple[np.ndarray, np.ndarray | None]:
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    n = POSE_LENGTH[fmt]
    if a.shape[0] not in (n, n + 9):
        raise ValueError(f"a {fmt} camera has {n} values (or {n + 9} with intrinsics), got {a.shape[0]}")
    return a[:n], (a[n:].reshape(3, 3) if a.shape[0] == n + 9 else None)


def rotation_xyz(angles: Sequence[float] | np.ndarray) -> np.ndarray:
    """``Rz(z) Ry(y) Rx(x)`` of Euler angles (x, y, z) in radians (Deep3DFaceRecon's order)."""
    x, y, z = (float(v) for v in angles)
    cx, sx, cy, sy, cz, sz = math.cos(x), math.sin(x), math.cos(y), math.sin(y), math.cos(z), math.sin(z)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def angles_xyz(m: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rotation_xyz` for |y| < 90 deg."""
    return np.array([math.atan2(m[2, 1], m[2, 2]), math.atan2(-m[2, 0], math.hypot(m[0, 0], m[1, 0])),
                     math.atan2(m[1, 0], m[0, 0])])


def quaternion_from_matrix(r: np.ndarray) -> np.ndarray:
    """(w, x, y, z) of a rotation matrix, w >= 0 (Shepperd's method: stable for every rotation)."""
    t = np.trace(r)
    diag = np.diag(r)
    k = int(np.argmax([t, *diag]))
    if k == 0:
        s = 2.0 * math.sqrt(1.0 + t)
        q = np.array([s / 4, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s])
    else:
        i = k - 1
        j, m = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(1.0 + r[i, i] - r[j, j] - r[m, m])
        q = np.empty(4)
        q[0] = (r[m, j] - r[j, m]) / s
        q[1 + i] = s / 4
        q[1 + j] = (r[j, i] + r[i, j]) / s
        q[1 + m] = (r[m, i] + r[i, m]) / s
    q /= np.linalg.norm(q)
    return q if q[0] >= 0 else -q


def matrix_from_quaternion(q: Sequence[float] | np.ndarray) -> np.ndarray:
    """Rotation matrix of a (w, x, y, z) quaternion (normalised first, as COLMAP does)."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def _affine(rot: np.ndarray, origin: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = rot, origin
    return m


def _cam2world(pose: np.ndarray, fmt: str) -> np.ndarray:
    """The OpenCV cam2world of a format's pose part."""
    if fmt == "eg3d":
        return pose.reshape(4, 4).copy()
    if fmt == "opengl":
        return pose.reshape(4, 4) @ CV_TO_GL
    if fmt == "opencv":
        rt = pose.reshape(3, 4)
        return _affine(rt[:, :3].T, -rt[:, :3].T @ rt[:, 3])
    if fmt == "colmap":
        r = matrix_from_quaternion(pose[:4])
        return _affine(r.T, -r.T @ pose[4:])
    r = rotation_xyz(pose[:3]).T  # deep3dface
    c = _D3D_SCALE * -(r @ (pose[3:] - np.array([0.0, 0.0, _D3D_DISTANCE]))) + _D3D_OFFSET
    return _affine(r @ _FLIP_YZ, c / np.linalg.norm(c) * RADIUS)


def _pose(m: np.ndarray, fmt: str) -> np.ndarray:
    """A format's pose part of an OpenCV cam2world (inverse of :func:`_cam2world`)."""
    if fmt == "eg3d":
        return m.reshape(-1)
    if fmt == "opengl":
        return (m @ CV_TO_GL).reshape(-1)
    r_w2c = m[:3, :3].T
    t = -r_w2c @ m[:3, 3]
    if fmt == "opencv":
        return np.concatenate([r_w2c, t[:, None]], axis=1).reshape(-1)
    if fmt == "colmap":
        return np.concatenate([quaternion_from_matrix(r_w2c), t])
    r = m[:3, :3] @ _FLIP_YZ  # deep3dface
    c = m[:3, 3] / np.linalg.norm(m[:3, 3]) * (_D3D_SCALE * _D3D_DISTANCE)
    trans = -r.T @ ((c - _D3D_OFFSET) / _D3D_SCALE) + np.array([0.0, 0.0, _D3D_DISTANCE])
    return np.concatenate([angles_xyz(r.T), trans])


def to_label(values: Sequence[float] | np.ndarray, fmt: CameraFormat | str = "eg3d",
             size: tuple[float, float] | None = None) -> np.ndarray:
    """The 25-float EG3D label (float64) of one camera given in ``fmt``.

    ``size`` = (width, height) means the trailing intrinsics are in pixels (OpenCV's, COLMAP's PINHOLE)
    and are divided by the image size; without it they are taken as normalised already.
    """
    name = canonical_format(fmt)
    pose, K = _split(values, name)
    K = ffhq_intrinsics() if K is None else _scale(size) @ K
    return np.concatenate([_cam2world(pose, name).reshape(-1), K.reshape(-1)])


def from_label(label: Sequence[float] | np.ndarray, fmt: CameraFormat | str = "eg3d",
               size: tuple[float, float] | None = None) -> np.ndarray:
    """One EG3D label in ``fmt``: the pose part then the 9 intrinsics (in pixels when ``size`` is given)."""
    name = canonical_format(fmt)
    a = np.asarray(label, dtype=np.float64).reshape(-1)
    if a.shape != (25,):
        raise ValueError(f"an EG3D label has 25 values, got {a.shape[0]}")
    m, K = a[:16].reshape(4, 4), a[16:].reshape(3, 3)
    K = np.linalg.inv(_scale(size)) @ K
    return np.concatenate([_pose(m, name), K.reshape(-1)])


__all__ = ["ALIASES", "CAMERA_FORMATS", "CV_TO_GL", "POSE_LENGTH", "canonical_format", "from_label", "to_label"]
