"""CaloINN's data transformations (Ernst et al., arXiv 2312.09290 sec. 2), MeV at the boundaries.

The generic transforms (u-space, logit, per-layer normalization, threshold) are calobench's shared
ones (:mod:`calobench.preprocessing`); this module composes them the way the published code does.
Sources: INN = heidelberg-hepml/CaloINN@a57e1c2 (branch ``calochallenge``), VAE =
heidelberg-hepml/CaloINN@342e78f (branch ``vae_calo_challenge_mark_2``); the line numbers are in
../FIDELITY.md.

**INN**: every layer divided by its energy (+1e-10 GeV), the layer-energy fractions
``u_0 = E_dep / E_inc`` (not clipped) and ``u_i = E_i / sum_{j>=i} E_j`` appended as extra
dimensions, a fresh uniform noise ``U(0, b)`` on every dimension in each batch, then
``log(x + alpha)``; condition ``log2(E_inc / GeV)``. Generation: ``exp - alpha``, minus ``b``, every
column below ``b`` set to 0 (the u's included), ``u_1..`` clipped to [0, 1], layer energies from the
u's, every layer's shares scaled to its energy (a layer whose shares are all 0 loses its energy).

**VAE**: the VAE sees ``logit(a + (1 - 2a) [0.9 x, u / 1.15])`` (x the layer shares, u with
``u_0 = E_dep / (2 E_inc)``, the cards' halved voxels), standardized feature by feature, plus
``logit(E_inc / (1.15 max E_inc))``; its decoder gets the latent, ``logit(u / 1.15)`` and the same
energy logit. The decoder's output is de-standardized, mapped back through the sigmoid, scaled to
the layer energies and cut at the internal threshold. The latent INN models the encoder's
``[mu, logvar]`` and ``logit(0.9 u)``, standardized, given ``ln(E_inc / 100 GeV)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from calobench.preprocessing import (
    apply_threshold,
    energies_to_u,
    expand_layers,
    inverse_logit,
    logit,
    normalize_layers,
    renormalize_layers,
    u_to_energies,
)

#: MeV per GeV (the INN works in GeV).
GEV = 1e3
#: CaloINN's per-layer normalization offset, 1e-10 GeV, in MeV.
LAYER_EPSILON_MEV = 1e-10 * GEV
#: The logit regularizer of the INN's optional logit u's.
U_LOGIT_ALPHA = 1e-6
#: Anything above this is clipped before the exponential (an overflow guard: e^30 = 1e13).
LOG_MAX = 30.0

#: The VAE cards' energy unit: voxels / 1e5 MeV, then halved (data_util.py:64-66, 184).
VAE_UNIT_MEV = 2e5
#: The VAE's per-layer normalization offset, the cards' eps 1e-10, in MeV.
VAE_EPSILON_MEV = 1e-10 * VAE_UNIT_MEV
#: f in ``u_0 = E_dep / (f E_inc)`` for the VAE: the cards' halved voxels.
VAE_U0_SCALE = 2.0
#: The layer shares enter the VAE (and its loss) times 0.9, the u's as logit(0.9 u) in the latent INN.
SHARE_SCALE = 0.9
#: The VAE divides E_inc by 1.15 x its training maximum and the u's by 1.15 (model.py:665-671).
CONDITION_SCALE = 1.15
#: The latent INN's condition: ln(E_inc) in the cards' 100 GeV.
INN_ENERGY_UNIT_MEV = 1e5


def log2_energy(incident_mev: torch.Tensor) -> torch.Tensor:
    """CaloINN's INN condition ``log2(E_inc / GeV)`` as a (B, 1) tensor."""
    return torch.log2(incident_mev / GEV).reshape(-1, 1)


def shares_and_u(
    voxels: torch.Tensor,
    incident_mev: torch.Tensor,
    layer_sizes: Sequence[int],
    u0_scale: float,
    empty_tail: float = 0.0,
    clip_total: bool = True,
    epsilon_mev: float = LAYER_EPSILON_MEV,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, V) voxels in MeV -> (layer shares (B, V), layer-energy fractions u (B, n_layers));
    ``empty_tail`` and ``clip_total`` as in :func:`calobench.preprocessing.energies_to_u`."""
    shares, layer_energies = normalize_layers(voxels, layer_sizes, epsilon_mev=epsilon_mev)
    return shares, energies_to_u(layer_energies, incident_mev, u0_scale, empty_tail, clip_total=clip_total)


# ---------------------------------------------------------------------- INN
#: How the INN sees the u's: ``log`` like the shares (published), or ``logit`` (``logit(a + (1 - 2a) u)``,
#: a = 1e-6, an option), which spreads the fractions near 1.
U_TRANSFORMS = ("log", "logit")


def dequantize_u(u: torch.Tensor, width: float) -> torch.Tensor:
    """``(1 - w) u + w U(0, 1)``: spreads the point masses of the fractions at 0 (empty layers) and 1
    (everything in one layer) over bands of width ``w`` inside [0, 1] (an option; not published)."""
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
    return torch.cat([torch.log(noisy + alpha), logit(dequantize_u(u, u_noise), U_LOGIT_ALPHA)], 1)


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
    legacy: bool = False,
) -> torch.Tensor:
    """Invert :func:`inn_inputs` for generated (B, V + n_layers) values: voxels (B, V) in MeV.

    As published (``Trainer.generate`` and ``data_util.postprocess`` / ``unnormalize_layers``):
    ``exp - alpha - b`` for every column, every value below ``b`` set to 0 -- the u's included --,
    ``u_1..`` clipped to [0, 1] (``u_0`` is not), layer energies ``E_i = (E_tot - sum_{j<i} E_j) u_{i+1}``
    from ``E_tot = u_0 f E_inc``, every layer's shares scaled to its energy; a layer whose shares are
    all 0 loses its energy. Then voxels below ``threshold_mev`` are set to 0 (the published code has
    none: ``threshold_mev = 0``).

    ``legacy=True`` is the post-processing of runs saved before method_version 2: the u's are not
    zeroed below ``b``, all u's are clipped to [0, 1], an empty layer spreads its energy evenly.
    """
    n_voxels = sum(layer_sizes)
    if legacy:
        top = _legacy_log_top(noise_width, alpha)
        shares = torch.exp(values[:, :n_voxels].clamp(max=top)) - alpha - noise_width
        shares = torch.where(shares < noise_width, torch.zeros_like(shares), shares)
        u = inn_u(
            values[:, n_voxels:],
            noise_width=noise_width,
            alpha=alpha,
            u_transform=u_transform,
            u_noise=u_noise,
            legacy=True,
        )
        layer_energies = u_to_energies(u, incident_mev.to(values.dtype), u0_scale)
        return apply_threshold(renormalize_layers(shares, layer_energies, layer_sizes), threshold_mev)
    shares = _below_noise_to_zero(torch.exp(values[:, :n_voxels].clamp(max=LOG_MAX)) - alpha - noise_width, noise_width)
    u = inn_u(values[:, n_voxels:], noise_width=noise_width, alpha=alpha, u_transform=u_transform, u_noise=u_noise)
    layer_energies = u_to_energies(u, incident_mev.to(values.dtype), u0_scale)
    voxels = renormalize_layers(shares, layer_energies, layer_sizes, empty_layers="drop")
    return apply_threshold(voxels, threshold_mev)


def _below_noise_to_zero(values: torch.Tensor, noise_width: float) -> torch.Tensor:
    """CaloINN's ``x[x < quantiles] = 0`` with the quantiles the noise width b."""
    return torch.where(values < noise_width, torch.zeros_like(values), values)


def _legacy_log_top(noise_width: float, alpha: float) -> float:
    """The clip of runs before method_version 2: log(1 + b + alpha) + 1."""
    return math.log(1.0 + noise_width + alpha) + 1.0


def inn_u(
    values: torch.Tensor, *, noise_width: float, alpha: float, u_transform: str, u_noise: float, legacy: bool = False
) -> torch.Tensor:
    """The INN's (B, n_layers) u dimensions back to layer-energy fractions (the u part of
    :func:`inn_to_voxels`): for ``log``, ``exp - alpha - b`` with values below ``b`` set to 0 and
    ``u_1..`` clipped to 1 (``u_0 = E_dep / (f E_inc)`` may exceed 1); for ``logit``, the inverse
    logit and the band's centre. ``legacy``: runs before method_version 2 (``exp - alpha - b``
    clipped to [0, 1])."""
    if legacy and u_transform == "log":
        return (torch.exp(values.clamp(max=_legacy_log_top(noise_width, alpha))) - alpha - noise_width).clamp(0.0, 1.0)
    if u_transform == "log":
        u = _below_noise_to_zero(torch.exp(values.clamp(max=LOG_MAX)) - alpha - noise_width, noise_width)
        return torch.cat([u[:, :1], u[:, 1:].clamp(max=1.0)], dim=1)
    return requantize_u(inverse_logit(values, U_LOGIT_ALPHA), u_noise)


# ---------------------------------------------------------------------- VAE
def vae_logit(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """The VAE's ``logit(a + (1 - 2a) x)`` (``LogitTransformationVAE``)."""
    return logit(x, alpha)


def vae_sigmoid(y: torch.Tensor, alpha: float) -> torch.Tensor:
    """Its inverse ``(sigmoid(y) - a) / (1 - 2a)``, negative values set to 0 (``x[x < 0] = 0``)."""
    return ((torch.sigmoid(y) - alpha) / (1.0 - 2.0 * alpha)).clamp_min(0.0)


def vae_shares_and_u(
    voxels: torch.Tensor, incident_mev: torch.Tensor, layer_sizes: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, V) voxels in MeV -> (layer shares, u's with ``u_0 = E_dep / (2 E_inc)``, layer energies in MeV)."""
    shares, layer_energies = normalize_layers(voxels, layer_sizes, epsilon_mev=VAE_EPSILON_MEV)
    return shares, energies_to_u(layer_energies, incident_mev, VAE_U0_SCALE), layer_energies


def energy_logit(incident_mev: torch.Tensor, energy_max_mev: float, alpha: float) -> torch.Tensor:
    """(B, 1) ``logit(E_inc / (1.15 max E_inc))`` (clipped to [0, 1] first, as in ``decode``)."""
    scaled = (incident_mev.reshape(-1, 1) / (CONDITION_SCALE * energy_max_mev)).clamp(0.0, 1.0)
    return vae_logit(scaled, alpha)


def encoder_features(shares: torch.Tensor, u: torch.Tensor, alpha: float) -> torch.Tensor:
    """(B, V + n_layers) ``logit([0.9 x, u / 1.15])`` before the standardization (``_preprocess_encoding``)."""
    return vae_logit(torch.cat([SHARE_SCALE * shares, u / CONDITION_SCALE], dim=1), alpha)


def decoder_condition(u: torch.Tensor, incident_mev: torch.Tensor, energy_max_mev: float, alpha: float) -> torch.Tensor:
    """(B, n_layers + 1) ``[logit(u / 1.15), logit(E_inc / (1.15 max))]`` (``decode``; not standardized)."""
    return torch.cat(
        [vae_logit((u / CONDITION_SCALE).clamp(0.0, 1.0), alpha), energy_logit(incident_mev, energy_max_mev, alpha)],
        dim=1,
    )


def decoded_voxels(
    logits: torch.Tensor,
    layer_energies: torch.Tensor,
    layer_sizes: Sequence[int],
    *,
    alpha: float,
    internal_threshold_mev: float,
) -> torch.Tensor:
    """De-standardized decoder logits (B, V) -> voxels in MeV: ``(sigmoid - a) / (1 - 2a)``, negative
    values 0, every layer scaled to its energy (``x E / (sum x + eps)``), values below the internal
    threshold set to 0 (``decode``: ``x_recon[x_recon < threshold] = 0``; with threshold 0, ``x < 0``)."""
    shares = vae_sigmoid(logits, alpha)
    normalized, _ = normalize_layers(shares, layer_sizes, epsilon_mev=VAE_EPSILON_MEV)
    voxels = normalized * expand_layers(layer_energies.to(logits.dtype), layer_sizes)
    return torch.where(voxels < internal_threshold_mev, torch.zeros_like(voxels), voxels)


def loss_shares(voxels: torch.Tensor, layer_sizes: Sequence[int]) -> torch.Tensor:
    """The loss's ``0.9 x normalize_layers(x)`` (``reco_loss``: ``x_0_1``)."""
    return SHARE_SCALE * normalize_layers(voxels, layer_sizes, epsilon_mev=VAE_EPSILON_MEV)[0]


def latent_u_logits(u: torch.Tensor, alpha: float) -> torch.Tensor:
    """The latent INN's ``logit(0.9 u)`` (ECAETrainer.get_loaders)."""
    return vae_logit(SHARE_SCALE * u, alpha)


def u_from_latent_logits(values: torch.Tensor, alpha: float) -> torch.Tensor:
    """Inverse of :func:`latent_u_logits`: ``((sigmoid - a) / (1 - 2a)) / 0.9``, not clipped (u up to
    1 / 0.9, as published; :func:`calobench.preprocessing.u_to_energies` gives the layers behind an
    over-full one no energy, where the published decoder's negative energies end at its threshold)."""
    return ((torch.sigmoid(values) - alpha) / (1.0 - 2.0 * alpha)) / SHARE_SCALE


def inn_energy_condition(incident_mev: torch.Tensor) -> torch.Tensor:
    """The latent INN's condition ``ln(E_inc / 100 GeV)`` (CINN ``log_cond``: ``torch.log(c)``), (B, 1)."""
    return torch.log(incident_mev.reshape(-1, 1) / INN_ENERGY_UNIT_MEV)
