"""The BIB-AE's maximum-mean-discrepancy losses (arXiv 2005.05334; models.md sec. 3.4).

* :func:`latent_mmd` -- the latent MMD between the encoded latents and N(0, 1) samples, Gaussian
  kernels ``exp(-alpha |a - b|^2)`` with alpha = 1 and 0.01, the biased estimate
  ``(sum K_xx + sum K_yy - 2 sum K_xy) / B^2`` per kernel (weight 100 in the paper);
* :func:`sorted_kernel_mmd` -- the post-processor's "sorted kernel" MMD on the hit-energy spectrum:
  every shower's voxel energies sorted in descending order, cut into windows of ``kernel_size``
  values every ``stride`` positions below ``cutoff``; in each window the MMD between the two showers'
  sets of values (1-D points, kernel ``exp(-alpha (a - b)^2)``), averaged over showers and windows
  (weight 5, kernel 100, stride 25, cutoff 2000, alpha 200 in the paper);
* :func:`voxel_energy_score` -- not in the paper: the energy score (CRPS) of two post-processor
  draws for the real voxel, per voxel (Gneiting & Raftery 2007; the MMD of the distance kernel),
  which trains a post-processor with a noise input to the per-voxel spread of the showers.

The KL term is :func:`calobench.nn.gaussian.gaussian_kl`; the adversarial terms are
:mod:`calobench.nn.adversarial`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

#: Published latent-MMD kernel parameters.
LATENT_ALPHAS = (1.0, 0.01)


def _squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise |a_i - b_j|^2 over the last axis: (..., n, d), (..., m, d) -> (..., n, m)."""
    return (a.pow(2).sum(-1, keepdim=True) + b.pow(2).sum(-1).unsqueeze(-2) - 2.0 * a @ b.transpose(-1, -2)).clamp_min(
        0.0
    )


def latent_mmd(z: torch.Tensor, prior: torch.Tensor, alphas: Sequence[float] = LATENT_ALPHAS) -> torch.Tensor:
    """Biased MMD^2 between the rows of ``z`` and of ``prior`` (both (B, k)), summed over the kernels."""
    d_zz, d_pp, d_zp = _squared_distances(z, z), _squared_distances(prior, prior), _squared_distances(z, prior)
    n, m = len(z), len(prior)
    total = z.new_zeros(())
    for alpha in alphas:
        total = total + (
            torch.exp(-alpha * d_zz).sum() / n**2
            + torch.exp(-alpha * d_pp).sum() / m**2
            - 2.0 * torch.exp(-alpha * d_zp).sum() / (n * m)
        )
    return total


def _set_mmd(a: torch.Tensor, b: torch.Tensor, alpha: float) -> torch.Tensor:
    """Biased MMD^2 between the sets of values a[i, :] and b[i, :] (1-D points), per row i."""
    a, b = a.unsqueeze(-1), b.unsqueeze(-1)

    def kernel(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return torch.exp(-alpha * (u - v.transpose(-1, -2)).pow(2)).mean(dim=(-1, -2))

    if b.requires_grad:
        target = kernel(b, b)
    else:  # a constant of the loss: no graph needed
        with torch.no_grad():
            target = kernel(b, b)
    return kernel(a, a) + target - 2.0 * kernel(a, b)


def sorted_kernel_mmd(
    generated: torch.Tensor,
    target: torch.Tensor,
    kernel_size: int = 100,
    stride: int = 25,
    cutoff: int = 2000,
    alpha: float = 200.0,
) -> torch.Tensor:
    """The sorted-kernel MMD between two batches of showers (B, V) (see the module docstring)."""
    generated = torch.sort(generated, dim=1, descending=True).values
    target = torch.sort(target, dim=1, descending=True).values
    n_voxels = generated.shape[1]
    starts = range(0, min(int(cutoff), n_voxels), int(stride))
    total = generated.new_zeros(())
    for start in starts:
        window = slice(start, start + int(kernel_size))
        total = total + _set_mmd(generated[:, window], target[:, window], alpha).mean()
    return total / len(starts)


def voxel_energy_score(first: torch.Tensor, second: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``E|Y - x| - E|Y - Y'| / 2`` per voxel from two independent draws Y, Y' (B, V) for the target
    x (B, V), summed over the voxels and averaged over the showers: a strictly proper score of each
    voxel's predictive distribution, minimized by the true conditional distribution."""
    spread = (first - second).abs()
    return ((first - target).abs() + (second - target).abs() - spread).sum(dim=1).mean() / 2.0
