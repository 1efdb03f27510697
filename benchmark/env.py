"""What a result record needs to be traced: package and git versions, torch, device."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

import benchmark
from benchmark.data.card import REPO_ROOT


def git_info(root: Path = REPO_ROOT) -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def cpu_model() -> str:
    """The CPU's model name (Linux), else the architecture: with the core count it names "this machine" for the
    cost model (benchmark.costs), which reuses measured trial times only from the same kind of machine."""
    try:
        with open("/proc/cpuinfo") as fh:
            return next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def environment(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "promo_bench": benchmark.__version__, "python": platform.python_version(), "torch": torch.__version__,
        "numpy": np.__version__, "cuda": torch.version.cuda, "device": str(device),
        "machine": platform.machine(), "platform": platform.platform(), **{"git_" + k: v for k, v in git_info().items()},
        "cpu": cpu_model(), "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def resolve_device(spec: str) -> torch.device:
    from benchmark.errors import BenchError

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise BenchError(f"--device {spec}: CUDA is not available here (torch {torch.__version__}, "
                             f"built for CUDA {torch.version.cuda}); use --device cpu or auto")
        dev = torch.device(spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise BenchError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) present")
        return dev
    raise BenchError(f"--device {spec!r}: expected auto, cpu, cuda or cuda:N")
