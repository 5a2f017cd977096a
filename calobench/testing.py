"""Helpers for tests, in calobench's own suite and in plugins' suites.

* :func:`random_showers` / :func:`write_random_file` make tiny, deterministic shower samples and
  files of any geometry (not physical: for I/O, plumbing and contract tests);
  :func:`random_dataset` a registrable data set of such files.
* :func:`simulated_showers`, :func:`scale_energies`, :func:`shuffle_within_layers` make the
  simulator samples and the known mis-modellings the metric tests use, and
  :func:`response_likelihood_auc` is the AUC an optimal classifier reaches from E_tot/E_inc alone.
* :func:`check_generator_contract` runs the checks every registered generator must pass: train
  with the ``smoke`` preset, sample the right shape, dtype and units, reproduce a sample from the
  same seed, and survive a save/load round trip.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from calobench.formats import Format, write_showers
from calobench.geometry import Geometry, resolve_geometry
from calobench.showers import Showers

if TYPE_CHECKING:
    from collections.abc import Callable

    from calobench.datasets.spec import DatasetSpec
    from calobench.generator.torch_base import TorchGenerator

__all__ = [
    "TrainingInterrupted",
    "assert_same_weights",
    "check_generator_contract",
    "random_dataset",
    "random_showers",
    "response_likelihood_auc",
    "scale_energies",
    "shuffle_within_layers",
    "simulated_showers",
    "straight_and_resumed",
    "write_random_file",
]


def random_showers(
    geometry: Geometry | str = "ds1-photons",
    n: int = 64,
    seed: int = 0,
    energy_range_mev: tuple[float, float] = (1e3, 1e5),
    sparsity: float = 0.5,
    dtype: type = np.float32,
) -> Showers:
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


def write_random_file(
    path: str | Path,
    geometry: Geometry | str = "ds1-photons",
    n: int = 64,
    seed: int = 0,
    format: Format | None = None,
    dtype: type = np.float32,
) -> Path:
    """Write :func:`random_showers` to ``path`` (CaloGAN format for the CaloGAN geometry)."""
    return write_showers(path, random_showers(geometry, n, seed, dtype=dtype), format=format, dtype=dtype)


def random_dataset(name: str, n_train: int = 60, n_reference: int = 20, geometry: str = "ds1-photons") -> "DatasetSpec":
    """A tiny synthetic data set of :func:`random_showers` files (made on first use in the data
    directory), for tests that need a registered data set: add it to a test host's ``datasets``."""
    from calobench.datasets.spec import DatasetSpec, FileSpec

    def maker(
        spec: DatasetSpec, file: FileSpec, path: Path, /, n_showers: int | None = None, seed: int | None = None
    ) -> None:
        n = n_showers or file.n_showers or 1
        chosen = seed if seed is not None else file.seed if file.seed is not None else 0
        write_random_file(path, spec.geometry, n=n, seed=chosen)

    return DatasetSpec(
        name=name,
        title=f"tiny random {geometry} showers",
        kind="synthetic",
        geometry=geometry,
        particle="photon",
        format="calogan" if geometry == "calogan" else "calochallenge",
        energy_range_mev=(1e3, 1e5),
        maker=maker,
        files=(
            FileSpec(f"{name}_train.hdf5", "train", n_showers=n_train, seed=1),
            FileSpec(f"{name}_reference.hdf5", "reference", n_showers=n_reference, seed=2),
        ),
    )


def simulated_showers(dataset: str, n: int, seed: int) -> Showers:
    """``n`` simulator showers of a synthetic data set with its incident-energy spectrum (seeded)."""
    from calobench.simulator.api import simulate
    from calobench.simulator.spectra import incident_spectrum

    return simulate(dataset, incident_spectrum(dataset, n, seed), seed)


def scale_energies(showers: Showers, factor: float) -> Showers:
    """The same showers with every voxel energy multiplied by ``factor`` (a global energy-scale error)."""
    return Showers(showers.incident_energies, showers.energies * np.float32(factor), showers.geometry)


def shuffle_within_layers(showers: Showers, seed: int) -> Showers:
    """Each shower's voxels permuted at random within each layer: layer energies kept, shapes destroyed."""
    rng = np.random.default_rng(seed)
    energies = showers.energies.copy()
    for block in showers.geometry.layer_slices:
        layer = energies[:, block]
        energies[:, block] = np.take_along_axis(layer, np.argsort(rng.random(layer.shape), axis=1), axis=1)
    return Showers(showers.incident_energies, energies, showers.geometry)


def response_likelihood_auc(reference: Showers, generated: Showers, seed: int = 0, n_bins: int = 60) -> float:
    """AUC of the histogram likelihood ratio of E_tot/E_inc at each incident energy (for data sets
    with discrete energies, such as dataset 1): densities from one half of each sample, the AUC on
    the other half. An optimal classifier that sees only the energy response reaches this value."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    halves = []
    for showers in (reference, generated):
        order = rng.permutation(len(showers))
        ratio = showers.total_energy() / showers.incident_energies
        halves.append([(ratio[rows], showers.incident_energies[rows]) for rows in np.array_split(order, 2)])
    (ref_fit, ref_eval), (gen_fit, gen_eval) = halves
    scores = []
    for ratio, energy in (ref_eval, gen_eval):
        llr = np.zeros(len(ratio))
        for value in np.unique(energy):
            fit_ref, fit_gen = ref_fit[0][ref_fit[1] == value], gen_fit[0][gen_fit[1] == value]
            low, high = np.percentile(np.concatenate([fit_ref, fit_gen]), [0.05, 99.95])
            edges = np.linspace(low, high, n_bins + 1)
            density_ref = np.histogram(fit_ref, edges)[0] + 0.5
            density_gen = np.histogram(fit_gen, edges)[0] + 0.5
            here = energy == value
            index = np.clip(np.searchsorted(edges, ratio[here]) - 1, 0, n_bins - 1)
            llr[here] = np.log(density_ref[index] / density_ref.sum()) - np.log(density_gen[index] / density_gen.sum())
        scores.append(llr)
    labels = np.concatenate([np.ones(len(scores[0])), np.zeros(len(scores[1]))])
    return float(roc_auc_score(labels, np.concatenate(scores)))


def check_generator_contract(
    generator_cls: type,
    train: Showers,
    valid: Showers | None = None,
    workdir: Path | None = None,
    n_sample: int = 16,
    dataset: str | None = None,
    preset: str = "smoke",
    device: str = "cpu",
) -> None:
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
    assert all(k == keys["smoke"] for k in keys.values()), (
        f"{generator_cls.name}: presets must share their keys (so that --set works on each): {keys}"
    )
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
        np.testing.assert_allclose(
            again, first, rtol=1e-5, atol=1e-6, err_msg=f"{generator_cls.name}: sample changed after save/load"
        )
        assert restored.n_parameters() == model.n_parameters()


class TrainingInterrupted(Exception):
    """Raised by :func:`straight_and_resumed` to stop a training after an epoch."""


def straight_and_resumed(
    make_model: "Callable[[], TorchGenerator]",
    train: Showers,
    valid: Showers | None,
    stage: str,
    workdir: Path,
    seed: int = 5,
) -> "tuple[TorchGenerator, TorchGenerator]":
    """Train fresh models from ``make_model`` twice with the same seed: straight through in
    ``workdir/straight``, and in ``workdir/resumed`` interrupted after the first epoch of ``stage``,
    then resumed by a new model from the checkpoints left there. Returns ``(straight, resumed)``,
    whose weights a resumable generator makes bit-identical (:func:`assert_same_weights`)."""
    straight = make_model()
    straight.fit(train, valid, seed=seed, workdir=workdir / "straight")

    def stop(stage_name: str, record: dict) -> None:
        if stage_name == stage and record["epoch"] == 0:
            raise TrainingInterrupted(stage)

    interrupted = make_model()
    interrupted.callbacks.append(stop)
    try:
        interrupted.fit(train, valid, seed=seed, workdir=workdir / "resumed")
    except TrainingInterrupted:
        pass
    else:
        raise AssertionError(f"the training never reached stage {stage!r}")
    resumed = make_model()
    resumed.fit(train, valid, seed=seed, workdir=workdir / "resumed")
    return straight, resumed


def assert_same_weights(expected: "TorchGenerator", got: "TorchGenerator") -> None:
    """The two generators' modules hold the same parameter and buffer names and bit-identical values."""
    import torch

    assert expected.modules is not None and got.modules is not None
    want, have = expected.modules.state_dict(), got.modules.state_dict()
    assert want.keys() == have.keys()
    for key in want:
        assert torch.equal(want[key], have[key]), key
