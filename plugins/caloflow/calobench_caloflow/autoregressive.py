"""Autoregressive rational-quadratic-spline blocks in the MAF and the IAF direction.

Both directions share one parametrization: a spline ``tau`` (splines.py) applied per feature, its
parameters given by a conditional MADE (made.py). Conventions used everywhere in this package:
``forward`` is the density direction x -> z and returns ``log|dz/dx|``; ``inverse`` is the sampling
direction z -> x and returns ``log|dx/dz|``.

* MAF (Papamakarios, Pavlakou, Murray, arXiv 1705.07057; CaloFlow I teacher):
  ``z_i = tau(x_i; MADE(x)_i)``. Density: one MADE pass. Sampling: D sequential MADE passes.
* IAF (Kingma et al., arXiv 1606.04934; CaloFlow II student, arXiv 2110.11377):
  ``x_i = tau^{-1}(z_i; MADE(z)_i)``. Sampling: one MADE pass. Density: D sequential passes.
  This is CaloFlow's ``InverseTransform(IAFRQS)``, whose MADE outputs play the same role as the
  teacher's, which the guided distillation compares.

Each call can also return the MADE output (B, D, 3K - 1) that parametrized the splines, evaluated
on the side the network conditions on (x for a MAF, z for an IAF), as CaloFlow's guided
distillation uses it.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from calobench.nn.splines import spline_bins_first
from calobench_caloflow.made import ConditionalMADE, IncrementalMADE

Direction = Literal["maf", "iaf"]


#: CaloFlow's minimum bin width, bin height and knot derivative (arXiv 2106.05285; nflows defaults are 1e-3).
CALOFLOW_MIN = 1e-6


class SplineAutoregressive(nn.Module):
    """One MADE-RQS block.

    Args:
        features: D.
        context_features: size of the conditioning vector.
        hidden_features: width of the MADE's hidden layers.
        direction: ``"maf"`` (fast density) or ``"iaf"`` (fast sampling).
        n_hidden_layers: hidden layers in the MADE (CaloFlow II: 2; Flow I: 3).
        num_bins, tail_bound, min_bin_width, min_bin_height, min_derivative: spline settings
            (CaloFlow: 8 bins, tail bound 14, minima 1e-6).
        dropout: MADE dropout probability.
    """

    def __init__(
        self,
        features: int,
        context_features: int,
        hidden_features: int,
        direction: Direction = "maf",
        n_hidden_layers: int = 2,
        num_bins: int = 8,
        tail_bound: float = 14.0,
        min_bin_width: float = CALOFLOW_MIN,
        min_bin_height: float = CALOFLOW_MIN,
        min_derivative: float = CALOFLOW_MIN,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if direction not in ("maf", "iaf"):
            raise ValueError(f"direction must be 'maf' or 'iaf', got {direction!r}")
        self.features = features
        self.direction = direction
        self.num_bins = num_bins
        self.tail_bound = float(tail_bound)
        self.minima = (min_bin_width, min_bin_height, min_derivative)
        self.made = ConditionalMADE(
            features,
            hidden_features,
            context_features,
            3 * num_bins - 1,
            n_hidden_layers=n_hidden_layers,
            dropout=dropout,
        )
        #: MAF sampling outside training: :meth:`_sequential_incremental` instead of D full MADE passes
        self.incremental_sampling = False

    # ------------------------------------------------------------------ the elementwise map
    def _spline(self, inputs: torch.Tensor, params: torch.Tensor, inverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        # The MADE outputs enter the spline unscaled: nflows 0.14 divides the widths and heights by
        # sqrt(hidden) only if its MADE has a ``hidden_features`` attribute, which it never has
        # (nflows transforms/autoregressive.py:398-400, made.py:205-283), so CaloFlow's splines take them as they are.
        k = self.num_bins
        params = params.movedim(-1, 0)  # (3K - 1, ...): contiguous slabs for the MADE's parameter-major output
        return spline_bins_first(
            inputs,
            params[:k],
            params[k : 2 * k],
            params[2 * k :],
            inverse=inverse,
            tail_bound=self.tail_bound,
            min_bin_width=self.minima[0],
            min_bin_height=self.minima[1],
            min_derivative=self.minima[2],
        )

    def _one_pass(self, inputs: torch.Tensor, context: torch.Tensor | None, inverse: bool):
        params = self.made(inputs, context)
        outputs, logabsdet = self._spline(inputs, params, inverse)
        return outputs, logabsdet.sum(dim=1), params

    def _sequential(self, inputs: torch.Tensor, context: torch.Tensor | None, inverse: bool):
        """Feature by feature, ``outputs_i = tau^{(-1)}(inputs_i; MADE(outputs)_i)``: D MADE passes.

        Pass ``i`` sees outputs ``< i`` already final, so after D passes every feature is exact; the
        log-determinant is the sum of the per-feature terms (the Jacobian is triangular).
        """
        outputs = torch.zeros_like(inputs)
        logabsdet = inputs.new_zeros(inputs.shape[0])
        columns = []
        positions = torch.arange(self.features, device=inputs.device)
        for i in range(self.features):
            params = self.made(outputs, context)[:, i]  # a full MADE pass, as published
            value, lad = self._spline(inputs[:, i], params, inverse)
            outputs = outputs.index_copy(1, positions[i : i + 1], value[:, None])
            logabsdet = logabsdet + lad
            columns.append(params)
        return outputs, logabsdet, torch.stack(columns, dim=1)

    def _sequential_incremental(self, inputs: torch.Tensor, context: torch.Tensor | None, inverse: bool):
        """:meth:`_sequential` with the MADE evaluated incrementally (:class:`IncrementalMADE`): the
        same map as the D full passes (to float rounding) for about 1/50 of the work at CaloFlow's
        quick sizes; no dropout (sampling runs in eval mode), MADE outputs not collected (``None``)."""
        made = IncrementalMADE(self.made, context, inputs.shape[0])
        values = []
        logabsdet = inputs.new_zeros(inputs.shape[0])
        for i in range(self.features):
            value, lad = self._spline(inputs[:, i], made.output(i), inverse)
            values.append(value)
            logabsdet = logabsdet + lad
            made.fill(i, value)
        return torch.stack(values, dim=1), logabsdet, None

    # ------------------------------------------------------------------ the two directions
    def forward(self, inputs: torch.Tensor, context: torch.Tensor | None = None, return_params: bool = False):
        """Density direction x -> z: ``(z, log|dz/dx|)`` and, if asked, the MADE output."""
        if self.direction == "maf":
            z, logabsdet, params = self._one_pass(inputs, context, inverse=False)
        else:
            # x = tau^{-1}(z; MADE(z))  <=>  z_i = tau(x_i; MADE(z)_i), solved sequentially
            z, logabsdet, params = self._sequential(inputs, context, inverse=False)
        return (z, logabsdet, params) if return_params else (z, logabsdet)

    def inverse(self, inputs: torch.Tensor, context: torch.Tensor | None = None, return_params: bool = False):
        """Sampling direction z -> x: ``(x, log|dx/dz|)`` and, if asked, the MADE output."""
        if self.direction == "iaf":
            x, logabsdet, params = self._one_pass(inputs, context, inverse=True)
        elif self.incremental_sampling and not return_params and not self.training:
            x, logabsdet, params = self._sequential_incremental(inputs, context, inverse=True)
        else:
            x, logabsdet, params = self._sequential(inputs, context, inverse=True)
        return (x, logabsdet, params) if return_params else (x, logabsdet)
