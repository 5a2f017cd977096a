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
(energies outside the training range go to the end bins). The tables and the quantile function are
:class:`calobench.marginals.VoxelMarginals`.
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
from calobench.marginals import VoxelMarginals
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
        self.marginals: VoxelMarginals | None = None

    def _require_marginals(self) -> VoxelMarginals:
        if self.marginals is None:
            raise ConfigError("baseline-uncorrelated is not trained: call fit() or load() first")
        return self.marginals

    # ------------------------------------------------------------------ training
    def fit(self, train: Showers, valid: Showers | None = None, *, seed: int = 0, workdir: Path | None = None) -> None:
        """Tabulate the per-bin, per-voxel distributions (deterministic; ``seed`` and ``workdir`` unused)."""
        if len(train) == 0:
            raise ShowerFileError("baseline-uncorrelated needs at least one training shower")
        train.validate(source="training showers")
        self.marginals = VoxelMarginals.fit_energies(
            torch.from_numpy(np.asarray(train.incident_energies, dtype=np.float64)),
            torch.from_numpy(np.asarray(train.energies)),
            n_quantiles=self.config["n_quantiles"],
            n_energy_bins=self.config["n_energy_bins"],
            max_discrete=self.config["max_discrete_energies"],
        )

    # ------------------------------------------------------------------ sampling
    def sample(
        self, incident_energies: np.ndarray, seed: int | None = None, batch_size: int | None = None
    ) -> np.ndarray:
        """Inverse-transform sampling of every voxel from one uniform draw each (seeded numpy stream)."""
        marginals = self._require_marginals()
        energies = np.asarray(incident_energies, dtype=np.float64).reshape(-1)
        if len(energies) and not (np.isfinite(energies).all() and (energies > 0).all()):
            raise ConfigError("incident energies must be finite and > 0 MeV")
        rng = np.random.default_rng(seed)
        n_voxels = self.geometry.n_voxels
        output = np.empty((len(energies), n_voxels), dtype=np.float32)
        # bounded working memory (the uniform draws are float64); the output does not depend on it
        batch_size = max(1, min(int(batch_size or self.config["sample_batch_size"]), WORKING_BYTES // (8 * n_voxels)))
        for first in range(0, len(energies), batch_size):
            chunk = energies[first : first + batch_size]
            uniform = torch.from_numpy(rng.random((len(chunk), n_voxels)))
            fractions = marginals.inverse_cdf(uniform, torch.from_numpy(chunk)).numpy()
            output[first : first + len(chunk)] = fractions * chunk[:, None]
        return output

    # ------------------------------------------------------------------ saving
    def save(self, directory: Path) -> None:
        if self.marginals is None:
            raise ConfigError("baseline-uncorrelated is not trained: nothing to save")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = self.marginals.state()
        discrete = state.pop("discrete")
        save_checkpoint(directory / TABLES_FILE, state)
        write_generator_json(directory, self, state={"discrete": discrete})

    @classmethod
    def load(cls, directory: Path, device: str | None = None) -> "UncorrelatedVoxels":
        directory = Path(directory)
        data = read_generator_json(directory, cls)
        model = construct_from_json(cls, data, device=device)
        assert isinstance(model, UncorrelatedVoxels)
        tables = load_checkpoint(directory / TABLES_FILE, map_location="cpu")
        model.marginals = VoxelMarginals.from_state({**tables, "discrete": bool(data["state"]["discrete"])})
        return model
