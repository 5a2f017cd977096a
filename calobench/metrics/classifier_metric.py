"""The classifier tests as registered metrics: one per mode of :mod:`calobench.metrics.classifier`.

Each writes ``{"classifier": {mode: {"auc": {"mean", "std", "runs"}, "jsd": {...}, ...}}}`` and
``null`` for a mode that does not apply to the geometry (the CNN needs image-like layers).

The classifiers train on showers held in memory: a uniformly random subsample of each source,
at most the preset's ``classifier_showers`` and at most ``max_sample_bytes`` of float32 voxels
(:mod:`calobench.metrics.presets`); the classifier then draws equal-size samples. The report
records the sizes used.
"""

from __future__ import annotations

import math
from typing import Any

from calobench.metrics.base import Metric, Scalar
from calobench.metrics.classifier.presets import CLASSIFIER_MODES
from calobench.metrics.context import EvaluationContext

_DESCRIPTIONS = {
    "low": "DNN classifier on [log10 E_inc, voxels / E_inc]",
    "low_normed": "DNN classifier on [log10 E_inc, voxel / E_layer, log10 E_layer]",
    "high": "DNN classifier on the high-level feature vector",
    "bdt_high": "gradient-boosted trees (xgboost) on the high-level feature vector",
    "cnn": "CNN classifier on the shower images (ResNet-18 3-D for datasets 2/3, per-layer CNN for CaloGAN)",
}


class ClassifierMetric(Metric):
    """AUC and JSD of a classifier that tells generated from reference showers (lower AUC is better)."""

    version = 2
    lower_is_better = True
    report_keys = ("classifier",)

    def __init__(self, mode: str) -> None:
        if mode not in CLASSIFIER_MODES:
            raise ValueError(f"unknown classifier mode {mode!r}; modes: {CLASSIFIER_MODES}")
        self.mode = mode
        self.name = f"classifier_{mode}"  # type: ignore[misc]
        self.description = _DESCRIPTIONS.get(mode, f"classifier {mode}")  # type: ignore[misc]

    def not_applicable(self, context: EvaluationContext) -> str | None:
        from calobench.metrics.classifier.runner import classifier_applicable

        if not classifier_applicable(self.mode, context.geometry):
            return (
                f"classifier {self.mode!r} does not apply to geometry {context.geometry.name}: the CNN needs "
                "layers that are images of one shape (datasets 2/3, CaloGAN)"
            )
        return None

    def showers_needed(self, context: EvaluationContext) -> int:
        return context.settings.classifier_showers

    def compute(self, context: EvaluationContext) -> dict[str, Any]:
        from calobench.metrics.classifier.runner import classifier_test

        n = context.sample_cap(self.showers_needed(context))
        reference, reference_features = context.sample("reference", n)
        generated, generated_features = context.sample("generated", n)
        result = classifier_test(
            self.mode,
            reference,
            generated,
            reference_features=reference_features,
            generated_features=generated_features,
            preset=context.preset,
            seed=context.seed,
            device=context.device,
            progress=context.progress,
            threshold=context.threshold,
            n_runs=context.options.get("classifier_runs"),
        )
        values = result.to_dict()
        values["n_reference_in_memory"] = len(reference)
        values["n_generated_in_memory"] = len(generated)
        return {"classifier": {self.mode: values}}

    def null_fragment(self) -> dict[str, Any]:
        return {"classifier": {self.mode: None}}

    def scalars(self, fragment: dict[str, Any]) -> dict[str, Scalar]:
        values = fragment["classifier"][self.mode]
        if values is None:
            return {}
        auc = values["auc"]["mean"]
        n_validation = max(int(round(VALIDATION_FRACTION * values.get("n_per_class", 0))), 1)
        error = max(values["auc"]["std"] or 0.0, hanley_mcneil_error(auc, n_validation, n_validation))
        return {f"AUC {self.mode}": Scalar(auc, error)}


#: Fraction of each class in the validation split on which the AUC is computed (protocol: 20 %).
VALIDATION_FRACTION = 0.2


def hanley_mcneil_error(auc: float, n_positive: int, n_negative: int) -> float:
    """Standard error of one AUC estimate (Hanley & McNeil, Radiology 143 (1982) 29)."""
    q1, q2 = auc / (2.0 - auc), 2.0 * auc * auc / (1.0 + auc)
    variance = (auc * (1.0 - auc) + (n_positive - 1) * (q1 - auc * auc) + (n_negative - 1) * (q2 - auc * auc)) / (
        n_positive * n_negative
    )
    return math.sqrt(max(variance, 0.0))


def classifier_metrics() -> list[Metric]:
    return [ClassifierMetric(mode) for mode in CLASSIFIER_MODES]
