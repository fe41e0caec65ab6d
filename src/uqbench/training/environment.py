"""Facts about where a run happened (versions, git commit, device, memory) for ``summary.json``."""

from __future__ import annotations

import platform
import resource
import subprocess
import sys
from pathlib import Path

import torch

import uqbench


def versions() -> dict[str, str]:
    """Versions of Python, torch, NumPy and uqbench."""
    import numpy

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "uqbench": uqbench.__version__,
    }


def git_commit() -> str | None:
    """The commit of the uqbench checkout this code runs from (``+dirty`` if modified), or None."""
    root = Path(uqbench.__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "") if commit else None


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else CPU; an unavailable device is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(
            f"--device={name!r} is not a device name; use auto, cpu or cuda[:N]"
        ) from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"--device={name} was asked for but this torch sees no CUDA GPU; use --device=cpu"
        )
    return device


def describe_device(device: torch.device) -> str:
    """A readable device name, e.g. ``cpu (2 threads)`` or the GPU's model name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads, {platform.machine()})"


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated by torch, or the process's peak resident memory on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10
