"""Energy response and resolution per incident-energy bin, and the layer-energy correlation matrix.

* Response and resolution: the mean and the standard deviation of E_tot / E_inc of the showers in
  each incident-energy bin (relative resolution = std / mean). Bins: the discrete incident
  energies when the reference has at most :data:`MAX_DISCRETE` distinct values (dataset 1:
  2^8 ... 2^22 MeV), else :data:`N_LOG_BINS` log-spaced bins over the reference range.
* Correlations: the Pearson correlation matrix of the layer energies (arXiv 2410.21611 lists it
  among the high-level distributions); ``null`` where a layer's energy does not vary.
"""

from __future__ import annotations

import math

import numpy as np

from calobench.metrics.features import HighLevelFeatures

MAX_DISCRETE = 30
N_LOG_BINS = 10
#: Relative tolerance when matching generated incident energies to discrete reference values.
DISCRETE_RTOL = 1e-6


def discrete_energies(incident: np.ndarray) -> np.ndarray | None:
    """The distinct incident energies (MeV) if there are at most :data:`MAX_DISCRETE`, else None."""
    values = np.unique(np.asarray(incident, dtype=np.float64))
    return values if len(values) <= MAX_DISCRETE else None


def match_discrete(incident: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index into ``values`` of every incident energy, -1 where none matches within 1e-6."""
    incident = np.asarray(incident, dtype=np.float64)
    nearest = np.clip(np.searchsorted(values, incident), 0, len(values) - 1)
    lower = np.clip(nearest - 1, 0, len(values) - 1)
    pick = np.where(np.abs(values[lower] - incident) < np.abs(values[nearest] - incident), lower, nearest)
    ok = np.abs(values[pick] - incident) <= DISCRETE_RTOL * values[pick]
    return np.where(ok, pick, -1)


def _stats(ratio: np.ndarray) -> dict:
    n = int(ratio.size)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "resolution": None}
    mean = float(ratio.mean())
    std = float(ratio.std(ddof=1)) if n > 1 else math.nan
    return {"n": n, "mean": mean, "std": _finite(std), "resolution": _finite(std / mean if mean else math.nan)}


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def energy_response(reference: HighLevelFeatures, generated: HighLevelFeatures) -> dict:
    """``{"binning": "discrete" | "log", "bins": [{"e_low", "e_high", "reference": {n, mean, std,
    resolution}, "generated": {...}}]}`` (energies in MeV; discrete bins have e_low == e_high)."""
    ref_ratio, gen_ratio = reference.etot_over_einc, generated.etot_over_einc
    values = discrete_energies(reference.e_inc)
    bins = []
    if values is not None:
        ref_index, gen_index = match_discrete(reference.e_inc, values), match_discrete(generated.e_inc, values)
        for i, value in enumerate(values):
            bins.append(
                {
                    "e_low": float(value),
                    "e_high": float(value),
                    "reference": _stats(ref_ratio[ref_index == i]),
                    "generated": _stats(gen_ratio[gen_index == i]),
                }
            )
        return {"binning": "discrete", "bins": bins}
    low, high = float(reference.e_inc.min()), float(reference.e_inc.max())
    edges = np.logspace(np.log10(low), np.log10(high), N_LOG_BINS + 1)
    ref_index = np.clip(np.searchsorted(edges, reference.e_inc, side="right") - 1, 0, N_LOG_BINS - 1)
    gen_index = np.searchsorted(edges, generated.e_inc, side="right") - 1
    gen_index[generated.e_inc == high] = N_LOG_BINS - 1
    for i in range(N_LOG_BINS):
        bins.append(
            {
                "e_low": float(edges[i]),
                "e_high": float(edges[i + 1]),
                "reference": _stats(ref_ratio[ref_index == i]),
                "generated": _stats(gen_ratio[gen_index == i]),
            }
        )
    return {"binning": "log", "bins": bins}


def weighted_shift(bins: list[dict], key: str) -> dict[str, float | None]:
    """Inverse-variance weighted mean over bins of the relative shift ``generated / reference - 1``
    of the response (``key="mean"``) or the resolution (``key="resolution"``), and its error.

    Per bin the error of the mean is ``std / sqrt(n)``, that of a standard deviation
    ``std / sqrt(2 (n - 1))`` (Gaussian approximation); bins with fewer than 2 showers in either
    sample are skipped.
    """
    shifts, weights = [], []
    for entry in bins:
        ref, gen = entry["reference"], entry["generated"]
        if ref["n"] < 2 or gen["n"] < 2 or not ref.get(key) or gen.get(key) is None:
            continue
        if key == "mean":
            rel_ref = ref["std"] / math.sqrt(ref["n"]) / ref["mean"]
            rel_gen = gen["std"] / math.sqrt(gen["n"]) / gen["mean"]
        else:
            rel_ref = 1.0 / math.sqrt(2.0 * (ref["n"] - 1))
            rel_gen = 1.0 / math.sqrt(2.0 * (gen["n"] - 1))
        ratio = gen[key] / ref[key]
        variance = ratio * ratio * (rel_ref**2 + rel_gen**2)
        if variance > 0 and math.isfinite(variance):
            shifts.append(ratio - 1.0)
            weights.append(1.0 / variance)
    if not weights:
        return {"value": None, "error": None}
    total = float(np.sum(weights))
    return {"value": float(np.dot(shifts, weights) / total), "error": float(1.0 / math.sqrt(total))}


def correlation_matrix(layer_energies: np.ndarray) -> np.ndarray:
    """Pearson correlation of the columns (NaN for a column that does not vary)."""
    x = np.asarray(layer_energies, dtype=np.float64)
    centred = x - x.mean(axis=0)
    norms = np.sqrt((centred * centred).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        matrix = (centred.T @ centred) / np.outer(norms, norms)
    matrix[~np.isfinite(matrix)] = np.nan
    return np.clip(matrix, -1.0, 1.0)


def _json_matrix(matrix: np.ndarray) -> list[list[float | None]]:
    return [[_finite(float(v)) for v in row] for row in matrix]


def layer_correlation(reference: HighLevelFeatures, generated: HighLevelFeatures) -> dict:
    """``{"layers": [...], "reference": matrix, "generated": matrix, "max_abs_difference": float,
    "mean_abs_difference": float}`` (matrices as nested lists, null where undefined)."""
    ref = correlation_matrix(reference.e_layer)
    gen = correlation_matrix(generated.e_layer)
    diff = np.abs(ref - gen)
    off_diagonal = diff[~np.eye(len(diff), dtype=bool)]
    finite = off_diagonal[np.isfinite(off_diagonal)]
    return {
        "layers": [str(layer) for layer in reference.layer_ids],
        "reference": _json_matrix(ref),
        "generated": _json_matrix(gen),
        "max_abs_difference": float(finite.max()) if finite.size else None,
        "mean_abs_difference": float(finite.mean()) if finite.size else None,
    }
