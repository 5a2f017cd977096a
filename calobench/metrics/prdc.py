"""Precision, recall, density and coverage (Naeem, Oh, Uh, Choi, Yoo, arXiv 2002.09797).

With ``r_i`` the distance from reference point i to its k-th nearest other reference point and
``s_j`` the same for generated point j (k = 5 in the CaloChallenge)::

    precision = 1/M sum_j  1[exists i: |x_i - y_j| < r_i]
    recall    = 1/N sum_i  1[exists j: |x_i - y_j| < s_j]
    density   = 1/(k M) sum_j sum_i 1[|x_i - y_j| < r_i]
    coverage  = 1/N sum_i  1[min_j |x_i - y_j| < r_i]

The CaloChallenge computes them on ``log10`` of the voxel energies with zeros replaced by 0.1 MeV
(arXiv 2410.21611). calobench applies the data set's readout threshold first (as for every other
metric), so a model's sub-threshold noise does not land far from 0.1 MeV in log space. All
distances are exact (:mod:`calobench.metrics.knn`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from calobench.metrics.knn import as_tensor, block_rows, knn_distances, squared_distances

K = 5
ZERO_REPLACEMENT_MEV = 0.1


def log_voxels(energies: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """``log10`` of the voxel energies (MeV), voxels below ``threshold`` and zeros set to 0.1 MeV
    first (float32)."""
    x = np.asarray(energies, dtype=np.float32)
    floor = max(float(threshold), 0.0)
    x = np.where((x > 0) & (x >= floor), x, np.float32(ZERO_REPLACEMENT_MEV))
    return np.log10(x, dtype=np.float32)


def _kth_squared(points: torch.Tensor, k: int, device: "str | torch.device", dtype: torch.dtype) -> torch.Tensor:
    distances = knn_distances(points, k, device=device, dtype=dtype, centre=False, refine=False)
    return (distances[:, -1] ** 2).to(dtype)


@dataclass(frozen=True)
class PRDCResult:
    precision: float
    recall: float
    density: float
    coverage: float
    k: int
    n_reference: int
    n_generated: int

    def to_dict(self) -> dict:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "density": self.density,
            "coverage": self.coverage,
            "k": self.k,
            "n_reference": self.n_reference,
            "n_generated": self.n_generated,
        }


def prdc(
    reference: np.ndarray,
    generated: np.ndarray,
    k: int = K,
    *,
    device: "str | torch.device" = "cpu",
    dtype: torch.dtype = torch.float32,
) -> PRDCResult:
    """PRDC of two point clouds (N, d) and (M, d) (already transformed, e.g. by :func:`log_voxels`)."""
    real = as_tensor(reference, device, dtype)
    fake = as_tensor(generated, device, dtype)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"PRDC needs two (N, d) arrays with the same d, got {tuple(real.shape)} and {tuple(fake.shape)}"
        )
    centre = real.mean(dim=0, keepdim=True)
    real, fake = real - centre, fake - centre
    # radii from the same centred matrix products as the cross distances below, so that ties compare alike
    real_radius2 = _kth_squared(real, k, device, dtype)
    fake_radius2 = _kth_squared(fake, k, device, dtype)
    n, m = len(real), len(fake)
    fake_norms = (fake * fake).sum(dim=1)
    inside_any = torch.zeros(m, dtype=torch.bool, device=device)
    inside_count = torch.zeros(m, dtype=torch.int64, device=device)
    recalled = torch.zeros(n, dtype=torch.bool, device=device)
    covered = torch.zeros(n, dtype=torch.bool, device=device)
    rows = block_rows(m)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        d2 = squared_distances(real[start:stop], fake, fake_norms)
        inside = d2 < real_radius2[start:stop, None]
        inside_any |= inside.any(dim=0)
        inside_count += inside.sum(dim=0)
        recalled[start:stop] = (d2 < fake_radius2[None, :]).any(dim=1)
        covered[start:stop] = d2.min(dim=1).values < real_radius2[start:stop]
    return PRDCResult(
        precision=float(inside_any.double().mean()),
        recall=float(recalled.double().mean()),
        density=float(inside_count.double().sum() / (k * m)),
        coverage=float(covered.double().mean()),
        k=k,
        n_reference=n,
        n_generated=m,
    )
