"""Flow II: the per-layer-normalized voxels given E_inc and the layer energies.

Teacher (CaloFlow I, arXiv 2106.05285; DS1 version arXiv 2210.14245): a MAF of ``n_blocks``
MADE-RQS blocks on all voxels at once, in logit space, context ``(log E_inc, log E_i)``, with a
within-layer reversal after even blocks and a within-layer random shuffle after odd ones (none after
the last). Published: 8 blocks, MADE with 2 hidden layers of 378 (DS1 photons) / 533 (DS1 pions),
8 bins, tail bound 14, minima 1e-6, dropout 0.05.

Student (CaloFlow II, arXiv 2110.11377): the same chain with IAF blocks (one MADE pass per block to
sample) and the teacher's permutations, usually wider.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from calobench_caloflow.autoregressive import Direction, SplineAutoregressive
from calobench_caloflow.flow import ConditionalFlow
from calobench_caloflow.permutations import FixedPermutation, caloflow_permutations


def build_flow_ii(
    layer_sizes: Sequence[int],
    n_blocks: int,
    hidden: int,
    hidden_layers: int,
    bins: int,
    tail_bound: float,
    dropout: float,
    direction: Direction,
    permutations: Sequence[np.ndarray | torch.Tensor] | None = None,
    rng: np.random.Generator | None = None,
) -> ConditionalFlow:
    """The Flow-II chain. ``permutations`` (n_blocks - 1 of them) default to CaloFlow's alternation
    drawn with ``rng``; a student passes its teacher's."""
    features = int(sum(layer_sizes))
    context = 1 + len(layer_sizes)
    if permutations is None:
        if rng is None:
            raise ValueError("give either permutations or an rng to draw them")
        permutations = caloflow_permutations(layer_sizes, n_blocks, rng)
    if len(permutations) != n_blocks - 1:
        raise ValueError(f"{n_blocks} blocks need {n_blocks - 1} permutations, got {len(permutations)}")
    transforms: list[torch.nn.Module] = []
    for i in range(n_blocks):
        transforms.append(
            SplineAutoregressive(
                features,
                context,
                hidden,
                direction=direction,
                n_hidden_layers=hidden_layers,
                num_bins=bins,
                tail_bound=tail_bound,
                dropout=dropout,
            )
        )
        if i < n_blocks - 1:
            perm = permutations[i]
            transforms.append(FixedPermutation(perm.cpu().numpy() if isinstance(perm, torch.Tensor) else perm))
    return ConditionalFlow(transforms, features)


def flow_permutations(flow: ConditionalFlow) -> list[torch.Tensor]:
    """The permutations of a Flow-II chain, in order (to copy a teacher's into its student)."""
    return [p.permutation.detach().cpu().clone() for p in flow.permutations]
