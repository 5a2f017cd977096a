"""`calobench models`, `calobench train` and `calobench sample` end to end on tiny files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from calobench.cli.main import main
from calobench.formats import open_showers, read_showers
from calobench.generator.checkpoint import load_checkpoint
from calobench.generator.examples import TinyGaussian
from calobench.plugins import PluginHost, set_host
from calobench.registry import Provider
from calobench.testing import random_dataset, write_random_file


class Interruptible(TinyGaussian):
    """The example torch model; ``stop_after`` epochs into a run it raises KeyboardInterrupt like Ctrl-C."""

    name = "test-interruptible"
    stop_after: int | None = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if Interruptible.stop_after is not None:

            def interrupt(stage: str, record: dict) -> None:
                if record["epoch"] + 1 == Interruptible.stop_after:
                    raise KeyboardInterrupt

            self.callbacks.append(interrupt)


@pytest.fixture
def host():
    """The installed plugins plus a test torch generator and a tiny synthetic data set."""
    host = PluginHost()
    test_provider = Provider("tests", "calobench-tests", "0.0")
    host.generators.add(Interruptible.name, Interruptible, test_provider)
    host.datasets.add("synthetic-tiny", random_dataset("synthetic-tiny", 60, 20), test_provider)
    previous = set_host(host)
    yield host
    set_host(previous)
    Interruptible.stop_after = None


@pytest.fixture
def tiny_file(tmp_path: Path) -> Path:
    return write_random_file(tmp_path / "train.h5", "ds1-photons", n=120, seed=1)


def _run(directory: Path) -> dict:
    return json.loads((directory / "run.json").read_text())


def test_models_lists_generators_with_provider(host, capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith("baseline-uncorrelated"))
    assert "calobench 0.1.0" in line and "smoke,quick,paper" in line
    assert any(row.startswith("test-interruptible") and "calobench-tests 0.0" in row for row in out.splitlines())
    assert main(["models", "test-interruptible"]) == 0
    assert '"hidden": 8' in capsys.readouterr().out
    assert main(["models", "no-such-model"]) == 1
    assert "unknown generator 'no-such-model'" in capsys.readouterr().err


def test_train_then_sample_baseline(host, tiny_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "baseline-uncorrelated",
                "--dataset",
                str(tiny_file),
                "--preset",
                "smoke",
                "--set",
                "n_quantiles=8",
                "n_energy_bins=3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    run = _run(out)
    assert run["config"]["n_energy_bins"] == 3
    assert run["status"] == "finished" and run["generator"] == "baseline-uncorrelated"
    assert run["provider"]["distribution"] == "calobench" and run["config"]["n_quantiles"] == 8
    assert run["n_train"] == 108 and run["n_valid"] == 12 and run["geometry"] == {"name": "ds1-photons"}
    assert run["dataset"]["files"][0]["fingerprint"].startswith("blake2b-sampled:")
    assert {"calobench", "torch", "training_seconds", "device", "n_parameters"} <= set(run)
    assert (out / "model" / "generator.json").is_file()

    assert (
        main(
            [
                "train",
                "baseline-uncorrelated",
                "--dataset",
                str(tiny_file),
                "--preset",
                "smoke",
                "--set",
                "n_quantiles=8",
                "--set",
                "n_energy_bins=3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "already trained" in capsys.readouterr().out

    assert main(["sample", "--checkpoint", str(out), "--showers", "30", "--out", str(tmp_path / "gen.h5")]) == 0
    generated = read_showers(tmp_path / "gen.h5")
    assert len(generated) == 30 and generated.geometry.name == "ds1-photons"
    training_energies = read_showers(tiny_file).incident_energies
    assert np.isin(generated.incident_energies, training_energies).all()

    assert (
        main(
            [
                "sample",
                "--checkpoint",
                str(out),
                "--energies-from",
                str(tiny_file),
                "--batch-size",
                "50",
                "--seed",
                "3",
                "--out",
                str(tmp_path / "same.h5"),
            ]
        )
        == 0
    )
    same = read_showers(tmp_path / "same.h5")
    np.testing.assert_array_equal(same.incident_energies, training_energies)
    assert (
        main(
            [
                "sample",
                "--checkpoint",
                str(out),
                "--energies-from",
                str(tiny_file),
                "--batch-size",
                "50",
                "--seed",
                "3",
                "--out",
                str(tmp_path / "again.h5"),
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(read_showers(tmp_path / "again.h5").energies, same.energies)


def test_a_different_run_in_the_directory_is_refused(host, tiny_file, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "baseline-uncorrelated", "--dataset", str(tiny_file), "--out", str(out)]
    assert main(base + ["--preset", "smoke"]) == 0
    assert main(base + ["--preset", "quick"]) == 1
    err = capsys.readouterr().err
    assert "holds a different training run" in err and "preset: 'smoke' there, 'quick' now" in err
    assert main(base + ["--preset", "quick", "--force"]) == 0
    assert _run(out)["preset"] == "quick"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert main(["train", "baseline-uncorrelated", "--dataset", str(tiny_file), "--out", str(tmp_path / "other")]) == 1
    assert "not a calobench run directory" in capsys.readouterr().err


def test_bad_arguments_are_one_line_errors(host, tiny_file, tmp_path, capsys):
    cases = [
        (
            ["train", "baseline-uncorrelated", "--dataset", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "a")],
            "does not exist",
        ),
        (
            ["train", "baseline-uncorrelated", "--dataset", "no-such-set", "--out", str(tmp_path / "b")],
            "unknown data set",
        ),
        (
            [
                "train",
                "baseline-uncorrelated",
                "--dataset",
                str(tiny_file),
                "--set",
                "n_bins=3",
                "--out",
                str(tmp_path / "c"),
            ],
            "no config key 'n_bins'",
        ),
        (
            ["train", "simulator-truth", "--dataset", str(tiny_file), "--out", str(tmp_path / "d")],
            "needs the name of a synthetic data set",
        ),
        (
            [
                "train",
                "test-interruptible",
                "--dataset",
                str(tiny_file),
                "--device",
                "cuda:7",
                "--out",
                str(tmp_path / "e"),
            ],
            "cuda:7",
        ),
        (
            ["sample", "--checkpoint", str(tmp_path), "--showers", "3", "--out", str(tmp_path / "x.h5")],
            "not a calobench run directory",
        ),
    ]
    for argv, message in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)


def test_train_on_registered_data_set_and_calogan_format(host, tmp_path):
    out = tmp_path / "named"
    assert (
        main(["train", "baseline-uncorrelated", "--dataset", "synthetic-tiny", "--preset", "smoke", "--out", str(out)])
        == 0
    )
    run = _run(out)
    assert run["dataset"]["name"] == "synthetic-tiny" and run["n_train"] + run["n_valid"] == 60
    gan = write_random_file(tmp_path / "gan.h5", "calogan", n=50, seed=4)
    assert (
        main(
            [
                "train",
                "baseline-uncorrelated",
                "--dataset",
                str(gan),
                "--preset",
                "smoke",
                "--max-showers",
                "40",
                "--valid-fraction",
                "0",
                "--out",
                str(tmp_path / "gan"),
            ]
        )
        == 0
    )
    assert _run(tmp_path / "gan")["n_train"] == 40
    assert (
        main(["sample", "--checkpoint", str(tmp_path / "gan"), "--showers", "7", "--out", str(tmp_path / "gan-gen.h5")])
        == 0
    )
    with open_showers(tmp_path / "gan-gen.h5") as handle:
        assert handle.format == "calogan" and handle.n_showers == 7


def test_interrupted_training_resumes_to_identical_weights(host, tiny_file, tmp_path):
    common = [
        "train",
        "test-interruptible",
        "--dataset",
        str(tiny_file),
        "--preset",
        "smoke",
        "--device",
        "cpu",
        "--seed",
        "5",
        "--set",
        'schedule={"name": "onecycle", "max_lr": 0.02}',
    ]
    assert main(common + ["--out", str(tmp_path / "full")]) == 0

    Interruptible.stop_after = 2
    assert main(common + ["--out", str(tmp_path / "cut")]) == 130  # Ctrl-C after epoch 2
    run = _run(tmp_path / "cut")
    assert run["status"] == "training" and run["training_seconds"] > 0
    assert load_checkpoint(tmp_path / "cut" / "work" / "main.pt")["epoch"] == 2
    assert (
        main(["sample", "--checkpoint", str(tmp_path / "cut"), "--showers", "3", "--out", str(tmp_path / "x.h5")]) == 1
    )

    Interruptible.stop_after = None
    assert main(common + ["--out", str(tmp_path / "cut")]) == 0
    assert _run(tmp_path / "cut")["status"] == "finished"
    full = load_checkpoint(tmp_path / "full" / "model" / "weights.pt")["modules"]
    resumed = load_checkpoint(tmp_path / "cut" / "model" / "weights.pt")["modules"]
    assert full.keys() == resumed.keys()
    for module in full:
        for key in full[module]:
            assert torch.equal(full[module][key], resumed[module][key]), (module, key)
    assert _run(tmp_path / "full")["n_parameters"] == sum(t.numel() for t in full["net"].values())

    for name in ("full", "cut"):
        assert (
            main(
                [
                    "sample",
                    "--checkpoint",
                    str(tmp_path / name),
                    "--energies-from",
                    str(tiny_file),
                    "--out",
                    str(tmp_path / f"{name}.h5"),
                ]
            )
            == 0
        )
    np.testing.assert_array_equal(
        read_showers(tmp_path / "full.h5").energies, read_showers(tmp_path / "cut.h5").energies
    )


def test_a_moved_training_file_still_resumes(host, tiny_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(["train", "baseline-uncorrelated", "--dataset", str(tiny_file), "--preset", "smoke", "--out", str(out)])
        == 0
    )
    relocated = tmp_path / "sub" / "train.h5"
    relocated.parent.mkdir()
    tiny_file.rename(relocated)
    assert (
        main(["train", "baseline-uncorrelated", "--dataset", str(relocated), "--preset", "smoke", "--out", str(out)])
        == 0
    )
    assert "already trained" in capsys.readouterr().out
    write_random_file(relocated, "ds1-photons", n=120, seed=2)  # same name, other content
    assert (
        main(["train", "baseline-uncorrelated", "--dataset", str(relocated), "--preset", "smoke", "--out", str(out)])
        == 1
    )
    assert "holds a different training run (dataset:" in capsys.readouterr().err


class SelfSizing(TinyGaussian):
    """The example model with a size it 'measures' ("auto") or is given, reported by run_info()."""

    name = "test-self-sizing"
    presets = {name: dict(preset, size="auto") for name, preset in TinyGaussian.presets.items()}
    untyped_config_keys = frozenset({"size"})

    def run_info(self) -> dict:
        return {"size": 3 if self.config["size"] == "auto" else self.config["size"], "estimate": {"value": 2.6}}


def test_model_info_is_printed_and_kept_in_run_json(host, tiny_file, tmp_path, capsys):
    host.generators.add(SelfSizing.name, SelfSizing, Provider("tests", "calobench-tests", "0.0"))
    out = tmp_path / "run"
    assert main(["train", SelfSizing.name, "--dataset", str(tiny_file), "--preset", "smoke", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "  size: 3" in printed and '  estimate: {"value": 2.6}' in printed
    assert _run(out)["model_info"] == {"size": 3, "estimate": {"value": 2.6}}
    other = tmp_path / "other"
    command = ["train", SelfSizing.name, "--dataset", str(tiny_file), "--preset", "smoke", "--out", str(other)]
    assert main([*command, "--set", "size=5"]) == 0  # an untyped key takes an integer where the preset has "auto"
    assert _run(other)["config"]["size"] == 5 and _run(other)["model_info"]["size"] == 5
    assert (
        main(
            [
                "train",
                "test-interruptible",
                "--dataset",
                str(tiny_file),
                "--preset",
                "smoke",
                "--out",
                str(tmp_path / "plain"),
            ]
        )
        == 0
    )
    assert _run(tmp_path / "plain")["model_info"] == {}
    assert (
        main(
            [
                "train",
                "test-interruptible",
                "--dataset",
                str(tiny_file),
                "--preset",
                "smoke",
                "--set",
                "hidden=wide",
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 1
    )
    assert "expects an integer" in capsys.readouterr().err
