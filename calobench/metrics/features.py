"""High-level shower features, exactly as defined by the CaloChallenge protocol (arXiv 2410.21611).

Per shower, after zeroing voxels below the data set's readout threshold (1 MeV for dataset 1,
0.5 keV / 0.033 = 15.15 keV for datasets 2 and 3):

* ``E_tot`` = sum of all voxels, ``E_layer[l]`` = sum over layer l;
* centres of energy ``EC_x = sum(x E) / (sum(E) + eps)`` and widths
  ``width_x = sqrt(max(sum(x^2 E) / (sum(E) + eps) - EC_x^2, 0))`` per layer, with eps = 1e-16,
  for x = eta, phi (only layers binned in angle) and x = r (all layers), voxel centres from the
  geometry (mm);
* ``sparsity[l]`` = fraction of the layer's voxels that are zero.

Sums run in float64. The functions work on one chunk at a time so that files of any size stream
in bounded memory; :meth:`HighLevelFeatures.concatenate` joins chunks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from calobench.geometry import Geometry
from calobench.showers import Showers

EPS = 1e-16
#: Offset inside the logarithms of the high-level vector (MeV), and its length scale (mm).
LOG_EPS = 1e-8
LENGTH_SCALE_MM = 100.0


@dataclass
class HighLevelFeatures:
    """Per-shower high-level features of N showers.

    Per-layer arrays have one column per layer in ``layer_ids`` order; the eta/phi arrays one column
    per layer in ``angular_layer_ids`` (the layers binned in angle).
    """

    layer_ids: tuple[int, ...]
    angular_layer_ids: tuple[int, ...]
    e_inc: np.ndarray  # (N,) MeV
    e_tot: np.ndarray  # (N,) MeV
    e_layer: np.ndarray  # (N, L) MeV
    ec_eta: np.ndarray  # (N, La) mm
    ec_phi: np.ndarray  # (N, La) mm
    width_eta: np.ndarray  # (N, La) mm
    width_phi: np.ndarray  # (N, La) mm
    ec_r: np.ndarray  # (N, L) mm
    width_r: np.ndarray  # (N, L) mm
    sparsity: np.ndarray  # (N, L) fraction of zero voxels

    PER_SHOWER: ClassVar[tuple[str, ...]] = (
        "e_inc",
        "e_tot",
        "e_layer",
        "ec_eta",
        "ec_phi",
        "width_eta",
        "width_phi",
        "ec_r",
        "width_r",
        "sparsity",
    )

    def __len__(self) -> int:
        return len(self.e_tot)

    def layer_columns(self, feature: str) -> tuple[int, ...]:
        """The layer ids of the columns of a per-layer feature."""
        return self.angular_layer_ids if feature in ("ec_eta", "ec_phi", "width_eta", "width_phi") else self.layer_ids

    @property
    def etot_over_einc(self) -> np.ndarray:
        return self.e_tot / self.e_inc

    def subset(self, index: np.ndarray | slice) -> "HighLevelFeatures":
        return HighLevelFeatures(
            self.layer_ids, self.angular_layer_ids, **{name: getattr(self, name)[index] for name in self.PER_SHOWER}
        )

    @classmethod
    def concatenate(cls, parts: Sequence["HighLevelFeatures"]) -> "HighLevelFeatures":
        if not parts:
            raise ValueError("no feature chunks to concatenate")
        first = parts[0]
        return cls(
            first.layer_ids,
            first.angular_layer_ids,
            **{name: np.concatenate([getattr(p, name) for p in parts]) for name in cls.PER_SHOWER},
        )


def apply_threshold(energies: np.ndarray, threshold: float) -> np.ndarray:
    """Copy of ``energies`` in float64 with voxels below ``threshold`` (MeV) set to zero."""
    out = np.array(energies, dtype=np.float64, copy=True)
    if threshold > 0:
        out[out < threshold] = 0.0
    return out


def compute_features(showers: Showers, threshold: float | None = None) -> HighLevelFeatures:
    """High-level features of one chunk of showers (threshold defaults to the geometry's).

    Works layer by layer on float64 copies of one layer's block (never of the whole chunk). The
    energy-weighted sums are matrix-vector products (BLAS gemv): a skinny matrix-matrix product is
    many times slower with multi-threaded OpenBLAS.
    """
    geometry: Geometry = showers.geometry
    if threshold is None:
        threshold = geometry.threshold or 0.0
    energies = showers.energies
    n = len(energies)
    angular = tuple(layer.id for layer in geometry.layers if geometry.binned_in_angle(layer.id))
    n_layers, n_angular = geometry.n_layers, len(angular)
    e_layer = np.empty((n, n_layers))
    ec_r, width_r, sparsity = (np.empty((n, n_layers)) for _ in range(3))
    ec_eta, ec_phi, width_eta, width_phi = (np.empty((n, n_angular)) for _ in range(4))
    column = 0
    for index, (layer, block) in enumerate(zip(geometry.layers, geometry.layer_slices)):
        layer_energy = apply_threshold(energies[:, block], threshold)
        with_angle = layer.id in angular
        sums = [layer_energy @ weights for weights in _moment_rows(geometry, index, with_angle)]
        total = sums[0]
        e_layer[:, index] = total
        sparsity[:, index] = (layer.n_voxels - np.count_nonzero(layer_energy, axis=1)) / layer.n_voxels
        ec_r[:, index], width_r[:, index] = _centre_and_width(sums[1], sums[2], total)
        if with_angle:
            ec_eta[:, column], width_eta[:, column] = _centre_and_width(sums[3], sums[4], total)
            ec_phi[:, column], width_phi[:, column] = _centre_and_width(sums[5], sums[6], total)
            column += 1
    return HighLevelFeatures(
        layer_ids=geometry.layer_ids,
        angular_layer_ids=angular,
        e_inc=np.asarray(showers.incident_energies, dtype=np.float64),
        e_tot=e_layer.sum(axis=1),
        e_layer=e_layer,
        ec_eta=ec_eta,
        ec_phi=ec_phi,
        width_eta=width_eta,
        width_phi=width_phi,
        ec_r=ec_r,
        width_r=width_r,
        sparsity=sparsity,
    )


def _moment_rows(geometry: Geometry, index: int, with_angle: bool) -> np.ndarray:
    """Rows 1, r, r^2 (and eta, eta^2, phi, phi^2) over one layer's voxels, shape (3 or 7, n_voxels)."""
    key = ("feature-moments", index, with_angle)
    if key not in geometry._cache:
        block = geometry.layer_slices[index]
        r, eta, phi = geometry.voxel_r[block], geometry.voxel_eta[block], geometry.voxel_phi[block]
        columns = [np.ones_like(r), r, r * r] + ([eta, eta * eta, phi, phi * phi] if with_angle else [])
        matrix = np.stack(columns, axis=0)
        matrix.setflags(write=False)
        geometry._cache[key] = matrix
    return geometry._cache[key]


def _centre_and_width(first: np.ndarray, second: np.ndarray, total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Energy-weighted mean and standard deviation per shower (protocol definition) from the sums
    ``first`` = sum(x E), ``second`` = sum(x^2 E) and ``total`` = sum(E)."""
    denominator = total + EPS
    centre = first / denominator
    width = np.sqrt(np.maximum(second / denominator - centre * centre, 0.0))
    return centre, width


def high_level_vector(features: HighLevelFeatures) -> np.ndarray:
    """The CaloChallenge high-level feature vector (float64, one row per shower).

    ``[log10 E_inc, log10(E_layer + 1e-8), EC_eta/100, EC_phi/100, width_eta/100, width_phi/100,
    log10(E_tot + 1e-8), sparsity, EC_r/100, width_r/100]`` with energies in MeV and lengths in mm:
    the input of the published high-level classifier, and the vector on which the challenge
    computed FPD and KPD (arXiv 2410.21611). 30 / 46 / 362 columns for DS1 photons / pions / DS2-3.
    """
    return np.concatenate(high_level_columns(features), axis=1)


def high_level_columns(features: HighLevelFeatures) -> list[np.ndarray]:
    """The blocks of :func:`high_level_vector` in protocol order (float64, each (N, k))."""
    scale = LENGTH_SCALE_MM
    return [
        np.log10(features.e_inc)[:, None],
        np.log10(features.e_layer + LOG_EPS),
        features.ec_eta / scale,
        features.ec_phi / scale,
        features.width_eta / scale,
        features.width_phi / scale,
        np.log10(features.e_tot + LOG_EPS)[:, None],
        features.sparsity,
        features.ec_r / scale,
        features.width_r / scale,
    ]


def stream_features(chunks: Iterable[Showers], threshold: float | None = None) -> HighLevelFeatures:
    """Features of a whole file streamed chunk by chunk (only the features are kept in memory)."""
    return HighLevelFeatures.concatenate([compute_features(chunk, threshold) for chunk in chunks])
