"""``calobench validate-metrics``: simulated reference, independent reference and perturbed samples."""

from __future__ import annotations

import json

import pytest

from calobench.cli.main import main
from calobench.evaluation.validation import _detected


def test_detection_rules() -> None:
    base = {"value": 0.01, "error": 0.002}
    assert _detected("sep E_tot/E_inc", {"value": 0.03, "error": 0.002, "direction": 1}, base)
    assert not _detected("sep E_tot/E_inc", {"value": 0.015, "error": 0.002, "direction": 1}, base)
    assert not _detected("FPD", {"value": -0.5, "error": 0.002, "direction": 1}, base)  # better, not worse
    assert _detected("ID gen - ref", {"value": -0.5, "error": 0.01, "direction": 0}, {"value": 0.0, "error": 0.01})
    assert _detected("precision", {"value": 0.6, "error": None, "direction": -1}, {"value": 0.7, "error": None})
    assert not _detected("precision", {"value": 0.8, "error": None, "direction": -1}, {"value": 0.7, "error": None})
    assert _detected("W1/std (mean)", {"value": 0.3, "error": None}, {"value": 0.1, "error": None})
    assert _detected("sep voxel", {"value": None}, base) is None
    assert _detected("sep voxel", {"value": 3e-5, "error": None}, {"value": 1e-5, "error": None})
    assert not _detected("sep voxel", {"value": 1.5e-5, "error": None}, {"value": 1e-5, "error": None})


def test_cli_writes_table_json_and_plot(tmp_path, capsys) -> None:
    out = tmp_path / "validation"
    status = main(
        [
            "validate-metrics",
            "--dataset",
            "synthetic-ds1-photons",
            "--showers",
            "400",
            "--perturbations",
            "energy_scale",
            "--strengths",
            "0.02,0.3",
            "--metrics",
            "separation_power,energy_response,fpd",
            "--preset",
            "smoke",
            "--out",
            str(out),
        ]
    )
    assert status == 0, capsys.readouterr().err
    data = json.loads((out / "validation.json").read_text())
    assert data["dataset"] == "synthetic-ds1-photons" and data["n_showers"] == 400
    assert [(r["perturbation"], r["strength"]) for r in data["results"]] == [
        ("energy_scale", 0.02),
        ("energy_scale", 0.3),
    ]
    strong = data["results"][1]["scalars"]
    assert strong["sep E_tot/E_inc"]["detected"] is True
    assert strong["response shift"]["value"] == pytest.approx(0.3, abs=0.05)
    assert "sep E_tot/E_inc" in data["reference_vs_reference"]
    markdown = (out / "validation.md").read_text()
    assert "## energy_scale" in markdown and "Smallest detected strength" in markdown
    assert (out / "validation.png").read_bytes()[:4] == b"\x89PNG"


def test_real_data_sets_are_refused(capsys) -> None:
    assert main(["validate-metrics", "--dataset", "calochallenge-ds2", "--out", "unused"]) == 1
    assert "synthetic" in capsys.readouterr().err
