"""What ``caloinn`` and ``caloinn-vae`` share: geometries, per-geometry published settings, the
published validation split and training-event cuts, the training subset, the data-derived constants
(u0 scale, readout threshold), the version check of saved runs and redrawing of non-finite samples."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from calobench.errors import CheckpointError, ConfigError, PluginError
from calobench.generator.seeding import derive_seed
from calobench.generator.serialization import read_generator_json
from calobench.generator.torch_base import TorchGenerator
from calobench.geometry import Geometry
from calobench.showers import Showers
from calobench_caloinn.presets import METHOD_VERSION

#: How often a non-finite generated shower is drawn again before sampling fails.
MAX_REDRAWS = 3

log = logging.getLogger("calobench.caloinn")


class CaloINNGenerator(TorchGenerator):
    """Shared base of ``caloinn`` and ``caloinn-vae`` (not registered itself).

    Subclasses set :attr:`supported_geometries`, :attr:`unsupported_reason_text` and
    :attr:`published` (per geometry: the values that replace ``null`` keys of the ``paper`` preset).
    """

    #: Why other geometries are refused (appended to the error message).
    unsupported_reason_text: ClassVar[str] = ""
    #: ``{geometry: {key: value}}``: published sizes that fill the ``paper`` preset's ``null`` entries.
    published: ClassVar[dict[str, dict[str, Any]]] = {}
    #: ``{geometry: {key: value}}``: the published method, filling ``null`` entries of every preset.
    method: ClassVar[dict[str, dict[str, Any]]] = {}
    #: ``method_version`` values a run may carry (only :data:`METHOD_VERSION` trains).
    method_versions: ClassVar[tuple[int, ...]] = (METHOD_VERSION,)

    def __init__(self, geometry: Geometry, config: Mapping[str, Any] | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(geometry, config, *args, **kwargs)
        tables = [self.method] + ([self.published] if self.preset == "paper" else [])
        for table in tables:  # null = "as published for this geometry"
            for key, value in table.get(geometry.name, {}).items():
                if key in self.config and self.config[key] is None:
                    self.config[key] = value
        if self.config.get("method_version") not in self.method_versions:
            raise ConfigError(
                f"{self.name}: method_version {self.config.get('method_version')!r} is not one this plugin "
                f"knows ({', '.join(map(str, self.method_versions))}); it records how a run was made"
            )
        valid_fraction = self.config.get("valid_fraction")
        if valid_fraction is not None and not 0.0 <= float(valid_fraction) < 1.0:
            raise ConfigError(f"valid_fraction must be in [0, 1) or null, got {valid_fraction}")
        self.u0_scale: float | None = None
        self.threshold_mev: float | None = None

    @classmethod
    def check_saved_run(cls, directory: Path) -> dict[str, Any]:
        """The saved run's ``generator.json``; raise :class:`CheckpointError` for a run this version
        cannot reproduce (the default: none; ``caloinn-vae`` refuses runs from before METHOD_VERSION 2)."""
        return read_generator_json(directory, cls)

    @classmethod
    def load(cls, directory: Path, device: "str | torch.device | None" = None) -> "TorchGenerator":
        cls.check_saved_run(Path(directory))
        return super().load(directory, device)

    @staticmethod
    def legacy_run_error(name: str, directory: Path) -> CheckpointError:
        return CheckpointError(
            f"{directory} holds a {name} run saved before calobench-caloinn followed the published method "
            f"(method_version {METHOD_VERSION}: issue 23, plugins/caloinn/FIDELITY.md); its networks and "
            f"preprocessing are not this version's. Train it again: calobench train {name} --dataset ... --out NEW_DIR"
        )

    @classmethod
    def check_geometry(cls, geometry: Geometry) -> None:
        supported = cls.supported_geometries or ()
        if geometry.name not in supported:
            raise ConfigError(
                f"{cls.name} does not support geometry {geometry.name!r} ({geometry.n_voxels} voxels); "
                f"supported: {', '.join(supported)}. {cls.unsupported_reason_text}".rstrip()
            )

    # ------------------------------------------------------------------ data
    def fit(self, train: Showers, valid: Showers | None = None, *, seed: int = 0, workdir: Path | None = None) -> None:
        if self.config["method_version"] != METHOD_VERSION:
            raise ConfigError(
                f"{self.name}: runs of method_version {self.config['method_version']} can be loaded and "
                f"sampled, not trained; train with method_version {METHOD_VERSION}"
            )
        train, valid = self.training_split(train, valid, seed)
        super().fit(train, valid, seed=seed, workdir=workdir)

    def event_mask(self, showers: Showers) -> np.ndarray:
        """(N,) bool: which showers the published preprocessing keeps for training (default: all)."""
        return np.ones(len(showers), dtype=bool)

    def training_split(self, train: Showers, valid: Showers | None, seed: int) -> tuple[Showers, Showers | None]:
        """The published split: the showers that pass :meth:`event_mask`, of which the config's
        ``valid_fraction`` (CaloINN: 1 %, the VAE+INN: 20 %) is a seeded random validation set, from
        the caller's training and validation showers together (``null``: the caller's split), then at
        most ``max_train_showers`` / ``max_valid_showers`` of each. Only the chosen rows are copied."""
        fraction = self.config.get("valid_fraction")
        parts = [train] if valid is None or len(valid) == 0 else [train, valid]
        kept = [np.flatnonzero(self.event_mask(part)) for part in parts]
        n_cut = sum(len(part) for part in parts) - sum(len(k) for k in kept)
        if n_cut:
            log.info("%s: %d showers fail the published event cuts and are left out", self.name, n_cut)
        if fraction is None:
            chosen = [kept[0], kept[1] if len(kept) > 1 else np.zeros(0, dtype=np.int64)]
            train_rows, valid_rows = [(0, chosen[0])], [(1, chosen[1])]
        else:
            pool = np.concatenate([np.stack([np.full(len(k), i), k], axis=1) for i, k in enumerate(kept)])
            order = np.random.default_rng(derive_seed(seed, "caloinn", "validation")).permutation(len(pool))
            n_valid = int(round(float(fraction) * len(pool)))
            train_rows = _by_part(pool[order[n_valid:]])
            valid_rows = _by_part(pool[order[:n_valid]])
        train_rows = _limit(train_rows, self.config.get("max_train_showers"), seed, "train")
        valid_rows = _limit(valid_rows, self.config.get("max_valid_showers"), seed, "valid")
        chosen_train = _gather(parts, train_rows)
        if chosen_train is None:
            raise ConfigError(f"{self.name}: no training shower passes the published event cuts")
        chosen_valid = _gather(parts, valid_rows)
        log.info(
            "%s trains on %d showers and validates on %d (valid_fraction %s of the showers given)",
            self.name,
            len(chosen_train),
            0 if chosen_valid is None else len(chosen_valid),
            fraction,
        )
        return chosen_train, chosen_valid

    @property
    def layer_sizes(self) -> list[int]:
        return list(self.geometry.layer_sizes)

    @property
    def empty_tail(self) -> float:
        """The u of a layer that is empty with everything behind it (``energies_to_u``'s
        ``empty_tail``): 1 with ``leftover_to_first_empty_layer``, else 0 (the shared convention)."""
        return 1.0 if self.config.get("leftover_to_first_empty_layer", False) else 0.0

    def shower_tensors(self, showers: Showers) -> tuple[torch.Tensor, torch.Tensor]:
        """(incident energies (N,), voxels (N, V)) as float32 CPU tensors in MeV."""
        return (
            torch.as_tensor(np.asarray(showers.incident_energies, dtype=np.float32)),
            torch.as_tensor(np.asarray(showers.energies, dtype=np.float32)),
        )

    # ------------------------------------------------------------------ preprocessing state
    def condition_scale(self, log2_energies: torch.Tensor) -> tuple[float, float]:
        """(offset, width) applied to the INN condition ``log2(E_inc / GeV)``: (0, 1), the condition
        as published (models.md sec. 2.3, ``log_cond``), or with ``standardize_condition`` the
        training mean and width (width 1 when the training energies do not vary)."""
        if not self.config.get("standardize_condition", False):
            return 0.0, 1.0
        width = float(log2_energies.std()) if len(log2_energies) > 1 else 0.0
        return float(log2_energies.mean()), width if width > 0 else 1.0

    def u0_scale_for(self, train: Showers) -> float:
        """f in ``u_0 = E_dep / (f E_inc)`` (subclasses: the published value)."""
        return 1.0

    def fit_constants(self, train: Showers) -> None:
        """u0 scale f (:meth:`u0_scale_for`) and the readout threshold (config ``threshold_mev``;
        ``null``: just below the smallest non-zero voxel of the training data)."""
        self.u0_scale = float(self.u0_scale_for(train))
        threshold = self.config.get("threshold_mev")
        if threshold is None:
            nonzero = train.energies[train.energies > 0]
            threshold = float(nonzero.min()) * (1.0 - 1e-6) if nonzero.size else 0.0
        if float(threshold) < 0:
            raise ConfigError(f"threshold_mev must be >= 0 or null, got {threshold}")
        self.threshold_mev = float(threshold)

    def preprocessing_state(self) -> dict[str, Any]:
        return {"u0_scale": self.u0_scale, "threshold_mev": self.threshold_mev}

    def load_preprocessing_state(self, state: dict[str, Any]) -> None:
        self.u0_scale = float(state["u0_scale"])
        self.threshold_mev = float(state["threshold_mev"])

    # ------------------------------------------------------------------ sampling
    def redraw_non_finite(
        self, draw: Callable[[torch.Tensor], torch.Tensor], incident_energies: torch.Tensor
    ) -> torch.Tensor:
        """``draw(energies)`` with every non-finite shower drawn again (up to :data:`MAX_REDRAWS`
        times, from the same generator, so the result stays reproducible)."""
        showers = draw(incident_energies)
        bad = ~torch.isfinite(showers).all(dim=1)
        for _ in range(MAX_REDRAWS):
            if not bool(bad.any()):
                break
            log.warning(
                "%s: %d of %d showers were not finite; drawing them again", self.name, int(bad.sum()), len(showers)
            )
            showers[bad] = draw(incident_energies[bad])
            bad = ~torch.isfinite(showers).all(dim=1)
        if bool(bad.any()):
            raise PluginError(f"{self.name}: {int(bad.sum())} showers stayed non-finite after {MAX_REDRAWS} redraws")
        return showers


def hidden_widths(width: int, linear_layers: int) -> list[int]:
    """Hidden widths of a subnet of ``linear_layers`` linear layers of ``width`` (CaloINN's
    ``internal_size`` and ``layers_per_block``)."""
    if linear_layers < 1 or width < 1:
        raise ConfigError(f"a subnet needs >= 1 linear layer of width >= 1, got {linear_layers} x {width}")
    return [int(width)] * (int(linear_layers) - 1)


def _by_part(rows: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(n, 2) rows of (part, index) -> [(part, sorted indices)] per part."""
    return [(int(part), np.sort(rows[rows[:, 0] == part, 1])) for part in np.unique(rows[:, 0])]


def _limit(rows: list[tuple[int, np.ndarray]], limit: int | None, seed: int, what: str) -> list[tuple[int, np.ndarray]]:
    """At most ``limit`` of the rows, chosen at random (fixed by ``seed`` and ``what``), in their order."""
    total = sum(len(indices) for _, indices in rows)
    if limit is None or total <= int(limit):
        return rows
    keep = np.zeros(total, dtype=bool)
    keep[np.random.default_rng(derive_seed(seed, "subset", what)).choice(total, int(limit), replace=False)] = True
    bounds = np.cumsum([0] + [len(indices) for _, indices in rows])
    return [(part, indices[keep[a:b]]) for (part, indices), a, b in zip(rows, bounds[:-1], bounds[1:])]


def _gather(parts: list[Showers], rows: list[tuple[int, np.ndarray]]) -> Showers | None:
    """The chosen rows of the parts as one :class:`Showers` (``None`` when there are none)."""
    pieces = [parts[part][indices] for part, indices in rows if len(indices)]
    if not pieces:
        return None
    return pieces[0] if len(pieces) == 1 else Showers.concatenate(pieces)
