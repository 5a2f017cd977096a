"""Tiny shower samples for the CaloMan plugin's tests (a uniquely named helper module, so that it
never collides with another test directory's ``conftest``)."""

from __future__ import annotations

import numpy as np

from calobench.geometry import builtin_geometry
from calobench.showers import Showers
from calobench.testing import random_showers


def tiny_showers(geometry: str = "ds1-photons", n: int = 96, seed: int = 0) -> Showers:
    """Random (unphysical) showers over the CaloChallenge DS1 incident-energy range."""
    return random_showers(geometry, n, seed=seed, energy_range_mev=(256.0, 4e6), dtype=np.float32)


def manifold_showers(dimension: int, n: int, seed: int = 0, geometry: str = "ds1-photons") -> Showers:
    """Showers on a smooth ``dimension``-dimensional manifold: log10 of every voxel energy is a fixed
    smooth (random two-layer network) function of ``dimension`` uniform coordinates, all voxels
    well above the readout threshold (so the metric's log transform is smooth on them)."""
    geo = builtin_geometry(geometry)
    rng = np.random.default_rng(seed)
    coordinates = rng.uniform(-1.0, 1.0, (n, dimension))
    hidden = np.tanh(coordinates @ rng.normal(0.0, 1.5, (dimension, 64)) + rng.normal(0.0, 0.5, 64))
    log_energy = 1.5 + 0.5 * np.tanh(hidden @ rng.normal(0.0, 0.4, (64, geo.n_voxels)))
    energies = (10.0**log_energy).astype(np.float32)
    incident = np.full(n, 65536.0)
    return Showers(incident, energies, geo)
