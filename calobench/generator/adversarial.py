"""Adversarial training in the shared torch base: several named optimizer groups in one stage.

A GAN, a VAE-GAN hybrid (the BIB-AE, arXiv 2005.05334) or an adversarial autoencoder trains two or more
sets of weights against each other: critics that learn to tell real from generated samples and a
generator that learns to fool them, each with its own optimizer, learning rate and schedule. An
:class:`AdversarialStage` is a :class:`~calobench.generator.training.Stage` whose modules are split
into :class:`OptimizerGroup` s, and the base's :class:`~calobench.generator.training.Trainer` runs it
like any other stage (shuffled batches, epochs, checkpoints, resume, progress, callbacks)::

    stage = AdversarialStage.build(
        "gan",
        groups=[
            OptimizerGroup("critic", {"critic": D}, critic_loss_fn, critic_settings, steps=5, betas=(0.5, 0.9)),
            OptimizerGroup("generator", {"generator": G}, generator_loss_fn, settings, betas=(0.5, 0.9)),
        ],
        train=tensors, valid=None, settings=settings,
    )

For every batch, the groups are updated in their order, each ``group.steps`` times (WGAN-GP: five
critic updates per generator update, arXiv 1704.00028 algorithm 1). One update of a group: the
other groups' parameters are frozen (``requires_grad=False``, so that no gradient is computed for
them), ``group.loss(batch)`` -> backward -> optional gradient clipping -> that group's optimizer
step; its per-batch schedule steps once per batch, its per-epoch schedule once per epoch. The
critic updates of one batch see the same real showers, as in the BIB-AE's training loop. An
optional ``prepare(batch)`` runs once per batch, without gradients, before the updates, and its
tuple is what every group's loss receives -- e.g. the generator's output for the critic updates,
computed once instead of once per critic step.

Checkpoints hold every group's optimizer, schedule and loss-scaler state (``{"optimizer": {group:
state}, ...}``), and the groups' names, steps, betas and settings identify the run, so an
interrupted adversarial stage resumes bit-identically on the CPU like any stage. The stage ends
with the last epoch's weights (``keep="last"``): the generator loss of a GAN does not measure
quality. The logged ``train_loss`` is the last group's (the generator's); every group's loss and
the extra values its loss returns are logged as ``<group>_loss``, ``<group>_<name>``.

The WGAN-GP losses themselves are :mod:`calobench.nn.adversarial`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from calobench.errors import ConfigError
from calobench.generator.schedules import Schedule, build_schedule, current_lr
from calobench.generator.settings import TrainSettings
from calobench.generator.training import (
    LossFn,
    Stage,
    Trainer,
    Updates,
    build_optimizer,
    check_finite,
)

#: Settings keys that an optimizer group may set for itself (the rest are the stage's).
GROUP_KEYS = ("lr", "optimizer", "weight_decay", "schedule", "grad_clip")
PrepareFn = Callable[[tuple[torch.Tensor, ...]], tuple[torch.Tensor, ...]]


def group_settings(config: Mapping[str, Any], prefix: str, stage: TrainSettings) -> TrainSettings:
    """A group's settings: the stage's, with ``config[prefix + key]`` for the keys of :data:`GROUP_KEYS`
    that the config has (e.g. ``critic_lr``, ``critic_schedule``)."""
    values = stage.as_dict()
    for key in GROUP_KEYS:
        if prefix + key in config:
            values[key] = config[prefix + key]
    return TrainSettings.from_config(values)


@dataclass
class OptimizerGroup:
    """Modules updated together by one optimizer with one loss.

    Attributes:
        name: the group's name (``"critic"``, ``"generator"``...), used in logs and checkpoints.
        modules: the modules it trains; a module belongs to one group only.
        loss: ``loss(batch) -> scalar`` or ``(scalar, {name: float})``, minimized by this group.
        settings: its optimizer, learning rate, weight decay, schedule and gradient clipping (epochs
            and batch size are the stage's); see :func:`group_settings`.
        steps: updates of this group per batch (e.g. 5 for a WGAN-GP critic).
        betas: Adam's betas for this group (``None``: torch's default).
    """

    name: str
    modules: Mapping[str, nn.Module]
    loss: LossFn
    settings: TrainSettings
    steps: int = 1
    betas: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("an optimizer group needs a name")
        if not (isinstance(self.steps, int) and self.steps >= 1):
            raise ConfigError(f"optimizer group {self.name!r}: steps must be an integer >= 1, got {self.steps!r}")
        if not self.modules:
            raise ValueError(f"optimizer group {self.name!r} has no modules")

    def signature(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "modules": sorted(self.modules),
            "steps": self.steps,
            "betas": None if self.betas is None else [float(b) for b in self.betas],
            "settings": self.settings.as_dict(),
        }


@dataclass
class AdversarialStage(Stage):
    """A stage trained by alternating :class:`OptimizerGroup` updates (see the module docstring).

    Build it with :meth:`build`, which fills :attr:`modules` with every group's modules. ``loss`` is
    the validation loss (evaluated without gradients on ``valid``), if there is validation data.
    """

    groups: Sequence[OptimizerGroup] = ()
    prepare: PrepareFn | None = None
    keep: str = "last"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.groups:
            raise ValueError(f"adversarial stage {self.name!r} has no optimizer groups")
        names = [group.name for group in self.groups]
        if len(set(names)) != len(names):
            raise ValueError(f"adversarial stage {self.name!r}: optimizer group names repeat: {names}")
        owners: dict[str, str] = {}
        for group in self.groups:
            for module in group.modules:
                if module in owners:
                    raise ValueError(
                        f"adversarial stage {self.name!r}: module {module!r} is in groups "
                        f"{owners[module]!r} and {group.name!r}"
                    )
                owners[module] = group.name
        if set(owners) != set(self.modules):
            raise ValueError(
                f"adversarial stage {self.name!r}: the stage's modules {sorted(self.modules)} are not "
                f"the groups' modules {sorted(owners)}"
            )

    @classmethod
    def build(
        cls,
        name: str,
        groups: Sequence[OptimizerGroup],
        train: tuple[torch.Tensor, ...],
        valid: tuple[torch.Tensor, ...] | None,
        settings: TrainSettings,
        valid_loss: LossFn | None = None,
        prepare: PrepareFn | None = None,
        keep: str = "last",
    ) -> "AdversarialStage":
        """The stage over the union of the groups' modules. Without ``valid_loss`` there is no
        validation (``valid`` is ignored)."""
        modules: dict[str, nn.Module] = {}
        for group in groups:
            modules.update(group.modules)
        return cls(
            name,
            modules,
            valid_loss if valid_loss is not None else groups[-1].loss,
            train,
            valid if valid_loss is not None else None,
            settings,
            keep=keep,
            groups=list(groups),
            prepare=prepare,
        )

    def updates(self, trainer: Trainer, modules: Mapping[str, nn.Module], steps_per_epoch: int) -> Updates:
        return AlternatingOptimizers(trainer, self, steps_per_epoch)

    def signature(self) -> dict[str, Any]:
        return {"groups": [group.signature() for group in self.groups]}


@dataclass
class _GroupState:
    group: OptimizerGroup
    parameters: list[nn.Parameter]
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    scaler: torch.amp.GradScaler
    others: list[nn.Parameter] = field(default_factory=list)


class AlternatingOptimizers(Updates):
    """The :class:`~calobench.generator.training.Updates` of an :class:`AdversarialStage`."""

    def __init__(self, trainer: Trainer, stage: AdversarialStage, steps_per_epoch: int) -> None:
        self.trainer, self.stage = trainer, stage
        epochs = trainer.settings.epochs
        self.groups: list[_GroupState] = []
        for group in stage.groups:
            parameters = [p for m in group.modules.values() for p in m.parameters() if p.requires_grad]
            if not parameters:
                raise ConfigError(f"stage {stage.name!r}: optimizer group {group.name!r} has no trainable parameters")
            optimizer = build_optimizer(group.settings, parameters, betas=group.betas)
            self.groups.append(
                _GroupState(
                    group,
                    parameters,
                    optimizer,
                    build_schedule(optimizer, group.settings.schedule, epochs, steps_per_epoch),
                    torch.amp.GradScaler("cuda", enabled=trainer.amp_enabled and trainer.amp_dtype == torch.float16),
                )
            )
        for state in self.groups:
            mine = {id(p) for p in state.parameters}
            state.others = [
                p for other in self.groups if other is not state for p in other.parameters if id(p) not in mine
            ]

    def step(self, batch: tuple[torch.Tensor, ...], epoch: int, index: int) -> tuple[float, dict[str, float]]:
        trainer = self.trainer
        if self.stage.prepare is not None:
            with (
                torch.no_grad(),
                torch.autocast(device_type=trainer.device.type, dtype=trainer.amp_dtype, enabled=trainer.amp_enabled),
            ):
                batch = tuple(self.stage.prepare(batch))
        extras: dict[str, float] = {}
        value = 0.0
        for state in self.groups:
            group = state.group
            for parameter in state.others:
                parameter.requires_grad_(False)
            try:
                for _ in range(group.steps):
                    state.optimizer.zero_grad(set_to_none=True)
                    loss, parts = trainer.call_loss(group.loss, batch)
                    value = float(loss.detach())
                    check_finite(value, self.stage.name, epoch, index, f"{group.name} loss")
                    state.scaler.scale(loss).backward()
                    if group.settings.grad_clip > 0:
                        state.scaler.unscale_(state.optimizer)
                        torch.nn.utils.clip_grad_norm_(state.parameters, group.settings.grad_clip)
                    state.scaler.step(state.optimizer)
                    state.scaler.update()
            finally:
                for parameter in state.others:
                    parameter.requires_grad_(True)
            state.schedule.step_batch()
            extras[f"{group.name}_loss"] = value
            extras.update({f"{group.name}_{key}": part for key, part in parts.items()})
        return value, extras

    def step_epoch(self) -> None:
        for state in self.groups:
            state.schedule.step_epoch()

    def lr(self) -> float:
        return current_lr(self.groups[-1].optimizer)

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": {s.group.name: s.optimizer.state_dict() for s in self.groups},
            "scheduler": {s.group.name: s.schedule.state_dict() for s in self.groups},
            "scaler": {s.group.name: s.scaler.state_dict() if s.scaler.is_enabled() else {} for s in self.groups},
        }

    def load_state_dict(self, payload: Mapping[str, Any]) -> None:
        for state in self.groups:
            name = state.group.name
            state.optimizer.load_state_dict(payload["optimizer"][name])
            state.schedule.load_state_dict(payload["scheduler"][name])
            if payload["scaler"].get(name):
                state.scaler.load_state_dict(payload["scaler"][name])


__all__ = [
    "GROUP_KEYS",
    "AdversarialStage",
    "AlternatingOptimizers",
    "OptimizerGroup",
    "group_settings",
]
