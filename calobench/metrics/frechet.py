"""Frechet physics distance (FPD) on the high-level feature vector, as in the CaloChallenge.

Definition (arXiv 2410.21611, after Kansal et al., arXiv 2211.10295, the ``jetnet`` FPD):

1. normalize every feature of both samples by max |feature| of the reference sample;
2. for 10 batch sizes N evenly spaced in 1/N between 1/10000 and 1/50000 (``int(1 / linspace)``),
   draw ``n_resamples`` (20 in the protocol) pairs of batches *with replacement* and average the
   Frechet distance ``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2))`` of their Gaussian fits;
3. fit ``FPD(N) = a + b / N`` with ``a, b >= 0`` (bounded least squares, ``scipy.optimize.curve_fit``)
   and report ``a`` (the infinite-sample extrapolation) and its fit error ``sqrt(cov[0, 0])``.

Drawing with replacement is what the challenge did, so batches larger than the samples are fine.
The covariances run with one BLAS thread: the (d x N) (N x d) products are skinny, and
multi-threaded OpenBLAS is up to 100x slower on them when the cores are busy.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import linalg
from scipy.optimize import OptimizeWarning, curve_fit
from threadpoolctl import threadpool_limits

MIN_BATCH = 10_000
MAX_BATCH = 50_000
N_BATCH_SIZES = 10
N_RESAMPLES = 20


def normalize_by_reference(reference: np.ndarray, generated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both samples divided, feature by feature, by max |feature| of the reference (features that
    are identically zero in the reference are left unscaled)."""
    scale = np.max(np.abs(reference), axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return reference / scale, generated / scale


def feature_pair(
    reference: np.ndarray, generated: np.ndarray, metric: str, normalize: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Two feature arrays as float64 (N, d) and (M, d) with the same d, normalized by the reference
    when ``normalize`` (the CaloChallenge FPD/KPD input); ``metric`` names the caller in the error."""
    reference = np.asarray(reference, dtype=np.float64)
    generated = np.asarray(generated, dtype=np.float64)
    if reference.ndim != 2 or generated.ndim != 2 or reference.shape[1] != generated.shape[1]:
        raise ValueError(
            f"{metric} needs two (N, d) arrays with the same d, got {reference.shape} and {generated.shape}"
        )
    if normalize:
        reference, generated = normalize_by_reference(reference, generated)
    return reference, generated


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2))`` (Dowson & Landau 1982), real part of the
    matrix square root; a tiny diagonal offset is added if the product is singular."""
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(sigma1)) * 1e-6
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def _gaussian_fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def batch_sizes(min_batch: int = MIN_BATCH, max_batch: int = MAX_BATCH, n_sizes: int = N_BATCH_SIZES) -> np.ndarray:
    """Batch sizes evenly spaced in 1/N (as ``jetnet``: ``int32(1 / linspace(1/min, 1/max, n))``)."""
    return (1.0 / np.linspace(1.0 / min_batch, 1.0 / max_batch, n_sizes)).astype(np.int32)


@dataclass(frozen=True)
class FPDResult:
    value: float
    error: float
    batch_sizes: tuple[int, ...]
    means: tuple[float, ...]
    n_resamples: int
    slope: float

    def to_dict(self) -> dict:
        return {
            "value": self.value,
            "error": self.error,
            "slope": self.slope,
            "n_resamples": self.n_resamples,
            "batch_sizes": list(self.batch_sizes),
            "batch_means": list(self.means),
        }


def _linear(x: np.ndarray, intercept: float, slope: float) -> np.ndarray:
    return intercept + slope * x


def fpd(
    reference: np.ndarray,
    generated: np.ndarray,
    *,
    seed: int = 0,
    n_resamples: int = N_RESAMPLES,
    min_batch: int = MIN_BATCH,
    max_batch: int = MAX_BATCH,
    n_sizes: int = N_BATCH_SIZES,
    normalize: bool = True,
) -> FPDResult:
    """FPD of two feature arrays (N, d) and (M, d), see the module docstring."""
    reference, generated = feature_pair(reference, generated, "FPD", normalize)
    rng = np.random.default_rng(seed)
    sizes = batch_sizes(min_batch, max_batch, n_sizes)
    means = []
    with threadpool_limits(limits=1, user_api="blas"):
        for size in sizes:
            values = []
            for _ in range(n_resamples):
                first = reference[rng.integers(0, len(reference), size)]
                second = generated[rng.integers(0, len(generated), size)]
                values.append(frechet_distance(*_gaussian_fit(first), *_gaussian_fit(second)))
            means.append(float(np.mean(values)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        params, covariance = curve_fit(_linear, 1.0 / sizes, np.asarray(means), bounds=([0.0, 0.0], [np.inf, np.inf]))
    error = float(np.sqrt(covariance[0, 0])) if np.isfinite(covariance[0, 0]) else float("nan")
    return FPDResult(float(params[0]), error, tuple(int(s) for s in sizes), tuple(means), n_resamples, float(params[1]))
