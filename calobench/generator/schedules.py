"""Learning-rate schedules built from configuration dictionaries.

A schedule is given in a generator's config as a dict with a ``name`` and that schedule's options
(or just the name as a string), so that it can be changed with ``--set schedule='{...}'``:

=============  ==========================================================  ===========
name           options (defaults)                                          steps per
=============  ==========================================================  ===========
``none``       --                                                          --
``onecycle``   max_lr (the optimizer's lr), pct_start 0.3, div_factor 25,  batch
               final_div_factor 1e4, anneal_strategy "cos",
               three_phase false, cycle_momentum true
``cyclic``     max_lr (required), base_lr (the optimizer's lr),            batch
               step_size_up 2000, step_size_down (= up), mode
               "triangular2", gamma 1.0, cycle_momentum false
``step``       step_size (required, epochs), gamma 0.1                     epoch
``multistep``  milestones (required, epochs), gamma 0.1                    epoch
``exponential`` gamma (required)                                           epoch
=============  ==========================================================  ===========

They are torch's own schedulers (OneCycleLR: Smith & Topin, arXiv 1708.07120; CyclicLR: Smith,
arXiv 1506.01186) configured from the dict. CaloFlow used CyclicLR triangular2 and OneCycleLR
(DS1) and MultiStepLR (CaloGAN); see shared/reference/models.md section 1.4.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from calobench.errors import ConfigError

#: Options each schedule accepts, with their defaults (``REQUIRED`` marks mandatory ones).
REQUIRED = object()
SCHEDULE_OPTIONS: dict[str, dict[str, Any]] = {
    "none": {},
    "onecycle": {
        "max_lr": None,
        "pct_start": 0.3,
        "div_factor": 25.0,
        "final_div_factor": 1e4,
        "anneal_strategy": "cos",
        "three_phase": False,
        "cycle_momentum": True,
    },
    "cyclic": {
        "max_lr": REQUIRED,
        "base_lr": None,
        "step_size_up": 2000,
        "step_size_down": None,
        "mode": "triangular2",
        "gamma": 1.0,
        "cycle_momentum": False,
    },
    "step": {"step_size": REQUIRED, "gamma": 0.1},
    "multistep": {"milestones": REQUIRED, "gamma": 0.1},
    "exponential": {"gamma": REQUIRED},
}
PER_BATCH = frozenset({"onecycle", "cyclic"})


def schedule_spec(spec: "Mapping[str, Any] | str | None") -> dict[str, Any]:
    """Normalize a schedule spec to a dict with ``name`` and every option (defaults filled in).

    Raises :class:`ConfigError` for an unknown name, an unknown option or a missing required one.
    """
    if spec is None:
        spec = {"name": "none"}
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping):
        raise ConfigError(f"a schedule must be a name or a dict with a 'name' key, got {spec!r}")
    options = dict(spec)
    name = str(options.pop("name", "none")).lower().replace("-", "").replace("_", "")
    if name not in SCHEDULE_OPTIONS:
        raise ConfigError(f"unknown learning-rate schedule {name!r}; known: {', '.join(SCHEDULE_OPTIONS)}")
    known = SCHEDULE_OPTIONS[name]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"schedule {name!r} has no option(s) {unknown}; its options: {sorted(known) or 'none'}")
    resolved: dict[str, Any] = {"name": name}
    for key, default in known.items():
        value = options.get(key, default)
        if value is REQUIRED:
            raise ConfigError(f"schedule {name!r} needs the option {key!r}")
        resolved[key] = value
    return resolved


@dataclass
class Schedule:
    """A learning-rate scheduler and when to step it (after every batch or after every epoch)."""

    name: str
    scheduler: "torch.optim.lr_scheduler.LRScheduler | None"
    per_batch: bool

    def step_batch(self) -> None:
        """Call after every optimizer step."""
        if self.scheduler is not None and self.per_batch:
            self.scheduler.step()

    def step_epoch(self) -> None:
        """Call after every epoch."""
        if self.scheduler is not None and not self.per_batch:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return {} if self.scheduler is None else self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state)


def build_schedule(
    optimizer: torch.optim.Optimizer, spec: "Mapping[str, Any] | str | None", epochs: int, steps_per_epoch: int
) -> Schedule:
    """The :class:`Schedule` described by ``spec`` for ``epochs`` epochs of ``steps_per_epoch`` batches."""
    options = schedule_spec(spec)
    name = options.pop("name")
    lr = optimizer.param_groups[0]["lr"]
    sched = torch.optim.lr_scheduler
    scheduler: sched.LRScheduler
    try:
        if name == "none":
            return Schedule(name, None, False)
        if name == "onecycle":
            max_lr = options.pop("max_lr")
            scheduler = sched.OneCycleLR(
                optimizer,
                max_lr=lr if max_lr is None else float(max_lr),
                total_steps=max(1, epochs * steps_per_epoch),
                **options,
            )
        elif name == "cyclic":
            base_lr = options.pop("base_lr")
            scheduler = sched.CyclicLR(
                optimizer,
                base_lr=lr if base_lr is None else float(base_lr),
                max_lr=float(options.pop("max_lr")),
                **options,
            )
        elif name == "step":
            scheduler = sched.StepLR(optimizer, step_size=int(options["step_size"]), gamma=float(options["gamma"]))
        elif name == "multistep":
            scheduler = sched.MultiStepLR(
                optimizer, milestones=[int(m) for m in options["milestones"]], gamma=float(options["gamma"])
            )
        else:
            scheduler = sched.ExponentialLR(optimizer, gamma=float(options["gamma"]))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid options for schedule {name!r}: {exc}") from exc
    return Schedule(name, scheduler, name in PER_BATCH)


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The learning rate of the optimizer's first parameter group."""
    return float(optimizer.param_groups[0]["lr"])
