"""Helpers for tests, in calobench's own suite and in plugins' suites.

* :func:`random_showers` / :func:`write_random_file` make tiny, deterministic shower samples and
  files of any geometry (not physical: for I/O, plumbing and contract tests).
* :func:`check_generator_contract` runs the checks every registered generator must pass: train
  with the ``smoke`` preset, sample the right shape, dtype and units, reproduce a sample from the
  same seed, and survive a save/load round trip.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from calobench.formats import Format, write_showers
from calobench.geometry import Geometry, resolve_geometry
from calobench.showers import Showers

__all__ = ["random_showers", "write_random_file", "check_generator_contract"]


def random_showers(geometry: "Geometry | str" = "ds1-photons", n: int = 64, seed: int = 0,
                   energy_range_mev: tuple[float, float] = (1e3, 1e5), sparsity: float = 0.5,
                   dtype: type = np.float32) -> Showers:
    """``n`` random showers: log-uniform incident energies, voxel energies that sum to ~E_inc with
    a fraction ``sparsity`` of exact zeros."""
    geometry = resolve_geometry(geometry)
    rng = np.random.default_rng(seed)
    low, high = np.log(energy_range_mev[0]), np.log(energy_range_mev[1])
    incident = np.exp(rng.uniform(low, high, n))
    weights = rng.exponential(1.0, (n, geometry.n_voxels)) * (rng.random((n, geometry.n_voxels)) >= sparsity)
    weights[:, 0] += 1e-3  # no empty shower
    fractions = weights / weights.sum(axis=1, keepdims=True)
    response = rng.normal(0.95, 0.03, (n, 1)).clip(0.5, 1.2)
    energies = (fractions * incident[:, None] * response).astype(dtype)
    return Showers(incident, energies, geometry)


def write_random_file(path: str | Path, geometry: "Geometry | str" = "ds1-photons", n: int = 64, seed: int = 0,
                      format: Format | None = None, dtype: type = np.float32) -> Path:
    """Write :func:`random_showers` to ``path`` (CaloGAN format for the CaloGAN geometry)."""
    return write_showers(path, random_showers(geometry, n, seed, dtype=dtype), format=format, dtype=dtype)


def check_generator_contract(generator_cls: type, train: Showers, valid: Showers | None = None,
                             workdir: Path | None = None, n_sample: int = 16, dataset: str | None = None,
                             preset: str = "smoke", device: str = "cpu") -> None:
    """Assert that ``generator_cls`` honours the :class:`~calobench.generator.Generator` contract.

    Trains with the ``smoke`` preset (changed by the class's ``contract_config``; on ``device``, the
    CPU by default; ``dataset`` names the data set ``train`` comes from, for generators that need
    it), then checks that the presets share their keys, the sample's shape, dtype (float32) and
    values (finite, >= 0 MeV), reproducibility from a seed, that another seed gives another sample,
    and a save/load round trip on ``device`` that keeps the configuration, the parameter count and
    the sample.
    Raises ``AssertionError`` (or the generator's own error) on the first violation.
    """
    from calobench.generator.base import PRESETS, Generator

    assert issubclass(generator_cls, Generator), f"{generator_cls} is not a calobench Generator"
    assert generator_cls.name, f"{generator_cls.__name__} has no registry name"
    for name in PRESETS:
        assert name in generator_cls.presets, f"{generator_cls.name} lacks the {name!r} preset"
    keys = {name: set(generator_cls.presets[name]) for name in PRESETS}
    assert all(k == keys["smoke"] for k in keys.values()), \
        f"{generator_cls.name}: presets must share their keys (so that --set works on each): {keys}"
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        overrides = generator_cls.contract_config(train, valid, tmp_path / "prepared")
        model = generator_cls(train.geometry, overrides, preset=preset, dataset=dataset, device=device)
        model.fit(train, valid, seed=0, workdir=workdir or tmp_path / "work")
        incident = train.incident_energies[:n_sample]
        first = model.sample_showers(incident, seed=123).energies
        second = model.sample_showers(incident, seed=123).energies
        assert first.shape == (len(incident), train.geometry.n_voxels)
        assert first.dtype == np.float32
        np.testing.assert_array_equal(first, second, err_msg=f"{generator_cls.name}: same seed, different sample")
        other = model.sample_showers(incident, seed=124).energies
        assert not np.array_equal(first, other), f"{generator_cls.name}: the seed does not change the sample"
        model.save(tmp_path / "saved")
        restored = generator_cls.load(tmp_path / "saved", device=device)
        assert type(restored) is generator_cls
        assert restored.config == model.config and restored.preset == model.preset
        again = restored.sample_showers(incident, seed=123).energies
        np.testing.assert_allclose(again, first, rtol=1e-5, atol=1e-6,
                                   err_msg=f"{generator_cls.name}: sample changed after save/load")
        assert restored.n_parameters() == model.n_parameters()
