"""pytest plugin for the generation benchmarks: adds the GPU to pytest-benchmark's machine info."""

from __future__ import annotations

from typing import Any


def gpu_info() -> dict[str, Any]:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return {}
    info: dict[str, Any] = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def pytest_benchmark_update_machine_info(config: Any, machine_info: dict[str, Any]) -> None:
    machine_info["calobench_gpu"] = gpu_info()
