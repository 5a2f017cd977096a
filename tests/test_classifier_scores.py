"""Calibration and scores of the classifier test against scikit-learn and the protocol formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import log_loss, roc_auc_score

from calobench.metrics.classifier import auc_and_jsd, calibrate, jsd_from_probabilities
from calobench.metrics.classifier.calibration import PROBABILITY_CLIP
from calobench.metrics.classifier.scores import binary_cross_entropy


def _scores(seed: int, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n).astype(float)
    logits = rng.normal(shift * (2 * labels - 1), 1.0)
    return 1.0 / (1.0 + np.exp(-logits)), labels


@pytest.mark.parametrize("shift", [0.0, 0.3, 1.5, 6.0])
def test_auc_and_jsd_match_sklearn_and_formula(shift: float) -> None:
    test_scores, test_labels = _scores(1, 4000, shift)
    val_scores, val_labels = _scores(2, 3000, shift)
    auc, jsd = auc_and_jsd(test_scores, test_labels, val_scores, val_labels)
    # Independent route: sklearn's bounded isotonic fit (bounds instead of clipping afterwards).
    iso = IsotonicRegression(out_of_bounds="clip", y_min=PROBABILITY_CLIP, y_max=1 - PROBABILITY_CLIP)
    calibrated = iso.fit(test_scores, test_labels).predict(val_scores)
    assert auc == pytest.approx(roc_auc_score(val_labels, calibrated), abs=1e-9)
    expected_jsd = (math.log(2) - log_loss(val_labels, calibrated)) / math.log(2)
    assert jsd == pytest.approx(expected_jsd, abs=1e-9)


def test_calibration_is_clipped_and_monotone() -> None:
    test_scores, test_labels = _scores(3, 2000, 8.0)  # nearly separable: raw isotonic fit reaches 0 and 1
    calibrated = calibrate(test_scores, test_labels, np.linspace(-1, 2, 301))
    assert calibrated.min() == PROBABILITY_CLIP and calibrated.max() == 1 - PROBABILITY_CLIP
    assert np.all(np.diff(calibrated) >= 0)


def test_useless_classifier_scores_half_and_zero() -> None:
    labels = np.repeat([0.0, 1.0], 500)
    auc, jsd = auc_and_jsd(np.full(1000, 0.3), labels, np.full(1000, 0.3), labels)
    assert auc == 0.5
    assert jsd == pytest.approx(0.0, abs=1e-12)  # calibrated to the test split's label mean, 1/2


def test_perfect_classifier_scores_one() -> None:
    labels = np.repeat([0.0, 1.0], 500)
    auc, jsd = auc_and_jsd(labels, labels, labels, labels)
    assert auc == 1.0
    assert jsd == pytest.approx(1.0 + math.log1p(-PROBABILITY_CLIP) / math.log(2), abs=1e-12)


def test_bce_and_jsd_formula() -> None:
    p, y = np.array([0.9, 0.2, 0.6]), np.array([1.0, 0.0, 0.0])
    expected_bce = -(math.log(0.9) + math.log(0.8) + math.log(0.4)) / 3
    assert binary_cross_entropy(p, y) == pytest.approx(expected_bce, abs=1e-12)
    assert jsd_from_probabilities(p, y) == pytest.approx((math.log(2) - expected_bce) / math.log(2), abs=1e-12)


def test_bad_scores_are_rejected() -> None:
    labels = np.repeat([0.0, 1.0], 5)
    with pytest.raises(ValueError, match="NaN"):
        auc_and_jsd(np.full(10, np.nan), labels, np.zeros(10), labels)
    with pytest.raises(ValueError, match="both classes"):
        auc_and_jsd(np.zeros(10), labels, np.zeros(10), np.zeros(10))
