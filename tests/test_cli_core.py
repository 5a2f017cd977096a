"""The core command line: --version, info, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from calobench import __version__
from calobench.cli.main import main
from calobench.errors import ShowerFileError
from calobench.testing import write_random_file


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"calobench {__version__}"


def test_info_names_ds1_photon_geometry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_random_file(tmp_path / "photons.hdf5", "ds1-photons", n=25, seed=4)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "geometry:   ds1-photons" in out and "368 voxels" in out
    assert "showers:    25" in out
    for layer in (0, 1, 2, 3, 12):
        assert any(line.split()[:1] == [str(layer)] for line in out.splitlines())


def test_wrong_voxel_count_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.hdf5"
    with h5py.File(path, "w") as handle:
        handle["incident_energies"] = np.full((3, 1), 1e3)
        handle["showers"] = np.ones((3, 367))
    assert main(["info", str(path), "--geometry", "ds1-photons"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "368" in err and "367" in err and err.startswith("calobench: error:")
    with pytest.raises(ShowerFileError):
        main(["--debug", "info", str(path), "--geometry", "ds1-photons"])


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 1
    assert "usage: calobench" in capsys.readouterr().out
