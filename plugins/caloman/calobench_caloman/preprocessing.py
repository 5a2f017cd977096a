"""CaloMan's data transformations, MeV at the boundaries (arXiv 2211.15380; the public code
layer6ai-labs/calo-man, files two_step_zoo/datasets/calo_challenge_showers.py and calo_challenge_epl.py).

* **Label** of the VAE and the latent flow: ``[log10(E_inc + 0.001), log10((E_l + 0.001) / 1e5) - 1]``
  (MeV; one entry per layer), standardized here with the training set's mean and standard
  deviation so that the networks start on inputs of order one.
* **Showers** seen by the VAE: every layer divided by its energy ("normalize to EPL"); for datasets
  2 and 3 the normalized voxels are further mapped through ``logit(alpha + (1 - 2 alpha) x)``,
  alpha = 1e-6 (CaloMan's ``logitspace_voxels``). :data:`SHOWER_SPACES` names the two variants.
* **Layer energies** seen by the layer-energy flow: CaloFlow's u-space (core
  :func:`calobench.preprocessing.energies_to_u`, u_0 scaled by CaloMan's ``max_deposited_ratio``
  f), logit with alpha = 1e-6, context ``log10(E_inc / 33.3 GeV)`` (CaloMan's ``caloflow_epl``).
* **Flow inputs** are divided by their largest absolute value on the training set (CaloMan's
  ``scale_data``, ``flow_scaling = "absmax"``), so that they sit in the spline interval [-1, 1]
  (tail bound 1), or standardized feature by feature (``"standardize"``; the layer-energy fractions
  have spikes at logit(0) and logit(1) from empty layers, which squeeze the rest of the data into a
  sliver of [-1, 1] under the absmax scaling). :func:`scaling` computes either.

Generation inverts the chain: the decoder mean is mapped back to voxel shares (sigmoid for the
logit space), clamped at 0, every layer renormalized and scaled to its sampled energy (core
:func:`calobench.preprocessing.renormalize_layers`), and voxels below the readout threshold set to 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

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

#: CaloMan's logit regularizer (also CaloFlow's).
ALPHA = 1e-6
#: Shower spaces of the VAE: per-layer-normalized voxels, or their logit.
SHOWER_SPACES = ("normalized", "logit")
#: CaloMan's shower space per geometry (``logitspace_voxels`` true for datasets 2 and 3).
PUBLISHED_SPACE = {"ds1-photons": "normalized", "ds1-pions": "normalized", "calogan": "normalized"}
PUBLISHED_SPACE.update({"ds2": "logit", "ds3": "logit"})
#: CaloMan's ``max_deposited_ratio`` f of u_0 = E_dep / (f E_inc) (config/shared_config.py);
#: CaloGAN was not in CaloMan: there f comes from the data (see :func:`u0_scale_for`).
PUBLISHED_U0_SCALE = {"ds1-photons": 3.1, "ds1-pions": 7.0, "ds2": 2.0, "ds3": 2.0}
#: E_ref of the layer-energy flow's context ``log10(E_inc / E_ref)`` (33.3 GeV, CaloFlow's DS1 choice).
E_REF_MEV = 33.3e3
#: A layer energy counts as empty below this (MeV) when layers are normalized.
EMPTY_LAYER_MEV = 1e-9
#: How flow inputs are brought to the spline interval.
FLOW_SCALINGS = ("absmax", "standardize")


def scaling(values: torch.Tensor, how: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(shift, scale), each (features,), such that ``(values - shift) / scale`` is the flow input:
    ``"absmax"`` -- shift 0, scale the largest |value| (CaloMan's ``scale_data``); ``"standardize"``
    -- the features' means and standard deviations."""
    if how == "absmax":
        scale = values.abs().max().clamp_min(1e-6).expand(values.shape[1])
        return torch.zeros(values.shape[1], dtype=values.dtype), scale.clone()
    if how == "standardize":
        return values.mean(dim=0), values.std(dim=0).clamp_min(1e-6)
    raise ValueError(f"flow scaling must be one of {FLOW_SCALINGS}, got {how!r}")


def u0_scale_for(geometry: str, max_ratio: float) -> float:
    """f for ``geometry``: the published one if the data's largest E_dep / E_inc stays below 98 % of
    it, else 1.1 x that ratio (synthetic or other data may deposit more than the real files)."""
    published = PUBLISHED_U0_SCALE.get(geometry)
    if published is not None and max_ratio < 0.98 * published:
        return published
    return 1.1 * max_ratio


@dataclass
class Conventions:
    """Constants and training-set statistics of the preprocessing (all JSON-serializable).

    Attributes:
        space: shower space of the VAE (:data:`SHOWER_SPACES`).
        u0_scale: f of the u-space.
        threshold_mev: generated voxels below this are set to 0.
        label_mean, label_std: standardization of the label (1 + n_layers entries).
        epl_shift, epl_scale: the layer-energy flow's input scaling (:func:`scaling`, per feature).
        shower_std: root-mean-square spread of the VAE inputs over the training set (the initial
            decoder width).
    """

    space: str = "normalized"
    u0_scale: float = 1.0
    threshold_mev: float = 0.0
    label_mean: list[float] = field(default_factory=list)
    label_std: list[float] = field(default_factory=list)
    epl_shift: list[float] = field(default_factory=list)
    epl_scale: list[float] = field(default_factory=list)
    shower_std: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------- labels and contexts
def raw_label(incident_energies: torch.Tensor, layer_energies: torch.Tensor) -> torch.Tensor:
    """(B, 1 + n_layers) CaloMan label ``[log10(E_inc + 0.001), log10((E_l + 0.001) / 1e5) - 1]`` (MeV in)."""
    e_inc = torch.log10(incident_energies + 1e-3)[:, None]
    layers = torch.log10((layer_energies.clamp_min(0.0) + 1e-3) / 1e5) - 1.0
    return torch.cat([e_inc, layers], dim=1)


def label(incident_energies: torch.Tensor, layer_energies: torch.Tensor, conventions: Conventions) -> torch.Tensor:
    """The standardized label (the context of the VAE and of the latent flow)."""
    raw = raw_label(incident_energies, layer_energies)
    mean = torch.as_tensor(conventions.label_mean, dtype=raw.dtype, device=raw.device)
    std = torch.as_tensor(conventions.label_std, dtype=raw.dtype, device=raw.device)
    return (raw - mean) / std


def epl_context(incident_energies: torch.Tensor) -> torch.Tensor:
    """(B, 1) context of the layer-energy flow: ``log10(E_inc / 33.3 GeV)``."""
    return torch.log10(incident_energies / E_REF_MEV)[:, None]


# ---------------------------------------------------------------------- layer energies
def logit_u(layer_energies: torch.Tensor, incident_energies: torch.Tensor, u0_scale: float) -> torch.Tensor:
    """Layer energies (MeV) -> logit of the u-space fractions (before the flow's scaling)."""
    return logit(energies_to_u(layer_energies, incident_energies, u0_scale), ALPHA)


def _affine(conventions: Conventions, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    shift = torch.as_tensor(conventions.epl_shift, dtype=like.dtype, device=like.device)
    scale = torch.as_tensor(conventions.epl_scale, dtype=like.dtype, device=like.device)
    return shift, scale


def layers_to_epl(
    layer_energies: torch.Tensor, incident_energies: torch.Tensor, conventions: Conventions
) -> torch.Tensor:
    """Layer energies (MeV) -> the layer-energy flow's inputs: scaled logit u-space."""
    values = logit_u(layer_energies, incident_energies, conventions.u0_scale)
    shift, scale = _affine(conventions, values)
    return (values - shift) / scale


def epl_to_layers(values: torch.Tensor, incident_energies: torch.Tensor, conventions: Conventions) -> torch.Tensor:
    """Inverse of :func:`layers_to_epl`: flow outputs -> layer energies (MeV, >= 0)."""
    shift, scale = _affine(conventions, values)
    u = inverse_logit(values * scale + shift, ALPHA)
    return u_to_energies(u, incident_energies, conventions.u0_scale)


# ---------------------------------------------------------------------- showers
def showers_to_vae(voxels: torch.Tensor, layer_sizes: Sequence[int], space: str) -> tuple[torch.Tensor, torch.Tensor]:
    """MeV voxels -> (VAE inputs, layer energies in MeV): per-layer normalized, logit for ``"logit"``."""
    normalized, sums = normalize_layers(voxels.clamp_min(0.0), layer_sizes, epsilon_mev=EMPTY_LAYER_MEV)
    normalized = normalized.clamp(0.0, 1.0)
    if space == "logit":
        return logit(normalized, ALPHA), sums
    return normalized, sums


def vae_to_showers(
    outputs: torch.Tensor,
    layer_energies: torch.Tensor,
    layer_sizes: Sequence[int],
    conventions: Conventions,
) -> torch.Tensor:
    """Decoder means and layer energies (MeV) -> voxel energies (MeV): shares, renormalized, thresholded."""
    shares = inverse_logit(outputs, ALPHA) if conventions.space == "logit" else outputs.clamp_min(0.0)
    voxels = renormalize_layers(shares, layer_energies, layer_sizes)
    return apply_threshold(voxels, conventions.threshold_mev)
