"""Sampling speed of ``caloinn`` and ``caloinn-vae`` on the CPU at batch 1, 100 and 1,000 (run with
``--benchmark-only``), and the INN's speed-up over ``caloflow-teacher`` at batch 1,000.

The models have the ``quick`` architecture with untrained weights (ActNorm initialized on random
data): the cost of a pass does not depend on the weights. Each test records ms per shower in its
``extra_info``. The comparison with the teacher times the teacher once when the CaloFlow plugin is
installed, else uses its committed quick-leaderboard figure (10.6 ms per shower at batch 1,000).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from calobench_caloinn.inn import CaloINN
from calobench_caloinn.vae_inn import CaloVAEINN
from torch import nn

from calobench.geometry import builtin_geometry

GEOMETRY = "ds1-photons"
BATCHES = (1, 100, 1000)
#: caloflow-teacher, quick preset, synthetic DS1 photons, batch 1,000 (committed quick leaderboard).
TEACHER_MS_PER_SHOWER = 10.6
_MS_PER_SHOWER: dict[tuple[str, int], float] = {}


def _model(cls: type, preset: str = "quick"):
    geometry = builtin_geometry(GEOMETRY)
    torch.manual_seed(0)
    model = cls(geometry, preset=preset, device="cpu")
    model.u0_scale, model.threshold_mev = 1.5, 0.1
    if cls is CaloVAEINN:
        model.u0_scale = 2.0
        n_features, n_latent = geometry.n_voxels + geometry.n_layers, model.inn_features
        model.statistics = {
            "feature_mean": torch.zeros(n_features),
            "feature_std": torch.ones(n_features),
            "energy_max": torch.tensor(4.2e6),
            "latent_mean": torch.zeros(n_latent),
            "latent_std": torch.ones(n_latent),
        }
    model.modules = nn.ModuleDict(model.build_modules()).eval()
    inn = model.modules["inn"]
    with torch.no_grad():  # initialize the ActNorms (the INN's) as a first training batch would
        features = inn.q0.shape[0]
        inn.log_prob(torch.randn(256, features), torch.randn(256, 1))
    return model


@pytest.fixture(scope="module")
def models():
    return {"caloinn": _model(CaloINN), "caloinn-vae": _model(CaloVAEINN)}


def _energies(n: int) -> np.ndarray:
    return np.random.default_rng(0).choice(2.0 ** np.arange(8, 23), n)


def _run(model, energies):
    return model.sample(energies, seed=0, batch_size=len(energies))


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("name", ["caloinn", "caloinn-vae"])
def test_sampling_speed(benchmark, models, name, batch):
    model = models[name]
    energies = _energies(batch)
    rounds = {1: 50, 100: 20, 1000: 5}[batch]
    benchmark.pedantic(_run, args=(model, energies), rounds=rounds, iterations=1, warmup_rounds=2)
    ms = benchmark.stats.stats.min / batch * 1e3
    _MS_PER_SHOWER[(name, batch)] = ms
    benchmark.extra_info.update(
        {
            "model": name,
            "preset": "quick",
            "batch_size": batch,
            "ms_per_shower": ms,
            "n_parameters": model.n_parameters(),
            "threads": torch.get_num_threads(),
        }
    )


def _teacher_ms_per_shower() -> tuple[float, str]:
    try:
        from calobench_caloflow.preprocessing import PUBLISHED
        from calobench_caloflow.teacher import CaloFlowTeacher
    except ImportError:
        return TEACHER_MS_PER_SHOWER, "committed quick-leaderboard figure"
    torch.manual_seed(0)
    teacher = CaloFlowTeacher(builtin_geometry(GEOMETRY), preset="quick", device="cpu")
    teacher.conventions = PUBLISHED[GEOMETRY]
    teacher.modules = nn.ModuleDict(teacher.build_modules()).eval()
    energies = _energies(1000)
    start = time.perf_counter()
    teacher.sample(energies, seed=0, batch_size=1000)
    return (time.perf_counter() - start), "measured"


def test_inn_is_ten_times_faster_than_the_caloflow_teacher(benchmark, models):
    model = models["caloinn"]
    energies = _energies(1000)
    benchmark.pedantic(_run, args=(model, energies), rounds=5, iterations=1, warmup_rounds=1)
    inn_ms = benchmark.stats.stats.min
    teacher_ms, source = _teacher_ms_per_shower()
    ratio = teacher_ms / inn_ms
    benchmark.extra_info.update(
        {"caloinn_ms_per_shower": inn_ms, "teacher_ms_per_shower": teacher_ms, "teacher_source": source, "ratio": ratio}
    )
    assert ratio >= 10, f"caloinn is only {ratio:.1f}x faster per shower than caloflow-teacher ({source})"
