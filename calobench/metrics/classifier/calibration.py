"""Probability calibration of classifier outputs (CaloChallenge protocol, arXiv 2410.21611).

An isotonic regression is fitted on the outputs of the held-out *test* split and applied to the
*validation* split; the calibrated probabilities are clipped to ``[1e-6, 1 - 1e-6]`` so that the
binary cross entropy (and hence the JSD) stays finite.
"""

from __future__ import annotations

import numpy as np
from sklearn.isotonic import IsotonicRegression

#: Calibrated probabilities are clipped to [PROBABILITY_CLIP, 1 - PROBABILITY_CLIP].
PROBABILITY_CLIP = 1e-6


def fit_calibrator(scores: np.ndarray, labels: np.ndarray) -> IsotonicRegression:
    """Isotonic regression (``out_of_bounds="clip"``) of ``labels`` on ``scores`` (the test split)."""
    scores, labels = _as_pair(scores, labels)
    calibrator = IsotonicRegression(out_of_bounds="clip")
    calibrator.fit(scores, labels)
    return calibrator


def apply_calibrator(calibrator: IsotonicRegression, scores: np.ndarray) -> np.ndarray:
    """Calibrated probabilities (float64), clipped to ``[1e-6, 1 - 1e-6]``."""
    calibrated = calibrator.predict(np.asarray(scores, dtype=np.float64).reshape(-1))
    return np.clip(calibrated, PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)


def calibrate(test_scores: np.ndarray, test_labels: np.ndarray, val_scores: np.ndarray) -> np.ndarray:
    """Fit the calibration on the test split and return the calibrated validation probabilities."""
    return apply_calibrator(fit_calibrator(test_scores, test_labels), val_scores)


def _as_pair(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels, dtype=np.float64).reshape(-1)
    if scores.shape != labels.shape:
        raise ValueError(f"{len(scores)} scores but {len(labels)} labels")
    if not np.all(np.isfinite(scores)):
        raise ValueError("classifier scores contain NaN or inf")
    return scores, labels
