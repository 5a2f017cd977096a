"""``calobench leaderboard run|render|list`` and ``calobench run`` (the main job: the quick suite)."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from calobench.cli.command import Command
from calobench.errors import CalobenchError
from calobench.leaderboard.clusters import ClusterOptions, check_options, job_script, parse_cluster
from calobench.leaderboard.render import render_suite, stale_files, write_page
from calobench.leaderboard.runner import RunSummary, SuitePaths, run_suite
from calobench.leaderboard.suites import Suite, available_suites, load_suite

log = logging.getLogger("calobench.leaderboard")
DEFAULT_ROOT = Path("leaderboards")


class StaleLeaderboardError(CalobenchError):
    """A committed leaderboard page differs from a fresh rendering of its result files."""


def _add_run_arguments(parser: argparse.ArgumentParser, with_suite: bool = True) -> None:
    if with_suite:
        parser.add_argument("suite", help=f"a shipped suite ({', '.join(available_suites())}) or a suite TOML file")
    parser.add_argument("--models", nargs="+", help="run only these generators (default: the suite's models)")
    parser.add_argument(
        "--device",
        help="device for training, sampling, timing and classifiers (default: the "
        "suite's, normally auto = CUDA when present, else CPU)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run (the default: finished models are always skipped)",
    )
    parser.add_argument("--fresh", action="store_true", help="discard earlier runs of the selected models first")
    parser.add_argument(
        "--root",
        type=Path,
        default=DEFAULT_ROOT,
        help="directory holding <suite>/results, reports and runs (default ./leaderboards)",
    )
    _add_cluster_arguments(parser)


def _add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "distributed sweep (Dask; needs pip install 'calobench[distributed]'; see docs/distributed-sweeps.md)"
    )
    group.add_argument(
        "--cluster",
        metavar="local[:N]|slurm|htcondor",
        help="run one Dask task per (model, seed): local[:N] starts N worker processes here (default: one "
        "per core, or per GPU with a cuda device); slurm or htcondor submits dask-jobqueue jobs",
    )
    group.add_argument("--scheduler", metavar="ADDRESS", help="use a running Dask scheduler, e.g. tcp://host:8786")
    group.add_argument(
        "--retries",
        type=int,
        metavar="N",
        help="times a task that raised, or whose worker died, is started again; it resumes from its last "
        "checkpoint (default 2)",
    )
    group.add_argument(
        "--worker-timeout",
        type=float,
        metavar="SECONDS",
        help="how long to wait for the first worker of --scheduler or of the submitted jobs before giving up "
        "(default 600)",
    )
    group.add_argument(
        "--threads-per-task",
        type=int,
        metavar="T",
        help="torch threads of each task (default: cores / N on a local cluster, else the worker's setting)",
    )
    jobs = parser.add_argument_group(
        "batch jobs (--cluster slurm|htcondor; omitted options come from dask's jobqueue configuration, "
        "e.g. ~/.config/dask/jobqueue.yaml)"
    )
    jobs.add_argument(
        "--jobs", type=int, metavar="N", help="batch jobs kept running, a job that ends is replaced (default 1)"
    )
    jobs.add_argument("--queue", help="Slurm partition")
    jobs.add_argument("--account", help="Slurm account to charge")
    jobs.add_argument("--walltime", metavar="HH:MM:SS", help="Slurm time limit of each job")
    jobs.add_argument("--cores", type=int, metavar="C", help="cores of each job")
    jobs.add_argument("--memory", metavar="SIZE", help="memory of each job, e.g. 32GB")
    jobs.add_argument("--disk", metavar="SIZE", help="HTCondor disk request of each job, e.g. 10GB")
    jobs.add_argument(
        "--processes",
        type=int,
        metavar="P",
        help="Dask worker processes per job (default: one per GPU with --gpus, else dask-jobqueue's)",
    )
    jobs.add_argument(
        "--gpus",
        type=int,
        metavar="G",
        help="GPUs of each job (Slurm --gres=gpu:G, HTCondor request_gpus); each worker declares GPU=1",
    )
    jobs.add_argument(
        "--job-extra",
        action="append",
        default=[],
        metavar="DIRECTIVE",
        help="extra job directive, repeatable: a Slurm option (--constraint=a100) or an HTCondor "
        "submit command (KEY=VALUE)",
    )
    jobs.add_argument("--print-job-script", action="store_true", help="print the batch script of one job and exit")


def cluster_options(args: argparse.Namespace) -> ClusterOptions:
    """The ``--cluster``/``--scheduler`` options of a parsed command line, checked."""
    kind, workers = parse_cluster(args.cluster) if args.cluster else (None, None)
    options = ClusterOptions(
        kind=kind,
        workers=workers,
        scheduler=args.scheduler,
        queue=args.queue,
        account=args.account,
        walltime=args.walltime,
        cores=args.cores,
        memory=args.memory,
        disk=args.disk,
        processes=args.processes,
        jobs=args.jobs,
        gpus=args.gpus,
        job_extra=list(args.job_extra),
        retries=args.retries,
        threads_per_task=args.threads_per_task,
        worker_timeout=args.worker_timeout,
    )
    check_options(options)
    return options


def render(suite: Suite, root: Path) -> list[Path]:
    paths = SuitePaths(root, suite.name)
    page = render_suite(suite.name, suite.title, paths.results, suite.published)
    return write_page(page, paths.directory)


def run_and_render(suite: Suite, args: argparse.Namespace) -> tuple[RunSummary, list[Path]]:
    if args.resume and args.fresh:
        raise CalobenchError("--resume and --fresh contradict each other; choose one")
    options = cluster_options(args)
    started = time.perf_counter()
    if options.distributed:
        summary = _run_distributed(suite, args, options)
    else:
        summary = run_suite(suite, root=args.root, models=args.models, device=args.device, fresh=args.fresh)
    written = render(suite, args.root)
    log.info(
        "suite %s: %d finished, %d reused, %d failed, %d not applicable in %.1f min",
        suite.name,
        len(summary.finished),
        len(summary.skipped),
        len(summary.failed),
        len(summary.unsupported),
        (time.perf_counter() - started) / 60,
    )
    return summary, written


def _run_distributed(suite: Suite, args: argparse.Namespace, options: ClusterOptions) -> RunSummary:
    from calobench.leaderboard.clusters import open_sweep
    from calobench.leaderboard.distributed import run_suite_distributed

    device = args.device or suite.device
    with open_sweep(options, device) as sweep:
        return run_suite_distributed(
            suite,
            sweep.client,
            root=args.root,
            models=args.models,
            device=device,
            fresh=args.fresh,
            retries=options.task_retries,
            gpu_tasks=sweep.gpu_tasks,
            torch_threads=sweep.threads_per_task,
        )


def _print_table(readme: Path) -> None:
    for line in readme.read_text().splitlines():
        if line.startswith("|"):
            print(line)


def _run_command(args: argparse.Namespace) -> int:
    suite = load_suite(args.suite)
    if args.print_job_script:
        options = cluster_options(args)
        print(job_script(options, args.device or suite.device), end="")
        return 0
    summary, written = run_and_render(suite, args)
    _print_table(written[0].parent / "README.md")
    print(f"leaderboard page: {(written[0].parent / 'index.html').resolve()}")
    return 1 if summary.failed and not (summary.finished or summary.skipped) else 0


def _render_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite", nargs="?", help="suite to render (default: every suite with results)")
    parser.add_argument(
        "--check", action="store_true", help="fail if the committed page differs from a fresh rendering"
    )
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)


def _render_command(args: argparse.Namespace) -> int:
    names = [args.suite] if args.suite else [n for n in available_suites() if (args.root / n / "results").is_dir()]
    stale: list[str] = []
    for name in names:
        suite = load_suite(name)
        paths = SuitePaths(args.root, suite.name)
        page = render_suite(suite.name, suite.title, paths.results, suite.published)
        if args.check:
            stale += [str(paths.directory / f) for f in stale_files(page, paths.directory)]
        else:
            for path in write_page(page, paths.directory):
                print(f"wrote {path}")
    if stale:
        raise StaleLeaderboardError(
            "stale leaderboard page(s): "
            + ", ".join(stale)
            + "; run `calobench leaderboard render` and commit the result"
        )
    if args.check:
        print(f"up to date: {', '.join(names) or 'no suite has results'}")
    return 0


def _list_command(args: argparse.Namespace) -> int:
    for name in available_suites():
        suite = load_suite(name)
        print(f"{name:<28} {suite.dataset:<28} preset {suite.preset:<6} {suite.title}")
    return 0


def _leaderboard_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="leaderboard_command", metavar="ACTION", required=True)
    run = sub.add_parser("run", help="train, sample, evaluate and time every model of a suite (resumable)")
    _add_run_arguments(run)
    run.set_defaults(_action=_run_command)
    rend = sub.add_parser("render", help="write <suite>/README.md and index.html from the result files")
    _render_arguments(rend)
    rend.set_defaults(_action=_render_command)
    lst = sub.add_parser("list", help="list the shipped suites")
    lst.set_defaults(_action=_list_command)


def _leaderboard_run(args: argparse.Namespace) -> int:
    return args._action(args)


def _main_arguments(parser: argparse.ArgumentParser) -> None:
    _add_run_arguments(parser, with_suite=False)
    parser.set_defaults(suite="quick")


def leaderboard_command() -> Command:
    return Command(
        "leaderboard",
        "run a benchmark suite, render its leaderboard page, list suites",
        _leaderboard_arguments,
        _leaderboard_run,
    )


def main_job_command() -> Command:
    return Command(
        "run",
        "the main job: run the quick suite on the embedded synthetic data and print the leaderboard",
        _main_arguments,
        _run_command,
    )
