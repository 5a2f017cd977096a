"""The shared base of torch generators: device, seeding, staged training, checkpoints, saving, sampling.

A torch model subclasses :class:`TorchGenerator` and writes only what is specific to it::

    class TinyFlow(TorchGenerator):
        name = "tiny-flow"
        presets = {p: with_training_defaults({"hidden": h, "epochs": e})
                   for p, h, e in (("smoke", 8, 2), ("quick", 64, 20), ("paper", 256, 100))}

        def fit_preprocessing(self, train):          # optional: statistics of the training data
            self.scale = float(train.energies.max())
        def preprocessing_state(self):               # JSON values and/or tensors / numpy arrays
            return {"scale": self.scale}
        def load_preprocessing_state(self, state):
            self.scale = state["scale"]

        def build_modules(self):                     # architecture from self.config (+ preprocessing)
            return {"net": make_net(self.geometry.n_voxels, self.config["hidden"])}
        def training_tensors(self, showers):         # the default single stage trains on these
            return (torch.as_tensor(...), ...)
        def loss(self, batch):                       # scalar (or (scalar, {"nll": ...}))
            return -self.modules["net"].log_prob(*batch).mean()
        def sample_batch(self, incident_energies, generator):
            ...                                      # (b,) float32 MeV tensor on self.device -> (b, V) MeV

What the base does:

* **device** -- ``device="auto"`` (default): CUDA when present, else CPU; a forced device is
  checked (:func:`calobench.generator.device.resolve_device`). :attr:`device` is a ``torch.device``.
* **fit(train, valid, seed=, workdir=)** -- seeds everything from ``seed``, calls
  :meth:`fit_preprocessing`, builds :attr:`modules` (an ``nn.ModuleDict`` of :meth:`build_modules`)
  on the device, then runs each :class:`~calobench.generator.training.Stage` of :meth:`stages` with a
  :class:`~calobench.generator.training.Trainer` (validation, early stopping, schedules, gradient
  clipping, AMP on CUDA, progress bar, per-epoch atomic checkpoints ``workdir/<stage>.pt`` holding
  the generator name, config, preprocessing state, weights, optimizer and RNG states; a checkpoint
  of another generator, config or seed is refused; a finished stage is skipped on resume; an interrupted one continues and ends bit-identical on the
  CPU). The default :meth:`stages` is one stage ``"main"`` training every module with
  :meth:`loss` on :meth:`training_tensors` and the settings of the config's unprefixed keys
  (:class:`~calobench.generator.settings.TrainSettings`). Multi-stage models override
  :meth:`stages` (it may be a generator function that yields each stage after the previous one
  has trained, e.g. a distillation stage that needs the trained teacher).
* **sample(incident_energies, seed, batch_size)** -- batches of ``batch_size`` (default
  ``config["sample_batch_size"]``), each passed to :meth:`sample_batch` as a float32 tensor of
  incident energies in MeV on the device, with a ``torch.Generator`` on the device seeded from
  ``seed``; torch's global RNG is also seeded (inside ``torch.random.fork_rng``, so the caller's
  state is untouched) for code that cannot take a generator (e.g. normflows' ``sample``). Runs in
  eval mode under ``no_grad`` (and autocast when ``config["amp"]`` on CUDA); returns a float32
  ``(n, n_voxels)`` numpy array in MeV on the host.
* **save(dir)** -- ``dir/weights.pt`` (module state dicts + the tensor part of
  :meth:`preprocessing_state`) and ``dir/generator.json`` (name, versions, preset, config, geometry,
  data set, the JSON part of the preprocessing state); **load(dir, device)** rebuilds the modules
  from the config and loads the weights with ``weights_only=True`` and ``map_location="cpu"``,
  then moves them to the device. Tensors and arrays in the preprocessing state come back as CPU
  tensors.
* **n_parameters()** -- number of parameters in :attr:`modules` (0 before fit/load).

Hooks for tests and the CLI: :attr:`callbacks` (``callback(stage_name, epoch_record)`` after every
epoch's checkpoint), :attr:`progress` (tqdm bars: ``None`` = on a terminal only) and
:attr:`training_results` (one :class:`~calobench.generator.training.StageResult` per stage).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from calobench.errors import CheckpointError, PluginError
from calobench.generator.base import PRESETS, Generator
from calobench.generator.checkpoint import load_checkpoint, save_checkpoint
from calobench.generator.device import resolve_device
from calobench.generator.seeding import derive_seed, fresh_seed, seed_everything, torch_generator
from calobench.generator.serialization import construct_from_json, read_generator_json, write_generator_json
from calobench.generator.settings import TrainSettings, with_training_defaults
from calobench.generator.training import EpochCallback, Stage, StageResult, Trainer, TrainingError, amp_dtype
from calobench.geometry import Geometry
from calobench.showers import Showers

WEIGHTS_FILE = "weights.pt"
DEFAULT_SAMPLE_BATCH = 10000


def _holds_array(value: Any) -> bool:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return True
    if isinstance(value, Mapping):
        return any(_holds_array(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_array(v) for v in value)
    return False


def _to_tensors(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, Mapping):
        return {k: _to_tensors(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_tensors(v) for v in value]
    return value


class TorchGenerator(Generator):
    """Base class of torch generators (see the module docstring for the subclass hooks)."""

    presets = {preset: with_training_defaults({}) for preset in PRESETS}

    def __init__(
        self,
        geometry: Geometry,
        config: Mapping[str, Any] | None = None,
        preset: str = "quick",
        *,
        dataset: str | None = None,
        device: "str | torch.device | None" = None,
    ) -> None:
        super().__init__(geometry, config, preset, dataset=dataset, device=None if device is None else str(device))
        self.device: torch.device = resolve_device(device)
        self.modules: nn.ModuleDict | None = None
        self.callbacks: list[EpochCallback] = []
        self.progress: bool | None = None
        self.training_results: list[StageResult] = []

    # ------------------------------------------------------------------ subclass hooks
    @abc.abstractmethod
    def build_modules(self) -> dict[str, nn.Module]:
        """The model's modules, built from :attr:`config` and :attr:`geometry` (and the preprocessing
        state, which is set before this is called in both ``fit`` and ``load``)."""

    @abc.abstractmethod
    def sample_batch(self, incident_energies: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Showers for one batch: ``incident_energies`` is a (b,) float32 tensor in MeV on
        :attr:`device`; return (b, n_voxels) voxel energies in MeV (any float dtype, any device)."""

    def fit_preprocessing(self, train: Showers) -> None:
        """Compute preprocessing statistics from the training showers (default: nothing)."""

    def preprocessing_state(self) -> dict[str, Any]:
        """Preprocessing state to save: JSON values and/or tensors / numpy arrays (default: empty)."""
        return {}

    def load_preprocessing_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`preprocessing_state` returned (arrays come back as CPU tensors)."""

    def training_tensors(self, showers: Showers) -> tuple[torch.Tensor, ...]:
        """Tensors the default single stage trains on (same first dimension; kept on the CPU)."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement training_tensors() and loss(), or override stages()"
        )

    def loss(self, batch: tuple[torch.Tensor, ...]) -> "torch.Tensor | tuple[torch.Tensor, dict[str, float]]":
        """Loss of the default single stage on one batch (tensors on :attr:`device`)."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement training_tensors() and loss(), or override stages()"
        )

    def main_stage_options(self) -> dict[str, Any]:
        """Further :class:`~calobench.generator.training.Stage` fields of the default single stage,
        e.g. ``{"keep": "last", "eps": 1e-10}`` (default: none)."""
        return {}

    def stages(self, train: Showers, valid: Showers | None) -> Iterable[Stage]:
        """The training stages, in order. Default: one stage ``"main"`` over all modules
        (with :meth:`main_stage_options`)."""
        assert self.modules is not None
        yield Stage(
            "main",
            dict(self.modules),
            self.loss,
            self.training_tensors(train),
            None if valid is None or len(valid) == 0 else self.training_tensors(valid),
            TrainSettings.from_config(self.config),
            **self.main_stage_options(),
        )

    # ------------------------------------------------------------------ training
    @staticmethod
    def random_subset(showers: Showers | None, limit: int | None, seed: int, what: str) -> Showers | None:
        """At most ``limit`` showers chosen at random, in their original order; the choice is fixed by
        ``seed`` and ``what`` (e.g. ``"train"``, ``"valid"``), so presets with ``max_train_showers``
        train on the same showers for the same seed."""
        if showers is None or limit is None or len(showers) <= int(limit):
            return showers
        rng = np.random.default_rng(derive_seed(seed, "subset", what))
        return showers[np.sort(rng.choice(len(showers), int(limit), replace=False))]

    def fit(self, train: Showers, valid: Showers | None = None, *, seed: int = 0, workdir: Path | None = None) -> None:
        seed_everything(seed)
        self.fit_preprocessing(train)
        self.modules = nn.ModuleDict(self.build_modules()).to(self.device)
        if workdir is not None:
            Path(workdir).mkdir(parents=True, exist_ok=True)
        self.training_results = []
        identity = {"generator": self.name, "config": self.config}
        extra = {"preprocessing": _to_tensors(dict(self.preprocessing_state()))}
        for stage in self.stages(train, valid):
            trainer = Trainer(
                stage,
                self.device,
                seed,
                None if workdir is None else Path(workdir),
                callbacks=self.callbacks,
                progress=self.progress,
                identity=identity,
                extra=extra,
            )
            self.training_results.append(trainer.run())
        self.modules.eval()

    # ------------------------------------------------------------------ sampling
    def _require_modules(self) -> nn.ModuleDict:
        if self.modules is None:
            raise TrainingError(f"generator {self.name!r} has no weights yet: call fit() or load() first")
        return self.modules

    def sample(
        self, incident_energies: np.ndarray, seed: int | None = None, batch_size: int | None = None
    ) -> np.ndarray:
        modules = self._require_modules()
        energies = np.asarray(incident_energies, dtype=np.float64).reshape(-1)
        seed = fresh_seed() if seed is None else int(seed)
        batch_size = int(batch_size or self.config.get("sample_batch_size") or DEFAULT_SAMPLE_BATCH)
        n_voxels = self.geometry.n_voxels
        output = np.empty((len(energies), n_voxels), dtype=np.float32)
        generator = torch_generator(seed, self.device)
        use_amp = bool(self.config.get("amp", False)) and self.device.type == "cuda"
        cuda_devices = (
            [self.device.index if self.device.index is not None else torch.cuda.current_device()]
            if self.device.type == "cuda"
            else []
        )
        modules.eval()
        with (
            torch.random.fork_rng(devices=cuda_devices, device_type="cuda"),
            torch.no_grad(),
            torch.autocast(
                device_type=self.device.type,
                dtype=amp_dtype(self.device) if use_amp else torch.float32,
                enabled=use_amp,
            ),
        ):
            torch.manual_seed(derive_seed(seed, "global"))
            for first in range(0, len(energies), batch_size):
                chunk = torch.as_tensor(energies[first : first + batch_size], dtype=torch.float32, device=self.device)
                showers = self.sample_batch(chunk, generator)
                if not isinstance(showers, torch.Tensor) or tuple(showers.shape) != (len(chunk), n_voxels):
                    got = tuple(showers.shape) if isinstance(showers, torch.Tensor) else type(showers).__name__
                    raise PluginError(
                        f"generator {self.name!r}: sample_batch returned {got} for {len(chunk)} "
                        f"incident energies; expected a tensor of shape ({len(chunk)}, {n_voxels})"
                    )
                output[first : first + len(chunk)] = showers.detach().to("cpu", torch.float32).numpy()
        return output

    # ------------------------------------------------------------------ saving
    def save(self, directory: Path) -> None:
        modules = self._require_modules()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = dict(self.preprocessing_state())
        arrays = {k: _to_tensors(v) for k, v in state.items() if _holds_array(v)}
        plain = {k: v for k, v in state.items() if k not in arrays}
        weights = {
            "modules": {
                name: {k: v.detach().to("cpu") for k, v in module.state_dict().items()}
                for name, module in modules.items()
            },
            "preprocessing": arrays,
        }
        save_checkpoint(directory / WEIGHTS_FILE, weights)
        write_generator_json(directory, self, state={"preprocessing": plain})

    @classmethod
    def load(cls, directory: Path, device: "str | torch.device | None" = None) -> "TorchGenerator":
        directory = Path(directory)
        data = read_generator_json(directory, cls)
        model = construct_from_json(cls, data, device=None if device is None else str(device))
        assert isinstance(model, TorchGenerator)
        weights = load_checkpoint(directory / WEIGHTS_FILE, map_location="cpu")
        state = {**data["state"].get("preprocessing", {}), **weights.get("preprocessing", {})}
        model.load_preprocessing_state(state)
        modules = nn.ModuleDict(model.build_modules())
        stored = weights.get("modules", {})
        if set(stored) != set(modules.keys()):
            raise CheckpointError(
                f"{directory / WEIGHTS_FILE} holds modules {sorted(stored)}, but "
                f"{cls.name!r} with this config builds {sorted(modules.keys())}"
            )
        for name, module in modules.items():
            try:
                module.load_state_dict(stored[name])
            except RuntimeError as exc:
                raise CheckpointError(
                    f"{directory / WEIGHTS_FILE}: weights of module {name!r} do not fit the "
                    f"architecture built from the saved config: {exc}"
                ) from exc
        model.modules = modules.to(model.device).eval()
        return model

    def n_parameters(self) -> int:
        if self.modules is None:
            return 0
        return int(sum(p.numel() for p in self.modules.parameters()))
