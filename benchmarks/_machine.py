"""What machine a benchmark ran on (shared by the scripts in this folder; pytest does not collect it)."""

from __future__ import annotations

import platform


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, else what the platform module reports."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def device_name(device: object) -> str:
    """'cpu', or the CUDA device's name, memory and the torch/CUDA versions (for the JSON records)."""
    import torch

    dev = torch.device(device)  # type: ignore[arg-type]
    if dev.type != "cuda":
        return dev.type
    p = torch.cuda.get_device_properties(dev)
    return f"{p.name} ({p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda})"
