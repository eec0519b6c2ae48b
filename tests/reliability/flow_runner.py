"""Runs the real ``bulk-invert`` flow in its own process (the reliability tests SIGKILL it).

Usage: python tests/reliability/flow_runner.py INPUT OUT CHECKPOINT [SHARD_SIZE [STAGE1_STEPS]]
Uses PREFECT_API_URL from the environment (the test harness' API); prints the summary as JSON.
"""

from __future__ import annotations

import dataclasses
import json
import sys

if __name__ == "__main__":
    from sym3dinv.perf import cpu_numerics

    cpu_numerics(1)  # this process is an entry point
    from flows.bulk_invert import bulk_invert
    from sym3dinv.config.pipeline import ExecutionConfig, RenderSpec
    from tests.plugin import FAST, tiny_pipeline

    src, out, ckpt = sys.argv[1:4]
    shard_size = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    steps = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    config = tiny_pipeline(ckpt, {**FAST, "stage1.steps": steps}, render=RenderSpec(((0.0, 0.0),)))
    s = bulk_invert(input=src, out=out, config=config, execution=ExecutionConfig(shard_size=shard_size, num_actors=1))
    print("SUMMARY " + json.dumps(dataclasses.asdict(s)), flush=True)
