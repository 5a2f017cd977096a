"""The fast path (expected fraction per voxel, then counts) against the exact spot-by-spot path:
per-voxel mean and variance agree within their statistical errors, and the comparison is sharp
enough to see a 10 % change of the core radius."""

from __future__ import annotations

import numpy as np
import pytest

from calobench.geometry import Geometry, Layer
from calobench.simulator import LEAD, Detector, Medium, Slab, homogeneous_detector, load_detector, simulate
from calobench.simulator import fast as fast_module

PB_LAR = Medium(
    "pb-lar",
    z=61.0,
    x0_mm=18.8,
    moliere_radius_mm=37.0,
    lambda_int_mm=384.0,
    sampling_fraction=0.2,
    mip_mev_per_x0=10.5,
)


def sampling_detector(particle: str) -> Detector:
    """Passive material, then four Pb/LAr layers (2, 5, 10, 4 X0) of 4 angular x 5 radial bins."""
    edges = (0.0, 10.0, 25.0, 50.0, 100.0, 200.0)
    layers = tuple(Layer(id=i, shape=(4, 5), r_edges=edges) for i in range(4))
    geometry = Geometry("test-sampling", "cylindrical", layers, particle, 0.0)
    slabs = (Slab("front", "pb-lar", 1.0),) + tuple(
        Slab(f"layer {i}", "pb-lar", t, i) for i, t in enumerate((2.0, 5.0, 10.0, 4.0))
    )
    return Detector("test-sampling", geometry, particle, {"pb-lar": PB_LAR}, slabs, "pb-lar", spot_energy_shape=1.0)


def _variance_error(x: np.ndarray) -> np.ndarray:
    centred = x - x.mean(axis=0)
    m4 = (centred**4).mean(axis=0)
    variance = x.var(axis=0)
    return np.sqrt(np.maximum(m4 - variance**2, 0.0) / len(x))


def compare(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """z-scores of the per-voxel mean and variance differences (voxels hit by either sample)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    used = (a.mean(axis=0) + b.mean(axis=0)) > 0
    a, b = a[:, used], b[:, used]
    mean_error = np.sqrt(a.var(axis=0) / len(a) + b.var(axis=0) / len(b))
    z_mean = (a.mean(axis=0) - b.mean(axis=0)) / np.maximum(mean_error, 1e-12)
    variance_error = np.sqrt(_variance_error(a) ** 2 + _variance_error(b) ** 2)
    z_variance = (a.var(axis=0) - b.var(axis=0)) / np.maximum(variance_error, 1e-12)
    return z_mean, z_variance


def assert_agree(z: np.ndarray) -> None:
    assert np.abs(z).max() < 5.0
    assert np.mean(z**2) < 1.6  # chi2 / voxel; 1 expected


CASES = {
    "sampling-electron": (lambda: sampling_detector("electron"), 5000.0, 1500),
    "sampling-pion": (lambda: sampling_detector("pion"), 5000.0, 1500),
    "homogeneous-multinomial": (
        lambda: homogeneous_detector(LEAD, 2.0, 12, [0, 0.25, 0.5, 1, 2, 4], n_alpha=3, particle="electron"),
        2000.0,
        1200,
    ),
    "calogan-positron": (lambda: load_detector("calogan-eplus"), 5000.0, 800),
    "calogan-pion": (lambda: load_detector("calogan-piplus"), 5000.0, 800),
    "ds1-pions": (lambda: load_detector("ds1-pions"), 4096.0, 800),
    "ds2": (lambda: load_detector("ds2"), 2000.0, 1000),
}


@pytest.fixture(scope="module")
def exact_samples():
    cache = {}

    def get(case):
        if case not in cache:
            make, energy, n = CASES[case]
            cache[case] = simulate(make(), np.full(n, energy), seed=2, method="exact").energies
        return cache[case]

    return get


@pytest.mark.parametrize("sampler", ["dense", "sparse"])
@pytest.mark.parametrize("case", list(CASES))
def test_fast_path_matches_spot_by_spot(case, sampler, exact_samples, monkeypatch):
    """Both samplers of the fast path: Poisson counts in every voxel (dense) and hit by hit (sparse)."""
    monkeypatch.setattr(fast_module, "SPARSE_BELOW", 0.0 if sampler == "dense" else np.inf)
    make, energy, n = CASES[case]
    fast = simulate(make(), np.full(n, energy), seed=1).energies
    z_mean, z_variance = compare(fast, exact_samples(case))
    assert_agree(z_mean)
    assert_agree(z_variance)


def test_comparison_sees_a_ten_percent_wider_core():
    detector = sampling_detector("electron")
    energies = np.full(1500, 5000.0)
    fast = simulate(detector, energies, seed=1).energies
    wider = simulate(detector, energies, seed=2, method="exact", perturbation={"core_radius_scale": 1.1}).energies
    z_mean, _ = compare(fast, wider)
    assert np.mean(z_mean**2) > 3.0
