"""Conditional spline coupling flows: the coupling block, a context-aware ActNorm, and a builder.

A coupling block (Dinh et al., arXiv 1410.8516 / 1605.08803) keeps the first ``ceil(D/2)`` values
(the passive half) and transforms the others elementwise with a monotonic spline whose parameters
an MLP computes from the passive half and a context: the block is invertible in one pass in both
directions, and its Jacobian is triangular. The spline is the rational-quadratic one
(:mod:`calobench.nn.splines`, Durkan et al. arXiv 1906.04032) or the cubic one
(:mod:`calobench.nn.cubic_splines`, arXiv 1906.02145). CaloINN (Ernst et al., arXiv 2312.09290)
chains such blocks, each preceded by an ActNorm and followed by a fixed random permutation; so can
any other model (a latent flow of a VAE, CaloMan's density estimator).

Two conditioners and two masks cover the published flows with one block:

* ``conditioner="mlp"``: an MLP on ``[passive, context]`` whose last layer starts at zero (CaloINN's
  FrEIA subnet); the derivative parameters offset so that a fresh block is the identity, or, with
  ``identity_init=False``, not offset: CaloINN's block, whose zero subnet output gives inner knot
  derivatives ``softplus(0) + 1e-3 = 0.69`` (heidelberg-hepml/CaloINN@a57e1c2
  src/myBlocks/spline_blocks.py:480-496);
* ``conditioner="resnet"``: normflows' ``ResidualNet`` with the context as an extra input, and
  nflows' parametrization (bin-width and -height inputs divided by sqrt(width)), as in the
  two-step-zoo ``simple_nsf`` that CaloMan uses (arXiv 2211.15380); with ``mask="alternating"`` the
  block computes exactly what nflows' ``PiecewiseRationalQuadraticCouplingTransform`` does
  (``tests/test_nn_coupling.py`` compares them), with calobench's faster spline;
* ``mask="half"``: the first ``ceil(D/2)`` values are passive (CaloINN); ``mask="alternating"``: the
  even (``reverse_mask``: odd) features are passive (nflows' alternating binary mask).

The layers follow normflows' conventions so that they compose with normflows' pieces
(``ConditionalNormalizingFlow``, ``Permute``, ``DiagGaussian``): ``forward(z, context)`` maps
latent -> data (sampling) and returns ``log|dx/dz|``; ``inverse(x, context)`` maps data -> latent
(density) and returns ``log|dz/dx|``. In the density direction the spline is evaluated forward
(as in CaloINN's FrEIA blocks), in the sampling direction inverted.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Sequence

import normflows as nf
import torch
from normflows.nets.resnet import ResidualNet
from normflows.utils.masks import create_alternating_binary_mask
from torch import nn

from calobench.nn.cubic_splines import DEFAULT_INVERSE_ITERATIONS, cubic_spline_bins_first
from calobench.nn.mlp import activation as activation_module
from calobench.nn.mlp import mlp
from calobench.nn.splines import spline_bins_first

#: Spline families of :class:`ConditionalSplineCoupling`.
SPLINES = ("rational_quadratic", "cubic")
#: Conditioners of :class:`ConditionalSplineCoupling`.
CONDITIONERS = ("mlp", "resnet")
#: Masks of :class:`ConditionalSplineCoupling`.
MASKS = ("half", "alternating")


class ConditionalSplineCoupling(nf.flows.Flow):
    """``x = [x_p, x_a] -> [x_p, spline(x_a; theta(x_p, context))]``.

    Args:
        features: D, the number of values the block acts on.
        context_features: size of the context given to the conditioner (0: none).
        hidden: widths of the conditioner's hidden layers; for ``conditioner="resnet"`` one entry
            per residual block, all equal.
        num_bins: K, bins of the spline.
        tail_bound: B, the spline acts on [-B, B] and is the identity outside.
        spline: ``"rational_quadratic"`` (3K - 1 parameters per value) or ``"cubic"`` (2K + 2).
        activation: the conditioner's activation (:data:`calobench.nn.mlp.ACTIVATIONS`).
        dropout: dropout in the conditioner.
        conditioner: ``"mlp"`` or ``"resnet"`` (see the module docstring).
        mask: ``"half"`` or ``"alternating"`` (see the module docstring).
        reverse_mask: with ``mask="alternating"``, swap the passive and the transformed features.
        min_bin_width, min_bin_height, min_derivative: the spline's minima.
        identity_init: with the ``mlp`` conditioner and rational-quadratic splines, offset the
            derivative parameters so that a fresh block is the identity (see the module docstring).
    """

    def __init__(
        self,
        features: int,
        context_features: int,
        hidden: Sequence[int],
        *,
        num_bins: int = 10,
        tail_bound: float = 1.0,
        spline: str = "rational_quadratic",
        activation: str = "leaky_relu",
        dropout: float = 0.0,
        conditioner: str = "mlp",
        mask: str = "half",
        reverse_mask: bool = False,
        min_bin_width: float = 1e-3,
        min_bin_height: float = 1e-3,
        min_derivative: float = 1e-3,
        identity_init: bool = True,
    ) -> None:
        super().__init__()
        if features < 2:
            raise ValueError(f"a coupling block needs at least 2 features, got {features}")
        for name, value, choices in (
            ("spline", spline, SPLINES),
            ("conditioner", conditioner, CONDITIONERS),
            ("mask", mask, MASKS),
        ):
            if value not in choices:
                raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
        if num_bins < 1:
            raise ValueError(f"num_bins must be >= 1, got {num_bins}")
        self.features = int(features)
        self.context_features = int(context_features)
        self.num_bins = int(num_bins)
        self.tail_bound = float(tail_bound)
        self.spline = spline
        self.conditioner = conditioner
        self.mask = mask
        self.min_bin_width = float(min_bin_width)
        self.min_bin_height = float(min_bin_height)
        self.min_derivative = float(min_derivative)
        if mask == "half":
            passive_index = torch.arange(self.features - self.features // 2)
            active_index = torch.arange(len(passive_index), self.features)
        else:
            transformed = create_alternating_binary_mask(self.features, even=reverse_mask) > 0
            passive_index, active_index = torch.nonzero(~transformed).view(-1), torch.nonzero(transformed).view(-1)
        self.register_buffer("passive_index", passive_index, persistent=False)
        self.register_buffer("active_index", active_index, persistent=False)
        self.passive, self.active = len(passive_index), len(active_index)
        self.params_per_value = 3 * num_bins - 1 if spline == "rational_quadratic" else 2 * num_bins + 2
        out_features = self.params_per_value * self.active
        self._softmax_scale = 1.0
        self._derivative_shift = 0.0
        self.body: nn.Module
        self.head: nn.Linear | None
        if conditioner == "mlp":
            net = mlp(
                self.passive + self.context_features,
                out_features,
                list(hidden),
                act=activation,
                dropout=dropout,
                zero_last=True,
            )
            # the last layer is applied by hand (transposed, see _spline_parameters)
            self.body = net[:-1]
            self.head = typing.cast(nn.Linear, net[-1])
            # rational-quadratic: softplus(c) + min = 1 at c = 0 after the shift
            if spline == "rational_quadratic" and identity_init:
                self._derivative_shift = math.log(math.expm1(1.0 - self.min_derivative))
        else:
            if not hidden or len(set(hidden)) != 1:
                raise ValueError(f"a resnet conditioner needs equal widths, one per block, got {list(hidden)}")
            self.body = ResidualNet(
                in_features=self.passive,
                out_features=out_features,
                hidden_features=int(hidden[0]),
                context_features=self.context_features or None,
                num_blocks=len(hidden),
                activation=activation_module(activation),
                dropout_probability=dropout,
                use_batch_norm=False,
            )
            self.head = None
            self._softmax_scale = float(hidden[0]) ** -0.5  # nflows' scaling of the softmax inputs

    def extra_repr(self) -> str:
        return (
            f"features={self.features}, context={self.context_features}, spline={self.spline}, "
            f"bins={self.num_bins}, tail_bound={self.tail_bound}, conditioner={self.conditioner}, mask={self.mask}"
        )

    def _spline_parameters(self, passive: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        """Spline parameters (P, A, B), the parameter axis first and the batch last, the layout the
        splines work fastest in. The MLP's last layer is evaluated transposed so that they come out
        contiguous in that layout (no copy of the large parameter tensor, forward or backward)."""
        if self.context_features:
            if context is None:
                raise ValueError("this coupling block needs a context")
            context = context.to(passive.dtype).reshape(len(passive), -1)
        else:
            context = None
        if self.head is None:  # resnet: nflows' (B, A, P) layout
            out = self.body(passive, context)
            return out.view(len(passive), self.active, self.params_per_value).permute(2, 1, 0)
        inputs = passive if context is None else torch.cat([passive, context], dim=1)
        hidden = self.body(inputs)
        out = torch.addmm(self.head.bias.unsqueeze(1), self.head.weight, hidden.t())  # (P * A, B)
        return out.view(self.params_per_value, self.active, len(passive))

    def _split(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mask == "half":
            return values[:, : self.passive], values[:, self.passive :]
        return values.index_select(1, self.passive_index), values.index_select(1, self.active_index)

    def _join(self, passive: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        if self.mask == "half":
            return torch.cat([passive, active], dim=1)
        out = torch.empty(len(passive), self.features, dtype=passive.dtype, device=passive.device)
        out[:, self.passive_index] = passive
        out[:, self.active_index] = active
        return out

    def _transform(
        self, values: torch.Tensor, context: torch.Tensor | None, inverse: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        passive, active = self._split(values)
        theta = self._spline_parameters(passive, context)
        k = self.num_bins
        active = active.t()  # (A, B), like the parameters
        if self.spline == "rational_quadratic":
            widths, heights, derivatives = torch.split(theta, [k, k, k - 1])
            if self._softmax_scale != 1.0:
                widths, heights = widths * self._softmax_scale, heights * self._softmax_scale
            if self._derivative_shift:
                derivatives = derivatives + self._derivative_shift
            out, logabsdet = spline_bins_first(
                active,
                widths,
                heights,
                derivatives,
                inverse=inverse,
                tail_bound=self.tail_bound,
                min_bin_width=self.min_bin_width,
                min_bin_height=self.min_bin_height,
                min_derivative=self.min_derivative,
            )
        else:
            widths, heights, derivatives = torch.split(theta, [k, k, 2])
            if self._softmax_scale != 1.0:
                widths, heights = widths * self._softmax_scale, heights * self._softmax_scale
            out, logabsdet = cubic_spline_bins_first(
                active,
                widths,
                heights,
                derivatives,
                inverse=inverse,
                tail_bound=self.tail_bound,
                min_bin_width=self.min_bin_width,
                min_bin_height=self.min_bin_height,
                min_derivative=self.min_derivative,
                iterations=DEFAULT_INVERSE_ITERATIONS,
            )
        return self._join(passive, out.t()), logabsdet.sum(dim=0)

    def inverse(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Data -> latent (density direction): ``(z, log|dz/dx|)``."""
        return self._transform(x, context, inverse=False)

    def forward(self, z: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent -> data (sampling direction): ``(x, log|dx/dz|)``."""
        return self._transform(z, context, inverse=True)


class ActNorm(nf.flows.ActNorm):
    """normflows' ActNorm (Glow, arXiv 1807.03039: a per-feature affine map initialized from the first
    batch so that it comes out standardized) that accepts and ignores a context, so that it can sit
    in a ``ConditionalNormalizingFlow``. The initialization flag keeps its device."""

    def forward(self, z: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self._keep_flag_device(super().forward, z)

    def inverse(self, z: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self._keep_flag_device(super().inverse, z)

    def _flag(self) -> torch.Tensor:
        return typing.cast(torch.Tensor, self._buffers["data_dep_init_done"])

    def _keep_flag_device(self, method, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        device = self._flag().device
        out, log_det = method(z)
        flag = self._flag()
        if flag.device != device:  # normflows replaces the buffer by a CPU tensor
            self.register_buffer("data_dep_init_done", flag.to(device))
        return out, log_det.expand(len(z)) if log_det.dim() == 0 else log_det


def coupling_flow(
    features: int,
    context_features: int,
    blocks: int,
    hidden: Sequence[int],
    *,
    num_bins: int = 10,
    tail_bound: float = 1.0,
    spline: str = "rational_quadratic",
    activation: str = "leaky_relu",
    dropout: float = 0.0,
    actnorm: bool = True,
    permute: bool = True,
    min_bin_width: float = 1e-3,
    min_bin_height: float = 1e-3,
    min_derivative: float = 1e-3,
    identity_init: bool = True,
) -> nf.ConditionalNormalizingFlow:
    """A conditional flow of ``blocks`` x (ActNorm -> spline coupling -> fixed random permutation) in
    the density direction (CaloINN's block, arXiv 2312.09290), on a standard-normal base.

    The permutations are drawn from torch's global generator (seed it first); they are buffers, so a
    loaded state restores them.
    """
    if blocks < 1:
        raise ValueError(f"blocks must be >= 1, got {blocks}")
    density_order: list[nf.flows.Flow] = []
    for _ in range(blocks):
        if actnorm:
            density_order.append(ActNorm(features))
        density_order.append(
            ConditionalSplineCoupling(
                features,
                context_features,
                hidden,
                num_bins=num_bins,
                tail_bound=tail_bound,
                spline=spline,
                activation=activation,
                dropout=dropout,
                min_bin_width=min_bin_width,
                min_bin_height=min_bin_height,
                min_derivative=min_derivative,
                identity_init=identity_init,
            )
        )
        if permute:
            density_order.append(nf.flows.Permute(features, mode="shuffle"))
    # normflows lists the flows in the sampling direction (latent first)
    return nf.ConditionalNormalizingFlow(nf.distributions.DiagGaussian(features, trainable=False), density_order[::-1])


def sample_flow(
    flow: nf.ConditionalNormalizingFlow, context: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One sample per context row, the latent drawn from ``generator`` (normflows' ``sample`` uses
    torch's global generator): ``x = flow(z, context)`` with ``z ~ N(0, I)``."""
    base = flow.q0
    shape = (len(context), *base.shape)
    z = torch.randn(shape, generator=generator, device=base.loc.device, dtype=base.loc.dtype)
    z = base.loc + torch.exp(base.log_scale) * z
    return flow.forward(z, context=context)
