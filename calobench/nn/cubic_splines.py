"""Monotonic cubic splines with linear tails (Durkan, Bekasov, Murray, Papamakarios, "Cubic-Spline Flows",
arXiv 1906.02145), the elementwise transform of CaloINN's cubic coupling blocks (arXiv 2312.09290).

The spline maps ``[-B, B]`` onto itself through ``K`` bins. Bin widths and heights are softmaxes of
network outputs with a minimum size (as in :mod:`calobench.nn.splines`); on each bin the map is the
cubic Hermite polynomial through the two knots with given knot derivatives. The inner knot
derivatives are not free: Steffen's rule (A&A 239, 443 (1990)) ``d_i = min(2 s_{i-1}, 2 s_i, p_i)``
with ``p_i`` the slope of the parabola through three knots keeps every bin monotonic; the two end
derivatives come from the network, ``d = m + sigmoid(c + c_0) (3 s - 2 m)`` with the end bin's slope
``s`` (strictly between 0 and 3 s, the monotonic range), and ``c_0`` chosen so that ``c = 0`` gives
derivative 1 on equal bins: zero network outputs make the spline the identity. Outside the interval
the map is the identity; unlike the rational-quadratic spline the end derivatives are not pinned to
1, so the density may jump at ``+-B`` (as in the paper and nflows' ``unconstrained_cubic_spline``).

The forward direction is explicit. The inverse solves the monotonic cubic on the bin with a
safeguarded Newton iteration (bisection whenever a Newton step leaves the bracket), run without
gradients, followed by one differentiable Newton step, which gives the exact first derivatives
(implicit function theorem) without back-propagating through the iteration.
"""

from __future__ import annotations

import math

import torch

from calobench.nn.splines import _knots

#: CaloINN's cubic-block minima (bin width, bin height, end derivative).
DEFAULT_MIN_BIN_WIDTH = 1e-3
DEFAULT_MIN_BIN_HEIGHT = 1e-3
DEFAULT_MIN_DERIVATIVE = 1e-3
#: Safeguarded Newton iterations of the inverse (float64 round trips to ~1e-12 on random splines).
DEFAULT_INVERSE_ITERATIONS = 12


def parameters_per_dimension(num_bins: int) -> int:
    """Unconstrained parameters per transformed value: ``2 K + 2``."""
    return 2 * num_bins + 2


def cubic_spline(
    inputs: torch.Tensor,
    unnormalized_widths: torch.Tensor,
    unnormalized_heights: torch.Tensor,
    unnormalized_derivatives: torch.Tensor,
    inverse: bool = False,
    tail_bound: float = 1.0,
    min_bin_width: float = DEFAULT_MIN_BIN_WIDTH,
    min_bin_height: float = DEFAULT_MIN_BIN_HEIGHT,
    min_derivative: float = DEFAULT_MIN_DERIVATIVE,
    iterations: int = DEFAULT_INVERSE_ITERATIONS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the spline elementwise (or its inverse); return ``(outputs, log|d outputs / d inputs|)``.

    Args:
        inputs: (...,) values.
        unnormalized_widths, unnormalized_heights: (..., K) bin parameters.
        unnormalized_derivatives: (..., 2) the end-knot derivatives' parameters (left, right).
        inverse: evaluate the inverse spline.
        tail_bound: B, the half-width of the spline interval; identity outside.
        iterations: safeguarded Newton iterations of the inverse.
    """
    return cubic_spline_bins_first(
        inputs,
        unnormalized_widths.movedim(-1, 0),
        unnormalized_heights.movedim(-1, 0),
        unnormalized_derivatives.movedim(-1, 0),
        inverse,
        tail_bound,
        min_bin_width,
        min_bin_height,
        min_derivative,
        iterations,
    )


def _hermite(
    t: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, c3: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``q(t) = c1 t + c2 t^2 + c3 t^3`` and ``q'(t)``."""
    return t * (c1 + t * (c2 + t * c3)), c1 + t * (2.0 * c2 + 3.0 * c3 * t)


def _solve(c1: torch.Tensor, c2: torch.Tensor, c3: torch.Tensor, r: torch.Tensor, iterations: int) -> torch.Tensor:
    """The root t in [0, 1] of the increasing ``q(t) = r`` (q(0) = 0, q(1) = 1): Newton from t = r,
    bisection when a step leaves the bracket."""
    lo, hi, t = torch.zeros_like(r), torch.ones_like(r), r.clone()
    for _ in range(iterations):
        q, dq = _hermite(t, c1, c2, c3)
        f = q - r
        lo = torch.where(f <= 0, t, lo)
        hi = torch.where(f >= 0, t, hi)
        step = t - f / dq
        good = (step >= lo) & (step <= hi) & torch.isfinite(step)  # closed: a converged step sits on the bracket
        t = torch.where(good, step, 0.5 * (lo + hi))
    return t


def cubic_spline_bins_first(
    inputs: torch.Tensor,
    unnormalized_widths: torch.Tensor,
    unnormalized_heights: torch.Tensor,
    unnormalized_derivatives: torch.Tensor,
    inverse: bool = False,
    tail_bound: float = 1.0,
    min_bin_width: float = DEFAULT_MIN_BIN_WIDTH,
    min_bin_height: float = DEFAULT_MIN_BIN_HEIGHT,
    min_derivative: float = DEFAULT_MIN_DERIVATIVE,
    iterations: int = DEFAULT_INVERSE_ITERATIONS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`cubic_spline` with the bin axis first: parameters (K, ...), (K, ...), (2, ...)."""
    num_bins = unnormalized_widths.shape[0]
    if min_bin_width * num_bins > 1.0 or min_bin_height * num_bins > 1.0:
        raise ValueError(f"minimal bin size too large for {num_bins} bins")
    if unnormalized_derivatives.shape[0] != 2:
        raise ValueError(f"expected 2 end-derivative parameters, got {unnormalized_derivatives.shape[0]}")
    if not 0.0 < min_derivative < 1.0:
        raise ValueError(f"min_derivative must be in (0, 1), got {min_derivative}")
    bound = float(tail_bound)
    inside = (inputs >= -bound) & (inputs <= bound)
    x = torch.where(inside, inputs, torch.zeros_like(inputs))  # outside: evaluated at 0, discarded

    cumwidths = _knots(unnormalized_widths, bound, min_bin_width)
    cumheights = _knots(unnormalized_heights, bound, min_bin_height)
    widths = cumwidths[1:] - cumwidths[:-1]
    heights = cumheights[1:] - cumheights[:-1]
    slopes = heights / widths
    # Steffen's monotonic inner derivatives (all slopes are positive)
    if num_bins > 1:
        s_left, s_right, w_left, w_right = slopes[:-1], slopes[1:], widths[:-1], widths[1:]
        parabola = (s_left * w_right + s_right * w_left) / (w_left + w_right)
        inner = torch.minimum(torch.minimum(2.0 * s_left, 2.0 * s_right), parabola)
    else:
        inner = slopes[:0]
    m = float(min_derivative)
    offset = math.log((1.0 - m) / (2.0 - m))  # sigmoid(offset) (3 - 2 m) + m = 1
    first = m + torch.sigmoid(unnormalized_derivatives[0] + offset) * (3.0 * slopes[0] - 2.0 * m).clamp_min(0.0)
    last = m + torch.sigmoid(unnormalized_derivatives[1] + offset) * (3.0 * slopes[-1] - 2.0 * m).clamp_min(0.0)
    derivatives = torch.cat([first[None], inner, last[None]], dim=0)

    knots = cumheights if inverse else cumwidths
    bin_idx = (x[None] >= knots[1:-1]).sum(dim=0, keepdim=True)

    def pick(t: torch.Tensor, index: torch.Tensor = bin_idx) -> torch.Tensor:
        return t.gather(0, index)[0]

    x_k, y_k, w_k, h_k = pick(cumwidths), pick(cumheights), pick(widths), pick(heights)
    s_k = h_k / w_k
    delta0 = pick(derivatives) / s_k
    delta1 = pick(derivatives, bin_idx + 1) / s_k
    # on the bin: y = y_k + h_k q(t), t = (x - x_k) / w_k, q the normalized Hermite cubic
    c1, c2, c3 = delta0, 3.0 - 2.0 * delta0 - delta1, delta0 + delta1 - 2.0
    tiny = torch.finfo(x.dtype).tiny
    if inverse:
        r = ((x - y_k) / h_k).clamp(0.0, 1.0)
        with torch.no_grad():
            t0 = _solve(c1.detach(), c2.detach(), c3.detach(), r.detach(), iterations)
        q0, dq0 = _hermite(t0, c1, c2, c3)
        t = (t0 - (q0 - r) / dq0.clamp_min(tiny)).clamp(0.0, 1.0)  # one differentiable Newton step
        outputs = x_k + w_k * t
    else:
        t = ((x - x_k) / w_k).clamp(0.0, 1.0)
        q, _ = _hermite(t, c1, c2, c3)
        outputs = y_k + h_k * q
    _, dq = _hermite(t, c1, c2, c3)
    logabsdet = torch.log((s_k * dq).clamp_min(tiny))
    if inverse:
        logabsdet = -logabsdet
    outputs = torch.where(inside, outputs, inputs)
    logabsdet = torch.where(inside, logabsdet, torch.zeros_like(logabsdet))
    return outputs, logabsdet
