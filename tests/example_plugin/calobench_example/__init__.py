"""A minimal calobench plugin (the README's example).

It registers one generator, ``example-mean-shower``, that learns the average shower shape (voxel
energy / incident energy) and the spread of the total response, and samples every shower as that
average shape times E_inc times a Gaussian response factor. It is a plumbing example, not a model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from calobench.generator import Generator
from calobench.hookspecs import hookimpl
from calobench.showers import Showers


class MeanShower(Generator):
    name = "example-mean-shower"
    description = "average shower shape times a Gaussian energy response (plugin example)"
    presets = {"smoke": {"min_response": 0.0}, "quick": {"min_response": 0.0}, "paper": {"min_response": 0.0}}

    def fit(self, train: Showers, valid: Showers | None = None, *, seed: int = 0, workdir: Path | None = None) -> None:
        fractions = train.energies / train.incident_energies[:, None]
        response = fractions.sum(axis=1)
        self.shape_ = (fractions.mean(axis=0) / response.mean()).astype(np.float64)
        self.response_ = (float(response.mean()), float(response.std()))

    def sample(
        self, incident_energies: np.ndarray, seed: int | None = None, batch_size: int | None = None
    ) -> np.ndarray:
        rng = np.random.default_rng(seed)
        mean, std = self.response_
        response = np.maximum(rng.normal(mean, std, len(incident_energies)), self.config["min_response"])
        return (np.asarray(incident_energies)[:, None] * response[:, None] * self.shape_).astype(np.float32)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "shape.npy", self.shape_)
        (directory / "model.json").write_text(
            json.dumps(
                {
                    "geometry": self.geometry.name,
                    "preset": self.preset,
                    "config": self.config,
                    "response": self.response_,
                }
            )
        )

    @classmethod
    def load(cls, directory: Path, device: str | None = None) -> "MeanShower":
        from calobench.geometry import resolve_geometry

        directory = Path(directory)
        meta = json.loads((directory / "model.json").read_text())
        model = cls(resolve_geometry(meta["geometry"]), meta["config"], meta["preset"])
        model.shape_ = np.load(directory / "shape.npy")
        model.response_ = tuple(meta["response"])
        return model


@hookimpl
def calobench_generators() -> list[type[Generator]]:
    return [MeanShower]
