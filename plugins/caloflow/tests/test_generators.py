"""The caloflow-teacher and caloflow-student generators: contract, student from teacher, resume,
device portability, unsupported geometries."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from calobench_caloflow.student import CaloFlowStudent
from calobench_caloflow.teacher import CaloFlowTeacher
from caloflow_data import tiny_showers

from calobench.errors import CheckpointError, ConfigError
from calobench.generator.torch_base import WEIGHTS_FILE
from calobench.geometry import builtin_geometry
from calobench.plugins import generators
from calobench.testing import assert_same_weights, check_generator_contract, straight_and_resumed


class Interrupt(Exception):
    pass


@pytest.fixture(scope="module")
def trained_teacher(tmp_path_factory) -> Path:
    train, valid = tiny_showers(n=160, seed=0), tiny_showers(n=64, seed=1)
    teacher = CaloFlowTeacher(train.geometry, preset="smoke")
    teacher.fit(train, valid, seed=0)
    directory = tmp_path_factory.mktemp("teacher") / "model"
    teacher.save(directory)
    return directory


def test_both_generators_are_registered():
    assert generators().get("caloflow-teacher") is CaloFlowTeacher
    assert generators().get("caloflow-student") is CaloFlowStudent


def test_teacher_contract(photon_data):
    check_generator_contract(CaloFlowTeacher, *photon_data)


def test_student_contract_and_independence_from_teacher(photon_data, trained_teacher, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    shutil.copytree(trained_teacher, run_dir / "model")  # a run directory holding the saved teacher
    smoke = dict(CaloFlowStudent.presets["smoke"], teacher_checkpoint=str(run_dir))
    monkeypatch.setitem(CaloFlowStudent.presets, "smoke", smoke)
    check_generator_contract(CaloFlowStudent, *photon_data)

    student = CaloFlowStudent(photon_data[0].geometry, preset="smoke")
    student.fit(*photon_data, seed=0)
    teacher = CaloFlowTeacher.load(trained_teacher)
    for mine, theirs in zip(student.modules["flow2"].permutations, teacher.modules["flow2"].permutations):
        assert torch.equal(mine.permutation, theirs.permutation)
    for name, value in teacher.modules["flow1"].state_dict().items():  # Flow I copied, not retrained
        assert torch.equal(student.modules["flow1"].state_dict()[name], value)
    assert all(block.direction == "iaf" for block in student.modules["flow2"].blocks)
    student.save(tmp_path / "student")
    shutil.rmtree(run_dir)
    restored = CaloFlowStudent.load(tmp_path / "student", device="cpu")
    np.testing.assert_array_equal(
        restored.sample(photon_data[1].incident_energies, seed=3),
        student.sample(photon_data[1].incident_energies, seed=3),
    )


def test_student_can_start_from_the_teachers_weights(photon_data, trained_teacher):
    from torch import nn

    geometry = photon_data[0].geometry
    student = CaloFlowStudent(
        geometry,
        preset="smoke",
        config={"teacher_checkpoint": str(trained_teacher), "hidden": 8, "init_from_teacher": True},
    )
    student.fit_preprocessing(photon_data[0])
    flows = nn.ModuleDict(student.build_modules())
    teacher_state = CaloFlowTeacher.load(trained_teacher).modules["flow2"].state_dict()
    for key, value in flows["flow2"].state_dict().items():
        assert torch.equal(value, teacher_state[key]), key
    wider = CaloFlowStudent(
        geometry,
        preset="smoke",
        config={"teacher_checkpoint": str(trained_teacher), "hidden": 16, "init_from_teacher": True},
    )
    with pytest.raises(ConfigError, match="init_from_teacher"):
        wider.fit(*photon_data)


def test_bulk_sampling_draws_the_same_showers_faster_and_is_undone(photon_data, trained_teacher):
    """In ``bulk_sampling`` (calobench sample, the leaderboard's evaluation sample) the teacher's MAF
    blocks take the incremental inverse: the same showers to float rounding; outside it (timing) the
    published full passes."""
    from calobench_caloflow.autoregressive import SplineAutoregressive

    teacher = CaloFlowTeacher.load(trained_teacher, device="cpu")
    energies = photon_data[1].incident_energies[:40]
    blocks = [m for m in teacher.modules.modules() if isinstance(m, SplineAutoregressive)]
    reference = teacher.sample(energies, seed=3)
    with teacher.bulk_sampling():
        assert blocks and all(block.incremental_sampling for block in blocks)
        bulk = teacher.sample(energies, seed=3)
    np.testing.assert_allclose(bulk, reference, rtol=1e-3, atol=1e-3)
    assert not any(block.incremental_sampling for block in blocks)


def test_student_needs_a_teacher(photon_data, tmp_path):
    geometry = photon_data[0].geometry
    with pytest.raises(ConfigError, match="teacher_checkpoint"):
        CaloFlowStudent(geometry, preset="smoke").fit(*photon_data)
    with pytest.raises(ConfigError, match="no saved caloflow-teacher"):
        CaloFlowStudent(geometry, preset="smoke", config={"teacher_checkpoint": str(tmp_path)}).fit(*photon_data)


@pytest.mark.parametrize("stage", ["flow1", "flow2"])
def test_interrupted_teacher_resumes_to_identical_weights(stage, tmp_path):
    train, valid = tiny_showers(n=96, seed=0), tiny_showers(n=32, seed=1)
    config = {"flow1_epochs": 2, "flow2_epochs": 2, "flow2_dropout": 0.1}
    reference, resumed = straight_and_resumed(
        lambda: CaloFlowTeacher(train.geometry, config, preset="smoke"), train, valid, stage, tmp_path
    )
    assert_same_weights(reference, resumed)


def test_interrupted_student_resumes_to_identical_weights(trained_teacher, tmp_path):
    train, valid = tiny_showers(n=96, seed=0), tiny_showers(n=32, seed=1)
    config = {"teacher_checkpoint": str(trained_teacher), "epochs": 2}
    reference = CaloFlowStudent(train.geometry, config, preset="smoke")
    reference.fit(train, valid, seed=2, workdir=tmp_path / "straight")
    interrupted = CaloFlowStudent(train.geometry, config, preset="smoke")
    interrupted.callbacks.append(lambda stage, record: (_ for _ in ()).throw(Interrupt()))
    with pytest.raises(Interrupt):
        interrupted.fit(train, valid, seed=2, workdir=tmp_path / "resumed")
    resumed = CaloFlowStudent(train.geometry, config, preset="smoke")
    resumed.fit(train, valid, seed=2, workdir=tmp_path / "resumed")
    history = resumed.training_results[0].history
    assert len(history) == 2 and all(record["valid_loss"] is None for record in history)
    kl = [record["kl"] for record in history]  # the mean KL of the epoch's training steps picks the epoch
    assert resumed.training_results[0].best_epoch == int(np.argmin(kl))
    expected, got = reference.modules.state_dict(), resumed.modules.state_dict()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key


def test_checkpoint_saved_on_any_device_loads_on_cpu(photon_data, tmp_path):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = CaloFlowTeacher(photon_data[0].geometry, preset="smoke", device=device)
    model.fit(*photon_data, seed=0, workdir=tmp_path / "work")
    model.save(tmp_path / "saved")
    payload = torch.load(tmp_path / "saved" / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    assert payload["modules"]["flow2"]
    for checkpoint in (tmp_path / "work").glob("*.pt"):
        torch.load(checkpoint, map_location="cpu", weights_only=True)
    restored = CaloFlowTeacher.load(tmp_path / "saved", device="cpu")
    for key, value in model.modules.state_dict().items():
        assert torch.equal(restored.modules.state_dict()[key], value.cpu()), key
    energies = photon_data[1].incident_energies[:8]
    assert restored.sample(energies, seed=0).shape == (8, photon_data[0].geometry.n_voxels)


@pytest.mark.parametrize("name", ["ds1-pions", "calogan"])
def test_other_published_geometries(name):
    train = tiny_showers(name, n=96, seed=0)
    model = CaloFlowTeacher(train.geometry, preset="smoke")
    model.fit(train, None, seed=0)
    sample = model.sample_showers(train.incident_energies[:16], seed=1)
    assert sample.energies.shape == (16, train.geometry.n_voxels)
    assert model.modules["flow2"].features == train.geometry.n_voxels
    assert model.modules["flow1"].features == train.geometry.n_layers


@pytest.mark.parametrize("name", ["ds2", "ds3"])
def test_high_granularity_geometries_are_refused(name):
    geometry = builtin_geometry(name)
    for cls in (CaloFlowTeacher, CaloFlowStudent):
        with pytest.raises(ConfigError, match=f"{geometry.n_voxels} voxels"):
            cls(geometry, preset="smoke")


def test_paper_preset_uses_published_sizes():
    photons = CaloFlowTeacher(builtin_geometry("ds1-photons"), preset="paper")
    pions = CaloFlowTeacher(builtin_geometry("ds1-pions"), preset="paper")
    assert photons.architecture()["flow2_hidden"] == 378 and pions.architecture()["flow2_hidden"] == 533
    config = photons.config
    assert (config["flow2_blocks"], config["flow2_bins"], config["tail_bound"], config["flow2_dropout"]) == (
        8,
        8,
        14.0,
        0.05,
    )
    assert (config["flow1_blocks"], config["flow1_hidden"], config["flow1_hidden_layers"]) == (6, 64, 3)
    assert config["dtype"] == "float64" and config["threshold_mev"] == 0.01
    student = CaloFlowStudent(builtin_geometry("ds1-photons"), preset="paper")
    assert student.student_hidden == 736 and student.config["batch_size"] == 175
    assert CaloFlowStudent(builtin_geometry("ds1-pions"), preset="paper").student_hidden == 500


def test_paper_preset_takes_each_geometrys_published_schedule():
    """Photons: CyclicLR teacher, batch 200; pions: OneCycle (pct 0.45) teacher at batch 500, student
    150 epochs with div_factor 50 and uniform z-term energies; CaloGAN: MultiStepLR everywhere, Flow I
    75 epochs, student gradients summed over 2/4/8/16 batches. An explicit key wins."""
    photons = CaloFlowTeacher(builtin_geometry("ds1-photons"), preset="paper").config
    pions = CaloFlowTeacher(builtin_geometry("ds1-pions"), preset="paper").config
    calogan = CaloFlowTeacher(builtin_geometry("calogan"), preset="paper").config
    assert photons["flow2_schedule"]["name"] == "cyclic" and photons["flow2_batch_size"] == 200
    assert pions["flow2_schedule"]["name"] == "onecycle" and pions["flow2_schedule"]["pct_start"] == 0.45
    assert pions["flow2_batch_size"] == 500 and pions["flow1_batch_size"] == 200
    assert calogan["flow1_epochs"] == 75 and calogan["flow1_schedule"]["milestones"] == [5, 15, 40, 60]
    assert calogan["flow2_schedule"] == {"name": "multistep", "milestones": [50], "gamma": 0.5}
    student_pions = CaloFlowStudent(builtin_geometry("ds1-pions"), preset="paper")
    assert student_pions.config["epochs"] == 150 and student_pions.config["schedule"]["div_factor"] == 50.0
    assert student_pions.z_energies == "uniform"
    assert CaloFlowStudent(builtin_geometry("ds1-photons"), preset="paper").z_energies == "data"
    student_calogan = CaloFlowStudent(builtin_geometry("calogan"), preset="paper")
    assert student_calogan.accumulation == ((0, 2), (10, 4), (40, 8), (70, 16))
    assert student_calogan.config["batch_size"] == 200 and student_calogan.z_energies == "uniform"
    assert CaloFlowStudent(builtin_geometry("calogan"), preset="quick").accumulation == ()
    explicit = CaloFlowTeacher(builtin_geometry("ds1-pions"), {"flow2_batch_size": 64}, preset="paper")
    assert explicit.config["flow2_batch_size"] == 64
    with pytest.raises(ConfigError, match="accumulation"):
        CaloFlowStudent(builtin_geometry("calogan"), {"accumulation": [[0]]}, preset="smoke")
    with pytest.raises(ConfigError, match="z_energies"):
        CaloFlowStudent(builtin_geometry("calogan"), {"z_energies": "log"}, preset="smoke")


def test_z_term_energies_are_drawn_as_published():
    """Photons: from the training spectrum (the shuffled DS1 list); pions and CaloGAN: uniform between
    the smallest and largest training energy; independent of the x-term's batch."""
    pool = torch.tensor([256.0, 1024.0, 4096.0], dtype=torch.float64)
    photons = CaloFlowStudent(builtin_geometry("ds1-photons"), preset="smoke")
    photons._z_pool = pool
    torch.manual_seed(0)
    drawn = photons.z_incident_energies(600, torch.device("cpu"))
    assert set(drawn.tolist()) == set(pool.tolist())
    pions = CaloFlowStudent(builtin_geometry("ds1-pions"), preset="smoke")
    pions._z_pool = pool
    uniform = pions.z_incident_energies(2000, torch.device("cpu"))
    assert uniform.min() >= 256.0 and uniform.max() <= 4096.0 and len(set(uniform.tolist())) == 2000
    assert abs(float(uniform.mean()) - 2176.0) < 60.0  # linear, not logarithmic, in energy


def test_runs_of_an_earlier_model_revision_are_refused(trained_teacher, photon_data, tmp_path):
    """A run saved before the published MADE (no ``revision`` in its state) is refused on loading,
    with what to do; a student cannot start from such a teacher either."""
    import json

    old = tmp_path / "old-teacher"
    shutil.copytree(trained_teacher, old)
    description = json.loads((old / "generator.json").read_text())
    del description["state"]["preprocessing"]["revision"]
    (old / "generator.json").write_text(json.dumps(description))
    with pytest.raises(CheckpointError, match="revision 1.*Train it again"):
        CaloFlowTeacher.load(old)
    student = CaloFlowStudent(photon_data[0].geometry, {"teacher_checkpoint": str(old)}, preset="smoke")
    with pytest.raises(CheckpointError, match="revision 1"):
        student.fit(*photon_data, seed=0)


def test_threshold_is_the_published_one_in_every_preset():
    """0.01 MeV (run_gamma_2023.py:64) in every preset; a missing threshold is a clear error."""
    train = tiny_showers(n=32, seed=0)
    for preset in ("smoke", "quick", "paper"):
        assert CaloFlowTeacher(train.geometry, preset=preset).conventions_from_data(train).threshold_mev == 0.01
    with pytest.raises(ConfigError, match="threshold_mev"):
        CaloFlowTeacher(train.geometry, {"threshold_mev": None}, preset="smoke").conventions_from_data(train)
