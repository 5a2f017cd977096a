"""Unit tests of the flow pieces: MADE, MAF/IAF blocks, permutations, composite flow."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from calobench_caloflow.autoregressive import CALOFLOW_MIN, SplineAutoregressive
from calobench_caloflow.flow import ConditionalFlow, standard_normal_log_prob
from calobench_caloflow.made import ConditionalMADE, hidden_degrees
from calobench_caloflow.permutations import (
    FixedPermutation,
    caloflow_permutations,
    within_layer_reversal,
    within_layer_shuffle,
)
from torch.nn import functional as F

from calobench.nn.splines import spline_bins_first


@pytest.fixture(autouse=True)
def _double():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def test_hidden_degrees_are_nflows_cycle_at_published_widths():
    """nflows 0.14 (made.py:63-66): ``arange(H) % (D - 1) + 1`` for every width >= D - 1."""
    assert hidden_degrees(10, 4).tolist() == [1, 2, 3, 1, 2, 3, 1, 2, 3, 1]
    assert torch.equal(hidden_degrees(378, 368), torch.arange(378) % 367 + 1)
    assert torch.equal(hidden_degrees(64, 5), torch.arange(64) % 4 + 1)  # Flow I
    assert hidden_degrees(4, 1).tolist() == [0, 0, 0, 0]  # one feature: the context only, as in nflows


def test_narrow_hidden_layers_spread_their_degrees():
    """Below D - 1 units (quick only) the degrees span 1..D-1, dense at low degrees, instead of nflows'
    cycle, which would give 1..H and cut the inputs beyond the H-th off from every output."""
    narrow = hidden_degrees(8, 100)
    assert narrow.min() == 1 and narrow.max() == 99 and torch.all(narrow[1:] >= narrow[:-1])
    even = torch.linspace(1, 99, 8)
    assert (narrow < 10).sum() > (even < 10).sum(), "a narrow layer keeps more units for the first outputs"


def test_made_adds_the_context_through_its_own_relu():
    """nflows' non-residual MADE (made.py:274-283): h1 = relu(W x + b + relu(C c + d)), then masked
    hidden layers with ReLU, then the masked output layer (parameter-major rows here)."""
    torch.manual_seed(1)
    made = ConditionalMADE(features=4, hidden_features=9, context_features=2, output_multiplier=3, n_hidden_layers=2)
    for p in made.parameters():
        torch.nn.init.normal_(p)
    x, ctx = torch.randn(5, 4), torch.randn(5, 2)
    first = F.linear(x, made.first.weight * made.first.mask, made.first.bias)
    h = F.relu(first + F.relu(made.context(ctx)))
    h = F.relu(F.linear(h, made.hidden[0].weight * made.hidden[0].mask, made.hidden[0].bias))
    expected = F.linear(h, made.last.weight * made.last.mask, made.last.bias).view(5, 3, 4).transpose(1, 2)
    torch.testing.assert_close(made(x, ctx), expected)
    without = F.relu(first + made.context(ctx))  # the context added linearly: not the published network
    assert not torch.allclose(without, F.relu(first + F.relu(made.context(ctx))))


def test_spline_takes_the_made_outputs_unscaled():
    """nflows 0.14 never divides the widths and heights by sqrt(hidden) (its MADE has no
    ``hidden_features`` attribute, autoregressive.py:398-400): the MADE output is the spline's input."""
    block = _block("maf", hidden=16)
    x, ctx = torch.randn(6, 5), torch.randn(6, 2)
    params = block.made(x, ctx).movedim(-1, 0)
    z, lad = spline_bins_first(x, params[:4], params[4:8], params[8:], tail_bound=3.0, **_MINIMA)
    torch.testing.assert_close(block(x, ctx)[0], z)
    torch.testing.assert_close(block(x, ctx)[1], lad.sum(dim=1))


@pytest.mark.parametrize("hidden", [3, 13])
def test_made_is_autoregressive_and_conditional(hidden):
    torch.manual_seed(0)
    made = ConditionalMADE(
        features=6, hidden_features=hidden, context_features=2, output_multiplier=3, n_hidden_layers=3
    )
    x, ctx = torch.randn(1, 6), torch.randn(1, 2)
    jac = torch.autograd.functional.jacobian(lambda v: made(v, ctx), x)[0, :, :, 0, :]  # (D, mult, D)
    dependence = jac.abs().sum(dim=1) > 0  # [i, j]: output row i depends on input j
    assert not torch.triu(dependence).any(), "output i must not depend on inputs >= i"
    connectivity = made.first.mask
    for layer in made.hidden:
        connectivity = layer.mask @ connectivity
    connectivity = (made.last.mask @ connectivity).view(3, 6, 6).sum(dim=0) > 0  # parameter-major rows
    if hidden >= 6:
        assert torch.equal(connectivity, torch.tril(torch.ones(6, 6, dtype=torch.bool), diagonal=-1)), (
            "output i must be connected to every input < i"
        )
    assert connectivity[-1, :-1].all(), "the last output must see every other input, even in a narrow MADE"
    context_reach = torch.ones(hidden)  # the context layer feeds every first-layer unit
    for layer in made.hidden:
        context_reach = layer.mask @ context_reach
    context_reach = (made.last.mask @ context_reach).view(3, 6)
    assert (context_reach[:, 1:] > 0).all(), "every output row but the first sees the context"
    assert not context_reach[:, 0].any(), "the first feature's parameters are bare biases, as in nflows"


_MINIMA = {"min_bin_width": CALOFLOW_MIN, "min_bin_height": CALOFLOW_MIN, "min_derivative": CALOFLOW_MIN}


def _block(direction, features=5, context=2, hidden=16, seed=0):
    torch.manual_seed(seed)
    block = SplineAutoregressive(features, context, hidden, direction=direction, num_bins=4, tail_bound=3.0)
    for p in block.parameters():  # a non-trivial spline everywhere
        torch.nn.init.normal_(p, std=0.5)
    return block


@pytest.mark.parametrize("direction", ["maf", "iaf"])
def test_block_inverts_and_logdet_matches_autograd(direction):
    block = _block(direction)
    x, ctx = torch.randn(4, 5) * 2, torch.randn(4, 2)
    z, lad = block(x, ctx)
    back, back_lad = block.inverse(z, ctx)
    torch.testing.assert_close(back, x, atol=1e-4, rtol=0)
    torch.testing.assert_close(back_lad, -lad, atol=1e-4, rtol=0)
    for n in range(len(x)):
        jac = torch.autograd.functional.jacobian(lambda v, n=n: block(v[None], ctx[n : n + 1])[0][0], x[n])
        assert torch.allclose(torch.triu(jac, diagonal=1), torch.zeros_like(jac)), "Jacobian must be triangular"
        torch.testing.assert_close(torch.slogdet(jac).logabsdet, lad[n], atol=1e-6, rtol=0)


def test_directions_cost_one_or_d_made_passes():
    calls = {"n": 0}
    for direction, fast in (("maf", "forward"), ("iaf", "inverse")):
        block = _block(direction)
        block.made.register_forward_hook(lambda *args: calls.__setitem__("n", calls["n"] + 1))
        x, ctx = torch.randn(3, 5), torch.randn(3, 2)
        slow = "inverse" if fast == "forward" else "forward"
        calls["n"] = 0
        getattr(block, fast)(x, ctx)
        assert calls["n"] == 1
        calls["n"] = 0
        getattr(block, slow)(x, ctx)
        assert calls["n"] == 5


@pytest.mark.parametrize("hidden", [3, 16])
def test_incremental_maf_sampling_is_the_full_pass_inverse(hidden):
    """The incremental inverse (one first-layer column and one output's rows per step) gives what D
    full MADE passes give, for wide and narrow MADEs; it is used only outside training."""
    torch.manual_seed(2)
    block = SplineAutoregressive(7, 2, hidden, direction="maf", n_hidden_layers=3, num_bins=4, tail_bound=3.0)
    for p in block.parameters():
        torch.nn.init.normal_(p, std=0.5)
    block.eval()
    z, ctx = torch.randn(6, 7) * 2, torch.randn(6, 2)
    full_x, full_lad = block.inverse(z, ctx)
    block.incremental_sampling = True
    x, lad = block.inverse(z, ctx)
    torch.testing.assert_close(x, full_x, atol=1e-10, rtol=0)
    torch.testing.assert_close(lad, full_lad, atol=1e-10, rtol=0)
    assert block.inverse(z, ctx, return_params=True)[2].shape == (6, 7, 11), "params: the full passes"
    block.train()
    torch.testing.assert_close(block.inverse(z, ctx)[0], full_x)  # training: the published passes


def test_iaf_and_maf_agree_on_one_feature_and_on_params():
    """With one feature the MADE sees only the context: MAF density map == IAF density map."""
    maf, iaf = _block("maf", features=1), _block("iaf", features=1)
    iaf.load_state_dict(maf.state_dict())
    x, ctx = torch.randn(7, 1), torch.randn(7, 2)
    torch.testing.assert_close(maf(x, ctx)[0], iaf(x, ctx)[0])
    torch.testing.assert_close(maf.inverse(x, ctx)[1], iaf.inverse(x, ctx)[1])
    # an IAF's MADE output on the z side equals the MAF's on the x side when the maps coincide
    maf5, iaf5 = _block("maf"), _block("iaf", seed=1)
    xx, c = torch.randn(3, 5), torch.randn(3, 2)
    z, _, p_maf = maf5(xx, c, return_params=True)
    torch.testing.assert_close(p_maf, maf5.made(xx, c).view_as(p_maf))
    _, _, p_iaf = iaf5.inverse(z, c, return_params=True)
    torch.testing.assert_close(p_iaf, iaf5.made(z, c))


def test_permutations_stay_in_layer_and_invert():
    sizes = [3, 4, 2]
    rev = within_layer_reversal(sizes)
    assert rev.tolist() == [2, 1, 0, 6, 5, 4, 3, 8, 7]
    shuffle = within_layer_shuffle(sizes, np.random.default_rng(1))
    layer = np.repeat(np.arange(3), sizes)
    assert np.array_equal(layer[shuffle], layer) and sorted(shuffle) == list(range(9))
    perms = caloflow_permutations(sizes, 4, np.random.default_rng(0))
    assert len(perms) == 3 and np.array_equal(perms[0], rev) and np.array_equal(perms[2], rev)
    module = FixedPermutation(shuffle)
    x = torch.randn(2, 9)
    y, lad = module(x, torch.randn(2, 1))
    assert torch.equal(y, x[:, shuffle]) and torch.equal(module.inverse(y)[0], x) and not lad.any()
    with pytest.raises(ValueError):
        FixedPermutation([0, 0, 1])


@pytest.mark.parametrize("direction", ["maf", "iaf"])
def test_flow_density_and_sampling_agree(direction):
    torch.manual_seed(3)
    sizes = [2, 3]
    transforms = []
    for perm in caloflow_permutations(sizes, 3, np.random.default_rng(0)) + [None]:
        transforms.append(SplineAutoregressive(5, 2, 8, direction=direction, num_bins=4, tail_bound=4.0))
        if perm is not None:
            transforms.append(FixedPermutation(perm))
    flow = ConditionalFlow(transforms, 5)
    ctx = torch.randn(6, 2)
    x, log_q = flow.sample_and_log_prob(ctx, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(flow.log_prob(x, ctx), log_q, atol=1e-6, rtol=0)
    fwd = flow.forward(x, ctx, return_steps=True, return_params=True)
    assert len(fwd.steps) == len(transforms) + 1 and len(fwd.params) == 3
    torch.testing.assert_close(fwd.steps[0], x)
    inv = flow.inverse(fwd.output, ctx, return_steps=True, return_params=True)
    torch.testing.assert_close(inv.output, x, atol=1e-6, rtol=0)
    for a, b in zip(inv.steps, fwd.steps[::-1]):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    for a, b in zip(inv.params, fwd.params[::-1]):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_standard_normal_log_prob():
    z = torch.randn(4, 3)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(dim=1)
    torch.testing.assert_close(standard_normal_log_prob(z), expected)
