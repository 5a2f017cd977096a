"""The generation-time benchmark: every registered generator x batch size x device.

Run through ``calobench bench`` or ``python -m pytest tests/benchmarks --benchmark-only``. Each case
times ``generator.sample`` on one batch (one warm-up round, then ``CALOBENCH_BENCH_ROUNDS`` rounds);
the result is a host array, so the transfer from the device is included, and CUDA is synchronized
before each round. ``extra_info`` holds ms/shower, the model's source and the device name.

Selection through the environment (``calobench bench`` sets these): ``CALOBENCH_BENCH_MODELS``
(comma-separated, default all registered), ``CALOBENCH_BENCH_DEVICES`` (default ``cpu`` plus
``cuda`` when present), ``CALOBENCH_BENCH_BATCH_SIZES`` (default 1,100,10000 on CUDA and 1,100,1000
on the CPU), ``CALOBENCH_BENCH_ROUNDS`` (default 5), ``CALOBENCH_BENCH_RUNS`` (finished runs).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from calobench.bench.models import TimedModel, load_timed_model
from calobench.timing import energies_for_batch, synchronize

CPU_BATCH_SIZES = (1, 100, 1000)
GPU_BATCH_SIZES = (1, 100, 10000)
_CACHE: dict[tuple[str, str], TimedModel] = {}


def _env_list(name: str) -> list[str] | None:
    value = os.environ.get(name, "").strip()
    return [v.strip() for v in value.split(",") if v.strip()] or None


def selected_models() -> list[str]:
    from calobench.plugins import generators

    return _env_list("CALOBENCH_BENCH_MODELS") or [name for name in generators().names()]


def selected_devices() -> list[str]:
    import torch

    return _env_list("CALOBENCH_BENCH_DEVICES") or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])


def batch_sizes_for(device: str) -> list[int]:
    sizes = _env_list("CALOBENCH_BENCH_BATCH_SIZES")
    if sizes:
        return [int(s) for s in sizes]
    return list(GPU_BATCH_SIZES if device.startswith("cuda") else CPU_BATCH_SIZES)


def pytest_generate_tests(metafunc: Any) -> None:
    if {"model_name", "device", "batch_size"} <= set(metafunc.fixturenames):
        cases = [(m, d, b) for m in selected_models() for d in selected_devices() for b in batch_sizes_for(d)]
        metafunc.parametrize(("model_name", "device", "batch_size"), cases, ids=[f"{m}-{d}-bs{b}" for m, d, b in cases])


def _model(name: str, device: str, tmp_path_factory: pytest.TempPathFactory) -> TimedModel:
    key = (name, device)
    if key not in _CACHE:
        _CACHE[key] = load_timed_model(name, device, workdir=tmp_path_factory.mktemp(f"fit-{name}"))
    return _CACHE[key]


def test_generation_time(
    benchmark: Any, model_name: str, device: str, batch_size: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    model = _model(model_name, device, tmp_path_factory)
    energies = energies_for_batch(model.incident_pool, batch_size, seed=batch_size)

    def setup() -> tuple[tuple, dict]:
        synchronize(getattr(model.generator, "device", None))
        return (energies,), {"seed": 0, "batch_size": batch_size}

    rounds = int(os.environ.get("CALOBENCH_BENCH_ROUNDS", "5"))
    output = benchmark.pedantic(model.generator.sample, setup=setup, rounds=rounds, warmup_rounds=1, iterations=1)
    assert output.shape == (batch_size, model.generator.geometry.n_voxels)
    device_obj = getattr(model.generator, "device", None)
    benchmark.extra_info.update(
        {
            "model": model_name,
            "device": str(device_obj or device),
            "batch_size": batch_size,
            "ms_per_shower": benchmark.stats.stats.mean * 1e3 / batch_size,
            "ms_per_shower_std": benchmark.stats.stats.stddev * 1e3 / batch_size,
            "source": model.source,
            "preset": model.generator.preset,
        }
    )
