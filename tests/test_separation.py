"""Separation powers: the definition against plain numpy, the binnings, and the streamed metric."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from calobench.formats import open_showers, write_showers
from calobench.geometry import builtin_geometry
from calobench.metrics import binning
from calobench.metrics.context import EvaluationContext
from calobench.metrics.features import compute_features
from calobench.metrics.scan import InMemorySource
from calobench.metrics.separation import (
    histogram_counts,
    null_separation_power,
    separation_power,
    separation_power_from_counts,
)
from calobench.metrics.separation_metric import SeparationPowerMetric, separation_powers
from calobench.showers import Showers
from calobench.testing import random_showers


def plain_separation_power(reference: np.ndarray, generated: np.ndarray, bins: np.ndarray) -> float:
    """The CaloChallenge formula with numpy's density histograms."""
    p, _ = np.histogram(reference, bins, density=True)
    q, _ = np.histogram(generated, bins, density=True)
    p, q = p * np.diff(bins), q * np.diff(bins)
    return 0.5 * float(np.sum((p - q) ** 2 / (p + q + 1e-16)))


@pytest.mark.parametrize("seed", range(5))
def test_matches_plain_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.normal(1.0, 0.3, 5000)
    generated = rng.normal(1.05, 0.35, 4000)
    for bins in (np.linspace(0.5, 1.5, 101), np.logspace(-1, 0.3, 40), np.linspace(0, 1, 21)):
        ours = separation_power(reference, generated, bins)
        assert abs(ours - plain_separation_power(reference, generated, bins)) < 1e-12


def test_float32_values_are_binned_like_numpy() -> None:
    rng = np.random.default_rng(1)
    values = rng.lognormal(0, 2, 20000).astype(np.float32)
    edges = np.logspace(np.log10(0.015), np.log10(float(values.max())), 50)
    values[:5] = edges[[0, 3, 10, 49, 49]]  # exactly on edges, the maximum included
    counts = histogram_counts(values, edges)
    np.testing.assert_array_equal(counts, np.histogram(values, edges)[0])


def test_known_answers() -> None:
    bins = np.linspace(0, 1, 11)
    x = np.random.default_rng(0).uniform(0, 1, 1000)
    assert separation_power(x, x, bins) == 0.0
    assert separation_power(x * 0.5, x * 0.5 + 0.5, bins) == pytest.approx(1.0, abs=1e-12)
    assert separation_power_from_counts([0, 0], [1, 2]) == 1.0
    assert math.isnan(separation_power_from_counts([0, 0], [0, 0]))
    assert separation_power(x, x + 5, bins) == 1.0  # generated entirely out of range


def test_out_of_range_entries_are_dropped_before_normalizing() -> None:
    bins = np.linspace(0, 1, 3)
    assert separation_power(np.array([0.25, 0.75]), np.array([0.25, 0.75, 7.0, -3.0]), bins) == 0.0


def test_null_expectation_matches_simulation() -> None:
    rng = np.random.default_rng(7)
    bins = np.linspace(-3, 3, 41)
    values = []
    for _ in range(300):
        ref, gen = histogram_counts(rng.normal(size=4000), bins), histogram_counts(rng.normal(size=2000), bins)
        values.append(separation_power_from_counts(ref, gen))
    null = null_separation_power(ref, gen)
    assert np.mean(values) == pytest.approx(null.mean, rel=0.1)
    assert np.std(values) == pytest.approx(null.std, rel=0.25)


def test_binnings_follow_the_protocol() -> None:
    ds1, pions, ds2 = (builtin_geometry(n) for n in ("ds1-photons", "ds1-pions", "ds2"))
    assert binning.linear_edges(ds2, "ec_eta", 7)[[0, -1]].tolist() == [-30, 30]
    assert binning.linear_edges(ds2, "width_phi", 7)[[0, -1]].tolist() == [0, 30]
    assert binning.linear_edges(ds2, "ec_r", 7)[-1] == 42 and binning.linear_edges(ds2, "width_r", 7)[-1] == 20
    assert len(binning.linear_edges(ds2, "ec_eta", 7)) == 101
    assert binning.linear_edges(ds1, "ec_eta", 12)[0] == -500 and binning.linear_edges(ds1, "ec_eta", 2)[0] == -100
    assert (
        binning.linear_edges(ds1, "width_eta", 12)[-1] == 400 and binning.linear_edges(ds1, "width_eta", 1)[-1] == 100
    )
    assert binning.linear_edges(pions, "ec_r", 14)[-1] == 1500 and binning.linear_edges(pions, "ec_eta", 14)[-1] == 100
    assert binning.linear_edges(ds1, "width_r", 3)[-1] == 500
    edges = binning.e_layer_edges(1.0, np.array([0.0, 5.0, 1234.0]))
    assert len(edges) == 40 and edges[0] == pytest.approx(1.0) and edges[-1] == pytest.approx(1234.0)
    assert binning.e_layer_edges(1.0, np.array([0.0, 0.5])) is None
    assert len(binning.voxel_edges(0.0151, 3e4, 0.0151)) == 50
    assert binning.per_energy_edges(ds1, 4096.0)[0] == 0.9 and binning.per_energy_edges(ds1, 2048.0)[0] == 0.4
    assert binning.per_energy_edges(pions, 65536.0)[0] == 0.4


def _ds1_showers(n: int, seed: int, scale: float = 1.0) -> Showers:
    showers = random_showers("ds1-photons", n=n, seed=seed)
    energies = np.random.default_rng(seed).choice(2.0 ** np.arange(8, 23), n)
    voxels = showers.energies / showers.incident_energies[:, None] * energies[:, None] * scale
    return Showers(energies, voxels.astype(np.float32), showers.geometry)


def plain_metric(reference: Showers, generated: Showers, threshold: float) -> dict:
    """Every separation power from whole in-memory arrays and numpy histograms."""
    geometry = reference.geometry
    f_ref, f_gen = compute_features(reference, threshold), compute_features(generated, threshold)
    out: dict = {
        "etot_einc": plain_separation_power(f_ref.etot_over_einc, f_gen.etot_over_einc, np.linspace(0.5, 1.5, 101))
    }
    # as the official script: the voxels keep their type (float32), and so does their maximum, whose
    # log10 is then taken in float32
    ref_vox = np.where(reference.energies < threshold, 0, reference.energies)
    gen_vox = np.where(generated.energies < threshold, 0, generated.energies)
    edges = np.logspace(np.log10(threshold), np.log10(ref_vox.max()), 50)
    out["voxel"] = plain_separation_power(ref_vox.ravel(), gen_vox.ravel(), edges)
    for column, layer in enumerate(geometry.layer_ids):
        top = f_ref.e_layer[:, column].astype(np.float32).max()
        edges = np.logspace(np.log10(threshold), np.log10(top), 40)
        out[("e_layer", layer)] = plain_separation_power(f_ref.e_layer[:, column], f_gen.e_layer[:, column], edges)
        out[("sparsity", layer)] = plain_separation_power(
            f_ref.sparsity[:, column], f_gen.sparsity[:, column], np.linspace(0, 1, 21)
        )
    return out


@pytest.mark.parametrize("force_second_pass", [False, True])
def test_streamed_metric_equals_in_memory_numpy(tmp_path, force_second_pass: bool) -> None:
    reference, generated = _ds1_showers(700, 1), _ds1_showers(500, 2, scale=1.02)
    write_showers(tmp_path / "ref.h5", reference)
    write_showers(tmp_path / "gen.h5", generated)
    with open_showers(tmp_path / "ref.h5") as ref, open_showers(tmp_path / "gen.h5") as gen:
        context = EvaluationContext(ref, gen, ref.geometry, 1.0, preset="smoke", chunk_size=97)
        if force_second_pass:
            context.settings = dataclasses.replace(context.settings, voxel_buffer_bytes=100)
        context.prepare([SeparationPowerMetric()])
        assert context.voxel_spectrum().second_pass is force_second_pass
        powers, nulls = separation_powers(context)
    expected = plain_metric(reference, generated, 1.0)
    assert abs(powers["etot_einc"] - expected["etot_einc"]) < 1e-12
    assert abs(powers["voxel"] - expected["voxel"]) < 1e-12
    for layer in reference.geometry.layer_ids:
        assert abs(powers["e_layer"][str(layer)] - expected[("e_layer", layer)]) < 1e-12
        assert abs(powers["sparsity"][str(layer)] - expected[("sparsity", layer)]) < 1e-12
    assert set(powers["ec_eta"]) == {"1", "2"}  # only layers binned in angle
    assert set(powers["etot_einc_per_energy"]) <= {str(2**k) for k in range(8, 23)}
    assert all(n["std"] is None or n["std"] > 0 for n in nulls["e_layer"].values())


def test_identical_samples_give_zero_everywhere() -> None:
    showers = _ds1_showers(400, 3)
    context = EvaluationContext(InMemorySource(showers), InMemorySource(showers), showers.geometry, 1.0, preset="smoke")
    context.prepare([SeparationPowerMetric()])
    powers, _ = separation_powers(context)
    values = [powers["etot_einc"], powers["voxel"]]
    for feature in binning.LAYER_FEATURES:
        values += [v for v in powers[feature].values() if v is not None]
    values += list(powers["etot_einc_per_energy"].values())
    assert values and all(v == 0.0 for v in values)


def test_no_per_energy_map_outside_dataset_1() -> None:
    showers = random_showers("ds2", n=50, seed=1)
    context = EvaluationContext(
        InMemorySource(showers), InMemorySource(showers), showers.geometry, showers.geometry.threshold, preset="smoke"
    )
    context.prepare([SeparationPowerMetric()])
    powers, _ = separation_powers(context)
    assert "etot_einc_per_energy" not in powers
    assert len(powers["e_layer"]) == 45 and len(powers["ec_eta"]) == 45


@pytest.mark.parametrize("threshold", [1.0, 0.5e-3 / 0.033, 0.1, 1e-7])
def test_threshold_in_the_file_dtype_equals_the_float64_comparison(threshold: float) -> None:
    from calobench.metrics.scan import threshold_voxels

    base = np.float32(threshold)
    near = np.array(
        [np.nextafter(base, np.float32(0)), base, np.nextafter(base, np.float32(1e9)), 0.0, 5.0], dtype=np.float32
    )
    for values in (near, near.astype(np.float64)):
        expected = np.where(values.astype(np.float64) >= threshold, values, 0)
        np.testing.assert_array_equal(threshold_voxels(values, threshold), expected)


def test_prefetched_iteration_keeps_order_and_raises_reader_errors() -> None:
    from calobench.metrics.scan import prefetched

    assert list(prefetched(iter(range(7)))) == list(range(7))

    def failing():
        yield 1
        raise ValueError("broken chunk")

    with pytest.raises(ValueError, match="broken chunk"):
        list(prefetched(failing()))
    consumer = prefetched(iter(range(100)), depth=1)
    assert next(consumer) == 0
    consumer.close()  # the reader thread stops although it still has items
