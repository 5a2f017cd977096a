"""The shared rational-quadratic spline (calobench.nn.splines) against normflows, its inverse and gradients."""

from __future__ import annotations

import pytest
import torch
from normflows.utils.splines import unconstrained_rational_quadratic_spline

from calobench.nn.splines import rational_quadratic_spline


@pytest.fixture(autouse=True)
def _double():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _spline_inputs(n=500, k=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g) * 4
    x[:5] = torch.tensor([-5.0, 5.0, -4.999, 4.999, 7.0])
    return x, torch.randn(n, k, generator=g) * 2, torch.randn(n, k, generator=g) * 2, torch.randn(n, k - 1, generator=g)


@pytest.mark.parametrize("minimum", [None, 1e-6])  # normflows' defaults (1e-3) and CaloFlow's
@pytest.mark.parametrize("inverse", [False, True])
def test_spline_matches_normflows(inverse, minimum):
    x, w, h, d = _spline_inputs()
    minima = {} if minimum is None else {"min_bin_width": minimum, "min_bin_height": minimum, "min_derivative": minimum}
    ours, lad = rational_quadratic_spline(x, w, h, d, inverse=inverse, tail_bound=5.0, **minima)
    ref, ref_lad = unconstrained_rational_quadratic_spline(
        x, w, h, d, inverse=inverse, tails="linear", tail_bound=5.0, **minima
    )
    torch.testing.assert_close(ours, ref, atol=1e-10, rtol=1e-9)
    torch.testing.assert_close(lad, ref_lad, atol=1e-9, rtol=1e-8)


def test_spline_inverse_and_derivative():
    x, w, h, d = _spline_inputs(seed=1)
    x = x.clone().requires_grad_(True)
    y, lad = rational_quadratic_spline(x, w, h, d, tail_bound=5.0)
    back, back_lad = rational_quadratic_spline(y, w, h, d, inverse=True, tail_bound=5.0)
    torch.testing.assert_close(back, x, atol=1e-7, rtol=0)
    torch.testing.assert_close(back_lad, -lad, atol=1e-8, rtol=0)
    (grad,) = torch.autograd.grad(y.sum(), x)  # elementwise map: the diagonal of the Jacobian
    torch.testing.assert_close(torch.log(grad), lad, atol=1e-8, rtol=0)
    outside = x.detach().abs() > 5.0
    assert outside.any() and torch.equal(y[outside], x[outside])


@pytest.mark.parametrize("inverse", [False, True])
def test_spline_gradients_stay_finite(inverse):
    """Extreme parameters and inputs beyond the tail bound must not give NaN gradients (torch.where
    turns an infinite gradient of the discarded branch into NaN)."""
    g = torch.Generator().manual_seed(0)
    x = ((torch.rand(20000, generator=g) * 2 - 1) * 15).float().requires_grad_(True)
    params = [(torch.randn(20000, k, generator=g) * 30).float().requires_grad_(True) for k in (4, 4, 3)]
    y, lad = rational_quadratic_spline(x, *params, inverse=inverse, tail_bound=14.0)
    (y.sum() + lad.sum()).backward()
    for tensor in (y, lad, x.grad, *[p.grad for p in params]):
        assert torch.isfinite(tensor).all()
