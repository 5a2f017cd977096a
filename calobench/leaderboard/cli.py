"""``calobench leaderboard run|render|list`` and ``calobench run`` (the main job: the quick suite)."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from calobench.cli.command import Command
from calobench.errors import CalobenchError
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


def render(suite: Suite, root: Path) -> list[Path]:
    paths = SuitePaths(root, suite.name)
    page = render_suite(suite.name, suite.title, paths.results, suite.published)
    return write_page(page, paths.directory)


def run_and_render(suite: Suite, args: argparse.Namespace) -> tuple[RunSummary, list[Path]]:
    if args.resume and args.fresh:
        raise CalobenchError("--resume and --fresh contradict each other; choose one")
    started = time.perf_counter()
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


def _print_table(readme: Path) -> None:
    for line in readme.read_text().splitlines():
        if line.startswith("|"):
            print(line)


def _run_command(args: argparse.Namespace) -> int:
    suite = load_suite(args.suite)
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
