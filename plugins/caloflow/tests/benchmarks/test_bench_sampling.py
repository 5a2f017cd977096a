"""Sampling speed of the CaloFlow teacher (MAF: one MADE pass per voxel and block) and student
(IAF: one pass per block) on the CPU at batch 1,000 (run with ``--benchmark-only``).

The models have the ``quick`` architecture with untrained weights: the cost of a pass does not
depend on the weights. The student's test records the teacher / student time ratio per shower in
its ``extra_info`` and checks the acceptance bound (student at least 50x faster).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from calobench_caloflow.preprocessing import PUBLISHED
from calobench_caloflow.student import CaloFlowStudent
from calobench_caloflow.teacher import CaloFlowTeacher
from torch import nn

from calobench.geometry import builtin_geometry

BATCH = 1000
GEOMETRY = "ds1-photons"
_MS_PER_SHOWER: dict[str, float] = {}


def _models(preset: str) -> dict[str, object]:
    geometry = builtin_geometry(GEOMETRY)
    torch.manual_seed(0)
    teacher = CaloFlowTeacher(geometry, preset=preset, device="cpu")
    teacher.conventions = PUBLISHED[GEOMETRY]
    teacher.modules = nn.ModuleDict(teacher.build_modules()).eval()
    student = CaloFlowStudent(geometry, preset=preset, device="cpu")
    student.conventions, student.teacher_architecture, student._teacher = (
        teacher.conventions,
        teacher.architecture(),
        teacher,
    )
    student.modules = nn.ModuleDict(student.build_modules()).eval()
    student._teacher = None
    return {"teacher": teacher, "student": student}


@pytest.fixture(scope="module")
def quick_models():
    return _models("quick")


def _energies() -> np.ndarray:
    return np.random.default_rng(0).choice(2.0 ** np.arange(8, 23), BATCH)


def _run(model, energies):
    return model.sample(energies, seed=0, batch_size=BATCH)


@pytest.mark.parametrize("which", ["teacher", "student"])
def test_sampling_speed_batch_1000(benchmark, quick_models, which):
    model = quick_models[which]
    energies = _energies()
    rounds = 1 if which == "teacher" else 5
    benchmark.pedantic(_run, args=(model, energies), rounds=rounds, iterations=1, warmup_rounds=1)
    ms = benchmark.stats.stats.min / BATCH * 1e3
    _MS_PER_SHOWER[which] = ms
    benchmark.extra_info.update(
        {
            "model": model.name,
            "preset": "quick",
            "batch_size": BATCH,
            "ms_per_shower": ms,
            "n_parameters": model.n_parameters(),
            "threads": torch.get_num_threads(),
        }
    )
    if which == "student":
        if "teacher" not in _MS_PER_SHOWER:  # run alone: time the teacher once
            start = time.perf_counter()
            _run(quick_models["teacher"], energies)
            _MS_PER_SHOWER["teacher"] = (time.perf_counter() - start) / BATCH * 1e3
        ratio = _MS_PER_SHOWER["teacher"] / ms
        benchmark.extra_info["teacher_ms_per_shower"] = _MS_PER_SHOWER["teacher"]
        benchmark.extra_info["teacher_over_student"] = ratio
        assert ratio >= 50, f"the student is only {ratio:.1f}x faster per shower than the teacher"
