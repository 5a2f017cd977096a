"""Run a set of metrics on (reference, generated) and assemble one report.

:func:`evaluate` is the library form of ``calobench evaluate``: it opens any two CaloChallenge or
CaloGAN files (or a data set's reference), streams each once, runs the selected registered metrics
(built-in and plugins' alike), and writes ``report.json``, ``report.md`` and the plots to ``out``.
:func:`evaluate_context` does the same for an already built
:class:`~calobench.metrics.context.EvaluationContext` (e.g. showers in memory).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calobench.atomic import check_output_dir, write_text_atomic
from calobench.errors import CalobenchError
from calobench.evaluation.provenance import file_fingerprint, software_provenance
from calobench.evaluation.report import (
    HEADER_KEYS,
    KIND,
    SCHEMA_VERSION,
    empty_metric_sections,
    render_markdown,
    to_json,
)
from calobench.evaluation.sanity import warn_about_inputs
from calobench.evaluation.sources import open_inputs
from calobench.metrics.base import Metric, MetricError
from calobench.metrics.context import EvaluationContext
from calobench.metrics.scan import FirstShowers

log = logging.getLogger("calobench.evaluation")

#: ``--metrics`` names that stand for several metrics.
GROUPS = {"classifier": "classifier_", "classifiers": "classifier_"}
#: Order in which metrics run and appear (metrics not listed, e.g. plugins', follow alphabetically).
ORDER = (
    "separation_power",
    "energy_response",
    "layer_correlation",
    "w1",
    "fpd",
    "kpd",
    "prdc",
    "intrinsic_dimension",
    "classifier_low",
    "classifier_low_normed",
    "classifier_high",
    "classifier_bdt_high",
    "classifier_cnn",
)


def _ordered(names: "Sequence[str]") -> list[str]:
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(names, key=lambda n: (rank.get(n, len(ORDER)), n))


def resolve_device(device: str | None) -> str:
    """``auto``/None -> ``cuda`` when available, else ``cpu``; anything else is checked by torch.

    On Linux without the NVIDIA driver, ``auto`` is ``cpu`` without importing torch (seconds saved
    for metrics that never touch it)."""
    if device in (None, "auto"):
        if sys.platform.startswith("linux") and not _nvidia_driver():
            return "cpu"
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    import torch

    try:
        parsed = torch.device(device)
    except RuntimeError as exc:
        raise CalobenchError(f"invalid device {device!r}: {exc}") from exc
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise CalobenchError(f"device {device!r} was asked for but CUDA is not available; use --device cpu")
    return str(parsed)


def _nvidia_driver() -> bool:
    return Path("/proc/driver/nvidia").exists() or Path("/dev/nvidiactl").exists()


def registered_metrics() -> dict[str, tuple[Metric, str]]:
    """``{name: (metric, provider text)}`` of every registered metric."""
    from calobench.plugins import metrics

    registry = metrics()
    return {entry.name: (entry.value, str(entry.provider)) for entry in registry.entries()}


def _builtin_metrics() -> dict[str, Metric]:
    from calobench.metrics.hooks import calobench_metrics

    return {metric.name: metric for metric in calobench_metrics()}


def _builtin_provider() -> str:
    from calobench import __version__
    from calobench.registry import Provider

    return str(Provider("calobench", "calobench", __version__))


def select_metrics(names: "Sequence[str] | str | None") -> list[Metric]:
    """The registered metrics named in ``names`` (comma-separated string or list; ``all`` or None:
    every one; ``classifier``: every classifier mode), in :data:`ORDER`.

    Names that are all built-in metrics are resolved without loading the plugins (a plugin cannot
    take a built-in name), which spares a library call the plugins' imports."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    builtin = _builtin_metrics()
    if names and all(n in builtin for n in names):
        return [builtin[n] for n in _ordered(list(dict.fromkeys(names)))]
    from calobench.plugins import metrics

    registry = metrics()
    if not names or "all" in names:
        return [registry.get(n) for n in _ordered(registry.names())]
    chosen: list[str] = []
    for name in names:
        if name in GROUPS:
            chosen += [n for n in registry.names() if n.startswith(GROUPS[name])]
        else:
            registry.get(name)  # raises with suggestions
            chosen.append(name)
    return [registry.get(n) for n in _ordered(list(dict.fromkeys(chosen)))]


@dataclass
class MetricOutcome:
    name: str
    status: str  # ok | not_applicable | failed
    seconds: float
    reason: str | None
    fragment: dict[str, Any]


def _merge(sections: dict[str, Any], owners: dict[str, str], fragment: dict[str, Any], metric: Metric) -> None:
    """Put a metric's fragment into the report; dict-valued keys shared by several metrics (the
    classifier modes) are merged, anything else written twice is an error."""
    for key, value in fragment.items():
        if key in HEADER_KEYS:
            raise MetricError(f"metric {metric.name!r} writes the reserved report key {key!r}")
        current = sections.get(key)
        if key in owners and owners[key] != metric.name:
            if isinstance(current, dict) and isinstance(value, dict):
                clash = [k for k in value if current.get(k) is not None]
                if clash:
                    raise MetricError(f"metrics {owners[key]!r} and {metric.name!r} both write {key}.{clash[0]}")
                current.update(value)
                continue
            if current is not None:
                raise MetricError(f"metrics {owners[key]!r} and {metric.name!r} both write report key {key!r}")
        if isinstance(current, dict) and isinstance(value, dict) and key not in owners:
            current.update(value)  # pre-filled placeholder (classifier modes)
        else:
            sections[key] = value
        owners.setdefault(key, metric.name)


def run_metrics(context: EvaluationContext, metrics: Sequence[Metric]) -> tuple[dict[str, Any], list[MetricOutcome]]:
    """Prepare the context for ``metrics`` (one pass per source) and run them; a metric that
    raises a :class:`CalobenchError` is recorded as failed with its message and the rest go on."""
    outcomes: list[MetricOutcome] = []
    runnable = []
    for metric in metrics:
        reason = metric.not_applicable(context)
        if reason is None:
            runnable.append(metric)
        else:
            outcomes.append(MetricOutcome(metric.name, "not_applicable", 0.0, reason, metric.null_fragment()))
    context.prepare(runnable)
    for metric in runnable:
        log.info("computing %s", metric.name)
        started = time.perf_counter()
        try:
            fragment = metric.compute(context)
            status, reason = "ok", None
        except CalobenchError as exc:
            log.warning("metric %s failed: %s", metric.name, exc)
            fragment, status, reason = metric.null_fragment(), "failed", str(exc)
        outcomes.append(MetricOutcome(metric.name, status, time.perf_counter() - started, reason, fragment))
    sections = empty_metric_sections()
    owners: dict[str, str] = {}
    by_name = {m.name: m for m in metrics}
    for outcome in outcomes:
        if outcome.status == "ok":
            _merge(sections, owners, outcome.fragment, by_name[outcome.name])
    for outcome in outcomes:  # placeholders of skipped metrics, where nothing else wrote
        if outcome.status != "ok":
            for key, value in outcome.fragment.items():
                if isinstance(value, dict) and isinstance(sections.get(key), dict):
                    for sub, sub_value in value.items():
                        sections[key].setdefault(sub, sub_value)
                else:
                    sections.setdefault(key, value)
    return sections, outcomes


def summary_rows(metrics: Sequence[Metric], sections: dict[str, Any], outcomes: list[MetricOutcome]) -> list[dict]:
    """Every metric's headline scalars as ``{"metric", "label", "value", "error", "direction"}``."""
    rows = []
    ok = {o.name for o in outcomes if o.status == "ok"}
    for metric in metrics:
        if metric.name not in ok:
            continue
        for label, scalar in metric.scalars(sections).items():
            rows.append(
                {
                    "metric": metric.name,
                    "label": label,
                    "value": scalar.value,
                    "error": scalar.error,
                    "direction": scalar.direction,
                }
            )
    return rows


def evaluate_context(
    context: EvaluationContext,
    metrics: Sequence[Metric],
    *,
    inputs: dict[str, Any] | None = None,
    out: "str | Path | None" = None,
    plots: bool = True,
) -> dict[str, Any]:
    """Run ``metrics`` on ``context``; write the report (and plots) to ``out`` if given."""
    started = time.perf_counter()
    builtin = _builtin_metrics()
    if all(m.name in builtin and type(m) is type(builtin[m.name]) for m in metrics):
        providers = {m.name: _builtin_provider() for m in metrics}
    else:
        providers = {name: provider for name, (_, provider) in registered_metrics().items()}
    sections, outcomes = run_metrics(context, metrics)
    by_name = {m.name: m for m in metrics}
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "dataset": context.dataset,
        "geometry": context.geometry.name,
        "threshold_mev": context.threshold,
        "n_reference": context.n_reference,
        "n_generated": context.n_generated,
        "preset": context.preset,
        "seed": context.seed,
        "provenance": software_provenance(context.device),
        "inputs": inputs or {"reference": [], "generated": []},
        "settings": context.settings.to_dict(),
        "metrics": {
            o.name: {
                "version": by_name[o.name].version,
                "provider": providers.get(o.name, "unregistered"),
                "status": o.status,
                "reason": o.reason,
                "seconds": round(o.seconds, 4),
            }
            for o in outcomes
        },
        "metric_versions": {m.name: m.version for m in metrics},
        "in_memory_samples": context.sample_sizes(),
        "plots": [],
        "timings": {},
    }
    report.update(sections)
    report["summary"] = summary_rows(metrics, sections, outcomes)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        if plots:
            from calobench.evaluation.plots import make_plots

            plot_started = time.perf_counter()
            report["plots"] = [str(p) for p in make_plots(context, report, out)]
            report["timings"]["plots_s"] = round(time.perf_counter() - plot_started, 3)
    scans = context.scan_seconds()
    report["timings"].update(
        {
            "scan_reference_s": round(scans.get("reference", 0.0), 3),
            "scan_generated_s": round(scans.get("generated", 0.0), 3),
            "total_s": round(time.perf_counter() - started, 3),
        }
    )
    if out is not None:
        write_text_atomic(Path(out) / "report.json", to_json(report))
        write_text_atomic(Path(out) / "report.md", render_markdown(report))
    return report


def evaluate(
    generated: "str | Path",
    reference: "str | Path | None" = None,
    *,
    dataset: str | None = None,
    geometry: "str | Path | None" = None,
    metrics: "Sequence[str] | str | None" = None,
    preset: str = "quick",
    seed: int = 0,
    device: str | None = None,
    out: "str | Path | None" = None,
    plots: bool = True,
    progress: bool = True,
    threshold: float | None = None,
    chunk_size: int | None = None,
    max_showers: int | None = None,
) -> dict[str, Any]:
    """Evaluate a generated shower file against a reference; see the module docstring.

    ``max_showers``: evaluate only the first that many showers of each sample.
    Returns the report (the content of ``report.json``).
    """
    if max_showers is not None and max_showers < 2:
        raise CalobenchError(f"--max-showers must be at least 2, got {max_showers}")
    if out is not None:
        check_output_dir(out, "report directory")
    chosen = select_metrics(metrics)
    device = resolve_device(device)
    with open_inputs(generated, reference, dataset=dataset, geometry=geometry, threshold=threshold) as inputs:
        reference_source, generated_source = inputs.reference, inputs.generated
        if max_showers is not None:
            reference_source = FirstShowers(reference_source, max_showers)
            generated_source = FirstShowers(generated_source, max_showers)
        context = EvaluationContext(
            reference_source,
            generated_source,
            inputs.geometry,
            inputs.threshold,
            preset=preset,
            seed=seed,
            device=device,
            dataset=inputs.dataset,
            progress=progress,
            chunk_size=chunk_size,
            mean_shower=plots and out is not None,
            keep_features=plots and out is not None,
        )
        # samples too large for memory are refused before anything is read or warned about
        context.check_memory(context.keeps_features(chosen))
        warn_about_inputs(inputs.reference, inputs.generated)
        files = {
            "reference": [_fingerprint(p, inputs.dataset_checksums) for p in inputs.reference_files],
            "generated": [file_fingerprint(p) for p in inputs.generated_files],
        }
        return evaluate_context(context, chosen, inputs=files, out=out, plots=plots)


def _fingerprint(path: str, checksums: dict[str, str]) -> dict:
    name = Path(path).name
    if name in checksums:
        return {
            "path": path,
            "size": Path(path).stat().st_size if Path(path).exists() else None,
            "md5": checksums[name],
        }
    return file_fingerprint(path)
