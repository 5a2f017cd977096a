"""Classifier inputs of the CaloChallenge protocol (arXiv 2410.21611, "binary classifier").

All energies are in MeV, as in the CaloChallenge files: the challenge's evaluation code applies
``log10`` to the ``incident_energies`` array as stored in the file, so ``log10 E_inc`` is the
logarithm of the incident energy in MeV and ``log10(E_layer + 1e-8)`` that of the layer energy in
MeV (CaloGAN files store GeV; calobench converts them to MeV on reading, so CaloGAN inputs follow
the same convention). Voxels below the geometry's readout threshold are zeroed first (layer
energies are summed from the thresholded voxels). Labels: reference 1, generated 0, as there.

* ``low``: ``[log10 E_inc, voxel / E_inc]`` (1 + n_voxels inputs);
* ``low_normed``: ``[log10 E_inc, voxel / (E_layer of its layer + 1e-16), log10(E_layer + 1e-8)]``
  (1 + n_voxels + n_layers inputs);
* ``high``: ``[log10 E_inc, log10(E_layer + 1e-8), EC_eta/100, EC_phi/100, width_eta/100,
  width_phi/100, log10(E_tot + 1e-8), sparsity, EC_r/100, width_r/100]`` (centres and widths in
  mm; eta/phi only for layers binned in angle): 30 / 46 / 362 inputs for DS1 photons / pions / DS2-3.

Inputs are float32 and are written chunk by chunk into one preallocated array, so that a
dataset-3 sample (40500 voxels) is never held twice.
"""

from __future__ import annotations

import numpy as np

from calobench.errors import CalobenchError
from calobench.geometry import Geometry
from calobench.metrics.features import LOG_EPS, HighLevelFeatures, high_level_columns
from calobench.showers import Showers

LAYER_EPS = 1e-16
#: Showers converted per chunk (bounds the float64 temporaries).
CHUNK = 2048

INPUT_KINDS: tuple[str, ...] = ("low", "low_normed", "high")


class ClassifierInputError(CalobenchError):
    """The showers or features given to a classifier test do not fit together."""


def n_inputs(kind: str, geometry: Geometry) -> int:
    """Number of inputs of ``kind`` (``low``, ``low_normed``, ``high``) for ``geometry``."""
    n_layers = geometry.n_layers
    if kind == "low":
        return 1 + geometry.n_voxels
    if kind == "low_normed":
        return 1 + geometry.n_voxels + n_layers
    if kind == "high":
        n_angular = sum(geometry.binned_in_angle(layer_id) for layer_id in geometry.layer_ids)
        return 1 + n_layers + 4 * n_angular + 1 + 3 * n_layers
    raise ValueError(f"unknown input kind {kind!r}; expected one of {INPUT_KINDS}")


def _thresholded(energies: np.ndarray, threshold: float) -> np.ndarray:
    block = np.array(energies, dtype=np.float64)
    if threshold > 0:
        block[block < threshold] = 0.0
    return block


def write_low_level(
    showers: Showers, out: np.ndarray, threshold: float, normed: bool = False, rows: np.ndarray | None = None
) -> np.ndarray:
    """Write the (normalized) low-level inputs of ``showers`` (only ``rows`` if given) into ``out``."""
    geometry = showers.geometry
    n = len(showers) if rows is None else len(rows)
    expected = n_inputs("low_normed" if normed else "low", geometry)
    if out.shape != (n, expected):
        raise ValueError(f"output array has shape {out.shape}, expected {(n, expected)}")
    n_voxels = geometry.n_voxels
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        take = slice(start, stop) if rows is None else rows[start:stop]
        e_inc = np.asarray(showers.incident_energies[take], dtype=np.float64)
        bad = ~(np.isfinite(e_inc) & (e_inc > 0))
        if bad.any():
            row = start + int(np.argmax(bad))
            raise ClassifierInputError(
                f"incident energy {float(e_inc[bad][0])} MeV of shower row {row} is not finite and positive"
            )
        voxels = _thresholded(showers.energies[take], threshold)
        out[start:stop, 0] = np.log10(e_inc)
        if not normed:
            out[start:stop, 1:] = voxels / e_inc[:, None]
            continue
        e_layer = geometry.layer_energies(voxels)
        for index, block in enumerate(geometry.layer_slices):
            target = slice(1 + block.start, 1 + block.stop)
            out[start:stop, target] = voxels[:, block] / (e_layer[:, index : index + 1] + LAYER_EPS)
        out[start:stop, 1 + n_voxels :] = np.log10(e_layer + LOG_EPS)
    return out


def write_high_level(features: HighLevelFeatures, out: np.ndarray) -> np.ndarray:
    """Write the high-level inputs of ``features`` into ``out`` (N, d)."""
    column = 0
    for block in high_level_columns(features):
        width = block.shape[1]
        out[:, column : column + width] = block
        column += width
    if column != out.shape[1] or len(features) != out.shape[0]:
        raise ValueError(f"high-level features fill ({len(features)}, {column}), output is {out.shape}")
    return out


def low_level_inputs(showers: Showers, threshold: float | None = None, normed: bool = False) -> np.ndarray:
    """Low-level inputs (float32) of ``showers``; ``threshold`` defaults to the geometry's (MeV)."""
    threshold = _threshold(showers.geometry, threshold)
    out = np.empty((len(showers), n_inputs("low_normed" if normed else "low", showers.geometry)), dtype=np.float32)
    return write_low_level(showers, out, threshold, normed)


def high_level_inputs(features: HighLevelFeatures, geometry: Geometry | None = None) -> np.ndarray:
    """High-level inputs (float32) from :func:`calobench.metrics.features.compute_features`."""
    width = sum(block.shape[1] for block in high_level_columns(features.subset(slice(0, 0))))
    if geometry is not None and width != n_inputs("high", geometry):
        raise ClassifierInputError(
            f"features have {width} high-level columns; geometry {geometry.name} expects {n_inputs('high', geometry)}"
        )
    return write_high_level(features, np.empty((len(features), width), dtype=np.float32))


def pair_inputs(
    kind: str,
    reference: Showers,
    generated: Showers,
    reference_features: HighLevelFeatures | None = None,
    generated_features: HighLevelFeatures | None = None,
    threshold: float | None = None,
    reference_rows: np.ndarray | None = None,
    generated_rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs of both samples in one float32 array and their labels (reference 1, generated 0).

    The first rows hold the reference, the rest the generated showers (labels as in the published
    CaloChallenge code: GEANT4 = 1). ``*_rows`` select showers without copying the samples; the
    features (needed by ``high``) must then already be those of the selected rows.
    """
    geometry = reference.geometry
    if generated.geometry != geometry:
        raise ClassifierInputError(
            f"reference ({geometry.name}) and generated ({generated.geometry.name}) showers have different geometries"
        )
    n_ref = len(reference) if reference_rows is None else len(reference_rows)
    n_gen = len(generated) if generated_rows is None else len(generated_rows)
    x = np.empty((n_ref + n_gen, n_inputs(kind, geometry)), dtype=np.float32)
    if kind in ("low", "low_normed"):
        threshold = _threshold(geometry, threshold)
        write_low_level(reference, x[:n_ref], threshold, normed=kind == "low_normed", rows=reference_rows)
        write_low_level(generated, x[n_ref:], threshold, normed=kind == "low_normed", rows=generated_rows)
    elif kind == "high":
        for name, features, rows in (
            ("reference", reference_features, slice(0, n_ref)),
            ("generated", generated_features, slice(n_ref, n_ref + n_gen)),
        ):
            if features is None:
                raise ClassifierInputError(f"high-level classifier inputs need the {name} features")
            if len(features) != rows.stop - rows.start:
                raise ClassifierInputError(f"{len(features)} {name} feature rows for {rows.stop - rows.start} showers")
            if features.layer_ids != geometry.layer_ids:
                raise ClassifierInputError(
                    f"{name} features have layers {features.layer_ids}, "
                    f"geometry {geometry.name} has {geometry.layer_ids}"
                )
            write_high_level(features, x[rows])
    else:
        raise ValueError(f"unknown input kind {kind!r}; expected one of {INPUT_KINDS}")
    labels = np.concatenate([np.ones(n_ref, dtype=np.float32), np.zeros(n_gen, dtype=np.float32)])
    _check_finite(x, kind)
    return x, labels


def _check_finite(x: np.ndarray, kind: str) -> None:
    for start in range(0, len(x), CHUNK):
        block = x[start : start + CHUNK]
        if not np.isfinite(block).all():
            row = start + int(np.argmax(~np.isfinite(block).all(axis=1)))
            raise ClassifierInputError(
                f"{kind} classifier inputs of row {row} contain NaN or inf (incident energy <= 0, or NaN energies?)"
            )


def _threshold(geometry: Geometry, threshold: float | None) -> float:
    if threshold is None:
        threshold = geometry.threshold or 0.0
    return float(threshold)
