"""What calobench.metrics registers through the plugin hooks (see calobench.hookspecs): every
built-in metric, and the ``evaluate`` and ``validate-metrics`` commands."""

from __future__ import annotations

from calobench.cli.command import Command
from calobench.hookspecs import hookimpl
from calobench.metrics.base import Metric


@hookimpl
def calobench_metrics() -> list[Metric]:
    from calobench.metrics.builtin import builtin_metrics
    from calobench.metrics.classifier_metric import classifier_metrics

    return [*builtin_metrics(), *classifier_metrics()]


@hookimpl
def calobench_commands() -> list[Command]:
    from calobench.evaluation.cli import evaluate_command, validate_metrics_command

    return [evaluate_command(), validate_metrics_command()]
