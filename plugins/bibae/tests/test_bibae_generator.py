"""The bib-ae generator: registration, contract on every geometry family, resume, checkpoints,
sampling-time switches (latent sampler, post-processor), configuration errors, the paper preset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from bibae_data import tiny_showers
from calobench_bibae.generator import BIBAE

from calobench.errors import ConfigError
from calobench.generator.torch_base import WEIGHTS_FILE
from calobench.geometry import builtin_geometry
from calobench.plugins import generators
from calobench.testing import assert_same_weights, check_generator_contract, straight_and_resumed


@pytest.fixture(scope="module")
def photons():
    return tiny_showers(n=96, seed=0), tiny_showers(n=32, seed=1)


@pytest.fixture(scope="module")
def trained(photons, tmp_path_factory) -> tuple[BIBAE, Path]:
    model = BIBAE(photons[0].geometry, {"calibration": "copula", "calibration_rho": 0.8}, preset="smoke")
    model.fit(*photons, seed=0)
    directory = tmp_path_factory.mktemp("bibae") / "model"
    model.save(directory)
    return model, directory


def test_registered_by_its_distribution():
    registry = generators()
    assert registry.get("bib-ae") is BIBAE
    assert registry.provider("bib-ae").distribution == "calobench-bibae"
    assert BIBAE.published_name is None  # no BIB-AE row in the CaloChallenge 2022 tables


@pytest.mark.parametrize(
    ("geometry", "architecture", "n_train"),
    [("ds1-photons", "mlp", 96), ("ds2", "conv3d", 64), ("ds3", "conv3d", 32), ("calogan", "layer_conv", 64)],
)
def test_contract(geometry, architecture, n_train):
    train, valid = tiny_showers(geometry, n=n_train, seed=0), tiny_showers(geometry, n=16, seed=1)
    assert BIBAE(train.geometry, preset="smoke").architecture == architecture
    check_generator_contract(BIBAE, train, valid)


def test_every_sampler_with_and_without_post_processor(trained, photons, tmp_path):
    model, directory = trained
    energies = photons[1].incident_energies
    samples = {}
    for sampler in ("normal", "kde", "flow"):
        for post in (True, False):
            model.config.update(latent_sampler=sampler, post_processor=post)
            sample = model.sample_showers(energies, seed=5).energies
            assert np.isfinite(sample).all() and (sample >= 0).all()
            samples[sampler, post] = sample
    keys = list(samples)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            assert not np.array_equal(samples[a], samples[b]), (a, b)
    restored = BIBAE.load(directory, device="cpu")  # the KDE is saved with the model
    assert restored.kde is not None and torch.equal(restored.kde.points, model.kde.points)
    restored.config.update(latent_sampler="kde", post_processor=True)
    np.testing.assert_allclose(restored.sample(energies, seed=5), samples["kde", True], rtol=1e-5, atol=1e-6)
    model.config.update(latent_sampler="normal", post_processor=True)


def test_copula_calibration(trained, photons):
    model, directory = trained
    energies = photons[1].incident_energies
    restored = BIBAE.load(directory, device="cpu")
    assert set(restored.generated_marginals) == {"normal/post_processor=True"}  # tabulated by fit, saved
    calibrated = model.sample(energies, seed=2)
    model.config["calibration"] = "none"
    raw = model.sample(energies, seed=2)
    model.config["calibration"] = "copula"
    assert np.isfinite(calibrated).all() and (calibrated >= 0).all() and not np.array_equal(calibrated, raw)
    # the calibrated voxel values are the training data's quantiles: the data's sparsity, not the model's
    train_zero = (photons[0].energies == 0).mean()
    assert abs((calibrated == 0).mean() - train_zero) < abs((raw == 0).mean() - train_zero) + 0.05
    np.testing.assert_array_equal(restored.sample(energies, seed=2), calibrated)
    restored.config["latent_sampler"] = "kde"  # another setting: its marginals are tabulated on demand
    assert np.isfinite(restored.sample(energies, seed=2)).all()
    assert "kde/post_processor=True" in restored.generated_marginals


def test_kde_bandwidth_is_cross_validated(trained):
    model, _ = trained
    assert model.kde.bandwidth in model.config["kde_bandwidths"]
    assert model.kde.points.shape[1] == model.config["latent_encoded"]


def test_samplers_and_post_processor_need_their_training(photons):
    model = BIBAE(
        photons[0].geometry,
        preset="smoke",
        config={"flow_epochs": 0, "pp_pretrain_epochs": 0, "pp_epochs": 0, "post_processor": False},
    )
    model.fit(*photons, seed=0)
    assert set(model.modules) == {"encoder", "decoder", "critic", "latent_critic"}
    model.sample(photons[1].incident_energies[:4], seed=0)
    for key, value, match in (("latent_sampler", "flow", "latent flow"), ("post_processor", True, "post-processor")):
        model.config[key] = value
        with pytest.raises(ConfigError, match=match):
            model.sample(photons[1].incident_energies[:4], seed=0)
        model.config.update(latent_sampler="normal", post_processor=False)


RESUME_CONFIG = {"epochs": 2, "pp_epochs": 2, "flow_epochs": 2, "max_train_showers": 64}


# the adversarial stage (three optimizers) and a plain stage after it; every stage resumes the same way
@pytest.mark.parametrize("stage", ["bibae", "post"])
def test_interrupted_training_resumes_bit_identically(stage, tmp_path):
    train, valid = tiny_showers(n=64, seed=0), tiny_showers(n=16, seed=1)
    reference, resumed = straight_and_resumed(
        lambda: BIBAE(train.geometry, RESUME_CONFIG, preset="smoke"), train, valid, stage, tmp_path, seed=3
    )
    assert_same_weights(reference, resumed)
    assert torch.equal(reference.kde.points, resumed.kde.points)
    assert reference.kde.bandwidth == resumed.kde.bandwidth
    energies = valid.incident_energies
    for sampler in ("normal", "kde", "flow"):
        reference.config["latent_sampler"] = resumed.config["latent_sampler"] = sampler
        np.testing.assert_array_equal(reference.sample(energies, seed=1), resumed.sample(energies, seed=1))


def test_checkpoints_load_with_weights_only(photons, tmp_path):
    model = BIBAE(photons[0].geometry, preset="smoke")
    model.fit(*photons, seed=0, workdir=tmp_path / "work")
    model.save(tmp_path / "saved")
    names = set()
    for checkpoint in (tmp_path / "work").glob("*.pt"):
        payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
        names.add(checkpoint.stem)
        if checkpoint.stem == "bibae":  # every optimizer of the adversarial stage is in it
            assert set(payload["optimizer"]) == {"critic", "latent_critic", "generator"}
            assert payload["optimizer"]["critic"]["param_groups"][0]["betas"] == (0.5, 0.9)
    assert names == {"bibae", "post_pretrain", "post", "latent_flow"}
    weights = torch.load(tmp_path / "saved" / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    assert set(weights["modules"]) == {"encoder", "decoder", "critic", "latent_critic", "post", "latent_flow"}
    assert "kde" in weights["preprocessing"]


def test_configuration_errors():
    photons = builtin_geometry("ds1-photons")
    with pytest.raises(ConfigError, match="latent_encoded"):
        BIBAE(photons, preset="smoke", config={"latent_encoded": 32})
    with pytest.raises(ConfigError, match="latent_sampler"):
        BIBAE(photons, preset="smoke", config={"latent_sampler": "gmm"})
    with pytest.raises(ConfigError, match="conv3d"):
        BIBAE(photons, preset="smoke", config={"architecture": "conv3d"})
    with pytest.raises(ConfigError, match="latent flow"):
        BIBAE(photons, preset="smoke", config={"latent_encoded": 1})
    with pytest.raises(ConfigError, match="calibration"):
        BIBAE(photons, preset="smoke", config={"calibration_rho": 1.5})


def test_paper_preset_is_the_published_configuration():
    config = BIBAE(builtin_geometry("ds2"), preset="paper").config
    assert (config["latent"], config["latent_encoded"]) == (512, 24)
    assert (config["kl_weight"], config["latent_mmd_weight"]) == (0.05, 100.0)
    assert (config["adversarial_weight"], config["latent_adversarial_weight"]) == (1.0, 100.0)
    assert (config["gp_weight"], config["critic_steps"], config["latent_critic_steps"]) == (10.0, 5, 5)
    assert config["betas"] == [0.5, 0.9] and config["reconstruction_weight"] == 0.0
    assert (config["lr"], config["critic_lr"], config["latent_critic_lr"], config["pp_lr"]) == (5e-4, 5e-4, 2e-3, 5e-4)
    for prefix in ("", "critic_", "latent_critic_", "pp_"):
        assert config[prefix + "schedule"] == {"name": "step", "step_size": 1, "gamma": 0.95}
    assert config["batch_size"] == 8 and config["pp_pretrain_epochs"] == 100
    assert (config["pp_mmd_weight"], config["pp_mmd_kernel"], config["pp_mmd_stride"]) == (5.0, 100, 25)
    assert (config["pp_mmd_cutoff"], config["pp_mmd_alpha"]) == (2000, 200.0)
    assert config["latent_sampler"] == "normal" and config["critic_width"] == 128 and config["pp_width"] == 128
