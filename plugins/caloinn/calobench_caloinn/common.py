"""What ``caloinn`` and ``caloinn-vae`` share: geometries, per-geometry published settings, the
training subset, the data-derived constants (u0 scale, readout threshold) and redrawing of
non-finite samples."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from calobench.errors import ConfigError, PluginError
from calobench.generator.torch_base import TorchGenerator
from calobench.geometry import Geometry
from calobench.showers import Showers

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
    #: ``{geometry: {key: value}}``: published settings that fill the config's ``null`` entries.
    published: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, geometry: Geometry, config: Mapping[str, Any] | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(geometry, config, *args, **kwargs)
        if self.preset == "paper":  # null = "as published for this geometry"
            for key, value in self.published.get(geometry.name, {}).items():
                if key in self.config and self.config[key] is None:
                    self.config[key] = value
        self.u0_scale: float | None = None
        self.threshold_mev: float | None = None

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
        train = self.random_subset(train, self.config.get("max_train_showers"), seed, "train")
        valid = self.random_subset(valid, self.config.get("max_valid_showers"), seed, "valid")
        super().fit(train, valid, seed=seed, workdir=workdir)

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

    def fit_constants(self, train: Showers) -> None:
        """u0 scale f (1, or 1.1 x the largest E_dep / E_inc above 1) and the readout threshold
        (config ``threshold_mev``; ``null``: just below the smallest non-zero voxel of the training data)."""
        ratio = float(np.max(train.total_energy() / np.asarray(train.incident_energies, dtype=np.float64)))
        self.u0_scale = 1.0 if ratio < 1.0 else 1.1 * ratio
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
