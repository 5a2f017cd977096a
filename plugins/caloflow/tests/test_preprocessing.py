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

from calobench.geometry import builtin_geometry
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


def test_postprocessing_handles_an_all_zero_layer():
    sizes = list(builtin_geometry("ds1-photons").layer_sizes)
    samples = torch.full((2, sum(sizes)), -40.0, dtype=torch.float64)  # sigmoid ~ 0 everywhere
    energies = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]] * 2, dtype=torch.float64)
    voxels = flow_ii_to_voxels(samples, energies, sizes, threshold_mev=0.0)
    assert torch.isfinite(voxels).all()
    torch.testing.assert_close(layer_sums(voxels, sizes), energies)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_conventions_are_in_mev(name):
    conv = PUBLISHED[name]
    assert conv.noise_flow2_mev == pytest.approx(1e-8 * 1e5) and conv.threshold_mev == 0.01
    assert conv.noise_flow2_mev < conv.threshold_mev  # post-processing removes the dequantization noise
