"""``calobench leaderboard run``: train, sample, evaluate and time every model of a suite.

For each (model, seed) the steps are: train (or reuse the finished run, resuming an interrupted
one), sample as many showers as the reference holds with the reference's incident energies,
evaluate with the suite's metrics (the full ``calobench evaluate`` report), time the generation, and
write one result file ``leaderboards/<suite>/results/<model>-seed<seed>.json`` with full provenance.
Every step keeps its output on disk, so an interrupted run started again skips what is finished; a
model whose result file says ``finished`` and was written by a run in this checkout is not touched
(a result file without its run, such as the committed ones on a fresh clone, is measured again
here). A model that fails is recorded with the failing step and its error, and the run goes on with
the others.

Layout under ``<root>/<suite>/``: ``results/`` (committed), ``reports/<model>-seed<k>/`` (report.json
and report.md of each evaluation) and ``runs/`` (training runs, samples, the evaluation reference;
large, not committed).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from calobench.errors import CalobenchError, ConfigError
from calobench.leaderboard.histograms import leaderboard_histograms
from calobench.leaderboard.suites import Suite
from calobench.locking import exclusive
from calobench.names import check_name, child_path
from calobench.registry import suggestion_text
from calobench.results import (
    environment_provenance,
    read_result,
    report_problem,
    result_filename,
    timing_problem,
    write_result,
)
from calobench.textfiles import read_json

log = logging.getLogger("calobench.leaderboard")

REFERENCE_SEED = 20221  # fixed: every model of a suite is judged on the same reference subsample


@dataclass
class SuitePaths:
    root: Path
    suite: str

    @property
    def directory(self) -> Path:
        return child_path(self.root, self.suite, "suite")

    # each checked to lie inside the suite directory: a symlinked results/, reports/ or runs/ would
    # let a run write (and --fresh delete) outside --root
    @property
    def results(self) -> Path:
        return child_path(self.directory, "results", "results directory")

    @property
    def reports(self) -> Path:
        return child_path(self.directory, "reports", "reports directory")

    @property
    def runs(self) -> Path:
        return child_path(self.directory, "runs", "runs directory")

    def run_dir(self, model: str, seed: int) -> Path:
        return child_path(self.runs, f"{check_name(model, 'model')}-seed{int(seed)}", "run directory")

    def report_dir(self, model: str, seed: int) -> Path:
        return child_path(self.reports, f"{check_name(model, 'model')}-seed{int(seed)}", "report directory")


@dataclass
class RunSummary:
    finished: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)


class StepError(CalobenchError):
    """A step of a model's leaderboard run failed (the original error is chained)."""

    def __init__(self, step: str, error: BaseException) -> None:
        super().__init__(f"{step}: {type(error).__name__}: {error}")
        self.step, self.error = step, error


def ordered_models(names: Iterable[str], registry: Any) -> list[str]:
    """``names`` with every generator's dependencies (``Generator.dependencies``) placed before it."""
    names = list(names)
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in ordered:
            return
        if name in visiting:
            raise ConfigError(f"generator dependencies form a cycle through {name!r}")
        visiting.add(name)
        if name in registry:
            for dependency in registry.get(name).dependencies.values():
                if dependency in names:
                    visit(dependency)
        visiting.discard(name)
        ordered.append(name)

    for name in names:
        visit(name)
    return ordered


def reference_sample(suite: Suite, paths: SuitePaths) -> list[Any]:
    """The evaluation reference: the data set's reference files, or a fixed random subsample of
    ``suite.reference_showers`` of them written once to ``runs/reference-<N>.hdf5``."""
    from calobench.datasets import ensure_files, open_role
    from calobench.formats import ShowerWriter

    parts = ensure_files(suite.dataset, "reference")
    if suite.reference_showers is None:
        return parts
    target = paths.runs / f"reference-{suite.reference_showers}.hdf5"
    if target.is_file():
        return [target]
    with open_role(suite.dataset, "reference") as source:
        n_total = source.n_showers
        wanted = min(suite.reference_showers, n_total)
        rng = np.random.default_rng(REFERENCE_SEED)
        keep = np.zeros(n_total, dtype=bool)
        keep[rng.choice(n_total, size=wanted, replace=False)] = True
        log.info("writing the evaluation reference: %d of %d reference showers -> %s", wanted, n_total, target)
        with ShowerWriter(target, source.geometry) as writer:
            start = 0
            for chunk in source.iter_chunks():
                mask = keep[start : start + len(chunk)]
                if mask.any():
                    writer.append(chunk[np.flatnonzero(mask)])
                start += len(chunk)
    return [target]


def _dependency_overrides(cls: Any, paths: SuitePaths, seed: int, results: dict[str, dict]) -> dict[str, str]:
    overrides = {}
    for key, dependency in cls.dependencies.items():
        result = results.get(dependency)
        if result is None or result.get("status") != "finished":
            raise ConfigError(
                f"needs a finished {dependency!r} run in this suite (seed {seed}); "
                f"its status is {result.get('status') if result else 'missing'}"
            )
        overrides[key] = str(paths.run_dir(dependency, seed))
    return overrides


def suite_metric_names(suite: Suite) -> list[str] | None:
    """The metric names a suite evaluates (None: every registered one): its ``metrics`` less its
    ``exclude_metrics``, each of which must be a registered metric."""
    chosen = list(suite.metrics) if suite.metrics else None
    if not suite.excluded_metrics:
        return chosen
    from calobench.evaluation.runner import select_metrics
    from calobench.plugins import metrics

    registry = metrics()
    for name in suite.excluded_metrics:
        registry.get(name)  # raises with suggestions
    return [m.name for m in select_metrics(chosen) if m.name not in suite.excluded_metrics]


def _step(name: str, function: Any, *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``; whatever it raises but Ctrl-C (a plugin's SystemExit included)
    is a :class:`StepError`: the model's row fails, the suite goes on."""
    try:
        return function(*args, **kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise StepError(name, exc) from exc


def run_model(
    suite: Suite, model: str, seed: int, paths: SuitePaths, reference: list[Any], device: str, results: dict[str, dict]
) -> dict[str, Any]:
    """Run every step for one (model, seed) and return its result (also on failure)."""
    from calobench.datasets import get_dataset, role_checksums
    from calobench.evaluation import evaluate
    from calobench.generator.runs import load_run_model, run_incident_energies, sample_run, train_run
    from calobench.plugins import generators
    from calobench.timing import time_generator

    registry = generators()
    cls = registry.get(model)
    provider = registry.provider(model)
    preset = suite.preset_for(model)
    spec = get_dataset(suite.dataset)
    base: dict[str, Any] = {
        "suite": suite.name,
        "model": model,
        "seed": seed,
        "preset": preset,
        "metrics_preset": suite.metrics_preset,
        "published_name": cls.published_name,
        "provider": {"plugin": provider.plugin, "distribution": provider.distribution, "version": provider.version},
        "dataset": {
            "name": suite.dataset,
            "kind": spec.kind,
            "checksums": {role: role_checksums(spec, role) for role in ("train", "reference")},
        },
    }
    reason = cls.unsupported_reason(spec.geometry_object, suite.dataset)
    if reason is not None:
        return {
            **base,
            "status": "unsupported",
            "error": {"stage": "check", "message": reason},
            "provenance": environment_provenance(None),
        }

    run_dir = paths.run_dir(model, seed)
    steps = _steps(run_dir)
    overrides = suite.overrides_for(model)
    max_showers = overrides.pop("max_showers", None)
    overrides.update(_step("dependencies", _dependency_overrides, cls, paths, seed, results))
    log.info("[%s seed %d] training (%s preset) in %s", model, seed, preset, run_dir)
    trained = _step(
        "train",
        train_run,
        model,
        suite.dataset,
        run_dir,
        preset=preset,
        overrides=overrides,
        device=device,
        seed=seed,
        max_showers=max_showers,
    )
    run = trained.run

    generated = run_dir / "generated.hdf5"
    sampling = steps.get("sampling")
    if not generated.is_file() or sampling is None:
        log.info("[%s seed %d] sampling one shower per reference shower, with its incident energy", model, seed)
        sampled = _step(
            "sample",
            sample_run,
            run_dir,
            generated,
            energies_from=reference[0] if len(reference) == 1 else reference,
            seed=seed,
            device=device,
        )
        sampling = {
            "n_showers": sampled.n_showers,
            "seconds": sampled.seconds,
            "ms_per_shower": 1e3 * sampled.seconds / max(sampled.n_showers, 1),
        }
        steps.pop("evaluated", None)  # a new sample needs a new report
        _remember(run_dir, steps, "sampling", sampling)

    report_dir = paths.report_dir(model, seed)
    report_file = report_dir / "report.json"
    report = _own_file(report_file, "evaluation report") if steps.get("evaluated") else None
    if report is not None and report_problem(report) is not None:
        log.warning("%s: %s; evaluating again", report_file, report_problem(report))
        report = None
    if report is None:  # a report without the step recorded is not this sample's (e.g. a committed one): redo it
        log.info("[%s seed %d] evaluating against the reference (%s metrics)", model, seed, suite.metrics_preset)
        report = _step(
            "evaluate",
            evaluate,
            str(generated),
            reference if len(reference) > 1 else str(reference[0]),
            dataset=suite.dataset,
            metrics=suite_metric_names(suite),
            preset=suite.metrics_preset,
            seed=seed,
            device=device,
            out=report_dir,
            plots=suite.report_plots,
        )
        _remember(run_dir, steps, "evaluated", True)

    histograms = _step("histograms", leaderboard_histograms, generated, reference)
    timing = steps.get("timing")
    if timing is None:
        log.info("[%s seed %d] timing generation at batch sizes %s", model, seed, list(suite.timing_batch_sizes))
        _, generator = _step("timing", load_run_model, run_dir, device=device)
        pool = run_incident_energies(run_dir)
        timing = _step(
            "timing",
            time_generator,
            generator,
            pool,
            suite.timing_batch_sizes,
            suite.timing_repeats,
            seed,
            suite.timing_max_seconds,
        )
        _remember(run_dir, steps, "timing", timing)

    return {
        **base,
        "status": "finished",
        "config": run.get("config"),
        "training": {
            "seconds": run.get("training_seconds"),
            "n_parameters": run.get("n_parameters"),
            "model_info": run.get("model_info") or {},
            "device": run.get("device"),
            "run_directory": str(run_dir),
        },
        "sampling": sampling,
        "timing": timing,
        "report": report,
        "histograms": histograms,
        "report_directory": str(report_dir),
        "provenance": environment_provenance(timing.get("device")),
    }


STEPS_FILE = "leaderboard-steps.json"


def _own_file(path: Path, what: str) -> dict[str, Any] | None:
    """The JSON object that an earlier step of this run wrote to ``path``; None when it is not there,
    and (with a warning) when it is damaged: the step that wrote it is then done again."""
    if not path.exists():
        return None
    try:
        data = read_json(path, what, CalobenchError)
    except CalobenchError as exc:
        log.warning("%s; its step is done again", exc)
        return None
    if not isinstance(data, dict):
        log.warning("%s %s holds a %s, not an object; its step is done again", what, path, type(data).__name__)
        return None
    return data


def _steps(run_dir: Path) -> dict[str, Any]:
    """The leaderboard steps already finished for a run (sampling, timing), kept next to its run.json.

    A damaged step file, or a step whose record has the wrong shape, counts as not done."""
    steps = _own_file(run_dir / STEPS_FILE, "leaderboard step file") or {}
    sampling, timing = steps.get("sampling"), steps.get("timing")
    if sampling is not None and not (isinstance(sampling, dict) and _is_count(sampling.get("n_showers"))):
        log.warning("%s: the sampling record is malformed; sampling again", run_dir / STEPS_FILE)
        steps.pop("sampling")
    if timing is not None and timing_problem(timing) is not None:
        log.warning("%s: %s; timing again", run_dir / STEPS_FILE, timing_problem(timing))
        steps.pop("timing")
    return steps


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _remember(run_dir: Path, steps: dict[str, Any], key: str, value: Any) -> None:
    from calobench.atomic import write_json_atomic

    steps[key] = value
    write_json_atomic(run_dir / STEPS_FILE, steps)


RESULT_STEP = "result_written"


def made_here(paths: SuitePaths, model: str, seed: int) -> bool:
    """Whether the result file of (model, seed) was written by a run in this checkout (its run
    directory records it as the last step).

    A result file without that record (a committed result, one copied from another machine, or one
    whose local re-run was interrupted) is not resumed from: ``leaderboard run`` measures the model
    on this machine and replaces it, while ``leaderboard render`` still shows it as it is."""
    return bool(_steps(paths.run_dir(model, seed)).get(RESULT_STEP))


def selected_models(suite: Suite, models: list[str] | None = None) -> list[str]:
    """The suite's models (or ``models``), unknown names refused with suggestions, dependencies first."""
    from calobench.plugins import generators

    registry = generators()
    wanted = list(suite.models) if suite.models is not None else registry.names()
    if models:
        unknown = [m for m in models if m not in registry]
        if unknown:
            registry.get(unknown[0])  # raises with suggestions
        wanted = [m for m in wanted if m in models] + [m for m in models if m not in wanted]
    for name in wanted:
        registry.get(name)  # unknown names fail early, with suggestions
    return ordered_models(wanted, registry)


def check_suite(suite: Suite, models: list[str] | None = None) -> list[str]:
    """Check everything about a suite that needs the registries, before any work: its data set, its
    models (the selected ones, dependencies first, are returned) with their presets and ``set``
    overrides, its ``[model.NAME]`` tables and its metrics. The first problem raises, naming it."""
    from calobench.datasets import get_dataset
    from calobench.generator.base import resolve_config
    from calobench.plugins import generators

    get_dataset(suite.dataset)
    registry = generators()
    for name in suite.model_settings:
        if name not in registry:
            raise ConfigError(
                f"suite {suite.name!r}: [model.{name}] names no registered generator"
                f"{suggestion_text(name, registry.names())}"
            )
    wanted = selected_models(suite, models)
    for name in wanted:
        overrides = suite.overrides_for(name)
        overrides.pop("max_showers", None)
        try:
            resolve_config(registry.get(name), suite.preset_for(name), overrides)
        except ConfigError as exc:
            raise ConfigError(f"suite {suite.name!r}, model {name!r}: {exc}") from None
    suite_metric_names(suite)  # an unknown metric, or excluded metric, fails here
    return wanted


def run_suite(
    suite: Suite,
    root: Path = Path("leaderboards"),
    models: list[str] | None = None,
    device: str | None = None,
    fresh: bool = False,
) -> RunSummary:
    """Run (or resume) a suite; see the module docstring. Returns what happened per model."""
    from calobench.generator.device import resolve_device

    paths = SuitePaths(root, suite.name)
    wanted = check_suite(suite, models)
    resolve_device(device or suite.device)
    paths.directory.mkdir(parents=True, exist_ok=True)
    with exclusive(paths.directory, f"leaderboard suite {suite.name!r} in {paths.directory}"):
        return _run_locked(suite, paths, wanted, device or suite.device, fresh)


def reusable_result(paths: SuitePaths, model: str, seed: int) -> dict[str, Any] | None:
    """The result of (model, seed) if a run in this checkout finished it (or found it not applicable):
    ``leaderboard run`` skips it. ``None`` if it has to run (again)."""
    existing = paths.results / result_filename(model, seed)
    if not existing.is_file():
        return None
    previous = read_result(existing)
    if previous["status"] in ("finished", "unsupported") and made_here(paths, model, seed):
        return previous
    if previous["status"] == "finished":
        log.info(
            "[%s seed %d] %s was not made by a finished run in %s (a committed or copied result): running it here",
            model,
            seed,
            existing,
            paths.run_dir(model, seed),
        )
    return None


def run_and_record(
    suite: Suite,
    model: str,
    seed: int,
    paths: SuitePaths,
    reference: list[Any],
    device: str,
    results: dict[str, dict],
) -> dict[str, Any]:
    """Run one (model, seed) with :func:`run_model`, write its result file (also on failure) and
    record in its run directory that this run wrote it (see :func:`made_here`). The one step the
    serial runner and the Dask tasks (:mod:`calobench.leaderboard.distributed`) share."""
    started = time.perf_counter()
    try:
        result = run_model(suite, model, seed, paths, reference, device, results)
    except StepError as exc:
        log.error("[%s seed %d] failed in %s: %s", model, seed, exc.step, exc.error)
        result = failed_result(suite, model, seed, exc)
    result["wall_seconds"] = time.perf_counter() - started
    write_result(paths.results, result)
    if result["status"] == "finished":
        run_dir = paths.run_dir(model, seed)
        _remember(run_dir, _steps(run_dir), RESULT_STEP, True)
    return result


def count(summary: RunSummary, label: str, status: str) -> None:
    """Add ``label`` to the list of ``summary`` for a result of ``status``."""
    getattr(summary, {"finished": "finished", "failed": "failed", "unsupported": "unsupported"}[status]).append(label)


def _run_locked(suite: Suite, paths: SuitePaths, wanted: list[str], device: str, fresh: bool) -> RunSummary:
    """:func:`run_suite` once the suite directory is locked."""
    summary = RunSummary()
    reference = reference_sample(suite, paths)
    for seed in suite.seeds:
        results: dict[str, dict] = {}
        for model in wanted:
            label = f"{model}-seed{seed}"
            if fresh:
                forget(paths, model, seed)
            previous = reusable_result(paths, model, seed)
            if previous is not None:
                results[model] = previous
                summary.skipped.append(label)
                log.info("[%s seed %d] already %s: skipped", model, seed, previous["status"])
                continue
            results[model] = run_and_record(suite, model, seed, paths, reference, device, results)
            count(summary, label, results[model]["status"])
    return summary


def forget(paths: SuitePaths, model: str, seed: int) -> None:
    """Remove everything a previous run of (model, seed) left in the suite (``--fresh``)."""
    import shutil

    for directory in (paths.run_dir(model, seed), paths.report_dir(model, seed)):
        shutil.rmtree(directory, ignore_errors=True)
    (paths.results / result_filename(model, seed)).unlink(missing_ok=True)


def failed_result(suite: Suite, model: str, seed: int, exc: StepError) -> dict[str, Any]:
    from calobench.plugins import generators

    registry = generators()
    provider = registry.provider(model)
    tail = "".join(traceback.format_exception(type(exc.error), exc.error, exc.error.__traceback__)[-3:])
    return {
        "suite": suite.name,
        "model": model,
        "seed": seed,
        "status": "failed",
        "preset": suite.preset_for(model),
        "metrics_preset": suite.metrics_preset,
        "published_name": registry.get(model).published_name,
        "provider": {"plugin": provider.plugin, "distribution": provider.distribution, "version": provider.version},
        "dataset": {"name": suite.dataset},
        "error": {"stage": exc.step, "type": type(exc.error).__name__, "message": str(exc.error), "traceback": tail},
        "provenance": environment_provenance(None),
    }
