"""Identity similarity on real portraits (offline SFace) and the ArcFace ONNX loading path."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sym3dinv.errors import ModelNotFoundError, NoFaceError
from sym3dinv.metrics.identity import (
    ARCFACE_TEMPLATE,
    ArcFaceOnnxEmbedder,
    YuNetDetector,
    align_face,
    identity_similarity,
    similarity_transform,
    to_uint8_images,
)

from .conftest import tiny_face_onnx, to_pm1


@pytest.fixture(scope="module")
def scores(astronaut: np.ndarray, grace_hopper: np.ndarray) -> dict[str, float]:
    ast, gh = to_pm1(astronaut), to_pm1(grace_hopper)
    blur = to_pm1(cv2.GaussianBlur(astronaut, (0, 0), 1.5))
    crop = to_pm1(cv2.resize(astronaut[20:420, 60:460], (512, 512), interpolation=cv2.INTER_AREA))
    same_a = torch.cat([ast, ast, ast, gh])
    same_b = torch.cat([ast.flip(-1), blur, crop, gh.flip(-1)])
    same = identity_similarity(same_a, same_b)
    diff = identity_similarity(torch.cat([ast, ast.flip(-1)]), torch.cat([gh, gh]))
    assert same.embedder == diff.embedder and same.embedder.startswith("sface")
    names = ["astronaut_flip", "astronaut_blur", "astronaut_crop", "hopper_flip"]
    out = dict(zip(names, same.cosine.tolist(), strict=True))
    out |= {"astronaut_vs_hopper": diff.cosine[0].item(), "astronaut_flip_vs_hopper": diff.cosine[1].item()}
    return out


def test_same_person_scores_clearly_higher(scores: dict[str, float]) -> None:
    same = [v for k, v in scores.items() if "vs" not in k]
    different = [v for k, v in scores.items() if "vs" in k]
    # SFace's published same-identity threshold is cosine 0.363
    assert min(same) > 0.7, scores
    assert max(different) < 0.3, scores
    assert min(same) - max(different) > 0.4, scores


def test_identical_images_score_one(astronaut: np.ndarray) -> None:
    x = to_pm1(astronaut)
    assert identity_similarity(x, x).cosine.item() == pytest.approx(1.0, abs=1e-5)


def test_given_landmarks_match_detection(astronaut: np.ndarray) -> None:
    x = to_pm1(astronaut)
    lm = YuNetDetector().landmarks(astronaut)
    assert lm.shape == (5, 2) and lm[0, 0] < lm[1, 0]  # image-left eye first
    r = identity_similarity(x, x.flip(-1), landmarks_a=lm[None])
    r_det = identity_similarity(x, x.flip(-1))
    assert r.cosine.item() == pytest.approx(r_det.cosine.item(), abs=1e-6)


def test_no_face_raises_item_error() -> None:
    blank = torch.zeros(1, 3, 128, 128)
    with pytest.raises(NoFaceError):
        identity_similarity(blank, blank)


def test_similarity_transform_recovers_a_known_one() -> None:
    ang, s, t = 0.3, 1.7, np.array([12.0, -5.0])
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    src = ARCFACE_TEMPLATE
    dst = src @ (s * rot).T + t
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], s * rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], t, atol=1e-9)
    # aligning an image with its own template landmarks is the identity warp
    img = np.random.default_rng(0).integers(0, 255, (112, 112, 3), dtype=np.uint8)
    np.testing.assert_array_equal(align_face(img, ARCFACE_TEMPLATE.copy()), img)


def test_arcface_onnx_path_with_a_tiny_model(tmp_path: Path, astronaut: np.ndarray) -> None:
    """The insightface-format loader on a tiny ONNX written in the test: lookup by directory, the
    [-1, 1] input scaling, batching, and unit-norm output are all checked against torch."""
    w = np.random.default_rng(0).standard_normal((3 * 7 * 7, 8)).astype(np.float32)
    model_dir = tmp_path / "models" / "buffalo_l"
    model_dir.mkdir(parents=True)
    (model_dir / "w600k_r50.onnx").write_bytes(tiny_face_onnx(w))
    emb = ArcFaceOnnxEmbedder(tmp_path / "models")  # found recursively by its insightface name
    assert emb.name == "arcface-onnx:w600k_r50.onnx"

    x = torch.cat([to_pm1(astronaut), to_pm1(astronaut).flip(-1)])
    lm = YuNetDetector().landmarks(astronaut)
    lms = np.stack([lm, lm * [-1, 1] + [511, 0]])[:, [1, 0, 2, 4, 3]]  # landmarks of the flipped image
    faces = np.stack([align_face(img, m) for img, m in zip(to_uint8_images(x), lms, strict=True)])
    got = emb.embed_aligned(faces)
    ref = F.avg_pool2d(torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 127.5 - 1, 16).flatten(1) @ torch.from_numpy(w)
    ref = F.normalize(ref.double(), dim=1).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-5)

    r = identity_similarity(x[:1], x[1:], embedder=emb, landmarks_a=lms[:1], landmarks_b=lms[1:])
    assert r.embedder == emb.name
    assert r.cosine.item() == pytest.approx(float(got[0] @ got[1]), abs=1e-6)


def test_arcface_missing_model_is_clear(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="w600k_r50.onnx"):
        ArcFaceOnnxEmbedder(tmp_path)
