"""Classifier inputs: sizes and values as defined by the CaloChallenge protocol."""

from __future__ import annotations

import numpy as np
import pytest

from calobench.geometry import builtin_geometry
from calobench.metrics.classifier import high_level_inputs, low_level_inputs, n_inputs, pair_inputs
from calobench.metrics.classifier.inputs import ClassifierInputError
from calobench.metrics.features import compute_features
from calobench.testing import random_showers


@pytest.mark.parametrize(("name", "expected"), [("ds1-photons", 30), ("ds1-pions", 46), ("ds2", 362), ("ds3", 362)])
def test_high_level_input_counts_match_the_protocol(name: str, expected: int) -> None:
    assert n_inputs("high", builtin_geometry(name)) == expected


@pytest.mark.parametrize("name", ["ds1-photons", "ds1-pions", "ds2", "calogan"])
def test_high_level_inputs_fill_every_column(name: str) -> None:
    showers = random_showers(name, n=40, seed=1)
    features = compute_features(showers)
    x = high_level_inputs(features, showers.geometry)
    assert x.shape == (40, n_inputs("high", showers.geometry)) and x.dtype == np.float32
    scale = 100.0
    expected = np.concatenate(
        [
            np.log10(showers.incident_energies)[:, None],
            np.log10(features.e_layer + 1e-8),
            features.ec_eta / scale,
            features.ec_phi / scale,
            features.width_eta / scale,
            features.width_phi / scale,
            np.log10(features.e_tot + 1e-8)[:, None],
            features.sparsity,
            features.ec_r / scale,
            features.width_r / scale,
        ],
        axis=1,
    )
    np.testing.assert_allclose(x, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["ds1-photons", "ds2"])
def test_low_level_inputs_are_thresholded_voxels_over_incident_energy(name: str) -> None:
    showers = random_showers(name, n=30, seed=2, energy_range_mev=(300.0, 3000.0))
    threshold = showers.geometry.threshold
    x = low_level_inputs(showers)
    voxels = np.where(showers.energies >= threshold, showers.energies.astype(np.float64), 0.0)
    assert x.shape == (30, 1 + showers.geometry.n_voxels) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0], np.log10(showers.incident_energies), rtol=1e-6)
    np.testing.assert_allclose(x[:, 1:], voxels / showers.incident_energies[:, None], rtol=1e-6, atol=1e-12)
    assert np.count_nonzero((showers.energies > 0) & (showers.energies < threshold)) > 0  # the cut did something
    assert np.count_nonzero(x[:, 1:]) == np.count_nonzero(voxels)


def test_low_level_normed_inputs() -> None:
    showers = random_showers("ds1-pions", n=25, seed=3)
    geometry = showers.geometry
    x = low_level_inputs(showers, normed=True)
    assert x.shape == (25, 1 + geometry.n_voxels + geometry.n_layers)
    voxels = np.where(showers.energies >= geometry.threshold, showers.energies.astype(np.float64), 0.0)
    e_layer = geometry.layer_energies(voxels)
    for index, block in enumerate(geometry.layer_slices):
        part = x[:, 1 + block.start : 1 + block.stop].astype(np.float64)
        filled = e_layer[:, index] > 0
        np.testing.assert_allclose(part.sum(axis=1)[filled], 1.0, rtol=1e-5)
        np.testing.assert_array_equal(part[~filled], 0.0)
    np.testing.assert_allclose(x[:, 1 + geometry.n_voxels :], np.log10(e_layer + 1e-8), rtol=1e-6)


def test_explicit_threshold_overrides_the_geometry() -> None:
    showers = random_showers("ds1-photons", n=10, seed=4)
    x = low_level_inputs(showers, threshold=0.0)
    np.testing.assert_allclose(x[:, 1:], showers.energies / showers.incident_energies[:, None], rtol=1e-6)


@pytest.mark.parametrize("kind", ["low", "low_normed", "high"])
def test_pair_inputs_stack_reference_then_generated(kind: str) -> None:
    reference, generated = random_showers(n=12, seed=5), random_showers(n=9, seed=6)
    ref_rows, gen_rows = np.array([0, 3, 4, 11]), np.array([1, 2, 8, 5])
    features = (
        {
            "reference_features": compute_features(reference[ref_rows]),
            "generated_features": compute_features(generated[gen_rows]),
        }
        if kind == "high"
        else {}
    )
    x, y = pair_inputs(
        kind, reference, generated, threshold=None, reference_rows=ref_rows, generated_rows=gen_rows, **features
    )
    if kind == "high":
        expected_ref = high_level_inputs(features["reference_features"])
        expected_gen = high_level_inputs(features["generated_features"])
    else:
        expected_ref = low_level_inputs(reference[ref_rows], normed=kind == "low_normed")
        expected_gen = low_level_inputs(generated[gen_rows], normed=kind == "low_normed")
    np.testing.assert_array_equal(x, np.concatenate([expected_ref, expected_gen]))
    np.testing.assert_array_equal(y, np.repeat([1.0, 0.0], 4))


def test_pair_inputs_reject_mismatches() -> None:
    reference, generated = random_showers(n=8, seed=7), random_showers("ds1-pions", n=8, seed=8)
    with pytest.raises(ClassifierInputError, match="different geometries"):
        pair_inputs("low", reference, generated)
    other = random_showers(n=8, seed=9)
    with pytest.raises(ClassifierInputError, match="need the reference features"):
        pair_inputs("high", reference, other)
    with pytest.raises(ClassifierInputError, match="5 reference feature rows for 8 showers"):
        pair_inputs("high", reference, other, compute_features(reference[:5]), compute_features(other))
    bad = random_showers(n=8, seed=10)
    bad.incident_energies[3] = 0.0
    with pytest.raises(ClassifierInputError, match="incident energy 0.0 MeV of shower row 3"):
        pair_inputs("low", reference, bad)
    bad = random_showers(n=8, seed=10)
    bad.energies[2, 5] = np.nan
    with pytest.raises(ClassifierInputError, match="row 10 contain NaN"):
        pair_inputs("low", reference, bad)
