"""Acceptance figures of calobench issue 4 on simulated synthetic-ds1-photons samples (slow: minutes).

Run with ``python -m pytest tests/test_metrics_acceptance.py -m slow -s``; the figures are printed as
JSON. Skipped unless the ``slow`` marker is selected explicitly.

* two independent 50,000-shower samples: every separation power below 3e-3 (features and voxel
  spectrum; the dataset-1 per-energy E_tot/E_inc histograms hold 400 - 4,000 showers each and sit at
  their own statistical floor, printed but not bounded), the quick DNN low-level AUC within
  0.5 +- 0.03, FPD consistent with zero within 3 errors;
* the reference against the same sample with voxel energies scaled by 1.05: S(E_tot/E_inc) > 0.1
  and classifier AUC > 0.9; against a sample with each layer's voxels shuffled: low-level AUC > 0.9.

Measured (2 CPU cores; 15 min): max S 1.2e-3 (width_phi layer 2), quick low-level AUC
0.496 +- 0.001, FPD (quick) 3.1e-4 +- 1.2e-4; 1.05 scale: S(E_tot/E_inc) 0.315, low-level AUC 0.868,
high-level AUC 0.872, BDT high-level AUC 0.869; shuffled layers: AUC 0.9992. The 0.9 AUC of the issue is out of reach on
this detector: its E_tot/E_inc resolution is 24 % at 256 MeV (per-energy AUC of E_tot/E_inc alone
0.55) and 1 % above 100 GeV (0.99); the E_tot/E_inc likelihood ratio given E_inc alone reaches 0.868
(`test_energy_response_alone_bounds_the_scale_auc`) and two different classifiers agree at 0.87, so
the test bounds that AUC at 0.85. The FPD of two finite samples does not vanish: the extrapolation removes the batch
noise, not the samples' own; 3e-4 at 50k agrees with the published GEANT4-vs-GEANT4 1.19e-4 at 121k
scaled by 121/50.
"""

from __future__ import annotations

import json

import pytest

from calobench.evaluation.runner import run_metrics, select_metrics
from calobench.metrics.binning import LAYER_FEATURES
from calobench.metrics.context import EvaluationContext
from calobench.metrics.scan import InMemorySource
from calobench.showers import Showers
from calobench.testing import (
    response_likelihood_auc,
    scale_energies,
    shuffle_within_layers,
    simulated_showers,
)

pytestmark = pytest.mark.slow
N = 50_000
DATASET = "synthetic-ds1-photons"


@pytest.fixture(autouse=True)
def _only_when_selected(request: pytest.FixtureRequest) -> None:
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("acceptance figures take minutes: run with -m slow")


def _simulate(seed: int) -> Showers:
    return simulated_showers(DATASET, N, seed)


def _evaluate(reference: Showers, generated: Showers, metrics: str, preset: str = "quick") -> dict:
    context = EvaluationContext(
        InMemorySource(reference),
        InMemorySource(generated),
        reference.geometry,
        1.0,
        preset=preset,
        seed=0,
        dataset=DATASET,
    )
    sections, outcomes = run_metrics(context, select_metrics(metrics))
    assert all(o.status == "ok" for o in outcomes), [(o.name, o.reason) for o in outcomes]
    return sections


def _all_powers(powers: dict) -> dict[str, float]:
    values = {"etot_einc": powers["etot_einc"], "voxel": powers["voxel"]}
    for feature in LAYER_FEATURES:
        values.update({f"{feature}[{layer}]": v for layer, v in powers[feature].items() if v is not None})
    return values


def test_acceptance_figures() -> None:
    reference, other = _simulate(101), _simulate(202)
    figures: dict = {}

    same = _evaluate(reference, other, "separation_power,fpd,classifier_low", preset="quick")
    powers = _all_powers(same["separation_power"])
    figures["independent"] = {
        "max_separation_power": max(powers.values()),
        "argmax": max(powers, key=powers.get),
        "etot_einc": powers["etot_einc"],
        "voxel": powers["voxel"],
        "per_energy": same["separation_power"]["etot_einc_per_energy"],
        "fpd": same["fpd"]["value"],
        "fpd_error": same["fpd"]["error"],
        "auc_low": same["classifier"]["low"]["auc"],
    }
    scaled = scale_energies(other, 1.05)
    shifted = _evaluate(reference, scaled, "separation_power,classifier_low,classifier_high,classifier_bdt_high")
    figures["scaled_1.05"] = {
        "etot_einc": shifted["separation_power"]["etot_einc"],
        "auc_low": shifted["classifier"]["low"]["auc"],
        "auc_high": shifted["classifier"]["high"]["auc"],
        "auc_bdt_high": shifted["classifier"]["bdt_high"]["auc"],
    }

    shuffled = _evaluate(reference, shuffle_within_layers(other, 7), "separation_power,classifier_low")
    figures["shuffled_layers"] = {
        "auc_low": shuffled["classifier"]["low"]["auc"],
        "e_layer_max": max(shuffled["separation_power"]["e_layer"].values()),
    }
    print(json.dumps(figures, indent=1))

    independent = figures["independent"]
    assert independent["max_separation_power"] < 3e-3, independent["argmax"]
    assert abs(independent["auc_low"]["mean"] - 0.5) < 0.03
    assert independent["fpd"] < 3 * independent["fpd_error"]
    assert figures["scaled_1.05"]["etot_einc"] > 0.1
    assert figures["scaled_1.05"]["auc_low"]["mean"] > 0.85  # the issue asks 0.9: see the module docstring
    assert figures["scaled_1.05"]["auc_high"]["mean"] > 0.85
    assert figures["scaled_1.05"]["auc_bdt_high"]["mean"] > 0.85
    assert figures["shuffled_layers"]["auc_low"]["mean"] > 0.9


def test_energy_response_alone_bounds_the_scale_auc() -> None:
    """The 1.05-scale AUC the energy response alone allows on this detector (measured: 0.868)."""
    reference, other = _simulate(101), _simulate(202)
    scaled = scale_energies(other, 1.05)
    auc = response_likelihood_auc(reference, scaled)
    print(json.dumps({"etot_einc_likelihood_ratio_auc": auc}))
    assert 0.8 < auc < 0.9
    assert abs(response_likelihood_auc(reference, other) - 0.5) < 0.02
