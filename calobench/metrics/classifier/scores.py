"""AUC and JSD of a calibrated binary classifier (CaloChallenge protocol, arXiv 2410.21611).

* AUC: area under the ROC curve of the calibrated validation probabilities (0.5 = the classifier
  cannot tell the samples apart, 1 = perfectly separated).
* JSD: ``(ln 2 - BCE) / ln 2`` with ``BCE`` the mean binary cross entropy of the calibrated
  validation probabilities. For an optimal, calibrated classifier on equal-size samples, ``ln 2 - BCE``
  estimates the Jensen-Shannon divergence (in nats) of the two distributions, so the score lies in
  [0, 1]; a useless classifier can give slightly negative values.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import roc_auc_score

from calobench.metrics.classifier.calibration import PROBABILITY_CLIP, calibrate

LN2 = math.log(2.0)


def binary_cross_entropy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean ``-[y ln p + (1 - y) ln(1 - p)]`` (float64; p is clipped to [1e-6, 1 - 1e-6])."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64).reshape(-1), PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if p.shape != y.shape:
        raise ValueError(f"{len(p)} probabilities but {len(y)} labels")
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def jsd_from_probabilities(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """``(ln 2 - BCE) / ln 2`` of calibrated probabilities."""
    return (LN2 - binary_cross_entropy(probabilities, labels)) / LN2


def auc_score(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC (scikit-learn's ``roc_auc_score``)."""
    labels = np.asarray(labels).reshape(-1)
    if np.unique(labels).size != 2:
        raise ValueError("the AUC needs examples of both classes")
    return float(roc_auc_score(labels, np.asarray(probabilities, dtype=np.float64).reshape(-1)))


def auc_and_jsd(
    test_scores: np.ndarray, test_labels: np.ndarray, val_scores: np.ndarray, val_labels: np.ndarray
) -> tuple[float, float]:
    """Calibrate on the test split, score on the validation split: returns ``(auc, jsd)``.

    Scores should be the classifier's probabilities (the sigmoid of its logit), as in the protocol:
    the isotonic fit interpolates linearly between test scores, so the scale matters slightly.
    """
    calibrated = calibrate(test_scores, test_labels, val_scores)
    return auc_score(calibrated, val_labels), jsd_from_probabilities(calibrated, val_labels)
