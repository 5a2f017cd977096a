"""The shared cubic spline (calobench.nn.cubic_splines): monotonic, invertible, exact log-determinant."""

from __future__ import annotations

import pytest
import torch

from calobench.nn.cubic_splines import cubic_spline, parameters_per_dimension


@pytest.fixture(autouse=True)
def _double():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _inputs(n=4000, k=8, scale=2.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, generator=g) * 2 - 1) * 5
    x[:4] = torch.tensor([-4.0, 4.0, -3.9999, 5.5])
    w, h = (torch.randn(n, k, generator=g) * scale for _ in range(2))
    return x, w, h, torch.randn(n, 2, generator=g) * scale


@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_round_trip_and_log_det(scale):
    x, w, h, d = _inputs(scale=scale)
    y, lad = cubic_spline(x, w, h, d, tail_bound=4.0)
    back, back_lad = cubic_spline(y, w, h, d, inverse=True, tail_bound=4.0)
    torch.testing.assert_close(back, x, atol=1e-9, rtol=0)
    torch.testing.assert_close(back_lad, -lad, atol=1e-7, rtol=0)


def test_log_det_is_the_derivative_and_the_map_is_monotonic():
    x, w, h, d = _inputs(seed=1)
    x = x.clone().requires_grad_(True)
    y, lad = cubic_spline(x, w, h, d, tail_bound=4.0)
    (grad,) = torch.autograd.grad(y.sum(), x)
    inside = x.detach().abs() < 4.0
    torch.testing.assert_close(torch.log(grad[inside]), lad[inside], atol=1e-8, rtol=0)
    assert (grad > 0).all()
    # one spline on a grid: strictly increasing, onto [-B, B]
    grid = torch.linspace(-4, 4, 2001)
    params = [p[:1].expand(len(grid), -1) for p in (w, h, d)]
    values, _ = cubic_spline(grid, *params, tail_bound=4.0)
    assert (values.diff() > 0).all()
    torch.testing.assert_close(values[[0, -1]], torch.tensor([-4.0, 4.0]))


def test_inverse_gradients_match_the_forward_map():
    """The inverse's one differentiable Newton step gives the implicit-function derivatives."""
    x, w, h, d = _inputs(n=300, seed=2)
    y, _ = cubic_spline(x, w, h, d, tail_bound=4.0)
    y = y.detach().requires_grad_(True)
    w = w.clone().requires_grad_(True)
    back, back_lad = cubic_spline(y, w, h, d, inverse=True, tail_bound=4.0)
    (dy,) = torch.autograd.grad(back.sum(), y, retain_graph=True)
    inside = y.detach().abs() < 4.0
    torch.testing.assert_close(torch.log(dy[inside]), back_lad[inside], atol=1e-7, rtol=0)
    (dw,) = torch.autograd.grad(back.sum(), w)
    eps = 1e-6
    shifted, _ = cubic_spline(y.detach(), w.detach() + eps * (torch.arange(8) == 3), h, d, inverse=True, tail_bound=4.0)
    torch.testing.assert_close(dw[:, 3], (shifted - back.detach()) / eps, atol=1e-4, rtol=1e-3)


def test_identity_at_zero_parameters_and_outside():
    x = torch.linspace(-6, 6, 121)
    zeros = torch.zeros(len(x), 10)
    y, lad = cubic_spline(x, zeros, zeros, torch.zeros(len(x), 2), tail_bound=4.0)
    torch.testing.assert_close(y, x, atol=1e-12, rtol=0)
    torch.testing.assert_close(lad, torch.zeros_like(lad), atol=1e-12, rtol=0)
    assert parameters_per_dimension(10) == 22


def test_float32_and_extreme_parameters_stay_finite():
    g = torch.Generator().manual_seed(3)
    x = ((torch.rand(20000, generator=g) * 2 - 1) * 20).float().requires_grad_(True)
    params = [(torch.randn(20000, k, generator=g) * 30).float().requires_grad_(True) for k in (6, 6, 2)]
    for inverse in (False, True):
        y, lad = cubic_spline(x, *params, inverse=inverse, tail_bound=18.0)
        assert torch.isfinite(y).all() and torch.isfinite(lad).all()
        grads = torch.autograd.grad((y + lad).sum(), [x, *params])
        assert all(torch.isfinite(g).all() for g in grads)


def test_bad_arguments():
    x, w, h, d = _inputs(n=10)
    with pytest.raises(ValueError, match="end-derivative"):
        cubic_spline(x, w, h, d[:, :1])
    with pytest.raises(ValueError, match="too large"):
        cubic_spline(x, w, h, d, min_bin_width=0.2)
