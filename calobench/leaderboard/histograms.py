"""Binned feature distributions stored in result files, so that the leaderboard page can overlay every
model on the reference without reading a shower file again.

The binnings are the separation-power binnings of the CaloChallenge protocol
(:mod:`calobench.metrics.binning`), fixed by the reference, so every model of a suite shares them.
Large geometries show a few evenly spaced layers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from calobench.formats import open_showers
from calobench.metrics.binning import ETOT_EINC_EDGES, SPARSITY_EDGES, e_layer_edges, linear_edges
from calobench.metrics.features import HighLevelFeatures, stream_features
from calobench.metrics.separation import histogram_counts

#: At most this many layers per per-layer feature.
MAX_LAYERS = 5


def shown_layers(layer_ids: tuple[int, ...], limit: int = MAX_LAYERS) -> list[int]:
    if len(layer_ids) <= limit:
        return list(layer_ids)
    positions = np.linspace(0, len(layer_ids) - 1, limit).round().astype(int)
    return [layer_ids[i] for i in positions]


def _features(source: Any, threshold: float | None) -> tuple[HighLevelFeatures, Any]:
    with open_showers(source) as handle:
        geometry = handle.geometry
        return stream_features(
            handle.iter_chunks(), threshold if threshold is not None else geometry.threshold
        ), geometry


def _entry(edges: np.ndarray, reference: np.ndarray, generated: np.ndarray, log_x: bool = False) -> dict[str, Any]:
    return {
        "edges": [float(e) for e in edges],
        "reference": histogram_counts(reference, edges).tolist(),
        "generated": histogram_counts(generated, edges).tolist(),
        "log_x": log_x,
    }


def leaderboard_histograms(generated: str | Path, reference: Any, threshold: float | None = None) -> dict[str, Any]:
    """Counts of E_tot/E_inc, E_layer, EC_eta, width_eta and sparsity (a few layers each)."""
    ref, geometry = _features(reference if isinstance(reference, (str, Path)) else list(reference), threshold)
    gen, _ = _features(generated, threshold)
    threshold = threshold if threshold is not None else (geometry.threshold or 0.0)
    out = {"E_tot / E_inc": _entry(ETOT_EINC_EDGES, ref.etot_over_einc, gen.etot_over_einc)}
    for layer_id in shown_layers(ref.layer_ids):
        column = ref.layer_ids.index(layer_id)
        edges = e_layer_edges(threshold, ref.e_layer[:, column])
        if edges is not None:
            out[f"E_layer {layer_id} [MeV]"] = _entry(edges, ref.e_layer[:, column], gen.e_layer[:, column], log_x=True)
        out[f"sparsity layer {layer_id}"] = _entry(SPARSITY_EDGES, ref.sparsity[:, column], gen.sparsity[:, column])
    for layer_id in shown_layers(ref.angular_layer_ids):
        column = ref.angular_layer_ids.index(layer_id)
        for feature, label in (("ec_eta", "EC_eta"), ("width_eta", "width_eta")):
            edges = linear_edges(geometry, feature, layer_id)
            out[f"{label} layer {layer_id} [mm]"] = _entry(
                edges, getattr(ref, feature)[:, column], getattr(gen, feature)[:, column]
            )
    return out
