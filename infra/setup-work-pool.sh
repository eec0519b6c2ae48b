#!/usr/bin/env bash
# Create the process work pool used by prefect.yaml, register the deployments, start a worker.
set -euo pipefail
POOL=${POOL:-sym3dinv-process}
export PREFECT_LOGGING_EXTRA_LOGGERS=sym3dinv DO_NOT_TRACK=1
prefect work-pool inspect "$POOL" >/dev/null 2>&1 || prefect work-pool create "$POOL" --type process
prefect deploy --all --no-prompt
if [ "${START_WORKER:-1}" = "1" ]; then
  exec prefect worker start --pool "$POOL"
fi
