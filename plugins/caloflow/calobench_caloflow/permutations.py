"""Fixed permutations of the features that accept (and ignore) a context.

CaloFlow II alternates, between its MADE blocks, a reversal of the voxel order inside every
calorimeter layer and a fixed random shuffle inside every layer (``InversionLayer`` and
``RandomPermutationLayer`` of arXiv 2210.14245), so that each layer's voxels stay contiguous.
Flow I uses a fixed random permutation of all its features. normflows' ``Permute`` only knows
"shuffle" and "swap" and its ``Reverse`` refuses a context, hence this module.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


class FixedPermutation(nn.Module):
    """``x -> x[:, perm]`` (log-determinant 0); the permutation is a buffer saved with the weights."""

    def __init__(self, permutation: "torch.Tensor | np.ndarray | Sequence[int]") -> None:
        super().__init__()
        perm = torch.as_tensor(np.asarray(permutation), dtype=torch.long)
        if perm.ndim != 1 or not torch.equal(torch.sort(perm).values, torch.arange(len(perm))):
            raise ValueError("not a permutation of 0..n-1")
        self.register_buffer("permutation", perm)
        self.register_buffer("inverse_permutation", torch.argsort(perm))

    @property
    def features(self) -> int:
        return int(self.permutation.numel())

    def forward(self, inputs: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return inputs[:, self.permutation], inputs.new_zeros(inputs.shape[0])

    def inverse(self, inputs: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return inputs[:, self.inverse_permutation], inputs.new_zeros(inputs.shape[0])


def _offsets(layer_sizes: Sequence[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(layer_sizes)[:-1]]).astype(np.int64)


def within_layer_reversal(layer_sizes: Sequence[int]) -> np.ndarray:
    """The permutation reversing the voxel order inside each layer (CaloFlow's ``InversionLayer``)."""
    return np.concatenate([offset + np.arange(size)[::-1] for offset, size in zip(_offsets(layer_sizes), layer_sizes)])


def within_layer_shuffle(layer_sizes: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """A random permutation inside each layer (CaloFlow's ``RandomPermutationLayer``)."""
    return np.concatenate([offset + rng.permutation(size) for offset, size in zip(_offsets(layer_sizes), layer_sizes)])


def full_shuffle(features: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of all features (nflows ``RandomPermutation``, used by Flow I)."""
    return rng.permutation(features)


def caloflow_permutations(layer_sizes: Sequence[int], n_blocks: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The ``n_blocks - 1`` permutations placed between CaloFlow II's blocks: reversal after even
    blocks, shuffle after odd ones, none after the last (arXiv 2210.14245 code, run_gamma_2023.py)."""
    return [
        within_layer_reversal(layer_sizes) if i % 2 == 0 else within_layer_shuffle(layer_sizes, rng)
        for i in range(n_blocks - 1)
    ]
