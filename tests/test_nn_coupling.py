"""Conditional spline coupling flows (calobench.nn.coupling): invertibility, exact log-determinants,
identity at initialization, ActNorm with a context, normflows composition, seeded sampling."""

from __future__ import annotations

import normflows as nf
import pytest
import torch

from calobench.nn.coupling import ActNorm, ConditionalSplineCoupling, coupling_flow, sample_flow


@pytest.fixture(autouse=True)
def _double():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _perturbed(module: torch.nn.Module, scale: float = 0.3, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("spline", ["rational_quadratic", "cubic"])
def test_block_starts_as_identity(spline):
    block = ConditionalSplineCoupling(5, 2, [8], num_bins=6, tail_bound=3.0, spline=spline)
    x, c = torch.randn(50, 5) * 2, torch.randn(50, 2)
    z, lad = block.inverse(x, c)
    torch.testing.assert_close(z, x, atol=1e-12, rtol=0)
    torch.testing.assert_close(lad, torch.zeros(50), atol=1e-12, rtol=0)


@pytest.mark.parametrize("spline", ["rational_quadratic", "cubic"])
@pytest.mark.parametrize("features", [2, 7])
def test_flow_inverts_and_log_det_matches_the_jacobian(spline, features):
    torch.manual_seed(0)
    flow = coupling_flow(features, 2, 3, [16, 16], num_bins=5, tail_bound=4.0, spline=spline)
    x, c = torch.randn(64, features), torch.randn(64, 2)
    flow.log_prob(x, c)  # data-dependent ActNorm initialization
    _perturbed(flow)
    z, lad = flow.inverse_and_log_det(x, c)
    back, back_lad = flow.forward_and_log_det(z, c)
    torch.testing.assert_close(back, x, atol=1e-9, rtol=0)
    torch.testing.assert_close(back_lad, -lad, atol=1e-9, rtol=0)
    for i in (0, 5):
        jacobian = torch.autograd.functional.jacobian(lambda v, i=i: flow.inverse(v[None], c[i : i + 1])[0], x[i])
        torch.testing.assert_close(torch.slogdet(jacobian).logabsdet, lad[i], atol=1e-8, rtol=0)
    # normflows' log_prob = base log-density + log-det
    expected = flow.q0.log_prob(z) + lad
    torch.testing.assert_close(flow.log_prob(x, c), expected, atol=1e-9, rtol=0)


def test_the_context_changes_the_transform_and_is_required():
    block = ConditionalSplineCoupling(4, 1, [8], num_bins=4, tail_bound=3.0)
    _perturbed(block, 1.0)
    x = torch.randn(10, 4)
    a, _ = block.inverse(x, torch.zeros(10, 1))
    b, _ = block.inverse(x, torch.ones(10, 1))
    assert not torch.allclose(a, b)
    torch.testing.assert_close(a[:, :2], x[:, :2])  # the passive half passes unchanged
    with pytest.raises(ValueError, match="context"):
        block.inverse(x)


def test_actnorm_takes_a_context_and_standardizes_the_first_batch():
    norm = ActNorm(3)
    x = torch.randn(500, 3) * torch.tensor([1.0, 5.0, 0.1]) + 3.0
    z, lad = norm.inverse(x, context=torch.zeros(500, 1))
    torch.testing.assert_close(z.mean(0), torch.zeros(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(z.std(0), torch.ones(3), atol=1e-4, rtol=0)
    assert lad.shape == (500,)
    back, _ = norm.forward(z, context=None)
    torch.testing.assert_close(back, x)
    assert float(norm.data_dep_init_done) == 1.0


def test_sample_flow_is_seeded_and_matches_the_density_direction():
    torch.manual_seed(1)
    flow = coupling_flow(6, 1, 2, [8], num_bins=4, tail_bound=3.0)
    c = torch.randn(20, 1)
    flow.log_prob(torch.randn(20, 6), c)
    _perturbed(flow, 0.2)
    first = sample_flow(flow, c, torch.Generator().manual_seed(3))
    again = sample_flow(flow, c, torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, again, atol=0, rtol=0)
    z = flow.inverse(first, c)
    torch.testing.assert_close(z, torch.randn(20, 6, generator=torch.Generator().manual_seed(3)), atol=1e-9, rtol=0)


def test_structure_and_state_round_trip():
    torch.manual_seed(2)
    flow = coupling_flow(5, 1, 3, [8], actnorm=True, permute=True)
    kinds = [type(f) for f in flow.flows][::-1]  # density order
    assert kinds == [ActNorm, ConditionalSplineCoupling, nf.flows.Permute] * 3
    torch.manual_seed(3)
    other = coupling_flow(5, 1, 3, [8])
    other.load_state_dict(flow.state_dict())  # the permutations are buffers
    x, c = torch.randn(8, 5), torch.randn(8, 1)
    flow.log_prob(x, c)
    other.load_state_dict(flow.state_dict())
    torch.testing.assert_close(other.log_prob(x, c), flow.log_prob(x, c))


def test_bad_arguments():
    with pytest.raises(ValueError, match="spline"):
        ConditionalSplineCoupling(4, 0, [8], spline="linear")
    with pytest.raises(ValueError, match="at least 2"):
        ConditionalSplineCoupling(1, 0, [8])
    with pytest.raises(ValueError, match="blocks"):
        coupling_flow(4, 0, 0, [8])
