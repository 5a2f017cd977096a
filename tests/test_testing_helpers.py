"""The sample makers and the energy-response AUC that the metric tests rely on (calobench.testing)."""

from __future__ import annotations

import numpy as np
import pytest

from calobench.testing import response_likelihood_auc, scale_energies, shuffle_within_layers, simulated_showers

DATASET = "synthetic-ds1-photons"


@pytest.fixture(scope="module")
def pair():
    return simulated_showers(DATASET, 3000, 1), simulated_showers(DATASET, 3000, 2)


def test_simulated_showers_are_seeded(pair) -> None:
    again = simulated_showers(DATASET, 3000, 1)
    np.testing.assert_array_equal(again.energies, pair[0].energies)
    assert not np.array_equal(pair[0].energies, pair[1].energies)


def test_shuffle_keeps_layer_energies_and_changes_voxels(pair) -> None:
    showers = pair[0]
    shuffled = shuffle_within_layers(showers, seed=3)
    for block in showers.geometry.layer_slices:
        np.testing.assert_allclose(shuffled.energies[:, block].sum(1), showers.energies[:, block].sum(1), rtol=1e-5)
        np.testing.assert_array_equal(np.sort(shuffled.energies[:, block], 1), np.sort(showers.energies[:, block], 1))
    assert not np.array_equal(shuffled.energies, showers.energies)


def test_scale_energies_scales_only_voxels(pair) -> None:
    scaled = scale_energies(pair[0], 1.1)
    np.testing.assert_allclose(scaled.total_energy(), 1.1 * pair[0].total_energy(), rtol=1e-5)
    np.testing.assert_array_equal(scaled.incident_energies, pair[0].incident_energies)


def test_response_auc_is_half_for_one_distribution_and_grows_with_the_scale(pair) -> None:
    reference, other = pair
    null = response_likelihood_auc(reference, other)
    small, large = (response_likelihood_auc(reference, scale_energies(other, f)) for f in (1.05, 1.3))
    assert abs(null - 0.5) < 0.04
    assert null < small < large
    assert large > 0.95
