"""The built-in metrics as :class:`~calobench.metrics.base.Metric` objects (registered by
:mod:`calobench.metrics.hooks` through the same hook a plugin uses).

Each wraps one function of this package; the definitions and their sources are in the wrapped
modules' docstrings. The metrics that run on torch import it when they compute, so that registering
the metrics (every ``calobench`` command does) costs no torch import. Version 2 of every metric: the
high-level features and the readout threshold follow the official order of operations
(:mod:`calobench.metrics.features`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from calobench.metrics.base import Metric, MetricError, Scalar
from calobench.metrics.context import EvaluationContext, finite_or_none
from calobench.metrics.features import high_level_vector
from calobench.metrics.frechet import fpd
from calobench.metrics.response import energy_response, layer_correlation, weighted_shift
from calobench.metrics.separation_metric import SeparationPowerMetric
from calobench.metrics.wasserstein import feature_w1, mean_normalized_w1

LOG_VOXEL_TRANSFORM = "log10(voxel energy in MeV), voxels below the readout threshold and zeros set to 0.1 MeV"


def _json_safe(value: Any) -> Any:
    """Replace NaN/inf floats by None, recursively."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return finite_or_none(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value


def _vectors(context: EvaluationContext) -> tuple[np.ndarray, np.ndarray]:
    return high_level_vector(context.reference_features), high_level_vector(context.generated_features)


class FPDMetric(Metric):
    name = "fpd"
    version = 2
    lower_is_better = True
    description = "Frechet physics distance on the high-level feature vector (CaloChallenge / jetnet definition)"
    report_keys = ("fpd",)

    def compute(self, context: EvaluationContext) -> dict[str, Any]:
        reference, generated = _vectors(context)
        result = fpd(reference, generated, seed=context.seed, n_resamples=context.settings.fpd_resamples)
        return {"fpd": _json_safe(result.to_dict())}

    def scalars(self, fragment: dict[str, Any]) -> dict[str, Scalar]:
        return {"FPD": Scalar(fragment["fpd"]["value"], fragment["fpd"]["error"])}


class KPDMetric(Metric):
    name = "kpd"
    version = 2
    lower_is_better = True
    description = "Kernel physics distance (unbiased MMD^2, kernel (x.y/d + 1)^4) on the high-level feature vector"
    report_keys = ("kpd",)

    def compute(self, context: EvaluationContext) -> dict[str, Any]:
        from calobench.metrics.kernel import kpd

        reference, generated = _vectors(context)
        settings = context.settings
        result = kpd(
            reference,
            generated,
            seed=context.seed,
            n_batches=settings.kpd_batches,
            batch_size=settings.kpd_batch_size,
            device=context.device,
        )
        return {"kpd": _json_safe(result.to_dict())}

    def scalars(self, fragment: dict[str, Any]) -> dict[str, Scalar]:
        return {"KPD": Scalar(fragment["kpd"]["value"], fragment["kpd"]["error"])}


class PRDCMetric(Metric):
    name = "prdc"
    version = 2
    lower_is_better = False
    description = "precision, recall, density, coverage (k = 5) on log10 voxel energies"
    report_keys = ("prdc",)

    def showers_needed(self, context: EvaluationContext) -> int:
        return context.settings.prdc_showers

    def compute(self, context: EvaluationContext) -> dict[str, Any]:
        from calobench.metrics.prdc import log_voxels, prdc

        n = context.sample_cap(self.showers_needed(context))
        reference, _ = context.sample("reference", n)
        generated, _ = context.sample("generated", n)
        k = context.settings.prdc_k
        if min(len(reference), len(generated)) <= k:
            raise MetricError(
                f"PRDC with k = {k} needs more than {k} showers per sample, got {len(reference)} "
                f"reference and {len(generated)} generated"
            )
        result = prdc(
            log_voxels(reference.energies, context.threshold),
            log_voxels(generated.energies, context.threshold),
            k=context.settings.prdc_k,
            device=context.device,
        )
        return {"prdc": _json_safe({**result.to_dict(), "transform": LOG_VOXEL_TRANSFORM})}

    def scalars(self, fragment: dict[str, Any]) -> dict[str, Scalar]:
        values = fragment["prdc"]
        return {
            "precision": Scalar(values["precision"], direction=-1),
            "recall": Scalar(values["recall"], direction=-1),
            "density": Scalar(values["density"], direction=0),
            "coverage": Scalar(values["coverage"], direction=-1),
        }


class W1Metric(Metric):
    name = "w1"
    version = 2
    lower_is_better = True
    description = "1-D Wasserstein distance of every high-level feature per layer (raw units and / reference std)"
    report_keys = ("w1",)

    def compute(self, context: EvaluationContext) -> dict[str, Any]:
        result = feature_w1(context.reference_features, context.generated_features)
        result["normalized_mean"] = mean_normalized_w1(result)
        return {"w1": _json_safe(result)}

    def scalars(self, fragment: dict[str, Any]) -> dict[str, Scalar]:
        return {"W1/std (mean)": Scalar(fragment["w1"]["normalized_mean"])}


class IntrinsicDimensionMetric(Metric):
    name = "intrinsic_dimension"
    version = 2
    lower_is_better = None
    description = "Levina-Bickel MLE of the intrinsic dimension (MacKay-Ghahramani average over k) of both samples"
    report_keys = ("intrinsic_dimension",)

    def showers_needed(self, context: EvaluationContext) -> int:
        return context.settings.id_showers

    def compute(self, context: EvaluationContext) -> dict[str, Any]:
        from calobench.metrics.intrinsic_dimension import shower_intrinsic_dimension

        n = context.sample_cap(self.showers_needed(context))
        settings = context.settings
        out: dict[str, Any] = {}
        for which in ("reference", "generated"):
            showers, _ = context.sample(which, n)
            if len(showers) <= settings.id_k_range[1]:
                raise MetricError(
                    f"the intrinsic dimension with k up to {settings.id_k_range[1]} needs more than "
                    f"{settings.id_k_range[1]} showers, the {which} sample has {len(showers)}"
                )
            result = shower_intrinsic_dimension(
                showers.energies,
                context.threshold,
                settings.id_k_range,
                n_bootstrap=settings.id_bootstrap,
                seed=context.seed,
                device=context.device,
            )
            out[which] = result.to_dict()
        out["transform"] = LOG_VOXEL_TRANSFORM
        return {"intrinsic_dimension": _json_safe(out)}

    def scalars(self, fragment: dict[str, Any]) -> dict[str, Scalar]:
        ref, gen = fragment["intrinsic_dimension"]["reference"], fragment["intrinsic_dimension"]["generated"]
        if ref["value"] is None or gen["value"] is None:
            return {"ID gen - ref": Scalar(None)}
        error = math.hypot(ref["error"] or 0.0, gen["error"] or 0.0)
        return {"ID gen - ref": Scalar(gen["value"] - ref["value"], error, direction=0)}


def _max_shift(bins: list[dict], key: str) -> float | None:
    shifts = []
    for entry in bins:
        ref, gen = entry["reference"].get(key), entry["generated"].get(key)
        if ref and gen is not None:
            shifts.append(abs(gen / ref - 1.0))
    return max(shifts) if shifts else None


class EnergyResponseMetric(Metric):
    name = "energy_response"
    version = 2
    lower_is_better = None
    description = (
        "mean (response) and std / mean (resolution) of E_tot/E_inc per incident-energy bin, and their "
        "weighted mean relative shifts"
    )
    report_keys = ("energy_response",)

    def compute(self, context: EvaluationContext) -> dict[str, Any]:
        result = energy_response(context.reference_features, context.generated_features)
        result["response_shift"] = weighted_shift(result["bins"], "mean")
        result["resolution_shift"] = weighted_shift(result["bins"], "resolution")
        result["max_response_shift"] = _max_shift(result["bins"], "mean")
        result["max_resolution_shift"] = _max_shift(result["bins"], "resolution")
        return {"energy_response": _json_safe(result)}

    def scalars(self, fragment: dict[str, Any]) -> dict[str, Scalar]:
        values = fragment["energy_response"]
        return {
            "response shift": Scalar(values["response_shift"]["value"], values["response_shift"]["error"], 0),
            "resolution shift": Scalar(values["resolution_shift"]["value"], values["resolution_shift"]["error"], 0),
        }


class LayerCorrelationMetric(Metric):
    name = "layer_correlation"
    version = 2
    lower_is_better = None
    description = "Pearson correlation matrix of the layer energies, reference and generated"
    report_keys = ("layer_correlation",)

    def compute(self, context: EvaluationContext) -> dict[str, Any]:
        return {
            "layer_correlation": _json_safe(layer_correlation(context.reference_features, context.generated_features))
        }

    def scalars(self, fragment: dict[str, Any]) -> dict[str, Scalar]:
        return {"max abs corr diff": Scalar(fragment["layer_correlation"]["max_abs_difference"])}


def builtin_metrics() -> list[Metric]:
    """Every built-in metric except the classifiers (see :mod:`calobench.metrics.classifier_metric`)."""
    return [
        SeparationPowerMetric(),
        FPDMetric(),
        KPDMetric(),
        PRDCMetric(),
        W1Metric(),
        IntrinsicDimensionMetric(),
        EnergyResponseMetric(),
        LayerCorrelationMetric(),
    ]
