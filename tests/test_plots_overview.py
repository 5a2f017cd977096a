"""Overview plots of shower samples (``calobench datasets show``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from calobench.cli.main import main
from calobench.errors import ConfigError
from calobench.formats import write_showers
from calobench.plots.overview import energy_groups, load_sample, write_overview_plots
from calobench.simulator import incident_spectrum, simulate

NAMES = ["average_shower.png", "longitudinal_profile.png", "etot_einc.png", "voxel_spectrum.png", "single_showers.png"]


def _check_pngs(paths: list[Path], out: Path) -> None:
    assert [p.name for p in paths] == NAMES
    for path in paths:
        assert path.parent == out
        with Image.open(path) as image:
            assert image.format == "PNG"
            pixels = np.asarray(image.convert("L"))
        assert pixels.shape[0] > 200 and pixels.shape[1] > 300
        assert pixels.std() > 5  # something is drawn


@pytest.mark.parametrize("name", ["ds1-pions", "calogan-gamma"])
def test_plots_of_showers_in_memory(name, tmp_path: Path):
    showers = simulate(name, incident_spectrum(name, 400, seed=1), seed=2)
    _check_pngs(write_overview_plots(showers, tmp_path / "plots"), tmp_path / "plots")


def test_plots_of_a_ds2_file(tmp_path: Path):
    path = write_showers(tmp_path / "ds2.hdf5", simulate("ds2", incident_spectrum("ds2", 200, seed=1), seed=2))
    _check_pngs(write_overview_plots(path, tmp_path / "one"), tmp_path / "one")


def test_plots_of_a_list_of_files(tmp_path: Path):
    showers = simulate("ds1-photons", incident_spectrum("ds1-photons", 300, seed=1), seed=2)
    first = write_showers(tmp_path / "a.hdf5", showers[:150])
    second = write_showers(tmp_path / "b.hdf5", showers[150:])
    _check_pngs(write_overview_plots([first, (second, 0, 100)], tmp_path / "two", max_showers=None), tmp_path / "two")


def test_large_files_are_sampled_across_their_whole_length(tmp_path: Path):
    energies = np.repeat(2.0 ** np.arange(8, 12), 250)  # sorted by energy, as some real files are
    path = write_showers(tmp_path / "sorted.hdf5", simulate("ds1-photons", energies, seed=1))
    sample, label = load_sample(path, max_showers=100)
    assert len(sample) == 100 and label == "sorted.hdf5"
    assert set(np.unique(sample.incident_energies)) == set(2.0 ** np.arange(8, 12))
    with pytest.raises(ConfigError):
        load_sample(path, max_showers=0)


def test_energy_groups():
    discrete = np.repeat(2.0 ** np.arange(8, 23), 3)
    groups = energy_groups(discrete)
    assert len(groups) == 5 and groups[0][0] == "256 MeV" and groups[-1][0] == "4.19 TeV"
    continuous = np.geomspace(1e3, 1e6, 1000)
    groups = energy_groups(continuous)
    assert sum(mask.sum() for _, mask in groups) == 1000


def test_datasets_show_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = write_showers(tmp_path / "s.hdf5", simulate("ds1-photons", incident_spectrum("ds1-photons", 300, 1), 1))
    assert main(["datasets", "show", str(path), "--out", str(tmp_path / "show")]) == 0
    printed = capsys.readouterr().out.split()
    assert [Path(p).name for p in printed] == NAMES
