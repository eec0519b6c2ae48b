"""Runs the real ``bulk-invert`` flow in its own process (the reliability tests SIGKILL it).

Usage: python tests/reliability/flow_runner.py INPUT OUT CHECKPOINT [SHARD_SIZE [STAGE1_STEPS [LEASE_S [LOSSES]]]]
Uses PREFECT_API_URL from the environment (the test harness' API); prints the summary as JSON.
LEASE_S (default 4) is the item lease duration, heartbeat a quarter of it: short, so the leases of a run the
test kills expire before a restarted run gets to its items. LOSSES: a ``PipelineConfig.losses`` spec.
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
    from sym3dinv.config.store import LeaseConfig
    from tests.plugin import CHEAP_LOSSES, FAST, tiny_pipeline

    src, out, ckpt = sys.argv[1:4]
    shard_size = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    steps = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    lease_s = float(sys.argv[6]) if len(sys.argv) > 6 else 4.0
    losses = sys.argv[7] if len(sys.argv) > 7 else CHEAP_LOSSES
    config = tiny_pipeline(ckpt, {**FAST, "stage1.steps": steps}, render=RenderSpec(((0.0, 0.0),)), losses=losses)
    execution = ExecutionConfig(shard_size=shard_size, num_actors=1,
                                lease=LeaseConfig(duration_s=lease_s, heartbeat_s=lease_s / 4))
    s = bulk_invert(input=src, out=out, config=config, execution=execution)
    print("SUMMARY " + json.dumps(dataclasses.asdict(s)), flush=True)
