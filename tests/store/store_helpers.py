"""Small builders shared by the store tests."""

from __future__ import annotations

import numpy as np

from sym3dinv.store import IndexRow, RunStore, Status, item_id_from_bytes

CFG = "cfg0123456789abc"


def write_done(store: RunStore, writer, payload: bytes, *, attempt: int = 0, lpips: float = 0.1) -> str:  # noqa: ANN001
    item_id = item_id_from_bytes(payload)
    with store.item_writer(item_id, attempt) as w:
        w.write_latents({"ws": np.full((14, 8), lpips, np.float32)})
        w.write_metrics({"lpips": lpips})
    label = tuple(float(i) for i in range(25))
    writer.add_done(
        w.committed,
        IndexRow(
            id=item_id,
            status=Status.DONE,
            config_hash=CFG,
            source_uri=f"mem/{payload!r}",
            bytes=len(payload),
            camera_label=label,
            yaw=0.1,
            pitch=-0.05,
            metrics={"lpips": lpips, "psnr": 30.0},
            stage_seconds={"stage1": 1.5},
        ),
    )
    return item_id


def s3_options(endpoint: str) -> dict[str, object]:
    """s3fs options for the moto server (explicit test keys; never real credentials)."""
    return {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }
