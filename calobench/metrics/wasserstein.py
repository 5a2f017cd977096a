"""1-D Wasserstein distances (earth mover's distance) between the reference and generated
distributions of every high-level feature, per layer.

``W1(u, v) = integral |F_u(x) - F_v(x)| dx`` of the empirical distribution functions
(``scipy.stats.wasserstein_distance``). Values carry the unit of the feature (MeV for energies,
mm for centres and widths, none for E_tot/E_inc and sparsity). The CaloChallenge reports no W1;
these are calobench's per-feature companions of the separation powers, without binning.
"""

from __future__ import annotations

import math

import numpy as np

from calobench.metrics.binning import LAYER_FEATURES
from calobench.metrics.features import HighLevelFeatures


def w1(reference: np.ndarray, generated: np.ndarray) -> float:
    """W1 of two 1-D samples (NaN if either is empty)."""
    from scipy.stats import wasserstein_distance

    reference = np.asarray(reference, dtype=np.float64).reshape(-1)
    generated = np.asarray(generated, dtype=np.float64).reshape(-1)
    if reference.size == 0 or generated.size == 0:
        return math.nan
    return float(wasserstein_distance(reference, generated))


def feature_w1(reference: HighLevelFeatures, generated: HighLevelFeatures) -> dict:
    """``{"etot_einc": float, "e_tot": float, feature: {layer id: float}}`` for every per-layer feature,
    and the same divided by the reference standard deviation under ``"normalized"`` (comparable across
    features; NaN where the reference does not vary)."""
    raw: dict = {
        "etot_einc": w1(reference.etot_over_einc, generated.etot_over_einc),
        "e_tot": w1(reference.e_tot, generated.e_tot),
    }
    normalized: dict = {
        "etot_einc": _normalize(raw["etot_einc"], reference.etot_over_einc),
        "e_tot": _normalize(raw["e_tot"], reference.e_tot),
    }
    for feature in LAYER_FEATURES:
        ref, gen = getattr(reference, feature), getattr(generated, feature)
        layer_ids = reference.layer_columns(feature)
        raw[feature] = {str(layer): w1(ref[:, c], gen[:, c]) for c, layer in enumerate(layer_ids)}
        normalized[feature] = {
            str(layer): _normalize(raw[feature][str(layer)], ref[:, c]) for c, layer in enumerate(layer_ids)
        }
    raw["normalized"] = normalized
    return raw


def _normalize(value: float, reference: np.ndarray) -> float:
    scale = float(np.std(reference)) if reference.size else 0.0
    return value / scale if scale > 0 and math.isfinite(value) else math.nan


def mean_normalized_w1(result: dict) -> float:
    """Mean of the finite normalized W1 values over all features and layers (one summary number)."""
    values: list[float] = []
    for value in result["normalized"].values():
        values.extend(value.values() if isinstance(value, dict) else [value])
    finite = [v for v in values if isinstance(v, float) and math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan
