"""Hostile input, full disks, broken clusters: one clear ``calobench: error:`` line and nothing lost.

One test per class of issue 25 (class 7, bounded memory in ``evaluate``, is tested with the metrics).
Each test attacks its class as a hostile user would, through the command line where that is cheap.
"""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import h5py
import numpy as np
import pytest
from calobench_example import MeanShower

from calobench.cli.main import main
from calobench.datasets import DatasetSpec, FileSpec
from calobench.errors import CalobenchError, ShowerFileError
from calobench.formats import open_showers, write_showers
from calobench.generator.runs import sample_run, train_run
from calobench.leaderboard.render import render_markdown
from calobench.leaderboard.runner import STEPS_FILE, SuitePaths, _steps, forget, run_suite
from calobench.leaderboard.suites import SuiteError, load_suite
from calobench.plugins import PluginHost, set_host
from calobench.registry import Provider
from calobench.results import write_result
from calobench.showers import Showers
from calobench.simulator import incident_spectrum, simulate

DATASET = "synthetic-hostile"


def _maker(spec, file, path, n_showers=None, seed=None):
    energies = incident_spectrum("synthetic-ds1-photons", n_showers or file.n_showers, seed=file.seed)
    write_showers(path, simulate("synthetic-ds1-photons", energies, seed=file.seed))


class ExitsInFit(MeanShower):
    name = "test-exits-in-fit"

    def fit(self, *args, **kwargs):
        sys.exit(3)


class PluginAbort(BaseException):
    """Something a plugin might raise that is neither an Exception nor Ctrl-C."""


class AbortsInFit(MeanShower):
    name = "test-aborts-in-fit"

    def fit(self, *args, **kwargs):
        raise PluginAbort("the plugin gave up")


class _Target:
    pass


class InterruptedInCallback(MeanShower):
    """Its second sample() call gets a Ctrl-C while Python runs a weakref callback, where the
    interpreter raises the KeyboardInterrupt -- and drops it."""

    name = "test-interrupted-in-callback"
    calls: list[int] = []

    def sample(self, incident_energies, seed=None, batch_size=None):
        InterruptedInCallback.calls.append(len(incident_energies))
        if len(InterruptedInCallback.calls) == 2:
            target = _Target()
            watcher = weakref.ref(target, lambda _: os.kill(os.getpid(), signal.SIGINT))
            del target  # the callback runs here and sends the Ctrl-C
            assert watcher() is None
        time.sleep(0.05)
        return super().sample(incident_energies, seed, batch_size)


@pytest.fixture
def host():
    host = PluginHost()
    provider = Provider("tests", "calobench-tests", "0.0")
    for cls in (MeanShower, ExitsInFit, AbortsInFit, InterruptedInCallback):
        host.generators.add(cls.name, cls, provider)
    files = (
        FileSpec("train.hdf5", "train", n_showers=300, seed=1),
        FileSpec("ref.hdf5", "reference", n_showers=200, seed=2),
    )
    spec = DatasetSpec(
        name=DATASET,
        title="tiny simulated DS1 photons",
        kind="synthetic",
        geometry="ds1-photons",
        particle="photon",
        format="calochallenge",
        energy_range_mev=(256.0, 4194304.0),
        maker=_maker,
        files=files,
    )
    host.datasets.add(DATASET, spec, provider)
    previous = set_host(host)
    yield host
    set_host(previous)


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    """200 simulated DS1-photon showers."""
    path = tmp_path_factory.mktemp("hostile") / "tiny.hdf5"
    energies = incident_spectrum("synthetic-ds1-photons", 200, seed=3)
    return write_showers(path, simulate("synthetic-ds1-photons", energies, seed=3))


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("calobench: error:")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    return errors[0]


def _finished_result(**changes) -> dict:
    result = {
        "suite": "quick",
        "model": "m",
        "seed": 0,
        "status": "finished",
        "report": {"fpd": {"value": 0.1, "error": 0.01}},
        "timing": {"device": "cpu", "batch_sizes": {"1": {"mean_ms": 1.0, "std_ms": 0.1}}},
        "histograms": {"E": {"edges": [0.0, 1.0, 2.0], "reference": [1, 2], "generated": [2, 1], "log_x": False}},
    }
    result.update(changes)
    return result


# ---------------------------------------------------------------------- 1. one line, never a traceback
def test_class1_malformed_files_values_and_outputs_are_one_line_before_any_work(tmp_path, tiny_file, capsys):
    results = tmp_path / "lb" / "quick" / "results"
    results.mkdir(parents=True)
    target = results / "m-seed0.json"
    hostile = {
        "not UTF-8": b'{"schema_version": 1, "model": "m\xff"}',
        "a 5000-digit number": b'{"schema_version": 1, "seed": ' + b"9" * 5000 + b"}",
        "nested too deeply": b"[" * 100_000 + b"]" * 100_000,
        "a string for a number": json.dumps({"schema_version": 1, **_finished_result(report={"fpd": {"value": "x"}})}),
        "NaN histogram edges": json.dumps(
            {"schema_version": 1, **_finished_result(histograms={"E": {"edges": [float("nan"), 1.0]}})}
        ),
    }
    for what, content in hostile.items():
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
        assert main(["leaderboard", "render", "quick", "--root", str(tmp_path / "lb")]) == 1, what
        assert "result file" in _one_error_line(capsys), what
    # mathtext in a result's strings is shown as text, not parsed
    write_result(results, _finished_result(timing={"device": r"$\frac{$", "batch_sizes": {"1": {"mean_ms": 1.0}}}))
    assert main(["leaderboard", "render", "quick", "--root", str(tmp_path / "lb")]) == 0
    capsys.readouterr()

    # suite values of the wrong type or sign, a suite and a run description that are not UTF-8
    suite = tmp_path / "bad.toml"
    for text in ('timing = "fast"', "reference_showers = -5", 'model = "x"'):
        suite.write_text(f'name = "bad"\ndataset = "synthetic-ds1-photons"\n{text}\n')
        assert main(["leaderboard", "run", str(suite), "--root", str(tmp_path / "lb")]) == 1
        _one_error_line(capsys)
    suite.write_bytes(b'name = "b\xff"\n')
    assert main(["leaderboard", "run", str(suite), "--root", str(tmp_path / "lb")]) == 1
    assert "not UTF-8" in _one_error_line(capsys)
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_bytes(b'{"schema_version": 1, "generator": "\xff"}')
    assert main(["sample", "--checkpoint", str(run), "--showers", "5", "--out", str(tmp_path / "g.h5")]) == 1
    assert "not UTF-8" in _one_error_line(capsys)

    # non-finite numbers and impossible counts are refused before the work, not when the result is written
    for args in (
        ["evaluate", str(tiny_file), "--reference", str(tiny_file), "--threshold", "inf", "--out", str(tmp_path / "e")],
        ["train", "example-mean-shower", "--dataset", str(tiny_file), "--set", "min_response=NaN", "--out", str(run)],
        ["bench", "--batch-sizes", "0"],
        ["sample", "--checkpoint", str(run), "--showers", "5", "--batch-size", "0", "--out", str(tmp_path / "g.h5")],
    ):
        assert main(args) == 1, args
        _one_error_line(capsys)
    assert not (tmp_path / "e").exists()

    # output paths that are an existing directory or file, or below a file: refused before simulating
    (tmp_path / "a-file").write_text("x")
    for out in (tmp_path, tmp_path / "a-file" / "x.h5"):
        assert main(["simulate", "synthetic-ds1-photons", "--showers", "50", "--out", str(out)]) == 1
        line = _one_error_line(capsys)
        assert "is a file, not a directory" in line or "existing directory" in line
    assert main(["evaluate", str(tiny_file), "--reference", str(tiny_file), "--out", str(tmp_path / "a-file")]) == 1
    assert "existing file" in _one_error_line(capsys)

    # a damaged leaderboard step file is a step to do again, not a traceback
    (run / STEPS_FILE).write_text('{"sampling": {"n_show')
    assert _steps(run) == {}


# ---------------------------------------------------------------------- 2. suites checked in full
def test_class2_a_suite_is_checked_in_full_with_suggestions(tmp_path):
    suite = tmp_path / "typos.toml"
    suite.write_text(
        'name = "typos"\ndataset = "synthetic-ds1-photons"\nmodles = ["caloinn"]\nmetrcs = "all"\n'
        'published = "ds1-photon"\nreference_showers = 2.5\nseeds = [0]\n[timing]\nrepeats = 1.5\n'
    )
    with pytest.raises(SuiteError) as error:
        load_suite(suite)
    message = str(error.value)
    for part in (
        "unknown key modles (did you mean 'models'?)",
        "unknown key metrcs (did you mean 'metrics'?)",
        "published table 'ds1-photon' is unknown (did you mean 'ds1-photons'?)",
        "reference_showers must be an integer >= 1, got 2.5",
        "timing.repeats must be an integer >= 1, got 1.5",
    ):
        assert part in message


# ---------------------------------------------------------------------- 3. SystemExit in a plugin
def test_class3_a_plugin_raising_systemexit_is_one_failed_row_and_one_line(host, tmp_path, tiny_file, capsys):
    suite_file = tmp_path / "exits.toml"
    suite_file.write_text(
        f'name = "exits"\ndataset = "{DATASET}"\nmodels = ["{ExitsInFit.name}", "{AbortsInFit.name}"]\n'
        'preset = "smoke"\nmetrics = ["separation_power"]\nmetrics_preset = "smoke"\nreference_showers = 100\n'
        'device = "cpu"\n[timing]\nbatch_sizes = [1]\nrepeats = 1\n'
    )
    summary = run_suite(load_suite(suite_file), root=tmp_path / "lb")
    assert summary.failed == [f"{ExitsInFit.name}-seed0", f"{AbortsInFit.name}-seed0"]  # the second one still ran
    result = json.loads((tmp_path / "lb" / "exits" / "results" / f"{ExitsInFit.name}-seed0.json").read_text())
    assert "raised in fit(): SystemExit: 3" in result["error"]["message"]

    args = ["train", ExitsInFit.name, "--dataset", str(tiny_file), "--preset", "smoke", "--out", str(tmp_path / "r")]
    assert main(args) == 1
    assert "raised in fit(): SystemExit: 3" in _one_error_line(capsys)


# ---------------------------------------------------------------------- 4. paths outside --root, HDF5 links
def test_class4_symlinks_out_of_root_and_hdf5_external_data_are_refused(tmp_path, tiny_file):
    outside = tmp_path / "outside"
    (outside / "m-seed0").mkdir(parents=True)
    precious = outside / "m-seed0" / "precious.txt"
    precious.write_text("keep me")
    paths = SuitePaths(tmp_path / "root", "quick")
    paths.directory.mkdir(parents=True)
    (paths.directory / "runs").symlink_to(outside)
    (paths.directory / "results").symlink_to(outside)
    with pytest.raises(CalobenchError, match="outside"):
        forget(paths, "m", 0)  # what --fresh does
    with pytest.raises(CalobenchError, match="outside"):
        write_result(paths.results, _finished_result())
    assert precious.read_text() == "keep me" and not (outside / "m-seed0.json").exists()

    external_link, external_storage = tmp_path / "link.h5", tmp_path / "storage.h5"
    with h5py.File(external_link, "w") as handle:
        handle["incident_energies"] = h5py.ExternalLink(str(tiny_file), "incident_energies")
        handle["showers"] = h5py.ExternalLink(str(tiny_file), "showers")
    raw = tmp_path / "voxels.bin"
    with open_showers(tiny_file) as source:
        showers = source.read()
    showers.energies.astype(np.float32).tofile(raw)
    with h5py.File(external_storage, "w") as handle:
        handle["incident_energies"] = showers.incident_energies.reshape(-1, 1)
        handle.create_dataset(
            "showers", shape=showers.energies.shape, dtype=np.float32, external=[(str(raw), 0, 2**40)]
        )
    for path, what in ((external_link, "external link"), (external_storage, "external storage")):
        with pytest.raises(ShowerFileError, match=what):
            open_showers(path)


# ---------------------------------------------------------------------- 5. disk full
_FULL_DISK = """
import resource, signal, sys
from calobench.cli.main import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write beyond the limit fails with EFBIG, like a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, resource.RLIM_INFINITY))
sys.exit(main(sys.argv[1:]))
"""


def test_class5_a_full_disk_is_one_line_and_keeps_existing_outputs(host, tmp_path, tiny_file, monkeypatch, capsys):
    out = tmp_path / "sim.h5"
    out.write_text("the previous output")
    command = [sys.executable, "-c", _FULL_DISK, "simulate", "synthetic-ds1-photons", "--showers", "3000", "--out"]
    process = subprocess.run([*command, str(out)], capture_output=True, text=True, timeout=300)
    assert process.returncode == 1, process.stderr[-2000:]  # not a segmentation fault (-11)
    errors = process.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("calobench: error: cannot write"), errors
    assert out.read_text() == "the previous output" and sorted(p.name for p in tmp_path.iterdir()) == ["sim.h5"]

    # a leaderboard result written on a full disk: one line, the previous result kept
    results = tmp_path / "results"
    previous = write_result(results, _finished_result()).read_text()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(Path, "write_text", full)
        with pytest.raises(CalobenchError, match="disk is full"):
            write_result(results, _finished_result(seed=0, wall_seconds=1.0))
    assert (results / "m-seed0.json").read_text() == previous and len(list(results.iterdir())) == 1

    # `sample` removes what an interrupted earlier sample left
    run = tmp_path / "run"
    train_run("example-mean-shower", str(tiny_file), run, preset="smoke", device="cpu")
    stale = tmp_path / ".generated.h5.x1y2z3.partial"
    stale.write_bytes(b"\0" * 1000)
    sample_run(run, tmp_path / "generated.h5", n_showers=10, device="cpu", progress=False)
    assert not stale.exists() and (tmp_path / "generated.h5").is_file()


# ---------------------------------------------------------------------- 6. concurrent checksum records
def _record(directory: str, names: list[str]) -> None:
    from calobench.datasets.checksums import ChecksumStore

    store = ChecksumStore(directory)
    for name in names:
        store.pin(name, "0" * 32, "made")


def test_class6_concurrent_checksum_records_lose_no_entry(tmp_path, monkeypatch):
    from calobench.datasets import checksums

    original = checksums.write_json_atomic

    def slow_write(*args, **kwargs):  # widen the window between reading and writing the sidecar
        time.sleep(0.01)
        return original(*args, **kwargs)

    monkeypatch.setattr(checksums, "write_json_atomic", slow_write)
    names = {role: [f"{role}-{i}.hdf5" for i in range(8)] for role in ("train", "reference")}
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_record, args=(str(tmp_path), names[role])) for role in names]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    pinned = json.loads((tmp_path / checksums.SIDECAR_NAME).read_text())["pinned"]
    assert sorted(pinned) == sorted(names["train"] + names["reference"])


# ---------------------------------------------------------------------- 8. clusters and processes
def test_class8_broken_clusters_fail_fast_with_one_line(tmp_path, monkeypatch, capsys):
    from distributed import LocalCluster

    from calobench.generator.distributed import init_process_group
    from calobench.leaderboard.clusters import ClusterError, ClusterOptions, job_cluster_arguments, open_sweep

    suite = tmp_path / "s.toml"
    suite.write_text('name = "s"\ndataset = "synthetic-ds1-photons"\nmodels = ["baseline-uncorrelated"]\n')
    for cluster in (["--cluster", "local:²"], ["--scheduler", "not::an/address"], ["--scheduler", "tcp://127.0.0.1:1"]):
        assert main(["leaderboard", "run", str(suite), "--root", str(tmp_path / "lb"), *cluster]) == 1
        _one_error_line(capsys)

    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    with (
        pytest.raises(ClusterError, match="sbatch"),
        open_sweep(ClusterOptions(kind="slurm", cores=1, memory="1GB"), "cpu"),
    ):
        pass
    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as empty:
        options = ClusterOptions(scheduler=empty.scheduler_address, worker_timeout=1.0)
        with pytest.raises(ClusterError, match="no worker joined"), open_sweep(options, "cpu"):
            pass

    monkeypatch.setenv("CALOBENCH_DATA", str(tmp_path / "a b $(touch pwned)"))
    prologue = job_cluster_arguments(ClusterOptions(kind="slurm", cores=1, memory="1GB"), False)["job_script_prologue"]
    assert f"export CALOBENCH_DATA='{tmp_path}/a b $(touch pwned)'" in prologue

    # a stray WORLD_SIZE: a visible wait with a timeout, then one error (before: a silent hang)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        monkeypatch.setenv("MASTER_PORT", str(probe.getsockname()[1]))
    monkeypatch.setenv("CALOBENCH_DIST_TIMEOUT", "1")
    outcome: list[BaseException] = []

    def join() -> None:
        import torch

        try:
            init_process_group(torch.device("cpu"))
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    thread = threading.Thread(target=join, daemon=True)
    thread.start()
    thread.join(60)
    assert outcome and isinstance(outcome[0], CalobenchError) and "WORLD_SIZE=2" in str(outcome[0])


# ---------------------------------------------------------------------- 9. Ctrl-C during sample
@pytest.fixture
def python_sigint():
    """Python's own Ctrl-C handler (an imported library may have replaced it)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnraisableExceptionWarning"
)  # the KeyboardInterrupt dropped on purpose
def test_class9_ctrl_c_during_sample_stops_even_when_python_drops_it_once(host, tmp_path, tiny_file, python_sigint):
    run = tmp_path / "run"
    train_run(InterruptedInCallback.name, str(tiny_file), run, preset="smoke", device="cpu")
    InterruptedInCallback.calls = []
    with pytest.raises(KeyboardInterrupt):
        sample_run(run, tmp_path / "g.h5", n_showers=60, batch_size=1, device="cpu", progress=False)
    assert len(InterruptedInCallback.calls) <= 12  # of 60: it stopped, within a few 50 ms calls
    assert not (tmp_path / "g.h5").exists() and not list(tmp_path.glob(".g.h5.*"))


# ---------------------------------------------------------------------- 10. HTML in a board's README
def test_class10_readme_escapes_html_from_result_and_suite_files():
    result = _finished_result(
        dataset={"name": "<img src=x onerror=alert(1)>"}, provenance={"device_name": "<script>alert(2)</script>"}
    )
    readme = render_markdown("quick", "<iframe src=//evil>", [result], None)
    assert re.findall(r"(?<!\\)<(?:img|script|iframe)", readme) == []  # shown as text, not HTML
    assert r"\<script\>alert(2)\</script\>" in readme


# ---------------------------------------------------------------------- 11. evaluate on an incomparable sample
def test_class11_evaluate_warns_about_gev_and_other_incident_energies(tiny_file, tmp_path, caplog):
    from calobench.evaluation import evaluate

    with open_showers(tiny_file) as source:
        showers = source.read()
    low = showers.incident_energies < np.median(showers.incident_energies)
    gev = tmp_path / "gev-low.h5"
    write_showers(gev, Showers(showers.incident_energies[low], showers.energies[low] / 1000, showers.geometry))
    with caplog.at_level("WARNING", logger="calobench"):
        evaluate(str(gev), str(tiny_file), metrics=["separation_power"], preset="smoke", device="cpu", progress=False)
    text = caplog.text
    assert "Kolmogorov-Smirnov" in text and "look like GeV" in text
