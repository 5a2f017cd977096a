"""A killed training keeps its time; a damaged run can be recovered; a run only loads with the
generator (distribution and version) it was trained with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from calobench.cli.main import main
from calobench.errors import CheckpointError
from calobench.generator.examples import TinyGaussian
from calobench.generator.runs import load_run_model, train_run
from calobench.plugins import PluginHost, set_host
from calobench.registry import Provider
from calobench.testing import write_random_file

KILLED_TRAINING = """
import os, sys, time
from calobench.generator.examples import TinyGaussian
from calobench.generator.runs import train_run
from calobench.plugins import PluginHost, set_host
from calobench.registry import Provider


class SlowThenKilled(TinyGaussian):
    name = "test-slow-killed"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)

        def slow_then_kill(stage, record):
            time.sleep(0.3)  # every epoch takes measurable time
            if record["epoch"] + 1 == 3:
                os.kill(os.getpid(), 9)  # like `kill -9`: no finally block runs

        self.callbacks.append(slow_then_kill)


host = PluginHost()
host.generators.add(SlowThenKilled.name, SlowThenKilled, Provider("tests", "calobench-tests", "0.0"))
set_host(host)
train_run(SlowThenKilled.name, sys.argv[1], sys.argv[2], preset="smoke", overrides={"epochs": 6})
"""


class SlowThenKilled(TinyGaussian):
    """The same generator in this process (no kill): resumes the killed run."""

    name = "test-slow-killed"


@pytest.fixture
def host():
    host = PluginHost()
    host.generators.add(SlowThenKilled.name, SlowThenKilled, Provider("tests", "calobench-tests", "0.0"))
    previous = set_host(host)
    yield host
    set_host(previous)


def _run(directory: Path) -> dict:
    return json.loads((directory / "run.json").read_text())


def test_training_time_survives_kill_9_and_resume(host, tmp_path: Path) -> None:
    data = write_random_file(tmp_path / "train.h5", "ds1-photons", n=60, seed=1)
    out = tmp_path / "run"
    completed = subprocess.run(
        [sys.executable, "-c", KILLED_TRAINING, str(data), str(out)], capture_output=True, text=True
    )
    assert completed.returncode == -9, completed.stderr
    killed = _run(out)
    assert killed["status"] == "training"
    assert killed["training_seconds"] >= 0.6, "the two epochs before the kill are recorded in the run"
    result = train_run(SlowThenKilled.name, str(data), out, preset="smoke", overrides={"epochs": 6})
    assert result.resumed and result.run["status"] == "finished"
    assert result.run["training_seconds"] > killed["training_seconds"]
    assert (out / "work" / "main.pt").is_file()


def test_force_recovers_a_run_with_a_corrupt_run_json(host, tmp_path: Path, capsys) -> None:
    data = write_random_file(tmp_path / "train.h5", "ds1-photons", n=60, seed=1)
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text('{"schema_version": 1, "generat')  # torn by a crash
    (out / "work").mkdir()
    (out / "work" / "main.pt").write_bytes(b"garbage")
    args = ["train", "baseline-uncorrelated", "--dataset", str(data), "--preset", "smoke", "--out", str(out)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "cannot be read" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert main([*args, "--force"]) == 0
    assert _run(out)["status"] == "finished" and not (out / "work" / "main.pt").exists()


def test_a_run_loads_only_with_the_provider_it_was_trained_with(host, tmp_path: Path, capsys) -> None:
    data = write_random_file(tmp_path / "train.h5", "ds1-photons", n=60, seed=1)
    out = tmp_path / "run"
    train_run("baseline-uncorrelated", str(data), out, preset="smoke")
    load_run_model(out)
    run = _run(out)
    run["provider"] = {"plugin": "impostor", "distribution": "evil-dist", "version": "6.6.6"}
    (out / "run.json").write_text(json.dumps(run))
    with pytest.raises(CheckpointError, match=r"trained with 'baseline-uncorrelated' from evil-dist 6\.6\.6"):
        load_run_model(out)
    sample = ["sample", "--checkpoint", str(out), "--showers", "5", "--out", str(tmp_path / "g.h5")]
    assert main(sample) == 1
    assert "another distribution" in capsys.readouterr().err
    run["provider"] = {"plugin": "calobench", "distribution": "calobench", "version": "0.0.1"}
    (out / "run.json").write_text(json.dumps(run))
    with pytest.raises(CheckpointError, match="another version.*--allow-other-version"):
        load_run_model(out)
    assert main([*sample, "--allow-other-version"]) == 0
