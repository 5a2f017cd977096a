"""Gradient-boosted decision trees (xgboost) on the high-level features: the ``bdt_high`` mode.

Same inputs, splits, calibration and scores as the neural high-level classifier: the trees are
grown on the train split, the number of boosting rounds is chosen on the test split (early
stopping on its log-loss, the analogue of keeping the best epoch), and the test and validation
probabilities go to the isotonic calibration.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import xgboost

from calobench.metrics.classifier.training import Splits, TrainedRun, accuracy


def train_bdt(
    x: np.ndarray, labels: np.ndarray, splits: Splits, config: Mapping[str, Any], seed: int, device: str = "cpu"
) -> TrainedRun:
    """Fit an xgboost classifier; returns its test and validation probabilities.

    ``config`` keys: ``n_estimators`` (maximal rounds), ``max_depth``, ``learning_rate``,
    ``subsample``, ``colsample_bytree``, ``early_stopping_rounds``, ``n_jobs`` (None: all cores).
    """
    start = time.perf_counter()
    params = {
        "objective": "binary:logistic",
        "eval_metric": "logloss",
        "tree_method": "hist",
        "max_depth": int(config["max_depth"]),
        "eta": float(config["learning_rate"]),
        "subsample": float(config["subsample"]),
        "colsample_bytree": float(config["colsample_bytree"]),
        "seed": int(seed) % 2**31,
        "device": "cuda" if device.startswith("cuda") else "cpu",
    }
    if config.get("n_jobs") is not None:
        params["nthread"] = int(config["n_jobs"])
    train = xgboost.DMatrix(x[splits.train], label=labels[splits.train])
    test = xgboost.DMatrix(x[splits.test], label=labels[splits.test])
    val = xgboost.DMatrix(x[splits.val], label=labels[splits.val])
    booster = xgboost.train(
        params,
        train,
        num_boost_round=int(config["n_estimators"]),
        evals=[(test, "test")],
        early_stopping_rounds=int(config["early_stopping_rounds"]),
        verbose_eval=False,
    )
    rounds = (0, booster.best_iteration + 1)
    test_scores = booster.predict(test, iteration_range=rounds).astype(np.float64)
    val_scores = booster.predict(val, iteration_range=rounds).astype(np.float64)
    test_accuracy = accuracy(test_scores - 0.5, labels[splits.test])
    return TrainedRun(
        test_scores,
        val_scores,
        best_epoch=rounds[1],
        best_test_accuracy=test_accuracy,
        epochs_run=booster.num_boosted_rounds(),
        seconds=time.perf_counter() - start,
    )
