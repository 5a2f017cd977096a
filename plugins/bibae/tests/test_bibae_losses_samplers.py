"""The BIB-AE's MMD losses and its KDE / flow latent samplers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from calobench_bibae.losses import latent_mmd, sorted_kernel_mmd
from calobench_bibae.samplers import LatentKDE, build_latent_flow


def test_latent_mmd_separates_shifted_gaussians():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(400, 4, generator=gen), torch.randn(400, 4, generator=gen)
    same = float(latent_mmd(a, b))
    shifted = float(latent_mmd(a + 1.0, b))
    assert abs(same) < 0.01 and shifted > 10 * max(abs(same), 1e-4)
    assert float(latent_mmd(a, a)) == pytest.approx(0.0, abs=1e-6)


def test_sorted_kernel_mmd_compares_hit_spectra_not_positions():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(8, 60, generator=gen)
    permuted = x[:, torch.randperm(60, generator=gen)]
    assert float(sorted_kernel_mmd(permuted, x, kernel_size=10, stride=5, cutoff=60, alpha=50.0)) == pytest.approx(
        0.0, abs=1e-6
    )
    assert float(sorted_kernel_mmd(x * 1.5, x, kernel_size=10, stride=5, cutoff=60, alpha=50.0)) > 1e-3
    y = (x * 1.5).requires_grad_(True)
    sorted_kernel_mmd(y, x, kernel_size=10, stride=5, cutoff=60, alpha=50.0).backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_kde_samples_conditionally_on_the_energy():
    rng = np.random.default_rng(0)
    energies = rng.choice([-1.0, 1.0], size=2000)
    latents = np.stack([3.0 * energies + 0.1 * rng.standard_normal(2000), rng.standard_normal(2000)], axis=1)
    kde = LatentKDE.fit(latents, energies, rng, 1000, 600, [0.02, 0.1, 0.5, 2.0], energy_weight=4.0)
    assert kde.bandwidth in (0.02, 0.1, 0.5)  # CV rejects the over-smoothing one
    assert kde.points.shape == (1000, 2)
    gen = torch.Generator().manual_seed(0)
    low = kde.sample(torch.full((500,), -1.0), gen)
    high = kde.sample(torch.full((500,), 1.0), gen)
    assert float(low[:, 0].mean()) == pytest.approx(-3.0, abs=0.2)
    assert float(high[:, 0].mean()) == pytest.approx(3.0, abs=0.2)
    again = kde.sample(torch.full((500,), 1.0), torch.Generator().manual_seed(0))
    assert torch.equal(
        LatentKDE.from_state(kde.state()).sample(torch.full((500,), -1.0), torch.Generator().manual_seed(0)), low
    )
    assert not torch.equal(again, low)


def test_latent_flow_is_a_conditional_normflows_flow():
    torch.manual_seed(0)
    flow = build_latent_flow(4, 1, blocks=2, hidden=8, bins=4, tail_bound=4.0)
    z, c = torch.randn(16, 4), torch.randn(16, 1)
    log_prob = flow.log_prob(z, context=c)
    assert log_prob.shape == (16,) and torch.isfinite(log_prob).all()
    sample, _ = flow.sample(16, context=c)
    assert sample.shape == (16, 4)


def test_voxel_energy_score_is_minimized_by_the_true_spread():
    from calobench_bibae.losses import voxel_energy_score

    gen = torch.Generator().manual_seed(2)
    target = torch.randn(20000, 3, generator=gen)

    def score(width: float) -> float:
        first = width * torch.randn(20000, 3, generator=gen)
        second = width * torch.randn(20000, 3, generator=gen)
        return float(voxel_energy_score(first, second, target))

    assert score(1.0) < score(0.5) and score(1.0) < score(2.0)
    assert score(0.0) == pytest.approx(3 * float(target.abs().mean(dim=0).mean()), rel=0.05)
