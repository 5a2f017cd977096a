"""The caloman generator: registration, contract on every supported geometry, the three stages,
the automatic latent size, resume, checkpoints and unsupported geometries."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from calobench_caloman.generator import SUPPORTED_GEOMETRIES, CaloMan
from caloman_data import tiny_showers

from calobench.errors import ConfigError
from calobench.generator.base import parse_override, resolve_config
from calobench.generator.torch_base import WEIGHTS_FILE
from calobench.geometry import builtin_geometry
from calobench.plugins import generators
from calobench.testing import assert_same_weights, check_generator_contract, straight_and_resumed


@pytest.fixture(scope="module")
def photon_data():
    return tiny_showers(n=96, seed=0), tiny_showers(n=32, seed=1)


def test_registered_by_its_distribution():
    registry = generators()
    assert registry.get("caloman") is CaloMan
    assert registry.provider("caloman").distribution == "calobench-caloman"
    assert CaloMan.published_name == "CaloMan"


@pytest.mark.parametrize("geometry", SUPPORTED_GEOMETRIES)
def test_contract_on_every_supported_geometry(geometry):
    n = 64 if geometry == "ds3" else 96
    check_generator_contract(CaloMan, tiny_showers(geometry, n=n, seed=0), tiny_showers(geometry, n=24, seed=1))


def test_unsupported_geometry_is_a_clear_error():
    other = dataclasses.replace(builtin_geometry("ds1-photons"), name="my-calorimeter")
    with pytest.raises(ConfigError, match="caloman does not support geometry 'my-calorimeter'"):
        CaloMan(other, preset="smoke")
    assert "does not support" in CaloMan.unsupported_reason(other)


def test_auto_latent_size_is_measured_saved_and_reported(photon_data, tmp_path):
    train, valid = photon_data
    model = CaloMan(train.geometry, preset="smoke")
    assert model.config["latent_dim"] == "auto"
    model.fit(train, valid, seed=0)
    info = model.run_info()
    choice = info["latent_choice"]
    assert info["latent_dim"] == choice["latent_dim"] == max(2, round(choice["estimate"]))
    assert choice["error"] > 0 and choice["n_showers"] == len(train)
    assert model.modules["vae"].latent == info["latent_dim"]
    assert model.modules["flow"].shift.shape == (info["latent_dim"],)
    model.save(tmp_path / "saved")
    stored = json.loads((tmp_path / "saved" / "generator.json").read_text())
    assert stored["state"]["preprocessing"]["latent"]["estimate"] == pytest.approx(choice["estimate"])
    restored = CaloMan.load(tmp_path / "saved", device="cpu")
    assert restored.run_info() == info


def test_latent_dim_can_be_set(photon_data):
    train, valid = photon_data
    config = resolve_config(CaloMan, "smoke", dict([parse_override("latent_dim=5")]))
    model = CaloMan(train.geometry, {"latent_dim": config["latent_dim"]}, preset="smoke")
    model.fit(train, valid, seed=0)
    assert model.run_info()["latent_dim"] == 5 and model.run_info()["latent_choice"]["estimate"] is None
    with pytest.raises(ConfigError, match="latent_dim"):
        CaloMan(train.geometry, {"latent_dim": "many"}, preset="smoke")
    with pytest.raises(ConfigError, match=">= 2"):
        CaloMan(train.geometry, {"latent_dim": 1}, preset="smoke")


def test_three_stages_in_order_and_sampling_above_threshold(photon_data):
    train, valid = photon_data
    model = CaloMan(train.geometry, preset="smoke")
    model.fit(train, valid, seed=0)
    assert [r.name for r in model.training_results] == ["epl", "vae", "flow"]
    sample = model.sample(valid.incident_energies, seed=1)
    threshold = model.conventions.threshold_mev
    assert ((sample == 0) | (sample >= threshold)).all() and np.isfinite(sample).all()


@pytest.mark.parametrize("stage", ["epl", "vae", "flow"])
def test_interrupted_training_resumes_bit_identical(stage, photon_data, tmp_path):
    train, valid = photon_data
    config = {"epl_epochs": 2, "vae_epochs": 2, "flow_epochs": 2}
    reference, resumed = straight_and_resumed(
        lambda: CaloMan(train.geometry, config, preset="smoke"), train, valid, stage, tmp_path
    )
    assert_same_weights(reference, resumed)
    energies = valid.incident_energies
    np.testing.assert_array_equal(reference.sample(energies, seed=3), resumed.sample(energies, seed=3))


def test_checkpoints_load_with_weights_only(photon_data, tmp_path):
    train, valid = photon_data
    model = CaloMan(train.geometry, preset="smoke")
    model.fit(train, valid, seed=0, workdir=tmp_path / "work")
    model.save(tmp_path / "saved")
    payload = torch.load(tmp_path / "saved" / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    assert set(payload["modules"]) == {"epl", "vae", "flow"}
    checkpoints = sorted((tmp_path / "work").glob("*.pt"))
    assert [p.stem for p in checkpoints] == ["epl", "flow", "vae"]
    for checkpoint in checkpoints:
        torch.load(checkpoint, map_location="cpu", weights_only=True)


def test_paper_preset_is_the_published_schedule():
    config = CaloMan(builtin_geometry("ds1-photons"), preset="paper").config
    assert config["vae_hidden"] == [512, 512, 512] and config["latent_dim"] == "auto"
    assert (config["flow_layers"], config["flow_hidden"], config["flow_bins"], config["flow_tail_bound"]) == (
        4,
        64,
        8,
        1.0,
    )
    for prefix, epochs in (("epl_", 300), ("vae_", 300), ("flow_", 200)):
        assert config[prefix + "epochs"] == epochs and config[prefix + "patience"] == 20
        assert (config[prefix + "lr"], config[prefix + "batch_size"], config[prefix + "grad_clip"]) == (1e-3, 512, 10.0)
        assert config[prefix + "optimizer"] == "adam"


def test_decoder_options(photon_data):
    """Beyond the published model: the logit shower space on DS1, one width per voxel, and sampling
    the decoder's Gaussian instead of taking its mean."""
    train, valid = photon_data
    config = {"shower_space": "logit", "decoder_sigma": "voxel", "decoder_output": "sample", "latent_dim": 4}
    model = CaloMan(train.geometry, config, preset="smoke")
    model.fit(train, valid, seed=0)
    assert model.conventions.space == "logit" and model.modules["vae"].log_sigma.shape == (train.geometry.n_voxels,)
    sample = model.sample(valid.incident_energies, seed=1)
    assert np.isfinite(sample).all() and (sample >= 0).all()
    np.testing.assert_array_equal(sample, model.sample(valid.incident_energies, seed=1))
    for key, value in (("shower_space", "log"), ("flow_scaling", "minmax"), ("decoder_output", "mode")):
        with pytest.raises(ConfigError, match=key):
            CaloMan(train.geometry, {key: value}, preset="smoke")
