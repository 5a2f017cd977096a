"""calobench.marginals: per-(energy bin, voxel) tables, randomized PIT, quantile function, copula transform."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from calobench.marginals import VoxelMarginals, copula_transform


def _sample(n: int, seed: int, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two energies; voxel 0 zero 30 % of the time, voxel 1 never; log-normal non-zero values."""
    g = torch.Generator().manual_seed(seed)
    incident = torch.where(torch.rand(n, generator=g) < 0.5, 1000.0, 8000.0).double()
    values = scale * torch.exp(torch.randn((n, 2), generator=g, dtype=torch.float64)) * (incident[:, None] / 1000.0)
    values[:, 0] *= (torch.rand(n, generator=g) > 0.3).double()
    return incident, values


def test_pit_is_uniform_and_inverts():
    incident, x = _sample(20000, 0)
    marginals = VoxelMarginals.fit(incident, x, n_quantiles=257)
    assert marginals.discrete and marginals.p_zero.shape == (2, 2)
    assert marginals.p_zero[:, 0].sub(0.3).abs().max() < 0.03 and marginals.p_zero[:, 1].max() == 0
    u = marginals.cdf(x, incident, torch.Generator().manual_seed(1))
    assert u.min() >= 0 and u.max() <= 1
    for v in range(2):  # uniform within both bins
        hist = np.histogram(u[:, v].numpy(), bins=10, range=(0, 1))[0] / len(u)
        np.testing.assert_allclose(hist, 0.1, atol=0.01)
    back = marginals.inverse_cdf(u, incident)
    nonzero = x > 0
    assert torch.equal(back > 0, nonzero)
    torch.testing.assert_close(back[nonzero], x[nonzero], rtol=0.05, atol=1e-3)


@pytest.mark.parametrize("rho", [1.0, 0.5, 0.0])
def test_copula_transform_gives_the_target_marginals(rho):
    incident, x = _sample(20000, 2, scale=3.0)  # source: 3x too large
    target_incident, target = _sample(20000, 3)
    source, goal = VoxelMarginals.fit(incident, x), VoxelMarginals.fit(target_incident, target)
    mapped = copula_transform(x, incident, source, goal, rho, torch.Generator().manual_seed(0))
    for e in (1000.0, 8000.0):
        rows, target_rows = incident == e, target_incident == e
        for v in range(2):
            a, b = np.sort(mapped[rows, v].numpy()), np.sort(target[target_rows, v].numpy())
            levels = np.linspace(0.05, 0.95, 19)
            np.testing.assert_allclose(np.quantile(a, levels), np.quantile(b, levels), rtol=0.1, atol=0.2)
    if rho == 1.0:  # ranks kept: strictly monotone in the non-zero values
        rows = (incident == 1000.0) & (x[:, 1] > 0)
        order = torch.argsort(x[rows, 1])
        assert (torch.diff(mapped[rows, 1][order]) >= 0).all()


def test_continuous_bins_and_state_round_trip():
    g = torch.Generator().manual_seed(0)
    incident = torch.exp(torch.rand(500, generator=g, dtype=torch.float64) * 5 + 5)
    x = torch.rand((500, 3), generator=g, dtype=torch.float64)
    marginals = VoxelMarginals.fit(incident, x, n_quantiles=8, n_energy_bins=4)
    assert not marginals.discrete and marginals.p_zero.shape == (4, 3)
    restored = VoxelMarginals.from_state(marginals.state())
    u = torch.rand((500, 3), generator=g, dtype=torch.float64)
    torch.testing.assert_close(
        restored.inverse_cdf(u, incident), marginals.inverse_cdf(u, incident), rtol=1e-6, atol=1e-7
    )
    with pytest.raises(ValueError, match="rho"):
        copula_transform(x, incident, marginals, marginals, rho=1.5)
