"""FPD, KPD, PRDC, W1 and the exact kNN they rely on."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg
from scipy.spatial.distance import cdist
from scipy.stats import wasserstein_distance

from calobench.metrics.features import compute_features
from calobench.metrics.frechet import batch_sizes, fpd, frechet_distance, normalize_by_reference
from calobench.metrics.kernel import kpd, mmd2_unbiased
from calobench.metrics.knn import knn_distances
from calobench.metrics.prdc import log_voxels, prdc
from calobench.metrics.wasserstein import feature_w1
from calobench.testing import random_showers


def test_batch_sizes_are_evenly_spaced_in_inverse() -> None:
    sizes = batch_sizes()
    assert sizes[0] == 10_000 and sizes[-1] in (49_999, 50_000) and len(sizes) == 10
    np.testing.assert_allclose(np.diff(1.0 / sizes), np.diff(1.0 / sizes)[0], rtol=5e-3)  # int truncation


def test_frechet_distance_closed_form() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.5, 2, 4), rng.uniform(0.5, 2, 4)
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)
    m = rng.normal(size=(4, 4))
    sigma = m @ m.T + np.eye(4)
    assert frechet_distance(mu1, sigma, mu1, sigma) == pytest.approx(0.0, abs=1e-9)
    root = np.real(linalg.sqrtm(sigma @ np.diag(b)))
    assert frechet_distance(mu1, sigma, mu2, np.diag(b)) == pytest.approx(
        np.sum((mu1 - mu2) ** 2) + np.trace(sigma) + b.sum() - 2 * np.trace(root), rel=1e-10
    )


def test_normalization_uses_the_reference_maximum() -> None:
    ref, gen = np.array([[1.0, -4.0], [2.0, 2.0]]), np.array([[4.0, 4.0]])
    r, g = normalize_by_reference(ref, gen)
    np.testing.assert_allclose(r, [[0.5, -1.0], [1.0, 0.5]])
    np.testing.assert_allclose(g, [[2.0, 1.0]])


def test_fpd_same_distribution_is_consistent_with_zero_and_shift_is_not() -> None:
    rng = np.random.default_rng(1)
    ref, same = rng.normal(size=(20000, 3)), rng.normal(size=(20000, 3))
    shifted = rng.normal(size=(20000, 3)) + [0.3, 0, 0]
    kwargs = dict(seed=0, n_resamples=2, min_batch=1000, max_batch=5000)
    null, shift = fpd(ref, same, **kwargs), fpd(ref, shifted, **kwargs)
    assert null.value < 3 * null.error + 1e-3
    expected = (0.3 / np.abs(ref[:, 0]).max()) ** 2  # the mean shift after normalization
    assert shift.value == pytest.approx(expected, rel=0.3) and shift.value > 5 * shift.error
    assert fpd(ref, same, **kwargs).value == null.value  # seeded


def naive_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    kxx, kyy, kxy = ((x @ x.T / d + 1) ** 4, (y @ y.T / d + 1) ** 4, (x @ y.T / d + 1) ** 4)
    m, n = len(x), len(y)
    return (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean()


def test_mmd_matches_the_naive_formula_blockwise() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(2100, 6)), rng.normal(0.1, 1, size=(1000, 6))  # 2 blocks of 2048 rows for x
    assert mmd2_unbiased(x, y) == pytest.approx(naive_mmd2(x, y), rel=1e-9, abs=1e-12)


def test_kpd_is_unbiased_near_zero_and_detects_a_shift() -> None:
    rng = np.random.default_rng(3)
    ref, same, other = rng.normal(size=(5000, 4)), rng.normal(size=(5000, 4)), rng.normal(0.2, 1, size=(5000, 4))
    null = kpd(ref, same, n_batches=5, batch_size=1000, seed=1)
    assert abs(null.value) < 3 * null.error + 1e-4
    shifted = kpd(ref, other, n_batches=5, batch_size=1000, seed=1)
    assert shifted.value > 3 * shifted.error and shifted.value > 10 * null.error


def test_knn_matches_scipy() -> None:
    x = np.random.default_rng(4).normal(size=(300, 20)) + 50.0  # offset: centring keeps float32 exact enough
    distances = cdist(x, x)
    np.fill_diagonal(distances, np.inf)
    expected = np.sort(distances, axis=1)[:, :7]
    np.testing.assert_allclose(knn_distances(x, 7).numpy(), expected, rtol=1e-4)
    np.testing.assert_allclose(knn_distances(x, 7, dtype=torch.float64).numpy(), expected, rtol=1e-10)


def test_knn_in_several_row_blocks(monkeypatch) -> None:
    """More points than one block of the distance matrix holds (regression: the refinement step once
    overwrote the block size, so a second block failed)."""
    import calobench.metrics.knn as knn

    monkeypatch.setattr(knn, "BLOCK_ELEMENTS", 300 * 64)  # 64 rows per block of 300 columns
    x = np.random.default_rng(5).normal(size=(300, 6))
    x[1] = x[0]  # an exact duplicate: the refinement step runs
    distances = cdist(x, x)
    np.fill_diagonal(distances, np.inf)
    expected = np.sort(distances, axis=1)[:, :4]
    np.testing.assert_allclose(knn_distances(x, 4, dtype=torch.float64).numpy(), expected, rtol=1e-10, atol=1e-12)


def naive_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    """Naeem et al.'s reference algorithm written out with scipy distances."""
    rr, ff, rf = cdist(real, real), cdist(fake, fake), cdist(real, fake)
    r_radius = np.sort(rr, axis=1)[:, k]
    f_radius = np.sort(ff, axis=1)[:, k]
    return {
        "precision": (rf < r_radius[:, None]).any(axis=0).mean(),
        "recall": (rf < f_radius[None, :]).any(axis=1).mean(),
        "density": (rf < r_radius[:, None]).sum(axis=0).mean() / k,
        "coverage": (rf.min(axis=1) < r_radius).mean(),
    }


def test_prdc_matches_the_reference_algorithm() -> None:
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(400, 10)), rng.normal(0.3, 1.2, size=(350, 10))
    ours = prdc(real, fake, k=5, dtype=torch.float64).to_dict()
    for key, value in naive_prdc(real, fake, 5).items():
        assert ours[key] == pytest.approx(value, abs=1e-12), key


def test_prdc_sanity() -> None:
    rng = np.random.default_rng(6)
    real = rng.normal(size=(500, 5))
    same = prdc(real, real.copy(), k=5)
    assert same.precision == 1 and same.recall == 1 and same.coverage == 1
    assert same.density == pytest.approx(1.0, abs=0.05)
    far = prdc(real, real + 100.0, k=5)
    assert far.precision == 0 and far.recall == 0 and far.density == 0 and far.coverage == 0


def test_log_voxels_transform() -> None:
    out = log_voxels(np.array([[0.0, 0.05, 0.2, 1000.0]], dtype=np.float32), threshold=0.1)
    np.testing.assert_allclose(out, [[-1.0, -1.0, np.log10(0.2), 3.0]], rtol=1e-6)


def test_feature_w1_matches_scipy_and_is_zero_for_identical() -> None:
    a, b = random_showers("ds1-photons", 300, seed=1), random_showers("ds1-photons", 200, seed=2)
    fa, fb = compute_features(a, 1.0), compute_features(b, 1.0)
    result = feature_w1(fa, fb)
    assert result["e_layer"]["12"] == pytest.approx(wasserstein_distance(fa.e_layer[:, 4], fb.e_layer[:, 4]))
    assert result["etot_einc"] == pytest.approx(wasserstein_distance(fa.etot_over_einc, fb.etot_over_einc))
    assert set(result["ec_eta"]) == {"1", "2"}
    same = feature_w1(fa, fa)
    assert same["e_tot"] == 0.0 and all(v == 0.0 for v in same["sparsity"].values())
