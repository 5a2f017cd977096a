"""Leaderboard sweeps on Dask: the same result files as the serial run, a killed worker's task resumes
from its checkpoint, the cluster options and the job scripts of batch clusters.

Worker processes see neither a test's monkeypatched modules nor its in-memory plugin host: the data
set and the models come from a fake *installed* distribution (a module and a dist-info directory
with a ``calobench`` entry point) on the workers' PYTHONPATH.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from calobench import plugins
from calobench.cli.main import main
from calobench.leaderboard.clusters import ClusterError, ClusterOptions, check_options, parse_cluster, pinned_gpu
from calobench.leaderboard.runner import SuitePaths, run_suite
from calobench.leaderboard.suites import load_suite
from calobench.results import read_result, read_results

HAS_DASK = all(importlib.util.find_spec(name) is not None for name in ("dask", "distributed"))
HAS_JOBQUEUE = HAS_DASK and importlib.util.find_spec("dask_jobqueue") is not None
needs_dask = pytest.mark.skipif(
    not HAS_DASK, reason="the distributed extra is not installed (pip install 'calobench[distributed]')"
)
needs_jobqueue = pytest.mark.skipif(
    not HAS_JOBQUEUE, reason="the distributed extra is not installed (pip install 'calobench[distributed]')"
)

DATASET = "synthetic-fakedask"
KILL_AFTER = 3  # epochs the killed model trains before its first attempt kills its worker
EPOCHS_LOG = "epochs.log"

FAKE_PLUGIN = f'''
"""A fake installed plugin: a tiny data set and tiny torch models for Dask sweep tests."""

import json
import os
import signal
from pathlib import Path

from calobench.generator.examples import TinyGaussian, _preset
from calobench.hookspecs import hookimpl
from calobench.testing import random_dataset

PRESETS = {{"smoke": _preset(8, 3, 32), "quick": _preset(8, 3, 32), "paper": _preset(8, 3, 32)}}


class Tiny(TinyGaussian):
    name = "fakedask-tiny"
    presets = PRESETS


class Teacher(Tiny):
    name = "fakedask-teacher"


class Student(Tiny):
    """Needs the finished run of fakedask-teacher (a Generator dependency)."""

    name = "fakedask-student"
    dependencies = {{"teacher_run": "fakedask-teacher"}}
    presets = {{key: {{**value, "teacher_run": ""}} for key, value in PRESETS.items()}}

    def fit(self, train, valid=None, *, seed=0, workdir=None):
        run = json.loads((Path(self.config["teacher_run"]) / "run.json").read_text())
        if run["status"] != "finished":
            raise RuntimeError("the teacher's training has not finished")
        super().fit(train, valid, seed=seed, workdir=workdir)


def _in_dask_worker():
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


class KillsItsWorker(Tiny):
    """Logs each epoch (pid, epoch) in its run directory; on a Dask worker, the first attempt kills
    its own worker process with SIGKILL after epoch {KILL_AFTER}."""

    name = "fakedask-killed"
    presets = {{key: {{**value, "epochs": 6}} for key, value in PRESETS.items()}}

    def fit(self, train, valid=None, *, seed=0, workdir=None):
        run_dir = Path(workdir).parent

        def watch(stage, record):
            with open(run_dir / "{EPOCHS_LOG}", "a") as handle:
                handle.write(f"{{os.getpid()}} {{record['epoch']}}\\n")
            if record["epoch"] + 1 == {KILL_AFTER} and _in_dask_worker() and not (run_dir / "killed").exists():
                (run_dir / "killed").write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)

        self.callbacks.append(watch)
        super().fit(train, valid, seed=seed, workdir=workdir)


@hookimpl
def calobench_generators():
    return [Tiny, Teacher, Student, KillsItsWorker]


@hookimpl
def calobench_datasets():
    return [random_dataset("{DATASET}", 200, 100)]
'''


@pytest.fixture
def fake_site(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The fake distribution on this process's sys.path and on the PYTHONPATH of worker processes."""
    site = tmp_path_factory.mktemp("fakedask-site")
    (site / "fakedask_mod.py").write_text(textwrap.dedent(FAKE_PLUGIN))
    info = site / "fake_dask_dist-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-dask-dist\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[calobench]\nfakedask = fakedask_mod\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    monkeypatch.delenv(plugins.DISABLE_ENV, raising=False)
    previous = plugins.set_host(None)  # rebuilt from the installed entry points, the fake one included
    yield site
    plugins.set_host(previous)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """The serial reference run with the torch threads of a task (1): same thread count, same bits."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _suite_file(tmp_path: Path, models: list[str], seeds: list[int]) -> Path:
    path = tmp_path / "daskbench.toml"
    path.write_text(f'''
name = "daskbench"
title = "Dask test suite"
dataset = "{DATASET}"
models = {json.dumps(models)}
preset = "smoke"
metrics = ["separation_power"]
metrics_preset = "smoke"
seeds = {json.dumps(seeds)}
reference_showers = 80
device = "cpu"
[timing]
batch_sizes = [1, 10]
repeats = 1
''')
    return path


def _metrics(result: dict) -> dict:
    """What must not depend on where a result was computed: metrics, sample size, status, parameters."""
    report = result["report"]
    return {
        "status": result["status"],
        "n_parameters": result["training"]["n_parameters"],
        "sampling": result["sampling"]["n_showers"],
        "histograms": result["histograms"],
        **{key: report[key] for key in ("separation_power", "summary", "n_generated", "n_reference")},
    }


def _run_cli(*args: str) -> int:
    return main(["leaderboard", "run", *args])


@needs_dask
def test_local_cluster_gives_the_serial_result_files(fake_site, one_torch_thread, tmp_path, capsys):
    suite_file = _suite_file(tmp_path, ["baseline-uncorrelated", "fakedask-student", "fakedask-teacher"], [0])
    suite = load_suite(suite_file)
    serial = run_suite(suite, root=tmp_path / "serial")
    assert len(serial.finished) == 3, serial

    root = tmp_path / "dask"
    assert _run_cli(str(suite_file), "--root", str(root), "--cluster", "local:2", "--threads-per-task", "1") == 0
    assert "| **fakedask-student** |" in capsys.readouterr().out  # the page was rendered
    paths = SuitePaths(root, "daskbench")
    names = sorted(p.name for p in paths.results.iterdir())
    assert names == sorted(p.name for p in SuitePaths(tmp_path / "serial", "daskbench").results.iterdir())
    assert len(names) == 3 and not [n for n in names if n.startswith(".")]
    for name in names:
        here, there = (
            read_result(paths.results / name),
            read_result(tmp_path / "serial" / "daskbench" / "results" / name),
        )
        assert _metrics(here) == _metrics(there), name
        # the student trained from this sweep's teacher run
        if here["model"] == "fakedask-student":
            assert here["config"]["teacher_run"] == str(paths.run_dir("fakedask-teacher", here["seed"]))
    assert (paths.directory / "README.md").is_file() and (paths.directory / "index.html").is_file()

    # a second sweep skips everything this checkout finished, like the serial run
    assert _run_cli(str(suite_file), "--root", str(root), "--cluster", "local:2") == 0
    stamps = {p.name: p.stat().st_mtime_ns for p in paths.results.iterdir()}
    assert stamps == {p.name: p.stat().st_mtime_ns for p in paths.results.iterdir()}


@needs_dask
def test_a_killed_worker_task_resumes_from_its_checkpoint(fake_site, one_torch_thread, tmp_path):
    from calobench.leaderboard.clusters import open_sweep
    from calobench.leaderboard.distributed import run_suite_distributed

    suite = load_suite(_suite_file(tmp_path, ["fakedask-killed", "baseline-uncorrelated"], [0]))
    root = tmp_path / "dask"
    with open_sweep(ClusterOptions(kind="local", workers=2, threads_per_task=1), "cpu") as sweep:
        summary = run_suite_distributed(suite, sweep.client, root=root, torch_threads=1)
    assert sorted(summary.finished) == ["baseline-uncorrelated-seed0", "fakedask-killed-seed0"], summary

    paths = SuitePaths(root, "daskbench")
    run_dir = paths.run_dir("fakedask-killed", 0)
    killed_pid = int((run_dir / "killed").read_text())
    attempts: dict[int, list[int]] = {}
    for line in (run_dir / EPOCHS_LOG).read_text().splitlines():
        pid, epoch = map(int, line.split())
        attempts.setdefault(pid, []).append(epoch)
    assert next(iter(attempts)) == killed_pid and attempts[killed_pid] == list(range(KILL_AFTER))
    (second,) = [epochs for pid, epochs in attempts.items() if pid != killed_pid]
    assert second == list(range(KILL_AFTER, 6)), "the retried task resumed after the killed one's last epoch"
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "finished" and run["stages"][0]["epochs_run"] == 6

    # no result file lost or half-written, and the resumed training is the uninterrupted one
    assert sorted(p.name for p in paths.results.iterdir()) == [
        "baseline-uncorrelated-seed0.json",
        "fakedask-killed-seed0.json",
    ]
    results = {r["model"]: r for r in read_results(paths.results)}
    serial = run_suite(suite, root=tmp_path / "serial")
    assert serial.finished == ["fakedask-killed-seed0", "baseline-uncorrelated-seed0"]
    for model, result in results.items():
        reference = read_result(SuitePaths(tmp_path / "serial", "daskbench").results / f"{model}-seed0.json")
        assert _metrics(result) == _metrics(reference), model


def test_cluster_without_the_extra_is_one_line(fake_site, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    suite_file = _suite_file(tmp_path, ["baseline-uncorrelated"], [0])
    assert _run_cli(str(suite_file), "--root", str(tmp_path / "lb"), "--cluster", "local:2") != 0
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "pip install 'calobench[distributed]'" in error
    assert not (tmp_path / "lb").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cluster", "local:0"], "local workers must be an integer >= 1"),
        (["--cluster", "kubernetes"], "expected local, local:N, slurm or htcondor"),
        (["--cluster", "local", "--scheduler", "tcp://h:8786"], "contradict each other"),
        (["--cluster", "local:2", "--queue", "gpu"], "--queue: only for --cluster slurm"),
        (["--cluster", "htcondor", "--walltime", "01:00:00"], "--walltime is a Slurm option"),
        (["--retries", "3"], "only for --cluster or --scheduler"),
        (["--cluster", "slurm", "--jobs", "0"], "--jobs must be >= 1"),
    ],
)
def test_cluster_options_are_checked(tmp_path, capsys, args, message):
    suite_file = _suite_file(tmp_path, ["baseline-uncorrelated"], [0])
    assert _run_cli(str(suite_file), "--root", str(tmp_path / "lb"), *args) != 0
    assert message in capsys.readouterr().err


def test_parse_cluster_and_gpu_pinning():
    assert parse_cluster("local") == ("local", None) and parse_cluster("local:3") == ("local", 3)
    assert parse_cluster("SLURM") == ("slurm", None)
    with pytest.raises(ClusterError):
        check_options(ClusterOptions(kind="slurm", disk="10GB"))
    # LocalCluster workers are named 0..N-1, dask-jobqueue's <job>-<i>; Slurm may have set the list
    assert pinned_gpu(1, None, 2) == "1" and pinned_gpu(3, None, 2) == "1"
    assert pinned_gpu("SLURMCluster-7-1", "4,5", 0) == "5"
    assert pinned_gpu("tcp://a", None, 2) is None and pinned_gpu(0, None, 0) is None


@needs_jobqueue
def test_slurm_job_script_from_options_and_dask_config(tmp_path, capsys):
    import dask.config
    import dask_jobqueue  # noqa: F401 - loads the jobqueue defaults before the test's settings

    suite_file = _suite_file(tmp_path, ["baseline-uncorrelated"], [0])
    config = {
        "jobqueue.slurm.job-extra-directives": ["--exclusive"],
        "jobqueue.slurm.account": "from-config",
        "jobqueue.slurm.cores": 4,
        "jobqueue.slurm.memory": "8GB",
    }
    with dask.config.set(config):
        status = _run_cli(
            str(suite_file),
            *("--cluster", "slurm", "--queue", "gpu", "--walltime", "02:00:00", "--memory", "32GB"),
            *("--cores", "8", "--gpus", "2", "--job-extra=--constraint=a100", "--print-job-script"),
        )
    assert status == 0
    script = capsys.readouterr().out
    for expected in (
        "#SBATCH -p gpu",
        "#SBATCH -A from-config",
        "#SBATCH -t 02:00:00",
        "#SBATCH --mem=30G",
        "#SBATCH --exclusive",
        "#SBATCH --constraint=a100",
        "#SBATCH --gres=gpu:2",
        "--nworkers 2",
        "--resources GPU=1",
        "export CALOBENCH_DATA=",
    ):
        assert expected in script, (expected, script)
    # the nanny on the node reads the exported configuration and spawns workers without the malloc
    # setting that slows torch down (clusters.NANNY_ENVIRON_UNSET)
    export = next(line for line in script.splitlines() if "PRE_SPAWN_ENVIRON" in line)
    probe = "from distributed.nanny import _get_env_variables as g; print(g('distributed.nanny.pre-spawn-environ'))"
    shown = subprocess.run(
        ["bash", "-c", f"{export}\n{shlex.quote(sys.executable)} -c {shlex.quote(probe)}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "OMP_NUM_THREADS" in shown and "MALLOC_TRIM_THRESHOLD_" not in shown, shown


@needs_jobqueue
def test_htcondor_job_script(tmp_path, capsys):
    suite_file = _suite_file(tmp_path, ["baseline-uncorrelated"], [0])
    status = _run_cli(
        str(suite_file),
        *("--cluster", "htcondor", "--cores", "4", "--memory", "16GB", "--disk", "10GB", "--gpus", "1"),
        *("--job-extra", "+MaxRuntime=7200", "--print-job-script"),
    )
    assert status == 0
    script = capsys.readouterr().out
    assert "request_gpus = 1" in script and "+MaxRuntime = 7200" in script and "GPU=1" in script, script


def test_a_task_waits_for_the_run_directory_lock(tmp_path):
    """A task whose run directory is still locked (by the task of an earlier, lost driver) waits for
    the lock, and gives up with the lock's error after its timeout."""
    import subprocess
    import threading
    import time

    from calobench.leaderboard.distributed import waiting_lock
    from calobench.locking import LockError

    hold = "import sys, time\nfrom calobench.locking import exclusive\nwith exclusive(sys.argv[1], 'x'):\n"
    hold += "    print('locked', flush=True)\n    time.sleep(float(sys.argv[2]))\n"
    target = tmp_path / "run"
    target.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", hold, str(target), "60"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockError, match="run directory"), waiting_lock(target, "run directory", 0.5, poll=0.1):
            pass
        threading.Timer(1.0, holder.kill).start()  # the holder dies while the task waits
        started = time.monotonic()
        with waiting_lock(target, "run directory", 30, poll=0.1):
            waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert 0.5 < waited < 30


@needs_dask
def test_local_workers_start_without_the_malloc_trim_setting(monkeypatch):
    from calobench.leaderboard.clusters import NANNY_ENVIRON_UNSET, open_sweep

    monkeypatch.delenv(NANNY_ENVIRON_UNSET, raising=False)
    with open_sweep(ClusterOptions(kind="local", workers=1), "cpu") as sweep:
        seen = sweep.client.submit(os.environ.get, NANNY_ENVIRON_UNSET, "unset", pure=False).result()
    assert seen == "unset"


def test_tasks_others_wait_for_go_first():
    from types import SimpleNamespace

    from calobench.leaderboard.distributed import chain_priorities

    needs = {"teacher": {}, "student": {"teacher_checkpoint": "teacher"}, "grader": {"student": "student"}, "solo": {}}
    registry = SimpleNamespace(get=lambda name: SimpleNamespace(dependencies=needs[name]))
    assert chain_priorities(["solo", "teacher", "student", "grader"], registry) == {
        "solo": 0,
        "teacher": 2,
        "student": 1,
        "grader": 0,
    }
    # a dependency outside the selected models does not count
    assert chain_priorities(["solo", "student"], registry) == {"solo": 0, "student": 0}
