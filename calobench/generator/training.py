"""The training loop of one named stage: optimizer, schedule, validation, early stopping, checkpoints.

A :class:`Stage` names the modules it trains, a loss on a batch, the training (and validation)
tensors and its :class:`~calobench.generator.settings.TrainSettings`. :class:`Trainer` runs it:

* the data order comes from a dedicated ``torch.Generator`` seeded from (seed, stage name); the
  global generators are seeded from the same pair at the start of the stage (and again at its end),
  so a stage's result does not depend on what ran before it, and what runs after it does not
  depend on whether it was trained, resumed or skipped;
* each epoch: shuffled mini-batches, ``loss(batch)`` -> backward -> optional gradient clipping ->
  optimizer step -> per-batch schedule step; then the validation loss (no gradients, eval mode,
  a fixed validation seed in a forked RNG so that it neither varies between epochs nor perturbs
  the training stream); then the per-epoch schedule step;
* the best epoch (lowest validation loss, or training loss without validation data, or the epoch
  mean of an extra value the loss returns when the stage names it as ``monitor``) is kept;
  ``patience`` epochs without improvement stop the stage early; at the end the modules hold the
  best epoch's weights;
* after every epoch ``workdir/<stage>.pt`` is rewritten atomically with the weights, optimizer,
  scheduler, loss-scaler, epoch, best state, history, every RNG state (python, numpy, torch,
  CUDA, data order) and what the caller identifies the run by (the generator passes its name and
  config, and its preprocessing state as ``extra``). A stage restarted on the same workdir continues from the last completed epoch
  and, on the CPU, ends with bit-identical weights to an uninterrupted run; a finished stage is
  loaded and skipped;
* a tqdm bar (stderr, hidden off a terminal) shows the running loss and showers/s, and one log
  line per epoch goes to the ``calobench.training`` logger.

A stage updates its weights through :meth:`Stage.updates` (an :class:`Updates`): by default one
optimizer over all its modules (:class:`SingleOptimizer`); adversarial stages with several optimizer
groups and n critic steps per generator step are in :mod:`calobench.generator.adversarial`, and
``Stage.keep = "last"`` ends a stage with its last epoch's weights instead of the best epoch's.

The loss callable gets the batch (a tuple of tensors on the training device, in the order of
``Stage.train``) and returns a scalar tensor, or ``(scalar, {"name": float, ...})`` to log extra
values (their epoch means enter the history). It may use torch's global RNG (e.g. dequantization
noise) and other, frozen modules (a distillation teacher).
"""

from __future__ import annotations

import abc
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from calobench.errors import CalobenchError, CheckpointError
from calobench.generator.checkpoint import load_checkpoint, save_checkpoint
from calobench.generator.distributed import average_gradients, current_world, shard, sum_over_ranks
from calobench.generator.schedules import build_schedule, current_lr
from calobench.generator.seeding import (
    capture_rng_state,
    derive_seed,
    restore_rng_state,
    seed_everything,
    torch_generator,
)
from calobench.generator.settings import TrainSettings

log = logging.getLogger("calobench.training")

#: Version of the stage checkpoint layout.
CHECKPOINT_FORMAT = 1
#: Training tensors up to this size are moved to a GPU once instead of batch by batch.
DEVICE_RESIDENT_BYTES = 2 * 2**30

LossOutput = "torch.Tensor | tuple[torch.Tensor, Mapping[str, float]]"
LossFn = Callable[[tuple[torch.Tensor, ...]], Any]
EpochCallback = Callable[[str, dict[str, Any]], None]


class TrainingError(CalobenchError):
    """Training cannot go on (e.g. the loss became NaN or infinite)."""


@dataclass
class Stage:
    """One stage of training.

    Attributes:
        name: stage name, also the checkpoint file name (``<workdir>/<name>.pt``).
        modules: the modules trained in this stage (their trainable parameters are optimized,
            their state is checkpointed); other modules the loss uses are left alone.
        loss: ``loss(batch) -> scalar tensor`` or ``(scalar, {name: float})``.
        train: training tensors, all with the same first dimension (showers).
        valid: validation tensors in the same layout, or ``None``.
        settings: epochs, batch size, optimizer, schedule, early stopping...
    """

    name: str
    modules: Mapping[str, nn.Module]
    loss: LossFn
    train: tuple[torch.Tensor, ...]
    valid: tuple[torch.Tensor, ...] | None
    settings: TrainSettings
    #: which weights the modules hold when the stage ends: ``"best"`` (lowest monitored loss) or
    #: ``"last"`` (the final epoch's; adversarial training, where no loss measures quality)
    keep: str = "best"
    #: Adam's betas for the stage's optimizer (``None``: torch's default (0.9, 0.999))
    betas: tuple[float, float] | None = None
    #: Adam's eps for the stage's optimizer (``None``: torch's default 1e-8; CaloINN's cards pass 1e-10)
    eps: float | None = None
    #: an extra value of the loss (``(scalar, {name: float})``) whose epoch mean, over the training
    #: batches, picks the best epoch instead of the validation loss (CaloFlow II keeps the student
    #: epoch with the lowest mean KL of its training steps); ``None``: the validation loss
    monitor: str | None = None
    #: gradient accumulation: ``((first_epoch, k), ...)``, from ``first_epoch`` on the gradients of
    #: ``k`` consecutive batches are summed before each optimizer step (the leftover of an epoch is
    #: dropped); empty: a step per batch
    accumulation: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if self.keep not in ("best", "last"):
            raise ValueError(f"stage {self.name!r}: keep must be 'best' or 'last', got {self.keep!r}")
        self.accumulation = tuple((int(first), int(k)) for first, k in self.accumulation)
        if any(first < 0 or k < 1 for first, k in self.accumulation):
            raise ValueError(f"stage {self.name!r}: accumulation needs (first_epoch >= 0, k >= 1) pairs")
        if not self.name or any(c in self.name for c in "/\\"):
            raise ValueError(f"stage name must be a non-empty file-name-safe string, got {self.name!r}")
        for which, tensors in (("train", self.train), ("valid", self.valid)):
            if tensors is None:
                continue
            if isinstance(tensors, torch.Tensor):
                raise TypeError(f"stage {self.name!r}: {which} must be a tuple of tensors, got a single tensor")
            lengths = {len(t) for t in tensors}
            if len(lengths) != 1:
                raise ValueError(f"stage {self.name!r}: {which} tensors differ in length: {sorted(lengths)}")
        if len(self.train[0]) == 0:
            raise ValueError(f"stage {self.name!r}: no training data")

    def updates(self, trainer: "Trainer", modules: Mapping[str, nn.Module], steps_per_epoch: int) -> "Updates":
        """How the weights are updated on one batch (default: one optimizer over every trainable
        parameter of :attr:`modules`, :class:`SingleOptimizer`). A stage with several optimizers
        (adversarial training, :mod:`calobench.generator.adversarial`) returns its own :class:`Updates`."""
        return SingleOptimizer(trainer, modules, steps_per_epoch)

    def signature(self) -> dict[str, Any]:
        """Extra values that identify this stage's training in its checkpoint (compared on resume)."""
        values: dict[str, Any] = {} if self.betas is None else {"betas": [float(b) for b in self.betas]}
        # always present: None matches checkpoints written before the key existed
        values["eps"] = None if self.eps is None else float(self.eps)
        if self.monitor is not None:
            values["monitor"] = self.monitor
        if self.accumulation:
            values["accumulation"] = [list(pair) for pair in self.accumulation]
        return values

    def accumulated_batches(self, epoch: int) -> int:
        """How many batches' gradients make one optimizer step in ``epoch`` (from 0)."""
        k = 1
        for first, value in sorted(self.accumulation):
            if epoch >= first:
                k = value
        return k


@dataclass
class StageResult:
    """What a stage ended with."""

    name: str
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = -1
    best_loss: float = math.inf
    stopped_early: bool = False
    skipped: bool = False  # finished in an earlier call and loaded from its checkpoint

    @property
    def seconds(self) -> float:
        return float(sum(record["seconds"] for record in self.history))


def _state_dicts(modules: Mapping[str, nn.Module]) -> dict[str, dict[str, torch.Tensor]]:
    return {
        name: {k: v.detach().to("cpu", copy=True) for k, v in m.state_dict().items()} for name, m in modules.items()
    }


def _load_state_dicts(modules: Mapping[str, nn.Module], states: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
    if set(states) != set(modules):
        raise CheckpointError(f"checkpoint holds modules {sorted(states)}, the model has {sorted(modules)}")
    for name, module in modules.items():
        module.load_state_dict(states[name])


def amp_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 on GPUs that support it, else float16 (which needs loss scaling)."""
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def build_optimizer(
    settings: TrainSettings,
    parameters: Sequence[nn.Parameter],
    betas: tuple[float, float] | None = None,
    eps: float | None = None,
) -> torch.optim.Optimizer:
    """The optimizer of ``settings`` over ``parameters``; ``betas`` replaces Adam's default (0.9, 0.999)
    (GAN training often uses (0.5, 0.9), e.g. the WGAN-GP paper, arXiv 1704.00028) and ``eps`` its
    default 1e-8."""
    adam_betas = (0.9, 0.999) if betas is None else (float(betas[0]), float(betas[1]))
    adam: dict[str, Any] = {"lr": settings.lr, "weight_decay": settings.weight_decay, "betas": adam_betas}
    if eps is not None:
        adam["eps"] = float(eps)
    if settings.optimizer == "adam":
        return torch.optim.Adam(parameters, **adam)
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(parameters, **adam)
    return torch.optim.SGD(parameters, lr=settings.lr, momentum=0.9, weight_decay=settings.weight_decay)


class Updates(abc.ABC):
    """The weight updates of one stage: optimizer(s), learning-rate schedule(s) and loss scaler(s).

    :class:`Trainer` calls :meth:`step` once per batch and :meth:`step_epoch` once per epoch, and
    stores :meth:`state_dict` in every checkpoint (restored with :meth:`load_state_dict` on resume).
    """

    @abc.abstractmethod
    def step(self, batch: tuple[torch.Tensor, ...], epoch: int, index: int) -> tuple[float, dict[str, float]]:
        """Update on one batch; return the (finite) training loss and extra values to log."""
        raise NotImplementedError

    def step_epoch(self) -> None:  # noqa: B027 -- optional hook, no per-epoch schedule by default
        """End of an epoch (per-epoch schedules)."""

    @abc.abstractmethod
    def lr(self) -> float:
        """The learning rate to log."""
        raise NotImplementedError

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Checkpoint entries ``optimizer``, ``scheduler`` and ``scaler``."""
        raise NotImplementedError

    @abc.abstractmethod
    def load_state_dict(self, payload: Mapping[str, Any]) -> None:
        """Restore from a checkpoint written with :meth:`state_dict`'s entries."""
        raise NotImplementedError


def check_finite(value: float, stage: str, epoch: int, index: int, what: str = "training loss") -> None:
    """Raise :class:`TrainingError` if a loss is NaN or infinite (``epoch``, ``index`` from 0)."""
    if not math.isfinite(value):
        raise TrainingError(
            f"stage {stage!r}: the {what} is {value} at epoch {epoch + 1}, "
            f"batch {index + 1}; lower the learning rate, enable grad_clip, or check "
            "the preprocessing"
        )


class SingleOptimizer(Updates):
    """One optimizer over every trainable parameter of the stage's modules: ``loss(batch)`` ->
    backward -> optional gradient clipping -> optimizer step -> per-batch schedule step. With the
    stage's ``accumulation``, the gradients of k batches are summed (each batch's loss as it is, as
    ``loss.backward()`` without ``zero_grad`` does) before one step; a per-batch schedule then steps
    with the optimizer."""

    def __init__(self, trainer: "Trainer", modules: Mapping[str, nn.Module], steps_per_epoch: int) -> None:
        self.trainer = trainer
        settings = trainer.settings
        self.parameters = [p for m in modules.values() for p in m.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(settings, self.parameters, betas=trainer.stage.betas, eps=trainer.stage.eps)
        self.schedule = build_schedule(self.optimizer, settings.schedule, settings.epochs, steps_per_epoch)
        self.scaler = torch.amp.GradScaler("cuda", enabled=trainer.amp_enabled and trainer.amp_dtype == torch.float16)

    def step(self, batch: tuple[torch.Tensor, ...], epoch: int, index: int) -> tuple[float, dict[str, float]]:
        trainer, settings = self.trainer, self.trainer.settings
        k = trainer.stage.accumulated_batches(epoch)
        if index % k == 0:
            self.optimizer.zero_grad(set_to_none=True)
        loss, extras = trainer._loss(batch)
        value = float(loss.detach())
        check_finite(value, trainer.stage.name, epoch, index)
        self.scaler.scale(loss).backward()
        if (index + 1) % k != 0:
            return value, extras
        if settings.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.parameters, settings.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.schedule.step_batch()
        return value, extras

    def step_epoch(self) -> None:
        self.schedule.step_epoch()

    def lr(self) -> float:
        return current_lr(self.optimizer)

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
        }

    def load_state_dict(self, payload: Mapping[str, Any]) -> None:
        self.optimizer.load_state_dict(payload["optimizer"])
        self.schedule.load_state_dict(payload["scheduler"])
        if payload["scaler"]:
            self.scaler.load_state_dict(payload["scaler"])


class Trainer:
    """Runs one :class:`Stage` on ``device``, checkpointing to ``workdir`` (see the module docstring).

    Args:
        stage: what to train.
        device: where to train (the modules are moved there).
        seed: the run's seed; the stage derives its own seeds from it and the stage name.
        workdir: directory for ``<stage>.pt``; ``None`` trains without checkpoints.
        callbacks: called as ``callback(stage_name, epoch_record)`` after each epoch's checkpoint
            is written (raising from one interrupts training like a kill would).
        progress: show a tqdm bar (``None``: only on a terminal).
        identity: plain values (e.g. generator name and config) stored in the checkpoint and
            compared on resume, like the seed and the settings: a mismatch is a CheckpointError.
        extra: tensors and plain values stored in the checkpoint as they are (e.g. the
            preprocessing state), under ``"extra"``.
    """

    def __init__(
        self,
        stage: Stage,
        device: torch.device,
        seed: int,
        workdir: Path | None = None,
        callbacks: Sequence[EpochCallback] = (),
        progress: bool | None = None,
        identity: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.stage = stage
        self.identity = dict(identity or {})
        self.extra = dict(extra or {})
        self.device = torch.device(device)
        self.seed = int(seed)
        self.workdir = None if workdir is None else Path(workdir)
        self.callbacks = list(callbacks)
        self.progress = progress
        self.settings = stage.settings
        self.amp_enabled = bool(self.settings.amp and self.device.type == "cuda")
        if self.settings.amp and not self.amp_enabled:
            log.info(
                "stage %s: amp=true is ignored on %s (mixed precision is used on CUDA only)", stage.name, self.device
            )
        self.amp_dtype = amp_dtype(self.device) if self.amp_enabled else torch.float32
        self.world = current_world()

    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.workdir is None else self.workdir / f"{self.stage.name}.pt"

    # ------------------------------------------------------------------ data
    def _place(self, tensors: tuple[torch.Tensor, ...] | None) -> tuple[torch.Tensor, ...] | None:
        if tensors is None:
            return None
        size = sum(t.element_size() * t.numel() for t in tensors)
        if self.device.type != "cpu" and size <= DEVICE_RESIDENT_BYTES:
            return tuple(t.to(self.device) for t in tensors)
        return tuple(tensors)

    def _batch(self, tensors: tuple[torch.Tensor, ...], index: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(t[index.to(t.device)].to(self.device, non_blocking=True) for t in tensors)

    def _signature(self) -> dict[str, Any]:
        return {
            "stage": self.stage.name,
            "seed": self.seed,
            "identity": self.identity,
            "settings": self.settings.as_dict(),
            "n_train": len(self.stage.train[0]),
            "n_valid": 0 if self.stage.valid is None else len(self.stage.valid[0]),
            **self.stage.signature(),
        }

    def _loss(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        return self.call_loss(self.stage.loss, batch)

    def call_loss(self, loss: LossFn, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        """``loss(batch)`` under the stage's autocast, as ``(scalar, {name: float})``."""
        with torch.autocast(device_type=self.device.type, dtype=self.amp_dtype, enabled=self.amp_enabled):
            output = loss(batch)
        if isinstance(output, tuple):
            value, extras = output
            return value, {
                k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for k, v in dict(extras).items()
            }
        return output, {}

    # ------------------------------------------------------------------ run
    def run(self) -> StageResult:
        """Train the stage (or resume it, or load it if finished) and return its result.

        Afterwards the global RNGs are re-seeded from (seed, stage name), so that code running
        between stages (e.g. preparing the next stage's data with random noise) sees the same
        random numbers whether this stage was trained now, resumed or loaded as finished.
        """
        result = self._run()
        seed_everything(derive_seed(self.seed, self.stage.name, "after"))
        return result

    def _run(self) -> StageResult:
        stage, device = self.stage, self.device
        modules = dict(stage.modules)
        for module in modules.values():
            module.to(device)
        parameters = [p for m in modules.values() for p in m.parameters() if p.requires_grad]
        if not parameters:
            raise TrainingError(f"stage {stage.name!r} has no trainable parameters")
        hooks = average_gradients(modules.values(), self.world)
        try:
            return self._train(modules)
        finally:
            for hook in hooks:
                hook.remove()

    def _train(self, modules: dict[str, nn.Module]) -> StageResult:
        stage, settings = self.stage, self.settings
        # every rank of a data-parallel run draws its own noise and dropout; rank 0 is a single process
        rank_keys: tuple[int | str, ...] = ("rank", self.world.rank) if self.world.rank > 0 else ()
        seed_everything(derive_seed(self.seed, stage.name, *rank_keys))
        data_generator = torch_generator(derive_seed(self.seed, stage.name, "data"))
        n_train = len(stage.train[0])
        steps_per_epoch = math.ceil(n_train / settings.batch_size)
        updates = stage.updates(self, modules, steps_per_epoch)

        result = StageResult(stage.name)
        best_state: dict[str, Any] | None = None
        bad_epochs, start_epoch = 0, 0
        path = self.checkpoint_path
        if path is not None and path.exists():
            payload = load_checkpoint(path, map_location="cpu")
            self._check_compatible(payload, path)
            if payload["finished"]:
                _load_state_dicts(modules, payload["modules"])
                result.history = list(payload["history"])
                result.best_epoch, result.best_loss = payload["best_epoch"], payload["best_loss"]
                result.stopped_early, result.skipped = payload["stopped_early"], True
                log.info(
                    "stage %s: already finished (best epoch %d), loaded from %s",
                    stage.name,
                    result.best_epoch + 1,
                    path,
                )
                return result
            _load_state_dicts(modules, payload["modules"])
            updates.load_state_dict(payload)
            data_generator.set_state(payload["data_rng"])
            restore_rng_state(payload["rng"])
            result.history = list(payload["history"])
            result.best_epoch, result.best_loss = payload["best_epoch"], payload["best_loss"]
            best_state, bad_epochs, start_epoch = payload["best_modules"], payload["bad_epochs"], payload["epoch"]
            log.info("stage %s: resuming after epoch %d from %s", stage.name, start_epoch, path)

        train = self._place(stage.train)
        valid = self._place(stage.valid)
        assert train is not None
        for epoch in range(start_epoch, settings.epochs):
            record = self._train_epoch(epoch, modules, updates, train, data_generator)
            if valid is not None:
                record["valid_loss"] = self._evaluate(modules, valid)
            updates.step_epoch()
            monitored = self._monitored(record, valid is not None)
            if monitored < result.best_loss:
                result.best_loss, result.best_epoch, bad_epochs = monitored, epoch, 0
                if stage.keep == "best":
                    best_state = _state_dicts(modules)
            else:
                bad_epochs += 1
            result.history.append(record)
            result.stopped_early = settings.patience > 0 and bad_epochs >= settings.patience
            finished = result.stopped_early or epoch + 1 == settings.epochs
            log.info(
                "stage %s epoch %d/%d: train loss %.5g%s, lr %.3g, %.0f showers/s%s",
                stage.name,
                epoch + 1,
                settings.epochs,
                record["train_loss"],
                f", valid loss {record['valid_loss']:.5g}" if valid is not None else "",
                record["lr"],
                record["showers_per_second"],
                " (best)" if result.best_epoch == epoch else "",
            )
            if finished and best_state is not None:
                _load_state_dicts(modules, best_state)
            if path is not None and self.world.is_main:
                save_checkpoint(
                    path,
                    {
                        "format": CHECKPOINT_FORMAT,
                        **self._signature(),
                        "epoch": epoch + 1,
                        "finished": finished,
                        "stopped_early": result.stopped_early,
                        "modules": _state_dicts(modules),
                        **updates.state_dict(),
                        "best_epoch": result.best_epoch,
                        "best_loss": result.best_loss,
                        "best_modules": None if finished else best_state,
                        "bad_epochs": bad_epochs,
                        "history": result.history,
                        "rng": capture_rng_state(),
                        "data_rng": data_generator.get_state(),
                        "extra": self.extra,
                    },
                )
            for callback in self.callbacks if self.world.is_main else ():
                callback(stage.name, dict(record))
            if result.stopped_early:
                log.info(
                    "stage %s: no improvement for %d epochs, stopped early; keeping epoch %d",
                    stage.name,
                    settings.patience,
                    result.best_epoch + 1,
                )
                break
        return result

    def _monitored(self, record: Mapping[str, Any], validated: bool) -> float:
        """The value that picks the best epoch: the stage's ``monitor`` extra, else the validation
        loss, else the training loss."""
        monitor = self.stage.monitor
        if monitor is None:
            return float(record["valid_loss"] if validated else record["train_loss"])
        if monitor not in record:
            raise TrainingError(
                f"stage {self.stage.name!r} monitors {monitor!r}, which its loss does not return "
                f"(it returns {sorted(k for k in record if k not in ('epoch', 'lr', 'seconds'))})"
            )
        value = float(record[monitor])
        if not math.isfinite(value):
            raise TrainingError(f"stage {self.stage.name!r}: the monitored {monitor!r} is {value}")
        return value

    def _check_compatible(self, payload: Mapping[str, Any], path: Path) -> None:
        if payload.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"{path} has checkpoint format {payload.get('format')!r}, expected "
                f"{CHECKPOINT_FORMAT}; delete it to start the stage again"
            )
        expected = self._signature()
        different = [key for key, value in expected.items() if payload.get(key) != value]
        if different:
            details = "; ".join(f"{k}: checkpoint {payload.get(k)!r}, now {expected[k]!r}" for k in different)
            raise CheckpointError(
                f"{path} belongs to a different training run ({details}); use another "
                "work directory or delete the checkpoint to start this stage again"
            )

    def _train_epoch(
        self,
        epoch: int,
        modules: Mapping[str, nn.Module],
        updates: Updates,
        train: tuple[torch.Tensor, ...],
        data_generator: torch.Generator,
    ) -> dict[str, Any]:
        settings, stage = self.settings, self.stage
        for module in modules.values():
            module.train()
        n = len(train[0])
        order = torch.randperm(n, generator=data_generator)
        total, count = 0.0, 0
        extras_sum: dict[str, float] = {}
        start = time.perf_counter()
        bar = tqdm(
            total=n,
            desc=f"{stage.name} {epoch + 1}/{settings.epochs}",
            unit="shower",
            unit_scale=True,
            leave=False,
            disable=None if self.progress is None else not self.progress,
            dynamic_ncols=True,
        )
        try:
            for step, first in enumerate(range(0, n, settings.batch_size)):
                chosen = order[first : first + settings.batch_size]
                if len(chosen) < self.world.size:
                    continue  # a last batch too small to give every rank a shower
                batch = self._batch(train, shard(chosen, self.world))
                size = len(batch[0])
                value, extras = updates.step(batch, epoch, step)
                total += value * size
                count += size
                for key, extra in extras.items():
                    extras_sum[key] = extras_sum.get(key, 0.0) + extra * size
                bar.update(size)
                bar.set_postfix(loss=f"{total / count:.4g}", refresh=False)
        finally:
            bar.close()
        if self.world.active:  # the epoch's mean loss over every rank's showers
            keys = sorted(extras_sum)
            total, count_sum, *sums = sum_over_ranks([total, count, *(extras_sum[k] for k in keys)], self.world)
            count, extras_sum = int(count_sum), dict(zip(keys, sums))
        seconds = time.perf_counter() - start
        record: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": total / count,
            "valid_loss": None,
            "lr": updates.lr(),
            "seconds": seconds,
            "showers_per_second": count / seconds if seconds > 0 else 0.0,
        }
        record.update({key: value / count for key, value in extras_sum.items()})
        return record

    def _evaluate(self, modules: Mapping[str, nn.Module], valid: tuple[torch.Tensor, ...]) -> float:
        """Mean loss on the validation tensors, with a fixed seed and without touching the RNG streams."""
        for module in modules.values():
            module.eval()
        devices = (
            [self.device.index if self.device.index is not None else torch.cuda.current_device()]
            if self.device.type == "cuda"
            else []
        )
        total, count = 0.0, 0
        n = len(valid[0])
        with torch.random.fork_rng(devices=devices, device_type="cuda"), torch.no_grad():
            torch.manual_seed(derive_seed(self.seed, self.stage.name, "valid"))
            for first in range(0, n, self.settings.batch_size):
                batch = self._batch(valid, torch.arange(first, min(n, first + self.settings.batch_size)))
                loss, _ = self._loss(batch)
                total += float(loss) * len(batch[0])
                count += len(batch[0])
        value = total / count
        if not math.isfinite(value):
            raise TrainingError(f"stage {self.stage.name!r}: the validation loss is {value}")
        return value
