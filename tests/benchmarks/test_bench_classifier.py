"""Speed of the classifier test and its acceptance figures on simulated synthetic-ds1-photons showers.

Run with ``python -m pytest tests/benchmarks/test_bench_classifier.py --benchmark-only -s``
(minutes on 2 cores; the AUC and JSD are printed and stored in the benchmark JSON's ``extra_info``).

Timing:
* one quick-preset low-level run (one classifier, not the preset's three) on 2 x 10,000 showers;
* one paper-preset epoch (3 x 2048 DNN, batch 1000) on 2 x 10,000 showers, including the
  evaluation of the test and validation splits.

Acceptance (quick preset, 3 runs, two independent samples of 50,000 showers; each "generated"
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

import numpy as np
import pytest

from calobench.metrics.classifier import classifier_test
from calobench.metrics.features import compute_features
from calobench.showers import Showers

DATASET = "synthetic-ds1-photons"
N_TIMING = 10_000
N_ACCEPTANCE = 50_000


def _simulate(n: int, seed: int) -> Showers:
    from calobench.simulator.api import simulate
    from calobench.simulator.spectra import incident_spectrum

    return simulate(DATASET, incident_spectrum(DATASET, n, seed), seed)


def _shuffle_layers(showers: Showers, seed: int) -> Showers:
    rng = np.random.default_rng(seed)
    energies = showers.energies.copy()
    for block in showers.geometry.layer_slices:
        layer = energies[:, block]
        energies[:, block] = np.take_along_axis(layer, np.argsort(rng.random(layer.shape), axis=1), axis=1)
    return Showers(showers.incident_energies, energies, showers.geometry)


@pytest.fixture(scope="module")
def timing_samples() -> tuple[Showers, Showers]:
    return _simulate(N_TIMING, 1), _simulate(N_TIMING, 2)


@pytest.fixture(scope="module")
def acceptance_samples() -> dict[str, Showers]:
    reference, other = _simulate(N_ACCEPTANCE, 101), _simulate(N_ACCEPTANCE, 202)
    scaled = Showers(other.incident_energies, other.energies * np.float32(1.05), other.geometry)
    return {"reference": reference, "independent": other, "scaled_1.05": scaled,
            "shuffled_layers": _shuffle_layers(other, 7)}


def response_likelihood_auc(reference: Showers, generated: Showers, seed: int = 0, n_bins: int = 60) -> float:
    """AUC of the histogram likelihood ratio of E_tot / E_inc at each incident energy (dataset 1's
    energies are discrete): densities from one half of each sample, AUC on the other half."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    halves = []
    for showers in (reference, generated):
        order = rng.permutation(len(showers))
        ratio = showers.total_energy() / showers.incident_energies
        halves.append([(ratio[rows], showers.incident_energies[rows]) for rows in np.array_split(order, 2)])
    (ref_fit, ref_eval), (gen_fit, gen_eval) = halves
    scores = []
    for ratio, energy in (ref_eval, gen_eval):
        llr = np.zeros(len(ratio))
        for value in np.unique(energy):
            fit_ref, fit_gen = ref_fit[0][ref_fit[1] == value], gen_fit[0][gen_fit[1] == value]
            edges = np.linspace(*np.percentile(np.concatenate([fit_ref, fit_gen]), [0.05, 99.95]), n_bins + 1)
            density_ref = np.histogram(fit_ref, edges)[0] + 0.5
            density_gen = np.histogram(fit_gen, edges)[0] + 0.5
            here = energy == value
            index = np.clip(np.searchsorted(edges, ratio[here]) - 1, 0, n_bins - 1)
            llr[here] = np.log(density_ref[index] / density_ref.sum()) - np.log(density_gen[index] / density_gen.sum())
        scores.append(llr)
    labels = np.concatenate([np.ones(len(scores[0])), np.zeros(len(scores[1]))])
    return float(roc_auc_score(labels, np.concatenate(scores)))


def _record(benchmark, result) -> dict:
    data = result.to_dict()
    benchmark.extra_info.update({"auc": data["auc"], "jsd": data["jsd"], "best_epochs": data["best_epochs"],
                                 "n_per_class": data["n_per_class"]})
    print("\n" + json.dumps({"mode": data["mode"], "auc": data["auc"], "jsd": data["jsd"]}))
    return data


def test_bench_quick_run_2x10k(benchmark, timing_samples) -> None:
    reference, generated = timing_samples
    result = benchmark.pedantic(lambda: classifier_test("low", reference, generated, preset="quick", n_runs=1,
                                                        device="cpu", progress=False), rounds=3, iterations=1)
    assert abs(_record(benchmark, result)["auc"]["mean"] - 0.5) < 0.05


def test_bench_paper_epoch_2x10k(benchmark, timing_samples) -> None:
    reference, generated = timing_samples
    result = benchmark.pedantic(lambda: classifier_test("low", reference, generated, preset="paper", n_runs=1,
                                                        device="cpu", progress=False, config={"epochs": 1}),
                                rounds=1, iterations=1)
    _record(benchmark, result)


@pytest.mark.parametrize(("case", "mode", "bound"), [
    ("independent", "low", "null"),
    ("scaled_1.05", "low", "optimal"),
    ("scaled_1.05", "high", "optimal"),
    ("scaled_1.05", "low_normed", None),
    ("scaled_1.05", "bdt_high", None),
    ("shuffled_layers", "low", 0.9),
    ("shuffled_layers", "high", None),
])
def test_bench_acceptance_50k(benchmark, acceptance_samples, case: str, mode: str, bound) -> None:
    reference, generated = acceptance_samples["reference"], acceptance_samples[case]
    features = {}
    if mode in ("high", "bdt_high"):
        features = {"reference_features": compute_features(reference),
                    "generated_features": compute_features(generated)}
    result = benchmark.pedantic(lambda: classifier_test(mode, reference, generated, preset="quick", seed=0,
                                                        progress=False, **features), rounds=1, iterations=1)
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
