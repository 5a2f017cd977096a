"""``calobench evaluate`` and the evaluation runner on tiny files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from calobench.cli.main import main
from calobench.formats import write_showers
from calobench.metrics.base import Metric
from calobench.metrics.presets import metric_settings
from calobench.plugins import PluginHost, set_host
from calobench.registry import Provider
from calobench.showers import Showers
from calobench.testing import random_showers, write_random_file

CHEAP = "separation_power,energy_response,layer_correlation,w1,fpd,kpd,prdc,intrinsic_dimension"
LAYER_MAPS = ("e_layer", "ec_eta", "ec_phi", "width_eta", "width_phi", "ec_r", "width_r", "sparsity")


def _ds1_file(path: Path, n: int, seed: int, scale: float = 1.0) -> Path:
    showers = random_showers("ds1-photons", n=n, seed=seed)
    energies = np.random.default_rng(seed).choice(2.0 ** np.arange(8, 23), n)
    voxels = showers.energies / showers.incident_energies[:, None] * energies[:, None] * scale
    return write_showers(path, Showers(energies, voxels.astype(np.float32), showers.geometry))


@pytest.fixture(scope="module")
def ds1_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("ds1")
    return _ds1_file(folder / "ref.h5", 400, 1), _ds1_file(folder / "gen.h5", 300, 2, scale=1.03)


def _report(out: Path) -> dict[str, Any]:
    return json.loads((out / "report.json").read_text())


def test_report_has_the_keys_of_the_issue(ds1_files, tmp_path, capsys) -> None:
    ref, gen = ds1_files
    out = tmp_path / "eval"
    status = main(
        [
            "evaluate",
            str(gen),
            "--reference",
            str(ref),
            "--preset",
            "smoke",
            "--metrics",
            CHEAP,
            "--seed",
            "3",
            "--no-plots",
            "--out",
            str(out),
        ]
    )
    assert status == 0, capsys.readouterr().err
    report = _report(out)
    assert report["schema_version"] == 1
    assert (report["geometry"], report["n_reference"], report["n_generated"]) == ("ds1-photons", 400, 300)
    assert (report["preset"], report["seed"], report["dataset"]) == ("smoke", 3, None)
    assert {"calobench_version", "git_revision", "torch_version", "device"} <= set(report["provenance"])
    powers = report["separation_power"]
    assert isinstance(powers["etot_einc"], float) and isinstance(powers["voxel"], float)
    for key in LAYER_MAPS:
        assert all(isinstance(k, str) for k in powers[key]) and powers[key]
        assert all(isinstance(v, float) for v in powers[key].values())
    assert set(powers["e_layer"]) == {"0", "1", "2", "3", "12"}
    assert powers["etot_einc_per_energy"] and all(k.isdigit() for k in powers["etot_einc_per_energy"])
    assert powers["etot_einc"] > 0.1  # 3 % energy scale
    assert set(report["classifier"]) == {"low", "low_normed", "high", "bdt_high", "cnn"}
    assert all(v is None for v in report["classifier"].values())
    for key in ("fpd", "kpd"):
        assert {"value", "error"} <= set(report[key])
    assert {"precision", "recall", "density", "coverage"} <= set(report["prdc"])
    for which in ("reference", "generated"):
        assert {"value", "error"} <= set(report["intrinsic_dimension"][which])
    assert report["metric_versions"]["separation_power"] == 2
    assert report["metrics"]["fpd"]["status"] == "ok"
    assert report["inputs"]["generated"][0]["md5"]
    assert len(report["energy_response"]["bins"]) >= 10
    markdown = (out / "report.md").read_text()
    assert "## Separation powers" in markdown and "## Classifiers" in markdown
    assert "sep E_tot/E_inc" in capsys.readouterr().out


def test_plots_are_written(ds1_files, tmp_path) -> None:
    ref, gen = ds1_files
    out = tmp_path / "eval"
    assert (
        main(
            [
                "evaluate",
                str(gen),
                "--reference",
                str(ref),
                "--preset",
                "smoke",
                "--metrics",
                "separation_power,energy_response,layer_correlation",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = _report(out)
    names = {Path(p).name for p in report["plots"]}
    assert {
        "etot_einc_and_voxels.png",
        "e_layer.png",
        "average_shower.png",
        "etot_einc_per_energy.png",
        "energy_response.png",
        "layer_correlation.png",
    } <= names
    for plot in report["plots"]:
        assert (out / plot).read_bytes()[:4] == b"\x89PNG"


def test_classifiers_integrate(ds1_files, tmp_path) -> None:
    ref, gen = ds1_files
    out = tmp_path / "eval"
    assert (
        main(
            [
                "evaluate",
                str(gen),
                "--reference",
                str(ref),
                "--preset",
                "smoke",
                "--metrics",
                "classifier",
                "--no-plots",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = _report(out)
    for mode in ("low", "low_normed", "high", "bdt_high"):
        entry = report["classifier"][mode]
        assert {"mean", "std", "runs"} <= set(entry["auc"]) and {"mean", "std", "runs"} <= set(entry["jsd"])
        assert 0.0 <= entry["auc"]["mean"] <= 1.0
    assert report["classifier"]["cnn"] is None
    assert report["metrics"]["classifier_cnn"]["status"] == "not_applicable"
    assert "does not apply" in (out / "report.md").read_text()


def test_mismatched_geometries_are_one_clear_error(tmp_path, capsys) -> None:
    ref = write_random_file(tmp_path / "ref.h5", "ds1-photons", n=20)
    gen = write_random_file(tmp_path / "gen.h5", "ds1-pions", n=20)
    assert main(["evaluate", str(gen), "--reference", str(ref), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "ds1-photons (368 voxels)" in err and "ds1-pions (533 voxels)" in err
    assert (
        main(["evaluate", str(gen), "--reference", str(ref), "--geometry", "ds1-pions", "--out", str(tmp_path / "o")])
        == 1
    )
    assert "reference sample" in capsys.readouterr().err


def test_unknown_metric_and_exclusive_options(ds1_files, tmp_path, capsys) -> None:
    ref, gen = ds1_files
    assert main(["evaluate", str(gen), "--reference", str(ref), "--metrics", "fpdd", "--out", str(tmp_path)]) == 1
    assert "did you mean 'fpd'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", str(gen), "--reference", str(ref), "--dataset", "x", "--geometry", "ds2", "--out", "o"])


def test_failed_metric_is_recorded_and_the_rest_runs(tmp_path) -> None:
    ref, gen = _ds1_file(tmp_path / "r.h5", 5, 1), _ds1_file(tmp_path / "g.h5", 5, 2)
    out = tmp_path / "eval"
    assert (
        main(
            [
                "evaluate",
                str(gen),
                "--reference",
                str(ref),
                "--preset",
                "smoke",
                "--metrics",
                "separation_power,prdc",
                "--no-plots",
                "--out",
                str(out),
            ]
        )
        == 1
    )
    report = _report(out)
    assert report["prdc"] is None and report["metrics"]["prdc"]["status"] == "failed"
    assert "more than 5 showers" in report["metrics"]["prdc"]["reason"]
    assert report["separation_power"] is not None


def test_dataset_sets_geometry_and_threshold(ds1_files, tmp_path) -> None:
    ref, gen = ds1_files
    out = tmp_path / "eval"
    assert (
        main(
            [
                "evaluate",
                str(gen),
                "--reference",
                str(ref),
                "--dataset",
                "synthetic-ds1-photons",
                "--preset",
                "smoke",
                "--metrics",
                "separation_power",
                "--no-plots",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = _report(out)
    assert report["dataset"] == "synthetic-ds1-photons" and report["threshold_mev"] == 1.0


def test_calogan_files_evaluate_with_plots(tmp_path) -> None:
    ref = write_random_file(tmp_path / "ref.h5", "calogan", n=60, seed=1)
    gen = write_random_file(tmp_path / "gen.h5", "calogan", n=50, seed=2)
    out = tmp_path / "eval"
    assert (
        main(
            [
                "evaluate",
                str(gen),
                "--reference",
                str(ref),
                "--preset",
                "smoke",
                "--metrics",
                "separation_power,w1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = _report(out)
    assert report["geometry"] == "calogan" and set(report["separation_power"]["ec_eta"]) == {"0", "1", "2"}
    assert "etot_einc_per_energy" not in report["separation_power"]


class _MeanRatio(Metric):
    name = "mean_energy_ratio"
    version = 7
    lower_is_better = True
    description = "|<E_tot> gen / <E_tot> ref - 1|"
    report_keys = ("mean_energy_ratio",)

    def compute(self, context):
        ref, gen = context.reference_features.e_tot, context.generated_features.e_tot
        return {"mean_energy_ratio": float(abs(gen.mean() / ref.mean() - 1))}


def test_a_plugin_metric_runs_and_is_versioned(ds1_files, tmp_path) -> None:
    host = PluginHost(entry_points=[])
    host.metrics.add("mean_energy_ratio", _MeanRatio(), Provider("myplugin", "my-dist", "1.0"))
    previous = set_host(host)
    try:
        out = tmp_path / "eval"
        ref, gen = ds1_files
        assert (
            main(
                [
                    "evaluate",
                    str(gen),
                    "--reference",
                    str(ref),
                    "--metrics",
                    "mean_energy_ratio",
                    "--no-plots",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
    finally:
        set_host(previous)
    report = _report(out)
    assert report["mean_energy_ratio"] > 0.01
    assert report["metric_versions"] == {"mean_energy_ratio": 7}
    assert "myplugin" in report["metrics"]["mean_energy_ratio"]["provider"]
    assert report["separation_power"] is None  # not selected, key still present


def test_in_memory_samples_are_capped_in_bytes() -> None:
    quick = metric_settings("quick")
    assert quick.cap(50_000, 368) == 50_000
    assert quick.cap(50_000, 40500) == quick.max_sample_bytes // (4 * 40500) < 10_000
