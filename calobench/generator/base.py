"""The interface every shower generator implements, and its configuration presets.

A generator is constructed from a :class:`~calobench.geometry.Geometry` and a configuration that
starts from a named preset (``"smoke"`` for tests, ``"quick"`` for the CPU demo, ``"paper"`` for
the published configuration) and is changed key by key::

    model = MyGenerator(geometry, preset="quick", config={"epochs": 5})
    model.fit(train, valid, seed=1, workdir=run_dir)      # resumes from workdir if interrupted
    voxels = model.sample(incident_energies_mev, seed=2)  # float32 (n, n_voxels) in MeV, on the host
    model.save(out_dir); same = MyGenerator.load(out_dir, device="cpu")
"""

from __future__ import annotations

import abc
import contextlib
import copy
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from calobench.errors import ConfigError
from calobench.geometry import Geometry
from calobench.registry import suggestion_text
from calobench.showers import Showers

PRESETS: tuple[str, ...] = ("smoke", "quick", "paper")


def parse_override(text: str) -> tuple[str, Any]:
    """Parse one ``key=value`` override; the value is read as JSON when it parses, else as a string."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        lowered = raw.strip().lower()
        value = {"true": True, "false": False, "none": None, "null": None}.get(lowered, raw)
    return key, value


def _coerce(key: str, value: Any, default: Any) -> Any:
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r} expects true or false, got {value!r}")
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
            return int(value)
        raise ConfigError(f"config key {key!r} expects an integer, got {value!r}")
    if isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"config key {key!r} expects a number, got {value!r}")
    if isinstance(default, (list, tuple)):
        if isinstance(value, (list, tuple)):
            return list(value)
        raise ConfigError(f"config key {key!r} expects a list, got {value!r}")
    if isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"config key {key!r} expects a string, got {value!r}")
    return value


def _finite(value: Any) -> bool:
    """Whether every number in ``value`` (nested lists and tables included) is finite: a NaN or
    infinite setting would train for nothing and could not be written to run.json."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    return True


def resolve_config(cls: type["Generator"], preset: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The preset's configuration with ``overrides`` applied; unknown keys and wrong types are errors."""
    if preset not in cls.presets:
        raise ConfigError(f"generator {cls.name!r} has no preset {preset!r}; presets: {sorted(cls.presets)}")
    config = copy.deepcopy(dict(cls.presets[preset]))
    untyped: frozenset[str] = getattr(cls, "untyped_config_keys", frozenset())
    for key, value in (overrides or {}).items():
        if key not in config:
            raise ConfigError(f"generator {cls.name!r} has no config key {key!r}{suggestion_text(key, config)}")
        if not _finite(value):
            raise ConfigError(f"config key {key!r} must hold finite numbers, got {value!r}")
        config[key] = value if key in untyped else _coerce(key, value, config[key])
    return config


class Generator(abc.ABC):
    """A generative model of showers in one geometry.

    Subclasses set :attr:`name` (the registry name), :attr:`presets` (configuration dictionaries
    for ``"smoke"``, ``"quick"`` and ``"paper"``) and implement :meth:`fit`, :meth:`sample`,
    :meth:`save` and :meth:`load`.
    """

    #: Registry name, e.g. ``"caloflow-teacher"``.
    name: ClassVar[str] = ""
    #: One-line description shown by ``calobench models``.
    description: ClassVar[str] = ""
    #: Configuration per preset; every key a user may ``--set`` must appear in each preset.
    presets: ClassVar[dict[str, dict[str, Any]]] = {"smoke": {}, "quick": {}, "paper": {}}
    #: Geometry names this model supports; ``None`` means any geometry.
    supported_geometries: ClassVar[tuple[str, ...] | None] = None
    #: Whether :meth:`fit` learns anything (``False`` for the simulator "truth" row).
    trainable: ClassVar[bool] = True
    #: Config keys that name another generator's trained run: ``{"teacher_checkpoint": "caloflow-teacher"}``.
    #: A leaderboard run trains that generator first (same suite and seed) and fills the key with its
    #: run directory.
    dependencies: ClassVar[dict[str, str]] = {}
    #: The row of the published CaloChallenge 2022 tables (arXiv 2410.21611) of the same model family,
    #: e.g. ``"CaloFlow teacher"``; shown beside this generator's leaderboard row, marked as published.
    published_name: ClassVar[str | None] = None
    #: Config keys whose value may take another type than the preset's (e.g. ``"auto"`` or an
    #: integer); ``--set`` passes them through unchecked and the generator validates them itself.
    untyped_config_keys: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        geometry: Geometry,
        config: Mapping[str, Any] | None = None,
        preset: str = "quick",
        *,
        dataset: str | None = None,
        device: str | None = None,
    ) -> None:
        """Args:
        geometry: the geometry of the showers this model makes.
        config: overrides of the preset's configuration (``--set key=value``).
        preset: ``"smoke"``, ``"quick"`` or ``"paper"``.
        dataset: name of the data set the model is trained on, if it has one (the simulator
            "truth" baseline needs it); stored as :attr:`dataset`.
        device: requested device (``"auto"``, ``"cpu"``, ``"cuda"``...), stored as
            :attr:`requested_device`; models that run on a device resolve it (see
            :class:`calobench.generator.torch_base.TorchGenerator`), the others ignore it.
        """
        self.check_geometry(geometry)
        self.geometry = geometry
        self.preset = preset
        self.config = resolve_config(type(self), preset, config)
        self.dataset = dataset
        self.requested_device = device

    @classmethod
    def check_geometry(cls, geometry: Geometry) -> None:
        """Raise :class:`ConfigError` if this model cannot handle ``geometry``."""
        if cls.supported_geometries is not None and geometry.name not in cls.supported_geometries:
            raise ConfigError(
                f"generator {cls.name!r} does not support geometry {geometry.name!r}; "
                f"supported: {', '.join(cls.supported_geometries)}"
            )

    @classmethod
    def unsupported_reason(cls, geometry: Geometry, dataset: str | None = None) -> str | None:
        """Why this model cannot be used on ``geometry`` (and data set ``dataset``), or ``None``.

        Leaderboard runs list such a model as "not applicable" instead of failing it.
        """
        try:
            cls.check_geometry(geometry)
        except ConfigError as exc:
            return str(exc)
        return None

    @abc.abstractmethod
    def fit(self, train: Showers, valid: Showers | None = None, *, seed: int = 0, workdir: Path | None = None) -> None:
        """Train on ``train`` (validating on ``valid``). With ``workdir``, keep resumable
        checkpoints there and resume from them if present."""

    @abc.abstractmethod
    def sample(
        self, incident_energies: np.ndarray, seed: int | None = None, batch_size: int | None = None
    ) -> np.ndarray:
        """Generate one shower per incident energy (MeV): float32 (n, n_voxels) in MeV on the host."""

    @abc.abstractmethod
    def save(self, directory: Path) -> None:
        """Write everything needed to :meth:`load` the trained model into ``directory``."""

    @classmethod
    @abc.abstractmethod
    def load(cls, directory: Path, device: str | None = None) -> "Generator":
        """Restore a model saved with :meth:`save`, placing it on ``device`` if it uses one."""

    def bulk_sampling(self) -> contextlib.AbstractContextManager[None]:
        """A context in which :meth:`sample` may use an exact, faster algorithm than the model's
        reference sampler: the same distribution and seeds, other float rounding (e.g. the CaloFlow
        teacher's incremental MADE inverse instead of one full MADE pass per voxel). ``calobench
        sample`` and the leaderboard's evaluation sample draw their showers in it; timing does not, so
        the timing columns measure the reference sampler, comparable with the published figures.
        Default: nothing changes."""
        return contextlib.nullcontext()

    def n_parameters(self) -> int:
        """Number of trainable parameters (0 for non-parametric models)."""
        return 0

    def run_info(self) -> dict[str, Any]:
        """Facts about the trained model worth keeping with its run, as JSON values -- e.g. a size the
        model chose from the data (CaloMan's measured latent dimension). ``calobench train`` prints
        them, ``run.json`` stores them under ``model_info`` and leaderboard result files copy them
        (``training.model_info``). Default: none."""
        return {}

    @classmethod
    def contract_config(cls, train: Showers, valid: Showers | None, workdir: Path) -> dict[str, Any]:
        """Config overrides that :func:`calobench.testing.check_generator_contract` applies to the
        ``smoke`` preset, for models that need something prepared first -- e.g. a distilled student
        trains a smoke teacher under ``workdir`` on ``train`` and returns ``{"teacher_checkpoint": ...}``.
        Default: none."""
        return {}

    def sample_showers(
        self, incident_energies: np.ndarray, seed: int | None = None, batch_size: int | None = None
    ) -> Showers:
        """:meth:`sample` wrapped as :class:`Showers` after checking its shape and values."""
        from calobench.generator.checks import checked_sample

        return checked_sample(self, np.asarray(incident_energies, dtype=np.float64), seed=seed, batch_size=batch_size)
