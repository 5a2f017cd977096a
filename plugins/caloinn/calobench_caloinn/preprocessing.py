"""CaloINN's data transformations (Ernst et al., arXiv 2312.09290 sec. 2), MeV at the boundaries.

The generic transforms (u-space, logit, per-layer normalization, threshold) are calobench's shared
ones (:mod:`calobench.preprocessing`); this module composes them the way CaloINN does.

**INN** (shared/reference/models.md sec. 2.2): every layer divided by its energy (+1e-10 GeV), the
layer-energy fractions ``u`` (``u_0 = E_dep / (f E_inc)``, ``u_i = E_i / sum_{j>=i} E_j``) appended
as extra dimensions, a fresh uniform noise ``U(0, b)`` added to every dimension in each batch, then
``log(x + alpha)``. The condition is ``log2(E_inc / GeV)``. Generation inverts the log, subtracts the
noise width ``b``, zeroes the shares that fall below ``b``, clips the u's to [0, 1], rebuilds the
layer energies from them and scales every layer's shares to its energy.

**VAE+INN** (sec. 2.6): the VAE sees the layer shares in logit space (``logit(a + (1 - 2a) x)``,
a = 1e-6), standardized voxel by voxel with the training means and widths, and is conditioned on
``log2(E_inc / GeV)`` and ``logit(0.9 u)`` (standardized too); its latent INN models
``[mu, logvar, logit(0.9 u)]`` given ``log2(E_inc / GeV)`` (the 0.9 is the config's ``u_scale``).

``f`` (``u0_scale``) is 1 as published unless the training data deposit more than their incident
energy (pions, the synthetic sets with a sampling-fraction spread), then 1.1 x the largest ratio, so
that every u stays in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from calobench.preprocessing import (
    apply_threshold,
    energies_to_u,
    inverse_logit,
    logit,
    normalize_layers,
    renormalize_layers,
    u_to_energies,
)

#: MeV per GeV (CaloINN works in GeV).
GEV = 1e3
#: CaloINN's per-layer normalization offset, 1e-10 GeV, in MeV.
LAYER_EPSILON_MEV = 1e-10 * GEV
#: The logit regularizer of the VAE (INNVAE) and of the INN's optional logit u's.
VAE_ALPHA = 1e-6
U_SCALE = 0.9


def log2_energy(incident_mev: torch.Tensor) -> torch.Tensor:
    """CaloINN's condition ``log2(E_inc / GeV)`` as a (B, 1) tensor."""
    return torch.log2(incident_mev / GEV).reshape(-1, 1)


def shares_and_u(
    voxels: torch.Tensor,
    incident_mev: torch.Tensor,
    layer_sizes: Sequence[int],
    u0_scale: float,
    empty_tail: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, V) voxels in MeV -> (layer shares (B, V), layer-energy fractions u (B, n_layers));
    ``empty_tail`` as in :func:`calobench.preprocessing.energies_to_u`."""
    shares, layer_energies = normalize_layers(voxels, layer_sizes, epsilon_mev=LAYER_EPSILON_MEV)
    return shares, energies_to_u(layer_energies, incident_mev, u0_scale, empty_tail)


# ---------------------------------------------------------------------- INN
#: How the INN sees the u's: ``log`` like the shares (published), or ``logit`` (``logit(a + (1 - 2a) u)``,
#: a = 1e-6, as CaloFlow's Flow I and CaloINN's VAE do), which spreads the fractions near 1.
U_TRANSFORMS = ("log", "logit")


def dequantize_u(u: torch.Tensor, width: float) -> torch.Tensor:
    """``(1 - w) u + w U(0, 1)``: spreads the point masses of the fractions at 0 (empty layers) and 1
    (everything in one layer) over bands of width ``w`` inside [0, 1], so that their logit has a density."""
    return (1.0 - width) * u + width * torch.rand_like(u) if width > 0 else u


def requantize_u(u: torch.Tensor, width: float) -> torch.Tensor:
    """The inverse of :func:`dequantize_u` on average (the band's centre), clipped to [0, 1]."""
    return ((u - 0.5 * width) / (1.0 - width)).clamp(0.0, 1.0)


def inn_inputs(
    shares_u: torch.Tensor,
    n_voxels: int,
    noise_width: float,
    alpha: float,
    u_transform: str = "log",
    u_noise: float = 0.0,
) -> torch.Tensor:
    """``log(x + U(0, b) + alpha)`` of the shares and u's (B, V + n_layers), with fresh noise from
    torch's global generator (the training loop seeds and checkpoints it); with ``u_transform="logit"``
    the u's are instead dequantized by :func:`dequantize_u` (width ``u_noise``) and go through the logit."""
    if u_transform == "log":
        noisy = shares_u + noise_width * torch.rand_like(shares_u) if noise_width > 0 else shares_u
        return torch.log(noisy + alpha)
    shares, u = shares_u[:, :n_voxels], shares_u[:, n_voxels:]
    noisy = shares + noise_width * torch.rand_like(shares) if noise_width > 0 else shares
    return torch.cat([torch.log(noisy + alpha), logit(dequantize_u(u, u_noise), VAE_ALPHA)], 1)


def inn_to_voxels(
    values: torch.Tensor,
    incident_mev: torch.Tensor,
    layer_sizes: Sequence[int],
    *,
    noise_width: float,
    alpha: float,
    u0_scale: float,
    threshold_mev: float,
    u_transform: str = "log",
    u_noise: float = 0.0,
) -> torch.Tensor:
    """Invert :func:`inn_inputs` for generated (B, V + n_layers) values: voxels (B, V) in MeV.

    exp - alpha - b; shares below b set to 0 (CaloINN's ``postprocess(threshold=width_noise)``
    after ``samples -= width_noise``); u's (inverted likewise) clipped to [0, 1]; layer energies from
    the u's; every layer's shares scaled to its energy; voxels below ``threshold_mev`` set to 0.
    """
    n_voxels = sum(layer_sizes)
    shares = torch.exp(values[:, :n_voxels].clamp(max=_log_top(noise_width, alpha))) - alpha - noise_width
    shares = torch.where(shares < noise_width, torch.zeros_like(shares), shares)
    u = inn_u(values[:, n_voxels:], noise_width=noise_width, alpha=alpha, u_transform=u_transform, u_noise=u_noise)
    layer_energies = u_to_energies(u, incident_mev.to(values.dtype), u0_scale)
    return apply_threshold(renormalize_layers(shares, layer_energies, layer_sizes), threshold_mev)


def _log_top(noise_width: float, alpha: float) -> float:
    """Anything above log(1 + b + alpha) (a share or u above 1) is clipped before the exponential."""
    return math.log(1.0 + noise_width + alpha) + 1.0


def inn_u(values: torch.Tensor, *, noise_width: float, alpha: float, u_transform: str, u_noise: float) -> torch.Tensor:
    """The INN's (B, n_layers) u dimensions back to layer-energy fractions in [0, 1] (the u part of
    :func:`inn_to_voxels`): exp - alpha - b for ``log``, the inverse logit and band centre for ``logit``."""
    if u_transform == "log":
        u = torch.exp(values.clamp(max=_log_top(noise_width, alpha))) - alpha - noise_width
    else:
        u = requantize_u(inverse_logit(values, VAE_ALPHA), u_noise)
    return u.clamp(0.0, 1.0)


# ---------------------------------------------------------------------- VAE
def u_logits(u: torch.Tensor, scale: float = U_SCALE) -> torch.Tensor:
    """``logit(0.9 u)`` (with the VAE's regularizer): the u's as the VAE condition and INN latent see them.

    ``scale`` replaces the published 0.9: with 1 the fractions near 1 (a layer holding all the energy
    left, every layer behind it empty) keep their resolution (``logit(0.9 u)`` maps u in [0.999, 1]
    onto a band 0.01 wide, ``logit(u)`` onto [6.9, 13.8])."""
    return logit(scale * u, VAE_ALPHA)


def u_from_logits(values: torch.Tensor, scale: float = U_SCALE) -> torch.Tensor:
    """Inverse of :func:`u_logits`, clipped to [0, 1]."""
    return (inverse_logit(values, VAE_ALPHA) / scale).clamp(0.0, 1.0)


def share_logits(shares: torch.Tensor) -> torch.Tensor:
    """``logit(a + (1 - 2a) x)`` of the layer shares, a = 1e-6."""
    return logit(shares, VAE_ALPHA)


def shares_from_logits(values: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`share_logits` (sigmoid), in [0, 1]."""
    return inverse_logit(values, VAE_ALPHA)


def vae_to_voxels(
    shares: torch.Tensor,
    u: torch.Tensor,
    incident_mev: torch.Tensor,
    layer_sizes: Sequence[int],
    *,
    u0_scale: float,
    threshold_mev: float,
) -> torch.Tensor:
    """Decoded shares and u's -> voxels in MeV: every layer renormalized to its energy from the u's,
    then voxels below ``threshold_mev`` set to 0."""
    layer_energies = u_to_energies(u, incident_mev.to(shares.dtype), u0_scale)
    return apply_threshold(renormalize_layers(shares, layer_energies, layer_sizes), threshold_mev)
