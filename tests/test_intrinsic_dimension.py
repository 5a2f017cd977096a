"""Levina-Bickel intrinsic dimension (MacKay-Ghahramani average)."""

from __future__ import annotations

import numpy as np
import pytest

from calobench.metrics.intrinsic_dimension import levina_bickel, log_ratio_sums


def _subspace(n: int, d: int, ambient: int, seed: int, noise: float = 1e-3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(ambient, d)))[0]
    return rng.normal(size=(n, d)) @ basis.T + noise * rng.normal(size=(n, ambient))


def test_five_dimensional_subspace_in_fifty_dimensions() -> None:
    result = levina_bickel(_subspace(2000, 5, 50, seed=0), n_bootstrap=30, seed=1)
    assert result.value == pytest.approx(5.0, rel=0.10)
    assert 0 < result.error < 0.3
    assert set(result.per_k) == set(range(5, 21))


def test_dimension_grows_with_the_subspace() -> None:
    low = levina_bickel(_subspace(1500, 3, 30, seed=2), n_bootstrap=5).value
    high = levina_bickel(_subspace(1500, 8, 30, seed=2), n_bootstrap=5).value
    assert low == pytest.approx(3.0, rel=0.15) and high > 2 * low


def test_log_ratio_sums_follow_the_formula() -> None:
    distances = np.sort(np.random.default_rng(3).uniform(0.1, 2.0, size=(6, 12)), axis=1)
    terms = log_ratio_sums(distances, (5, 12))
    for column, k in enumerate(range(5, 13)):
        expected = np.mean([np.log(distances[:, k - 1] / distances[:, j]) for j in range(k - 1)], axis=0)
        np.testing.assert_allclose(terms[:, column], expected, rtol=1e-12)


def test_duplicates_are_dropped_and_seed_fixes_the_error() -> None:
    points = _subspace(600, 4, 20, seed=4)
    points[1] = points[0]
    first = levina_bickel(points, n_bootstrap=20, seed=7)
    assert first.n_dropped == 2 and first.n_points == 598
    again = levina_bickel(points, n_bootstrap=20, seed=7)
    assert again.value == first.value and again.error == first.error


def test_invalid_k_range() -> None:
    with pytest.raises(ValueError, match="k range"):
        levina_bickel(np.zeros((10, 3)), k_range=(1, 4))
