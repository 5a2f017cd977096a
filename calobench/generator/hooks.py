"""What calobench.generator registers through the plugin hooks (see calobench.hookspecs):
the baseline generators and the ``models``, ``train`` and ``sample`` commands."""

from __future__ import annotations

from calobench.hookspecs import hookimpl


@hookimpl
def calobench_generators() -> list:
    from calobench.generator.baselines import SimulatorTruth, UncorrelatedVoxels

    return [UncorrelatedVoxels, SimulatorTruth]


@hookimpl
def calobench_commands() -> list:
    from calobench.generator.cli import COMMANDS

    return list(COMMANDS)
