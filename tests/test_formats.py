"""Shower files: round trips, chunked streaming, geometry detection and one clear error per defect."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calobench.errors import ShowerFileError
from calobench.formats import ShowerWriter, open_showers, read_showers, write_showers
from calobench.geometry import Geometry, builtin_geometry
from calobench.showers import Showers
from calobench.testing import random_showers, write_random_file


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geometry", ["ds1-photons", "ds1-pions", "ds2"])
def test_calochallenge_round_trip(tmp_path: Path, geometry: str, dtype: type) -> None:
    showers = random_showers(geometry, n=37, seed=3, dtype=dtype)
    path = write_showers(tmp_path / "s.hdf5", showers, dtype=dtype)
    with h5py.File(path) as handle:
        assert handle["incident_energies"].shape == (37, 1)
        assert handle["showers"].shape == (37, showers.geometry.n_voxels)
        assert handle["showers"].compression == "gzip"
        assert handle["showers"].dtype == dtype
    back = read_showers(path)
    assert back.geometry.name == geometry
    np.testing.assert_array_equal(back.energies, showers.energies)
    np.testing.assert_allclose(back.incident_energies, showers.incident_energies, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_calogan_round_trip_converts_gev(tmp_path: Path, dtype: type) -> None:
    showers = random_showers("calogan", n=20, seed=1, dtype=dtype)
    path = write_showers(tmp_path / "g.hdf5", showers, dtype=dtype)
    with h5py.File(path) as handle:
        assert set(handle) == {"energy", "layer_0", "layer_1", "layer_2", "overflow"}
        assert handle["layer_0"].shape == (20, 3, 96)
        assert handle["layer_2"].shape == (20, 12, 6)
        np.testing.assert_allclose(handle["energy"][:, 0], showers.incident_energies / 1000.0, rtol=1e-6)
        np.testing.assert_array_equal(handle["layer_1"][5], showers.layer(1)[5])
    back = read_showers(path)
    assert back.geometry == Geometry.calogan()
    np.testing.assert_allclose(back.incident_energies, showers.incident_energies, rtol=1e-6)
    np.testing.assert_array_equal(back.energies, showers.energies)


def test_calogan_reader_accepts_flat_energy(tmp_path: Path) -> None:
    path = tmp_path / "flat.hdf5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as handle:
        handle["energy"] = rng.uniform(1, 100, 5)  # (N,) in GeV, as in the original files
        for key, shape in (("layer_0", (3, 96)), ("layer_1", (12, 12)), ("layer_2", (12, 6))):
            handle[key] = rng.exponential(1.0, (5, *shape))
        handle["overflow"] = np.zeros((5, 3))
    showers = read_showers(path)
    assert showers.energies.shape == (5, 504)
    assert showers.incident_energies.min() >= 1000.0


def test_chunked_iteration_equals_full_read(tmp_path: Path) -> None:
    path = write_random_file(tmp_path / "s.hdf5", "ds1-photons", n=103, seed=5)
    full = read_showers(path)
    with open_showers(path) as handle:
        chunks = list(handle.iter_chunks(chunk_size=10))
    assert [len(c) for c in chunks] == [10] * 10 + [3]
    np.testing.assert_array_equal(np.concatenate([c.energies for c in chunks]), full.energies)
    np.testing.assert_array_equal(np.concatenate([c.incident_energies for c in chunks]), full.incident_energies)


def test_shower_set_joins_files_and_windows(tmp_path: Path) -> None:
    a = write_random_file(tmp_path / "a.hdf5", n=30, seed=1)
    b = write_random_file(tmp_path / "b.hdf5", n=40, seed=2)
    with open_showers([a, (b, 10, 25)]) as joined:
        assert joined.n_showers == 45
        expected = np.concatenate([read_showers(a).energies, read_showers(b).energies[10:25]])
        np.testing.assert_array_equal(joined.read().energies, expected)
        np.testing.assert_array_equal(np.concatenate([c.energies for c in joined.iter_chunks(7)]), expected)
        np.testing.assert_array_equal(joined.read(25, 35).energies, expected[25:35])
    with pytest.raises(ShowerFileError, match="row window"):
        open_showers([(b, 30, 50)])


def test_detects_geometry_from_voxel_count(tmp_path: Path) -> None:
    for name in ("ds1-photons", "ds1-pions", "ds2"):
        path = write_random_file(tmp_path / f"{name}.hdf5", name, n=4)
        with open_showers(path) as handle:
            assert handle.geometry.name == name


# ---------------------------------------------------------------- malformed inputs
def _raw_file(path: Path, einc: np.ndarray, showers: np.ndarray) -> Path:
    with h5py.File(path, "w") as handle:
        handle.create_dataset("incident_energies", data=einc)
        handle.create_dataset("showers", data=showers)
    return path


def test_not_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "notes.hdf5"
    path.write_text("this is not a shower file")
    with pytest.raises(ShowerFileError, match="is not an HDF5 file"):
        read_showers(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ShowerFileError, match="no such file"):
        read_showers(tmp_path / "nothing.hdf5")


def test_truncated_file(tmp_path: Path) -> None:
    path = write_random_file(tmp_path / "t.hdf5", "ds2", n=50, seed=0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ShowerFileError, match="truncated"):
        read_showers(path)


def test_missing_keys(tmp_path: Path) -> None:
    path = tmp_path / "k.hdf5"
    with h5py.File(path, "w") as handle:
        handle["showers"] = np.zeros((3, 368))
    with pytest.raises(ShowerFileError, match=r"missing keys.*incident_energies.*found showers"):
        read_showers(path)


def test_wrong_voxel_count_names_expected_and_found(tmp_path: Path) -> None:
    path = _raw_file(tmp_path / "v.hdf5", np.ones((4, 1)) * 1e3, np.ones((4, 367)))
    with pytest.raises(ShowerFileError, match="ds1-photons expects 368 voxels per shower, found 367"):
        read_showers(path, geometry="ds1-photons")
    with pytest.raises(ShowerFileError, match="no known geometry has 367 voxels"):
        read_showers(path)


def test_length_mismatch(tmp_path: Path) -> None:
    path = _raw_file(tmp_path / "l.hdf5", np.ones((5, 1)) * 1e3, np.ones((4, 368)))
    with pytest.raises(ShowerFileError, match="length mismatch: 5 incident energies but 4 showers"):
        read_showers(path)


@pytest.mark.parametrize(("value", "message"), [(np.nan, "NaN or inf"), (np.inf, "NaN or inf"), (-1.0, "negative")])
def test_bad_values_are_located(tmp_path: Path, value: float, message: str) -> None:
    showers = np.ones((6, 368), dtype=np.float32)
    showers[4, 17] = value
    path = _raw_file(tmp_path / "b.hdf5", np.ones((6, 1)) * 1e3, showers)
    with pytest.raises(ShowerFileError, match=rf"{message}.*shower 4, voxel 17"):
        read_showers(path)
    with open_showers(path) as handle:  # the first chunk is fine, the second fails with the global index
        chunks = handle.iter_chunks(chunk_size=3)
        next(chunks)
        with pytest.raises(ShowerFileError, match="shower 4"):
            next(chunks)


def test_nonpositive_incident_energy(tmp_path: Path) -> None:
    path = _raw_file(tmp_path / "e.hdf5", np.array([[1e3], [0.0]]), np.ones((2, 368)))
    with pytest.raises(ShowerFileError, match="incident energies are not finite and positive"):
        read_showers(path)


def test_wrong_shapes_in_file(tmp_path: Path) -> None:
    path = _raw_file(tmp_path / "s.hdf5", np.ones((2, 2)), np.ones((2, 368)))
    with pytest.raises(ShowerFileError, match=r"'incident_energies' must have shape \(N, 1\)"):
        read_showers(path)
    path = tmp_path / "g.hdf5"
    with h5py.File(path, "w") as handle:
        handle["energy"] = np.ones(2)
        handle["layer_0"] = np.ones((2, 3, 95))
        handle["layer_1"] = np.ones((2, 12, 12))
        handle["layer_2"] = np.ones((2, 12, 6))
    with pytest.raises(ShowerFileError, match=r"'layer_0' must have shape \(N, 3, 96\)"):
        read_showers(path)


def test_empty_file(tmp_path: Path) -> None:
    path = _raw_file(tmp_path / "z.hdf5", np.ones((0, 1)), np.ones((0, 368)))
    with pytest.raises(ShowerFileError, match="holds no showers"):
        read_showers(path)


def test_writer_is_atomic(tmp_path: Path) -> None:
    target = tmp_path / "out.hdf5"
    showers = random_showers("ds1-photons", n=10)
    with pytest.raises(RuntimeError), ShowerWriter(target, showers.geometry) as writer:
        writer.append(showers)
        raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    with ShowerWriter(target, showers.geometry) as writer:
        writer.append(showers[:4])
        writer.append(showers[4:])
    np.testing.assert_array_equal(read_showers(target).energies, showers.energies)


def test_writer_rejects_bad_showers(tmp_path: Path) -> None:
    geometry = builtin_geometry("ds1-photons")
    bad = Showers(np.ones(2) * 1e3, np.full((2, 368), -1.0, dtype=np.float32), geometry)
    with pytest.raises(ShowerFileError, match="negative"):
        write_showers(tmp_path / "bad.hdf5", bad)
    assert not (tmp_path / "bad.hdf5").exists()
    with pytest.raises(ShowerFileError, match="CaloGAN format holds only"):
        ShowerWriter(tmp_path / "x.hdf5", geometry, format="calogan")


def test_in_memory_container_checks_shapes() -> None:
    geometry = builtin_geometry("ds1-photons")
    with pytest.raises(ShowerFileError, match="expects 368 voxels per shower, found 10"):
        Showers(np.ones(3), np.ones((3, 10)), geometry)
    with pytest.raises(ShowerFileError, match="length mismatch"):
        Showers(np.ones(2), np.ones((3, 368)), geometry)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 40),
    chunk=st.integers(1, 50),
    dtype=st.sampled_from([np.float32, np.float64]),
    geometry=st.sampled_from(["ds1-photons", "ds1-pions", "calogan"]),
    seed=st.integers(0, 2**16),
)
def test_reader_round_trip_property(tmp_path: Path, n: int, chunk: int, dtype: type, geometry: str, seed: int) -> None:
    """Any valid sample survives write -> chunked read unchanged, in either format and precision."""
    rng = np.random.default_rng(seed)
    g = builtin_geometry(geometry)
    energies = (rng.exponential(1.0, (n, g.n_voxels)) * (rng.random((n, g.n_voxels)) > 0.3)).astype(dtype)
    incident = rng.uniform(1e3, 1e6, n)
    path = write_showers(tmp_path / f"p-{seed}-{n}.hdf5", Showers(incident, energies, g), dtype=dtype)
    with open_showers(path) as handle:
        assert handle.n_showers == n and handle.geometry == g
        back = np.concatenate([c.energies for c in handle.iter_chunks(chunk)])
    np.testing.assert_array_equal(back, energies)
    path.unlink()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n_voxels=st.integers(1, 600).filter(lambda v: v not in (368, 504, 533)), seed=st.integers(0, 100))
def test_reader_rejects_any_wrong_voxel_count(tmp_path: Path, n_voxels: int, seed: int) -> None:
    path = _raw_file(tmp_path / f"w{n_voxels}.hdf5", np.ones((2, 1)) * 1e3, np.ones((2, n_voxels)))
    with pytest.raises(ShowerFileError, match=f"expects 368 voxels per shower, found {n_voxels}"):
        read_showers(path, geometry="ds1-photons")
    path.unlink()
