"""Leaderboard runs end to end on a tiny suite: results, failures, resumption and rendering."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from calobench_example import MeanShower

from calobench.cli.main import main
from calobench.datasets import DatasetSpec, FileSpec
from calobench.errors import ConfigError, RegistryError
from calobench.formats import write_showers
from calobench.leaderboard import runner as runner_module
from calobench.leaderboard.render import render_suite, stale_files, write_page
from calobench.leaderboard.runner import SuitePaths, ordered_models, run_suite, suite_metric_names
from calobench.leaderboard.suites import SuiteError, load_suite
from calobench.plugins import PluginHost, set_host
from calobench.registry import Provider
from calobench.results import read_result, read_results
from calobench.simulator import incident_spectrum, simulate

DATASET = "synthetic-lbtest"


def _maker(spec, file, path, n_showers=None, seed=None):
    n = n_showers or file.n_showers
    seed = file.seed if seed is None else seed
    energies = incident_spectrum("synthetic-ds1-photons", n, seed=seed)
    write_showers(path, simulate("synthetic-ds1-photons", energies, seed=seed))


class FailsInTraining(MeanShower):
    name = "test-fails-in-training"

    def fit(self, *args, **kwargs):
        raise RuntimeError("boom: this plugin cannot train")


class InterruptedOnce(MeanShower):
    """Raises KeyboardInterrupt (like Ctrl-C) the first time it trains."""

    name = "test-interrupted-once"
    interrupt = False

    def fit(self, *args, **kwargs):
        if InterruptedOnce.interrupt:
            InterruptedOnce.interrupt = False
            raise KeyboardInterrupt
        super().fit(*args, **kwargs)


class OnlyDs2(MeanShower):
    name = "test-only-ds2"
    supported_geometries = ("ds2",)


class NeedsTeacher(MeanShower):
    name = "test-needs-teacher"
    dependencies = {"min_response": "example-mean-shower"}


@pytest.fixture
def host():
    host = PluginHost()
    provider = Provider("tests", "calobench-tests", "0.0")
    host.generators.add(MeanShower.name, MeanShower, Provider("example", "calobench-example-plugin", "0.1.0"))
    for cls in (FailsInTraining, InterruptedOnce, OnlyDs2, NeedsTeacher):
        host.generators.add(cls.name, cls, provider)
    host.datasets.add(
        DATASET,
        DatasetSpec(
            name=DATASET,
            title="tiny simulated DS1 photons",
            kind="synthetic",
            geometry="ds1-photons",
            particle="photon",
            format="calochallenge",
            energy_range_mev=(256.0, 4194304.0),
            maker=_maker,
            files=(
                FileSpec("train.hdf5", "train", n_showers=600, seed=1),
                FileSpec("reference.hdf5", "reference", n_showers=400, seed=2),
            ),
        ),
        provider,
    )
    previous = set_host(host)
    yield host
    set_host(previous)
    InterruptedOnce.interrupt = False


@pytest.fixture
def trained(monkeypatch) -> list[str]:
    """The models that `run_suite` runs (rather than reuses), in order, from here on."""
    names: list[str] = []
    original = runner_module.run_model

    def spy(suite, model, *args, **kwargs):
        names.append(model)
        return original(suite, model, *args, **kwargs)

    monkeypatch.setattr(runner_module, "run_model", spy)
    return names


def _suite_file(tmp_path: Path, models: list[str]) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(f'''
name = "tiny"
title = "Tiny test suite"
dataset = "{DATASET}"
published = "ds1-photons"
models = {json.dumps(models)}
preset = "smoke"
metrics = ["separation_power"]
metrics_preset = "smoke"
seeds = [0]
reference_showers = 300
device = "cpu"
[timing]
batch_sizes = [1, 10]
repeats = 2
''')
    return path


def test_run_records_finished_failed_and_unsupported_models(host, tmp_path):
    suite = load_suite(
        _suite_file(tmp_path, ["example-mean-shower", FailsInTraining.name, OnlyDs2.name, "baseline-uncorrelated"])
    )
    summary = run_suite(suite, root=tmp_path / "lb")
    assert sorted(summary.finished) == ["baseline-uncorrelated-seed0", "example-mean-shower-seed0"]
    assert summary.failed == [f"{FailsInTraining.name}-seed0"]
    assert summary.unsupported == [f"{OnlyDs2.name}-seed0"]

    paths = SuitePaths(tmp_path / "lb", "tiny")
    results = {r["model"]: r for r in read_results(paths.results)}
    finished = results["example-mean-shower"]
    assert finished["schema_version"] == 1 and finished["status"] == "finished"
    assert finished["sampling"]["n_showers"] == 300
    assert set(finished["timing"]["batch_sizes"]) == {"1", "10"}
    assert finished["report"]["n_reference"] == 300 and finished["report"]["n_generated"] == 300
    assert finished["provider"]["distribution"] == "calobench-example-plugin"
    assert finished["training"]["model_info"] == {}  # Generator.run_info() of the trained model
    for key in ("calobench_version", "git_revision", "torch_version", "device", "device_name"):
        assert key in finished["provenance"]
    assert finished["dataset"]["checksums"]["reference"]
    assert (paths.report_dir("example-mean-shower", 0) / "report.md").is_file()

    failed = results[FailsInTraining.name]
    assert failed["error"]["stage"] == "train" and "boom: this plugin cannot train" in failed["error"]["message"]
    assert "ds2" in results[OnlyDs2.name]["error"]["message"]

    page = render_suite("tiny", "Tiny test suite", paths.results, "ds1-photons")
    readme = page.files["README.md"]
    assert (
        "failed: train: PluginError: " in readme
        and "raised in fit(): RuntimeError: boom: this plugin cannot train" in readme
    )
    assert "**example-mean-shower**" in readme and "not applicable" in readme
    # rendered from result files only: rendering twice gives the same bytes, and --check sees edits
    write_page(page, paths.directory)
    assert stale_files(render_suite("tiny", "Tiny test suite", paths.results, "ds1-photons"), paths.directory) == []
    (paths.directory / "README.md").write_text(readme + "\nedited by hand\n")
    assert stale_files(page, paths.directory) == ["README.md"]


def test_report_plots_can_be_left_out(host, tmp_path):
    path = _suite_file(tmp_path, ["example-mean-shower"])
    path.write_text(path.read_text().replace('device = "cpu"', 'device = "cpu"\nreport_plots = false'))
    suite = load_suite(path)
    assert suite.report_plots is False
    run_suite(suite, root=tmp_path / "lb")
    result = read_results(SuitePaths(tmp_path / "lb", "tiny").results)[0]
    assert result["status"] == "finished" and result["report"]["plots"] == []
    path.write_text(path.read_text().replace("report_plots = false", 'report_plots = "no"'))
    with pytest.raises(SuiteError, match="report_plots must be true or false"):
        load_suite(path)


def test_killed_run_resumes_without_redoing_finished_models(host, tmp_path, trained):
    suite = load_suite(_suite_file(tmp_path, ["example-mean-shower", InterruptedOnce.name]))
    InterruptedOnce.interrupt = True
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, root=tmp_path / "lb")
    paths = SuitePaths(tmp_path / "lb", "tiny")
    first = paths.results / "example-mean-shower-seed0.json"
    assert read_result(first)["status"] == "finished"
    assert not (paths.results / f"{InterruptedOnce.name}-seed0.json").exists()
    stamp = first.stat().st_mtime_ns

    trained.clear()
    summary = run_suite(suite, root=tmp_path / "lb")
    assert trained == [InterruptedOnce.name]
    assert summary.skipped == ["example-mean-shower-seed0"]
    assert first.stat().st_mtime_ns == stamp
    assert read_result(paths.results / f"{InterruptedOnce.name}-seed0.json")["status"] == "finished"


def test_dependencies_run_first_and_fill_the_config(host, tmp_path):
    assert ordered_models([NeedsTeacher.name, "example-mean-shower"], host.generators) == [
        "example-mean-shower",
        NeedsTeacher.name,
    ]
    with pytest.raises(ConfigError, match="needs a finished 'example-mean-shower'"):
        runner_module._dependency_overrides(NeedsTeacher, SuitePaths(tmp_path, "x"), 0, {})
    overrides = runner_module._dependency_overrides(
        NeedsTeacher, SuitePaths(tmp_path, "x"), 3, {"example-mean-shower": {"status": "finished"}}
    )
    assert overrides == {"min_response": str(tmp_path / "x" / "runs" / "example-mean-shower-seed3")}


def test_cli_render_check(host, tmp_path, capsys):
    suite_file = _suite_file(tmp_path, ["example-mean-shower"])
    root = tmp_path / "lb"
    assert main(["leaderboard", "run", str(suite_file), "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "| **example-mean-shower** |" in out and "leaderboard page:" in out
    html = (root / "tiny" / "index.html").read_text()
    assert "<svg" in html and "Generation time" in html
    suite = load_suite(suite_file)
    paths = SuitePaths(root, suite.name)
    page = render_suite(suite.name, suite.title, paths.results, suite.published)
    assert stale_files(page, paths.directory) == []
    (paths.directory / "index.html").write_text("stale")
    assert stale_files(page, paths.directory) == ["index.html"]


def test_shipped_suites_parse():
    quick = load_suite("quick")
    assert quick.dataset == "synthetic-ds1-photons" and quick.models is None and quick.preset == "quick"
    assert quick.reference_showers and quick.timing_batch_sizes
    assert not quick.report_plots, "the quick page draws its own histograms; per-model plots cost make run time"
    for name in (
        "synthetic-ds1-photons",
        "synthetic-ds1-pions",
        "synthetic-ds2",
        "synthetic-calogan-eplus",
        "calochallenge-ds3",
    ):
        assert load_suite(name).preset == "paper"


def test_excluded_metrics_leave_the_suite(tmp_path):
    quick = load_suite("quick")
    names = suite_metric_names(quick)
    assert names is not None and "classifier_low" in names and "classifier_high" in names
    assert "classifier_low_normed" not in names
    path = tmp_path / "typo.toml"
    path.write_text('name = "typo"\ndataset = "synthetic-ds1-photons"\nexclude_metrics = ["classifier_low_norm"]\n')
    with pytest.raises(RegistryError, match="did you mean .classifier_low_normed"):
        run_suite(load_suite(path), root=tmp_path / "lb")
    assert not (tmp_path / "lb").exists()


def test_histograms_share_reference_binning(host, tmp_path):
    from calobench.leaderboard.histograms import leaderboard_histograms

    energies = incident_spectrum("synthetic-ds1-photons", 200, seed=3)
    a = write_showers(tmp_path / "a.hdf5", simulate("synthetic-ds1-photons", energies, seed=3))
    b = write_showers(tmp_path / "b.hdf5", simulate("synthetic-ds1-photons", energies, seed=4))
    histograms = leaderboard_histograms(a, [b])
    entry = histograms["E_tot / E_inc"]
    assert len(entry["edges"]) == 101 and sum(entry["reference"]) <= 200
    assert np.isclose(entry["edges"][0], 0.5) and "E_layer 2 [MeV]" in histograms


def test_result_files_without_their_runs_are_measured_again(host, tmp_path, trained):
    """A fresh clone holds the committed result files and reports but not the runs: `leaderboard run`
    measures every model on this machine instead of reusing another machine's numbers."""
    suite = load_suite(_suite_file(tmp_path, ["example-mean-shower"]))
    run_suite(suite, root=tmp_path / "lb")
    paths = SuitePaths(tmp_path / "lb", "tiny")
    result_file = paths.results / "example-mean-shower-seed0.json"
    committed = json.loads(result_file.read_text())
    committed["report"]["marker"] = "from another machine"
    result_file.write_text(json.dumps(committed))
    report_file = paths.report_dir("example-mean-shower", 0) / "report.json"
    report_file.write_text(json.dumps({**json.loads(report_file.read_text()), "marker": "from another machine"}))
    shutil.rmtree(paths.runs / "example-mean-shower-seed0")

    trained.clear()
    summary = run_suite(suite, root=tmp_path / "lb")
    assert trained == ["example-mean-shower"] and summary.skipped == []
    assert "marker" not in read_result(result_file)["report"]
    assert "marker" not in json.loads(report_file.read_text())
    # now the run is here: a third run reuses it
    assert run_suite(suite, root=tmp_path / "lb").skipped == ["example-mean-shower-seed0"]
    # a local re-run interrupted after its steps but before writing the result is not taken as done
    steps_file = paths.run_dir("example-mean-shower", 0) / runner_module.STEPS_FILE
    steps = json.loads(steps_file.read_text())
    del steps[runner_module.RESULT_STEP]
    steps_file.write_text(json.dumps(steps))
    trained.clear()
    assert run_suite(suite, root=tmp_path / "lb").skipped == [] and trained == ["example-mean-shower"]


def test_provenance_names_the_processor(monkeypatch):
    from calobench import results as results_module

    info = results_module.environment_provenance("cpu")
    assert info["device_name"].startswith(info["processor"]) and "cores)" in info["device_name"]
    monkeypatch.setattr(results_module, "Path", lambda _: Path("/nonexistent/cpuinfo"))
    monkeypatch.setattr(results_module.platform, "system", lambda: "Linux")
    monkeypatch.setattr(results_module.platform, "processor", lambda: "")
    assert results_module.cpu_name() == results_module.platform.machine()


def test_git_revision_is_dirty_for_code_changes_only(tmp_path):
    import subprocess

    from calobench.results import git_revision

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "calobench").mkdir()
    (tmp_path / "calobench" / "code.py").write_text("x = 1\n")
    results = tmp_path / "leaderboards" / "quick" / "results"
    results.mkdir(parents=True)
    (results / "m-seed0.json").write_text("{}\n")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    clean = git_revision(tmp_path / "calobench")
    assert len(clean) == 40
    (results / "m-seed0.json").write_text('{"new": 1}\n')  # a leaderboard run rewrote its result
    assert git_revision(tmp_path / "calobench") == clean
    (tmp_path / "calobench" / "code.py").write_text("x = 2\n")
    assert git_revision(tmp_path / "calobench") == clean + "-dirty"
