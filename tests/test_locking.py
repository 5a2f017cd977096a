"""Two processes never write the same run directory, data-set file or suite; a killed one leaves
nothing that blocks or fills the disk (stale locks are taken over, stale partial files removed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from calobench.datasets import make_files
from calobench.datasets.access import remove_stale_partials
from calobench.generator.runs import train_run
from calobench.leaderboard.runner import run_suite
from calobench.leaderboard.suites import load_suite
from calobench.locking import LockError, exclusive, lock_path
from calobench.plugins import PluginHost, set_host
from calobench.registry import Provider
from calobench.testing import random_dataset, write_random_file

HOLD = """
import sys, time
from calobench.locking import exclusive
with exclusive(sys.argv[1], "test target"):
    print("locked", flush=True)
    time.sleep(120)
"""


def _holder(target: Path) -> subprocess.Popen:
    """A second process holding the lock of ``target`` until killed."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(target)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "locked"
    return process


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


@pytest.fixture
def host():
    host = PluginHost()
    provider = Provider("tests", "calobench-tests", "0.0")
    host.datasets.add("synthetic-locktest", random_dataset("synthetic-locktest", 40, 40), provider)
    previous = set_host(host)
    yield host
    set_host(previous)


def test_second_holder_gets_a_clear_error_and_a_dead_holder_is_stale(tmp_path: Path) -> None:
    target = tmp_path / "thing"
    target.mkdir()
    process = _holder(target)
    try:
        with (
            pytest.raises(LockError, match=rf"test target is in use by process {process.pid} on "),
            exclusive(target, "test target"),
        ):
            pass
    finally:
        _kill(process)
    assert lock_path(target).exists(), "kill -9 leaves the lock file behind"
    with exclusive(target, "test target"):  # the kernel released the lock: it is stale and taken over
        assert str(os.getpid()) in lock_path(target).read_text()
    assert not lock_path(target).exists()


def test_nested_use_in_one_process_is_allowed(tmp_path: Path) -> None:
    with exclusive(tmp_path, "x"), exclusive(tmp_path, "x"):
        pass
    assert not lock_path(tmp_path).exists()


def test_two_trainings_into_one_run_directory(host, tmp_path: Path) -> None:
    data = write_random_file(tmp_path / "train.h5", "ds1-photons", n=60, seed=1)
    out = tmp_path / "run"
    out.mkdir()
    process = _holder(out)
    try:
        with pytest.raises(LockError, match=r"run directory .*run is in use by process"):
            train_run("baseline-uncorrelated", str(data), out, preset="smoke")
    finally:
        _kill(process)
    assert train_run("baseline-uncorrelated", str(data), out, preset="smoke").run["status"] == "finished"


def test_two_makers_of_one_data_set_file(host) -> None:
    spec = host.datasets.get("synthetic-locktest")
    path = spec.path(spec.files[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    process = _holder(path)
    try:
        with pytest.raises(LockError, match=r"data-set file .*_train.hdf5 is in use"):
            make_files(spec, "train")
    finally:
        _kill(process)
    assert not path.exists()
    assert make_files(spec, "train") == [(path, True)]


def test_stale_partial_files_of_a_killed_maker_are_removed(host) -> None:
    spec = host.datasets.get("synthetic-locktest")
    path = spec.path(spec.files[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    stale = path.parent / f".{path.name}.k1ll3d.partial"  # what ShowerWriter leaves after kill -9
    stale.write_bytes(b"\0" * 4096)
    other = (
        path.parent / ".synthetic-locktest_reference.hdf5.abc.partial"
    )  # another file's: not touched by this file's maker
    other.write_bytes(b"x")
    make_files(spec, "train")
    assert not stale.exists() and other.exists() and path.is_file()
    assert remove_stale_partials(path) == []


def test_a_killed_maker_leaves_nothing_behind_for_the_next_run(host, tmp_path: Path) -> None:
    """kill -9 in the middle of writing: the next make removes the partial file and finishes."""
    script = tmp_path / "make.py"
    script.write_text(
        "import os, sys\n"
        "from calobench import formats\n"
        "original = formats.ShowerWriter.append\n"
        "def append(self, *a, **k):\n"
        "    original(self, *a, **k)\n"
        "    self._handle.flush()\n"
        "    os.kill(os.getpid(), 9)\n"
        "formats.ShowerWriter.append = append\n"
        "from calobench.testing import random_dataset, write_random_file\n"
        "write_random_file(sys.argv[1], 'ds1-photons', n=50, seed=1)\n"
    )
    target = tmp_path / "data" / "train.hdf5"
    target.parent.mkdir()
    completed = subprocess.run([sys.executable, str(script), str(target)], capture_output=True, text=True)
    assert completed.returncode == -9, completed.stderr
    partials = list(target.parent.glob(".train.hdf5.*.partial"))
    assert partials and not target.exists()
    assert remove_stale_partials(target) == partials
    assert not list(target.parent.glob("*.partial"))


def test_two_runs_of_one_suite(host, tmp_path: Path) -> None:
    suite_file = tmp_path / "s.toml"
    suite_file.write_text(
        'name = "locked"\ndataset = "synthetic-locktest"\nmodels = ["baseline-uncorrelated"]\npreset = "smoke"\n'
        'metrics = ["separation_power"]\nmetrics_preset = "smoke"\ndevice = "cpu"\n'
        "[timing]\nbatch_sizes = [1]\nrepeats = 1\n"
    )
    suite = load_suite(suite_file)
    directory = tmp_path / "lb" / "locked"
    directory.mkdir(parents=True)
    process = _holder(directory)
    try:
        with pytest.raises(LockError, match="leaderboard suite 'locked'"):
            run_suite(suite, root=tmp_path / "lb")
    finally:
        _kill(process)
    assert run_suite(suite, root=tmp_path / "lb").finished == ["baseline-uncorrelated-seed0"]
    assert not (directory / ".lock").exists()
