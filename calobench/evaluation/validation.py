"""Metric validation: which metric detects which mis-modelling, at which strength.

calobench's simulator (:mod:`calobench.simulator`) knows the truth, so the metrics can be tested
on samples that differ from the reference in one known way. For a synthetic data set:

1. simulate a reference sample (seed A) and an independent reference sample (seed B);
2. simulate, with the same seed B, samples with one simulator knob moved to ``1 + strength``
   (:data:`calobench.simulator.perturbations.PERTURBATIONS`: ``energy_scale``, ``depth_scale``...);
   sharing seed B makes the difference from the independent reference the effect of the knob alone;
3. evaluate each against the reference with the chosen metrics (quick preset; classifiers with one
   run) and compare every headline number with its reference-vs-reference value.

A number counts as *detected* when it moved, in the direction that means a worse model, by more
than 3 standard deviations ``sqrt(e^2 + e0^2)`` of its own error ``e`` (FPD, KPD, intrinsic
dimension, classifier AUC: the larger of the run-to-run spread and the Hanley-McNeil error of one
AUC; separation powers: the spread expected between two samples of one distribution), or, for
numbers without an error, by more than the fixed thresholds of :data:`THRESHOLDS`, or (W1 and the
voxel-spectrum separation power) to more than twice their reference-vs-reference value.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from calobench.atomic import check_output_dir, write_atomic, write_text_atomic
from calobench.errors import CalobenchError
from calobench.evaluation.provenance import software_provenance
from calobench.evaluation.report import to_json
from calobench.evaluation.runner import resolve_device, run_metrics, select_metrics, summary_rows
from calobench.metrics.context import EvaluationContext
from calobench.metrics.scan import InMemorySource

DEFAULT_SHOWERS = 10_000
DEFAULT_STRENGTHS = (0.01, 0.03, 0.1)
DEFAULT_PERTURBATIONS = ("energy_scale", "sampling_fraction_scale", "depth_scale", "core_radius_scale", "spot_scale")
#: The default metrics: every quick metric but the classifiers, which take about a minute per sample of
#: 10,000 showers on two CPU cores (add them with ``--metrics ...,classifier_low,classifier_high``).
DEFAULT_METRICS = (
    "separation_power",
    "energy_response",
    "layer_correlation",
    "w1",
    "fpd",
    "kpd",
    "prdc",
    "intrinsic_dimension",
)
#: Classifier runs per evaluation during validation (the error then comes from Hanley-McNeil).
CLASSIFIER_RUNS = 1
SIGMAS = 3.0
#: Detection thresholds (absolute changes in the worse direction) for numbers without an error.
THRESHOLDS = {
    "precision": 0.05,
    "recall": 0.05,
    "coverage": 0.05,
    "density": 0.1,
    "W1/std (mean)": None,  # relative: detected when it doubles (see _detected)
    "sep voxel": None,  # relative, as W1: its entries (voxels of the same showers) are correlated
    "max abs corr diff": 0.05,
}
W1_FACTOR = 2.0
#: Numbers without an error that count as detected when they exceed W1_FACTOR x their ref-vs-ref value.
RELATIVE_LABELS = ("W1/std (mean)", "sep voxel")
SEED_REFERENCE, SEED_OTHER = 0, 1


@dataclass
class ValidationResult:
    dataset: str
    n_showers: int
    labels: list[str]
    baseline: dict[str, dict[str, Any]]
    rows: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "kind": "calobench-metric-validation",
            "dataset": self.dataset,
            "n_showers": self.n_showers,
            "labels": self.labels,
            "reference_vs_reference": self.baseline,
            "results": self.rows,
            **self.settings,
        }

    def markdown_table(self) -> str:
        return "\n".join(_markdown(self))


def _detected(label: str, scalar: dict[str, Any], baseline: dict[str, Any]) -> bool | None:
    value, reference = scalar.get("value"), baseline.get("value")
    if value is None or reference is None:
        return None
    direction = scalar.get("direction", 1)
    change = value - reference
    shift = change if direction > 0 else (-change if direction < 0 else abs(change))
    error, base_error = scalar.get("error"), baseline.get("error")
    if error is not None and base_error is not None:
        return bool(shift > SIGMAS * math.hypot(error, base_error))
    if label in RELATIVE_LABELS:
        return bool(value > W1_FACTOR * reference)
    threshold = THRESHOLDS.get(label)
    return bool(shift > threshold) if threshold is not None else None


def _scalars(rows: list[dict]) -> dict[str, dict[str, Any]]:
    return {row["label"]: {"value": row["value"], "error": row["error"], "direction": row["direction"]} for row in rows}


def _simulate(dataset: str, n: int, seed: int, perturbation: dict[str, float] | None):
    from calobench.simulator.api import simulate
    from calobench.simulator.spectra import incident_spectrum

    energies = incident_spectrum(dataset, n, seed)
    return simulate(dataset, energies, seed, perturbation=perturbation)


def _evaluate(reference, generated, metrics, preset: str, seed: int, device: str, dataset: str) -> dict[str, dict]:
    context = EvaluationContext(
        InMemorySource(reference, label="reference"),
        InMemorySource(generated, label="generated"),
        reference.geometry,
        reference.geometry.threshold or 0.0,
        preset=preset,
        seed=seed,
        device=device,
        dataset=dataset,
    )
    context.options["classifier_runs"] = CLASSIFIER_RUNS
    logger = logging.getLogger("calobench.evaluation")
    level = logger.level
    logger.setLevel(logging.WARNING)  # one "computing ..." line per metric and sample is too much here
    try:
        sections, outcomes = run_metrics(context, metrics)
    finally:
        logger.setLevel(level)
    failed = [f"{o.name}: {o.reason}" for o in outcomes if o.status == "failed"]
    if failed:
        raise CalobenchError("metric validation: " + "; ".join(failed))
    return _scalars(summary_rows(metrics, sections, outcomes))


def validate_metrics(
    dataset: str,
    out: "str | Path | None" = None,
    *,
    n_showers: int = DEFAULT_SHOWERS,
    perturbations: Sequence[str] | None = None,
    strengths: Sequence[float] = DEFAULT_STRENGTHS,
    metrics: "Sequence[str] | str" = DEFAULT_METRICS,
    preset: str = "quick",
    seed: int = 0,
    device: str | None = None,
    progress: bool = True,
) -> ValidationResult:
    """Run the validation (see the module docstring); write ``validation.json``, ``validation.md``
    and ``validation.png`` to ``out`` if given."""
    from calobench.datasets import get_dataset
    from calobench.simulator.perturbations import PERTURBATIONS, check_perturbation

    if out is not None:
        check_output_dir(out)
    spec = get_dataset(dataset)
    if spec.kind != "synthetic":
        raise CalobenchError(
            f"metric validation needs a synthetic data set (its simulator knows the truth); "
            f"{dataset!r} is {spec.kind}. Try synthetic-{spec.geometry}"
        )
    if n_showers < 100:
        raise CalobenchError(f"--showers must be at least 100, got {n_showers}")
    knobs = list(perturbations) if perturbations else [p for p in DEFAULT_PERTURBATIONS if p in PERTURBATIONS]
    for knob in knobs:
        check_perturbation({knob: 1.0 + max(strengths)})
    chosen = select_metrics(metrics)
    device = resolve_device(device)
    started = time.perf_counter()
    base_seed = 1000 * seed
    reference = _simulate(spec.name, n_showers, base_seed + SEED_REFERENCE, None)
    other = _simulate(spec.name, n_showers, base_seed + SEED_OTHER, None)
    baseline = _evaluate(reference, other, chosen, preset, seed, device, spec.name)
    rows = []
    cases = [(knob, strength) for knob in knobs for strength in strengths]
    from tqdm.auto import tqdm

    for knob, strength in tqdm(cases, desc="perturbed samples", disable=None if progress else True):
        factor = 1.0 + strength
        sample = _simulate(spec.name, n_showers, base_seed + SEED_OTHER, {knob: factor})
        scalars = _evaluate(reference, sample, chosen, preset, seed, device, spec.name)
        for label, scalar in scalars.items():
            scalar["detected"] = _detected(label, scalar, baseline.get(label, {}))
            base = baseline.get(label, {})
            error = (
                math.hypot(scalar["error"], base["error"])
                if scalar.get("error") is not None and base.get("error") is not None
                else None
            )
            scalar["significance"] = (
                (scalar["value"] - base["value"]) / error
                if error and scalar["value"] is not None and base.get("value") is not None
                else None
            )
        rows.append({"perturbation": knob, "strength": strength, "factor": factor, "scalars": scalars})
    labels = list(baseline)
    result = ValidationResult(
        spec.name,
        n_showers,
        labels,
        baseline,
        rows,
        {
            "preset": preset,
            "seed": seed,
            "metrics": [m.name for m in chosen],
            "metric_versions": {m.name: m.version for m in chosen},
            "perturbations": knobs,
            "strengths": list(strengths),
            "classifier_runs": CLASSIFIER_RUNS,
            "sigmas": SIGMAS,
            "thresholds": {k: v for k, v in THRESHOLDS.items() if v is not None},
            "w1_factor": W1_FACTOR,
            "provenance": software_provenance(device),
            "seconds": round(time.perf_counter() - started, 1),
        },
    )
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "validation.json", to_json(_json_ready(result.to_dict())))
        write_text_atomic(out / "validation.md", "\n".join(_markdown(result)) + "\n")
        _plot(result, out / "validation.png")
    return result


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fmt(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def _markdown(result: ValidationResult) -> list[str]:
    s = result.settings
    lines = [
        f"# Metric validation on {result.dataset}",
        "",
        f"{result.n_showers} showers per sample, preset {s.get('preset')}, seed {s.get('seed')}, classifiers "
        f"with {s.get('classifier_runs')} run. A knob at strength s is set to 1 + s. **bold** = detected: moved "
        f"in the worse direction by more than {s.get('sigmas')} sigma (numbers with an error) or by more than a "
        "fixed threshold ("
        + ", ".join(f"{k} {v}" for k, v in s.get("thresholds", {}).items())
        + f"; W1/std and sep voxel when they grow {s.get('w1_factor')}x).",
        "",
    ]
    for knob in s.get("perturbations", []):
        rows = [r for r in result.rows if r["perturbation"] == knob]
        header = ["metric", "ref vs ref"] + [f"{knob} +{r['strength']:g}" for r in rows]
        lines += [f"## {knob}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for label in result.labels:
            base = result.baseline[label]
            cells = [
                label,
                _fmt(base["value"]) + (f" ± {_fmt(base['error'])}" if base.get("error") is not None else ""),
            ]
            for r in rows:
                scalar = r["scalars"].get(label, {})
                text = _fmt(scalar.get("value"))
                cells.append(f"**{text}**" if scalar.get("detected") else text)
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "## Smallest detected strength",
        "",
        "| metric | " + " | ".join(s.get("perturbations", [])) + " |",
        "|---|" + "---|" * len(s.get("perturbations", [])),
    ]
    for label in result.labels:
        cells = [label]
        for knob in s.get("perturbations", []):
            hits = [
                r["strength"]
                for r in result.rows
                if r["perturbation"] == knob and r["scalars"].get(label, {}).get("detected")
            ]
            cells.append(f"{min(hits):g}" if hits else "—")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _plot(result: ValidationResult, path: Path) -> None:
    from matplotlib.figure import Figure

    columns = [(r["perturbation"], r["strength"]) for r in result.rows]
    matrix = np.full((len(result.labels), len(columns)), np.nan)
    detected = np.zeros_like(matrix, dtype=bool)
    for j, r in enumerate(result.rows):
        for i, label in enumerate(result.labels):
            scalar = r["scalars"].get(label, {})
            detected[i, j] = bool(scalar.get("detected"))
            significance = scalar.get("significance")
            if significance is not None:
                matrix[i, j] = significance
            elif scalar.get("value") is not None and result.baseline[label].get("value") not in (None, 0):
                matrix[i, j] = scalar["value"] / result.baseline[label]["value"] - 1.0
    fig = Figure(figsize=(max(6, 0.6 * len(columns) + 3), 0.4 * len(result.labels) + 2), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    shown = np.sign(matrix) * np.log10(1 + np.abs(matrix))
    limit = max(float(np.nanmax(np.abs(shown))) if np.isfinite(shown).any() else 1.0, 1e-3)
    image = ax.imshow(shown, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    for i, j in zip(*np.nonzero(detected)):
        ax.text(j, i, "✓", ha="center", va="center", fontsize=9)
    ax.set_yticks(range(len(result.labels)), result.labels, fontsize=7)
    ax.set_xticks(range(len(columns)), [f"{k}\n+{s:g}" for k, s in columns], fontsize=6, rotation=90)
    ax.set_title(
        f"metric validation on {result.dataset}, {result.n_showers} showers per sample\n"
        "colour: change vs ref-vs-ref, sign·log10(1+|z|), z in sigma\n(relative change for numbers without "
        "an error); ✓ = detected",
        fontsize=8,
    )
    fig.colorbar(image, ax=ax, shrink=0.8)
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
