"""CaloFlow's preprocessing: its constants, context units and post-processing (the shared transforms are
tested in tests/test_preprocessing.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from calobench_caloflow.preprocessing import (
    PUBLISHED,
    UNIT_MEV,
    add_noise,
    flow_i_context,
    flow_ii_context,
    flow_ii_to_voxels,
    layer_sums,
    logit,
    normalize_layers,
    voxels_to_flow_ii,
)

from calobench.testing import random_showers


def _showers(n=50, seed=0):
    showers = random_showers("ds1-photons", n, seed=seed, dtype=np.float64)
    return (
        torch.as_tensor(showers.incident_energies),
        torch.as_tensor(showers.energies),
        list(showers.geometry.layer_sizes),
    )


def test_flow_ii_round_trip_without_noise():
    incident, voxels, sizes = _showers(seed=1)
    conv = PUBLISHED["ds1-photons"]
    inputs, context = voxels_to_flow_ii(voxels, incident, sizes, conv, noise=False)
    assert inputs.shape == voxels.shape and context.shape == (len(voxels), 1 + len(sizes))
    back = flow_ii_to_voxels(inputs, layer_sums(voxels, sizes), sizes, threshold_mev=0.0)
    torch.testing.assert_close(back, voxels, rtol=1e-6, atol=1e-6)


def test_context_uses_caloflow_units():
    """DS1: log10(3 E_inc / 100 GeV) and log10(E_i / 100 GeV + 1e-8) - 1 (CaloFlow's unit is 100 GeV)."""
    incident = torch.tensor([256.0, 65536.0, 4194304.0], dtype=torch.float64)
    layers = torch.tensor([[0.0, 10.0], [100.0, 5e4], [1e3, 4e6]], dtype=torch.float64)
    context = flow_ii_context(incident, layers, PUBLISHED["ds1-photons"])
    in_units = incident.numpy() / 1e5
    np.testing.assert_allclose(context[:, 0].numpy(), np.log10(in_units * 3.0))
    np.testing.assert_allclose(context[:, 1:].numpy(), np.log10(layers.numpy() / 1e5 + 1e-8) - 1.0)
    calogan = flow_i_context(incident, PUBLISHED["calogan"])  # CaloGAN: log10(10 E_inc / 100 GeV)
    np.testing.assert_allclose(calogan[:, 0].numpy(), np.log10(in_units * 10.0))
    assert UNIT_MEV == 1e5


def test_normalization_noise_and_threshold():
    _, voxels, sizes = _showers(seed=2)
    normalized, sums = normalize_layers(voxels, sizes)
    torch.testing.assert_close(layer_sums(normalized, sizes), torch.ones_like(sums) * (sums > 0), atol=1e-9, rtol=0)
    noisy = add_noise(voxels, 1e-3, torch.Generator().manual_seed(0))
    assert ((noisy - voxels) >= 0).all() and ((noisy - voxels) < 1e-3).all() and (noisy != voxels).any()
    samples = logit(normalized)
    cut = flow_ii_to_voxels(samples, sums, sizes, threshold_mev=5.0)
    uncut = flow_ii_to_voxels(samples, sums, sizes, threshold_mev=0.0)
    assert torch.equal(cut, torch.where(uncut < 5.0, torch.zeros_like(uncut), uncut))


def test_postprocessing_is_the_published_one():
    """transform_to_energy + save_samples_to_file (run_gamma_2023.py:217-237, data_gamma.py:215-232):
    unclipped shares (sigmoid - a) / (1 - 2a), each layer over the sum of its absolute shares times its
    energy, clamped to [0, max], then the threshold."""
    sizes = [2, 3]
    alpha = 1e-6
    shares = torch.tensor([[0.25, 0.75, -1e-7, 0.5, 0.5]], dtype=torch.float64)
    samples = torch.logit(alpha + (1 - 2 * alpha) * shares)
    energies = torch.tensor([[0.02, 3e6]], dtype=torch.float64)
    voxels = flow_ii_to_voxels(samples, energies, sizes, threshold_mev=0.01, max_voxel_mev=1e6)
    total = 0.5 + 0.5 + 1e-7  # the negative share counts with its absolute value
    unclamped = torch.tensor(
        [[0.005, 0.015, -1e-7 / total * 3e6, 0.5 / total * 3e6, 0.5 / total * 3e6]], dtype=torch.float64
    )
    expected = unclamped.clamp(0.0, 1e6)  # 1.5 TeV voxels clamped to 1 TeV, the negative one to 0
    expected[0, 0] = 0.0  # 5 keV: below the 0.01 MeV threshold
    torch.testing.assert_close(voxels, expected, rtol=1e-9, atol=1e-12)
    assert expected[0, 3] == 1e6 and expected[0, 1] == pytest.approx(0.015)
    empty = flow_ii_to_voxels(torch.full((1, 5), -40.0, dtype=torch.float64), energies, sizes, threshold_mev=0.0)
    assert torch.isfinite(empty).all() and not empty.any(), "shares all below alpha: the layer comes out empty"


def test_pion_generation_context_uses_1e9():
    """The pion code builds the generation context with log10(E_i + 1e-9) - 1, training with 1e-8
    (run_piplus_2023.py:556-562 against 447-452); photons and CaloGAN with 1e-8 both times."""
    assert PUBLISHED["ds1-pions"].generation_epsilon == 1e-9
    assert PUBLISHED["ds1-photons"].generation_epsilon == PUBLISHED["calogan"].generation_epsilon == 1e-8
    incident, layers = torch.tensor([1e4], dtype=torch.float64), torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    context = flow_ii_context(incident, layers, PUBLISHED["ds1-pions"], PUBLISHED["ds1-pions"].generation_epsilon)
    np.testing.assert_allclose(context[0, 1:].numpy(), np.log10(np.array([0.0, 1e-5]) + 1e-9) - 1.0)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_conventions_are_in_mev(name):
    conv = PUBLISHED[name]
    assert conv.noise_flow2_mev == pytest.approx(1e-8 * 1e5) and conv.threshold_mev == 0.01
    assert conv.max_voxel_mev == (1e5 if name == "calogan" else 1e6)  # the clamp of save_samples_to_file
    assert conv.noise_flow1_mev == pytest.approx((1e-9 if name == "ds1-pions" else 1e-8) * 1e5)
    assert conv.noise_flow2_mev < conv.threshold_mev  # post-processing removes the dequantization noise
