"""Evaluation of a generated shower sample against a reference: one report from a set of metrics.

>>> from calobench.evaluation import evaluate
>>> report = evaluate("generated.hdf5", "reference.hdf5", out="eval/")
>>> report["separation_power"]["etot_einc"], report["fpd"]["value"]
"""

from calobench.evaluation.runner import evaluate, evaluate_context, run_metrics, select_metrics

__all__ = ["evaluate", "evaluate_context", "run_metrics", "select_metrics"]
