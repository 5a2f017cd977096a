"""What calobench.simulator registers through the plugin hooks (see calobench.hookspecs): the
synthetic data sets of the shipped ``synthetic-*`` cards (made by the simulator) and the
``calobench simulate`` command."""

from __future__ import annotations

from calobench.cli.command import Command
from calobench.datasets.spec import DatasetSpec
from calobench.hookspecs import hookimpl


@hookimpl
def calobench_datasets() -> list[DatasetSpec]:
    """The synthetic data sets (cards of kind "synthetic"), each made on demand by the simulator."""
    from calobench.datasets.cards import load_cards
    from calobench.simulator.makers import make_file

    return load_cards(kind="synthetic", maker=make_file)


@hookimpl
def calobench_commands() -> list[Command]:
    from calobench.simulator.cli import COMMAND

    return [COMMAND]
