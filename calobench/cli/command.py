"""The :class:`Command` a plugin (or the core) registers to add a ``calobench`` subcommand."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """A subcommand: ``calobench <name> ...``.

    Attributes:
        name: the subcommand name.
        help: one line shown in ``calobench --help``.
        add_arguments: adds the command's arguments (or its own subparsers) to its parser.
        run: runs the command with the parsed arguments; returns an exit status (``None`` = 0).
            Errors meant for the user are raised as :class:`calobench.errors.CalobenchError`.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], "int | None"]
    description: str | None = None
