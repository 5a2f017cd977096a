"""A baseline that knows every voxel's distribution and none of their correlations.

For each incident-energy bin and each voxel, the model stores the empirical distribution of
``x = voxel energy / E_inc``: the probability that the voxel is exactly zero, and ``n_quantiles``
quantiles (levels ``0, 1/(Q-1), ..., 1``) of its non-zero values. Sampling draws every voxel
independently by inverse-transform sampling: ``u ~ U(0, 1)``; ``u < p0`` gives 0, otherwise the
quantile function (linear between the stored quantiles) at ``(u - p0) / (1 - p0)``; the result is
multiplied by the requested E_inc. Per-voxel marginals (means, sparsity, voxel-energy spectrum) are
therefore right within each bin, while layer energies, total energy and shower shapes -- sums and
correlations of voxels -- are not: a floor every real model must beat.

Energy bins: when the training energies take few discrete values (CaloChallenge dataset 1: the 15
energies 2^8 ... 2^22 MeV), one bin per value and a requested energy goes to the nearest value in
log E; otherwise ``n_energy_bins`` bins with equal numbers of training showers in log E_inc
(energies outside the training range go to the end bins).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from calobench.errors import ConfigError, ShowerFileError
from calobench.generator.base import Generator
from calobench.generator.checkpoint import load_checkpoint, save_checkpoint
from calobench.generator.serialization import construct_from_json, read_generator_json, write_generator_json
from calobench.showers import Showers

TABLES_FILE = "tables.pt"
#: Bytes of float64 working arrays per sampling chunk.
WORKING_BYTES = 128 * 2**20


def _preset(n_energy_bins: int, n_quantiles: int) -> dict[str, Any]:
    return {
        "n_energy_bins": n_energy_bins,
        "n_quantiles": n_quantiles,
        "max_discrete_energies": 32,
        "sample_batch_size": 10000,
    }


class UncorrelatedVoxels(Generator):
    """Per (incident-energy bin, voxel) empirical distributions of voxel / E_inc, sampled independently."""

    name = "baseline-uncorrelated"
    description = "per-voxel distributions per incident-energy bin, no correlations (the floor to beat)"
    presets = {"smoke": _preset(4, 16), "quick": _preset(10, 64), "paper": _preset(20, 128)}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.config["n_quantiles"] < 2:
            raise ConfigError(f"n_quantiles must be >= 2, got {self.config['n_quantiles']}")
        if self.config["n_energy_bins"] < 1:
            raise ConfigError(f"n_energy_bins must be >= 1, got {self.config['n_energy_bins']}")
        self.discrete: bool = False
        self.log_energies: np.ndarray | None = None  # discrete: bin centres; continuous: inner edges (log MeV)
        self.p_zero: np.ndarray | None = None  # (bins, voxels)
        self.quantiles: np.ndarray | None = None  # (bins, voxels, n_quantiles)

    # ------------------------------------------------------------------ training
    def _bins(self, log_energy: np.ndarray) -> np.ndarray:
        assert self.log_energies is not None
        if self.discrete:
            return np.abs(log_energy[:, None] - self.log_energies[None, :]).argmin(axis=1)
        return np.searchsorted(self.log_energies, log_energy, side="right")

    def fit(self, train: Showers, valid: Showers | None = None, *, seed: int = 0, workdir: Path | None = None) -> None:
        """Tabulate the per-bin, per-voxel distributions (deterministic; ``seed`` and ``workdir`` unused)."""
        if len(train) == 0:
            raise ShowerFileError("baseline-uncorrelated needs at least one training shower")
        train.validate(source="training showers")
        log_energy = np.log(np.asarray(train.incident_energies, dtype=np.float64))
        unique = np.unique(log_energy)
        self.discrete = len(unique) <= self.config["max_discrete_energies"] and len(train) >= 2 * len(unique)
        if self.discrete:
            self.log_energies = unique
        else:
            n_bins = max(1, min(self.config["n_energy_bins"], len(train) // 2))
            self.log_energies = np.unique(np.quantile(log_energy, np.linspace(0, 1, n_bins + 1)[1:-1]))
        bins = self._bins(log_energy)
        n_bins = len(self.log_energies) if self.discrete else len(self.log_energies) + 1
        n_quantiles, n_voxels = self.config["n_quantiles"], train.geometry.n_voxels
        levels = np.linspace(0.0, 1.0, n_quantiles)
        self.p_zero = np.ones((n_bins, n_voxels), dtype=np.float32)
        self.quantiles = np.zeros((n_bins, n_voxels, n_quantiles), dtype=np.float32)
        for b in range(n_bins):
            rows = np.flatnonzero(bins == b)
            if len(rows) == 0:
                continue
            fractions = np.sort(train.energies[rows] / train.incident_energies[rows, None], axis=0)
            n_zero = (fractions <= 0).sum(axis=0)
            n_nonzero = len(rows) - n_zero
            self.p_zero[b] = n_zero / len(rows)
            # quantile j of the non-zero part: linear interpolation between order statistics
            position = n_zero[None, :] + levels[:, None] * np.maximum(n_nonzero - 1, 0)[None, :]
            low = np.floor(position).astype(np.int64).clip(max=len(rows) - 1)
            high = np.minimum(low + 1, len(rows) - 1)
            weight = position - low
            values = (
                np.take_along_axis(fractions, low, axis=0) * (1 - weight)
                + np.take_along_axis(fractions, high, axis=0) * weight
            )
            values[:, n_nonzero == 0] = 0.0
            self.quantiles[b] = values.T
        # a bin without training showers (possible with tied energies) borrows its nearest filled neighbour
        counts = np.bincount(bins, minlength=n_bins)
        filled = np.flatnonzero(counts > 0)
        for empty in np.flatnonzero(counts == 0):
            source = filled[np.abs(filled - empty).argmin()]
            self.p_zero[empty], self.quantiles[empty] = self.p_zero[source], self.quantiles[source]

    # ------------------------------------------------------------------ sampling
    def sample(
        self, incident_energies: np.ndarray, seed: int | None = None, batch_size: int | None = None
    ) -> np.ndarray:
        if self.p_zero is None or self.quantiles is None:
            raise ConfigError("baseline-uncorrelated is not trained: call fit() or load() first")
        energies = np.asarray(incident_energies, dtype=np.float64).reshape(-1)
        if len(energies) and not (np.isfinite(energies).all() and (energies > 0).all()):
            raise ConfigError("incident energies must be finite and > 0 MeV")
        rng = np.random.default_rng(seed)
        n_quantiles = self.quantiles.shape[2]
        n_voxels = self.geometry.n_voxels
        offsets = np.arange(n_voxels) * n_quantiles
        output = np.empty((len(energies), n_voxels), dtype=np.float32)
        # bounded working memory (the uniform draws are float64); the output does not depend on it
        batch_size = max(1, min(int(batch_size or self.config["sample_batch_size"]), WORKING_BYTES // (8 * n_voxels)))
        for first in range(0, len(energies), batch_size):
            chunk = energies[first : first + batch_size]
            uniform = rng.random((len(chunk), n_voxels))
            bins = self._bins(np.log(chunk))
            fractions = np.zeros((len(chunk), n_voxels))
            for b in np.unique(bins):
                rows = np.flatnonzero(bins == b)
                p_zero = self.p_zero[b].astype(np.float64)
                u = uniform[rows]
                nonzero = u >= p_zero
                level = np.where(nonzero, (u - p_zero) / np.maximum(1.0 - p_zero, 1e-300), 0.0).clip(0.0, 1.0)
                position = level * (n_quantiles - 1)
                low = np.minimum(np.floor(position).astype(np.int64), n_quantiles - 2)
                weight = position - low
                table = self.quantiles[b].reshape(-1).astype(np.float64)
                values = table[offsets + low] * (1 - weight) + table[offsets + low + 1] * weight
                fractions[rows] = np.where(nonzero, values, 0.0)
            output[first : first + len(chunk)] = fractions * chunk[:, None]
        return output

    # ------------------------------------------------------------------ saving
    def save(self, directory: Path) -> None:
        if self.p_zero is None or self.quantiles is None or self.log_energies is None:
            raise ConfigError("baseline-uncorrelated is not trained: nothing to save")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_checkpoint(
            directory / TABLES_FILE,
            {
                "p_zero": torch.from_numpy(self.p_zero),
                "quantiles": torch.from_numpy(self.quantiles),
                "log_energies": torch.from_numpy(self.log_energies),
            },
        )
        write_generator_json(directory, self, state={"discrete": self.discrete})

    @classmethod
    def load(cls, directory: Path, device: str | None = None) -> "UncorrelatedVoxels":
        directory = Path(directory)
        data = read_generator_json(directory, cls)
        model = construct_from_json(cls, data, device=device)
        assert isinstance(model, UncorrelatedVoxels)
        tables = load_checkpoint(directory / TABLES_FILE, map_location="cpu")
        model.discrete = bool(data["state"]["discrete"])
        model.p_zero = tables["p_zero"].numpy()
        model.quantiles = tables["quantiles"].numpy()
        model.log_energies = tables["log_energies"].numpy()
        return model
