"""The training settings of one stage, read from a generator's configuration.

Every :class:`~calobench.generator.torch_base.TorchGenerator` preset carries these keys (filled in by
:func:`with_training_defaults`), so each can be changed with ``--set key=value``:

================  =======================================================================
key               meaning
================  =======================================================================
epochs            maximum number of passes over the training data
batch_size        showers per optimizer step
lr                learning rate (the start value; a schedule may change it)
optimizer         ``"adam"``, ``"adamw"`` or ``"sgd"`` (momentum 0.9)
weight_decay      L2 / decoupled weight decay (0 = off)
schedule          learning-rate schedule, see :mod:`calobench.generator.schedules`
grad_clip         clip the global gradient norm to this value (0 = off)
patience          early stopping: stop after this many epochs without a better
                  validation loss (0 = off); the best epoch's weights are kept either way
amp               mixed precision on CUDA (bfloat16, or float16 with loss scaling);
                  ignored on the CPU
sample_batch_size showers per batch in ``sample()`` unless the caller gives one
================  =======================================================================

A model with several stages (CaloFlow: Flow I, then Flow II) prefixes the keys per stage
(``flow1_epochs``, ``flow2_lr``...) and reads them with ``TrainSettings.from_config(config, "flow1_")``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from calobench.errors import ConfigError
from calobench.generator.schedules import schedule_spec

#: Default training settings (keys of :class:`TrainSettings`).
TRAINING_DEFAULTS: dict[str, Any] = {
    "epochs": 10,
    "batch_size": 256,
    "lr": 1e-3,
    "optimizer": "adam",
    "weight_decay": 0.0,
    "schedule": {"name": "none"},
    "grad_clip": 0.0,
    "patience": 0,
    "amp": False,
}
#: Keys used by the sampling side of a torch generator.
SAMPLING_DEFAULTS: dict[str, Any] = {"sample_batch_size": 10000}
OPTIMIZERS = ("adam", "adamw", "sgd")


@dataclass(frozen=True)
class TrainSettings:
    """How one stage is trained (see the module docstring for the meaning of each field)."""

    epochs: int = TRAINING_DEFAULTS["epochs"]
    batch_size: int = TRAINING_DEFAULTS["batch_size"]
    lr: float = TRAINING_DEFAULTS["lr"]
    optimizer: str = TRAINING_DEFAULTS["optimizer"]
    weight_decay: float = TRAINING_DEFAULTS["weight_decay"]
    schedule: dict[str, Any] = field(default_factory=lambda: {"name": "none"})
    grad_clip: float = TRAINING_DEFAULTS["grad_clip"]
    patience: int = TRAINING_DEFAULTS["patience"]
    amp: bool = TRAINING_DEFAULTS["amp"]

    def __post_init__(self) -> None:
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            raise ConfigError(f"epochs must be an integer >= 1, got {self.epochs!r}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ConfigError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.weight_decay < 0 or self.grad_clip < 0 or self.patience < 0:
            raise ConfigError(
                "weight_decay, grad_clip and patience must be >= 0 "
                f"(got {self.weight_decay}, {self.grad_clip}, {self.patience})"
            )
        object.__setattr__(self, "schedule", schedule_spec(self.schedule))

    @classmethod
    def from_config(cls, config: Mapping[str, Any], prefix: str = "") -> "TrainSettings":
        """Settings from ``config[prefix + key]``; keys absent from ``config`` take the defaults."""
        values = {}
        for key, default in TRAINING_DEFAULTS.items():
            value = config.get(prefix + key, default)
            values[key] = value
        try:
            return cls(
                epochs=int(values["epochs"]),
                batch_size=int(values["batch_size"]),
                lr=float(values["lr"]),
                optimizer=str(values["optimizer"]).lower(),
                weight_decay=float(values["weight_decay"]),
                schedule=values["schedule"],
                grad_clip=float(values["grad_clip"]),
                patience=int(values["patience"]),
                amp=bool(values["amp"]),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid training settings{f' ({prefix}*)' if prefix else ''}: {exc}") from exc

    def as_dict(self) -> dict[str, Any]:
        """JSON- and checkpoint-safe form (plain types only)."""
        return asdict(self)


def with_training_defaults(
    preset: Mapping[str, Any], prefixes: Iterable[str] = ("",), sampling: bool = True
) -> dict[str, Any]:
    """``preset`` with every training key (per prefix) and ``sample_batch_size`` filled in where absent.

    Use it to write a torch generator's presets::

        presets = {"smoke": with_training_defaults({"hidden": 8, "epochs": 2}), ...}
        presets = {"paper": with_training_defaults({...}, prefixes=("flow1_", "flow2_"))}  # two stages
    """
    result = dict(preset)
    for prefix in prefixes:
        for key, default in TRAINING_DEFAULTS.items():
            result.setdefault(prefix + key, dict(default) if isinstance(default, dict) else default)
    if sampling:
        for key, default in SAMPLING_DEFAULTS.items():
            result.setdefault(key, default)
    return result
