"""The separation-power histograms, filled chunk by chunk while a sample streams.

Every feature whose CaloChallenge binning is fixed in advance (E_tot / E_inc, per dataset-1
incident-energy range, the centres and widths in eta, phi and r, sparsity;
:mod:`calobench.metrics.binning`) is counted as the chunks go by, so that the separation powers
need no per-shower feature of a file in memory: memory stays flat in the number of showers. The
layer energies, whose binning ends at the reference maximum, are kept per shower in the voxels'
own type (4 bytes per layer and shower for a float32 file: 0.2 kB per dataset-3 shower, against
2.9 kB for every feature in float64) and binned when that maximum is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from calobench.geometry import Geometry
from calobench.metrics.binning import (
    DS1_ENERGY_RANGES,
    ETOT_EINC_EDGES,
    LAYER_FEATURES,
    SPARSITY_EDGES,
    is_dataset_1,
    linear_edges,
    per_energy_edges,
)
from calobench.metrics.features import HighLevelFeatures
from calobench.metrics.separation import histogram_counts

#: The per-layer features with a fixed binning (all but E_layer).
FIXED_LAYER_FEATURES: tuple[str, ...] = tuple(f for f in LAYER_FEATURES if f != "e_layer")


def fixed_edges(geometry: Geometry, feature: str, layer_id: int) -> np.ndarray:
    """The binning of a per-layer feature other than E_layer."""
    return SPARSITY_EDGES if feature == "sparsity" else linear_edges(geometry, feature, layer_id)


def grid_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``np.histogram`` of every column of ``values`` (N, C) on its own evenly spaced ``edges``
    (C, n + 1), in one pass: counts (C, n) with numpy's semantics (bins closed on the left, the last
    also on the right, values outside or NaN dropped). The bin is first found arithmetically, then
    corrected against the edges themselves, so that a value on an edge is counted where numpy counts
    it."""
    n_columns, n_bins = edges.shape[0], edges.shape[1] - 1
    start, stop = edges[:, 0], edges[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        guess = np.floor((values - start) * (n_bins / (stop - start)))
    guess = np.clip(np.nan_to_num(guess, nan=0.0), 0, n_bins - 1).astype(np.int64)
    flat = edges.ravel()
    base = np.arange(n_columns) * (n_bins + 1)
    index = guess - (values < flat[base + guess]) + (values >= flat[base + guess + 1])
    index = np.where(values == stop, n_bins - 1, index)  # the last bin is closed on the right
    inside = (values >= start) & (values <= stop) & (index >= 0) & (index < n_bins)
    keys = (np.arange(n_columns) * n_bins + index)[inside]
    return np.bincount(keys, minlength=n_columns * n_bins).reshape(n_columns, n_bins)


@dataclass
class FeatureHistograms:
    """Counts of one sample on the fixed binnings, and its layer energies (see the module docstring)."""

    geometry: Geometry
    etot_einc: np.ndarray = field(init=False)
    per_energy: dict[float, np.ndarray] = field(init=False)  # DS1: lower end of the range -> counts
    showers_per_energy: dict[float, int] = field(init=False)
    layers: dict[str, np.ndarray] = field(init=False)  # feature -> counts (layer columns, bins)
    edges: dict[str, np.ndarray] = field(init=False)  # feature -> edges (layer columns, bins + 1)
    e_layer_parts: list[np.ndarray] = field(init=False)
    voxel_dtype: str = "float64"

    def __post_init__(self) -> None:
        self.etot_einc = np.zeros(len(ETOT_EINC_EDGES) - 1, dtype=np.int64)
        self.per_energy, self.showers_per_energy = {}, {}
        self.layers, self.edges = {}, {}
        angular = [layer.id for layer in self.geometry.layers if self.geometry.binned_in_angle(layer.id)]
        for feature in FIXED_LAYER_FEATURES:
            ids = angular if feature in ("ec_eta", "ec_phi", "width_eta", "width_phi") else self.geometry.layer_ids
            edges = np.stack([fixed_edges(self.geometry, feature, i) for i in ids]) if ids else np.zeros((0, 2))
            self.edges[feature] = edges
            self.layers[feature] = np.zeros((len(ids), edges.shape[1] - 1), dtype=np.int64)
        self.e_layer_parts = []

    def add(self, features: HighLevelFeatures) -> None:
        """Count one chunk's features."""
        ratio = features.etot_over_einc
        self.etot_einc += histogram_counts(ratio, ETOT_EINC_EDGES)
        if is_dataset_1(self.geometry):
            for low, high in zip(DS1_ENERGY_RANGES[:-1], DS1_ENERGY_RANGES[1:]):
                rows = (features.e_inc >= low) & (features.e_inc < high)
                n = int(np.count_nonzero(rows))
                if n:
                    counts = histogram_counts(ratio[rows], per_energy_edges(self.geometry, low))
                    self.per_energy[low] = self.per_energy.get(low, 0) + counts
                    self.showers_per_energy[low] = self.showers_per_energy.get(low, 0) + n
        for feature, counts in self.layers.items():
            if counts.size:
                counts += grid_counts(getattr(features, feature), self.edges[feature])
        self.e_layer_parts.append(features.e_layer.astype(features.voxel_dtype))
        self.voxel_dtype = features.voxel_dtype

    def counts(self, feature: str, layer_id: int) -> np.ndarray:
        """Counts of a per-layer feature with a fixed binning in one layer."""
        columns = self.geometry.layer_ids
        if feature in ("ec_eta", "ec_phi", "width_eta", "width_phi"):
            columns = tuple(i for i in columns if self.geometry.binned_in_angle(i))
        return self.layers[feature][columns.index(layer_id)]

    @property
    def e_layer(self) -> np.ndarray:
        """The layer energies of every shower (N, L), in the voxels' type."""
        if len(self.e_layer_parts) != 1:
            parts = self.e_layer_parts or [np.zeros((0, self.geometry.n_layers), dtype=self.voxel_dtype)]
            self.e_layer_parts = [np.concatenate(parts)]
        return self.e_layer_parts[0]
