"""CaloINN's preprocessing round trips and the VAE's smearing kernel and loss."""

from __future__ import annotations

import math

import pytest
import torch
from calobench_caloinn.preprocessing import (
    dequantize_u,
    inn_inputs,
    inn_to_voxels,
    log2_energy,
    requantize_u,
    share_logits,
    shares_and_u,
    shares_from_logits,
    u_from_logits,
    u_logits,
    vae_to_voxels,
)
from calobench_caloinn.vae import ResidualQuantiles, smearing_matrix, vae_loss
from caloinn_data import tiny_showers

from calobench.geometry import builtin_geometry


@pytest.fixture(scope="module")
def showers():
    data = tiny_showers(n=64, seed=3)
    return (
        torch.as_tensor(data.incident_energies, dtype=torch.float64),
        torch.as_tensor(data.energies, dtype=torch.float64),
        list(data.geometry.layer_sizes),
    )


def test_inn_round_trip_without_noise(showers):
    incident, voxels, sizes = showers
    scale = 1.1 * float((voxels.sum(1) / incident).max())
    shares, u = shares_and_u(voxels, incident, sizes, scale)
    values = inn_inputs(torch.cat([shares, u], 1), voxels.shape[1], 0.0, 1e-12)
    back = inn_to_voxels(values, incident, sizes, noise_width=0.0, alpha=1e-12, u0_scale=scale, threshold_mev=0.0)
    torch.testing.assert_close(back, voxels, rtol=1e-8, atol=1e-6)
    assert log2_energy(torch.tensor([1000.0, 4000.0])).flatten().tolist() == [0.0, 2.0]


def test_inn_round_trip_with_noise_zeroes_what_falls_below_the_width(showers):
    incident, voxels, sizes = showers
    torch.manual_seed(0)
    shares, u = shares_and_u(voxels, incident, sizes, 2.0)
    b = 5e-6
    values = inn_inputs(torch.cat([shares, u], 1), voxels.shape[1], b, 1e-8)
    assert torch.isfinite(values).all() and values.min() >= math.log(1e-8)
    back = inn_to_voxels(values, incident, sizes, noise_width=b, alpha=1e-8, u0_scale=2.0, threshold_mev=0.0)
    zero = voxels == 0
    # the noise of empty voxels is removed; what the u's' noise leaves in an empty last layer is
    # spread evenly over it, far below any readout threshold
    assert back[zero].max() < 1e-2
    cut = inn_to_voxels(values, incident, sizes, noise_width=b, alpha=1e-8, u0_scale=2.0, threshold_mev=1e-2)
    assert (cut[zero] == 0).all()
    big = shares > 1e-3
    torch.testing.assert_close(back[big], voxels[big], rtol=2e-2, atol=0)
    # layer energies come back from the u's to the noise width
    torch.testing.assert_close(back.sum(1), voxels.sum(1), rtol=1e-3, atol=0)


def test_inn_round_trip_with_logit_u(showers):
    incident, voxels, sizes = showers
    shares, u = shares_and_u(voxels, incident, sizes, 2.0)
    values = inn_inputs(torch.cat([shares, u], 1), voxels.shape[1], 0.0, 1e-12, "logit")
    torch.testing.assert_close(values[:, voxels.shape[1] :], u_logits(u / 0.9))  # logit(u), a = 1e-6
    back = inn_to_voxels(
        values, incident, sizes, noise_width=0.0, alpha=1e-12, u0_scale=2.0, threshold_mev=0.0, u_transform="logit"
    )
    torch.testing.assert_close(back, voxels, rtol=1e-5, atol=1e-4)


def test_threshold_and_clipping(showers):
    incident, voxels, sizes = showers
    shares, u = shares_and_u(voxels, incident, sizes, 2.0)
    values = inn_inputs(torch.cat([shares, u], 1), voxels.shape[1], 0.0, 1e-8)
    values[:, -1] = 50.0  # a u far above 1 is clipped to 1, not overflowing
    back = inn_to_voxels(values, incident, sizes, noise_width=0.0, alpha=1e-8, u0_scale=2.0, threshold_mev=1.0)
    assert torch.isfinite(back).all()
    assert ((back == 0) | (back >= 1.0)).all()


def test_vae_transforms_round_trip(showers):
    incident, voxels, sizes = showers
    shares, u = shares_and_u(voxels, incident, sizes, 2.0)
    torch.testing.assert_close(shares_from_logits(share_logits(shares)), shares, atol=1e-9, rtol=0)
    torch.testing.assert_close(u_from_logits(u_logits(u)), u, atol=1e-9, rtol=0)
    back = vae_to_voxels(shares, u, incident, sizes, u0_scale=2.0, threshold_mev=0.0)
    torch.testing.assert_close(back, voxels, rtol=1e-8, atol=1e-6)


def test_smearing_matrix_weights():
    geometry = builtin_geometry("ds1-photons")  # layer 1: 10 angular x 16 radial bins
    matrix = smearing_matrix(geometry, kernel=3, stride=1, centre=0.6).to_dense()
    assert matrix.shape == (geometry.n_voxels, geometry.n_voxels)
    layer1 = geometry.layer_slice(geometry.layer_ids[1])
    n_alpha, n_r = geometry.layer_shape(geometry.layer_ids[1])
    interior = layer1.start + 3 * n_r + 5  # alpha 3, r 5
    row = matrix[interior]
    assert row[interior] == pytest.approx(0.6)
    assert (row > 0).sum() == 9 and row.sum() == pytest.approx(1.0)
    assert row[layer1.start + 2 * n_r + 4] == pytest.approx(0.05)
    wrapped = matrix[layer1.start + 0 * n_r + 5]  # alpha 0 wraps to alpha n-1
    assert wrapped[layer1.start + (n_alpha - 1) * n_r + 5] == pytest.approx(0.05)
    # every row stays inside its layer
    layer0 = geometry.layer_slice(geometry.layer_ids[0])
    assert matrix[layer0][:, layer0.stop :].abs().sum() == 0
    coarse = smearing_matrix(builtin_geometry("ds2"), kernel=7, stride=3)
    assert coarse.shape[1] == 6480 and coarse.shape[0] == 45 * 6 * 3
    assert coarse.to_dense().sum(1).max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="odd"):
        smearing_matrix(geometry, kernel=4)


def test_vae_loss_terms():
    torch.manual_seed(0)
    geometry = builtin_geometry("ds1-photons")
    smearing = smearing_matrix(geometry)
    logits = torch.randn(8, geometry.n_voxels)
    shares = torch.rand(8, geometry.n_voxels)
    mu, logvar = torch.zeros(8, 4), torch.zeros(8, 4)
    mean = shares.mean(0)
    total, terms = vae_loss(logits, logits, shares, shares, mean, mu, logvar, smearing=smearing, gamma=1e3, beta=1.0)
    assert float(total) == 0.0 and terms == {"mae": 0.0, "mse": 0.0, "kl": 0.0}
    shifted = logits + 0.5
    total, terms = vae_loss(
        shifted, logits, shares, shares, mean, mu + 1, logvar, smearing=smearing, gamma=1.0, beta=2.0
    )
    assert terms["kl"] == pytest.approx(2.0)  # 0.5 * sum(mu^2) over 4 latents
    # a constant shift is smeared with the row sums (< 1 at layer edges)
    expected = float(torch.sparse.sum(smearing).item()) * 0.5
    assert terms["mae"] == pytest.approx(expected, rel=1e-5)
    assert float(total) == pytest.approx(terms["mae"] + 2.0 * 2.0, rel=1e-6)


def test_u_logits_with_scale_one_resolve_the_fractions_near_one(showers):
    incident, voxels, sizes = showers
    _, u = shares_and_u(voxels, incident, sizes, 2.0)
    torch.testing.assert_close(u_from_logits(u_logits(u, 1.0), 1.0), u, atol=1e-9, rtol=0)
    top = torch.tensor([[0.999], [1.0]], dtype=torch.float64)
    published, unscaled = u_logits(top), u_logits(top, 1.0)
    assert float(published[1] - published[0]) < 0.011  # logit(0.9 u) squeezes u in [0.999, 1] into 0.01
    assert float(unscaled[1] - unscaled[0]) > 6.0  # logit(u) spreads it over [6.9, 13.8]


def test_u_dequantization_spreads_point_masses_and_inverts_on_average():
    torch.manual_seed(0)
    u = torch.tensor([0.0, 1.0, 0.3]).repeat(2000, 1)
    noisy = dequantize_u(u, 1e-3)
    assert (noisy > 0).all() and (noisy < 1).all()
    assert noisy[:, 0].max() <= 1e-3 and noisy[:, 1].min() >= 1 - 1e-3
    back = requantize_u(noisy, 1e-3)
    assert (back - u).abs().max() <= 5.01e-4  # within half the band
    assert abs(float(back[:, 2].mean()) - 0.3) < 2e-5
    assert torch.equal(dequantize_u(u, 0.0), u)


def test_residual_quantiles_reproduce_each_voxels_distribution_per_energy():
    torch.manual_seed(0)
    energies = torch.tensor([0.0, 3.0]).repeat_interleave(4000)  # log2(E / GeV): two energies
    residuals = torch.stack([torch.where(torch.rand(8000) < 0.7, 0.0, 2.0), torch.randn(8000) * (1 + energies)], dim=1)
    model = ResidualQuantiles(torch.arange(-0.5, 4.0, 1.0), 33, 2)
    model.fit(residuals, energies)
    assert model.n_bins == 4
    torch.testing.assert_close(model.quantiles[1], model.quantiles[0])  # the empty bin copies its neighbour
    draws = model.sample(torch.full((20000,), 3.0), torch.Generator().manual_seed(1))
    assert abs(float((draws[:, 0] < 1.0).float().mean()) - 0.7) < 0.03
    assert abs(float(draws[:, 1].std()) - 4.0) < 0.3
    low = model.sample(torch.full((20000,), -0.2), torch.Generator().manual_seed(1))
    assert abs(float(low[:, 1].std()) - 1.0) < 0.1
