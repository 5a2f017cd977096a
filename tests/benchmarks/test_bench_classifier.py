"""Speed of the classifier test and its acceptance figures on simulated synthetic-ds1-photons showers.

Run with ``python -m pytest tests/benchmarks/test_bench_classifier.py --benchmark-only -s``
(minutes on 2 cores; the AUC and JSD are printed and stored in the benchmark JSON's ``extra_info``).

Timing:
* one quick-preset low-level run (one classifier, not the preset's two) on 2 x 10,000 showers;
* one paper-preset epoch (3 x 2048 DNN, batch 1000) on 2 x 10,000 showers, including the
  evaluation of the test and validation splits.

Acceptance (quick preset, its runs, two independent samples of 50,000 showers; each "generated"
sample is the second independent sample, perturbed):
* unperturbed: low-level AUC within 0.5 +- 0.03;
* voxel energies x 1.05: low- and high-level AUC > 0.85 and within 0.01 of the AUC of the
  per-energy likelihood ratio of E_tot / E_inc (histograms from half of each sample, AUC on the
  other half), which is what an optimal classifier reaches on this perturbation. It is about 0.87:
  the 5 % shift is 0.2 standard deviations of the response at 256 MeV and 5 at 1 TeV, and the low
  energies dominate dataset 1's spectrum, so the brief's bound of 0.9 is out of reach of any
  classifier here (recorded too: low_normed, bdt_high);
* each layer's voxels shuffled per shower: low-level AUC > 0.9.
"""

from __future__ import annotations

import json

import pytest

from calobench.metrics.classifier import classifier_test
from calobench.metrics.features import compute_features
from calobench.showers import Showers
from calobench.testing import (
    response_likelihood_auc,
    scale_energies,
    shuffle_within_layers,
    simulated_showers,
)

DATASET = "synthetic-ds1-photons"
N_TIMING = 10_000
N_ACCEPTANCE = 50_000


@pytest.fixture(scope="module")
def timing_samples() -> tuple[Showers, Showers]:
    return simulated_showers(DATASET, N_TIMING, 1), simulated_showers(DATASET, N_TIMING, 2)


@pytest.fixture(scope="module")
def acceptance_samples() -> dict[str, Showers]:
    reference, other = simulated_showers(DATASET, N_ACCEPTANCE, 101), simulated_showers(DATASET, N_ACCEPTANCE, 202)
    scaled = scale_energies(other, 1.05)
    return {
        "reference": reference,
        "independent": other,
        "scaled_1.05": scaled,
        "shuffled_layers": shuffle_within_layers(other, 7),
    }


def _record(benchmark, result) -> dict:
    data = result.to_dict()
    benchmark.extra_info.update(
        {"auc": data["auc"], "jsd": data["jsd"], "best_epochs": data["best_epochs"], "n_per_class": data["n_per_class"]}
    )
    print("\n" + json.dumps({"mode": data["mode"], "auc": data["auc"], "jsd": data["jsd"]}))
    return data


def test_bench_quick_run_2x10k(benchmark, timing_samples) -> None:
    reference, generated = timing_samples
    result = benchmark.pedantic(
        lambda: classifier_test("low", reference, generated, preset="quick", n_runs=1, device="cpu", progress=False),
        rounds=3,
        iterations=1,
    )
    assert abs(_record(benchmark, result)["auc"]["mean"] - 0.5) < 0.05


def test_bench_paper_epoch_2x10k(benchmark, timing_samples) -> None:
    reference, generated = timing_samples
    result = benchmark.pedantic(
        lambda: classifier_test(
            "low", reference, generated, preset="paper", n_runs=1, device="cpu", progress=False, config={"epochs": 1}
        ),
        rounds=1,
        iterations=1,
    )
    _record(benchmark, result)


@pytest.mark.parametrize(
    ("case", "mode", "bound"),
    [
        ("independent", "low", "null"),
        ("scaled_1.05", "low", "optimal"),
        ("scaled_1.05", "high", "optimal"),
        ("scaled_1.05", "low_normed", None),
        ("scaled_1.05", "bdt_high", None),
        ("shuffled_layers", "low", 0.9),
        ("shuffled_layers", "high", None),
    ],
)
def test_bench_acceptance_50k(benchmark, acceptance_samples, case: str, mode: str, bound) -> None:
    reference, generated = acceptance_samples["reference"], acceptance_samples[case]
    features = {}
    if mode in ("high", "bdt_high"):
        features = {
            "reference_features": compute_features(reference),
            "generated_features": compute_features(generated),
        }
    result = benchmark.pedantic(
        lambda: classifier_test(mode, reference, generated, preset="quick", seed=0, progress=False, **features),
        rounds=1,
        iterations=1,
    )
    benchmark.extra_info["case"] = case
    auc = _record(benchmark, result)["auc"]["mean"]
    if bound == "null":
        assert abs(auc - 0.5) < 0.03
    elif bound == "optimal":
        optimal = response_likelihood_auc(reference, generated)
        benchmark.extra_info["response_likelihood_auc"] = optimal
        print(json.dumps({"response_likelihood_auc": optimal}))
        assert auc > 0.85 and auc > optimal - 0.01
    elif bound is not None:
        assert auc > bound
