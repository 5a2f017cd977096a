"""The separation-power metric: every feature and layer with the CaloChallenge binnings.

Report fragment (arXiv 2410.21611 definitions, :mod:`calobench.metrics.separation` and
:mod:`calobench.metrics.binning`)::

    "separation_power": {"etot_einc": S, "voxel": S, "e_layer": {layer: S}, "ec_eta": {...},
                         "ec_phi": {...}, "width_eta": {...}, "width_phi": {...}, "ec_r": {...},
                         "width_r": {...}, "sparsity": {...},
                         "etot_einc_per_energy": {E_inc in MeV: S}}        # dataset 1 only
    "separation_power_summary": {"etot_einc", "e_layer_mean", "voxel", ...}  # the published columns
    "separation_power_null": same shape as "separation_power", each {"mean", "std"}  # calobench's

The null expectation assumes independent entries, true for per-shower features; the voxel
spectrum's entries are the voxels of the same showers, which are correlated, so it has no null
expectation (``{"mean": null, "std": null}``; two samples of one distribution give a voxel S a few
times the independent-entry value).

Every histogram is filled and every S computed as the official script (CaloChallenge/homepage
``code/evaluate_plotting_helper.py``) does, rounding included (version 2; see
:mod:`calobench.metrics.features` and :mod:`calobench.metrics.binning` for the rounding artefacts kept
on purpose); the conformance tests (``tests/test_conformance.py``) hold calobench to the official
numbers to 1e-12. The official ``evaluate.py --mode hist-chi`` reports E_tot/E_inc, E_layer, the
centres and widths in eta and phi, the voxel spectrum and (dataset 1) E_tot/E_inc per incident
energy; EC_r, width_r and sparsity are the official helper functions ``plot_ECR``,
``plot_ECWidthR`` and ``plot_sparsity``, which ``evaluate.py`` defines but does not call.

Layer ids are strings (JSON keys). A value is ``null`` when it is undefined: a layer whose
reference energy never exceeds the threshold has no E_layer binning, and a histogram with no
entry in range in both samples has no S.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from calobench.metrics.base import Metric, Scalar
from calobench.metrics.binning import (
    ETOT_EINC_EDGES,
    LAYER_FEATURES,
    e_layer_edges,
    is_dataset_1,
    per_energy_edges,
)
from calobench.metrics.context import EvaluationContext, finite_or_none
from calobench.metrics.histograms import FeatureHistograms, fixed_edges
from calobench.metrics.separation import histogram_counts, null_separation_power, separation_power_from_counts

#: Columns of the published tables: sepEtot, sepElay (mean over layers), sepCell.
SUMMARY_KEYS = ("etot_einc", "e_layer_mean", "voxel")


def energy_key(value: float) -> str:
    """JSON key of an incident energy in MeV: ``"256"``, ``"4194304"``, or ``repr`` if not integral."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _pair(
    ref_counts: np.ndarray, gen_counts: np.ndarray, edges: np.ndarray
) -> tuple[float | None, dict[str, float | None]]:
    value = separation_power_from_counts(ref_counts, gen_counts, edges)
    null = null_separation_power(ref_counts, gen_counts)
    return finite_or_none(value), {"mean": finite_or_none(null.mean), "std": finite_or_none(null.std)}


def separation_powers(context: EvaluationContext) -> tuple[dict[str, Any], dict[str, Any]]:
    """(separation powers, null expectations) for every feature, layer and the voxel spectrum, from
    the histograms filled while the samples streamed (:mod:`calobench.metrics.histograms`)."""
    ref: FeatureHistograms = context.reference_scan.histograms
    gen: FeatureHistograms = context.generated_scan.histograms
    powers: dict[str, Any] = {}
    nulls: dict[str, Any] = {}
    powers["etot_einc"], nulls["etot_einc"] = _pair(ref.etot_einc, gen.etot_einc, ETOT_EINC_EDGES)
    spectrum = context.voxel_spectrum()
    if spectrum is not None:
        powers["voxel"], _ = _pair(spectrum.reference_counts, spectrum.generated_counts, spectrum.edges)
        nulls["voxel"] = {"mean": None, "std": None}  # voxels of one shower are not independent entries
    else:
        powers["voxel"], nulls["voxel"] = None, {"mean": None, "std": None}
    geometry = context.geometry
    angular = tuple(i for i in geometry.layer_ids if geometry.binned_in_angle(i))
    for feature in LAYER_FEATURES:
        powers[feature], nulls[feature] = {}, {}
        columns = angular if feature in ("ec_eta", "ec_phi", "width_eta", "width_phi") else geometry.layer_ids
        for column, layer_id in enumerate(columns):
            key = str(layer_id)
            if feature == "e_layer":
                ref_values, gen_values = ref.e_layer[:, column], gen.e_layer[:, column]
                edges = e_layer_edges(context.threshold, ref_values, ref.voxel_dtype)
                if edges is None:
                    powers[feature][key], nulls[feature][key] = None, {"mean": None, "std": None}
                    continue
                counts = histogram_counts(ref_values, edges), histogram_counts(gen_values, edges)
            else:
                edges = fixed_edges(geometry, feature, layer_id)
                counts = ref.counts(feature, layer_id), gen.counts(feature, layer_id)
            powers[feature][key], nulls[feature][key] = _pair(*counts, edges)
    if is_dataset_1(geometry):
        powers["etot_einc_per_energy"], nulls["etot_einc_per_energy"] = _per_energy(context, ref, gen)
    return powers, nulls


def _per_energy(
    context: EvaluationContext, ref: FeatureHistograms, gen: FeatureHistograms
) -> tuple[dict[str, float | None], dict[str, Any]]:
    """S of E_tot / E_inc per official incident-energy range ``[2^k, 2^(k+1))`` MeV, keyed by
    ``2^k``; ranges without a reference shower are left out."""
    powers: dict[str, float | None] = {}
    nulls: dict[str, Any] = {}
    for low in sorted(ref.showers_per_energy):
        edges = per_energy_edges(context.geometry, low)
        empty = np.zeros(len(edges) - 1, dtype=np.int64)
        key = energy_key(low)
        powers[key], nulls[key] = _pair(ref.per_energy[low], gen.per_energy.get(low, empty), edges)
    return powers, nulls


def _mean(values: dict[str, float | None]) -> float | None:
    finite = [v for v in values.values() if v is not None]
    return float(np.mean(finite)) if finite else None


def _mean_std(nulls: dict[str, Any]) -> float | None:
    stds = [n["std"] for n in nulls.values() if n["std"] is not None]
    return float(math.sqrt(sum(s * s for s in stds)) / len(stds)) if stds else None


def summarize(powers: dict[str, Any]) -> dict[str, float | None]:
    """The published summary columns (sepEtot, sepElay = mean over layers, sepCell) and the mean
    over layers of every other per-layer feature."""
    summary = {"etot_einc": powers["etot_einc"], "e_layer_mean": _mean(powers["e_layer"]), "voxel": powers["voxel"]}
    for feature in LAYER_FEATURES[1:]:
        summary[f"{feature}_mean"] = _mean(powers[feature])
    return summary


class SeparationPowerMetric(Metric):
    name = "separation_power"
    version = 2
    lower_is_better = True
    description = (
        "CaloChallenge separation powers (triangular discrimination) of E_tot/E_inc, the voxel spectrum "
        "and every per-layer feature, with the published binnings"
    )
    report_keys = ("separation_power", "separation_power_summary", "separation_power_null")
    needs_voxel_spectrum = True
    needs_features = False  # the histograms are filled while the samples stream

    def compute(self, context: EvaluationContext) -> dict[str, Any]:
        powers, nulls = separation_powers(context)
        return {
            "separation_power": powers,
            "separation_power_summary": summarize(powers),
            "separation_power_null": nulls,
        }

    def scalars(self, fragment: dict[str, Any]) -> dict[str, Scalar]:
        powers, nulls = fragment["separation_power"], fragment["separation_power_null"]
        out = {
            "sep E_tot/E_inc": Scalar(powers["etot_einc"], nulls["etot_einc"]["std"]),
            "sep voxel": Scalar(powers["voxel"], nulls["voxel"]["std"]),
        }
        labels = {
            "e_layer": "E_layer",
            "ec_eta": "EC_eta",
            "ec_phi": "EC_phi",
            "width_eta": "width_eta",
            "width_phi": "width_phi",
            "ec_r": "EC_r",
            "width_r": "width_r",
            "sparsity": "sparsity",
        }
        for feature, label in labels.items():
            if powers[feature]:
                out[f"sep {label} (mean)"] = Scalar(_mean(powers[feature]), _mean_std(nulls[feature]))
        return out
