"""CaloMan's preprocessing: the layer-energy flow's inputs, the VAE's shower spaces and the label."""

from __future__ import annotations

import pytest
import torch
from calobench_caloman.preprocessing import (
    Conventions,
    epl_context,
    epl_to_layers,
    label,
    layers_to_epl,
    logit_u,
    raw_label,
    scaling,
    showers_to_vae,
    u0_scale_for,
    vae_to_showers,
)
from caloman_data import tiny_showers

from calobench.preprocessing import layer_sums


def _data():
    showers = tiny_showers(n=64)
    incident = torch.as_tensor(showers.incident_energies, dtype=torch.float64)
    voxels = torch.as_tensor(showers.energies, dtype=torch.float64)
    return showers, incident, voxels


@pytest.mark.parametrize("how", ["absmax", "standardize"])
def test_layer_energies_round_trip(how):
    showers, incident, voxels = _data()
    layers = layer_sums(voxels, showers.geometry.layer_sizes)
    shift, scale = scaling(logit_u(layers, incident, 3.1), how)
    conventions = Conventions(u0_scale=3.1, epl_shift=shift.tolist(), epl_scale=scale.tolist())
    values = layers_to_epl(layers, incident, conventions)
    if how == "absmax":
        assert values.abs().max() == pytest.approx(1.0)
    else:
        torch.testing.assert_close(values.mean(0), torch.zeros(5, dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(epl_to_layers(values, incident, conventions), layers, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(epl_context(incident)[:, 0], torch.log10(incident / 33.3e3))


@pytest.mark.parametrize("space", ["normalized", "logit"])
def test_showers_round_trip(space):
    showers, _, voxels = _data()
    sizes = showers.geometry.layer_sizes
    x, layers = showers_to_vae(voxels, sizes, space)
    if space == "normalized":
        torch.testing.assert_close(layer_sums(x, sizes), (layers > 0).to(x.dtype))  # empty layers stay 0
    else:
        assert x.min() >= -14 and x.max() <= 14
    back = vae_to_showers(x, layers, sizes, Conventions(space=space, threshold_mev=0.0))
    torch.testing.assert_close(back, voxels, rtol=1e-5, atol=1e-3)
    cut = vae_to_showers(x, layers, sizes, Conventions(space=space, threshold_mev=50.0))
    assert ((cut == 0) | (cut >= 50.0)).all()


def test_label_is_calomans_standardized():
    showers, incident, voxels = _data()
    layers = layer_sums(voxels, showers.geometry.layer_sizes)
    raw = raw_label(incident, layers)
    torch.testing.assert_close(raw[:, 0], torch.log10(incident + 1e-3))
    torch.testing.assert_close(raw[:, 1:], torch.log10((layers + 1e-3) / 1e5) - 1.0)
    conventions = Conventions(label_mean=raw.mean(0).tolist(), label_std=raw.std(0).tolist())
    standardized = label(incident, layers, conventions)
    torch.testing.assert_close(standardized.std(0), torch.ones(6, dtype=torch.float64))


def test_u0_scale_published_or_from_data():
    assert u0_scale_for("ds1-photons", 2.0) == 3.1
    assert u0_scale_for("ds1-photons", 3.1) == pytest.approx(3.41)
    assert u0_scale_for("calogan", 1.0) == pytest.approx(1.1)
