"""Intrinsic dimension: the Levina-Bickel maximum-likelihood estimate, MacKay-Ghahramani averaged.

Levina & Bickel (NeurIPS 2004), with the inverse of the *average* (MacKay & Ghahramani 2005), as in
the CaloMan talk (ML4Jets 2022)::

    d_k = [ 1 / (n (k - 1)) sum_i sum_{j < k} log(T_k(x_i) / T_j(x_i)) ]^-1

with ``T_j(x_i)`` the distance from x_i to its j-th nearest other point. The estimate is averaged
over k = k1 ... k2 (5 ... 20 by default). Its error is the standard deviation over bootstrap
resamples of the points (the per-point log-ratio sums are resampled; the neighbours are not
searched again). Points with a zero nearest-neighbour distance (exact duplicates) are dropped:
their log ratios are infinite.

calobench computes it on ``log10`` voxel energies after the readout threshold, zeros set to
0.1 MeV (the PRDC transform, :func:`calobench.metrics.prdc.log_voxels`), on a capped subsample:
:func:`shower_intrinsic_dimension`, which the ``intrinsic_dimension`` metric and models that size
themselves by it (CaloMan's latent dimension) share.
Published estimates on real data (CaloMan): dataset 1 photons ~20, dataset 2 ~75, dataset 3 ~110.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from calobench.metrics.knn import knn_distances

K_RANGE = (5, 20)
N_BOOTSTRAP = 100


@dataclass(frozen=True)
class IntrinsicDimension:
    value: float
    error: float
    per_k: dict[int, float]
    n_points: int
    n_dropped: int
    k_range: tuple[int, int]

    def to_dict(self) -> dict:
        return {
            "value": self.value,
            "error": self.error,
            "per_k": {str(k): v for k, v in self.per_k.items()},
            "n_points": self.n_points,
            "n_dropped_duplicates": self.n_dropped,
            "k_range": list(self.k_range),
        }


def log_ratio_sums(distances: np.ndarray, k_range: tuple[int, int]) -> np.ndarray:
    """Per point and k: ``1/(k-1) sum_{j<k} log(T_k / T_j)``, shape (n, k2 - k1 + 1).

    ``distances`` (n, >= k2) holds T_1 ... T_k2 in ascending order.
    """
    k1, k2 = k_range
    logs = np.log(distances[:, :k2])
    cumulative = np.cumsum(logs, axis=1)  # column c: sum_{j <= c + 1} log T_j
    columns = []
    for k in range(k1, k2 + 1):
        columns.append(logs[:, k - 1] - cumulative[:, k - 2] / (k - 1))
    return np.stack(columns, axis=1)


def _estimate(terms: np.ndarray) -> float:
    return float(np.mean(1.0 / terms.mean(axis=0)))


def levina_bickel(
    points: "np.ndarray | torch.Tensor",
    k_range: tuple[int, int] = K_RANGE,
    *,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = 0,
    device: "str | torch.device" = "cpu",
    dtype: torch.dtype = torch.float32,
) -> IntrinsicDimension:
    """Intrinsic dimension of a point cloud (n, D), averaged over k in ``k_range`` (inclusive)."""
    k1, k2 = k_range
    if not 2 <= k1 <= k2:
        raise ValueError(f"k range must satisfy 2 <= k1 <= k2, got {k_range}")
    distances = knn_distances(points, k2, device=device, dtype=dtype).cpu().numpy()
    keep = distances[:, 0] > 0
    distances = distances[keep]
    if len(distances) < 2:
        raise ValueError("fewer than 2 distinct points: the intrinsic dimension is undefined")
    terms = log_ratio_sums(distances, k_range)
    per_k = 1.0 / terms.mean(axis=0)
    value = float(per_k.mean())
    rng = np.random.default_rng(seed)
    boot = [_estimate(terms[rng.integers(0, len(terms), len(terms))]) for _ in range(n_bootstrap)]
    error = float(np.std(boot, ddof=1)) if n_bootstrap > 1 else float("nan")
    return IntrinsicDimension(
        value, error, {k: float(v) for k, v in zip(range(k1, k2 + 1), per_k)}, len(terms), int((~keep).sum()), (k1, k2)
    )


def shower_intrinsic_dimension(
    energies: np.ndarray,
    threshold: float = 0.0,
    k_range: tuple[int, int] = K_RANGE,
    *,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = 0,
    device: "str | torch.device" = "cpu",
) -> IntrinsicDimension:
    """The intrinsic dimension of showers (n, n_voxels) in MeV as the ``intrinsic_dimension`` metric
    computes it: :func:`levina_bickel` on ``log10`` voxel energies, voxels below ``threshold`` and
    zeros set to 0.1 MeV."""
    from calobench.metrics.prdc import log_voxels

    return levina_bickel(log_voxels(energies, threshold), k_range, n_bootstrap=n_bootstrap, seed=seed, device=device)
