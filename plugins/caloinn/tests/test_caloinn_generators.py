"""The caloinn and caloinn-vae generators: registration, the contract on every supported geometry,
presets, resume, checkpoints, unsupported geometries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from calobench_caloinn.inn import CaloINN
from calobench_caloinn.vae_inn import CaloVAEINN
from caloinn_data import tiny_showers

from calobench.errors import ConfigError
from calobench.generator.torch_base import WEIGHTS_FILE
from calobench.geometry import Geometry, builtin_geometry
from calobench.plugins import generators
from calobench.testing import assert_same_weights, check_generator_contract, straight_and_resumed

GENERATORS = {"caloinn": CaloINN, "caloinn-vae": CaloVAEINN}
CASES = [(name, geometry) for name, cls in GENERATORS.items() for geometry in cls.supported_geometries]


def _sample_sizes(geometry: str) -> tuple[int, int]:
    return (48, 16) if geometry in ("ds2", "ds3") else (160, 64)


def test_both_generators_are_registered_with_their_published_names():
    assert generators().get("caloinn") is CaloINN
    assert generators().get("caloinn-vae") is CaloVAEINN
    assert (CaloINN.published_name, CaloVAEINN.published_name) == ("CaloINN", "CaloVAE+INN")
    assert set(CaloINN.supported_geometries) == {"ds1-photons", "ds1-pions", "calogan", "ds2"}
    assert set(CaloVAEINN.supported_geometries) == {"ds1-photons", "ds1-pions", "calogan", "ds2", "ds3"}


@pytest.mark.parametrize(("name", "geometry"), CASES)
def test_contract(name, geometry):
    n_train, n_valid = _sample_sizes(geometry)
    check_generator_contract(GENERATORS[name], tiny_showers(geometry, n_train, 0), tiny_showers(geometry, n_valid, 1))


def test_unsupported_geometries_are_refused():
    with pytest.raises(ConfigError, match="caloinn does not support geometry 'ds3' .40500 voxels.*caloinn-vae"):
        CaloINN(builtin_geometry("ds3"), preset="smoke")
    custom = Geometry(name="my-calo", kind="cartesian", layers=builtin_geometry("calogan").layers)
    for cls in GENERATORS.values():
        with pytest.raises(ConfigError, match="does not support geometry 'my-calo'"):
            cls(custom, preset="smoke")
        assert cls.unsupported_reason(custom) is not None


def test_paper_presets_take_the_published_settings_per_geometry():
    ds1 = CaloINN(builtin_geometry("ds1-photons"), preset="paper").config
    assert (ds1["blocks"], ds1["hidden"], ds1["subnet_layers"], ds1["bins"], ds1["tail_bound"]) == (
        12,
        256,
        4,
        10,
        18.0,
    )
    assert (ds1["spline"], ds1["epochs"], ds1["batch_size"], ds1["optimizer"], ds1["weight_decay"]) == (
        "rational_quadratic",
        450,
        512,
        "adamw",
        0.01,
    )
    assert ds1["schedule"]["name"] == "onecycle" and ds1["schedule"]["max_lr"] == 1e-4
    assert (ds1["noise_width"], ds1["alpha"]) == (5e-6, 1e-8)
    ds2 = CaloINN(builtin_geometry("ds2"), preset="paper").config
    assert (ds2["blocks"], ds2["subnet_layers"], ds2["spline"], ds2["epochs"], ds2["batch_size"]) == (
        14,
        3,
        "cubic",
        200,
        256,
    )
    vae1 = CaloVAEINN(builtin_geometry("ds1-photons"), preset="paper").config
    assert (vae1["vae_hidden"], vae1["latent"], vae1["beta"], vae1["threshold_mev"]) == (
        [5000, 1000, 500],
        50,
        1e-9,
        2e-3,
    )
    assert (vae1["vae_epochs"], vae1["vae_batch_size"], vae1["vae_lr"]) == (1000, 256, 1e-4)
    assert (
        vae1["inn_blocks"],
        vae1["inn_hidden"],
        vae1["inn_subnet_layers"],
        vae1["inn_bins"],
        vae1["inn_epochs"],
    ) == (
        18,
        32,
        3,
        10,
        200,
    )
    vae2 = CaloVAEINN(builtin_geometry("ds2"), preset="paper").config
    assert (vae2["vae_hidden"], vae2["latent"], vae2["smear_kernel"], vae2["smear_stride"]) == (
        [1500, 1000, 500],
        50,
        7,
        3,
    )
    assert vae2["threshold_mev"] == pytest.approx(0.01515)
    vae3 = CaloVAEINN(builtin_geometry("ds3"), preset="paper").config
    assert (vae3["vae_hidden"], vae3["latent"], vae3["smear_stride"]) == ([2000, 1000, 500], 300, 5)
    # outside the paper preset null keeps its meaning: the data's own readout threshold
    assert CaloVAEINN(builtin_geometry("ds1-photons"), preset="quick").config["threshold_mev"] is None


def test_cubic_spline_option_trains_and_samples():
    train = tiny_showers("ds1-photons", 96, 0)
    model = CaloINN(train.geometry, {"spline": "cubic"}, preset="smoke")
    model.fit(train, None, seed=0)
    sample = model.sample_showers(train.incident_energies[:8], seed=1)
    assert sample.energies.shape == (8, train.geometry.n_voxels)


@pytest.mark.parametrize(
    ("name", "stage", "config"),
    [
        ("caloinn", "main", {"epochs": 2}),
        ("caloinn-vae", "vae", {"vae_epochs": 2, "inn_epochs": 2}),
        ("caloinn-vae", "inn", {"vae_epochs": 2, "inn_epochs": 2}),
    ],
)
def test_interrupted_training_resumes_to_identical_weights(name, stage, config, tmp_path):
    cls = GENERATORS[name]
    train, valid = tiny_showers(n=96, seed=0), tiny_showers(n=32, seed=1)
    reference, resumed = straight_and_resumed(
        lambda: cls(train.geometry, config, preset="smoke"), train, valid, stage, tmp_path
    )
    assert_same_weights(reference, resumed)
    for checkpoint in (tmp_path / "resumed").glob("*.pt"):
        torch.load(checkpoint, map_location="cpu", weights_only=True)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_saved_weights_load_with_weights_only(name, tmp_path):
    cls = GENERATORS[name]
    train = tiny_showers(n=96, seed=0)
    model = cls(train.geometry, preset="smoke")
    model.fit(train, None, seed=0)
    model.save(tmp_path / "saved")
    payload = torch.load(tmp_path / "saved" / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    assert "inn" in payload["modules"]
    restored = cls.load(tmp_path / "saved", device="cpu")
    energies = train.incident_energies[:8]
    torch.testing.assert_close(
        torch.as_tensor(restored.sample(energies, seed=4)), torch.as_tensor(model.sample(energies, seed=4))
    )


def test_the_condition_is_log2_of_the_incident_energy_in_gev_as_published():
    """INN and latent INN see log2(E_inc / GeV) itself (models.md sec. 2.3, the ecae card's
    ``log_cond``); ``standardize_condition`` gives the training mean and width instead."""
    train = tiny_showers(n=96, seed=0)
    energies = torch.tensor([256.0, 1024.0, 4.0e6])
    expected = torch.log2(energies / 1e3).reshape(-1, 1)
    for cls in (CaloINN, CaloVAEINN):
        published = cls(train.geometry, preset="smoke")
        published.fit_preprocessing(train)
        standardized = cls(train.geometry, {"standardize_condition": True}, preset="smoke")
        standardized.fit_preprocessing(train)
        log2 = torch.log2(torch.as_tensor(train.incident_energies, dtype=torch.float64) / 1e3)
        if cls is CaloINN:
            torch.testing.assert_close(published.condition(energies), expected)
            scaled = standardized.condition(energies.double())
        else:
            torch.testing.assert_close(published._inn_context(expected), expected)
            scaled = standardized._inn_context(expected.double()).double()
        torch.testing.assert_close(
            scaled, (expected.double() - log2.mean()) / log2.std(), rtol=1e-5, atol=1e-5, check_dtype=False
        )


def test_runs_saved_with_a_standardized_condition_keep_it():
    """A VAE+INN saved before the latent INN's condition scale was stored keeps the VAE
    condition's standardization on loading (the INN stores its offset and width in every run)."""
    train = tiny_showers(n=96, seed=0)
    model = CaloVAEINN(train.geometry, preset="smoke")
    model.fit_preprocessing(train)
    del model.statistics["inn_condition"]
    log2 = torch.tensor([[0.5]])
    mean, std = model.statistics["condition_mean"][0], model.statistics["condition_std"][0]
    torch.testing.assert_close(model._inn_context(log2), (log2 - mean) / std)


def test_the_u_scale_is_kept_with_the_run():
    """``u_scale`` (``logit(scale u)``, 0.9 as published) is stored with the preprocessing state;
    a run saved before it was stored keeps the published 0.9 whatever the preset says now."""
    train = tiny_showers(n=96, seed=0)
    assert CaloVAEINN(train.geometry, preset="paper").u_scale == pytest.approx(0.9)
    model = CaloVAEINN(train.geometry, {"u_scale": 1.0}, preset="smoke")
    model.fit_preprocessing(train)
    assert model.u_scale == 1.0 and float(model.statistics["u_scale"]) == 1.0
    _, condition, u = model._prepared(train)
    unscaled = torch.sigmoid(condition[:, 1:].double())  # logit(u) itself, up to the 1e-6 regularizer
    torch.testing.assert_close(unscaled, u.double(), atol=1e-5, rtol=0)
    del model.statistics["u_scale"]
    assert model.u_scale == pytest.approx(0.9)


def test_the_u_diagnostics_agree_between_the_flow_and_the_generated_showers(tmp_path, capsys):
    """``calobench_caloinn.diagnostics``: u's straight from the flow and u's of the showers built
    from them agree (the inversion loses nothing), and the reference column is the data's."""
    from calobench_caloinn.diagnostics import main, u_medians

    from calobench.formats import write_showers

    train = tiny_showers(n=160, seed=0)
    model = CaloINN(train.geometry, {"leftover_to_first_empty_layer": True}, preset="smoke")
    model.fit(train, None, seed=0)
    rows = u_medians(model, train, n=64, seed=1)
    assert [row.energy_mev for row in rows] == sorted(set(float(e) for e in train.incident_energies))
    for row in rows:
        assert row.reference.shape == row.flow.shape == (train.geometry.n_layers,)
        np.testing.assert_allclose(row.showers[:1], row.flow[:1], atol=0.02)  # E_dep / (f E_inc)
    model.save(tmp_path / "run")
    write_showers(tmp_path / "reference.h5", train)
    main([str(tmp_path / "run"), str(tmp_path / "reference.h5"), "--showers", "32"])
    assert "reference" in capsys.readouterr().out
