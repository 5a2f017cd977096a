"""The caloinn and caloinn-vae generators: registration, the contract on every supported geometry,
presets, resume, checkpoints, unsupported geometries."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from calobench_caloinn.inn import CaloINN
from calobench_caloinn.vae_inn import CaloVAEINN
from caloinn_data import tiny_showers

from calobench.errors import CheckpointError, ConfigError
from calobench.generator.torch_base import WEIGHTS_FILE
from calobench.geometry import Geometry, builtin_geometry
from calobench.plugins import generators
from calobench.showers import Showers
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
    # OneCycleLR with torch's defaults: from 1e-4 / 25 = 4e-6; AdamW eps 1e-10; 1 % validation
    assert ds1["schedule"]["max_lr"] == 1e-4 and ds1["schedule"]["div_factor"] == 25.0
    assert (ds1["lr"], ds1["adam_eps"], ds1["valid_fraction"], ds1["threshold_mev"]) == (4e-6, 1e-10, 0.01, 0.0)
    assert (ds1["noise_width"], ds1["alpha"], ds1["u0_max"], ds1["voxel_max_mev"]) == (5e-6, 1e-8, 7.0, 0.0)
    pions = CaloINN(builtin_geometry("ds1-pions"), preset="paper").config
    assert (pions["u0_max"], pions["voxel_max_mev"]) == (3.5, 6.0e5)
    ds2 = CaloINN(builtin_geometry("ds2"), preset="paper").config
    assert (ds2["blocks"], ds2["subnet_layers"], ds2["spline"], ds2["epochs"], ds2["batch_size"]) == (
        14,
        3,
        "cubic",
        200,
        256,
    )
    vae1 = CaloVAEINN(builtin_geometry("ds1-photons"), preset="paper").config
    assert (vae1["vae_hidden"], vae1["latent"], vae1["kernel_size"], vae1["threshold_mev"]) == (
        [5000, 1000, 500],
        50,
        None,
        2e-3,
    )
    assert (vae1["beta"], vae1["gamma"], vae1["vae_alpha"], vae1["internal_threshold_mev"]) == (1e-5, 1e4, 1e-6, 0.0)
    assert (vae1["vae_epochs"], vae1["vae_batch_size"], vae1["vae_lr"], vae1["vae_schedule"]["name"]) == (
        1000,
        256,
        1e-4,
        "none",
    )
    assert (vae1["vae_optimizer"], vae1["vae_weight_decay"], vae1["valid_fraction"]) == ("adam", 1e-7, 0.2)
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
    assert (vae1["inn_schedule"]["max_lr"], vae1["inn_weight_decay"], vae1["inn_adam_eps"]) == (5e-4, 0.0, 1e-10)
    vae2 = CaloVAEINN(builtin_geometry("ds2"), preset="paper").config
    assert (vae2["vae_hidden"], vae2["latent"], vae2["kernel_size"], vae2["kernel_stride"]) == (
        [1500, 1000, 500],
        50,
        7,
        3,
    )
    assert (vae2["kernel_hidden"], vae2["kernel_latent"], vae2["vae_alpha"]) == ([1500, 800, 300], 50, 1e-8)
    assert (vae2["threshold_mev"], vae2["internal_threshold_mev"]) == (pytest.approx(0.01515), 0.02)
    vae3 = CaloVAEINN(builtin_geometry("ds3"), preset="paper").config
    assert (vae3["vae_hidden"], vae3["latent"], vae3["kernel_stride"]) == ([2000, 1000, 600], 300, 5)
    # outside the paper preset null keeps its meaning: the data's own readout threshold
    assert CaloVAEINN(builtin_geometry("ds1-photons"), preset="quick").config["threshold_mev"] is None


#: Keys the quick and smoke presets may change: sizes, showers, epochs and the learning rate that
#: goes with fewer epochs (FIDELITY.md says why) -- never the method.
SIZE_KEYS = {
    "caloinn": {"blocks", "hidden", "subnet_layers", "bins", "max_train_showers", "max_valid_showers", "epochs"}
    | {"batch_size", "lr", "schedule", "sample_batch_size", "valid_fraction"},
    "caloinn-vae": {"vae_hidden", "latent", "kernel_hidden", "kernel_latent", "inn_blocks", "inn_hidden"}
    | {"inn_subnet_layers", "inn_bins", "max_train_showers", "max_valid_showers", "vae_epochs", "vae_batch_size"}
    | {"vae_lr", "inn_epochs", "inn_batch_size", "inn_lr", "inn_schedule", "sample_batch_size", "threshold_mev"},
}


@pytest.mark.parametrize("name", sorted(GENERATORS))
@pytest.mark.parametrize("geometry", ["ds1-photons", "ds1-pions", "ds2"])
def test_quick_and_smoke_presets_are_the_published_method(name, geometry):
    cls = GENERATORS[name]
    paper = cls(builtin_geometry(geometry), preset="paper").config
    for preset in ("quick", "smoke"):
        config = cls(builtin_geometry(geometry), preset=preset).config
        changed = {key for key in paper if config[key] != paper[key]}
        assert changed <= SIZE_KEYS[name], (preset, changed - SIZE_KEYS[name])
        for key in ("schedule", "inn_schedule"):
            if key in config:  # one-cycle with torch's divisor, whatever the peak
                assert config[key]["name"] == "onecycle" and config[key]["div_factor"] == 25.0


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


def test_the_conditions_are_the_published_ones():
    """The INN sees log2(E_inc / GeV) itself (``log_cond``; ``standardize_condition`` gives the training
    mean and width instead); the latent INN ln(E_inc / 100 GeV) (mark_2's CINN: ``torch.log(c)``)."""
    train = tiny_showers(n=96, seed=0)
    energies = torch.tensor([256.0, 1024.0, 4.0e6])
    expected = torch.log2(energies / 1e3).reshape(-1, 1)
    published = CaloINN(train.geometry, preset="smoke")
    published.fit_preprocessing(train)
    torch.testing.assert_close(published.condition(energies), expected)
    standardized = CaloINN(train.geometry, {"standardize_condition": True}, preset="smoke")
    standardized.fit_preprocessing(train)
    log2 = torch.log2(torch.as_tensor(train.incident_energies, dtype=torch.float64) / 1e3)
    torch.testing.assert_close(
        standardized.condition(energies.double()), (expected.double() - log2.mean()) / log2.std(), rtol=1e-5, atol=1e-5
    )
    from calobench_caloinn.preprocessing import inn_energy_condition

    torch.testing.assert_close(inn_energy_condition(energies), torch.log(energies / 1e5).reshape(-1, 1))


def test_the_published_event_cuts_and_validation_split():
    """INN: u_0 = E_dep / E_inc < 7 (pions 3.5) and, for pions, every voxel < 600 GeV; VAE: 0 < E_dep <
    2 E_inc. The validation set is 1 % (INN) / 20 % (VAE) of the showers that pass, drawn at random."""
    pions = tiny_showers("ds1-pions", n=200, seed=0)
    energies, incident = np.array(pions.energies), np.array(pions.incident_energies)
    energies[0] *= 4.0 * incident[0] / energies[0].sum()  # u_0 = 4
    incident[1] = 2.0e6
    energies[1] *= 1.0e6 / energies[1].sum()
    energies[1, 0] = 7.0e5  # one voxel of 700 GeV, u_0 about 0.85
    energies[2] = 0.0  # no deposit
    data = Showers(incident, energies, pions.geometry)
    inn = CaloINN(data.geometry, {"max_train_showers": None, "max_valid_showers": None}, preset="paper")
    assert inn.event_mask(data)[:3].tolist() == [False, False, True]
    train, valid = inn.training_split(data[:150], data[150:], seed=0)
    assert valid is not None and len(valid) == 2 and len(train) == 196  # 1 % of the 198 that pass
    vae = CaloVAEINN(data.geometry, {"max_train_showers": None, "max_valid_showers": None}, preset="paper")
    assert vae.event_mask(data)[:3].tolist() == [False, True, False]  # u_0 = 4 > 2; no deposit
    train, valid = vae.training_split(data, None, seed=0)
    assert len(valid) == round(0.2 * 198) and len(train) + len(valid) == 198
    again = vae.training_split(data, None, seed=0)
    np.testing.assert_array_equal(again[1].energies, valid.energies)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_training_ends_with_the_last_epochs_weights(name):
    """The published trainers sample the final model (their validation loss is only printed)."""
    cls = GENERATORS[name]
    train, valid = tiny_showers(n=96, seed=0), tiny_showers(n=32, seed=1)
    epochs = {"epochs": 3} if name == "caloinn" else {"vae_epochs": 2, "inn_epochs": 3}
    model = cls(train.geometry, {**epochs, "valid_fraction": None}, preset="smoke")
    weights = []
    model.callbacks.append(
        lambda stage, record: weights.append({k: v.clone() for k, v in model.modules.state_dict().items()})
    )
    model.fit(train, valid, seed=0)
    assert all(result.history[-1]["valid_loss"] is not None for result in model.training_results)
    for key, value in model.modules.state_dict().items():
        assert torch.equal(value, weights[-1][key]), key


def test_inn_runs_saved_before_the_published_post_processing_keep_theirs(tmp_path):
    train = tiny_showers(n=96, seed=0)
    model = CaloINN(train.geometry, preset="smoke")
    model.fit(train, None, seed=0)
    model.save(tmp_path / "run")
    description = json.loads((tmp_path / "run" / "generator.json").read_text())
    del description["config"]["method_version"]
    del description["state"]["preprocessing"]["method_version"]
    (tmp_path / "run" / "generator.json").write_text(json.dumps(description))
    old = CaloINN.load(tmp_path / "run", device="cpu")
    assert old.legacy and not model.legacy and old.config["method_version"] == 1
    assert old.sample_showers(train.incident_energies[:8], seed=2).energies.shape == (8, train.geometry.n_voxels)
    with pytest.raises(ConfigError, match="loaded and sampled, not trained"):
        old.fit(train, None, seed=0)


def test_vae_runs_saved_before_the_published_method_are_refused(tmp_path):
    train = tiny_showers(n=96, seed=0)
    model = CaloVAEINN(train.geometry, preset="smoke")
    model.fit(train, None, seed=0)
    model.save(tmp_path / "run")
    assert CaloVAEINN.load(tmp_path / "run", device="cpu").config["method_version"] == 2
    description = json.loads((tmp_path / "run" / "generator.json").read_text())
    del description["config"]["method_version"]
    description["config"]["decoder_noise"] = "none"  # a key of the old presets
    (tmp_path / "run" / "generator.json").write_text(json.dumps(description))
    with pytest.raises(
        CheckpointError, match="before calobench-caloinn followed the published method.*train caloinn-vae"
    ):
        CaloVAEINN.load(tmp_path / "run", device="cpu")


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


def test_the_vae_diagnostics_compare_the_sharpness_of_data_reconstructions_and_samples(tmp_path, capsys):
    from calobench_caloinn.diagnostics import main, vae_sharpness

    from calobench.formats import write_showers

    train = tiny_showers(n=96, seed=0)
    model = CaloVAEINN(train.geometry, preset="smoke")
    model.fit(train, None, seed=0)
    rows = vae_sharpness(model, train[:32])
    assert [row.label for row in rows] == ["data", "reconstructed", "generated"]
    data = np.asarray(train.energies[:32], dtype=np.float64)
    assert rows[0].voxels_above_1mev == pytest.approx(float((data > 1).sum(1).mean()))
    model.save(tmp_path / "run")
    write_showers(tmp_path / "reference.h5", train)
    main([str(tmp_path / "run"), str(tmp_path / "reference.h5"), "--showers", "32"])
    assert "reconstructed" in capsys.readouterr().out
