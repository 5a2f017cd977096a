"""A conditional normalizing flow: a chain of transforms on a standard-normal base.

Transforms follow this package's convention (``forward``: x -> z with ``log|dz/dx|``; ``inverse``:
z -> x with ``log|dx/dz|``; both take a context). Unlike normflows' ``Composite`` the chain forwards
the context to every member, allocates on the input's device, and can return what CaloFlow II's
guided distillation needs (``GuidedCompositeTransform`` of arXiv 2210.14245): the state after every
transform ("steps", starting with the input) and the MADE output of every autoregressive block
("params"), in the order of traversal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from calobench_caloflow.autoregressive import SplineAutoregressive
from calobench_caloflow.permutations import FixedPermutation


@dataclass
class FlowPass:
    """Result of a pass through the chain: output, summed log|Jacobian|, steps and MADE outputs."""

    output: torch.Tensor
    logabsdet: torch.Tensor
    steps: list[torch.Tensor] = field(default_factory=list)
    params: list[torch.Tensor] = field(default_factory=list)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over features."""
    return -0.5 * (z * z).sum(dim=1) - 0.5 * z.shape[1] * math.log(2.0 * math.pi)


class ConditionalFlow(nn.Module):
    """``x = T_1^{-1}(... T_n^{-1}(z))`` with ``z ~ N(0, I)``; ``transforms`` listed in the density
    direction (data first).

    Args:
        transforms: :class:`SplineAutoregressive` blocks and :class:`FixedPermutation` layers.
        features: dimension of x and z.
    """

    def __init__(self, transforms: Sequence[nn.Module], features: int) -> None:
        super().__init__()
        self.transforms = nn.ModuleList(transforms)
        self.features = features

    @property
    def blocks(self) -> list[SplineAutoregressive]:
        return [t for t in self.transforms if isinstance(t, SplineAutoregressive)]

    @property
    def permutations(self) -> list[FixedPermutation]:
        return [t for t in self.transforms if isinstance(t, FixedPermutation)]

    def _chain(
        self, inputs: torch.Tensor, context: torch.Tensor | None, inverse: bool, return_steps: bool, return_params: bool
    ) -> FlowPass:
        members = list(self.transforms)[::-1] if inverse else list(self.transforms)
        result = FlowPass(inputs, inputs.new_zeros(inputs.shape[0]), [inputs] if return_steps else [])
        outputs = inputs
        for member in members:
            call = member.inverse if inverse else member.forward
            if return_params and isinstance(member, SplineAutoregressive):
                outputs, logabsdet, params = call(outputs, context, return_params=True)
                result.params.append(params)
            else:
                outputs, logabsdet = call(outputs, context)
            result.logabsdet = result.logabsdet + logabsdet
            if return_steps:
                result.steps.append(outputs)
        result.output = outputs
        return result

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        return_steps: bool = False,
        return_params: bool = False,
    ) -> FlowPass:
        """Density direction x -> z (``logabsdet`` = log|dz/dx|)."""
        return self._chain(x, context, False, return_steps, return_params)

    def inverse(
        self,
        z: torch.Tensor,
        context: torch.Tensor | None = None,
        return_steps: bool = False,
        return_params: bool = False,
    ) -> FlowPass:
        """Sampling direction z -> x (``logabsdet`` = log|dx/dz|)."""
        return self._chain(z, context, True, return_steps, return_params)

    def log_prob(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x | context) = log N(z) + log|dz/dx|."""
        result = self.forward(x, context)
        return standard_normal_log_prob(result.output) + result.logabsdet

    def base_noise(
        self, n: int, device: torch.device, generator: torch.Generator | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        return torch.randn(n, self.features, device=device, generator=generator, dtype=dtype)

    def sample(
        self, context: torch.Tensor, generator: torch.Generator | None = None, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """One sample per context row."""
        if noise is None:
            noise = self.base_noise(context.shape[0], context.device, generator, context.dtype)
        return self.inverse(noise, context).output

    def sample_and_log_prob(
        self, context: torch.Tensor, generator: torch.Generator | None = None, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples and their log-density, log q(x) = log N(z) - log|dx/dz|."""
        if noise is None:
            noise = self.base_noise(context.shape[0], context.device, generator, context.dtype)
        result = self.inverse(noise, context)
        return result.output, standard_normal_log_prob(noise) - result.logabsdet
