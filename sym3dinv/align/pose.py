"""Head pose from MediaPipe's facial transformation matrix -> EG3D yaw/pitch/roll and 25-d label.

MediaPipe's matrix ``M`` maps the canonical face model (x toward the image right of a frontal face,
y up, z out of the face toward the viewer) into an OpenGL camera (looking down -z). EG3D's world has
the same axes (x right in a frontal view, y up, the frontal camera on +z), so the direction from the
head to the camera, in head/world coordinates, is ``d = R^T e_z`` (third row of ``R``). EG3D's
sampler puts the camera at ``h = pi/2 + yaw`` with ``yaw > 0`` on the world +x side, so
``yaw = atan2(d_x, d_z)``; its vertical parameter gives camera height ``y = -r * 2 * pitch / pi``,
so ``pitch = -(pi / 2) * d_y`` (camera above the head -> pitch < 0). Only the rotation is used (as
EG3D's labels come from Deep3DFaceRecon's rotation with a near-orthographic camera): the crop centres
the face, so the line of sight in the source photo does not enter. Signs were checked with the mirror
test and with SynthHeads renders at known cameras (docs/alignment.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from sym3dinv.align.calibration import calibrate_yaw
from sym3dinv.cameras import FFHQ_FOCAL, cam2world_from_angles, camera_label, yaw_pitch_roll


@dataclass(frozen=True)
class HeadPose:
    yaw: float  # rad, EG3D convention
    pitch: float  # rad, EG3D convention (sampler parameter)
    roll: float  # rad, in-plane rotation of the camera about its axis


def pose_from_matrix(matrix: np.ndarray, pitch_offset: float = 0.0, yaw_offset: float = 0.0, *,
                     pitch_gain: float = 1.0, yaw_knots: Sequence[float] = (),
                     yaw_values: Sequence[float] = ()) -> HeadPose:
    """EG3D angles of the camera that sees the canonical head as ``matrix`` says, calibrated: yaw by the odd
    map of :func:`sym3dinv.align.calibration.calibrate_yaw`, pitch by ``gain * raw + offset``."""
    r = np.asarray(matrix, dtype=np.float64)[:3, :3]
    u, _, vt = np.linalg.svd(r)  # drop any scale the solver left in
    r = u @ vt
    d = r[2]
    yaw = calibrate_yaw(math.atan2(d[0], d[2]), yaw_knots, yaw_values) + yaw_offset
    pitch = -pitch_gain * (math.pi / 2) * float(np.clip(d[1], -1, 1)) + pitch_offset
    # Roll: compare MediaPipe's camera x axis with the upright camera's at the same angles.
    cam_x = r[0]  # OpenGL/OpenCV camera x axis in head coordinates (same in both conventions)
    up = cam2world_from_angles(torch.tensor([yaw]), torch.tensor([pitch]), roll=0.0)[0].double().numpy()
    fwd, x_up = up[:3, 2], up[:3, 0]
    roll = math.atan2(float(np.cross(x_up, cam_x) @ fwd), float(x_up @ cam_x))
    return HeadPose(yaw, pitch, roll)


def label_from_pose(pose: HeadPose, focal: float = FFHQ_FOCAL, use_roll: bool = False) -> np.ndarray:
    """float32[25] EG3D label; roll is left 0 by default because the crop already removed it."""
    c = camera_label(pose.yaw, pose.pitch, focal=focal, roll=pose.roll if use_roll else 0.0)
    return c[0].numpy().astype(np.float32)


def pose_from_label(label: np.ndarray) -> HeadPose:
    y, p, r = yaw_pitch_roll(torch.as_tensor(np.asarray(label, dtype=np.float32)).reshape(1, 25))[0].tolist()
    return HeadPose(y, p, r)

