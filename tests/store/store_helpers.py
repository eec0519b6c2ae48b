"""Small builders shared by the store tests."""

from __future__ import annotations

import numpy as np

from sym3dinv.store import RunStore, item_id_from_bytes
from tests.plugin import s3_options, write_done_item

__all__ = ["CFG", "s3_options", "write_done"]

CFG = "cfg0123456789abc"


def write_done(store: RunStore, writer, payload: bytes, *, attempt: int = 0, lpips: float = 0.1) -> str:  # noqa: ANN001
    """A done item named by ``payload``'s content id, with fixed camera, angles, metrics and timings."""
    item_id = item_id_from_bytes(payload)
    write_done_item(store, writer, item_id, ws=np.full((14, 8), lpips, np.float32), attempt=attempt,
                    metrics={"lpips": lpips, "psnr": 30.0}, config_hash=CFG, source_uri=f"mem/{payload!r}",
                    bytes=len(payload), camera_label=tuple(float(i) for i in range(25)), yaw=0.1, pitch=-0.05,
                    stage_seconds={"stage1": 1.5})
    return item_id
