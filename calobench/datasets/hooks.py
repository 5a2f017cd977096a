"""What calobench.datasets registers through the plugin hooks (see calobench.hookspecs):
the real data sets of the shipped cards and the ``calobench datasets`` command."""

from __future__ import annotations

from calobench.cli.command import Command
from calobench.datasets.spec import DatasetSpec
from calobench.hookspecs import hookimpl


@hookimpl
def calobench_datasets() -> list[DatasetSpec]:
    """The real data sets described by the shipped cards (kind = "real"); synthetic cards are
    registered by calobench.simulator, which owns their maker."""
    from calobench.datasets.cards import load_cards

    return load_cards(kind="real")


@hookimpl
def calobench_commands() -> list[Command]:
    from calobench.datasets.cli import COMMAND

    return [COMMAND]
