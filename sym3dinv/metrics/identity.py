"""Identity similarity: cosine between face-recognition embeddings of aligned faces.

The authors report ArcFace cosine (METHOD.md "Evaluation used by the authors"). ArcFace weights do not
ship offline, so (DESIGN.md "Defaults that must work on a fresh machine"):

- :class:`ArcFaceOnnxEmbedder` runs an insightface-format ArcFace ONNX (``w600k_r50.onnx``,
  ``glintr100.onnx``: 112x112 RGB input scaled to [-1, 1], 512-d output) through onnxruntime when the
  user gives a model file or directory;
- otherwise :class:`SFaceEmbedder` runs OpenCV Zoo's SFace (128-d, 112x112 RGB input in 0..255) through
  onnxruntime. OpenCV 5's ``FaceRecognizerSF`` cannot run the int8 block-quantised file; onnxruntime can
  once the stale float-weight input declarations are dropped (:mod:`sym3dinv.metrics.onnx_wire`).

Both take the same 112x112 crop: a similarity transform (Umeyama, no reflection) maps five landmarks
(eye centres, nose tip, mouth corners, image-left first) onto the ArcFace template, the convention of
both insightface and OpenCV's ``alignCrop``. Landmarks come from the YuNet detector (``cv2.FaceDetectorYN``)
unless given. Every result names the embedder, since SFace and ArcFace cosines are not comparable.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from sym3dinv.errors import ConfigError, ModelNotFoundError, NoFaceError
from sym3dinv.metrics.onnx_wire import drop_unused_inputs
from sym3dinv.models import find_model

log = logging.getLogger(__name__)

ALIGNED_SIZE = 112
# 5-point template of the 112x112 ArcFace crop (insightface ``arcface_dst``; OpenCV alignCrop uses it too)
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
SFACE_MODEL = "face_recognition_sface_2021dec_int8bq.onnx"
YUNET_MODEL = "face_detection_yunet_2023mar_int8bq.onnx"
ARCFACE_NAMES = ("w600k_r50.onnx", "glintr100.onnx")  # insightface buffalo_l / antelopev2 recognisers


class IdentityEmbedder(Protocol):
    """Maps aligned 112x112 RGB uint8 faces ``[N, 112, 112, 3]`` to L2-normalised embeddings ``[N, D]``."""

    name: str

    def embed_aligned(self, faces: np.ndarray) -> np.ndarray: ...


def _session(path: Path, threads: int):  # -> onnxruntime.InferenceSession
    import onnxruntime as ort  # optional 'vision' dependency, imported only when a model is used

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    model, dropped = drop_unused_inputs(path.read_bytes())
    if dropped:
        log.debug("%s: dropped %d graph inputs no node reads (e.g. %s)", path.name, len(dropped), dropped[0])
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


class _OnnxEmbedder:
    """Shared onnxruntime plumbing: NCHW float input built from aligned RGB uint8 crops."""

    name = "onnx"

    def __init__(self, path: Path, scale: float, offset: float, threads: int) -> None:
        self.path = path
        self.scale, self.offset = scale, offset  # model input = u8 * scale + offset
        self.session = _session(path, threads)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        hw = inp.shape[2:4] if len(inp.shape) == 4 else []
        if any(isinstance(s, int) and s != ALIGNED_SIZE for s in hw):
            raise ConfigError(f"{path}: expected a {ALIGNED_SIZE}x{ALIGNED_SIZE} face model, input shape {inp.shape}")
        self.batch_fixed = isinstance(inp.shape[0], int) and inp.shape[0] == 1

    def embed_aligned(self, faces: np.ndarray) -> np.ndarray:
        if faces.ndim != 4 or faces.shape[1:] != (ALIGNED_SIZE, ALIGNED_SIZE, 3) or faces.dtype != np.uint8:
            raise ConfigError(f"expected aligned uint8 faces [N, 112, 112, 3], got {faces.shape} {faces.dtype}")
        x = faces.transpose(0, 3, 1, 2).astype(np.float32) * np.float32(self.scale) + np.float32(self.offset)
        chunks = [x[i : i + 1] for i in range(len(x))] if self.batch_fixed else [x]
        emb = np.concatenate([self.session.run(None, {self.input_name: c})[0] for c in chunks], axis=0)
        emb = emb.reshape(len(x), -1).astype(np.float64)
        return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


class SFaceEmbedder(_OnnxEmbedder):
    """OpenCV Zoo SFace (2021dec, int8 block-quantised), 128-d; the offline default."""

    def __init__(self, path: str | os.PathLike[str] | None = None, threads: int = 2) -> None:
        # cv2.FaceRecognizerSF.feature feeds blobFromImage(img, 1.0, swapRB=True): RGB, 0..255; the graph
        # normalises itself (its first nodes are Sub/Mul by constants)
        super().__init__(find_model(SFACE_MODEL, path), scale=1.0, offset=0.0, threads=threads)
        self.name = "sface-2021dec-int8bq (128-d, offline default)"


class ArcFaceOnnxEmbedder(_OnnxEmbedder):
    """insightface ArcFace ONNX (512-d). ``path``: the .onnx file or a directory holding one of
    ``w600k_r50.onnx`` / ``glintr100.onnx``. ``input_norm="pm1"`` feeds (u8 - 127.5) / 127.5 as insightface
    does for these models; ``"raw"`` feeds 0..255 for exports that normalise inside the graph."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        input_norm: Literal["pm1", "raw"] = "pm1",
        threads: int = 2,
    ) -> None:
        p = Path(path)
        if p.is_dir():
            found = [p / n for n in ARCFACE_NAMES if (p / n).is_file()]
            found += sorted(q for q in p.rglob("*.onnx") if q.name in ARCFACE_NAMES and q not in found)
            if not found:
                raise ModelNotFoundError(f"no ArcFace model ({' or '.join(ARCFACE_NAMES)}) in {p}; pass the .onnx "
                                         "file itself or the insightface model directory that holds it")
            p = found[0]
        elif not p.is_file():
            raise ModelNotFoundError(f"ArcFace model {p} does not exist")
        if input_norm not in ("pm1", "raw"):
            raise ConfigError(f"input_norm must be 'pm1' or 'raw', got {input_norm!r}")
        scale, offset = (1 / 127.5, -1.0) if input_norm == "pm1" else (1.0, 0.0)
        super().__init__(p, scale=scale, offset=offset, threads=threads)
        self.name = f"arcface-onnx:{p.name}"


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping ``src`` to ``dst``
    (Umeyama 1991, reflection excluded); returns the 2x3 matrix for ``cv2.warpAffine``."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    sc, dc = src - mu_s, dst - mu_d
    cov = dc.T @ sc / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    r = u @ np.diag(d) @ vt
    scale = (s * d).sum() / sc.var(axis=0).sum()
    t = mu_d - scale * r @ mu_s
    return np.concatenate([scale * r, t[:, None]], axis=1)


def align_face(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """112x112 ArcFace crop of an RGB uint8 ``[H, W, 3]`` image from five ``[5, 2]`` (x, y) landmarks."""
    if landmarks.shape != (5, 2):
        raise ConfigError(f"expected 5 (x, y) landmarks, got shape {landmarks.shape}")
    import cv2  # optional 'vision' dependency: importing sym3dinv.metrics must not need it

    m = similarity_transform(landmarks, ARCFACE_TEMPLATE)
    return cv2.warpAffine(image, m, (ALIGNED_SIZE, ALIGNED_SIZE), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))


class YuNetDetector:
    """Five face landmarks of the most confident face, from OpenCV Zoo's YuNet (2023mar int8)."""

    def __init__(self, path: str | os.PathLike[str] | None = None, score_threshold: float = 0.6) -> None:
        self.path = find_model(YUNET_MODEL, path)
        self.score_threshold = score_threshold

    def landmarks(self, image: np.ndarray) -> np.ndarray:
        """``[5, 2]`` landmarks (image-left eye, right eye, nose, left/right mouth corner) of an RGB image."""
        import cv2

        h, w = image.shape[:2]
        # created per call: the detector is cheap (~120 KB) and its input size is per-image state
        det = cv2.FaceDetectorYN.create(str(self.path), "", (w, h), self.score_threshold, 0.3, 5000)
        _, faces = det.detect(np.ascontiguousarray(image[:, :, ::-1]))  # YuNet wants BGR
        if faces is None or len(faces) == 0:
            raise NoFaceError(f"no face found in a {w}x{h} image (YuNet, score >= {self.score_threshold})")
        best = faces[np.argmax(faces[:, -1])]
        return best[4:14].reshape(5, 2).astype(np.float64)


@dataclass(frozen=True)
class IdentityResult:
    """Cosine similarity per pair and the embedder that produced it (values differ between embedders)."""

    cosine: Float[Tensor, " n"]
    embedder: str


def to_uint8_images(x: Float[Tensor, "n 3 h w"]) -> np.ndarray:
    """[-1, 1] NCHW tensors -> uint8 NHWC RGB arrays (the inverse of the LPIPS input convention)."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ConfigError(f"expected [N, 3, H, W] RGB in [-1, 1], got {tuple(x.shape)}")
    u = ((x.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return u.permute(0, 2, 3, 1).contiguous().numpy()


@functools.lru_cache(maxsize=4)
def default_embedder(arcface: str | None = None) -> IdentityEmbedder:
    """ArcFace when a model file/directory is given, else the offline SFace default (cached sessions)."""
    return ArcFaceOnnxEmbedder(arcface) if arcface else SFaceEmbedder()


@functools.lru_cache(maxsize=2)
def _default_detector() -> YuNetDetector:
    return YuNetDetector()


def embed_images(
    images: Float[Tensor, "n 3 h w"],
    embedder: IdentityEmbedder,
    landmarks: np.ndarray | None = None,
    detector: YuNetDetector | None = None,
) -> np.ndarray:
    """Embeddings ``[N, D]`` of [-1, 1] images; ``landmarks [N, 5, 2]`` skip detection."""
    u8 = to_uint8_images(images)
    if landmarks is not None and landmarks.shape != (len(u8), 5, 2):
        raise ConfigError(f"landmarks must be [N, 5, 2] for N={len(u8)}, got {landmarks.shape}")
    det = detector or _default_detector()
    faces = np.stack([
        align_face(img, landmarks[i] if landmarks is not None else det.landmarks(img)) for i, img in enumerate(u8)
    ])
    return embedder.embed_aligned(faces)


def identity_similarity(
    a: Float[Tensor, "n 3 h w"],
    b: Float[Tensor, "n 3 h w"],
    embedder: IdentityEmbedder | None = None,
    landmarks_a: np.ndarray | None = None,
    landmarks_b: np.ndarray | None = None,
) -> IdentityResult:
    """Cosine similarity of face embeddings per pair of [-1, 1] RGB images (raises NoFaceError if a face
    cannot be found and no landmarks were given)."""
    if a.shape[0] != b.shape[0]:
        raise ConfigError(f"identity_similarity needs equal batch sizes, got {a.shape[0]} and {b.shape[0]}")
    emb = embedder or default_embedder()
    ea = embed_images(a, emb, landmarks_a)
    eb = embed_images(b, emb, landmarks_b)
    cos = torch.from_numpy((ea * eb).sum(axis=1)).to(torch.float32)
    return IdentityResult(cosine=cos, embedder=emb.name)
