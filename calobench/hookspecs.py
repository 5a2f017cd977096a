# Hook specifications are signatures only: pluggy never calls these bodies (it calls the plugins'
# implementations and collects their results), so their docstring-only bodies are intended.
# mypy: allow-empty-bodies
"""The hooks a calobench plugin implements (pluggy project ``"calobench"``).

A plugin is a module named by an entry point in the ``calobench`` group, e.g. in its
``pyproject.toml``::

    [project.entry-points.calobench]
    caloflow = "calobench_caloflow"

and defines any of the functions below, decorated with :data:`hookimpl`::

    from calobench.hookspecs import hookimpl

    @hookimpl
    def calobench_generators():
        return [MyGenerator]

Each hook returns a list; the host checks every element and records which plugin (entry-point
name, distribution and version) provided it. A plugin whose hook raises or returns something of
the wrong type is reported as failed and skipped; it never takes the host down. The built-in
generators, data sets, metrics and commands register through these same hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from calobench.cli.command import Command
    from calobench.datasets.spec import DatasetSpec
    from calobench.generator.base import Generator
    from calobench.metrics.base import Metric

PROJECT = "calobench"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def calobench_generators() -> "list[type[Generator]]":
    """Return generator classes (subclasses of :class:`calobench.generator.Generator`).

    Each class is registered under its ``name`` class attribute, e.g. ``"caloflow-teacher"``.
    """


@hookspec
def calobench_datasets() -> "list[DatasetSpec]":
    """Return data-set specifications (:class:`calobench.datasets.DatasetSpec` instances).

    Real data sets usually come from a card file (``DatasetSpec.from_card``); synthetic ones carry
    a function that makes their files on demand.
    """


@hookspec
def calobench_metrics() -> "list[Metric]":
    """Return metrics (:class:`calobench.metrics.Metric` instances) with a name, a version and a
    direction (lower is better or not)."""


@hookspec
def calobench_commands() -> "list[Command]":
    """Return command-line subcommands (:class:`calobench.cli.Command` instances).

    Each command names itself, adds its arguments to an ``argparse`` parser and runs with the parsed
    namespace; ``calobench <name> ...`` then dispatches to it.
    """
