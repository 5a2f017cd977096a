"""The :class:`Metric` interface every metric implements, built-in or from a plugin.

A metric is an object with a ``name``, a ``version`` (an integer bumped on any change that alters
its numbers), a direction (``lower_is_better``: True, False, or None for descriptive outputs such
as the energy response) and a ``description``. :meth:`Metric.compute` receives an
:class:`~calobench.metrics.context.EvaluationContext` (reference and generated showers, their
high-level features, geometry, threshold, preset, seed, device) and returns a *report fragment*: a
JSON-ready mapping from top-level report keys to values, e.g. ``{"fpd": {"value": ..., "error":
...}}``. Register instances through the ``calobench_metrics()`` hook::

    from calobench.hookspecs import hookimpl
    from calobench.metrics.base import Metric

    class MeanEnergyRatio(Metric):
        name = "mean_energy_ratio"
        version = 1
        lower_is_better = True
        description = "|<E_tot> gen / <E_tot> ref - 1|"
        report_keys = ("mean_energy_ratio",)

        def compute(self, context):
            ref, gen = context.reference_features.e_tot, context.generated_features.e_tot
            return {"mean_energy_ratio": abs(gen.mean() / ref.mean() - 1)}

    @hookimpl
    def calobench_metrics():
        return [MeanEnergyRatio()]
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from calobench.errors import CalobenchError

if TYPE_CHECKING:
    from calobench.metrics.context import EvaluationContext


class MetricError(CalobenchError):
    """A metric cannot be computed on these inputs (too few showers, undefined quantity...)."""


@dataclass(frozen=True)
class Scalar:
    """One headline number of a metric (for tables, metric validation and leaderboards).

    ``error`` is the metric's own uncertainty (None if it has none); ``direction`` is +1 when larger
    values mean a worse model, -1 when smaller values do, 0 when both directions do.
    """

    value: float | None
    error: float | None = None
    direction: int = 1

    @property
    def finite(self) -> bool:
        return self.value is not None and math.isfinite(self.value)


class Metric(abc.ABC):
    """Base class of a metric; subclasses set the class attributes and implement :meth:`compute`."""

    name: ClassVar[str]
    version: ClassVar[int]
    lower_is_better: ClassVar[bool | None]
    description: ClassVar[str]
    #: Top-level report keys this metric writes (``null`` when it is skipped or not applicable).
    report_keys: ClassVar[tuple[str, ...]] = ()
    #: Whether the metric needs the voxel-energy histogram (one more histogram in the streaming pass).
    needs_voxel_spectrum: ClassVar[bool] = False
    #: Whether the metric reads the high-level features of every shower (``context.reference_features``);
    #: when no selected metric does, they are not kept and memory stays flat in the number of showers.
    needs_features: ClassVar[bool] = True

    def not_applicable(self, context: "EvaluationContext") -> str | None:
        """Why the metric cannot run on this evaluation, or None if it can."""
        return None

    def showers_needed(self, context: "EvaluationContext") -> int:
        """How many showers per sample the metric needs in memory (0: features are enough)."""
        return 0

    @abc.abstractmethod
    def compute(self, context: "EvaluationContext") -> dict[str, Any]:
        """The report fragment ``{report key: JSON-ready value}``."""

    def scalars(self, fragment: dict[str, Any]) -> dict[str, Scalar]:
        """Headline numbers of a computed fragment, keyed by a short label."""
        return {}

    def null_fragment(self) -> dict[str, Any]:
        """The fragment written when the metric does not run."""
        return {key: None for key in self.report_keys}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} v{self.version}>"
