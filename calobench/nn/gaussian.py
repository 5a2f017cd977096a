"""Diagonal-Gaussian latent pieces of variational autoencoders (Kingma & Welling, arXiv 1312.6114).

Used by every VAE in calobench (CaloINN's VAE+INN, CaloMan, the BIB-AE) so that the
reparameterization and the KL term exist once.
"""

from __future__ import annotations

import torch


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, 1)`` (drawn from ``generator`` if given)."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per sample, summed over the last dimension (eq. 10 of 1312.6114)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of ``x`` under N(mean, exp(log_sigma)^2) per sample, summed over the last dimension.

    ``log_sigma`` broadcasts (a single learned decoder width, as in CaloMan's VAE, arXiv 2211.15380).
    """
    log_two_pi = torch.log(torch.tensor(2.0 * torch.pi, dtype=x.dtype, device=x.device))
    z = (x - mean) * torch.exp(-log_sigma)
    return (0.5 * z.pow(2) + log_sigma + 0.5 * log_two_pi).expand_as(x).sum(dim=-1)
