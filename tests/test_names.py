"""Names that become paths (suites, data sets, models, run directories) never leave their root."""

from __future__ import annotations

from pathlib import Path

import pytest

from calobench.datasets import DatasetSpec, FileSpec
from calobench.errors import DatasetError, PluginError
from calobench.leaderboard.runner import SuitePaths
from calobench.leaderboard.suites import SuiteError, load_suite
from calobench.names import UnsafeNameError, check_name, child_path
from calobench.plugins import PluginHost
from calobench.registry import Provider
from calobench.results import result_filename, write_result

BAD_NAMES = ["../../x", "..", "a/b", "/etc", "", "x\\y", ".hidden", "a..b", "naïve", "x" * 200]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(UnsafeNameError, match="invalid suite name"):
        check_name(name, "suite")


@pytest.mark.parametrize("name", ["quick", "caloflow-teacher", "synthetic-ds1-photons", "v1.2+cuda_x"])
def test_ordinary_names_pass(name: str, tmp_path: Path) -> None:
    assert child_path(tmp_path, name, "model") == tmp_path / name


def test_a_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "escape").symlink_to(tmp_path)
    with pytest.raises(UnsafeNameError, match="outside"):
        child_path(tmp_path / "root", "escape", "suite")


def test_a_suite_named_with_dots_cannot_write_outside_root(tmp_path: Path) -> None:
    suite_file = tmp_path / "evil.toml"
    suite_file.write_text('name = "../../x"\ndataset = "synthetic-ds1-photons"\n')
    with pytest.raises(UnsafeNameError, match="invalid suite name '../../x'"):
        load_suite(suite_file)
    with pytest.raises(UnsafeNameError):
        _ = SuitePaths(tmp_path / "root", "../../x").directory
    suite_file.write_text('name = "fine"\ndataset = "synthetic-ds1-photons"\nmodels = ["../m"]\n')
    with pytest.raises(SuiteError, match="models: the name '../m'"):
        load_suite(suite_file)


def test_model_names_in_run_report_and_result_paths_are_checked(tmp_path: Path) -> None:
    paths = SuitePaths(tmp_path, "quick")
    with pytest.raises(UnsafeNameError):
        paths.run_dir("../../outside", 0)
    with pytest.raises(UnsafeNameError):
        paths.report_dir("a/b", 0)
    with pytest.raises(UnsafeNameError):
        result_filename("../x", 0)
    with pytest.raises(UnsafeNameError):
        write_result(tmp_path, {"suite": "quick", "model": "../../x", "seed": 0, "status": "failed"})
    assert not (tmp_path.parent.parent / "x-seed0.json").exists()


def test_a_data_set_named_with_dots_cannot_download_outside_the_data_dir(tmp_path: Path) -> None:
    spec = DatasetSpec(
        name="../../x",
        title="evil",
        kind="real",
        geometry="ds1-photons",
        particle="photon",
        format="calochallenge",
        energy_range_mev=(1.0, 2.0),
        files=(FileSpec("f.hdf5", "train"), FileSpec("g.hdf5", "reference")),
    )
    with pytest.raises(UnsafeNameError, match="data set"):
        spec.directory()
    with pytest.raises(UnsafeNameError):
        spec.path(spec.files[0])
    with pytest.raises(DatasetError, match="plain file name"):
        FileSpec("../../f.hdf5", "train")


def test_a_plugin_registering_an_unsafe_name_fails_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "fakeunsafe_mod.py"
    module.write_text(
        "from calobench.hookspecs import hookimpl\n"
        "from calobench_example import MeanShower\n"
        "class Evil(MeanShower):\n    name = '../../evil'\n"
        "@hookimpl\ndef calobench_generators():\n    return [Evil]\n"
    )
    info = tmp_path / "fake_unsafe-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-unsafe\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[calobench]\nfakeunsafe = fakeunsafe_mod\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from importlib import metadata

    entry_points = [ep for ep in metadata.entry_points(group="calobench") if ep.name == "fakeunsafe"]
    host = PluginHost(entry_points, strict=False)
    record = host.record("fakeunsafe")
    assert record.status == "failed" and "invalid name '../../evil'" in record.error
    with pytest.raises(PluginError):
        PluginHost(entry_points, strict=True)
    assert Provider  # the registry keeps provenance for every accepted name
