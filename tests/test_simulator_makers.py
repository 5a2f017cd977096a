"""Synthetic data sets on disk: registration, the maker, ``calobench datasets make`` and
``calobench simulate``."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from calobench.cli.main import main
from calobench.datasets.access import get_dataset, make_files
from calobench.formats import read_showers
from calobench.simulator import incident_spectrum, simulate, synthetic_names
from calobench.simulator.makers import file_seed, write_simulation


@pytest.fixture(autouse=True)
def _own_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files made here never meet the (session-wide) data directory other tests use."""
    monkeypatch.setenv("CALOBENCH_DATA", str(tmp_path / "data"))


def test_synthetic_sets_are_registered_with_their_maker():
    for name in synthetic_names():
        spec = get_dataset(name)
        assert spec.kind == "synthetic" and spec.maker is not None
        train, reference = spec.files_for("train"), spec.files_for("reference")
        assert [f.name for f in train] == ["train.hdf5"] and [f.name for f in reference] == ["reference.hdf5"]
        assert train[0].seed != reference[0].seed
    assert get_dataset("synthetic-ds1-photons").files_for("train")[0].n_showers == 121_000
    assert get_dataset("synthetic-ds1-pions").files_for("train")[0].n_showers == 120_800
    assert get_dataset("synthetic-ds2").files_for("reference")[0].n_showers == 100_000
    assert get_dataset("synthetic-ds3").files_for("reference")[0].n_showers == 50_000


def test_maker_writes_what_simulate_returns():
    spec = get_dataset("synthetic-ds1-photons")
    (path, made), *_ = make_files(spec, "train", n_showers=700, force=True)
    assert made and path == spec.path(spec.files_for("train")[0])
    showers = read_showers(path)
    seed = spec.files_for("train")[0].seed
    expected = simulate(spec.name, incident_spectrum(spec.name, 700, seed), seed)
    np.testing.assert_array_equal(showers.energies, expected.energies)
    np.testing.assert_allclose(showers.incident_energies, expected.incident_energies)
    assert not list(path.parent.glob("*.partial"))


def test_explicit_seed_keeps_train_and_reference_independent():
    spec = get_dataset("synthetic-ds2")
    made = make_files(spec, n_showers=300, seed=5, force=True)
    train, reference = (read_showers(path) for path, _ in made)
    assert not np.array_equal(train.incident_energies, reference.incident_energies)
    assert file_seed(5, "train.hdf5") == file_seed(5, "train.hdf5") != file_seed(5, "reference.hdf5")
    again = make_files(spec, "train", n_showers=300, seed=5, force=True)
    np.testing.assert_array_equal(read_showers(again[0][0]).energies, train.energies)


def test_calogan_sets_are_written_in_the_calogan_format():
    spec = get_dataset("synthetic-calogan-piplus")
    ((path, _),) = make_files(spec, "reference", n_showers=300, force=True)
    with h5py.File(path, "r") as handle:
        assert set(handle) >= {"energy", "layer_0", "layer_1", "layer_2", "overflow"}
        assert handle["layer_0"].shape == (300, 3, 96)
        energy_gev = handle["energy"][:, 0]
        overflow = handle["overflow"][:]
    assert energy_gev.min() >= 1.0 and energy_gev.max() <= 100.0
    assert overflow.min() >= 0 and overflow.sum() > 0  # pions spread beyond the 480 mm face
    assert read_showers(path).geometry.name == "calogan"


def test_simulate_command_with_perturbation(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "deeper.hdf5"
    assert (
        main(["simulate", "ds2", "--showers", "300", "--seed", "4", "--perturb", "depth_scale=1.05", "--out", str(out)])
        == 0
    )
    assert "depth_scale=1.05" in capsys.readouterr().out
    showers = read_showers(out)
    incident = incident_spectrum("ds2", 300, 4)
    nominal = simulate("ds2", incident, 4)
    perturbed = simulate("ds2", incident, 4, perturbation={"depth_scale": 1.05})
    np.testing.assert_array_equal(showers.energies, perturbed.energies)
    assert not np.array_equal(showers.energies, nominal.energies)


def test_simulate_command_reuses_a_files_energies(tmp_path: Path):
    source = write_simulation(tmp_path / "source.hdf5", "calogan-gamma", np.array([2e3, 5e4, 9e4]), seed=1)
    out = tmp_path / "copy.hdf5"
    assert main(["simulate", "synthetic-calogan-gamma", "--energies-from", str(source), "--out", str(out)]) == 0
    np.testing.assert_allclose(read_showers(out).incident_energies, [2e3, 5e4, 9e4], rtol=1e-6)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["simulate", "ds2", "--out", "x.hdf5"], "--showers"),
        (["simulate", "ds2", "--showers", "5", "--perturb", "depth=1.1", "--out", "x.hdf5"], "unknown perturbation"),
        (["simulate", "ds9", "--showers", "5", "--out", "x.hdf5"], "unknown synthetic detector"),
        (["simulate", "ds2", "--showers", "5", "--format", "calogan", "--out", "x.hdf5"], "CaloGAN format"),
    ],
)
def test_simulate_command_errors_are_one_line(argv, message, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("calobench: error:") and message in err and "\n" not in err
    assert not (tmp_path / "x.hdf5").exists()
