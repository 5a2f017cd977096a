"""Conditional spline coupling flows (calobench.nn.coupling): invertibility, exact log-determinants,
identity at initialization, ActNorm with a context, normflows composition, seeded sampling, and the
resnet/alternating configuration equal to nflows' own coupling transform."""

from __future__ import annotations

import normflows as nf
import pytest
import torch
from normflows.flows.neural_spline.coupling import PiecewiseRationalQuadraticCoupling
from normflows.nets.resnet import ResidualNet
from normflows.utils.masks import create_alternating_binary_mask

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


def test_a_fresh_block_is_the_identity_unless_asked_for_caloinns_start():
    x = torch.rand(50, 4) * 4 - 2
    fresh = ConditionalSplineCoupling(4, 1, [8], num_bins=4, tail_bound=3.0)
    y, lad = fresh.inverse(x, torch.zeros(50, 1))
    torch.testing.assert_close(y, x)
    torch.testing.assert_close(lad, torch.zeros(50))
    published = ConditionalSplineCoupling(4, 1, [8], num_bins=4, tail_bound=3.0, identity_init=False)
    y, _ = published.inverse(x, torch.zeros(50, 1))
    assert not torch.allclose(y[:, 2:], x[:, 2:])  # inner knot derivatives 0.69, not 1
    knots = torch.tensor([[0.0, 0.0, -1.5, 1.5]])  # on the knots of the uniform bins the map is still exact
    torch.testing.assert_close(published.inverse(knots, torch.zeros(1, 1))[0], knots)


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
    with pytest.raises(ValueError, match="conditioner"):
        ConditionalSplineCoupling(4, 0, [8], conditioner="transformer")
    with pytest.raises(ValueError, match="mask"):
        ConditionalSplineCoupling(4, 0, [8], mask="checkerboard")
    with pytest.raises(ValueError, match="equal widths"):
        ConditionalSplineCoupling(4, 0, [8, 16], conditioner="resnet")


def _resnet_block(features: int, context: int, reverse_mask: bool, tail_bound: float = 2.0):
    torch.manual_seed(0)
    block = ConditionalSplineCoupling(
        features,
        context,
        [16, 16],
        num_bins=6,
        tail_bound=tail_bound,
        activation="relu",
        conditioner="resnet",
        mask="alternating",
        reverse_mask=reverse_mask,
    )
    _perturbed(block)  # a non-trivial spline: the last layers start near zero
    return block


@pytest.mark.parametrize("features", [2, 7])
@pytest.mark.parametrize("reverse_mask", [False, True])
def test_resnet_alternating_block_equals_nflows_coupling(features, reverse_mask):
    context = 3
    block = _resnet_block(features, context, reverse_mask)
    reference = PiecewiseRationalQuadraticCoupling(
        mask=create_alternating_binary_mask(features, even=reverse_mask),
        transform_net_create_fn=lambda i, o: ResidualNet(i, o, 16, context_features=context, num_blocks=2),
        num_bins=6,
        tails="linear",
        tail_bound=2.0,
    )
    reference.transform_net.load_state_dict(block.body.state_dict())
    generator = torch.Generator().manual_seed(1)
    x = 1.5 * torch.randn(257, features, generator=generator)  # some outside the tail bound
    c = torch.randn(257, context, generator=generator)
    # nflows' forward is the density direction (our inverse) and vice versa
    for ours, theirs in ((block.inverse, reference.forward), (block.forward, reference.inverse)):
        mine, expected = ours(x, c), theirs(x, c)
        torch.testing.assert_close(mine[0], expected[0], rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(mine[1], expected[1], rtol=1e-8, atol=1e-8)


def test_resnet_alternating_block_inverts_with_the_jacobian_log_det():
    block = _resnet_block(5, 2, reverse_mask=True)
    x, c = torch.randn(16, 5) * 1.5, torch.randn(16, 2)
    z, lad = block.inverse(x, c)
    back, back_lad = block.forward(z, c)
    torch.testing.assert_close(back, x, atol=1e-9, rtol=0)
    torch.testing.assert_close(back_lad, -lad, atol=1e-9, rtol=0)
    odd = [1, 3]  # reverse_mask: the odd features are passive
    torch.testing.assert_close(z[:, odd], x[:, odd], atol=0, rtol=0)
    for i in (0, 7):
        jacobian = torch.autograd.functional.jacobian(lambda v, i=i: block.inverse(v[None], c[i : i + 1])[0], x[i])
        torch.testing.assert_close(torch.slogdet(jacobian[0]).logabsdet, lad[i], atol=1e-8, rtol=0)


def test_resnet_blocks_with_lu_mixing_train_in_a_normflows_flow():
    torch.manual_seed(2)
    flows: list[nf.flows.Flow] = []
    for index in range(3):
        flows += [
            ConditionalSplineCoupling(
                5, 2, [8], conditioner="resnet", mask="alternating", reverse_mask=index % 2 == 1, activation="relu"
            ),
            nf.flows.LULinearPermute(5),
        ]
    model = nf.ConditionalNormalizingFlow(nf.distributions.DiagGaussian(5, trainable=False), flows)
    x, c = torch.randn(64, 5), torch.randn(64, 2)
    loss = model.forward_kld(x, context=c)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    torch.testing.assert_close(model.forward(model.inverse(x, context=c), context=c), x, rtol=1e-9, atol=1e-9)
