"""Train the embedded default generator on SynthHeads, on CPU, from one resumable command.

``python -m sym3dinv.synthheads.train OUT`` (= ``sym3dinv synthheads train OUT``) renders the ground
truth once into ``OUT/cache-*.safetensors``, trains with checkpoints every ``checkpoint_every`` steps
and resumes from the newest one when started again with the same configuration (the step budget may
be raised). The recipe lives in :mod:`train_config`, the data in :mod:`train_data`, the loop in
:mod:`trainer`; this module is the entry point and keeps the old import names.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch

from sym3dinv.synthheads.train_config import V1, TrainConfig, adv_weight_at, lr_at
from sym3dinv.synthheads.train_data import (
    TrainingCache,
    build_cache,
    cache_path,
    render_synthheads,
    sample_training_labels,
)
from sym3dinv.synthheads.trainer import Trainer, train

__all__ = ["V1", "TrainConfig", "Trainer", "TrainingCache", "adv_weight_at", "build_cache", "cache_path", "lr_at",
           "main", "render_synthheads", "sample_training_labels", "train"]


def main(argv: list[str] | None = None) -> int:
    """``python -m sym3dinv.synthheads.train OUT [--steps N] [--identities N] ...``: cache, train, export."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("out", type=Path)
    for f in dataclasses.fields(TrainConfig):
        if f.type in ("int", "float"):
            ap.add_argument(f"--{f.name.replace('_', '-')}", type=int if f.type == "int" else float, default=None)
    ap.add_argument("--init-from", default=None, help="fine-tune from these weights (TrainConfig.init_from)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for training")
    ap.add_argument("--workers", type=int, default=2, help="processes rendering the ground-truth cache")
    ap.add_argument("--stop-at", type=int, default=None, help="end this invocation at this step (resumable)")
    args = ap.parse_args(argv)
    over = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
            if getattr(args, f.name, None) is not None}
    over |= {"init_from": args.init_from} if args.init_from else {}
    cfg = dataclasses.replace(TrainConfig(), **over)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_flush_denormal(True)
    cache = build_cache(cfg, render_synthheads, cache_path(cfg, args.out), workers=args.workers)
    torch.set_num_threads(args.threads)
    print(train(cfg, cache, args.out, stop_at=args.stop_at))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
