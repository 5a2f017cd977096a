"""Monotonic rational-quadratic splines with linear tails (Durkan, Bekasov, Murray, Papamakarios,
"Neural Spline Flows", arXiv 1906.04032).

The spline maps ``[-B, B]`` onto itself through ``K`` bins whose widths, heights and inner knot
derivatives come from unconstrained network outputs; outside the interval it is the identity
("linear tails"), and the boundary derivatives are 1 so that it is continuously differentiable.
The parametrization (softmax widths and heights with a minimum size, softplus derivatives with a
minimum value) is the one of nflows / normflows ``unconstrained_rational_quadratic_spline``; this
version avoids boolean-mask gathers (it evaluates every element and selects with ``torch.where``),
which keeps shapes static and is faster for the one-dimension-at-a-time inverse of a MAF.

It is calobench's one spline: every flow plugin (CaloFlow's MADE blocks, coupling blocks of other
models) uses it, and ``tests/test_nn_splines.py`` checks it against normflows' function to 1e-9.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

#: nflows / normflows defaults of the minimum bin width, bin height and knot derivative
#: (CaloFlow uses 1e-6, arXiv 2106.05285; CaloINN the defaults).
DEFAULT_MIN_BIN_WIDTH = 1e-3
DEFAULT_MIN_BIN_HEIGHT = 1e-3
DEFAULT_MIN_DERIVATIVE = 1e-3


def _knots(unnormalized: torch.Tensor, bound: float, minimum: float) -> torch.Tensor:
    """Knot positions (K + 1, ...) from -bound to bound, bins along axis 0, each at least ``minimum``
    of the range. Reductions over the few bins are written as running elementwise operations, which
    torch runs much faster than a reduction along a short leading axis."""
    num_bins = unnormalized.shape[0]
    slabs = unnormalized.detach().unbind(0)
    top = slabs[0]
    for slab in slabs[1:]:
        top = torch.maximum(top, slab)
    # softmax (shift-invariant); unbind once: indexing the slabs one by one would make autograd
    # allocate and fill a gradient of the full (K, ...) shape per slab
    weights = torch.exp(unnormalized - top).unbind(0)
    total = weights[0]
    for k in range(1, num_bins):
        total = total + weights[k]
    scale = (1.0 - minimum * num_bins) * (2.0 * bound) / total
    knots = [torch.full_like(total, -bound)]
    for k in range(num_bins - 1):
        knots.append(knots[-1] + (minimum * 2.0 * bound + weights[k] * scale))
    knots.append(torch.full_like(total, bound))  # end knots pinned exactly
    return torch.stack(knots, dim=0)


def rational_quadratic_spline(
    inputs: torch.Tensor,
    unnormalized_widths: torch.Tensor,
    unnormalized_heights: torch.Tensor,
    unnormalized_derivatives: torch.Tensor,
    inverse: bool = False,
    tail_bound: float = 14.0,
    min_bin_width: float = DEFAULT_MIN_BIN_WIDTH,
    min_bin_height: float = DEFAULT_MIN_BIN_HEIGHT,
    min_derivative: float = DEFAULT_MIN_DERIVATIVE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the spline elementwise (or its inverse) and return ``(outputs, log|d outputs / d inputs|)``.

    Args:
        inputs: (...,) values.
        unnormalized_widths, unnormalized_heights: (..., K) bin parameters.
        unnormalized_derivatives: (..., K - 1) inner knot derivatives (linear tails fix the outer two to 1).
        inverse: evaluate the inverse spline (the quadratic root of arXiv 1906.04032, eq. 6-8).
        tail_bound: B, the half-width of the spline interval; identity outside.
    """
    return spline_bins_first(
        inputs,
        unnormalized_widths.movedim(-1, 0),
        unnormalized_heights.movedim(-1, 0),
        unnormalized_derivatives.movedim(-1, 0),
        inverse,
        tail_bound,
        min_bin_width,
        min_bin_height,
        min_derivative,
    )


def spline_bins_first(
    inputs: torch.Tensor,
    unnormalized_widths: torch.Tensor,
    unnormalized_heights: torch.Tensor,
    unnormalized_derivatives: torch.Tensor,
    inverse: bool = False,
    tail_bound: float = 14.0,
    min_bin_width: float = DEFAULT_MIN_BIN_WIDTH,
    min_bin_height: float = DEFAULT_MIN_BIN_HEIGHT,
    min_derivative: float = DEFAULT_MIN_DERIVATIVE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`rational_quadratic_spline` with the bin axis first: parameters (K, ...), (K, ...), (K - 1, ...).

    torch's CPU kernels are slow along a short last axis (a softmax over 4 bins ~50x slower than over a
    leading axis), so the work is done with the bins leading.
    """
    num_bins = unnormalized_widths.shape[0]
    if min_bin_width * num_bins > 1.0 or min_bin_height * num_bins > 1.0:
        raise ValueError(f"minimal bin size too large for {num_bins} bins")
    if unnormalized_derivatives.shape[0] != num_bins - 1:
        raise ValueError(f"expected {num_bins - 1} inner derivatives, got {unnormalized_derivatives.shape[0]}")
    bound = float(tail_bound)
    inside = (inputs >= -bound) & (inputs <= bound)
    # outside entries are evaluated at 0 and discarded: at the end knots the quadratic root's gradient
    # can be infinite, and torch.where turns an infinite gradient of the discarded branch into NaN
    x = torch.where(inside, inputs, torch.zeros_like(inputs))

    cumwidths = _knots(unnormalized_widths, bound, min_bin_width)
    cumheights = _knots(unnormalized_heights, bound, min_bin_height)
    knots = cumheights if inverse else cumwidths
    bin_idx = (x[None] >= knots[1:-1]).sum(dim=0, keepdim=True)

    def pick(t: torch.Tensor, index: torch.Tensor = bin_idx) -> torch.Tensor:
        return t.gather(0, index)[0]

    x_k, y_k = pick(cumwidths), pick(cumheights)
    w_k = pick(cumwidths[1:]) - x_k
    h_k = pick(cumheights[1:]) - y_k
    # knot derivatives: the inner ones from the network, the two outer ones 1 (softplus(c) + minimum = 1)
    boundary = math.log(math.expm1(1.0 - min_derivative))
    raw = unnormalized_derivatives.contiguous()  # gather is slow on a strided view
    raw_k = pick(raw, (bin_idx - 1).clamp(min=0))
    raw_k1 = pick(raw, bin_idx.clamp(max=num_bins - 2))
    d_k = min_derivative + F.softplus(torch.where(bin_idx[0] == 0, boundary, raw_k))
    d_k1 = min_derivative + F.softplus(torch.where(bin_idx[0] == num_bins - 1, boundary, raw_k1))
    s_k = h_k / w_k
    slope_sum = d_k + d_k1 - 2.0 * s_k

    if inverse:
        dy = x - y_k
        a = dy * slope_sum + h_k * (s_k - d_k)
        b = h_k * d_k - dy * slope_sum
        c = -s_k * dy
        discriminant = (b * b - 4.0 * a * c).clamp_min(torch.finfo(b.dtype).tiny)  # > 0 for a monotonic spline
        theta = ((2.0 * c) / (-b - torch.sqrt(discriminant))).clamp(0.0, 1.0)  # rounding can leave [0, 1]
        outputs = theta * w_k + x_k
    else:
        theta = (x - x_k) / w_k
        numerator = h_k * (s_k * theta * theta + d_k * theta * (1.0 - theta))
        outputs = y_k + numerator / (s_k + slope_sum * theta * (1.0 - theta))

    t1t = theta * (1.0 - theta)
    denominator = s_k + slope_sum * t1t
    derivative_numerator = s_k * s_k * (d_k1 * theta * theta + 2.0 * s_k * t1t + d_k * (1.0 - theta) ** 2)
    tiny = torch.finfo(derivative_numerator.dtype).tiny
    logabsdet = torch.log(derivative_numerator.clamp_min(tiny)) - 2.0 * torch.log(denominator.clamp_min(tiny))
    if inverse:
        logabsdet = -logabsdet
    outputs = torch.where(inside, outputs, inputs)
    logabsdet = torch.where(inside, logabsdet, torch.zeros_like(logabsdet))
    return outputs, logabsdet
