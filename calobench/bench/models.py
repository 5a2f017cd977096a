"""Generators to time: a finished training run if one exists, else a model fitted on a small sample.

Generation speed depends on the architecture, not on how well the weights are trained, so when no
finished run of a model is found (``calobench leaderboard run`` or ``calobench train`` make them), the
model is fitted with its ``smoke`` preset on a small synthetic sample and that is stated in the
benchmark's ``extra_info``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calobench.generator.base import Generator

RUNS_ENV = "CALOBENCH_BENCH_RUNS"
DEFAULT_RUNS = Path("leaderboards") / "quick" / "runs"
FALLBACK_DATASET = "synthetic-ds1-photons"
FALLBACK_SHOWERS = 2000


@dataclass
class TimedModel:
    name: str
    generator: Generator
    incident_pool: np.ndarray  # MeV, energies to draw batches from
    source: str  # where the weights came from


def runs_directory() -> Path:
    return Path(os.environ.get(RUNS_ENV, str(DEFAULT_RUNS)))


def find_run(name: str, runs: Path) -> Path | None:
    """A finished run directory of ``name`` under ``runs`` (``<name>-seed*``), if any."""
    from calobench.generator.runs import read_run

    for candidate in sorted(runs.glob(f"{name}-seed*")):
        try:
            if read_run(candidate).get("status") == "finished":
                return candidate
        except Exception:
            continue
    return None


def _fallback(name: str, device: str, workdir: Path) -> TimedModel:
    from calobench.generator.runs import load_run_model, train_run
    from calobench.simulator import incident_spectrum, simulate

    energies = incident_spectrum(FALLBACK_DATASET, FALLBACK_SHOWERS, seed=0)
    showers = simulate(FALLBACK_DATASET, energies, seed=0)
    from calobench.formats import write_showers

    data = write_showers(workdir / "train.hdf5", showers)
    result = train_run(name, str(data), workdir / name, preset="smoke", device=device, seed=0)
    _, generator = load_run_model(result.directory, device=device)
    return TimedModel(
        name, generator, energies, f"smoke preset fitted on {FALLBACK_SHOWERS} {FALLBACK_DATASET} showers"
    )


def load_timed_model(name: str, device: str, runs: Path | None = None, workdir: Path | None = None) -> TimedModel:
    """The generator ``name`` on ``device``: from a finished run under ``runs`` or fitted on a small sample."""
    from calobench.generator.runs import load_run_model, run_incident_energies

    run = find_run(name, runs or runs_directory())
    if run is not None:
        _, generator = load_run_model(run, device=device)
        pool = run_incident_energies(run)
        return TimedModel(name, generator, pool, f"trained run {run}")
    workdir = workdir or Path(tempfile.mkdtemp(prefix="calobench-bench-"))
    return _fallback(name, device, workdir)
