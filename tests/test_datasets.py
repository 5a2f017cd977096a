"""The data-set registry: shipped cards, lookup, local states, checksums, ensure/open, and the CLI."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from calobench.cli.main import main
from calobench.datasets import (
    ChecksumStore,
    DatasetSpec,
    FileSpec,
    ensure_files,
    file_status,
    get_dataset,
    load_cards,
    make_files,
    open_role,
    role_checksums,
    verify,
)
from calobench.datasets.cards import cards_dir
from calobench.errors import ChecksumError, DatasetError
from calobench.formats import read_showers
from calobench.plugins import PluginHost, datasets, set_host
from calobench.registry import Provider
from calobench.testing import random_showers, write_random_file

REAL_SETS = (
    "calochallenge-ds1-photons",
    "calochallenge-ds1-pions",
    "calochallenge-ds2",
    "calochallenge-ds3",
    "calogan-eplus",
    "calogan-gamma",
    "calogan-piplus",
)


@pytest.fixture(autouse=True)
def _own_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALOBENCH_DATA", str(tmp_path / "data"))


@pytest.fixture
def host() -> Iterator[PluginHost]:
    """A plugin host with the built-ins only, installed as the process-wide host for the test."""
    host = PluginHost(entry_points=[])
    previous = set_host(host)
    yield host
    set_host(previous)


def register(host: PluginHost, spec: DatasetSpec) -> DatasetSpec:
    host.datasets.add(spec.name, spec, Provider("tests", "tests", "0"))
    return spec


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------- shipped cards
def test_shipped_cards_parse_and_follow_the_protocol() -> None:
    specs = {s.name: s for s in load_cards(kind="real")}
    assert set(specs) == set(REAL_SETS)
    for spec in specs.values():
        assert spec.kind == "real" and spec.card is not None and spec.card.stem == spec.name
        assert spec.license == "CC BY 4.0" and spec.doi and spec.citation
        assert spec.energy_range_mev[0] < spec.energy_range_mev[1]
        if spec.name.startswith("calochallenge"):
            assert "2410.21611" in spec.citation and spec.doi.startswith("10.5281/zenodo.")
            record = spec.extra["zenodo_record"]
            for file in spec.files:  # every CaloChallenge file is downloadable and has its published md5
                assert file.url == f"https://zenodo.org/records/{record}/files/{file.name}?download=1"
                assert file.md5 is not None
                assert re.fullmatch(r"dataset_\d(_\w+)?_[1-4]\.hdf5", file.name)
            # the protocol's convention: _1 trains, _2 (dataset 3: _3 + _4) is the reference
            assert [f.name[-6:] for f in spec.files_for("train")] == ["1.hdf5"]
            expected_reference = ["3.hdf5", "4.hdf5"] if spec.geometry == "ds3" else ["2.hdf5"]
            assert [f.name[-6:] for f in spec.files_for("reference")] == expected_reference
        else:
            assert "1712.10321" in spec.citation and spec.format == "calogan" and spec.geometry == "calogan"
            (file,) = spec.unique_files()
            assert file.url is None and file.md5 is None  # not published: never invented
            train, reference = spec.files_for("train")[0].rows, spec.files_for("reference")[0].rows
            assert train[0] == 0 and train[1] == reference[0] and reference[1] == file.n_showers
    assert [f.role for f in specs["calochallenge-ds3"].files] == ["train", "extra", "reference", "reference"]


def test_shipped_sizes_are_those_published() -> None:
    """Only the three sizes the sources publish are in the cards; the rest are left out."""
    sizes = {f.name: f.size for s in load_cards(kind="real") for f in s.files if f.size is not None}
    assert sizes == {
        "dataset_1_photons_1.hdf5": 173797023,
        "dataset_2_1.hdf5": 1356475617,
        "dataset_2_2.hdf5": 1366708391,
    }


def test_real_sets_are_registered_by_calobench(host: PluginHost) -> None:
    for name in REAL_SETS:
        assert datasets().provider(name).plugin == "calobench"
        assert get_dataset(name).name == name


def test_unknown_name_suggests_close_ones(host: PluginHost) -> None:
    with pytest.raises(DatasetError, match="did you mean 'calochallenge-ds2'"):
        get_dataset("calochallenge-ds22")
    assert main(["datasets", "info", "calogan-gama"]) == 1


def test_malformed_card_names_the_file(tmp_path: Path) -> None:
    good = (cards_dir() / "calochallenge-ds2.toml").read_text()
    cases = {
        "syntax": "name = \n",
        "missing-files": good.split("[[files]]")[0],
        "missing-title": good.replace("title =", "titel ="),
        "unknown-file-key": good.replace('role = "train"', 'role = "train"\nsha = "x"'),
        "bad-role": good.replace('role = "reference"', 'role = "evaluation"'),
        "bad-md5": good.replace("e590333e9a2da51b258288d74bd8357a", "not-an-md5"),
        "bad-rows": good.replace('role = "train"', 'role = "train"\nrows = [5, 2]'),
        "bad-kind": good.replace('kind = "real"', 'kind = "downloaded"'),
    }
    for label, text in cases.items():
        directory = tmp_path / label
        directory.mkdir()
        card = directory / "calochallenge-ds2.toml"
        card.write_text(text)
        with pytest.raises(DatasetError) as info:
            load_cards(directory)
        assert str(card) in str(info.value), label
    directory = tmp_path / "misnamed"
    directory.mkdir()
    (directory / "other-name.toml").write_text(good)
    with pytest.raises(DatasetError, match="must be called calochallenge-ds2.toml"):
        load_cards(directory)


def test_load_cards_filters_by_kind(tmp_path: Path) -> None:
    (tmp_path / "calochallenge-ds2.toml").write_text((cards_dir() / "calochallenge-ds2.toml").read_text())
    (tmp_path / "synthetic-x.toml").write_text("""
        name = "synthetic-x"
        title = "x"
        kind = "synthetic"
        geometry = "ds2"
        particle = "electron"
        format = "calochallenge"
        energy_range_mev = [1000.0, 100000.0]
        [[files]]
        name = "x_1.hdf5"
        role = "train"
        [[files]]
        name = "x_2.hdf5"
        role = "reference"
    """)
    assert [s.name for s in load_cards(tmp_path, kind="real")] == ["calochallenge-ds2"]
    with pytest.raises(DatasetError, match="needs a maker"):
        load_cards(tmp_path, kind="synthetic")
    specs = load_cards(tmp_path, kind="synthetic", maker=lambda *a, **k: None)
    assert [s.name for s in specs] == ["synthetic-x"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="../x.hdf5"), "plain file name"),
        (dict(rows=[3, 3]), "start < stop"),
        (dict(rows=["a", 2]), "rows must be"),
        (dict(md5="xyz"), "32 hex digits"),
        (dict(size=0), "positive number of bytes"),
    ],
)
def test_file_spec_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(DatasetError, match=match):
        FileSpec(**{"name": "a.hdf5", "role": "train", **kwargs})


def test_a_file_listed_twice_needs_row_windows() -> None:
    common = dict(
        title="t", kind="real", geometry="calogan", particle="photon", format="calogan", energy_range_mev=(1e3, 1e5)
    )
    with pytest.raises(DatasetError, match="each entry needs a row window"):
        DatasetSpec(name="x", files=(FileSpec("a.hdf5", "train"), FileSpec("a.hdf5", "reference")), **common)
    with pytest.raises(DatasetError, match="different url, md5 or size"):
        DatasetSpec(
            name="x",
            files=(
                FileSpec("a.hdf5", "train", rows=(0, 5), size=10),
                FileSpec("a.hdf5", "reference", rows=(5, 9), size=11),
            ),
            **common,
        )
    spec = DatasetSpec(
        name="x",
        files=(FileSpec("a.hdf5", "train", rows=(0, 5)), FileSpec("a.hdf5", "reference", rows=(5, 9))),
        **common,
    )
    assert spec.unique_files() == [spec.files[0]]
    assert spec.parts("reference") == [(spec.path(spec.files[0]), 5, 9)]


# ---------------------------------------------------------------------- the CLI on the shipped sets
def test_datasets_list_shows_every_real_set_with_size_and_state(
    host: PluginHost, capsys: pytest.CaptureFixture
) -> None:
    assert main(["datasets", "list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    for name in REAL_SETS:
        assert name in lines
        assert "missing" in lines[name]
    assert "2.7 GB" in lines["calochallenge-ds2"]  # 1,356,475,617 + 1,366,708,391 bytes
    assert "173.8 MB + 1 unknown" in lines["calochallenge-ds1-photons"]
    assert "unknown" in lines["calogan-gamma"] and "70000 / 30000" in lines["calogan-gamma"]
    assert "100000 / 100000" in lines["calochallenge-ds2"] and "50000 / 100000" in lines["calochallenge-ds3"]


def test_datasets_info_shows_the_card(host: PluginHost, capsys: pytest.CaptureFixture) -> None:
    assert main(["datasets", "info", "calochallenge-ds3"]) == 0
    out = capsys.readouterr().out
    for text in (
        "10.5281/zenodo.6366323",
        "CC BY 4.0",
        "2410.21611",
        "40500 voxels",
        "1000 - 1000000 MeV",
        "dataset_3_2.hdf5 (extra)",
        "5e8d82e6a6c28c6914a3b602a1cfa299 (published)",
        str(get_dataset("calochallenge-ds3").directory() / "dataset_3_4.hdf5"),
        "missing",
    ):
        assert text in out, text
    assert main(["datasets", "info", "calogan-piplus"]) == 0
    out = capsys.readouterr().out
    assert "train rows 0:70000, reference rows 70000:100000" in out
    assert "trust on first use" in out and "download by hand from https://data.mendeley.com" in out


def test_datasets_path(host: PluginHost, capsys: pytest.CaptureFixture) -> None:
    assert main(["datasets", "path", "calochallenge-ds3", "--role", "reference"]) == 0
    directory = get_dataset("calochallenge-ds3").directory()
    assert capsys.readouterr().out.split() == [str(directory / "dataset_3_3.hdf5"), str(directory / "dataset_3_4.hdf5")]
    assert main(["datasets", "path", "calogan-eplus"]) == 0
    assert capsys.readouterr().out.split() == [str(get_dataset("calogan-eplus").directory() / "eplus.hdf5")]


def test_download_of_a_set_without_url_says_what_to_do(host: PluginHost, capsys: pytest.CaptureFixture) -> None:
    assert main(["datasets", "download", "calogan-gamma"]) == 1
    err = capsys.readouterr().err
    assert "download it by hand from https://data.mendeley.com/datasets/pvn3xc3wy5/1" in err
    assert "calobench datasets path calogan-gamma" in err and "calobench datasets verify calogan-gamma" in err


def test_make_refuses_real_sets(host: PluginHost, capsys: pytest.CaptureFixture) -> None:
    assert main(["datasets", "make", "calochallenge-ds2"]) == 1
    assert "calobench datasets download calochallenge-ds2" in capsys.readouterr().err


def test_ensure_files_of_a_real_set_that_is_not_downloaded(host: PluginHost) -> None:
    with pytest.raises(DatasetError, match="run `calobench datasets download calochallenge-ds1-pions`"):
        ensure_files("calochallenge-ds1-pions", "train")
    with pytest.raises(DatasetError, match="unknown role"):
        ensure_files("calochallenge-ds1-pions", "validation")
    with pytest.raises(DatasetError, match="no 'extra' files"):
        ensure_files("calochallenge-ds1-pions", "extra")


# ---------------------------------------------------------------------- files placed by hand
def by_hand_spec(md5: str | None, n_showers: int = 100) -> DatasetSpec:
    """A CaloGAN-like real set: one file without URL, split into train and reference row windows."""
    return DatasetSpec(
        name="by-hand",
        title="placed by hand",
        kind="real",
        geometry="calogan",
        particle="photon",
        format="calogan",
        energy_range_mev=(1e3, 1e5),
        doi="10.0000/hand.1",
        files=(
            FileSpec("gamma.hdf5", "train", md5=md5, n_showers=n_showers, rows=(0, 70)),
            FileSpec("gamma.hdf5", "reference", md5=md5, n_showers=n_showers, rows=(70, 100)),
        ),
    )


def test_verify_a_file_placed_by_hand_with_published_md5(
    host: PluginHost, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    source = write_random_file(tmp_path / "gamma.hdf5", "calogan", n=100, seed=3)
    spec = register(host, by_hand_spec(md5_of(source)))
    assert main(["datasets", "path", "by-hand"]) == 0
    target = Path(capsys.readouterr().out.strip())
    target.parent.mkdir(parents=True)
    target.write_bytes(source.read_bytes())
    assert file_status(spec)[0].state == "present-unverified"
    assert main(["datasets", "verify", "by-hand", "--no-progress"]) == 0
    assert "verified" in capsys.readouterr().out
    assert file_status(spec)[0].state == "verified"  # remembered in the sidecar

    # the row windows are honoured
    expected = read_showers(source)
    with open_role("by-hand", "train") as train, open_role("by-hand", "reference") as reference:
        assert (train.n_showers, reference.n_showers) == (70, 30)
        np.testing.assert_array_equal(reference.read().energies, expected.energies[70:])
        np.testing.assert_allclose(train.incident_energies(), expected.incident_energies[:70])

    # a changed file (same size, new content and mtime) is hashed again and found corrupt
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))
    assert file_status(spec)[0].state == "present-unverified"
    assert main(["datasets", "verify", "by-hand", "--no-progress"]) == 1
    assert "corrupt" in capsys.readouterr().err
    with pytest.raises(ChecksumError, match="corrupt"):
        ensure_files(spec, "train")


def test_trust_on_first_use(
    host: PluginHost, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    spec = register(host, by_hand_spec(None))
    target = spec.path(spec.files[0])
    target.parent.mkdir(parents=True)
    write_random_file(target, "calogan", n=100, seed=4)
    assert file_status(spec)[0].detail.startswith("no published md5")
    with caplog.at_level(logging.WARNING, "calobench.datasets"):
        parts = ensure_files(spec, "reference")  # verifies, recording the md5 once
        ensure_files(spec, "train")
    assert parts == [(target, 70, 100)]
    assert caplog.text.count("recorded md5") == 1
    status = file_status(spec)[0]
    assert status.state == "verified" and status.md5_origin == "first use" and status.expected_md5 == md5_of(target)
    assert main(["datasets", "info", "by-hand"]) == 0
    assert f"none published; {md5_of(target)} recorded on first use (trust on first use)" in capsys.readouterr().out
    # another file later is measured against the recorded md5
    write_random_file(target, "calogan", n=100, seed=5)
    assert verify(spec, progress=False)[0].state == "corrupt"


def test_trust_on_first_use_refuses_a_file_that_does_not_fit_the_card(host: PluginHost) -> None:
    spec = register(host, by_hand_spec(None))
    target = spec.path(spec.files[0])
    target.parent.mkdir(parents=True)
    write_random_file(target, "calogan", n=80, seed=4)  # the card says 100 showers
    status = verify(spec, progress=False)[0]
    assert status.state == "corrupt" and "holds 80 showers" in status.detail
    assert ChecksumStore(spec.directory()).pinned("gamma.hdf5") is None
    target.write_bytes(b"not hdf5 at all")
    assert "not a readable calogan shower file" in verify(spec, progress=False)[0].detail


def test_checksum_sidecar_is_invalidated_by_size_or_mtime(tmp_path: Path) -> None:
    store = ChecksumStore(tmp_path)
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    assert store.md5("f.bin") == hashlib.md5(b"abc").hexdigest()
    assert store.cached_md5("f.bin") == hashlib.md5(b"abc").hexdigest()
    path.write_bytes(b"abcd")
    assert store.cached_md5("f.bin") is None
    assert store.md5("f.bin") == hashlib.md5(b"abcd").hexdigest()
    store.pin("f.bin", "0" * 32, "first use")
    store.forget("f.bin")
    assert store.cached_md5("f.bin") is None and store.pinned("f.bin") is None
    (tmp_path / ".calobench-checksums.json").write_text("{ not json")
    assert store.cached_md5("f.bin") is None  # a damaged sidecar is ignored, never fatal
    assert store.md5("f.bin") == hashlib.md5(b"abcd").hexdigest()


# ---------------------------------------------------------------------- synthetic sets
class Maker:
    """A maker writing random showers; records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int | None, int | None]] = []

    def __call__(
        self, spec: DatasetSpec, file: FileSpec, path: Path, n_showers: int | None = None, seed: int | None = None
    ) -> None:
        self.calls.append((file.name, n_showers, seed))
        n = n_showers or file.n_showers or 32
        write_random_file(path, spec.geometry, n=n, seed=file.seed if seed is None else seed)


def synthetic_spec(maker: Maker) -> DatasetSpec:
    return DatasetSpec(
        name="synthetic-test",
        title="made on demand",
        kind="synthetic",
        geometry="ds1-photons",
        particle="photon",
        format="calochallenge",
        energy_range_mev=(1e3, 1e5),
        maker=maker,
        files=(
            FileSpec("s_1.hdf5", "train", n_showers=40, seed=1),
            FileSpec("s_2.hdf5", "reference", n_showers=24, seed=2),
            FileSpec("s_3.hdf5", "reference", n_showers=16, seed=3),
        ),
    )


def test_ensure_files_makes_missing_synthetic_files_once(host: PluginHost) -> None:
    maker = Maker()
    spec = register(host, synthetic_spec(maker))
    parts = ensure_files("synthetic-test", "reference")
    assert parts == spec.paths("reference") and all(p.is_file() for p in parts)
    assert maker.calls == [("s_2.hdf5", None, None), ("s_3.hdf5", None, None)]
    ensure_files(spec, "reference")
    assert len(maker.calls) == 2
    with open_role(spec, "reference") as showers:  # files joined in card order
        assert showers.n_showers == 40
        expected = np.concatenate(
            [random_showers("ds1-photons", 24, 2).energies, random_showers("ds1-photons", 16, 3).energies]
        )
        np.testing.assert_array_equal(showers.read().energies, expected)
    assert {s.state for s in file_status(spec, ["s_2.hdf5", "s_3.hdf5"])} == {"verified"}
    assert role_checksums(spec, "reference") == {p.name: md5_of(p) for p in parts}
    # a synthetic file changed behind calobench's back is not silently used
    write_random_file(parts[0], "ds1-photons", n=24, seed=99)
    with pytest.raises(ChecksumError, match="datasets make synthetic-test --force"):
        ensure_files(spec, "reference")


def test_make_command(host: PluginHost, capsys: pytest.CaptureFixture) -> None:
    maker = Maker()
    spec = register(host, synthetic_spec(maker))
    assert main(["datasets", "make", "synthetic-test", "--role", "train", "--showers", "12", "--seed", "7"]) == 0
    assert maker.calls == [("s_1.hdf5", 12, 7)]
    assert capsys.readouterr().out.strip() == f"made {spec.path(spec.files[0])}"
    assert main(["datasets", "make", "synthetic-test"]) == 0
    out = capsys.readouterr().out
    assert "kept" in out and out.count("made") == 2 and len(maker.calls) == 3
    assert main(["datasets", "make", "synthetic-test", "--role", "train", "--force"]) == 0
    assert maker.calls[-1] == ("s_1.hdf5", None, None)
    assert read_showers(spec.path(spec.files[0])).energies.shape == (40, 368)
    assert make_files(spec, "train") == [(spec.path(spec.files[0]), False)]
    assert main(["datasets", "list"]) == 0
    line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith("synthetic-test"))
    assert "made locally" in line and "40 / 40" in line and "verified (all 3)" in line


def test_show_writes_overview_plots(host: PluginHost, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("calobench.plots.overview")  # written by the simulator work; skipped until it exists
    register(host, synthetic_spec(Maker()))
    assert main(["datasets", "show", "synthetic-test", "--out", str(tmp_path / "plots"), "--max-showers", "20"]) == 0
    written = [Path(line) for line in capsys.readouterr().out.split()]
    assert written and all(p.suffix == ".png" and p.is_file() and p.parent == tmp_path / "plots" for p in written)
    source = write_random_file(tmp_path / "file.hdf5", "ds1-photons", n=16, seed=0)
    assert main(["datasets", "show", str(source), "--out", str(tmp_path / "plots2")]) == 0
    assert all(Path(line).is_file() for line in capsys.readouterr().out.split())


def test_show_unknown_source(host: PluginHost, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("calobench.plots.overview")
    assert main(["datasets", "show", "no-such-set", "--out", str(tmp_path)]) == 1
    assert "neither a shower file nor a data set" in capsys.readouterr().err
