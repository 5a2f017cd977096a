"""Tiny shower samples for the BIB-AE plugin's tests (a uniquely named helper module)."""

from __future__ import annotations

import numpy as np

from calobench.showers import Showers
from calobench.testing import random_showers


def tiny_showers(geometry: str = "ds1-photons", n: int = 96, seed: int = 0) -> Showers:
    """Random (unphysical) showers over the CaloChallenge incident-energy range."""
    return random_showers(geometry, n, seed=seed, energy_range_mev=(256.0, 4e6), dtype=np.float32)
