"""Hostile inputs end in one clear line, in bounded memory: a file declaring a billion showers,
plugins that raise in fit or load, a damaged run, malformed result files, a closed pipe, a
truncated reference, unusual voxel types."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
from calobench_example import MeanShower

from calobench.cli.main import main
from calobench.errors import ShowerFileError
from calobench.generator.runs import sample_run, train_run
from calobench.leaderboard.render import render_markdown
from calobench.plugins import PluginHost, set_host
from calobench.registry import Provider
from calobench.testing import write_random_file

BILLION = 10**9


class RaisesInFit(MeanShower):
    name = "test-raises-in-fit"

    def fit(self, *args, **kwargs):
        raise TypeError("unsupported operand in my model")


class RaisesInLoad(MeanShower):
    name = "test-raises-in-load"

    @classmethod
    def load(cls, directory, device=None):
        raise ValueError("cannot parse my weights")


@pytest.fixture
def host():
    host = PluginHost()
    provider = Provider("tests", "calobench-tests", "0.0")
    for cls in (MeanShower, RaisesInFit, RaisesInLoad):
        host.generators.add(cls.name, cls, provider)
    previous = set_host(host)
    yield host
    set_host(previous)


def _declares_a_billion(path: Path, valid_energies: int = 0) -> Path:
    """A tiny file whose datasets declare 10^9 showers (chunked, nothing written: reads give zeros)."""
    with h5py.File(path, "w") as handle:
        incident = handle.create_dataset("incident_energies", shape=(BILLION, 1), dtype="f8", chunks=(65536, 1))
        handle.create_dataset("showers", shape=(BILLION, 368), dtype="f4", chunks=(256, 368))
        if valid_energies:
            incident[:valid_energies] = 1000.0
    assert path.stat().st_size < 10**6
    return path


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("calobench: error: ") and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_training_on_a_file_too_large_for_memory_says_what_to_do(host, tmp_path: Path, capsys) -> None:
    path = _declares_a_billion(tmp_path / "huge.h5")
    assert main(["train", "baseline-uncorrelated", "--dataset", str(path), "--out", str(tmp_path / "run")]) == 1
    err = _one_line_error(capsys)
    assert "1,000,000,000 showers" in err and "--max-showers" in err


def test_sampling_streams_incident_energies_in_bounded_memory(host, tmp_path: Path) -> None:
    data = write_random_file(tmp_path / "train.h5", "ds1-photons", n=40, seed=1)
    train_run(MeanShower.name, str(data), tmp_path / "run", preset="smoke")
    huge = _declares_a_billion(tmp_path / "energies.h5", valid_energies=3000)
    tracemalloc.start()
    try:
        with pytest.raises(ShowerFileError, match=r"not finite and positive \(first at shower 3000: 0.0\)"):
            sample_run(tmp_path / "run", tmp_path / "gen.h5", energies_from=huge, batch_size=1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100e6, f"{peak / 1e6:.0f} MB"  # read chunk by chunk while sampling, not 8 GB of energies at once
    assert not (tmp_path / "gen.h5").exists()  # nothing half-written


def test_a_plugin_raising_in_fit_or_load_is_one_line(host, tmp_path: Path, capsys) -> None:
    data = write_random_file(tmp_path / "train.h5", "ds1-photons", n=40, seed=1)
    args = ["train", RaisesInFit.name, "--dataset", str(data), "--preset", "smoke", "--out", str(tmp_path / "a")]
    assert main(args) == 1
    err = _one_line_error(capsys)
    assert "'test-raises-in-fit' (from calobench-tests 0.0) raised in fit(): TypeError: unsupported operand" in err
    out = tmp_path / "b"
    train_run(RaisesInLoad.name, str(data), out, preset="smoke")
    assert main(["sample", "--checkpoint", str(out), "--showers", "3", "--out", str(tmp_path / "g.h5")]) == 1
    assert "raised in load(): ValueError: cannot parse my weights" in _one_line_error(capsys)


@pytest.mark.parametrize("damage", ["missing", "garbage", "negative"])
def test_a_damaged_incident_energies_file_is_one_line(host, tmp_path: Path, capsys, damage: str) -> None:
    data = write_random_file(tmp_path / "train.h5", "ds1-photons", n=40, seed=1)
    out = tmp_path / "run"
    train_run(MeanShower.name, str(data), out, preset="smoke")
    target = out / "incident_energies.npy"
    if damage == "missing":
        target.unlink()
    elif damage == "garbage":
        target.write_bytes(b"\x93NUMPY garbage")
    else:
        np.save(target, -np.ones(5))
    assert main(["sample", "--checkpoint", str(out), "--showers", "3", "--out", str(tmp_path / "g.h5")]) == 1
    assert "incident_energies.npy" in _one_line_error(capsys)


def _finished_result(model: str = "my_model", **changes) -> dict:
    result = {
        "suite": "s",
        "model": model,
        "seed": 0,
        "status": "finished",
        "preset": "quick",
        "report": {"separation_power": {"etot_einc": float("nan")}},
        "training": {"seconds": 12.0, "n_parameters": 10},
        "timing": {"batch_sizes": {"1": {"mean_ms": 1.5, "std_ms": 0.1}}, "device": "cpu"},
    }
    result.update(changes)
    return result


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seed": float("nan")}, "seed nan is not an integer"),
        ({"timing": {"batch_sizes": {"1": {"mean_ms": "fast"}}}}, "mean_ms is not a number"),
        ({"training": {"seconds": "long"}}, "training.seconds is 'long'"),
        ({"report": None}, "holds no evaluation report"),
    ],
)
def test_render_of_a_malformed_result_is_one_line(tmp_path: Path, capsys, change: dict, message: str) -> None:
    results = tmp_path / "s" / "results"
    results.mkdir(parents=True)
    payload = {"schema_version": 1, **_finished_result(**change)}
    (results / "my_model-seed0.json").write_text(json.dumps(payload))
    suite = tmp_path / "s.toml"
    suite.write_text('name = "s"\ndataset = "synthetic-ds1-photons"\n')
    assert main(["leaderboard", "render", str(suite), "--root", str(tmp_path)]) == 1
    err = _one_line_error(capsys)
    assert "is malformed" in err and message in err


def test_render_shows_nan_as_na_and_escapes_model_names(tmp_path: Path) -> None:
    page = render_markdown("s", "S", [_finished_result("my_model")], None)
    row = next(line for line in page.splitlines() if "my" in line and line.startswith("|"))
    assert "**my\\_model**" in row and "n/a" in row and "nan" not in row.lower().replace("n/a", "")


def test_info_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    path = write_random_file(tmp_path / "f.h5", "ds1-photons", n=20, seed=1)
    command = f"'{sys.executable}' -c 'from calobench.cli.main import main; raise SystemExit(main())' info '{path}'"
    completed = subprocess.run(f"{command} | head -1", shell=True, capture_output=True, text=True, check=True)
    assert completed.stdout.count("\n") == 1
    assert "Traceback" not in completed.stderr and "BrokenPipe" not in completed.stderr, completed.stderr


def test_a_truncated_reference_is_reported_as_truncated(tmp_path: Path, capsys) -> None:
    generated = write_random_file(tmp_path / "gen.h5", "ds1-photons", n=50, seed=1)
    reference = write_random_file(tmp_path / "ref.h5", "ds1-photons", n=2000, seed=2)
    data = reference.read_bytes()
    reference.write_bytes(data[: len(data) // 2])
    args = ["evaluate", str(generated), "--reference", str(reference), "--out", str(tmp_path / "e")]
    assert main([*args, "--metrics", "separation_power"]) == 1
    err = _one_line_error(capsys)
    assert "reference sample" in err and "truncated" in err and "geometry" not in err


@pytest.mark.parametrize(("stored", "shown"), [("f2", "float16, read as float32"), ("i4", "int32, read as float32")])
def test_info_names_the_stored_voxel_type(tmp_path: Path, capsys, stored: str, shown: str) -> None:
    path = tmp_path / "typed.h5"
    with h5py.File(path, "w") as handle:
        handle["incident_energies"] = np.full((4, 1), 1000.0)
        handle["showers"] = np.ones((4, 368), dtype=stored)
    assert main(["info", str(path)]) == 0
    assert f"({shown})" in capsys.readouterr().out
    with h5py.File(path) as handle:
        assert json.dumps(str(handle["showers"].dtype))  # the file really holds that type
