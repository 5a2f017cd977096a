"""Dask worker plugins of distributed sweeps (imported only where dask.distributed is installed)."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from distributed import WorkerPlugin

from calobench.leaderboard.clusters import pinned_gpu


def nvidia_count() -> int:
    """GPUs on this host, without initializing CUDA in this process (``nvidia-smi -L``)."""
    try:
        output = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in output.stdout.splitlines() if line.startswith("GPU "))


class PinGPU(WorkerPlugin):
    """Gives each worker of a multi-GPU machine or job its own GPU.

    Set when the worker starts, before its first CUDA call, ``CUDA_VISIBLE_DEVICES`` keeps one of
    the devices the worker sees (chosen by :func:`~calobench.leaderboard.clusters.pinned_gpu` from
    the worker's index), so that ``cuda`` in a task is that worker's GPU."""

    idempotent = True
    name = "calobench-pin-gpu"

    def setup(self, worker: Any) -> None:
        choice = pinned_gpu(worker.name, os.environ.get("CUDA_VISIBLE_DEVICES"), nvidia_count())
        if choice is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = choice
