"""High-level shower features, exactly as the CaloChallenge evaluation computes them (arXiv 2410.21611;
CaloChallenge/homepage ``code/HighLevelFeatures.py`` and ``code/evaluate.py``), rounding included.

Per shower, after zeroing voxels below the data set's readout threshold (1 MeV for dataset 1,
0.5 keV / 0.033 = 15.15 keV for datasets 2 and 3):

* ``E_tot`` = sum of all voxels, ``E_layer[l]`` = sum over layer l;
* centres of energy ``EC_x = sum(x E) / (sum(E) + eps)`` and widths
  ``width_x = sqrt(max(sum(x^2 E) / (sum(E) + eps) - EC_x^2, 0))`` per layer, with eps = 1e-16,
  for x = eta, phi (only layers binned in angle) and x = r (all layers), voxel centres from the
  geometry (mm);
* ``sparsity[l]`` = fraction of the layer's voxels that are zero, computed as
  ``1 - mean(voxels > 0)``.

A feature that lands on a histogram edge falls into the bin its last bit decides, so calobench
follows the official order of operations and types wherever that bit can differ (version 2 of the
features; version 1 summed in float64 and had two differences, found side by side with the official
script: sparsity as ``(n - count) / n`` and centres that are zero up to rounding on the other side of
the edge at 0). These are rounding artefacts, kept on purpose so that every number is comparable with
the published ones:

* the threshold compares each voxel in the file's own type (``x < threshold`` with numpy's rules
  for a Python float: in float32 for a float32 file);
* ``E_tot`` and ``E_layer`` are summed in the file's type (float32 for float32 files) with numpy's
  pairwise summation over each row (the whole row for ``E_tot``, not the sum of the layers), and
  ``E_tot / E_inc`` is divided in the common type of the voxels and the incident energies;
* ``sum(E) + eps`` is formed in the file's type (float32 ``E + 1e-16`` is ``E``, and ``1e-16``
  for an empty layer), the weighted sums ``sum(x E)`` in float64, elementwise products then numpy's
  pairwise sum per row, with the official voxel coordinates
  (:func:`calobench.geometry._cylindrical_centres`);
* sparsity is ``1 - count / n`` (not ``(n - count) / n``).

Speed: the centres and widths come from :mod:`calobench.metrics.moments`, one matrix product per
layer with the values near a histogram edge recomputed the official way: every histogram is filled
exactly as the official script fills it, at a fraction of its cost.

The functions work on one chunk at a time so that files of any size stream in bounded memory;
:meth:`HighLevelFeatures.concatenate` joins chunks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from calobench.geometry import Geometry
from calobench.metrics.moments import MomentPlan, layer_moments, layer_sums
from calobench.showers import Showers

#: Version of the feature definitions (bump on any numerical change); metrics built on the features
#: report it through their own versions.
FEATURES_VERSION = 2
#: Offset inside the logarithms of the high-level vector (MeV), and its length scale (mm).
LOG_EPS = 1e-8
LENGTH_SCALE_MM = 100.0


@dataclass
class HighLevelFeatures:
    """Per-shower high-level features of N showers.

    Per-layer arrays have one column per layer in ``layer_ids`` order; the eta/phi arrays one column
    per layer in ``angular_layer_ids`` (the layers binned in angle). ``e_tot`` and ``e_layer`` hold
    the values summed in ``voxel_dtype`` (the file's voxel type), stored exactly in float64;
    ``incident_dtype`` is the type of the file's incident energies.
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
    voxel_dtype: str = "float64"
    incident_dtype: str = "float64"

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
        """``E_tot / E_inc`` divided in the common type of the voxels and the incident energies, as
        the official script divides them (float32 for a float32 file), returned as float64."""
        return etot_over_einc(self.e_tot, self.e_inc, self.voxel_dtype, self.incident_dtype)

    def subset(self, index: np.ndarray | slice) -> "HighLevelFeatures":
        return HighLevelFeatures(
            self.layer_ids,
            self.angular_layer_ids,
            **{name: getattr(self, name)[index] for name in self.PER_SHOWER},
            voxel_dtype=self.voxel_dtype,
            incident_dtype=self.incident_dtype,
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
            voxel_dtype=str(np.result_type(*[p.voxel_dtype for p in parts])),
            incident_dtype=str(np.result_type(*[p.incident_dtype for p in parts])),
        )


def etot_over_einc(e_tot: np.ndarray, e_inc: np.ndarray, voxel_dtype: str, incident_dtype: str) -> np.ndarray:
    """``E_tot / E_inc`` in ``result_type(voxel_dtype, incident_dtype)`` (official), as float64."""
    ratio = np.asarray(e_tot).astype(voxel_dtype) / np.asarray(e_inc).astype(incident_dtype)
    return ratio.astype(np.float64)


def official_threshold(energies: np.ndarray, threshold: float, copy: bool = True) -> np.ndarray:
    """``energies`` (same type) with the voxels below ``threshold`` MeV set to zero, compared as the
    official script compares them: ``x < threshold`` with ``threshold`` a Python float, i.e. in the
    array's own type (numpy's promotion rules; float32 for a float32 file)."""
    out = np.array(energies, copy=True) if copy else energies
    if threshold > 0:
        np.putmask(out, out < float(threshold), 0)
    return out


def apply_threshold(energies: np.ndarray, threshold: float) -> np.ndarray:
    """Copy of ``energies`` in float64 with voxels below ``threshold`` (MeV, compared in the
    array's own type, see :func:`official_threshold`) set to zero."""
    return official_threshold(energies, threshold).astype(np.float64)


def compute_features(
    showers: Showers, threshold: float | None = None, incident_dtype: "np.dtype | str | None" = None
) -> HighLevelFeatures:
    """High-level features of one chunk of showers (threshold defaults to the geometry's).

    The voxels keep their type (see the module docstring); ``incident_dtype`` is the type the
    incident energies had in their file (default float64: :class:`Showers` holds them in float64).
    """
    geometry: Geometry = showers.geometry
    if threshold is None:
        threshold = geometry.threshold or 0.0
    energies = showers.energies
    if threshold > 0:
        energies = official_threshold(energies, threshold)
    return features_of_thresholded(energies, showers.incident_energies, geometry, incident_dtype)


def features_of_thresholded(
    energies: np.ndarray,
    incident_energies: np.ndarray,
    geometry: Geometry,
    incident_dtype: "np.dtype | str | None" = None,
    above_zero: np.ndarray | None = None,
) -> HighLevelFeatures:
    """The features of voxels already thresholded (any float type, kept), see the module docstring.

    ``above_zero`` is ``energies > 0`` when the caller has it already."""
    n = len(energies)
    plan = MomentPlan.of(geometry)
    if above_zero is None:
        above_zero = energies > 0
    totals = np.empty((n, geometry.n_layers), dtype=energies.dtype)
    counts = np.empty((n, geometry.n_layers), dtype=np.int64)
    for index, block in enumerate(geometry.layer_slices):
        totals[:, index] = energies[:, block].sum(axis=1)  # the voxels' type, pairwise per row (official)
        counts[:, index] = np.count_nonzero(above_zero[:, block], axis=1)
    sparsity = 1.0 - counts / plan.n_voxels  # 1 - mean(E > 0), as the official code forms it
    sums = layer_sums(energies, plan)
    moments = layer_moments(energies, totals, sums, plan)
    empty = np.empty((n, 0))
    ec_eta, width_eta = moments.get("eta", (empty, empty))
    ec_phi, width_phi = moments.get("phi", (empty, empty))
    return HighLevelFeatures(
        layer_ids=geometry.layer_ids,
        angular_layer_ids=tuple(layer.id for layer in geometry.layers if geometry.binned_in_angle(layer.id)),
        e_inc=np.asarray(incident_energies, dtype=np.float64),
        e_tot=np.asarray(energies.sum(axis=1), dtype=np.float64),  # the whole row, the voxels' type (official)
        e_layer=totals.astype(np.float64),
        ec_eta=ec_eta,
        ec_phi=ec_phi,
        width_eta=width_eta,
        width_phi=width_phi,
        ec_r=moments["r"][0],
        width_r=moments["r"][1],
        sparsity=sparsity,
        voxel_dtype=str(energies.dtype),
        incident_dtype=str(np.dtype(incident_dtype or np.float64)),
    )


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
