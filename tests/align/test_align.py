"""Alignment on real portraits that ship offline: crop geometry, labels, masks, mirror consistency, errors."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import skimage.data
import torch

from sym3dinv.align import AlignedFace, FaceAligner
from sym3dinv.align.crop import crop_transform, five_points
from sym3dinv.align.evaluate import mirror_consistency, offline_portraits
from sym3dinv.align.pose import pose_from_matrix
from sym3dinv.cameras import camera_label, yaw_pitch_roll
from sym3dinv.config.align import AlignConfig
from sym3dinv.errors import ConfigError, ExtremePoseError, FaceTooSmallError, LowConfidenceError, NoFaceError


@pytest.fixture(scope="module")
def aligner() -> Iterator[FaceAligner]:
    with FaceAligner() as a:
        yield a


@pytest.fixture(scope="module")
def astronaut(aligner: FaceAligner) -> AlignedFace:
    return aligner.align(skimage.data.astronaut())


def test_aligned_face_shapes_and_label(astronaut: AlignedFace) -> None:
    f = astronaut
    assert f.image.shape == (512, 512, 3) and f.image.dtype == np.uint8
    assert f.label.shape == (25,) and f.label.dtype == np.float32
    assert f.landmarks.shape == (478, 3) and f.five_points.shape == (5, 2)
    assert f.face_mask.shape == (512, 512) and f.face_mask.dtype == bool
    assert 0.15 < f.face_mask.mean() < 0.5
    assert f.confidence > 0.8 and f.camera_source == "estimated"
    # the label is EG3D's: radius 2.7 camera, focal 4.2647, angles read back from it
    m = f.label[:16].reshape(4, 4)
    assert np.linalg.norm(m[:3, 3]) == pytest.approx(2.7, abs=1e-4)
    assert f.label[16] == pytest.approx(4.2647) and f.label[18] == pytest.approx(0.5)
    ypr = yaw_pitch_roll(torch.from_numpy(f.label)[None])[0]
    assert float(ypr[0]) == pytest.approx(f.yaw, abs=1e-4)
    assert float(ypr[2]) == pytest.approx(0.0, abs=1e-4)  # crops are roll-normalised
    assert abs(math.degrees(f.yaw)) < 10  # near-frontal portrait


def test_crop_places_eyes_and_mouth_like_ffhq(astronaut: AlignedFace) -> None:
    p = astronaut.five_points
    assert p[0, 1] == pytest.approx(p[1, 1], abs=1.0)  # eye line levelled
    assert p[0, 0] < 256 < p[1, 0]
    eye_y, mouth_y = p[:2, 1].mean(), p[3:, 1].mean()
    assert 200 < eye_y < 260 and 300 < mouth_y < 360
    # inverse affine maps crop points back onto the source landmarks
    src = astronaut.five_points @ astronaut.inverse_affine[:, :2].T + astronaut.inverse_affine[:, 2]
    back = src @ astronaut.affine[:, :2].T + astronaut.affine[:, 2]
    assert np.allclose(back, astronaut.five_points, atol=1e-3)


def test_crop_transform_is_exact_similarity() -> None:
    five = np.array([[100.0, 100], [160, 100], [130, 130], [110, 160], [150, 160]])
    t = crop_transform(five, 512)
    assert np.allclose(t.to_source(t.to_crop(five)), five, atol=1e-9)
    c = t.to_crop(five)
    assert c[0, 1] == pytest.approx(c[1, 1]) and (c[0, 0] + c[1, 0]) / 2 == pytest.approx(255.5)
    # quad side = 2 * max(2 * |e2e|, 1.8 * |e2m|) = 2 * 120 source px -> 512 crop px
    assert t.scale == pytest.approx(240 / 512)


def test_regions_and_boxes(astronaut: AlignedFace) -> None:
    f = astronaut
    for name in ("left_eye", "right_eye", "lips", "nose", "left_brow", "right_brow"):
        r = f.regions[name]
        assert r.any() and (r & f.face_mask).sum() >= 0.9 * r.sum()
    lx0, ly0, lx1, ly1 = f.left_eye_box
    rx0, _, rx1, _ = f.right_eye_box
    mx0, my0, mx1, my1 = f.mouth_box
    assert rx1 <= lx0 + 20  # right eye (image left) sits left of the left eye
    assert my0 > ly1 - 10 and mx0 < 256 < mx1
    eye_c = f.five_points[1]
    assert lx0 < eye_c[0] < lx1 and ly0 < eye_c[1] < ly1


def test_mirror_consistency_on_real_portraits(aligner: FaceAligner) -> None:
    rep = mirror_consistency(aligner, offline_portraits().values())
    assert rep.detected == rep.images == 2
    assert rep.yaw_mean_deg <= 2.0 and rep.pitch_mean_deg <= 3.0


def test_pose_sign_convention() -> None:
    # Head turned so the camera sits on the head's +x side: rotation about y by +30 deg maps the
    # head-to-camera direction (third row of R) to (sin 30, 0, cos 30).
    a = math.radians(30)
    r = np.array([[math.cos(a), 0, -math.sin(a)], [0, 1, 0], [math.sin(a), 0, math.cos(a)]])
    m = np.eye(4)
    m[:3, :3] = r
    p = pose_from_matrix(m)
    assert p.yaw == pytest.approx(a) and p.pitch == pytest.approx(0.0) and p.roll == pytest.approx(0.0, abs=1e-6)
    c = camera_label(p.yaw, 0.0)[0]
    assert float(c[3]) > 0  # camera on world +x (EG3D: yaw > 0)
    # camera above the head: head-to-camera direction has +y -> pitch < 0 in EG3D's sampler convention
    b = math.radians(20)
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    m[:3, :3] = rx
    assert pose_from_matrix(m).pitch == pytest.approx(-math.pi / 2 * math.sin(b))


def test_known_label_bypasses_estimation(aligner: FaceAligner) -> None:
    label = camera_label(0.3, -0.1)[0].numpy()
    f = aligner.align(skimage.data.astronaut(), label)
    assert f.camera_source == "known" and np.array_equal(f.label, label.astype(np.float32))
    assert f.yaw == pytest.approx(0.3, abs=1e-4)


def test_already_aligned_skips_crop(astronaut: AlignedFace) -> None:
    with FaceAligner(AlignConfig(already_aligned=True)) as a:
        g = a.align(astronaut.image)
    assert np.array_equal(g.image, astronaut.image)
    assert np.allclose(g.affine, [[1, 0, 0], [0, 1, 0]])


def test_align_errors(aligner: FaceAligner) -> None:
    with pytest.raises(NoFaceError) as exc:
        aligner.align(skimage.data.coffee())
    assert exc.value.code == "no_face"
    with FaceAligner(AlignConfig(min_face_size=400)) as a, pytest.raises(FaceTooSmallError):
        a.align(skimage.data.astronaut())  # face crop ~260 px in the 512 px photo
    with FaceAligner(AlignConfig(min_confidence=0.999)) as a, pytest.raises(LowConfidenceError):
        a.align(skimage.data.astronaut())
    with FaceAligner(AlignConfig(max_abs_pitch_deg=1.0)) as a, pytest.raises(ExtremePoseError):
        a.align(skimage.data.astronaut())
    with pytest.raises(ConfigError):
        AlignConfig(multi_face="some")


def test_align_all_multi_face(aligner: FaceAligner, astronaut: AlignedFace) -> None:
    a = skimage.data.astronaut()
    two = np.concatenate([a, np.ascontiguousarray(a[:, ::-1])], axis=1)  # side by side: needs tiling
    faces = aligner.align_all(two)
    assert len(faces) == 2 and [f.face_index for f in faces] == [0, 1]
    left, right = sorted(faces, key=lambda f: f.bbox[0])
    assert left.bbox[2] < 512 < right.bbox[0]
    assert left.yaw == pytest.approx(astronaut.yaw, abs=math.radians(1))
    assert left.yaw + right.yaw == pytest.approx(0.0, abs=math.radians(4))
    assert aligner.align(two).face_index == 0


def test_five_points_order(astronaut: AlignedFace) -> None:
    p = five_points(astronaut.landmarks)
    assert p[0, 0] < p[2, 0] < p[1, 0] and p[3, 0] < p[4, 0]


def test_large_photo_gives_the_same_crop(aligner: FaceAligner, astronaut: AlignedFace) -> None:
    import cv2

    big = cv2.resize(skimage.data.astronaut(), (2048, 2048), interpolation=cv2.INTER_CUBIC)
    f = aligner.align(big)  # crop shrinks ~2x: pre-filtered path
    assert f.source_size == (2048, 2048)
    assert np.abs(f.five_points - astronaut.five_points).max() < 3.0
    assert np.abs(f.image.astype(float) - astronaut.image).mean() < 8.0
    assert abs(f.yaw - astronaut.yaw) < math.radians(2)
