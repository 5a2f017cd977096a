"""Sampling speed of ``caloman`` on the CPU at batch 1 / 100 / 1,000 (run with ``--benchmark-only``).

The model has the ``quick`` architecture with untrained weights (a pass costs the same whatever the
weights) and the latent size that ``latent_dim = "auto"`` measures on synthetic DS1 photons (38).
A shower costs one pass of the 4-layer layer-energy flow, one of the 4-layer latent flow and one
decoder pass, all in parallel over the batch. When the CaloFlow plugin is installed, its student
(the fastest of its models) is timed at batch 1,000 in the same session for comparison; the ratio
is recorded in ``extra_info`` and CaloMan must be faster.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from calobench_caloman.dimension import LatentChoice
from calobench_caloman.generator import CaloMan
from calobench_caloman.preprocessing import Conventions
from torch import nn

from calobench.geometry import builtin_geometry

GEOMETRY = "ds1-photons"
LATENT = 38  # latent_dim = "auto" on synthetic-ds1-photons (quick preset)
_MS: dict[str, float] = {}


def quick_model() -> CaloMan:
    geometry = builtin_geometry(GEOMETRY)
    torch.manual_seed(0)
    model = CaloMan(geometry, preset="quick", device="cpu")
    n = geometry.n_layers
    model.conventions = Conventions(
        space="normalized",
        u0_scale=3.1,
        threshold_mev=0.1,
        label_mean=[4.5] + [-4.0] * n,
        label_std=[1.2] + [1.0] * n,
        epl_shift=[0.0] * n,
        epl_scale=[3.0] * n,
        shower_std=0.04,
    )
    model.latent = LatentChoice(LATENT, LATENT)
    model.modules = nn.ModuleDict(model.build_modules()).eval()
    return model


@pytest.fixture(scope="module")
def model() -> CaloMan:
    return quick_model()


def _energies(n: int) -> np.ndarray:
    return np.random.default_rng(0).choice(2.0 ** np.arange(8, 23), n)


@pytest.mark.parametrize("batch", [1, 100, 1000])
def test_sampling_speed(benchmark, model, batch):
    energies = _energies(batch)
    rounds = {1: 50, 100: 20, 1000: 10}[batch]
    benchmark.pedantic(
        model.sample, args=(energies,), kwargs={"seed": 0, "batch_size": batch}, rounds=rounds, warmup_rounds=2
    )
    ms = benchmark.stats.stats.min / batch * 1e3
    _MS[f"caloman-{batch}"] = ms
    benchmark.extra_info.update(
        {
            "model": "caloman",
            "preset": "quick",
            "latent_dim": LATENT,
            "batch_size": batch,
            "ms_per_shower_min": ms,
            "ms_per_shower_mean": benchmark.stats.stats.mean / batch * 1e3,
            "n_parameters": model.n_parameters(),
            "threads": torch.get_num_threads(),
        }
    )
    if batch == 1000:
        student = _caloflow_student_ms(energies)
        if student is not None:
            benchmark.extra_info["caloflow_student_ms_per_shower"] = student
            benchmark.extra_info["student_over_caloman"] = student / ms
            assert ms < student, f"caloman {ms:.4f} ms/shower is not faster than caloflow-student {student:.4f}"


def _caloflow_student_ms(energies: np.ndarray) -> float | None:
    """The quick CaloFlow student's best of 3 at the same batch (untrained), or None without the plugin."""
    try:
        from calobench_caloflow.preprocessing import PUBLISHED
        from calobench_caloflow.student import CaloFlowStudent
        from calobench_caloflow.teacher import CaloFlowTeacher
    except ImportError:
        return None
    geometry = builtin_geometry(GEOMETRY)
    teacher = CaloFlowTeacher(geometry, preset="quick", device="cpu")
    teacher.conventions = PUBLISHED[GEOMETRY]
    teacher.modules = nn.ModuleDict(teacher.build_modules()).eval()
    student = CaloFlowStudent(geometry, preset="quick", device="cpu")
    student.conventions, student.teacher_architecture, student._teacher = (
        teacher.conventions,
        teacher.architecture(),
        teacher,
    )
    student.modules = nn.ModuleDict(student.build_modules()).eval()
    student._teacher = None
    student.sample(energies, seed=0, batch_size=len(energies))
    best = min(_timed(student, energies) for _ in range(3))
    return best / len(energies) * 1e3


def _timed(model, energies) -> float:
    start = time.perf_counter()
    model.sample(energies, seed=0, batch_size=len(energies))
    return time.perf_counter() - start
