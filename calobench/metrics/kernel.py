"""Kernel physics distance (KPD) on the high-level feature vector, as in the CaloChallenge.

Definition (arXiv 2410.21611, after Kansal et al., arXiv 2211.10295, the ``jetnet`` KPD): normalize
features by max |feature| of the reference; draw ``n_batches`` (10) pairs of batches of
``batch_size`` (10000) rows *with replacement*; for each pair compute the unbiased estimator of the
squared maximum mean discrepancy with the polynomial kernel ``k(x, y) = (x.y / d + 1)^4``::

    MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (n (n - 1))
              - 2 sum_{i, j} k(x_i, y_j) / (m n)

and report the median over batches and half the 16.275 - 83.725 percentile range as its error.
The kernel sums are accumulated block by block in float64 with torch, so a 10000 x 10000 kernel
matrix is never held at once and a GPU is used when given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from calobench.metrics.frechet import feature_pair

N_BATCHES = 10
BATCH_SIZE = 10_000
DEGREE = 4
PERCENTILES = (16.275, 83.725)
BLOCK_ROWS = 2048


def _power_(values: torch.Tensor, degree: int) -> torch.Tensor:
    """``values ** degree`` in place; repeated squaring for powers of two (several times faster)."""
    if degree > 0 and degree & (degree - 1) == 0:
        while degree > 1:
            values.square_()
            degree //= 2
        return values
    return values.pow_(degree)


def _kernel_sum(x: torch.Tensor, y: torch.Tensor, degree: int, exclude_diagonal: bool) -> float:
    """sum_{i, j} (x_i . y_j / d + 1)^degree, without i == j when ``exclude_diagonal`` (x is y)."""
    d = x.shape[1]
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for start in range(0, len(x), BLOCK_ROWS):
        block = x[start : start + BLOCK_ROWS] @ y.T
        block.div_(d).add_(1.0)
        _power_(block, degree)
        total += block.sum()
        if exclude_diagonal:
            rows = torch.arange(start, min(start + BLOCK_ROWS, len(x)), device=x.device)
            total -= block[rows - start, rows].sum()
    return float(total)


def mmd2_unbiased(
    x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, degree: int = DEGREE, device: str | torch.device = "cpu"
) -> float:
    """Unbiased MMD^2 of two samples with the polynomial kernel ``(x.y / d + 1)^degree``."""
    x = torch.as_tensor(x, dtype=torch.float64, device=device)
    y = torch.as_tensor(y, dtype=torch.float64, device=device)
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise ValueError(f"the unbiased MMD needs at least 2 rows per sample, got {m} and {n}")
    xx = _kernel_sum(x, x, degree, exclude_diagonal=True) / (m * (m - 1))
    yy = _kernel_sum(y, y, degree, exclude_diagonal=True) / (n * (n - 1))
    xy = _kernel_sum(x, y, degree, exclude_diagonal=False) / (m * n)
    return xx + yy - 2.0 * xy


@dataclass(frozen=True)
class KPDResult:
    value: float
    error: float
    batches: tuple[float, ...]
    batch_size: int

    def to_dict(self) -> dict:
        return {
            "value": self.value,
            "error": self.error,
            "batch_size": self.batch_size,
            "batch_values": list(self.batches),
        }


def kpd(
    reference: np.ndarray,
    generated: np.ndarray,
    *,
    seed: int = 0,
    n_batches: int = N_BATCHES,
    batch_size: int = BATCH_SIZE,
    degree: int = DEGREE,
    normalize: bool = True,
    device: str | torch.device = "cpu",
) -> KPDResult:
    """KPD of two feature arrays (N, d) and (M, d), see the module docstring."""
    reference, generated = feature_pair(reference, generated, "KPD", normalize)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_batches):
        first = reference[rng.integers(0, len(reference), batch_size)]
        second = generated[rng.integers(0, len(generated), batch_size)]
        values.append(mmd2_unbiased(first, second, degree, device))
    low, high = np.percentile(values, PERCENTILES)
    return KPDResult(float(np.median(values)), float((high - low) / 2.0), tuple(values), batch_size)
