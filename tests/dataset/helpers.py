"""Finished run stores for the dataset-builder tests (no Prefect): the real per-item pipeline on tiny
generator renders, or items written directly with ``RunStore.item_writer``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FAST = (("stage1.steps", 1), ("stage1.w_avg_samples", 64), ("stage2.steps", 1))


def make_tiny_store(root: Path, ckpt: str, n: int = 2) -> str:
    """Invert ``n`` tiny-generator renders (with camera labels) into a run store at ``root / 'store'``."""
    from sym3dinv.pipeline import ItemProcessor, list_inputs
    from sym3dinv.store import RunStore
    from tests.plugin import make_folder, tiny_pipeline

    folder = make_folder(root / "in", n_good=n)
    items = [i for i in list_inputs(str(folder)) if i.camera is not None]
    cfg = tiny_pipeline(ckpt, dict(FAST), mode="pti")
    proc = ItemProcessor(cfg)
    store = RunStore(str(root / "store"))
    with store.index_writer("test", "0") as iw:
        for item in items:
            row = proc.process(item, store)
            assert row.status.value == "done", row
            iw.add(row)
    return store.url


def synth_ws(seeds: tuple[int, ...] = (0, 1)) -> list[np.ndarray]:
    """Pivot latents of the embedded generator: the mean w, then mapped z (psi 0.7) per further seed."""
    import torch

    from sym3dinv.cameras import camera_label
    from sym3dinv.generator import load_generator

    G = load_generator("synthheads")
    out = [G.backbone.mapping.w_avg[None].expand(G.num_ws, -1).numpy().copy()]
    for s in seeds[1:]:
        z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(s))
        with torch.no_grad():
            out.append(G.mapping(z, camera_label(0.0, 0.0), truncation_psi=0.7)[0].numpy())
    return out


def write_store(url: str, ws_list: list[np.ndarray], generator: str = "synthheads") -> list[str]:
    """Done items holding ``ws`` (and the generator source in metrics.json) in the store at ``url``."""
    import hashlib

    from sym3dinv.cameras import camera_label
    from sym3dinv.store import RunStore
    from tests.plugin import write_done_item

    store = RunStore(url)
    ids = []
    with store.index_writer("direct", "0") as iw:
        for i, ws in enumerate(ws_list):
            iid = hashlib.sha256(f"{url}-{i}".encode()).hexdigest()[:32]
            write_done_item(store, iw, iid, ws=ws, metrics={"psnr": 30.0 + i}, config={"generator": generator},
                            config_hash="direct", source_uri=f"head{i}.png",
                            camera_label=tuple(camera_label(0.0, 0.0)[0].tolist()))
            ids.append(iid)
    return ids
