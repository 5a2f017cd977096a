"""The classifier test end to end on small simulated samples (fast; the 50k acceptance figures
live in tests/benchmarks/test_bench_classifier.py)."""

from __future__ import annotations

import numpy as np
import pytest

from calobench.errors import ConfigError
from calobench.metrics.classifier import (
    CLASSIFIER_MODES,
    ClassifierError,
    ClassifierResult,
    classifier_test,
)
from calobench.metrics.classifier.inputs import ClassifierInputError
from calobench.metrics.classifier.runner import equal_size_rows
from calobench.metrics.features import HighLevelFeatures, compute_features
from calobench.showers import Showers
from calobench.simulator.api import simulate
from calobench.simulator.spectra import incident_spectrum
from calobench.testing import random_showers, scale_energies, shuffle_within_layers

DATASET = "synthetic-ds1-photons"
N = 3000


def _simulate(n: int, seed: int, dataset: str = DATASET) -> Showers:
    return simulate(dataset, incident_spectrum(dataset, n, seed), seed)


@pytest.fixture(scope="module")
def samples() -> dict[str, Showers]:
    reference, other = _simulate(N, 11), _simulate(N, 12)
    return {
        "reference": reference,
        "other": other,
        "scaled": scale_energies(other, 1.25),
        "shuffled": shuffle_within_layers(other, 5),
    }


def _features(showers: Showers) -> HighLevelFeatures:
    return compute_features(showers)


@pytest.mark.parametrize("mode", ["low", "high"])
def test_identical_distributions_give_auc_near_one_half(samples: dict, mode: str) -> None:
    # 600 validation showers per class: one run's AUC has a null spread of about 0.017; the mean of
    # the quick preset's two runs is allowed 0.05 (about 3 sigma with the calibration's own noise).
    result = classifier_test(mode, samples["reference"], samples["other"], preset="quick", seed=1, progress=False)
    assert len(result.auc_runs) == 2 and result.n_per_class == N
    assert abs(result.auc - 0.5) < 0.05, result.auc_runs
    # log 2 - BCE of a calibrated classifier is a variational lower bound on the JSD, which is 0 here:
    # the estimate may fall well below 0 (validation showers beyond the isotonic fit's pure end blocks
    # get the clipped probability 1e-6), but it must not claim a separation that is not there.
    assert result.jsd < 0.05, result.jsd_runs


@pytest.mark.parametrize(("mode", "bound"), [("low", 0.9), ("high", 0.9), ("bdt_high", 0.9), ("low_normed", 0.75)])
def test_energy_scale_shift_is_detected(samples: dict, mode: str, bound: float) -> None:
    # low_normed sees the energy scale only through log10 E_layer, whose shower-to-shower spread is
    # much wider than that of E_tot: a weaker but still clear signal.
    result = classifier_test(
        mode, samples["reference"], samples["scaled"], preset="quick", n_runs=1, seed=2, progress=False
    )
    assert result.auc > bound, result.auc_runs
    assert result.jsd > 0.2, result.jsd_runs


@pytest.mark.parametrize("mode", ["low", "low_normed"])
def test_shuffled_layers_are_detected(samples: dict, mode: str) -> None:
    result = classifier_test(
        mode, samples["reference"], samples["shuffled"], preset="quick", n_runs=1, seed=3, progress=False
    )
    assert result.auc > 0.9, result.auc_runs


def test_same_seed_same_numbers_on_cpu(samples: dict) -> None:
    reference, other = samples["reference"][:600], samples["scaled"][:600]
    kwargs = {"preset": "smoke", "n_runs": 2, "device": "cpu", "progress": False}
    first = classifier_test("low", reference, other, seed=5, **kwargs)
    second = classifier_test("low", reference, other, seed=5, **kwargs)
    third = classifier_test("low", reference, other, seed=6, **kwargs)
    assert first.auc_runs == second.auc_runs and first.jsd_runs == second.jsd_runs
    assert first.auc_runs[0] != first.auc_runs[1]  # runs are independent
    assert third.auc_runs != first.auc_runs
    bdt = [classifier_test("bdt_high", reference, other, seed=5, **kwargs).auc_runs for _ in range(2)]
    assert bdt[0] == bdt[1]


def test_result_dictionary(samples: dict) -> None:
    result = classifier_test(
        "high", samples["reference"][:500], samples["other"][:700], preset="smoke", n_runs=2, progress=False
    )
    assert isinstance(result, ClassifierResult)
    data = result.to_dict()
    for score in ("auc", "jsd"):
        assert set(data[score]) == {"mean", "std", "runs"} and len(data[score]["runs"]) == 2
        assert data[score]["mean"] == pytest.approx(np.mean(data[score]["runs"]))
        assert data[score]["std"] == pytest.approx(np.std(data[score]["runs"]))
    assert data["n_per_class"] == 500 and data["n_inputs"] == 30 and data["mode"] == "high"
    assert data["device"] == "cpu" and data["preset"] == "smoke" and data["config"]["width"] == 64


def test_given_features_equal_computed_ones_and_subsampling(samples: dict) -> None:
    reference, other = samples["reference"][:900], samples["scaled"][:700]
    kwargs = {"preset": "smoke", "seed": 4, "progress": False}
    given = classifier_test(
        "high", reference, other, reference_features=_features(reference), generated_features=_features(other), **kwargs
    )
    computed = classifier_test("high", reference, other, **kwargs)
    assert given.auc_runs == computed.auc_runs and given.n_per_class == 700
    capped = classifier_test("low", reference, other, max_showers=300, **kwargs)
    assert capped.n_per_class == 300


def test_equal_size_rows() -> None:
    ref_rows, gen_rows = equal_size_rows(100, 40, seed=0)
    assert gen_rows is None and len(ref_rows) == 40 and len(np.unique(ref_rows)) == 40
    assert np.all(np.diff(ref_rows) > 0) and ref_rows.max() < 100
    ref_rows, gen_rows = equal_size_rows(100, 40, seed=0, max_showers=10)
    assert len(ref_rows) == len(gen_rows) == 10
    assert equal_size_rows(30, 30, seed=0) == (None, None)


@pytest.mark.parametrize(("dataset", "n"), [("synthetic-calogan-gamma", 400), ("synthetic-ds2", 200)])
def test_cnn_runs_on_image_geometries(dataset: str, n: int) -> None:
    reference, other = _simulate(n, 1, dataset), _simulate(n, 2, dataset)
    result = classifier_test(
        "cnn", reference, scale_energies(other, 3.0), preset="smoke", progress=False, config={"batch_size": 50}
    )
    assert 0.0 <= result.auc <= 1.0 and result.n_inputs == 1 + reference.geometry.n_voxels
    if dataset.endswith("gamma"):
        assert result.auc > 0.8  # a factor 3 in energy is visible even to a 2-epoch CNN


def test_errors_name_the_problem(samples: dict) -> None:
    reference, other = samples["reference"][:50], samples["other"][:50]
    with pytest.raises(ClassifierError, match="'cnn' does not apply to geometry ds1-photons"):
        classifier_test("cnn", reference, other, progress=False)
    with pytest.raises(ClassifierError, match="unknown classifier mode"):
        classifier_test("svm", reference, other, progress=False)
    with pytest.raises(ClassifierError, match="at least 10 showers"):
        classifier_test("low", reference[:5], other, progress=False)
    with pytest.raises(ConfigError, match="unknown classifier preset"):
        classifier_test("low", reference, other, preset="huge", progress=False)
    with pytest.raises(ConfigError, match="no config key 'widht'"):
        classifier_test("low", reference, other, config={"widht": 3}, progress=False)
    with pytest.raises(ClassifierInputError, match="different geometries"):
        classifier_test("low", reference, random_showers("ds1-pions", n=50), progress=False)
    with pytest.raises(ClassifierInputError, match="40 reference feature rows for 50 reference showers"):
        classifier_test("high", reference, other, reference_features=_features(reference[:40]), progress=False)
    assert set(CLASSIFIER_MODES) == {"low", "low_normed", "high", "bdt_high", "cnn"}
