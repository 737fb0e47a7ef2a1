"""What ran a result: versions, host, device, executor and the git revision, saved in every record."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import kdbench
from kdbench.store import Environment


def git_revision(path: Path | None = None) -> str | None:
    """``<sha>`` or ``<sha>-dirty`` of the checkout kdbench runs from; None outside a checkout.

    Only code counts: changes under ``results/`` (the records being written) do not make it dirty.
    """
    where = path or Path(kdbench.__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ":/", ":(top,exclude)results"],
            cwd=where, capture_output=True, text=True, timeout=10,
        )
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what the platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str, executor: str | None = None, channels_last: bool = True) -> Environment:
    """Where a run ran: versions, host, device, the executor that ran it and the memory format it trained in."""
    import torch

    gpu = cuda = None
    if device.startswith("cuda") and torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(torch.device(device))
        cuda = torch.version.cuda
    return Environment(
        python=sys.version.split()[0],
        platform=platform.platform(),
        torch=torch.__version__,
        kdbench=kdbench.__version__,
        device=device,
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        gpu=gpu,
        cuda=cuda,
        host=platform.node() or None,
        device_name=gpu or cpu_model(),
        executor=executor,
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
        memory_format="channels_last" if channels_last else "contiguous",
    )
