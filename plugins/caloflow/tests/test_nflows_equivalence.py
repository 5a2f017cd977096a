"""One MADE-RQS block equals nflows 0.14's ``MaskedPiecewiseRationalQuadraticAutoregressiveTransform``
with CaloFlow's arguments (the library the published code builds every flow with), weights copied.

nflows is not a dependency; the test runs where it is installed
(``pip install --no-deps nflows==0.14``) and is skipped elsewhere. The formulas it checks are also
pinned without nflows in test_flows.py (context ReLU, degrees, unscaled spline parameters)."""

from __future__ import annotations

import pytest
import torch
from calobench_caloflow.autoregressive import SplineAutoregressive
from torch.nn import functional as F

transforms = pytest.importorskip("nflows.transforms")


@pytest.fixture(autouse=True)
def _double():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize(
    ("features", "hidden", "context", "bins", "hidden_layers"),
    [(5, 64, 1, 8, 3), (12, 20, 6, 8, 2), (12, 11, 6, 4, 2)],  # Flow I; Flow II shapes (H >= D - 1)
)
def test_block_equals_nflows(features, hidden, context, bins, hidden_layers):
    torch.manual_seed(0)
    reference = transforms.MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
        features=features,
        hidden_features=hidden,
        context_features=context,
        num_bins=bins,
        tails="linear",
        tail_bound=14.0,
        num_blocks=hidden_layers - 1,
        use_residual_blocks=False,
        random_mask=False,
        activation=F.relu,
        dropout_probability=0.0,
        use_batch_norm=False,
        min_bin_width=1e-6,
        min_bin_height=1e-6,
        min_derivative=1e-6,
    )
    for p in reference.parameters():
        torch.nn.init.normal_(p, std=0.3)
    mine = SplineAutoregressive(
        features, context, hidden, direction="maf", n_hidden_layers=hidden_layers, num_bins=bins, tail_bound=14.0
    )
    made, net = mine.made, reference.autoregressive_net
    multiplier = 3 * bins - 1
    order = (
        torch.arange(features * multiplier).view(features, multiplier).t().reshape(-1)
    )  # feature- -> parameter-major
    assert torch.equal(made.first.mask, net.initial_layer.mask)
    assert all(torch.equal(a.mask, b.linear.mask) for a, b in zip(made.hidden, net.blocks, strict=True))
    assert torch.equal(made.last.mask, net.final_layer.mask[order])
    with torch.no_grad():
        made.first.weight.copy_(net.initial_layer.weight)
        made.first.bias.copy_(net.initial_layer.bias)
        made.context.weight.copy_(net.context_layer.weight)
        made.context.bias.copy_(net.context_layer.bias)
        for a, b in zip(made.hidden, net.blocks, strict=True):
            a.weight.copy_(b.linear.weight)
            a.bias.copy_(b.linear.bias)
        made.last.weight.copy_(net.final_layer.weight[order])
        made.last.bias.copy_(net.final_layer.bias[order])
    x, c = torch.randn(64, features) * 3, torch.randn(64, context)
    z_reference, lad_reference = reference(x, c)
    z, lad = mine(x, c)
    torch.testing.assert_close(z, z_reference, rtol=0, atol=1e-10)
    torch.testing.assert_close(lad, lad_reference, rtol=0, atol=1e-8)
