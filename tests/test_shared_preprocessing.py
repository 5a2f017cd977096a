"""The shared preprocessing transforms (calobench.preprocessing): each one and its inverse."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from calobench.preprocessing import (
    DEFAULT_ALPHA,
    add_noise,
    apply_threshold,
    energies_to_u,
    expand_layers,
    inverse_logit,
    layer_sums,
    logit,
    normalize_layers,
    renormalize_layers,
    u_to_energies,
)
from calobench.testing import random_showers


def _showers(n=50, seed=0):
    showers = random_showers("ds1-photons", n, seed=seed, dtype=np.float64)
    return (
        torch.as_tensor(showers.incident_energies),
        torch.as_tensor(showers.energies),
        list(showers.geometry.layer_sizes),
    )


def test_u_space_definition_and_round_trip():
    incident, voxels, sizes = _showers()
    layers = layer_sums(voxels, sizes)
    u = energies_to_u(layers, incident, 2.42)
    assert u.shape == layers.shape and (u >= 0).all() and (u <= 1).all()
    torch.testing.assert_close(u[:, 0], layers.sum(1) / (2.42 * incident))
    torch.testing.assert_close(u[:, 1], layers[:, 0] / layers.sum(1))
    torch.testing.assert_close(u[:, 2], layers[:, 1] / layers[:, 1:].sum(1))
    torch.testing.assert_close(u_to_energies(u, incident, 2.42), layers, rtol=1e-12, atol=1e-9)


def test_u_space_of_empty_layers_stays_finite():
    layers = torch.tensor([[0.0, 0.0, 5.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    incident = torch.tensor([10.0, 10.0], dtype=torch.float64)
    u = energies_to_u(layers, incident)
    assert torch.isfinite(u).all()
    torch.testing.assert_close(u_to_energies(u, incident), layers)


def test_empty_tail_sets_the_undefined_fractions_and_moves_leftovers_to_the_first_empty_layer():
    layers = torch.tensor([[1.0, 2.0, 0.0, 0.0], [1.0, 0.0, 0.0, 3.0], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    incident = torch.full((3,), 10.0, dtype=torch.float64)
    last, first = energies_to_u(layers, incident), energies_to_u(layers, incident, empty_tail=1.0)
    # only the 0 / 0 fractions (layer and everything behind it empty) differ; genuine zeros stay
    assert last[:, 1:].tolist() == [[1 / 3, 1.0, 0.0], [0.25, 0.0, 0.0], [0.0, 0.0, 0.0]]
    assert first[:, 1:].tolist() == [[1 / 3, 1.0, 1.0], [0.25, 0.0, 0.0], [1.0, 1.0, 1.0]]
    for u in (last, first):
        torch.testing.assert_close(u_to_energies(u, incident), layers)
    # a generated u_2 slightly below 1 leaves energy over: the last layer gets it, or the first empty one
    leftover = torch.tensor([[0.3, 1 / 3, 0.999]], dtype=torch.float64)
    for tail, layer in ((last[:1, 3:], 3), (first[:1, 3:], 2)):
        energies = u_to_energies(torch.cat([leftover, tail], dim=1), incident[:1])[0]
        assert energies[layer] > 0 and energies[2:].sum() == pytest.approx(0.002)


def test_u0_may_stay_above_one_when_the_total_is_not_clipped():
    layers = torch.tensor([[3.0, 1.0, 0.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    incident = torch.tensor([2.0, 10.0], dtype=torch.float64)
    assert energies_to_u(layers, incident)[:, 0].tolist() == [1.0, 0.3]
    u = energies_to_u(layers, incident, clip_total=False)
    assert u[:, 0].tolist() == [2.0, 0.3] and (u[:, 1:] <= 1).all()
    torch.testing.assert_close(u_to_energies(u, incident), layers)


def test_logit_round_trip_and_bounds():
    x = torch.tensor([0.0, 1e-9, 0.3, 1.0], dtype=torch.float64)
    y = logit(x)
    torch.testing.assert_close(y[0], torch.log(torch.tensor(DEFAULT_ALPHA / (1 - DEFAULT_ALPHA), dtype=torch.float64)))
    assert torch.allclose(y[3], -y[0])
    torch.testing.assert_close(inverse_logit(y), x, atol=1e-12, rtol=1e-9)
    assert inverse_logit(torch.tensor([-50.0, 50.0])).tolist() == [0.0, 1.0]
    torch.testing.assert_close(inverse_logit(logit(x, 0.05), 0.05), x)


def test_layer_normalization_round_trip():
    _, voxels, sizes = _showers(seed=1)
    normalized, sums = normalize_layers(voxels, sizes)
    nonempty = sums > 0
    torch.testing.assert_close(layer_sums(normalized, sizes), nonempty.to(sums.dtype))
    torch.testing.assert_close(renormalize_layers(normalized, sums, sizes), voxels)
    assert expand_layers(sums, sizes).shape == voxels.shape


def test_renormalize_spreads_an_empty_layer_evenly_and_ignores_negative_shares():
    shares = torch.tensor([[0.0, 0.0, -1.0, 3.0, 1.0]])
    energies = renormalize_layers(shares, torch.tensor([[4.0, 8.0]]), [2, 3])
    torch.testing.assert_close(energies, torch.tensor([[2.0, 2.0, 0.0, 6.0, 2.0]]))


def test_renormalize_can_drop_the_energy_of_an_empty_layer():
    """CaloINN's ``shares * E / (sum + eps)``: a layer whose shares are all 0 loses its energy."""
    shares = torch.tensor([[0.0, 0.0, -1.0, 3.0, 1.0]])
    energies = renormalize_layers(shares, torch.tensor([[4.0, 8.0]]), [2, 3], empty_layers="drop")
    torch.testing.assert_close(energies, torch.tensor([[0.0, 0.0, 0.0, 6.0, 2.0]]))
    with pytest.raises(ValueError, match="empty_layers"):
        renormalize_layers(shares, torch.tensor([[4.0, 8.0]]), [2, 3], empty_layers="keep")


def test_noise_width_and_threshold():
    voxels = torch.zeros(1000, 4, dtype=torch.float64)
    noisy = add_noise(voxels, 0.5, torch.Generator().manual_seed(0))
    assert (noisy >= 0).all() and (noisy < 0.5).all() and noisy.std() > 0.1
    assert add_noise(voxels, 0.0) is voxels
    out = apply_threshold(torch.tensor([-1.0, 0.004, 0.01, 2.0], dtype=torch.float64), 0.01)
    assert out.tolist() == [0.0, 0.0, 0.01, 2.0]
