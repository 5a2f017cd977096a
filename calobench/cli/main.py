"""Entry point of the ``calobench`` console script.

Commands come from the plugin registry (built-in ones included). A :class:`CalobenchError` is
printed as one line on stderr with a non-zero exit status; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from calobench import __version__
from calobench.atomic import describe_os_error
from calobench.errors import CalobenchError
from calobench.plugins import get_host

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool killed by a closed pipe


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="calobench",
        description="Train, sample, time and judge generative calorimeter-shower models (CaloChallenge metrics).",
    )
    parser.add_argument("--version", action="version", version=f"calobench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="only print warnings and errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for entry in get_host().commands.entries():
        command = entry.value
        sub = subparsers.add_parser(command.name, help=command.help, description=command.description or command.help)
        command.add_arguments(sub)
        sub.set_defaults(_command=command)
    return parser


def _configure_logging(quiet: bool) -> None:
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s", stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    _configure_logging("-q" in argv or "--quiet" in argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if getattr(args, "_command", None) is None:
            parser.print_help()
            return EXIT_ERROR
        status = args._command.run(args)
        return int(status or 0)
    except CalobenchError as exc:
        if debug:
            raise
        print(f"calobench: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("calobench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader went away (`calobench info FILE | head -1`): stop quietly, as Unix tools do
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as exc:  # what the system refused (disk full, permission) and no writer named
        if debug:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        print(f"calobench: error: {describe_os_error(exc)}{where}", file=sys.stderr)
        return EXIT_ERROR


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
