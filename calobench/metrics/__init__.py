"""calobench.metrics: the CaloChallenge metrics (arXiv 2410.21611) and calobench's additions.

* :mod:`.features`: high-level features; :mod:`.separation`, :mod:`.binning`: separation powers;
* :mod:`.frechet`, :mod:`.kernel`, :mod:`.prdc`, :mod:`.wasserstein`: distances (FPD, KPD, PRDC, W1);
* :mod:`.intrinsic_dimension`: Levina-Bickel MLE; :mod:`.response`: energy response, correlations;
* :mod:`.classifier`: classifier tests; :mod:`.base`, :mod:`.context`: the Metric interface and the
  evaluation context; :mod:`.builtin`, :mod:`.separation_metric`, :mod:`.classifier_metric`: the
  registered metrics.
"""

from calobench.metrics.base import Metric, MetricError, Scalar

__all__ = ["Metric", "MetricError", "Scalar"]
