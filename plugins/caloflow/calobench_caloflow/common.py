"""What the CaloFlow teacher and student generators share: geometries, preprocessing state, the
training subset and the two-flow sampling pipeline (Flow I -> layer energies -> Flow II -> voxels)."""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from calobench.errors import CheckpointError, ConfigError, PluginError
from calobench.generator.torch_base import TorchGenerator
from calobench.geometry import Geometry
from calobench.showers import Showers
from calobench_caloflow.autoregressive import SplineAutoregressive
from calobench_caloflow.flow import ConditionalFlow
from calobench_caloflow.flow_i import sample_layer_energies
from calobench_caloflow.preprocessing import PUBLISHED, Conventions, flow_ii_context, flow_ii_to_voxels
from calobench_caloflow.presets import PAPER_BY_GEOMETRY

#: Geometries CaloFlow was published on; Flow II is one autoregressive flow over all voxels, which
#: does not scale to the 6480 / 40500 voxels of CaloChallenge datasets 2 and 3.
SUPPORTED_GEOMETRIES = ("ds1-photons", "ds1-pions", "calogan")
#: How often a non-finite generated shower is drawn again before sampling fails.
MAX_REDRAWS = 3
#: Revision of the model definition saved with every run. 2: the published nflows MADE (context
#: through its own ReLU, degrees 1..D-1, spline widths unscaled), the published post-processing and
#: contexts (issue 23). Runs of another revision are refused on loading.
REVISION = 2

log = logging.getLogger("calobench.caloflow")


#: Floating-point types a CaloFlow model can be built in (``dtype``; published: float64).
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def model_dtype(name: str) -> torch.dtype:
    """The torch dtype named by the ``dtype`` config key."""
    if name not in DTYPES:
        raise ConfigError(f"dtype must be one of {sorted(DTYPES)}, got {name!r}")
    return DTYPES[name]


class CaloFlowGenerator(TorchGenerator):
    """Shared base of ``caloflow-teacher`` and ``caloflow-student`` (not registered itself).

    A ``paper`` generator takes the published settings of its geometry (:data:`PAPER_BY_GEOMETRY`:
    DS1 pions and CaloGAN differ from the photon dicts of the presets) for every key not set
    explicitly in ``config``."""

    supported_geometries = SUPPORTED_GEOMETRIES

    def __init__(
        self,
        geometry: Geometry,
        config: Mapping[str, Any] | None = None,
        preset: str = "quick",
        **kwargs: Any,
    ) -> None:
        super().__init__(geometry, config, preset, **kwargs)
        if preset == "paper":
            explicit = set(config or {})
            for key, value in PAPER_BY_GEOMETRY.get(geometry.name, {}).items():
                if key in self.config and key not in explicit:
                    self.config[key] = copy.deepcopy(value)
        self.conventions: Conventions | None = None
        self._fit_seed = 0

    @classmethod
    def check_geometry(cls, geometry: Geometry) -> None:
        if geometry.name not in SUPPORTED_GEOMETRIES:
            raise ConfigError(
                f"{cls.name} does not support geometry {geometry.name!r} ({geometry.n_voxels} voxels): its Flow II "
                f"is one autoregressive flow over all voxels of a shower (published for DS1 and CaloGAN, at most "
                f"533 voxels), and sampling it costs one network pass per voxel; supported: "
                f"{', '.join(SUPPORTED_GEOMETRIES)}. For datasets 2 and 3 use a model built for high granularity "
                f"(CaloFlow's layer-by-layer iCaloFlow, arXiv 2305.11934, is not part of this plugin)"
            )

    @contextlib.contextmanager
    def bulk_sampling(self) -> Iterator[None]:
        """Every MAF block (the teacher's Flow I and Flow II, the student's Flow I) samples with the
        incremental MADE inverse (:meth:`SplineAutoregressive._sequential_incremental`): the same map
        as the published D full passes, ~50x fewer operations at the quick sizes."""
        blocks = [
            block
            for module in self._require_modules().values()
            for block in module.modules()
            if isinstance(block, SplineAutoregressive)
        ]
        previous = [block.incremental_sampling for block in blocks]
        for block in blocks:
            block.incremental_sampling = True
        try:
            yield
        finally:
            for block, flag in zip(blocks, previous, strict=True):
                block.incremental_sampling = flag

    # ------------------------------------------------------------------ data
    def fit(self, train: Showers, valid: Showers | None = None, *, seed: int = 0, workdir: Path | None = None) -> None:
        self._fit_seed = int(seed)
        train = self.random_subset(train, self.config.get("max_train_showers"), seed, "train")
        valid = self.random_subset(valid, self.config.get("max_valid_showers"), seed, "valid")
        super().fit(train, valid, seed=seed, workdir=workdir)

    def shower_tensors(self, showers: Showers) -> tuple[torch.Tensor, torch.Tensor]:
        """(incident energies (N,), voxels (N, V)) as float32 CPU tensors in MeV."""
        return (
            torch.as_tensor(np.asarray(showers.incident_energies, dtype=np.float32)),
            torch.as_tensor(np.asarray(showers.energies, dtype=np.float32)),
        )

    # ------------------------------------------------------------------ preprocessing state
    def conventions_from_data(self, train: Showers) -> Conventions:
        """The published constants of this geometry (:data:`PUBLISHED`), with f (``u0_scale``) from the
        config, or the published one if the training data stays below it, else 1.1 x the largest
        E_dep / E_inc (a data set the authors never ran); and the generation threshold from the config
        (CaloFlow: 0.01 MeV)."""
        published = PUBLISHED[self.geometry.name]
        ratio = float(np.max(train.total_energy() / np.asarray(train.incident_energies, dtype=np.float64)))
        scale = self.config.get("u0_scale")
        if scale is None:
            scale = published.u0_scale if ratio < 0.98 * published.u0_scale else 1.1 * ratio
        elif ratio > float(scale):
            raise ConfigError(
                f"u0_scale={scale} is below the largest deposited / incident energy ratio "
                f"{ratio:.4g} of the training data; Flow I needs u0_scale > {ratio:.4g}"
            )
        threshold = self.config["threshold_mev"]
        if threshold is None or not float(threshold) >= 0:
            raise ConfigError(f"threshold_mev must be an energy >= 0 MeV (published: 0.01), got {threshold!r}")
        threshold = float(threshold)
        values = published.to_dict()
        values.update(u0_scale=float(scale), threshold_mev=threshold)
        if not self.config.get("noise", True):
            values.update(noise_flow1_mev=0.0, noise_flow2_mev=0.0)
        return Conventions(**values)

    def preprocessing_state(self) -> dict[str, Any]:
        assert self.conventions is not None
        return {"conventions": self.conventions.to_dict(), "revision": REVISION}

    def load_preprocessing_state(self, state: dict[str, Any]) -> None:
        revision = state.get("revision", 1)
        if revision != REVISION:
            raise CheckpointError(
                f"this {self.name} run was saved by calobench-caloflow model revision {revision}; this version "
                f"builds revision {REVISION} (the published nflows MADE: context through its own ReLU, "
                "hidden degrees 1..D-1, unscaled spline widths; the published post-processing), which its "
                f"weights do not fit. Train it again (calobench train {self.name} ...; a student needs a "
                "teacher of this revision too)"
            )
        self.conventions = Conventions(**state["conventions"])

    # ------------------------------------------------------------------ sampling
    @property
    def layer_sizes(self) -> list[int]:
        return list(self.geometry.layer_sizes)

    def generate(
        self,
        flow1: ConditionalFlow,
        flow2: ConditionalFlow,
        incident_energies: torch.Tensor,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """CaloFlow's generation (arXiv 2106.05285 sec. III): layer energies from Flow I, normalized
        voxels from Flow II given them, renormalized, thresholded. Returns MeV.

        A shower that comes out non-finite (float32 rounding in a spline inverse; CaloFlow's code drops
        such events with ``remove_nans``) is drawn again from the same generator, up to
        :data:`MAX_REDRAWS` times, so the result stays reproducible and keeps one shower per energy.
        """
        energies = incident_energies.to(torch.float64)
        showers = self._generate_once(flow1, flow2, energies, generator)
        bad = ~torch.isfinite(showers).all(dim=1)
        for _ in range(MAX_REDRAWS):
            if not bool(bad.any()):
                break
            log.warning(
                "%s: %d of %d showers were not finite; drawing them again", self.name, int(bad.sum()), len(showers)
            )
            showers[bad] = self._generate_once(flow1, flow2, energies[bad], generator)
            bad = ~torch.isfinite(showers).all(dim=1)
        if bool(bad.any()):
            raise PluginError(f"{self.name}: {int(bad.sum())} showers stayed non-finite after {MAX_REDRAWS} redraws")
        return showers

    def _generate_once(
        self, flow1: ConditionalFlow, flow2: ConditionalFlow, energies: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        assert self.conventions is not None
        layer_energies = sample_layer_energies(flow1, energies, self.conventions, generator)
        dtype = next(flow2.parameters()).dtype
        conventions = self.conventions
        context = flow_ii_context(energies, layer_energies, conventions, conventions.generation_epsilon).to(dtype)
        samples = flow2.sample(context, generator=generator).to(torch.float64)
        return flow_ii_to_voxels(
            samples, layer_energies, self.layer_sizes, conventions.threshold_mev, conventions.max_voxel_mev
        )


def published_size(value: int | None, geometry: str, table: dict[str, int], key: str) -> int:
    """``value``, or the published size for ``geometry`` when ``value`` is null."""
    if value is not None:
        if int(value) < 1:
            raise ConfigError(f"{key} must be >= 1, got {value}")
        return int(value)
    if geometry not in table:
        raise ConfigError(f"{key}=null means the published size, which is known for {sorted(table)} only")
    return table[geometry]
