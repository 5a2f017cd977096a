"""The shared MLP builder and Gaussian latent pieces (calobench.nn)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from calobench.nn.gaussian import gaussian_kl, gaussian_nll, reparameterize
from calobench.nn.mlp import mlp


def test_mlp_layout_and_zero_init():
    net = mlp(5, 3, [16, 8], act="leaky_relu", dropout=0.1, layer_norm=True, zero_last=True)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(5, 16), (16, 8), (8, 3)]
    assert sum(isinstance(m, nn.LeakyReLU) for m in net) == 2
    assert sum(isinstance(m, nn.LayerNorm) for m in net) == 2 and sum(isinstance(m, nn.Dropout) for m in net) == 2
    net.eval()
    assert torch.equal(net(torch.randn(4, 5)), torch.zeros(4, 3))
    assert isinstance(mlp(2, 2, [], final_activation="softplus")[-1], nn.Softplus)


def test_mlp_rejects_bad_sizes_and_activations():
    with pytest.raises(ValueError, match="unknown activation"):
        mlp(2, 2, [4], act="swish2")
    with pytest.raises(ValueError, match=">= 1"):
        mlp(2, 0, [4])


def test_reparameterization_is_seeded_and_has_the_right_moments():
    mu, logvar = torch.full((200000, 1), 2.0), torch.full((200000, 1), math.log(9.0))
    a = reparameterize(mu, logvar, torch.Generator().manual_seed(3))
    b = reparameterize(mu, logvar, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert abs(float(a.mean()) - 2.0) < 0.03 and abs(float(a.std()) - 3.0) < 0.03


def test_kl_and_nll_match_torch_distributions():
    torch.manual_seed(0)
    mu, logvar, x = torch.randn(6, 4), torch.randn(6, 4), torch.randn(6, 4)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(4), torch.ones(4))
    torch.testing.assert_close(gaussian_kl(mu, logvar), torch.distributions.kl_divergence(q, p).sum(-1))
    log_sigma = torch.tensor([0.3])
    expected = -torch.distributions.Normal(mu, torch.exp(log_sigma)).log_prob(x).sum(-1)
    torch.testing.assert_close(gaussian_nll(x, mu, log_sigma), expected)
