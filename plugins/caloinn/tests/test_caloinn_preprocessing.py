"""CaloINN's preprocessing round trips, the published post-processing, and the VAE's smearing matrix,
Kernel-VAE layout and loss, each pinned to the published formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from calobench_caloinn.preprocessing import (
    VAE_EPSILON_MEV,
    decoded_voxels,
    decoder_condition,
    dequantize_u,
    encoder_features,
    inn_energy_condition,
    inn_inputs,
    inn_to_voxels,
    latent_u_logits,
    log2_energy,
    loss_shares,
    requantize_u,
    shares_and_u,
    u_from_latent_logits,
    vae_shares_and_u,
)
from calobench_caloinn.vae import (
    KernelVAE,
    block_mlp,
    kernel_windows,
    published_neighbours,
    smear,
    smearing_matrix,
    vae_loss,
)
from caloinn_data import tiny_showers
from torch import nn

from calobench.geometry import builtin_geometry
from calobench.preprocessing import logit


@pytest.fixture(scope="module")
def showers():
    data = tiny_showers(n=64, seed=3)
    return (
        torch.as_tensor(data.incident_energies, dtype=torch.float64),
        torch.as_tensor(data.energies, dtype=torch.float64),
        list(data.geometry.layer_sizes),
    )


# ---------------------------------------------------------------------- INN
def test_inn_round_trip_without_noise(showers):
    incident, voxels, sizes = showers
    shares, u = shares_and_u(voxels, incident, sizes, 1.0, clip_total=False)
    assert float(u[:, 0].max()) > 1.0  # the random showers deposit more than E_inc: u_0 stays above 1
    values = inn_inputs(torch.cat([shares, u], 1), voxels.shape[1], 0.0, 1e-12)
    back = inn_to_voxels(values, incident, sizes, noise_width=0.0, alpha=1e-12, u0_scale=1.0, threshold_mev=0.0)
    torch.testing.assert_close(back, voxels, rtol=1e-8, atol=1e-6)
    assert log2_energy(torch.tensor([1000.0, 4000.0])).flatten().tolist() == [0.0, 2.0]


def test_inn_round_trip_with_noise_zeroes_what_falls_below_the_width(showers):
    incident, voxels, sizes = showers
    torch.manual_seed(0)
    shares, u = shares_and_u(voxels, incident, sizes, 1.0, clip_total=False)
    b = 5e-6
    values = inn_inputs(torch.cat([shares, u], 1), voxels.shape[1], b, 1e-8)
    assert torch.isfinite(values).all() and values.min() >= math.log(1e-8)
    back = inn_to_voxels(values, incident, sizes, noise_width=b, alpha=1e-8, u0_scale=1.0, threshold_mev=0.0)
    assert (back[voxels == 0] == 0).all()  # the noise of empty voxels is removed
    big = shares > 1e-3
    torch.testing.assert_close(back[big], voxels[big], rtol=2e-2, atol=0)
    torch.testing.assert_close(back.sum(1), voxels.sum(1), rtol=1e-3, atol=0)


def _inn_values(shares: torch.Tensor, u: torch.Tensor, alpha: float = 1e-8, b: float = 5e-6) -> torch.Tensor:
    """The INN's values for given shares and u's as the flow would put them out (log(x + b + alpha))."""
    return torch.log(torch.cat([shares, u], dim=1) + b + alpha)


def test_inn_post_processing_zeroes_the_us_below_the_noise_and_drops_empty_layers():
    """Published (``Trainer.generate``, ``postprocess``, ``unnormalize_layers``): every column below b
    is set to 0, the u's included, and a layer whose shares are all 0 loses its energy."""
    sizes = [2, 3]
    b, alpha = 5e-6, 1e-8
    incident = torch.tensor([100.0, 100.0], dtype=torch.float64)
    shares = torch.tensor([[0.5, 0.5, 0.2, 0.3, 0.5], [0.5, 0.5, 0.0, 0.0, 0.0]], dtype=torch.float64)
    u = torch.tensor([[0.9, 0.5 * b], [0.9, 0.25]], dtype=torch.float64)
    out = inn_to_voxels(
        _inn_values(shares, u), incident, sizes, noise_width=b, alpha=alpha, u0_scale=1.0, threshold_mev=0.0
    )
    # shower 0: u_1 = b / 2 falls below b -> 0, so layer 0 gets nothing and layer 1 everything (90 MeV)
    torch.testing.assert_close(out[0], torch.tensor([0.0, 0.0, 18.0, 27.0, 45.0], dtype=torch.float64))
    # shower 1: layer 1's shares are all 0 -> its 67.5 MeV are lost, not spread over its voxels
    torch.testing.assert_close(out[1], torch.tensor([11.25, 11.25, 0.0, 0.0, 0.0], dtype=torch.float64))
    # runs saved before method_version 2 keep their post-processing: u's not zeroed, energy spread
    old = inn_to_voxels(
        _inn_values(shares, u),
        incident,
        sizes,
        noise_width=b,
        alpha=alpha,
        u0_scale=1.0,
        threshold_mev=0.0,
        legacy=True,
    )
    assert float(old[0, :2].sum()) > 0 and torch.allclose(old[1, 2:], torch.full((3,), 22.5, dtype=torch.float64))


def test_inn_u0_is_not_clipped_and_the_fractions_are():
    sizes = [1, 1]
    incident = torch.tensor([100.0], dtype=torch.float64)
    shares = torch.ones(1, 2, dtype=torch.float64)
    u = torch.tensor([[1.5, 1.2]], dtype=torch.float64)  # u_0 = 1.5 (pions reach 3.5), u_1 above 1
    out = inn_to_voxels(
        _inn_values(shares, u), incident, sizes, noise_width=5e-6, alpha=1e-8, u0_scale=1.0, threshold_mev=0.0
    )
    torch.testing.assert_close(out, torch.tensor([[150.0, 0.0]], dtype=torch.float64), rtol=1e-6, atol=1e-6)


def test_inn_logit_u_option_round_trip(showers):
    incident, voxels, sizes = showers
    shares, u = shares_and_u(voxels, incident, sizes, 2.0)
    values = inn_inputs(torch.cat([shares, u], 1), voxels.shape[1], 0.0, 1e-12, "logit")
    torch.testing.assert_close(values[:, voxels.shape[1] :], logit(u, 1e-6))
    back = inn_to_voxels(
        values, incident, sizes, noise_width=0.0, alpha=1e-12, u0_scale=2.0, threshold_mev=0.0, u_transform="logit"
    )
    torch.testing.assert_close(back, voxels, rtol=1e-5, atol=1e-4)


def test_threshold_and_overflow_guard(showers):
    incident, voxels, sizes = showers
    shares, u = shares_and_u(voxels, incident, sizes, 1.0, clip_total=False)
    values = inn_inputs(torch.cat([shares, u], 1), voxels.shape[1], 0.0, 1e-8)
    values[:, -1] = 500.0  # far above 1: clipped before the exponential, then to 1
    back = inn_to_voxels(values, incident, sizes, noise_width=0.0, alpha=1e-8, u0_scale=1.0, threshold_mev=1.0)
    assert torch.isfinite(back).all()
    assert ((back == 0) | (back >= 1.0)).all()


def test_u_dequantization_option_spreads_point_masses_and_inverts_on_average():
    torch.manual_seed(0)
    u = torch.tensor([0.0, 1.0, 0.3]).repeat(2000, 1)
    noisy = dequantize_u(u, 1e-3)
    assert (noisy > 0).all() and (noisy < 1).all()
    back = requantize_u(noisy, 1e-3)
    assert (back - u).abs().max() <= 5.01e-4
    assert torch.equal(dequantize_u(u, 0.0), u)


# ---------------------------------------------------------------------- VAE transforms
def test_vae_inputs_follow_the_cards(showers):
    """Halved voxels (u_0 = E_dep / (2 E_inc)), logit(a + (1 - 2a) [0.9 x, u / 1.15]), the decoder's
    logit(u / 1.15) and logit(E / (1.15 max)), the latent INN's logit(0.9 u) and ln(E / 100 GeV)."""
    incident, voxels, sizes = showers
    shares, u, _ = vae_shares_and_u(voxels, incident, sizes)
    torch.testing.assert_close(u[:, 0], voxels.sum(1) / (2 * incident))
    alpha = 1e-6
    features = encoder_features(shares, u, alpha)
    y = alpha + (1 - 2 * alpha) * torch.cat([0.9 * shares, u / 1.15], 1)
    torch.testing.assert_close(features, torch.log(y / (1 - y)))
    cond = decoder_condition(u, incident, 4e6, alpha)
    y = alpha + (1 - 2 * alpha) * torch.cat([u / 1.15, incident[:, None] / (1.15 * 4e6)], 1)
    torch.testing.assert_close(cond, torch.log(y / (1 - y)))
    torch.testing.assert_close(u_from_latent_logits(latent_u_logits(u, alpha), alpha), u, atol=1e-9, rtol=0)
    torch.testing.assert_close(inn_energy_condition(torch.tensor([1e5, 1e6])), torch.tensor([[0.0], [math.log(10)]]))


def test_decoded_voxels_scale_each_layer_and_cut_at_the_internal_threshold():
    sizes = [2, 2]
    logits = torch.logit(torch.tensor([[0.3, 0.1, 0.0 + 1e-7, 0.4]], dtype=torch.float64))
    layers = torch.tensor([[8.0, 1.0]], dtype=torch.float64)
    out = decoded_voxels(logits, layers, sizes, alpha=1e-8, internal_threshold_mev=0.02)
    eps = VAE_EPSILON_MEV
    shares = (torch.sigmoid(logits) - 1e-8) / (1 - 2e-8)
    expected = torch.cat(
        [shares[:, :2] * 8.0 / (shares[:, :2].sum() + eps), shares[:, 2:] * 1.0 / (shares[:, 2:].sum() + eps)], 1
    )
    expected[expected < 0.02] = 0
    torch.testing.assert_close(out, expected)
    assert out[0, 2] == 0 and out[0, 3] > 0.99


# ---------------------------------------------------------------------- smearing
def test_published_neighbours_wrap_and_cross_the_centre():
    n_alpha, n_r = 10, 16  # DS1 photons, layer 1
    interior = 3 * n_r + 5
    assert sorted(published_neighbours(interior, n_alpha, n_r)) == sorted(
        [2 * n_r + 5, 2 * n_r + 4, 2 * n_r + 6, 4 * n_r + 5, 4 * n_r + 4, 4 * n_r + 6, interior - 1, interior + 1]
    )
    # alpha 0 wraps to alpha 9; below the innermost ring lies the opposite side (alpha + 5)
    assert sorted(published_neighbours(0, n_alpha, n_r)) == sorted(
        [9 * n_r, 4 * n_r, n_r, 6 * n_r, 5 * n_r, 1, 9 * n_r + 1, n_r + 1]
    )
    # one angular bin: no angular neighbours, and the innermost voxel is its own "below" neighbour
    assert published_neighbours(0, 1, 8) == [0, 1] and published_neighbours(3, 1, 8) == [2, 4]


def test_smearing_matrix_follows_the_published_loop():
    geometry = builtin_geometry("ds1-photons")
    s_t = smearing_matrix(geometry)
    dense = s_t.to_dense().t()  # S: row i = voxel i's weights
    layer1 = geometry.layer_slice(geometry.layer_ids[1])
    row = dense[layer1.start + 3 * 16 + 5]
    assert row[layer1.start + 3 * 16 + 5] == pytest.approx(0.6) and (row > 0).sum() == 9
    assert row.sum() == pytest.approx(1.0)
    # the innermost voxel of a one-bin layer: the share weight overwrote the self weight (published)
    assert dense[0, 0] == pytest.approx(0.05) and dense[1, 1] == pytest.approx(0.6)
    layer0 = geometry.layer_slice(geometry.layer_ids[0])
    assert dense[layer0][:, layer0.stop :].abs().sum() == 0
    x = torch.randn(3, geometry.n_voxels, dtype=torch.float64)
    torch.testing.assert_close(smear(x, s_t), x @ dense.double(), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------- Kernel VAE
def test_kernel_windows_are_the_published_ones():
    ds2 = kernel_windows(45, 7, 3)
    assert len(ds2) == 15 and ds2[:3] == [(0, 4), (0, 7), (3, 10)] and ds2[-1] == (39, 45)
    ds3 = kernel_windows(45, 7, 5)
    assert len(ds3) == 9 and ds3[:2] == [(0, 4), (2, 9)] and ds3[-1] == (37, 44)  # layer 44 in no window


def test_block_mlp_has_relu_first_and_no_activation_before_its_output():
    block = block_mlp(10, 3, [8, 6, 4])
    kinds = [type(m).__name__ for m in block.modules() if not isinstance(m, nn.Sequential)]
    assert kinds == ["ReLU", "Linear", "ReLU", "Linear", "ReLU", "Linear", "Linear"]
    assert [m.out_features for m in block.modules() if isinstance(m, nn.Linear)] == [8, 6, 4, 3]


def test_kernel_vae_layout_and_the_decoders_published_wiring():
    geometry = builtin_geometry("ds3")
    cond = geometry.n_layers + 1
    torch.manual_seed(0)
    vae = KernelVAE(
        geometry.layer_sizes, cond, [40, 30], 5, kernel_size=7, kernel_stride=5, kernel_hidden=[20, 12], kernel_latent=8
    )
    first = next(m for m in vae.encoder_blocks[1].modules() if isinstance(m, nn.Linear))
    assert first.in_features == 7 * 900 + cond  # layers 2..8 and the condition
    assert next(m for m in vae.decoder_blocks[0].modules() if isinstance(m, nn.Linear)).in_features == 8 + cond
    x, c = torch.randn(4, geometry.n_voxels), torch.randn(4, cond)
    mu, logvar = vae.encode(x, c)
    assert mu.shape == logvar.shape == (4, 5)
    moved = x.clone()
    moved[:, -900:] += 5.0  # layer 44 is in no window: the encoder does not see it ...
    torch.testing.assert_close(vae.encode(moved, c)[0], mu)
    out = vae.decode(mu, c)
    assert out.shape == (4, geometry.n_voxels) and (out[:, -900:] == 0).all()  # ... and the decoder leaves it 0
    # each decoder block reads its slice and the last `cond` outputs of the gathering network
    gathered = vae.decoder_gather(torch.cat([mu, c], 1))
    block0 = vae.decoder_blocks[0](torch.cat([gathered[:, :8], gathered[:, -cond:]], 1))
    block1 = vae.decoder_blocks[1](torch.cat([gathered[:, 8:16], gathered[:, -cond:]], 1))
    layer = 900  # window 0: layers 0-3, window 1: layers 2-8; layers 2 and 3 are the sum of both
    torch.testing.assert_close(out[:, : 2 * layer], block0[:, : 2 * layer])
    torch.testing.assert_close(out[:, 2 * layer : 4 * layer], block0[:, 2 * layer :] + block1[:, : 2 * layer])
    with pytest.raises(ValueError, match="kernel_latent"):
        KernelVAE(
            geometry.layer_sizes, cond, [8], 2, kernel_size=7, kernel_stride=5, kernel_hidden=[8], kernel_latent=4
        )


# ---------------------------------------------------------------------- loss
def test_vae_loss_is_the_published_bce_form():
    """``CVAE.reco_loss`` with ``BCE_mode: discrete`` and ``VAE_MAE_logit`` (basis_run_kvae.yaml):
    0.5 mean|logit(x_hat) S - logit(x) S| + gamma 0.5 BCE_mean(x_hat, x) + beta mean KL, computed
    here with numpy from the dense matrix."""
    geometry = builtin_geometry("ds1-photons")
    s_t = smearing_matrix(geometry)
    rng = np.random.default_rng(0)
    x = 0.9 * rng.dirichlet(np.ones(8), size=(4,)).repeat(46, axis=1)[:, : geometry.n_voxels] / 46
    x_hat = np.clip(x + rng.normal(0, 1e-3, x.shape), 0, 0.9)
    mu, logvar = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    alpha, gamma, beta = 1e-8, 1e4, 1e-5

    def lg(v):
        y = alpha + (1 - 2 * alpha) * v
        return np.log(y / (1 - y))

    dense = s_t.to_dense().t().double().numpy()
    logit_term = 0.5 * np.abs(lg(x_hat) @ dense - lg(x) @ dense).mean()
    floor = np.exp(-100.0)  # torch clamps the logs of its BCE at -100
    bce = 0.5 * np.mean(-(x * np.log(np.maximum(x_hat, floor)) + (1 - x) * np.log(np.maximum(1 - x_hat, floor))))
    kl = np.mean(-0.5 * np.sum(1 + logvar - mu**2 - np.exp(logvar), axis=1))
    total, terms = vae_loss(
        torch.as_tensor(x_hat),
        torch.as_tensor(x),
        torch.as_tensor(mu),
        torch.as_tensor(logvar),
        smearing_t=s_t,
        alpha=alpha,
        gamma=gamma,
        beta=beta,
    )
    assert terms["logit_mae"] == pytest.approx(logit_term, rel=1e-5)
    assert terms["bce"] == pytest.approx(bce, rel=1e-6)
    assert terms["kl"] == pytest.approx(kl, rel=1e-6)
    assert float(total) == pytest.approx(logit_term + gamma * bce + beta * kl, rel=1e-5)
    assert float(F.binary_cross_entropy(torch.as_tensor(x), torch.as_tensor(x))) > 0  # BCE(x, x) is not 0


def test_loss_shares_are_0_9_times_the_layer_normalized_voxels(showers):
    _, voxels, sizes = showers
    shares = loss_shares(voxels, sizes)
    layers = torch.stack([part.sum(1) for part in voxels.split(sizes, 1)], 1)
    expected = 0.9 * voxels / torch.repeat_interleave(layers + VAE_EPSILON_MEV, torch.tensor(sizes), dim=1)
    torch.testing.assert_close(shares, expected)
