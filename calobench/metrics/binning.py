"""The histogram binnings of the CaloChallenge separation powers (arXiv 2410.21611).

* ``etot_einc``: ``linspace(0.5, 1.5, 101)``; dataset 1 per incident energy ``linspace(0.4, 1.4, 21)``,
  for photons from 4096 MeV up ``linspace(0.9, 1.1, 21)``.
* ``e_layer``: 40 log-spaced edges from the threshold to the reference maximum of that layer.
* ``voxel``: 50 log-spaced edges from the threshold to the reference maximum voxel energy.
* ``ec_eta``/``ec_phi``: 100 bins over +-30 mm (datasets 2/3), +-500 mm (dataset 1 layers 12 and 13),
  +-100 mm (other dataset-1 layers); ``width_eta``/``width_phi``: (0, 30), (0, 400), (0, 100) mm.
* ``ec_r``: 100 bins over (0, 42) mm (datasets 2/3), (0, 1500) (dataset 1 layers 12-14), (0, 500)
  (other dataset-1 layers); ``width_r``: (0, 20), (0, 1500), (0, 500) mm.
* ``sparsity``: ``linspace(0, 1, 21)``.

Log-spaced edges are ``np.logspace(log10(low), log10(high), n)`` as in the challenge's code, with
``high`` (the reference maximum) in the type of the values it is the maximum of: the official script
takes ``log10`` of a float32 maximum in float32 for a float32 file, which moves every edge in its last
bits (a rounding artefact kept on purpose, so that the histograms are filled exactly as the
published ones; an edge can move past a value that lies on it). Dataset 1 per incident energy: the
showers with ``2^k <= E_inc < 2^(k+1)`` MeV for k = 8 ... 22, the official script's selection.

calobench's own choices where the protocol says nothing (documented, not published):

* CaloGAN geometry (480 mm x 480 mm face): centres over +-240 mm, widths (0, 240) mm,
  ``ec_r`` (0, 340) mm (the corner distance), ``width_r`` (0, 240) mm.
* any other (custom XML) geometry: centres over +-r_max of the layer, widths, ``ec_r`` and
  ``width_r`` over (0, r_max) with r_max the layer's outer radial edge.
* a geometry without a readout threshold (threshold 0): the log-spaced binnings start at the
  smallest positive reference value instead of the threshold.
"""

from __future__ import annotations

import math

import numpy as np

from calobench.geometry import Geometry

N_LINEAR_BINS = 100
E_LAYER_EDGES = 40
VOXEL_EDGES = 50
ETOT_EINC_EDGES = np.linspace(0.5, 1.5, 101)
DS1_PER_ENERGY_EDGES = np.linspace(0.4, 1.4, 21)
DS1_PHOTON_HIGH_ENERGY_EDGES = np.linspace(0.9, 1.1, 21)
#: Dataset-1 photons use the narrow per-energy binning from this incident energy (MeV) up.
DS1_PHOTON_NARROW_FROM_MEV = 4096.0
SPARSITY_EDGES = np.linspace(0.0, 1.0, 21)

#: Per-layer features histogrammed with linear ranges.
LINEAR_FEATURES: tuple[str, ...] = ("ec_eta", "ec_phi", "width_eta", "width_phi", "ec_r", "width_r")
#: All per-layer features that get a separation power, in report order.
LAYER_FEATURES: tuple[str, ...] = (
    "e_layer",
    "ec_eta",
    "ec_phi",
    "width_eta",
    "width_phi",
    "ec_r",
    "width_r",
    "sparsity",
)

_DS23 = {"centre": 30.0, "width": 30.0, "ec_r": 42.0, "width_r": 20.0}
_DS1_INNER = {"centre": 100.0, "width": 100.0, "ec_r": 500.0, "width_r": 500.0}
_DS1_OUTER = {"centre": 500.0, "width": 400.0, "ec_r": 1500.0, "width_r": 1500.0}
_CALOGAN = {"centre": 240.0, "width": 240.0, "ec_r": 340.0, "width_r": 240.0}


def is_dataset_1(geometry: Geometry) -> bool:
    return geometry.name in ("ds1-photons", "ds1-pions")


def _ranges(geometry: Geometry, layer_id: int, feature: str) -> dict[str, float]:
    if geometry.name in ("ds2", "ds3"):
        return _DS23
    if is_dataset_1(geometry):
        outer = layer_id in ((12, 13) if feature in ("ec_eta", "ec_phi", "width_eta", "width_phi") else (12, 13, 14))
        return _DS1_OUTER if outer else _DS1_INNER
    if geometry.kind == "cartesian":
        return _CALOGAN
    layer = geometry.layers[geometry.layer_index(layer_id)]
    r_max = float(layer.r_edges[-1]) if layer.r_edges else 1.0
    return {"centre": r_max, "width": r_max, "ec_r": r_max, "width_r": r_max}


def linear_edges(geometry: Geometry, feature: str, layer_id: int) -> np.ndarray:
    """Edges (101) of a centre or width feature of one layer."""
    ranges = _ranges(geometry, layer_id, feature)
    if feature in ("ec_eta", "ec_phi"):
        return np.linspace(-ranges["centre"], ranges["centre"], N_LINEAR_BINS + 1)
    if feature in ("width_eta", "width_phi"):
        return np.linspace(0.0, ranges["width"], N_LINEAR_BINS + 1)
    if feature in ("ec_r", "width_r"):
        return np.linspace(0.0, ranges[feature], N_LINEAR_BINS + 1)
    raise ValueError(f"{feature!r} is not a linearly binned feature; expected one of {LINEAR_FEATURES}")


def log_edges(low: float, high: "float | np.floating", n_edges: int) -> np.ndarray | None:
    """``np.logspace(log10(low), log10(high), n_edges)``, or None if the range is empty.

    ``high`` keeps its numpy type: a float32 maximum gives a float32 ``log10`` (official)."""
    if not (low > 0 and math.isfinite(high) and high > low):
        return None
    return np.logspace(np.log10(low), np.log10(high), n_edges)


def typed_max(values: np.ndarray, dtype: "np.dtype | str") -> np.floating:
    """The maximum of ``values`` as a scalar of ``dtype`` (the type the official script holds it in)."""
    return np.asarray(values).max().astype(dtype)


def lower_log_edge(threshold: float, reference_values: np.ndarray) -> float:
    """The threshold, or (threshold 0) the smallest positive reference value."""
    if threshold > 0:
        return float(threshold)
    positive = reference_values[reference_values > 0]
    return float(positive.min()) if positive.size else math.nan


def e_layer_edges(
    threshold: float, reference_layer_energy: np.ndarray, dtype: "np.dtype | str" = "float64"
) -> np.ndarray | None:
    """40 log-spaced edges from the threshold to the reference maximum of the layer, that maximum in
    ``dtype`` (the voxels' type: the official script sums the layer in it); None if the layer never
    holds more than the threshold in the reference."""
    low = lower_log_edge(threshold, reference_layer_energy)
    if not reference_layer_energy.size:
        return None
    return log_edges(low, typed_max(reference_layer_energy, dtype), E_LAYER_EDGES)


def voxel_edges(
    threshold: float,
    reference_voxel_max: "float | np.floating",
    reference_positive_min: float,
    dtype: "np.dtype | str" = "float64",
) -> np.ndarray | None:
    """50 log-spaced edges from the threshold (or the smallest positive voxel) to the reference
    maximum, that maximum in ``dtype`` (the voxels' type)."""
    low = float(threshold) if threshold > 0 else reference_positive_min
    return log_edges(low, np.dtype(dtype).type(reference_voxel_max), VOXEL_EDGES)


#: Dataset 1 per incident energy: the official ranges ``[2^k, 2^(k+1))`` MeV, k = 8 ... 22.
DS1_ENERGY_RANGES: tuple[float, ...] = tuple(float(e) for e in 2 ** np.linspace(8, 23, 16))


def per_energy_edges(geometry: Geometry, incident_energy_mev: float) -> np.ndarray:
    """Dataset-1 binning of E_tot / E_inc at one discrete incident energy."""
    if geometry.name == "ds1-photons" and incident_energy_mev >= DS1_PHOTON_NARROW_FROM_MEV:
        return DS1_PHOTON_HIGH_ENERGY_EDGES
    return DS1_PER_ENERGY_EDGES
