"""The torch generator base: resume, checkpoints, devices, schedules, early stopping, AMP, save/load."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from calobench.errors import CheckpointError, ConfigError, PluginError
from calobench.generator.checkpoint import load_checkpoint, save_checkpoint
from calobench.generator.device import resolve_device
from calobench.generator.examples import TinyGaussian
from calobench.generator.schedules import build_schedule, schedule_spec
from calobench.generator.settings import TrainSettings, with_training_defaults
from calobench.generator.training import Stage, Trainer, TrainingError
from calobench.testing import random_showers


@pytest.fixture(scope="module")
def data():
    showers = random_showers("ds1-photons", n=96, seed=3)
    return showers[:80], showers[80:]


def _parameters(model):
    return {f"{m}.{k}": v for m, module in model.modules.items() for k, v in module.state_dict().items()}


class Interrupt(Exception):
    pass


def _interrupt_after(stage_name, epochs):
    def callback(stage, record):
        if stage == stage_name and record["epoch"] + 1 == epochs:
            raise Interrupt

    return callback


SCHEDULED = {"schedule": {"name": "onecycle", "max_lr": 2e-2}, "grad_clip": 5.0, "patience": 10}


def test_resume_after_interruption_gives_identical_weights(data, tmp_path):
    train, valid = data
    full = TinyGaussian(train.geometry, SCHEDULED, preset="smoke", device="cpu")
    full.fit(train, valid, seed=7, workdir=tmp_path / "full")

    interrupted = TinyGaussian(train.geometry, SCHEDULED, preset="smoke", device="cpu")
    interrupted.callbacks.append(_interrupt_after("main", 2))
    with pytest.raises(Interrupt):
        interrupted.fit(train, valid, seed=7, workdir=tmp_path / "cut")
    assert load_checkpoint(tmp_path / "cut" / "main.pt")["epoch"] == 2

    resumed = TinyGaussian(train.geometry, SCHEDULED, preset="smoke", device="cpu")
    epochs_run = []
    resumed.callbacks.append(lambda stage, record: epochs_run.append(record["epoch"]))
    resumed.fit(train, valid, seed=7, workdir=tmp_path / "cut")
    assert epochs_run == [2, 3]
    reference, again = _parameters(full), _parameters(resumed)
    assert reference.keys() == again.keys()
    for key in reference:
        assert torch.equal(reference[key], again[key]), key
    assert [r["train_loss"] for r in full.training_results[0].history] == [
        r["train_loss"] for r in resumed.training_results[0].history
    ]
    np.testing.assert_array_equal(
        full.sample(valid.incident_energies, seed=1), resumed.sample(valid.incident_energies, seed=1)
    )


def test_different_seed_gives_different_weights(data):
    train, valid = data
    one = TinyGaussian(train.geometry, preset="smoke", device="cpu")
    one.fit(train, valid, seed=1)
    two = TinyGaussian(train.geometry, preset="smoke", device="cpu")
    two.fit(train, valid, seed=2)
    assert not torch.equal(_parameters(one)["net.0.weight"], _parameters(two)["net.0.weight"])


def test_finished_stage_is_loaded_not_retrained(data, tmp_path):
    train, valid = data
    first = TinyGaussian(train.geometry, preset="smoke", device="cpu")
    first.fit(train, valid, seed=0, workdir=tmp_path)
    second = TinyGaussian(train.geometry, preset="smoke", device="cpu")
    calls = []
    second.callbacks.append(lambda stage, record: calls.append(record))
    second.fit(train, valid, seed=0, workdir=tmp_path)
    assert calls == []
    assert second.training_results[0].skipped
    for key, value in _parameters(first).items():
        assert torch.equal(value, _parameters(second)[key])


def test_checkpoint_of_another_run_is_refused(data, tmp_path):
    train, valid = data
    model = TinyGaussian(train.geometry, preset="smoke", device="cpu")
    model.callbacks.append(_interrupt_after("main", 1))
    with pytest.raises(Interrupt):
        model.fit(train, valid, seed=0, workdir=tmp_path)
    other = TinyGaussian(train.geometry, {"lr": 5e-3}, preset="smoke", device="cpu")
    with pytest.raises(CheckpointError, match="different training run.*settings"):
        other.fit(train, valid, seed=0, workdir=tmp_path)
    wider = TinyGaussian(train.geometry, {"hidden": 9}, preset="smoke", device="cpu")
    with pytest.raises(CheckpointError, match="different training run.*'hidden': 8.*'hidden': 9"):
        wider.fit(train, valid, seed=0, workdir=tmp_path)
    payload = load_checkpoint(tmp_path / "main.pt")
    assert payload["identity"] == {"generator": model.name, "config": model.config}
    np.testing.assert_array_equal(payload["extra"]["preprocessing"]["y_scale"].numpy(), model.y_scale)
    with pytest.raises(CheckpointError, match="seed"):
        TinyGaussian(train.geometry, preset="smoke", device="cpu").fit(train, valid, seed=1, workdir=tmp_path)


def test_checkpoint_loads_with_weights_only_and_map_location(tmp_path):
    payload = {
        "modules": {"net": nn.Linear(3, 2).state_dict()},
        "epoch": 3,
        "history": [{"loss": 1.5}],
        "name": "x",
        "rng": torch.get_rng_state(),
    }
    path = save_checkpoint(tmp_path / "a.pt", payload)
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]  # no temporary file left behind
    for location in ("cpu", torch.device("cpu")):
        loaded = load_checkpoint(path, map_location=location)
        assert loaded["epoch"] == 3 and loaded["history"] == [{"loss": 1.5}]
        for key, value in payload["modules"]["net"].items():
            assert torch.equal(loaded["modules"]["net"][key], value)
            assert loaded["modules"]["net"][key].device.type == "cpu"
    # map_location is applied to every tensor (the mechanism that brings a GPU checkpoint to a CPU machine)
    relocated = load_checkpoint(path, map_location="meta")
    assert {t.device.type for t in relocated["modules"]["net"].values()} == {"meta"}
    assert relocated["rng"].device.type == "meta"


class _NotATensor:
    pass


def test_checkpoint_with_pickled_object_is_refused(tmp_path):
    torch.save({"object": _NotATensor()}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_checkpoint(tmp_path / "bad.pt")
    (tmp_path / "trunc.pt").write_bytes((tmp_path / "bad.pt").read_bytes()[:20])
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "trunc.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_device_resolution(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="unknown device|unsupported device"):
        resolve_device("gpu-please")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto") == torch.device("cuda")
    with pytest.raises(ConfigError, match="1 CUDA device"):
        resolve_device("cuda:3")


SCHEDULES = [
    (
        {"name": "onecycle", "max_lr": 1e-2, "pct_start": 0.4},
        lambda opt, epochs, steps: torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=1e-2, total_steps=epochs * steps, pct_start=0.4
        ),
        True,
    ),
    (
        {"name": "cyclic", "base_lr": 1e-4, "max_lr": 2e-3, "step_size_up": 3},
        lambda opt, epochs, steps: torch.optim.lr_scheduler.CyclicLR(
            opt, 1e-4, 2e-3, step_size_up=3, mode="triangular2", cycle_momentum=False
        ),
        True,
    ),
    (
        {"name": "step", "step_size": 2, "gamma": 0.5},
        lambda opt, epochs, steps: torch.optim.lr_scheduler.StepLR(opt, 2, 0.5),
        False,
    ),
    (
        {"name": "multistep", "milestones": [1, 3], "gamma": 0.3},
        lambda opt, epochs, steps: torch.optim.lr_scheduler.MultiStepLR(opt, [1, 3], 0.3),
        False,
    ),
]


@pytest.mark.parametrize("spec, reference, per_batch", SCHEDULES, ids=[s[0]["name"] for s in SCHEDULES])
def test_schedule_lr_sequence_matches_torch(spec, reference, per_batch):
    epochs, steps = 5, 4
    ours_opt = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1e-3)
    theirs_opt = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1e-3)
    ours = build_schedule(ours_opt, spec, epochs, steps)
    theirs = reference(theirs_opt, epochs, steps)
    assert ours.per_batch == per_batch
    ours_lrs, theirs_lrs = [], []
    for _ in range(epochs):
        for _ in range(steps):
            ours_opt.step()
            ours.step_batch()
            theirs_opt.step()
            if per_batch:
                theirs.step()
            ours_lrs.append(ours_opt.param_groups[0]["lr"])
            theirs_lrs.append(theirs_opt.param_groups[0]["lr"])
        ours.step_epoch()
        if not per_batch:
            theirs.step()
    assert ours_lrs == theirs_lrs
    assert len(set(ours_lrs)) > 1


def test_trainer_follows_the_schedule(data):
    train, _ = data
    spec = {"name": "multistep", "milestones": [1, 2], "gamma": 0.5}
    model = TinyGaussian(train.geometry, {"schedule": spec, "epochs": 3, "lr": 0.01}, preset="smoke", device="cpu")
    model.fit(train, seed=0)
    reference_optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.01)
    reference = torch.optim.lr_scheduler.MultiStepLR(reference_optimizer, [1, 2], 0.5)
    expected = []  # the learning rate used during each epoch
    for _ in range(3):
        expected.append(reference_optimizer.param_groups[0]["lr"])
        reference_optimizer.step()
        reference.step()
    assert [r["lr"] for r in model.training_results[0].history] == expected


def test_bad_schedules_are_config_errors():
    with pytest.raises(ConfigError, match="unknown learning-rate schedule"):
        schedule_spec({"name": "warmup-cosine"})
    with pytest.raises(ConfigError, match="needs the option 'max_lr'"):
        schedule_spec("cyclic")
    with pytest.raises(ConfigError, match="has no option"):
        schedule_spec({"name": "step", "step_size": 2, "gama": 0.5})


def _pull_stage(settings, train_target=1.0, valid_target=-1.0, n=32):
    """A parameter pulled towards ``train_target``: the validation loss (towards ``valid_target``) only grows."""
    module = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(module.weight)

    def loss(batch):
        (target,) = batch
        return ((module.weight.squeeze() - target) ** 2).mean()

    train = (torch.full((n,), train_target),)
    valid = (torch.full((n,), valid_target),)
    return module, Stage("pull", {"w": module}, loss, train, valid, settings)


def test_early_stopping_keeps_best_epoch():
    settings = TrainSettings(epochs=20, batch_size=8, lr=0.01, optimizer="adam", patience=3)
    module, stage = _pull_stage(settings)
    weights_per_epoch = []
    trainer = Trainer(
        stage,
        torch.device("cpu"),
        seed=0,
        callbacks=[lambda name, record: weights_per_epoch.append(module.weight.detach().clone())],
    )
    result = trainer.run()
    assert result.stopped_early and result.best_epoch == 0
    assert len(result.history) == 1 + settings.patience
    valid = [r["valid_loss"] for r in result.history]
    assert valid == sorted(valid) and len(set(valid)) == len(valid)  # got worse every epoch
    assert 0 < float(weights_per_epoch[0]) < float(weights_per_epoch[1])  # it did train
    assert torch.equal(module.weight.detach(), weights_per_epoch[0])  # ... and went back to the best epoch


def test_without_validation_the_training_loss_selects_and_patience_never_fires():
    settings = TrainSettings(epochs=4, batch_size=8, lr=0.05, optimizer="adam", patience=1)
    _, stage = _pull_stage(settings)
    stage.valid = None
    result = Trainer(stage, torch.device("cpu"), seed=0).run()
    assert len(result.history) == 4 and result.best_epoch == 3 and not result.stopped_early


def test_a_monitored_extra_selects_the_best_epoch():
    """``Stage.monitor``: the epoch mean of an extra the loss returns picks the kept weights (CaloFlow II
    keeps the student epoch with the lowest mean KL of its training steps), not the validation loss."""
    settings = TrainSettings(epochs=4, batch_size=8, lr=0.05, optimizer="adam")
    module, stage = _pull_stage(settings)
    plain = stage.loss
    stage.loss = lambda batch: (plain(batch), {"distance": float((module.weight.detach().squeeze() - 0.2) ** 2)})
    stage.monitor = "distance"
    weights = []
    result = Trainer(
        stage, torch.device("cpu"), seed=0, callbacks=[lambda n, r: weights.append(float(module.weight.detach()))]
    ).run()
    distances = [r["distance"] for r in result.history]
    assert result.best_epoch == int(np.argmin(distances)) and 0 < result.best_epoch < 3
    assert float(module.weight.detach()) == weights[result.best_epoch]
    stage.monitor = "missing"
    with pytest.raises(TrainingError, match="monitors 'missing'"):
        Trainer(stage, torch.device("cpu"), seed=0).run()


def test_gradient_accumulation_sums_k_batches_per_step():
    """``Stage.accumulation``: SGD with summed gradients of k batches per step; the leftover of an epoch
    is dropped (CaloFlow II on CaloGAN, 2, 4, 8, 16 batches by epoch)."""
    settings = TrainSettings(epochs=2, batch_size=8, lr=0.1, optimizer="sgd")
    module, stage = _pull_stage(settings, n=40)  # 5 batches per epoch
    stage.valid = None
    stage.accumulation = ((0, 2), (1, 5))
    assert [stage.accumulated_batches(e) for e in (0, 1, 2)] == [2, 5, 5]
    Trainer(stage, torch.device("cpu"), seed=0).run()
    # the same updates by hand: grad of (w - 1)^2 is 2 (w - 1) per batch, summed over k batches
    w = torch.zeros(1, requires_grad=True)
    reference = torch.optim.SGD([w], lr=0.1, momentum=0.9)
    for k, steps in ((2, 2), (5, 1)):  # epoch 0: steps after batches 2 and 4 (batch 5 dropped); epoch 1: one
        for _ in range(steps):
            reference.zero_grad()
            (k * (w - 1.0) ** 2).sum().backward()
            reference.step()
    torch.testing.assert_close(module.weight.detach().view(1), w.detach())
    with pytest.raises(ValueError, match="accumulation"):
        Stage("bad", {"w": module}, stage.loss, stage.train, None, settings, accumulation=((0, 0),))


def test_gradient_clipping_bounds_the_first_step():
    settings = TrainSettings(epochs=1, batch_size=64, lr=1.0, optimizer="sgd", grad_clip=0.1)
    module, stage = _pull_stage(settings, train_target=100.0)
    Trainer(stage, torch.device("cpu"), seed=0).run()
    assert float(module.weight.detach()) == pytest.approx(0.1)  # unclipped: 2 * 100 * lr = 200


def test_a_stage_can_set_adams_eps(tmp_path):
    """``Stage.eps`` reaches the optimizer (CaloINN's cards pass eps 1e-10 to AdamW) and is part of
    the checkpoint's identity, so a run with another eps does not resume from it."""
    settings = TrainSettings(epochs=1, batch_size=8, lr=0.01, optimizer="adamw")
    _, stage = _pull_stage(settings)
    stage.eps = 1e-10
    Trainer(stage, torch.device("cpu"), seed=0, workdir=tmp_path).run()
    payload = load_checkpoint(tmp_path / "pull.pt")
    assert payload["optimizer"]["param_groups"][0]["eps"] == 1e-10 and payload["eps"] == 1e-10
    _, other = _pull_stage(settings)
    with pytest.raises(CheckpointError, match="eps"):
        Trainer(other, torch.device("cpu"), seed=0, workdir=tmp_path).run()


def test_the_default_stage_takes_the_generators_stage_options(data):
    train, valid = data

    class LastEpoch(TinyGaussian):
        def main_stage_options(self):
            return {"keep": "last", "eps": 1e-10}

    stages = {}
    for cls in (TinyGaussian, LastEpoch):
        model = cls(train.geometry, preset="smoke", device="cpu")
        model.fit_preprocessing(train)
        model.modules = nn.ModuleDict(model.build_modules())
        (stages[cls],) = list(model.stages(train, valid))
    assert (stages[TinyGaussian].keep, stages[TinyGaussian].eps) == ("best", None)
    assert (stages[LastEpoch].keep, stages[LastEpoch].eps) == ("last", 1e-10)


def test_amp_is_ignored_on_cpu(data):
    train, valid = data
    with_amp = TinyGaussian(train.geometry, {"amp": True, "epochs": 2}, preset="smoke", device="cpu")
    without = TinyGaussian(train.geometry, {"amp": False, "epochs": 2}, preset="smoke", device="cpu")
    with_amp.fit(train, valid, seed=4)
    without.fit(train, valid, seed=4)
    for key, value in _parameters(with_amp).items():
        assert torch.equal(value, _parameters(without)[key])
    settings = TrainSettings(epochs=1, amp=True)
    _, pull = _pull_stage(settings)
    assert not Trainer(pull, torch.device("cpu"), seed=0).amp_enabled


def test_non_finite_loss_stops_with_clear_error():
    settings = TrainSettings(epochs=2, batch_size=8)
    module = nn.Linear(1, 1)
    stage = Stage(
        "nan", {"m": module}, lambda batch: module.weight.sum() * float("nan"), (torch.zeros(16),), None, settings
    )
    with pytest.raises(TrainingError, match="training loss is nan at epoch 1, batch 1"):
        Trainer(stage, torch.device("cpu"), seed=0).run()


def test_save_load_round_trip(data, tmp_path):
    train, valid = data
    model = TinyGaussian(train.geometry, preset="smoke", device="cpu", dataset="unit-test-set")
    model.fit(train, valid, seed=0)
    model.save(tmp_path / "saved")
    assert sorted(p.name for p in (tmp_path / "saved").iterdir()) == ["generator.json", "weights.pt"]
    restored = TinyGaussian.load(tmp_path / "saved", device="cpu")
    assert restored.dataset == "unit-test-set" and restored.config == model.config
    np.testing.assert_array_equal(restored.y_scale, model.y_scale)
    assert restored.log_e_mean == model.log_e_mean
    assert restored.n_parameters() == model.n_parameters() == sum(p.numel() for p in model.modules.parameters())
    first = model.sample(valid.incident_energies, seed=5)
    np.testing.assert_array_equal(restored.sample(valid.incident_energies, seed=5), first)
    assert first.dtype == np.float32 and first.shape == (len(valid), train.geometry.n_voxels)
    loaded = load_checkpoint(tmp_path / "saved" / "weights.pt")
    assert set(loaded) == {"modules", "preprocessing"}


def test_load_refuses_another_generator(data, tmp_path):
    train, _ = data
    model = TinyGaussian(train.geometry, preset="smoke", device="cpu")
    model.fit(train, seed=0)
    model.save(tmp_path)

    class Other(TinyGaussian):
        name = "other-model"

    with pytest.raises(CheckpointError, match="holds a saved 'example-tiny-gaussian' model, not 'other-model'"):
        Other.load(tmp_path, device="cpu")
    wider = TinyGaussian(train.geometry, {"hidden": 9}, preset="smoke", device="cpu")
    wider.fit(train, seed=0)
    wider.save(tmp_path / "wide")
    import json

    meta = json.loads((tmp_path / "wide" / "generator.json").read_text())
    meta["config"]["hidden"] = 8
    (tmp_path / "wide" / "generator.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not fit the architecture"):
        TinyGaussian.load(tmp_path / "wide", device="cpu")


def test_sampling_is_seeded_batched_and_leaves_global_rng_alone(data):
    train, valid = data
    model = TinyGaussian(train.geometry, preset="smoke", device="cpu")
    model.fit(train, seed=0)
    energies = valid.incident_energies
    torch.manual_seed(11)
    expected_next = torch.rand(3)
    torch.manual_seed(11)
    a = model.sample(energies, seed=9, batch_size=5)
    assert torch.equal(torch.rand(3), expected_next)
    np.testing.assert_array_equal(a, model.sample(energies, seed=9, batch_size=5))
    assert not np.array_equal(a, model.sample(energies, seed=10, batch_size=5))
    assert model.sample(energies[:0], seed=1).shape == (0, train.geometry.n_voxels)


def test_sample_batch_of_wrong_shape_is_a_plugin_error(data):
    train, valid = data

    class Broken(TinyGaussian):
        name = "broken"

        def sample_batch(self, incident_energies, generator):
            return super().sample_batch(incident_energies, generator)[:, :-1]

    model = Broken(train.geometry, preset="smoke", device="cpu")
    model.fit(train, seed=0)
    with pytest.raises(PluginError, match="broken.*expected a tensor of shape"):
        model.sample_showers(valid.incident_energies, seed=0)


def test_unfitted_model_cannot_sample(data):
    train, _ = data
    model = TinyGaussian(train.geometry, preset="smoke", device="cpu")
    assert model.n_parameters() == 0
    with pytest.raises(TrainingError, match="call fit\\(\\) or load\\(\\)"):
        model.sample(train.incident_energies[:2], seed=0)


def test_training_settings_defaults_and_prefixes():
    preset = with_training_defaults({"flow1_epochs": 3}, prefixes=("flow1_", "flow2_"))
    assert preset["flow1_epochs"] == 3 and preset["flow2_epochs"] == 10 and preset["sample_batch_size"] == 10000
    settings = TrainSettings.from_config(preset, "flow1_")
    assert settings.epochs == 3 and settings.schedule == {"name": "none"}
    with pytest.raises(ConfigError, match="optimizer"):
        TrainSettings.from_config({"optimizer": "lbfgs"})
    assert math.isclose(TrainSettings.from_config({"lr": 2}).lr, 2.0)


class TwoStage(TinyGaussian):
    """Stage "first" trains ``a``; then the data get random noise from the global RNG; stage "second" trains ``b``."""

    name = "two-stage"

    def build_modules(self):
        v = self.geometry.n_voxels
        return {name: nn.Sequential(nn.Linear(1, 2 * v), nn.Dropout(0.2)) for name in ("a", "b")}

    def _nll(self, module, batch):
        energies, y = batch
        mean, log_std = self.modules[module](self._context(energies)).chunk(2, dim=1)
        return (0.5 * ((y - mean) * torch.exp(-log_std)) ** 2 + log_std).mean()

    def _context(self, energies):
        return (torch.log(energies) - self.log_e_mean).unsqueeze(1).float()

    def stages(self, train, valid):
        settings = TrainSettings.from_config(self.config)
        tensors = self.training_tensors(train)
        yield Stage("first", {"a": self.modules["a"]}, lambda b: self._nll("a", b), tensors, None, settings)
        noisy = (tensors[0], tensors[1] + 0.01 * torch.rand(tensors[1].shape))
        yield Stage("second", {"b": self.modules["b"]}, lambda b: self._nll("b", b), noisy, None, settings)


@pytest.mark.parametrize("stage, epoch", [("first", 4), ("second", 1)])
def test_multi_stage_resume_is_identical(data, tmp_path, stage, epoch):
    train, _ = data
    config = {"epochs": 4}
    full = TwoStage(train.geometry, config, preset="smoke", device="cpu")
    full.fit(train, seed=3, workdir=tmp_path / "full")
    cut = TwoStage(train.geometry, config, preset="smoke", device="cpu")
    cut.callbacks.append(_interrupt_after(stage, epoch))
    with pytest.raises(Interrupt):
        cut.fit(train, seed=3, workdir=tmp_path / "cut")
    resumed = TwoStage(train.geometry, config, preset="smoke", device="cpu")
    resumed.fit(train, seed=3, workdir=tmp_path / "cut")
    assert resumed.training_results[0].skipped  # "first" had finished in both cases
    for key, value in _parameters(full).items():
        assert torch.equal(value, _parameters(resumed)[key]), key
