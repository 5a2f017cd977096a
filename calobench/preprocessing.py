"""Shower preprocessing transforms shared by the model plugins, each with its inverse (MeV in and out).

* **Layer-energy fractions ("u-space")** -- CaloFlow (Krause & Shih, arXiv 2106.05285 sec. III.A),
  CaloINN (Ernst et al., arXiv 2312.09290 sec. 2) and CaloMan (arXiv 2211.15380) describe the layer
  energies of a shower by ``u_0 = sum_i E_i / (f E_inc)`` and the recursive fractions
  ``u_i = E_i / sum_{j>=i} E_j`` for i = 0..n-2 (the last layer's share is implied), all in [0, 1].
  :func:`energies_to_u` and :func:`u_to_energies` map between the two.
* **Logit** -- ``logit(alpha + (1 - 2 alpha) x)`` for x in [0, 1] (the MAF paper's regularized logit,
  arXiv 1705.07057) and its clamped inverse.
* **Per-layer normalization** -- every layer divided by its energy (:func:`normalize_layers`) and,
  for generation, shares renormalized to sum 1 in every layer and scaled to given layer energies
  (:func:`renormalize_layers`).
* **Noise and threshold** -- uniform dequantization noise of a given width in MeV (:func:`add_noise`)
  and the readout threshold below which generated voxels are set to 0 (:func:`apply_threshold`).

Every function works on torch tensors of any float dtype and device; layers are the contiguous
blocks of ``layer_sizes`` voxels in the flat CaloChallenge order (``Geometry.layer_sizes``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

#: The MAF / CaloFlow logit regularizer (arXiv 1705.07057, 2106.05285).
DEFAULT_ALPHA = 1e-6


# ---------------------------------------------------------------------- logit
def logit(x: torch.Tensor, alpha: float = DEFAULT_ALPHA) -> torch.Tensor:
    """``logit(alpha + (1 - 2 alpha) x)`` for x in [0, 1]; finite at 0 and 1."""
    y = alpha + (1.0 - 2.0 * alpha) * x
    return torch.log(y) - torch.log1p(-y)


def inverse_logit(y: torch.Tensor, alpha: float = DEFAULT_ALPHA) -> torch.Tensor:
    """Inverse of :func:`logit`, clamped to [0, 1]."""
    return ((torch.sigmoid(y) - alpha) / (1.0 - 2.0 * alpha)).clamp(0.0, 1.0)


# ---------------------------------------------------------------------- u-space
def energies_to_u(
    layer_energies: torch.Tensor,
    incident_energies: torch.Tensor,
    u0_scale: float = 1.0,
    empty_tail: float = 0.0,
    clip_total: bool = True,
) -> torch.Tensor:
    """(B, n) layer energies and (B,) E_inc (MeV) -> (B, n) layer-energy fractions in [0, 1].

    ``u0_scale`` is f in ``u_0 = E_dep / (f E_inc)``; it must exceed the largest E_dep / E_inc of the
    data (sampling calorimeters with the sampling fraction folded in, pions) for u_0 to stay below 1.
    ``empty_tail`` is the value of ``u_i = E_i / sum_{j>=i} E_j`` where layer i and every layer behind
    it are empty (0 / 0: any value gives back the energies). With 0 (CaloFlow's convention) the energy
    a generator leaves over after the last non-empty layer lands in the last layer on inversion; with 1
    in the first empty layer behind the shower. ``clip_total=False`` leaves ``u_0`` unclipped above 1
    (CaloINN's INN takes ``u_0 = E_dep / E_inc`` through a log, not a logit, and keeps showers up to
    ``u_0 < 7``, pions up to 3.5: heidelberg-hepml/CaloINN@a57e1c2 src/data_util.py:124,181-190).
    """
    total = layer_energies.sum(dim=1)
    columns = [total / (u0_scale * incident_energies)]
    remaining = torch.flip(torch.cumsum(torch.flip(layer_energies, [1]), dim=1), [1])  # sum_{j>=i} E_j
    n = layer_energies.shape[1]
    if n > 1:
        tiny = torch.finfo(layer_energies.dtype).tiny
        fractions = layer_energies[:, : n - 1] / remaining[:, : n - 1].clamp_min(tiny)
        if empty_tail != 0.0:
            fractions = torch.where(remaining[:, : n - 1] > 0, fractions, torch.full_like(fractions, empty_tail))
        columns.extend(fractions.unbind(dim=1))
    u = torch.stack(columns, dim=1)
    if clip_total:
        return u.clamp(0.0, 1.0)
    return torch.cat([u[:, :1].clamp_min(0.0), u[:, 1:].clamp(0.0, 1.0)], dim=1)


def u_to_energies(u: torch.Tensor, incident_energies: torch.Tensor, u0_scale: float = 1.0) -> torch.Tensor:
    """Inverse of :func:`energies_to_u`: (B, n) fractions in [0, 1] -> (B, n) layer energies (MeV)."""
    remaining = u[:, 0] * u0_scale * incident_energies
    energies = []
    for i in range(1, u.shape[1]):
        energy = u[:, i] * remaining
        energies.append(energy)
        remaining = remaining - energy
    energies.append(remaining)
    return torch.stack(energies, dim=1).clamp_min(0.0)


# ---------------------------------------------------------------------- layers
def layer_sums(voxels: torch.Tensor, layer_sizes: Sequence[int]) -> torch.Tensor:
    """(B, n_voxels) -> (B, n_layers) energy per layer."""
    return torch.stack([part.sum(dim=1) for part in torch.split(voxels, list(layer_sizes), dim=1)], dim=1)


def expand_layers(per_layer: torch.Tensor, layer_sizes: Sequence[int]) -> torch.Tensor:
    """(B, n_layers) -> (B, n_voxels): every layer's value repeated over its voxels."""
    sizes = torch.as_tensor(list(layer_sizes), device=per_layer.device)
    return torch.repeat_interleave(per_layer, sizes, dim=1)


def normalize_layers(
    voxels: torch.Tensor, layer_sizes: Sequence[int], epsilon_mev: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each layer divided by (its energy + ``epsilon_mev``); returns (normalized voxels, layer energies).

    An empty layer stays 0 when ``epsilon_mev > 0``; with ``epsilon_mev = 0`` it is divided by the
    smallest positive float instead (still 0).
    """
    sums = layer_sums(voxels, layer_sizes)
    scale = expand_layers(sums, layer_sizes) + epsilon_mev
    if epsilon_mev <= 0:
        scale = scale.clamp_min(torch.finfo(voxels.dtype).tiny)
    return voxels / scale, sums


#: What :func:`renormalize_layers` does with a layer whose shares are all 0.
EMPTY_LAYERS = ("spread", "drop")


def renormalize_layers(
    shares: torch.Tensor, layer_energies: torch.Tensor, layer_sizes: Sequence[int], empty_layers: str = "spread"
) -> torch.Tensor:
    """Non-negative voxel shares and (B, n_layers) layer energies (MeV) -> voxel energies (MeV).

    Every layer's shares are divided by their sum and multiplied by the layer's energy. A layer
    whose shares are all 0 spreads its energy evenly (``empty_layers="spread"``) or loses it
    (``"drop"``: ``shares * E / (sum + eps)`` as CaloINN computes it,
    heidelberg-hepml/CaloINN@a57e1c2 src/data_util.py:375-408). The inverse of :func:`normalize_layers`.
    """
    if empty_layers not in EMPTY_LAYERS:
        raise ValueError(f"empty_layers must be one of {EMPTY_LAYERS}, got {empty_layers!r}")
    shares = shares.clamp_min(0.0)
    totals = layer_sums(shares, layer_sizes)
    safe = torch.where(totals > 0, totals, torch.ones_like(totals))
    normalized = shares / expand_layers(safe, layer_sizes)
    if empty_layers == "drop":
        return normalized * expand_layers(layer_energies, layer_sizes)
    sizes = torch.as_tensor(list(layer_sizes), device=shares.device, dtype=shares.dtype)
    uniform = expand_layers((1.0 / sizes).expand_as(totals), layer_sizes)
    normalized = torch.where(expand_layers(totals > 0, layer_sizes), normalized, uniform)
    return normalized * expand_layers(layer_energies, layer_sizes)


# ---------------------------------------------------------------------- noise and threshold
def add_noise(voxels: torch.Tensor, width_mev: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Voxels plus uniform noise in [0, ``width_mev``) MeV (dequantization of the empty voxels)."""
    if width_mev <= 0:
        return voxels
    noise = torch.rand(voxels.shape, generator=generator, device=voxels.device, dtype=voxels.dtype)
    return voxels + width_mev * noise


def apply_threshold(voxels: torch.Tensor, threshold_mev: float) -> torch.Tensor:
    """Voxels clamped to >= 0 with everything below ``threshold_mev`` set to 0 (the readout threshold)."""
    voxels = voxels.clamp_min(0.0)
    return torch.where(voxels < threshold_mev, torch.zeros_like(voxels), voxels)
