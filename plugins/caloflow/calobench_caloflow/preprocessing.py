"""CaloFlow's data transformations, in MeV at the boundaries (arXiv 2106.05285 sec. III, 2210.14245).

The generic transforms (u-space, logit, layer normalization, noise, threshold) are calobench's
shared ones (:mod:`calobench.preprocessing`); this module holds CaloFlow's constants and contexts.

Flow I (layer energies given E_inc) works in "u-space": ``u_0 = sum_i E_i / (f E_inc)`` and the
recursive fractions ``u_i = E_i / sum_{j>=i} E_j`` for i = 0..n-2 (the last layer is implied),
clamped to [0, 1] and mapped through ``logit(alpha + (1 - 2 alpha) u)``, alpha = 1e-6.

Flow II (voxels given E_inc and the layer energies) sees every layer normalized to sum 1, after a
small uniform noise has been added to every voxel, in the same logit space; its context is
``log10(E_inc / E_ref)`` and ``log10(E_i / 100 GeV + 1e-8) + offset`` per layer. CaloFlow expresses
energies in units of 100 GeV (1e5 MeV); :class:`Conventions` holds the published constants per
geometry (DS1: E_ref = 1e5/3 MeV, offset -1; CaloGAN: E_ref = 1e4 MeV, offset +2) so that every
function here takes and returns MeV.

Generation inverts the chain as the published code does (run_gamma_2023.py:217-237, data_gamma.py:215-232):
``(sigmoid - alpha) / (1 - 2 alpha)`` without clipping, every layer divided by the sum of its
absolute shares and scaled to its Flow-I energy, then the voxels clamped to [0, 1 TeV] (DS1;
CaloGAN: [0, 100 GeV]) and those below the threshold (0.01 MeV) set to 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from calobench.preprocessing import (
    add_noise,
    apply_threshold,
    energies_to_u,
    expand_layers,
    inverse_logit,
    layer_sums,
    logit,
    normalize_layers,
    u_to_energies,
)

__all__ = [
    "ALPHA",
    "LAYER_EPSILON",
    "PUBLISHED",
    "UNIT_MEV",
    "Conventions",
    "add_noise",
    "energies_to_u",
    "flow_i_context",
    "flow_ii_context",
    "flow_ii_to_voxels",
    "inverse_logit",
    "layer_sums",
    "logit",
    "normalize_layers",
    "u_to_energies",
    "voxels_to_flow_ii",
]

#: CaloFlow's logit regularizer (arXiv 2106.05285; MAF paper arXiv 1705.07057).
ALPHA = 1e-6
#: CaloFlow's energy unit, 100 GeV, in MeV.
UNIT_MEV = 1e5
#: The regularizer of ``log10(E_i / 100 GeV + 1e-8)`` in the Flow-II context (run_gamma_2023.py:428).
LAYER_EPSILON = 1e-8


@dataclass(frozen=True)
class Conventions:
    """Per-geometry constants of the CaloFlow preprocessing, energies in MeV.

    Attributes:
        u0_scale: f in ``u_0 = E_dep / (f E_inc)``; must exceed the largest E_dep / E_inc.
        e_inc_ref_mev: E_ref of the context ``log10(E_inc / E_ref)``.
        layer_offset: added to ``log10(E_i / 100 GeV + 1e-8)`` in the Flow-II context.
        noise_flow1_mev, noise_flow2_mev: width of the uniform noise added to every voxel before the
            layer energies (Flow I) and the normalized layers (Flow II) are computed.
        threshold_mev: generated voxels below this are set to 0.
        max_voxel_mev: generated voxels are clamped to at most this (``save_samples_to_file``).
        generation_epsilon: the ``1e-8`` of ``log10(E_i / 100 GeV + 1e-8)`` in the Flow-II context
            when generating (the pion code uses 1e-9 there, 1e-8 in training:
            run_piplus_2023.py:556-562 against 447-452).
    """

    u0_scale: float = 2.42
    e_inc_ref_mev: float = UNIT_MEV / 3.0
    layer_offset: float = -1.0
    noise_flow1_mev: float = 1e-8 * UNIT_MEV
    noise_flow2_mev: float = 1e-8 * UNIT_MEV
    threshold_mev: float = 0.01
    max_voxel_mev: float = 1e6
    generation_epsilon: float = LAYER_EPSILON

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


#: Published constants (Ian-Pang/caloflow-for-calochallenge run_gamma_2023.py, run_piplus_2023.py,
#: data_*.py; Ian-Pang/AD_with_CF run.py and data.py for CaloGAN).
PUBLISHED: dict[str, Conventions] = {
    "ds1-photons": Conventions(u0_scale=2.42),
    "ds1-pions": Conventions(u0_scale=6.93, noise_flow1_mev=1e-9 * UNIT_MEV, generation_epsilon=1e-9),
    "calogan": Conventions(u0_scale=1.0, e_inc_ref_mev=1e4, layer_offset=2.0, max_voxel_mev=1e5),
}


# ---------------------------------------------------------------------- Flow I
def flow_i_context(incident_energies: torch.Tensor, conventions: Conventions) -> torch.Tensor:
    """(B, 1) context ``log10(E_inc / E_ref)`` (CaloFlow DS1: ``log10(3 E_inc / 100 GeV)``)."""
    return torch.log10(incident_energies / conventions.e_inc_ref_mev)[:, None]


# ---------------------------------------------------------------------- Flow II
def flow_ii_context(
    incident_energies: torch.Tensor,
    layer_energies: torch.Tensor,
    conventions: Conventions,
    epsilon: float = LAYER_EPSILON,
) -> torch.Tensor:
    """(B, 1 + n_layers) context: ``log10(E_inc / E_ref)`` and ``log10(E_i / 100 GeV + epsilon) + offset``
    (``epsilon`` 1e-8; for generation ``conventions.generation_epsilon``)."""
    layers = torch.log10(layer_energies / UNIT_MEV + epsilon) + conventions.layer_offset
    return torch.cat([flow_i_context(incident_energies, conventions), layers], dim=1)


def voxels_to_flow_ii(
    voxels: torch.Tensor,
    incident_energies: torch.Tensor,
    layer_sizes: Sequence[int],
    conventions: Conventions,
    generator: torch.Generator | None = None,
    noise: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MeV voxels -> (Flow-II inputs in logit space, Flow-II context)."""
    if noise:
        voxels = add_noise(voxels, conventions.noise_flow2_mev, generator)
    normalized, sums = normalize_layers(voxels, layer_sizes, epsilon_mev=1e-16 * UNIT_MEV)
    return logit(normalized.clamp(0.0, 1.0)), flow_ii_context(incident_energies, sums, conventions)


def flow_ii_to_voxels(
    samples: torch.Tensor,
    layer_energies: torch.Tensor,
    layer_sizes: Sequence[int],
    threshold_mev: float,
    max_voxel_mev: float = math.inf,
) -> torch.Tensor:
    """Flow-II samples (logit space) and layer energies (MeV) -> voxel energies (MeV), as published.

    ``(sigmoid - alpha) / (1 - 2 alpha)`` (not clipped), each layer divided by the sum of its absolute
    shares and scaled to its energy (``transform_to_energy``, run_gamma_2023.py:217-237), then clamped
    to [0, ``max_voxel_mev``] with voxels below ``threshold_mev`` set to 0 (``save_samples_to_file``,
    data_gamma.py:215-232). A layer with every share below alpha thus comes out empty.
    """
    shares = (torch.sigmoid(samples) - ALPHA) / (1.0 - 2.0 * ALPHA)
    totals = layer_sums(shares.abs(), layer_sizes)
    voxels = shares / expand_layers(totals, layer_sizes) * expand_layers(layer_energies, layer_sizes)
    return apply_threshold(voxels.clamp(0.0, max_voxel_mev), threshold_mev)
