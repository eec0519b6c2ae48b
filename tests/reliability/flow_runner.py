"""Runs the real ``bulk-invert`` flow in its own process (the reliability tests SIGKILL it).

Usage: python tests/reliability/flow_runner.py INPUT OUT CHECKPOINT [SHARD_SIZE [STAGE1_STEPS]]
Uses PREFECT_API_URL from the environment (the test harness' API); prints the summary as JSON.
"""

from __future__ import annotations

import dataclasses
import json
import sys

if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    from flows.bulk_invert import bulk_invert

    src, out, ckpt = sys.argv[1:4]
    shard_size = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    steps = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    s = bulk_invert(input=src, out=out, generator=ckpt, mode="w+", preset="smoke",
                    overrides={"stage1.steps": steps, "stage1.w_avg_samples": 64}, views=[(0.0, 0.0)],
                    shard_size=shard_size, num_actors=1, losses="fast")
    print("SUMMARY " + json.dumps(dataclasses.asdict(s)), flush=True)
