"""The baseline generators: the uncorrelated per-voxel floor and the simulator truth row."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from calobench.errors import ConfigError
from calobench.generator.baselines import SimulatorTruth, UncorrelatedVoxels
from calobench.geometry import builtin_geometry
from calobench.showers import Showers
from calobench.testing import random_showers

N = 3000


@pytest.fixture(scope="module")
def showers():
    return random_showers("ds1-photons", N, seed=1)


@pytest.fixture(scope="module")
def trained(showers):
    model = UncorrelatedVoxels(showers.geometry, {"n_quantiles": 64}, preset="quick")
    model.fit(showers)
    return model


def _pulls(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(mean_a - mean_b) / its standard error, per column."""
    error = np.sqrt(a.var(axis=0, ddof=1) / len(a) + b.var(axis=0, ddof=1) / len(b))
    keep = error > 0
    return (a.mean(axis=0)[keep] - b.mean(axis=0)[keep]) / error[keep]


def test_reproduces_per_voxel_means_and_sparsity(showers, trained):
    generated = trained.sample(showers.incident_energies, seed=0)
    assert generated.dtype == np.float32 and generated.shape == showers.energies.shape
    fractions = showers.energies / showers.incident_energies[:, None]
    generated_fractions = generated / showers.incident_energies[:, None]
    pulls = _pulls(generated_fractions, fractions)
    assert np.abs(pulls).max() < 5.0, np.abs(pulls).max()
    assert abs(pulls.mean()) < 5.0 / np.sqrt(len(pulls))  # no overall bias
    zero_pulls = _pulls((generated == 0).astype(float), (showers.energies == 0).astype(float))
    assert np.abs(zero_pulls).max() < 5.0


def test_ignores_correlations(showers, trained):
    """The total response of independent voxels is much wider than the data's (which is ~N(0.95, 0.03))."""
    generated = trained.sample(showers.incident_energies, seed=0)
    data_response = showers.total_energy() / showers.incident_energies
    model_response = generated.sum(axis=1, dtype=np.float64) / showers.incident_energies
    assert abs(model_response.mean() - data_response.mean()) < 0.02
    assert model_response.std() > 2 * data_response.std()


def test_discrete_energies_get_one_bin_each():
    geometry = builtin_geometry("ds1-photons")
    energies = np.repeat([1024.0, 8192.0, 65536.0], 40)
    voxels = np.zeros((len(energies), geometry.n_voxels), dtype=np.float32)
    for k, energy in enumerate((1024.0, 8192.0, 65536.0)):
        voxels[energies == energy, k] = 0.5 * energy  # each energy fills only voxel k
    model = UncorrelatedVoxels(geometry, preset="smoke")
    model.fit(Showers(energies, voxels, geometry))
    marginals = model.marginals
    assert marginals.discrete and np.allclose(marginals.log_energies.exp(), [1024.0, 8192.0, 65536.0])
    sample = model.sample(np.array([1000.0, 9000.0, 70000.0]), seed=0)
    np.testing.assert_allclose(sample[:, :3], np.diag([500.0, 4500.0, 35000.0]), rtol=1e-6)
    assert (sample[:, 3:] == 0).all()


def test_continuous_energies_get_quantile_bins(showers, trained):
    marginals = trained.marginals
    assert not marginals.discrete
    assert len(marginals.log_energies) == trained.config["n_energy_bins"] - 1
    counts = np.bincount(marginals.bins(torch.from_numpy(showers.incident_energies)).numpy())
    assert counts.min() >= N // trained.config["n_energy_bins"] - 1


def test_deterministic_by_seed_and_independent_of_batch_size(showers, trained):
    energies = showers.incident_energies[:50]
    a = trained.sample(energies, seed=3, batch_size=7)
    np.testing.assert_array_equal(a, trained.sample(energies, seed=3, batch_size=1000))
    assert not np.array_equal(a, trained.sample(energies, seed=4))


def test_save_load_round_trip(showers, trained, tmp_path):
    trained.save(tmp_path / "model")
    restored = UncorrelatedVoxels.load(tmp_path / "model")
    energies = showers.incident_energies[:20]
    np.testing.assert_array_equal(restored.sample(energies, seed=1), trained.sample(energies, seed=1))
    assert restored.config == trained.config and restored.n_parameters() == 0


def test_unsupported_inputs_fail_clearly(showers, trained):
    with pytest.raises(ConfigError, match="finite and > 0 MeV"):
        trained.sample(np.array([1000.0, -5.0]), seed=0)
    with pytest.raises(ConfigError, match="not trained"):
        UncorrelatedVoxels(showers.geometry, preset="smoke").sample(np.array([1000.0]), seed=0)
    with pytest.raises(ConfigError, match="n_quantiles must be >= 2"):
        UncorrelatedVoxels(showers.geometry, {"n_quantiles": 1}, preset="smoke")
    with pytest.raises(ConfigError, match="expects an integer"):
        UncorrelatedVoxels(showers.geometry, {"n_quantiles": "many"}, preset="smoke")


def test_works_on_calogan_geometry():
    data = random_showers("calogan", 200, seed=2)
    model = UncorrelatedVoxels(data.geometry, preset="smoke")
    model.fit(data)
    assert model.sample(data.incident_energies, seed=0).shape == (200, 504)


# ---------------------------------------------------------------------- simulator truth
def test_simulator_truth_needs_a_synthetic_data_set():
    geometry = builtin_geometry("ds1-photons")
    with pytest.raises(ConfigError, match="needs the name of a synthetic data set"):
        SimulatorTruth(geometry, preset="smoke")
    with pytest.raises(ConfigError, match="only for synthetic data sets.*real"):
        SimulatorTruth(geometry, preset="smoke", dataset="calochallenge-ds1-photons")
    with pytest.raises(ConfigError, match="unknown data set"):
        SimulatorTruth(geometry, preset="smoke", dataset="no-such-set")
    assert not SimulatorTruth.trainable


def _synthetic(name: str):
    pytest.importorskip("calobench.simulator", reason="the simulator is not installed")
    from calobench.datasets import get_dataset
    from calobench.errors import DatasetError

    try:
        return get_dataset(name)
    except DatasetError:
        pytest.skip(f"data set {name!r} is not registered")


def test_simulator_truth_samples_the_simulator(tmp_path):
    spec = _synthetic("synthetic-ds1-photons")
    from calobench.simulator import simulate

    model = SimulatorTruth(spec.geometry_object, preset="smoke", dataset=spec.name)
    energies = np.array([1024.0, 65536.0, 262144.0])
    sample = model.sample(energies, seed=5)
    np.testing.assert_array_equal(sample, simulate(spec.name, energies, seed=5).energies.astype(np.float32))
    model.save(tmp_path)
    np.testing.assert_array_equal(SimulatorTruth.load(tmp_path).sample(energies, seed=5), sample)
    with pytest.raises(ConfigError, match="geometry"):
        SimulatorTruth(builtin_geometry("ds2"), preset="smoke", dataset=spec.name)
