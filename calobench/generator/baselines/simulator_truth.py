"""The "truth" row of synthetic data sets: showers drawn from the simulator that made the data set.

For a synthetic data set (made by :mod:`calobench.simulator`), fresh showers from the same simulator
are an independent sample of the true distribution: the best any model can do, and the row against
which the metrics' own statistical noise is read. It learns nothing (``trainable = False``); it
needs the data set's name (``dataset=...``, passed by ``calobench train --dataset NAME``) and
refuses real data sets, whose simulator (GEANT4) is not available.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from calobench.errors import ConfigError, DatasetError
from calobench.generator.base import Generator
from calobench.generator.seeding import fresh_seed
from calobench.generator.serialization import construct_from_json, read_generator_json, write_generator_json
from calobench.geometry import Geometry
from calobench.showers import Showers


class SimulatorTruth(Generator):
    """Samples ``calobench.simulator.simulate(dataset, incident_energies, seed)``."""

    name = "simulator-truth"
    description = "the synthetic data set's own simulator (the truth row; synthetic data sets only)"
    presets = {"smoke": {}, "quick": {}, "paper": {}}
    trainable = False
    published_name = "GEANT4"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        reason = self.unsupported_reason(self.geometry, self.dataset)
        if reason is not None:
            raise ConfigError(reason)

    @classmethod
    def unsupported_reason(cls, geometry: Geometry, dataset: str | None = None) -> str | None:
        """Only synthetic data sets of the same geometry have a simulator calobench can run."""
        if dataset is None:
            return (
                "simulator-truth needs the name of a synthetic data set (train it with --dataset NAME, not a "
                "file); it samples that data set's simulator"
            )
        from calobench.datasets import get_dataset

        try:
            spec = get_dataset(dataset)
        except DatasetError as exc:
            return f"simulator-truth: {exc}"
        if spec.kind != "synthetic":
            return (
                f"simulator-truth works only for synthetic data sets; {dataset!r} is {spec.kind} "
                "(its showers come from GEANT4, which calobench cannot run)"
            )
        if spec.geometry != geometry.name:
            return f"simulator-truth: data set {dataset!r} has geometry {spec.geometry!r}, not {geometry.name!r}"
        return None

    def fit(self, train: Showers, valid: Showers | None = None, *, seed: int = 0, workdir: Path | None = None) -> None:
        """Nothing to learn."""

    def sample(
        self, incident_energies: np.ndarray, seed: int | None = None, batch_size: int | None = None
    ) -> np.ndarray:
        from calobench.simulator import simulate

        assert self.dataset is not None  # __init__ refuses a generator without a data set
        energies = np.asarray(incident_energies, dtype=np.float64).reshape(-1)
        showers = simulate(self.dataset, energies, seed=fresh_seed() if seed is None else int(seed))
        return np.asarray(showers.energies, dtype=np.float32)

    def save(self, directory: Path) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        write_generator_json(directory, self)

    @classmethod
    def load(cls, directory: Path, device: str | None = None) -> "SimulatorTruth":
        model = construct_from_json(cls, read_generator_json(Path(directory), cls), device=device)
        assert isinstance(model, SimulatorTruth)
        return model
