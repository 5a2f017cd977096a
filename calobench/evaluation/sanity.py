"""Warnings about a generated sample that cannot be compared with its reference as it is.

Two mistakes make every metric meaningless without making any of them fail:

* the generated showers were drawn for other incident energies than the reference's (a narrower
  range, another spectrum): the comparison then measures the difference of the spectra. A
  two-sample Kolmogorov-Smirnov test on E_inc (scipy) flags it;
* the voxel energies are in GeV while the CaloChallenge files (and calobench) use MeV: E_tot/E_inc
  is then about 1000 times smaller than the reference's.

:func:`warn_about_inputs` logs a warning for each; it reads all incident energies of files of up to
:data:`MAX_FULL_READ` showers, else evenly spaced windows, and the voxels of a few evenly spaced
windows only, so it stays cheap and bounded in memory for any file.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger("calobench.evaluation")

#: Below this Kolmogorov-Smirnov p-value the incident-energy distributions are reported as different.
KS_P_VALUE = 1e-3
#: Files with at most this many showers have all their incident energies compared.
MAX_FULL_READ = 2**22
#: Windows (and showers per window) read evenly spaced through a file for the spot checks.
WINDOWS, WINDOW_SHOWERS = 64, 32
#: E_tot/E_inc this many times below the reference's is taken as voxel energies in GeV.
GEV_FACTOR = 300.0


def _windows(source: Any) -> list[Any]:
    n = source.n_showers
    starts = np.unique(np.linspace(0, max(n - WINDOW_SHOWERS, 0), WINDOWS).astype(np.int64))
    return [source.read(int(a), int(a) + WINDOW_SHOWERS, validate=False) for a in starts]


def _incident(source: Any, windows: list[Any]) -> np.ndarray:
    if source.n_showers <= MAX_FULL_READ:
        return np.asarray(source.incident_energies(), dtype=np.float64)
    return np.concatenate([w.incident_energies for w in windows])


def _response(windows: list[Any]) -> float:
    """The median E_tot / E_inc of the showers read."""
    ratios = [w.energies.sum(axis=1, dtype=np.float64) / w.incident_energies for w in windows]
    return float(np.median(np.concatenate(ratios)))


def _mev(value: float) -> str:
    return f"{value / 1e3:.3g} GeV" if value >= 1e3 else f"{value:.3g} MeV"


def warn_about_inputs(reference: Any, generated: Any) -> list[str]:
    """Log (and return) a warning for each problem of the module docstring; opened shower files
    (:func:`calobench.formats.open_showers`) are read, anything else is skipped."""
    if not all(hasattr(s, "incident_energies") and hasattr(s, "read") for s in (reference, generated)):
        return []
    from scipy.stats import ks_2samp

    warnings = []
    ref_windows, gen_windows = _windows(reference), _windows(generated)
    ref_e, gen_e = _incident(reference, ref_windows), _incident(generated, gen_windows)
    p_value = float(ks_2samp(ref_e, gen_e).pvalue)
    if p_value < KS_P_VALUE:
        warnings.append(
            f"the generated incident energies ({_mev(gen_e.min())} - {_mev(gen_e.max())}, median "
            f"{_mev(float(np.median(gen_e)))}) are not distributed like the reference's ({_mev(ref_e.min())} - "
            f"{_mev(ref_e.max())}, median {_mev(float(np.median(ref_e)))}; two-sample Kolmogorov-Smirnov p = "
            f"{p_value:.2g}): every metric then also measures the difference of the spectra; sample with the "
            "reference's energies (calobench sample --energies-from REFERENCE)"
        )
    ref_response, gen_response = _response(ref_windows), _response(gen_windows)
    if ref_response > 0 and 0 < gen_response < ref_response / GEV_FACTOR:
        warnings.append(
            f"the generated voxel energies look like GeV: the median E_tot/E_inc is {gen_response:.3g}, "
            f"{ref_response / gen_response:.0f} times below the reference's {ref_response:.3g}; calobench and "
            "the CaloChallenge files use MeV (multiply the voxel energies by 1000)"
        )
    for warning in warnings:
        log.warning("warning: %s", warning)
    return warnings
