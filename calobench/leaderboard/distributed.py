"""``calobench leaderboard run --cluster ...|--scheduler ...``: a suite as Dask tasks.

One Dask task per (model, seed) runs :func:`~calobench.leaderboard.runner.run_and_record`, the same
step the serial runner takes: it trains (resuming an interrupted run from its per-epoch
checkpoints), samples, evaluates, times and writes the model's result file atomically into the
shared results directory. A generator's dependencies (``Generator.dependencies``, e.g. the
CaloFlow teacher of the student) are task dependencies: the student's task gets the teacher's
result. Results that a run in this checkout already finished are skipped by the driver, as in the
serial run.

The driver holds the suite lock for the whole sweep; each task holds the lock of its run
directory (waiting up to ``lock_timeout`` seconds for it, e.g. while a task of an earlier, lost
driver still runs there). A task whose worker dies is rescheduled by Dask on another worker
(up to the scheduler's ``distributed.scheduler.allowed-failures``), a task that raises is retried
``retries`` times; either way the new attempt resumes from the last checkpoint: the kernel
released the dead worker's run-directory lock. A task that never succeeds gets a ``failed``
result file written by the driver (stage ``worker``), and its dependents fail in stage
``dependencies``, as in the serial run.

Tasks that other tasks wait for go first (Dask priorities, :func:`chain_priorities`): the
CaloFlow teacher starts while the independent models run beside it, instead of after them with its
student waiting at the end of the sweep.

Workers must see the driver's files at the same paths (a shared file system, the same
``CALOBENCH_DATA``, the same calobench and plugins installed).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calobench.errors import CalobenchError, ConfigError
from calobench.leaderboard.runner import (
    RunSummary,
    StepError,
    SuitePaths,
    check_suite,
    count,
    failed_result,
    forget,
    reference_sample,
    reusable_result,
    run_and_record,
)
from calobench.leaderboard.suites import Suite
from calobench.locking import exclusive, waiting_lock
from calobench.results import write_result

if TYPE_CHECKING:
    from distributed import Client, Future

log = logging.getLogger("calobench.leaderboard")

#: Seconds a task waits for the lock of its run directory before it fails (and is retried).
LOCK_TIMEOUT = 600.0
#: The Dask worker resource a GPU task asks for one of.
GPU_RESOURCE = "GPU"


class WorkerSetupError(CalobenchError):
    """A worker cannot see the driver's files (no shared file system, another working directory)."""


@dataclass
class TaskOutcome:
    """What one sweep task returns to the driver."""

    result: dict[str, Any]
    reused: bool  # a run of another driver had finished it while this task waited for its lock
    worker: str
    seconds: float


def uses_gpu(device: str) -> bool:
    """Whether tasks on ``device`` must each hold a worker's GPU resource."""
    return device.startswith("cuda")


def _check_worker_view(paths: SuitePaths, reference: list[Any], driver_cwd: str) -> None:
    """Refuse to run where the driver's suite directory and reference are not visible."""
    if not paths.root.is_absolute() and os.getcwd() != driver_cwd:
        raise WorkerSetupError(
            f"this worker runs in {os.getcwd()}, not in the driver's directory {driver_cwd}: "
            "give --root as an absolute path on a file system the workers share"
        )
    first = reference[0] if isinstance(reference[0], (str, Path)) else reference[0][0]
    for needed in (paths.directory, Path(first)):
        if not Path(needed).exists():
            raise WorkerSetupError(
                f"this worker cannot see {needed}: the workers need the driver's file system "
                "(a shared --root and the same CALOBENCH_DATA)"
            )


def sweep_task(
    suite: Suite,
    model: str,
    seed: int,
    paths: SuitePaths,
    reference: list[Any],
    device: str,
    dependencies: dict[str, Any],
    driver_cwd: str,
    log_level: int = logging.INFO,
    torch_threads: int | None = None,
    lock_timeout: float = LOCK_TIMEOUT,
) -> TaskOutcome:
    """The Dask task of one (model, seed): :func:`run_and_record` under the run directory's lock.

    ``dependencies`` maps the names of the generators this one depends on to their results (or
    :class:`TaskOutcome`, as Dask passes a finished dependency task's value)."""
    started = time.perf_counter()
    logging.getLogger("calobench").setLevel(log_level)
    if torch_threads is not None:
        import torch

        torch.set_num_threads(torch_threads)
    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):
        worker = "local"
    _check_worker_view(paths, reference, driver_cwd)
    results = {name: value.result if isinstance(value, TaskOutcome) else value for name, value in dependencies.items()}
    run_dir = paths.run_dir(model, seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    with waiting_lock(run_dir, f"run directory {run_dir}", lock_timeout):
        previous = reusable_result(paths, model, seed)
        if previous is not None:
            return TaskOutcome(previous, True, worker, time.perf_counter() - started)
        log.info("[%s seed %d] started on worker %s", model, seed, worker)
        result = run_and_record(suite, model, seed, paths, reference, device, results)
    return TaskOutcome(result, False, worker, time.perf_counter() - started)


def chain_priorities(models: list[str], registry: Any) -> dict[str, int]:
    """Dask priority of each model's task: the length of the longest chain of the suite's models
    waiting for it (0 when none does), so that the critical path starts first. ``models`` must be
    free of dependency cycles (:func:`~calobench.leaderboard.runner.selected_models` checks)."""
    dependents = {m: [n for n in models if m in registry.get(n).dependencies.values()] for m in models}
    depth: dict[str, int] = {}

    def chain(model: str) -> int:
        if model not in depth:
            depth[model] = max((1 + chain(d) for d in dependents[model]), default=0)
        return depth[model]

    return {model: chain(model) for model in models}


@dataclass
class _Submitted:
    model: str
    seed: int
    future: Future
    dependencies: dict[str, Future]  # the tasks of the generators this one depends on


def run_suite_distributed(
    suite: Suite,
    client: Client,
    root: Path = Path("leaderboards"),
    models: list[str] | None = None,
    device: str | None = None,
    fresh: bool = False,
    retries: int = 2,
    gpu_tasks: bool | None = None,
    torch_threads: int | None = None,
    lock_timeout: float = LOCK_TIMEOUT,
) -> RunSummary:
    """Run (or resume) a suite as Dask tasks on ``client``'s cluster; see the module docstring.

    Args:
        gpu_tasks: whether each task asks for ``resources={"GPU": 1}``; by default when the device
            is ``cuda[:N]``.
        torch_threads: torch's intra-op threads in each task (default: the worker's setting).
    """
    paths = SuitePaths(root, suite.name)
    wanted = check_suite(suite, models)
    device = device or suite.device
    paths.directory.mkdir(parents=True, exist_ok=True)
    with exclusive(paths.directory, f"leaderboard suite {suite.name!r} in {paths.directory}"):
        return _sweep_locked(
            suite,
            client,
            paths,
            wanted,
            device,
            fresh,
            retries,
            uses_gpu(device) if gpu_tasks is None else gpu_tasks,
            torch_threads,
            lock_timeout,
        )


def _sweep_locked(
    suite: Suite,
    client: Client,
    paths: SuitePaths,
    wanted: list[str],
    device: str,
    fresh: bool,
    retries: int,
    gpu_tasks: bool,
    torch_threads: int | None,
    lock_timeout: float,
) -> RunSummary:
    """:func:`run_suite_distributed` once the suite directory is locked."""
    from calobench.datasets import ensure_files
    from calobench.plugins import generators

    registry = generators()
    summary = RunSummary()
    reference = reference_sample(suite, paths)
    ensure_files(suite.dataset, "train")  # made once here, not by every worker at the same time
    resources = {GPU_RESOURCE: 1} if gpu_tasks else None
    if gpu_tasks:
        _warn_without_gpu_workers(client)
    level = logging.getLogger("calobench").getEffectiveLevel()
    _forward_logging(client, level)
    submitted: list[_Submitted] = []
    priorities = chain_priorities(wanted, registry)
    # submitted in priority order too: an idle worker takes the first task it is offered, before
    # later submissions are prioritized (a dependency outranks what depends on it, so it still
    # comes first)
    by_priority = sorted(wanted, key=lambda name: -priorities[name])
    for seed in suite.seeds:
        results: dict[str, Any] = {}  # model -> finished result, or the future of its task
        for model in by_priority:
            label = f"{model}-seed{seed}"
            if fresh:
                forget(paths, model, seed)
            previous = reusable_result(paths, model, seed)
            if previous is not None:
                results[model] = previous
                summary.skipped.append(label)
                log.info("[%s seed %d] already %s: skipped", model, seed, previous["status"])
                continue
            needs = [d for d in registry.get(model).dependencies.values() if d in results]
            future = client.submit(
                sweep_task,
                suite,
                model,
                seed,
                paths,
                reference,
                device,
                {name: results[name] for name in needs},
                os.getcwd(),
                level,
                torch_threads,
                lock_timeout,
                key=f"calobench-{suite.name}-{label}-{uuid.uuid4().hex[:8]}",
                resources=resources,
                retries=retries,
                priority=priorities[model],
                pure=False,
            )
            results[model] = future
            waits_for = {n: results[n] for n in needs if not isinstance(results[n], dict)}
            submitted.append(_Submitted(model, seed, future, waits_for))
    log.info(
        "suite %s: %d task(s) submitted to %s (%d skipped)",
        suite.name,
        len(submitted),
        client.scheduler.address if client.scheduler else "?",
        len(summary.skipped),
    )
    _collect(suite, paths, submitted, summary)
    return summary


def _collect(suite: Suite, paths: SuitePaths, submitted: list[_Submitted], summary: RunSummary) -> None:
    """Wait for every task (in order of completion) and count its result; a task that failed for
    good gets a ``failed`` result file written here."""
    from distributed import as_completed

    by_key = {item.future.key: item for item in submitted}
    for future in as_completed([item.future for item in submitted]):
        item = by_key[future.key]
        label = f"{item.model}-seed{item.seed}"
        exception = future.exception() if future.status == "error" else None
        if future.status == "cancelled":
            exception = CalobenchError("the task was cancelled")
        if exception is None:
            outcome: TaskOutcome = future.result()
            status = outcome.result["status"]
            log.info("[%s seed %d] %s on %s in %.0f s", item.model, item.seed, status, outcome.worker, outcome.seconds)
            if outcome.reused:
                summary.skipped.append(label)
            else:
                count(summary, label, status)
            continue
        failed_dependency = next((n for n, f in item.dependencies.items() if f.status != "finished"), None)
        if failed_dependency is not None:
            error = StepError(
                "dependencies",
                ConfigError(
                    f"needs a finished {failed_dependency!r} run in this suite (seed {item.seed}); its task failed"
                ),
            )
        else:
            error = StepError("worker", exception)
        log.error("[%s seed %d] failed in %s: %s", item.model, item.seed, error.step, error.error)
        result = failed_result(suite, item.model, item.seed, error)
        write_result(paths.results, result)
        count(summary, label, "failed")


def _forward_logging(client: Client, level: int) -> None:
    """Show the workers' calobench log records in the driver's log."""
    try:
        client.forward_logging("calobench", level=level)
    except Exception as exc:  # an old scheduler without the handler: the workers' logs stay there
        log.warning("the workers' log records are not forwarded here: %s", exc)


def _warn_without_gpu_workers(client: Client) -> None:
    from calobench.leaderboard.clusters import workers_declare_gpu

    if client.scheduler_info().get("workers") and not workers_declare_gpu(client):
        log.warning(
            "the tasks ask for a %s resource but no worker declares one: they wait for workers started "
            "with `--resources %s=1` (see docs/distributed-sweeps.md)",
            GPU_RESOURCE,
            GPU_RESOURCE,
        )
