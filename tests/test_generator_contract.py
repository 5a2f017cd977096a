"""Every registered generator (built-in and installed plugins) passes calobench.testing's contract check."""

from __future__ import annotations

import numpy as np
import pytest

from calobench.plugins import generators
from calobench.showers import Showers
from calobench.testing import check_generator_contract, random_showers

SYNTHETIC = "synthetic-ds1-photons"
N_TRAIN, N_VALID = 96, 16


def _synthetic_available() -> bool:
    try:
        from calobench.datasets import get_dataset
        from calobench.simulator import simulate  # noqa: F401

        return get_dataset(SYNTHETIC).kind == "synthetic"
    except Exception:
        return False


@pytest.fixture(scope="module")
def tiny_set() -> tuple[Showers, Showers, str | None]:
    """A small ds1-photons training and validation set: simulated when the simulator is there."""
    if _synthetic_available():
        from calobench.simulator import simulate

        energies = 2.0 ** np.random.default_rng(0).integers(8, 23, N_TRAIN + N_VALID).astype(float)
        showers = simulate(SYNTHETIC, energies, seed=0)
        dataset = SYNTHETIC
    else:
        showers, dataset = random_showers("ds1-photons", N_TRAIN + N_VALID, seed=0), None
    return showers[:N_TRAIN], showers[N_TRAIN:], dataset


@pytest.mark.parametrize("name", generators().names())
def test_generator_honours_the_contract(name, tiny_set, tmp_path):
    cls = generators().get(name)
    train, valid, dataset = tiny_set
    if cls.supported_geometries is not None and train.geometry.name not in cls.supported_geometries:
        geometry = cls.supported_geometries[0]
        showers = random_showers(geometry, N_TRAIN + N_VALID, seed=0)
        train, valid, dataset = showers[:N_TRAIN], showers[N_TRAIN:], None
    if name == "simulator-truth" and dataset is None:
        pytest.skip(f"the simulator or the {SYNTHETIC!r} data set is not available in this installation")
    check_generator_contract(cls, train, valid, workdir=tmp_path / "work", dataset=dataset)


def test_the_builtin_generators_are_registered():
    names = generators().names()
    assert {"baseline-uncorrelated", "simulator-truth"} <= set(names)
    assert generators().provider("baseline-uncorrelated").distribution == "calobench"
