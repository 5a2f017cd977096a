"""calobench.nn.coupling: the conditional spline coupling layer equals normflows' own computation,
inverts, has the right log-determinant and works inside a normflows ConditionalNormalizingFlow."""

from __future__ import annotations

import normflows as nf
import pytest
import torch
from normflows.flows.neural_spline.coupling import PiecewiseRationalQuadraticCoupling
from normflows.nets.resnet import ResidualNet
from normflows.utils.masks import create_alternating_binary_mask

from calobench.nn.coupling import CoupledRationalQuadraticSpline

D, C = 7, 3


def _layer(reverse_mask: bool = False, tail_bound: float = 2.0) -> CoupledRationalQuadraticSpline:
    torch.manual_seed(0)
    layer = CoupledRationalQuadraticSpline(
        D, 2, 16, num_context_channels=C, num_bins=6, tail_bound=tail_bound, reverse_mask=reverse_mask
    ).double()
    with torch.no_grad():  # a non-trivial spline: the last layers start near zero
        for parameter in layer.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    return layer


def _inputs(n: int = 257) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    x = 1.5 * torch.randn(n, D, generator=generator, dtype=torch.float64)  # some outside the tail bound
    return x, torch.randn(n, C, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("reverse_mask", [False, True])
def test_matches_normflows_coupling(reverse_mask: bool) -> None:
    layer = _layer(reverse_mask)
    reference = PiecewiseRationalQuadraticCoupling(
        mask=create_alternating_binary_mask(D, even=reverse_mask),
        transform_net_create_fn=lambda i, o: ResidualNet(i, o, 16, context_features=C, num_blocks=2),
        num_bins=6,
        tails="linear",
        tail_bound=2.0,
    ).double()
    reference.load_state_dict(layer.prqct.state_dict())
    x, context = _inputs()
    for direction in ("forward", "inverse"):
        mine = getattr(layer.prqct, direction)(x, context)
        theirs = getattr(reference, direction)(x, context)
        torch.testing.assert_close(mine[0], theirs[0], rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(mine[1], theirs[1], rtol=1e-8, atol=1e-8)


def test_inverse_and_log_determinant() -> None:
    layer = _layer()
    x, context = _inputs(32)
    z, log_det = layer.inverse(x, context)
    back, log_det_back = layer.forward(z, context)
    torch.testing.assert_close(back, x, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(log_det_back, -log_det, rtol=1e-9, atol=1e-9)
    for i in range(4):
        jacobian = torch.autograd.functional.jacobian(
            lambda v, c=context[i : i + 1]: layer.inverse(v, c)[0], x[i : i + 1]
        )
        expected = torch.linalg.slogdet(jacobian.reshape(D, D))[1]
        torch.testing.assert_close(log_det[i], expected, rtol=1e-8, atol=1e-8)


def test_in_a_conditional_flow_with_lu_mixing() -> None:
    torch.manual_seed(2)
    flows = []
    for index in range(3):
        flows += [
            CoupledRationalQuadraticSpline(
                D, 1, 8, num_context_channels=C, tail_bound=1.0, reverse_mask=index % 2 == 1
            ),
            nf.flows.LULinearPermute(D),
        ]
    model = nf.ConditionalNormalizingFlow(nf.distributions.DiagGaussian(D, trainable=False), flows)
    x, context = (t.float() for t in _inputs(64))
    loss = model.forward_kld(x, context=context)
    loss.backward()
    assert torch.isfinite(loss)
    z = model.inverse(x, context=context)
    torch.testing.assert_close(model.forward(z, context=context), x, rtol=1e-4, atol=1e-4)


def test_needs_two_features() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        CoupledRationalQuadraticSpline(1, 1, 8)
