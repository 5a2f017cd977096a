"""Flow I: the layer energies given the incident energy (arXiv 2106.05285 sec. III.A; 2210.14245).

A MAF of rational-quadratic-spline MADE blocks on the n_layers u-space values (preprocessing.py),
conditioned on ``log10(E_inc / E_ref)``, each block followed by a fixed random permutation of all
features (nflows ``RandomPermutation``). Published: 6 blocks, MADE with 3 hidden layers of 64,
8 bins, tail bound 14, minima 1e-6, no dropout.
"""

from __future__ import annotations

import numpy as np
import torch

from calobench_caloflow.autoregressive import SplineAutoregressive
from calobench_caloflow.flow import ConditionalFlow
from calobench_caloflow.permutations import FixedPermutation, full_shuffle
from calobench_caloflow.preprocessing import (
    Conventions,
    energies_to_u,
    flow_i_context,
    inverse_logit,
    logit,
    u_to_energies,
)


def build_flow_i(
    n_layers: int,
    n_blocks: int,
    hidden: int,
    hidden_layers: int,
    bins: int,
    tail_bound: float,
    rng: np.random.Generator,
) -> ConditionalFlow:
    """The Flow-I MAF: ``n_blocks`` x (MADE-RQS block, random permutation)."""
    transforms: list[torch.nn.Module] = []
    for _ in range(n_blocks):
        transforms.append(
            SplineAutoregressive(
                n_layers,
                1,
                hidden,
                direction="maf",
                n_hidden_layers=hidden_layers,
                num_bins=bins,
                tail_bound=tail_bound,
            )
        )
        transforms.append(FixedPermutation(full_shuffle(n_layers, rng)))
    return ConditionalFlow(transforms, n_layers)


def flow_i_inputs(
    layer_energies: torch.Tensor, incident_energies: torch.Tensor, conventions: Conventions
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logit u-space values, context) for Flow I from layer energies and E_inc (MeV)."""
    u = energies_to_u(layer_energies, incident_energies, conventions.u0_scale)
    return logit(u), flow_i_context(incident_energies, conventions)


def sample_layer_energies(
    flow: ConditionalFlow,
    incident_energies: torch.Tensor,
    conventions: Conventions,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B,) E_inc in MeV -> (B, n_layers) layer energies in MeV sampled from Flow I (float64)."""
    dtype = next(flow.parameters()).dtype
    context = flow_i_context(incident_energies.to(torch.float64), conventions).to(dtype)
    u = inverse_logit(flow.sample(context, generator=generator).to(torch.float64))
    return u_to_energies(u, incident_energies.to(torch.float64), conventions.u0_scale)
