"""Conditional rational-quadratic spline coupling layers (Durkan et al., "Neural Spline Flows",
arXiv 1906.04032) as normflows flow layers, computed with calobench's spline.

:class:`CoupledRationalQuadraticSpline` is normflows' coupling layer of the same name -- the
nflows ``PiecewiseRationalQuadraticCouplingTransform`` with an alternating binary mask and a
``ResidualNet`` conditioner that takes the context -- with two differences:

* the spline is :func:`calobench.nn.splines.spline_bins_first` instead of normflows'
  ``unconstrained_rational_quadratic_spline``, whose softmax over the short bin axis and boolean-mask
  gathers make a 20-dimensional coupling layer ~10x slower on the CPU (same values to float
  rounding; ``tests/test_nn_coupling.py`` compares them);
* the identity half is passed through unchanged by default (nflows' default and the CaloMan /
  two-step-zoo ``simple_nsf``, arXiv 2211.15380), where normflows' wrapper always adds an
  unconditional elementwise spline on it (``apply_unconditional_transform=True``).

Direction convention of normflows: ``forward`` maps base space -> data space (sampling),
``inverse`` data -> base (density). Both accept ``context`` and return ``(outputs, log|det|)``
of shape (B,), so the layer goes into ``normflows.ConditionalNormalizingFlow`` next to
``LULinearPermute``. Used by the CaloMan plugin; any coupling flow with context can use it.
"""

from __future__ import annotations

import torch
from normflows.flows.base import Flow
from normflows.flows.neural_spline.coupling import PiecewiseRationalQuadraticCoupling
from normflows.nets.resnet import ResidualNet
from normflows.utils.masks import create_alternating_binary_mask
from torch import nn

from calobench.nn.splines import (
    DEFAULT_MIN_BIN_HEIGHT,
    DEFAULT_MIN_BIN_WIDTH,
    DEFAULT_MIN_DERIVATIVE,
    spline_bins_first,
)


class _SplineCoupling(PiecewiseRationalQuadraticCoupling):
    """nflows' piecewise rational-quadratic coupling (linear tails) with calobench's spline."""

    def _coupling_transform(
        self, inputs: torch.Tensor, transform_params: torch.Tensor, inverse: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch, features = inputs.shape
        k = self.num_bins
        # (B, D * (3K - 1)) -> (3K - 1, B, D): the bin axis leading, as spline_bins_first wants it
        params = transform_params.reshape(batch, features, 3 * k - 1).permute(2, 0, 1)
        scale = float(self.transform_net.hidden_features) ** -0.5  # normflows' softmax input scaling
        outputs, logabsdet = spline_bins_first(
            inputs,
            params[:k] * scale,
            params[k : 2 * k] * scale,
            params[2 * k :],
            inverse=inverse,
            tail_bound=float(self.tail_bound),
            min_bin_width=self.min_bin_width,
            min_bin_height=self.min_bin_height,
            min_derivative=self.min_derivative,
        )
        return outputs, logabsdet.sum(dim=1)


class CoupledRationalQuadraticSpline(Flow):
    """A conditional neural-spline coupling layer (see the module docstring).

    Args:
        num_input_channels: dimension D of the flow (>= 2).
        num_blocks: residual blocks of the conditioner (normflows ``ResidualNet``).
        num_hidden_channels: width of the conditioner.
        num_context_channels: size of the context, or ``None`` for an unconditional layer.
        num_bins: spline bins K.
        tail_bound: the spline acts on [-B, B], identity outside (linear tails).
        activation: activation class of the conditioner.
        dropout_probability: dropout in the conditioner.
        reverse_mask: transform the odd instead of the even features.
        min_bin_width, min_bin_height, min_derivative: spline minima (nflows defaults 1e-3).
    """

    def __init__(
        self,
        num_input_channels: int,
        num_blocks: int,
        num_hidden_channels: int,
        num_context_channels: int | None = None,
        num_bins: int = 8,
        tail_bound: float = 3.0,
        activation: type[nn.Module] = nn.ReLU,
        dropout_probability: float = 0.0,
        reverse_mask: bool = False,
        min_bin_width: float = DEFAULT_MIN_BIN_WIDTH,
        min_bin_height: float = DEFAULT_MIN_BIN_HEIGHT,
        min_derivative: float = DEFAULT_MIN_DERIVATIVE,
    ) -> None:
        super().__init__()
        if num_input_channels < 2:
            raise ValueError(f"a coupling layer needs at least 2 features, got {num_input_channels}")

        def conditioner(in_features: int, out_features: int) -> ResidualNet:
            return ResidualNet(
                in_features=in_features,
                out_features=out_features,
                context_features=num_context_channels,
                hidden_features=num_hidden_channels,
                num_blocks=num_blocks,
                activation=activation(),
                dropout_probability=dropout_probability,
                use_batch_norm=False,
            )

        self.prqct = _SplineCoupling(
            mask=create_alternating_binary_mask(num_input_channels, even=reverse_mask),
            transform_net_create_fn=conditioner,
            num_bins=num_bins,
            tails="linear",
            tail_bound=float(tail_bound),
            apply_unconditional_transform=False,
            min_bin_width=min_bin_width,
            min_bin_height=min_bin_height,
            min_derivative=min_derivative,
        )

    def forward(self, z: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Base -> data (sampling direction)."""
        z, log_det = self.prqct.inverse(z, context)
        return z, log_det.view(-1)

    def inverse(self, z: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Data -> base (density direction)."""
        z, log_det = self.prqct(z, context)
        return z, log_det.view(-1)
