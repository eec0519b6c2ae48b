"""The fixed evaluation split "synthheads-eval": identities never used for training.

- Identities: seeds ``EVAL_FIRST_SEED + k`` (training uses seeds 0 .. N-1, far below).
- Every identity with ``k % 10 < 4`` is forced strongly asymmetric (40%); the rest sample asymmetric
  details at the usual rate, so at least 30% of the split is strongly asymmetric by construction.
- Input views: yaws stratified over [-60, +60] deg, pitches uniform in [-15, +15] deg (seeded).
- Ground-truth views of each identity: yaw -60, -30, +30, +60 deg at pitch 0. These are *absolute* yaws
  (the fixed cameras of a multi-view capture, as in the paper's MEAD evaluation), not offsets from the
  input; each input also gets the head rendered at its mirrored camera ``mirror_label(c)`` (the truth
  for the symmetry prior's pseudo view; it differs from the flipped input exactly where the head is
  asymmetric).
Rows of ``index.parquet`` carry ``role`` ("input", "gt", "mirror") and ``input_view`` (for mirrors).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from sym3dinv import cameras
from sym3dinv.synthheads.dataset import write_index, write_views
from sym3dinv.synthheads.head import Head
from sym3dinv.synthheads.params import sample_head_params
from sym3dinv.synthheads.tracer import render_head

SPLIT_NAME = "synthheads-eval"
EVAL_FIRST_SEED = 1_000_000
GT_YAWS_DEG = (-60.0, -30.0, 30.0, 60.0)
INPUT_YAW_DEG = 60.0
INPUT_PITCH_DEG = 15.0
STRONG_FRACTION = 0.4


@dataclass(frozen=True)
class EvalIdentity:
    seed: int
    strong: bool
    input_labels: torch.Tensor  # [I, 25]
    gt_labels: torch.Tensor  # [4, 25] at GT_YAWS_DEG
    mirror_labels: torch.Tensor  # [I, 25]


def eval_identity(k: int, inputs: int) -> EvalIdentity:
    """The k-th identity of the split and its cameras (pure function of k and ``inputs``)."""
    g = torch.Generator().manual_seed(EVAL_FIRST_SEED + k)
    strata = (torch.arange(inputs) + torch.rand(inputs, generator=g)) / inputs
    yaw = torch.deg2rad((2 * strata - 1) * INPUT_YAW_DEG)
    pitch = torch.deg2rad((2 * torch.rand(inputs, generator=g) - 1) * INPUT_PITCH_DEG)
    c_in = cameras.camera_label(yaw, pitch)
    c_gt = cameras.camera_label(torch.deg2rad(torch.tensor(GT_YAWS_DEG)), 0.0)
    return EvalIdentity(EVAL_FIRST_SEED + k, k % 10 < round(STRONG_FRACTION * 10), c_in, c_gt,
                        cameras.mirror_label(c_in))


def make_eval_split(root: Path, identities: int = 50, inputs: int = 4, resolution: int = 128,
                    background: tuple[float, float, float] = (0.5, 0.5, 0.5), antialias: int = 1) -> Path:
    """Render the split into ``root``; returns the index path."""
    rows: list[dict[str, object]] = []
    for k in range(identities):
        e = eval_identity(k, inputs)
        params = sample_head_params(e.seed, strong=True if e.strong else None)
        labels = torch.cat((e.input_labels, e.gt_labels, e.mirror_labels))
        render = render_head(Head(params), labels, resolution, background=background, antialias=antialias)
        ids = [f"in{i}" for i in range(inputs)] + [f"gt{int(y):+d}" for y in GT_YAWS_DEG] + \
              [f"in{i}_mirror" for i in range(inputs)]
        extra = [{"role": "input", "input_view": f"in{i}", "split": SPLIT_NAME} for i in range(inputs)]
        extra += [{"role": "gt", "input_view": "", "split": SPLIT_NAME} for _ in GT_YAWS_DEG]
        extra += [{"role": "mirror", "input_view": f"in{i}", "split": SPLIT_NAME} for i in range(inputs)]
        rows += write_views(root, params, render, ids, extra)
    index, _ = write_index(root, rows)
    return index


def strong_fraction(identities: int) -> float:
    """Fraction of strongly asymmetric identities among the first ``identities`` of the split."""
    ids = [eval_identity(k, 1) for k in range(identities)]
    return sum(sample_head_params(e.seed, strong=True if e.strong else None).strongly_asymmetric for e in ids) / identities

