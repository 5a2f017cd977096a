"""The direct chunk reader gives exactly h5py's arrays (every filter pipeline it accepts, partial and
unwritten chunks, both byte orders, tiny values), and leaves the layouts it does not handle to h5py."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from calobench.chunkread import chunk_reader


def _write(path: Path, data: np.ndarray, **options) -> h5py.Dataset:
    handle = h5py.File(path, "w")
    dataset = handle.create_dataset("showers", shape=(len(data) + 50, data.shape[1]), dtype=data.dtype, **options)
    dataset[: len(data)] = data  # the last chunks stay unwritten (fill value 0)
    return dataset


def _showers(dtype: str, density: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = (10 ** rng.uniform(-3, 4, (237, 368))).astype(dtype)
    values[rng.random(values.shape) > density] = 0
    values[0, :4] = [np.finfo(dtype).tiny, 2.0**-126, 1e-30, 0.0]  # tiny values keep their bits
    return values


@pytest.mark.parametrize("dtype", ["<f4", ">f4", "<f8"])
@pytest.mark.parametrize("density", [0.05, 0.7])
@pytest.mark.parametrize("shuffle", [True, False])
def test_direct_reads_equal_h5py(tmp_path: Path, dtype: str, density: float, shuffle: bool) -> None:
    data = _showers(dtype, density)
    dataset = _write(tmp_path / "s.h5", data, chunks=(16, 368), compression="gzip", shuffle=shuffle)
    reader = chunk_reader(dataset)
    assert reader is not None
    for start, stop in [(0, 287), (5, 37), (230, 287), (16, 32)]:
        expected = dataset[start:stop]
        got = reader.read(start, stop, lambda a, b: dataset[a:b])
        np.testing.assert_array_equal(got, expected)
        assert got.dtype.isnative
    dataset.file.close()


def test_layouts_it_does_not_handle_are_left_to_h5py(tmp_path: Path) -> None:
    data = _showers("<f4", 0.3)
    with h5py.File(tmp_path / "a.h5", "w") as handle:
        assert chunk_reader(handle.create_dataset("plain", data=data)) is None  # contiguous
        assert chunk_reader(handle.create_dataset("lzf", data=data, chunks=(16, 368), compression="lzf")) is None
        assert chunk_reader(handle.create_dataset("cols", data=data, chunks=(16, 92), compression="gzip")) is None
        assert chunk_reader(handle.create_dataset("sum", data=data, chunks=(16, 368), fletcher32=True)) is None
