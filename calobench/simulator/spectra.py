"""Incident-energy spectra of the synthetic data sets, matching the real sets'.

* CaloChallenge dataset 1 (arXiv 2410.21611): 15 discrete energies 2^8 ... 2^22 MeV. Photons: 10,000
  showers at each energy from 256 MeV to 262 GeV, 5,000 at 524 GeV, 3,000 / 2,000 / 1,000 at 1 / 2 /
  4 TeV (121,000). Pions: the same but 9,800 at 262 GeV (120,800), the counts CaloFlow for the
  CaloChallenge uses when it generates a DS1 pion sample (github.com/Ian-Pang/caloflow-for-calochallenge,
  run_piplus_2023.py, ``generate_to_file``).
* Datasets 2 and 3: log-uniform between 1 GeV and 1 TeV.
* CaloGAN (arXiv 1712.10321): uniform between 1 and 100 GeV.

For other sample sizes the DS1 counts are scaled (largest remainders) and the order is shuffled.
"""

from __future__ import annotations

import numpy as np

from calobench.errors import ConfigError

DS1_ENERGIES_MEV = tuple(float(2**k) for k in range(8, 23))
DS1_PHOTON_COUNTS = (10_000,) * 11 + (5_000, 3_000, 2_000, 1_000)
DS1_PION_COUNTS = (10_000,) * 10 + (9_800, 5_000, 3_000, 2_000, 1_000)
DISCRETE = {"ds1-photons": DS1_PHOTON_COUNTS, "ds1-pions": DS1_PION_COUNTS}
KINDS = ("ds1-photons", "ds1-pions", "log-uniform", "uniform")


def apportion(counts: "tuple[int, ...] | np.ndarray", n: int) -> np.ndarray:
    """Integer counts summing to ``n`` proportional to ``counts`` (largest-remainder method)."""
    weights = np.asarray(counts, dtype=np.float64)
    exact = weights / weights.sum() * n
    result = np.floor(exact).astype(np.int64)
    remainder = n - int(result.sum())
    order = np.argsort(-(exact - result), kind="stable")
    result[order[:remainder]] += 1
    return result


def sample_spectrum(
    kind: str, n: int, rng: np.random.Generator, energy_range_mev: tuple[float, float] = (1e3, 1e6)
) -> np.ndarray:
    """``n`` incident energies (MeV) of a spectrum kind: ``ds1-photons``, ``ds1-pions``,
    ``log-uniform`` or ``uniform`` (the last two between ``energy_range_mev``)."""
    if n < 0:
        raise ConfigError(f"the number of showers must be >= 0, got {n}")
    if kind in DISCRETE:
        energies = np.repeat(DS1_ENERGIES_MEV, apportion(DISCRETE[kind], n))
        return rng.permutation(energies)
    low, high = energy_range_mev
    if kind == "log-uniform":
        return np.exp(rng.uniform(np.log(low), np.log(high), n))
    if kind == "uniform":
        return rng.uniform(low, high, n)
    raise ConfigError(f"unknown incident-energy spectrum {kind!r}; expected one of {KINDS}")


def incident_spectrum(dataset_name: str, n: int, seed: int) -> np.ndarray:
    """``n`` incident energies (MeV, float64) with the spectrum of a synthetic data set, from ``seed``."""
    from calobench.simulator.catalog import card

    data = card(dataset_name)
    kind = data["simulator"]["spectrum"]
    low, high = data["energy_range_mev"]
    return sample_spectrum(kind, int(n), np.random.default_rng(seed), (float(low), float(high)))
