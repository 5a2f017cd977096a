"""WGAN-GP losses (calobench.nn.adversarial) and the adversarial stage of the torch base
(calobench.generator.adversarial): penalty values, alternating updates, several optimizers,
checkpoints with every optimizer state, bit-identical resume."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from calobench.errors import CheckpointError
from calobench.generator.adversarial import AdversarialStage, OptimizerGroup, group_settings
from calobench.generator.checkpoint import load_checkpoint
from calobench.generator.seeding import seed_everything
from calobench.generator.settings import TrainSettings
from calobench.generator.training import Stage, Trainer
from calobench.nn.adversarial import critic_loss, generator_loss, gradient_penalty


# ---------------------------------------------------------------------- the penalty
def test_gradient_penalty_of_a_linear_critic_is_exact():
    weight = torch.tensor([3.0, 4.0], requires_grad=True)  # |grad| = 5 everywhere

    def critic(x):
        return x @ weight

    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    penalty = gradient_penalty(critic, real, fake, weight=10.0)
    assert penalty.item() == pytest.approx(10.0 * (5.0 - 1.0) ** 2)
    penalty.backward()  # the penalty trains the critic: d/dw 10 (|w| - 1)^2 = 20 (|w| - 1) w / |w|
    torch.testing.assert_close(weight.grad, 20.0 * 4.0 * torch.tensor([3.0, 4.0]) / 5.0)


def test_gradient_penalty_is_zero_for_a_unit_slope_and_uses_the_generator():
    critic = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[0.6, 0.0, 0.8]]))
    real, fake = torch.randn(8, 3), torch.randn(8, 3)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(0.0, abs=1e-10)
    # a non-linear critic: the mixing fractions come from the given generator
    net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    one = gradient_penalty(net, real, fake, generator=torch.Generator().manual_seed(1))
    two = gradient_penalty(net, real, fake, generator=torch.Generator().manual_seed(1))
    assert torch.equal(one, two)
    with pytest.raises(ValueError, match="shape"):
        gradient_penalty(net, real, fake[:4])


def test_wasserstein_losses():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 1.0])
    assert critic_loss(real, fake).item() == pytest.approx(0.5 - 2.0)
    assert generator_loss(fake).item() == pytest.approx(-0.5)


# ---------------------------------------------------------------------- the stage
class ToyGAN:
    """A 1-D WGAN-GP: the generator shifts N(0, 1) noise; the data are N(2, 1)."""

    def __init__(self, critic_steps: int = 3) -> None:
        seed_everything(0)
        self.generator = nn.Linear(1, 1)
        self.critic = nn.Sequential(nn.Linear(1, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
        self.calls = {"critic": 0, "generator": 0, "prepare": 0}
        self.critic_steps = critic_steps

    def prepare(self, batch):
        self.calls["prepare"] += 1
        (real,) = batch
        fake = self.generator(torch.randn_like(real))
        return real, fake

    def critic_loss(self, batch):
        self.calls["critic"] += 1
        real, fake = batch
        assert not fake.requires_grad  # prepared without gradients
        loss = critic_loss(self.critic(real), self.critic(fake))
        return loss + gradient_penalty(self.critic, real, fake), {"gp_free": float(loss.detach())}

    def generator_loss(self, batch):
        self.calls["generator"] += 1
        real, _ = batch
        assert all(not p.requires_grad for p in self.critic.parameters())  # critic frozen
        return generator_loss(self.critic(self.generator(torch.randn_like(real))))

    def stage(self, data, epochs=3, critic_lr=2e-3, schedule=None):
        schedule = schedule or {"name": "step", "step_size": 1, "gamma": 0.5}
        settings = TrainSettings(epochs=epochs, batch_size=64, lr=2e-2, schedule=schedule)
        critic = group_settings({"critic_lr": critic_lr, "critic_schedule": "none"}, "critic_", settings)
        return AdversarialStage.build(
            "gan",
            [
                OptimizerGroup(
                    "critic", {"critic": self.critic}, self.critic_loss, critic, self.critic_steps, (0.5, 0.9)
                ),
                OptimizerGroup("generator", {"generator": self.generator}, self.generator_loss, settings),
            ],
            (data,),
            None,
            settings,
            prepare=self.prepare,
        )


@pytest.fixture(scope="module")
def data():
    return 2.0 + torch.randn(512, 1, generator=torch.Generator().manual_seed(0))


def _weights(gan: ToyGAN) -> dict[str, torch.Tensor]:
    return {
        **{f"g.{k}": v.clone() for k, v in gan.generator.state_dict().items()},
        **{f"c.{k}": v.clone() for k, v in gan.critic.state_dict().items()},
    }


def test_group_settings_take_the_stage_settings_and_the_prefixed_keys():
    stage = TrainSettings(epochs=7, batch_size=32, lr=1e-3, grad_clip=1.0)
    critic = group_settings({"critic_lr": 5e-4, "lr": 9.0, "critic_epochs": 99}, "critic_", stage)
    assert (critic.lr, critic.epochs, critic.batch_size, critic.grad_clip) == (5e-4, 7, 32, 1.0)


def test_alternating_updates_train_a_toy_gan(data):
    gan = ToyGAN(critic_steps=3)
    stage = gan.stage(data, epochs=12, critic_lr=1e-2, schedule="none")
    result = Trainer(stage, torch.device("cpu"), seed=0).run()
    n_batches = 12 * 8
    assert gan.calls == {"critic": 3 * n_batches, "generator": n_batches, "prepare": n_batches}
    shift = float(gan.generator.bias.detach())
    assert shift == pytest.approx(2.0, abs=0.5), shift  # started near 0
    record = result.history[-1]
    assert {"critic_loss", "generator_loss", "critic_gp_free"} <= set(record)
    assert record["train_loss"] == pytest.approx(record["generator_loss"])
    assert all(p.requires_grad for p in gan.critic.parameters())  # unfrozen afterwards
    assert result.history[1]["lr"] == pytest.approx(2e-2)


def test_checkpoint_holds_every_optimizer_and_resume_is_bit_identical(data, tmp_path):
    reference = ToyGAN()
    Trainer(reference.stage(data), torch.device("cpu"), seed=4, workdir=tmp_path / "full").run()

    class Interrupt(Exception):
        pass

    def stop(stage, record):
        if record["epoch"] == 1:
            raise Interrupt

    cut = ToyGAN()
    with pytest.raises(Interrupt):
        Trainer(cut.stage(data), torch.device("cpu"), seed=4, workdir=tmp_path / "cut", callbacks=[stop]).run()
    payload = load_checkpoint(tmp_path / "cut" / "gan.pt")  # weights_only=True
    assert payload["epoch"] == 2 and not payload["finished"]
    assert set(payload["optimizer"]) == set(payload["scheduler"]) == {"critic", "generator"}
    assert payload["optimizer"]["critic"]["param_groups"][0]["betas"] == (0.5, 0.9)
    assert payload["optimizer"]["generator"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert payload["scheduler"]["generator"]["last_epoch"] == 2 and payload["scheduler"]["critic"] == {}
    assert payload["history"][1]["lr"] == pytest.approx(1e-2)  # the generator's: StepLR gamma 0.5 per epoch

    resumed = ToyGAN()
    result = Trainer(resumed.stage(data), torch.device("cpu"), seed=4, workdir=tmp_path / "cut").run()
    assert [r["epoch"] for r in result.history] == [0, 1, 2]
    expected, got = _weights(reference), _weights(resumed)
    for key in expected:
        assert torch.equal(expected[key], got[key]), key

    other = ToyGAN()  # another critic learning rate is another run
    with pytest.raises(CheckpointError, match="different training run"):
        Trainer(other.stage(data, critic_lr=1e-4), torch.device("cpu"), seed=4, workdir=tmp_path / "cut").run()


def test_an_adversarial_stage_keeps_its_last_epoch(data):
    gan = ToyGAN()
    stage = gan.stage(data, epochs=3)
    assert stage.keep == "last"
    Trainer(stage, torch.device("cpu"), seed=0).run()
    last = _weights(gan)
    again = ToyGAN()
    again_stage = again.stage(data, epochs=3)
    Trainer(again_stage, torch.device("cpu"), seed=0).run()
    for key, value in _weights(again).items():
        assert torch.equal(value, last[key])


def test_invalid_groups_are_refused(data):
    gan = ToyGAN()
    settings = TrainSettings(epochs=1)
    shared = {"critic": gan.critic}
    with pytest.raises(ValueError, match="is in groups"):
        AdversarialStage.build(
            "bad",
            [
                OptimizerGroup("a", shared, gan.critic_loss, settings),
                OptimizerGroup("b", shared, gan.critic_loss, settings),
            ],
            (data,),
            None,
            settings,
        )
    with pytest.raises(ValueError, match="keep"):
        Stage("s", {"m": gan.critic}, gan.critic_loss, (data,), None, settings, keep="worst")
