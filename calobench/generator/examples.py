"""A minimal, complete :class:`~calobench.generator.torch_base.TorchGenerator`, for plugin authors and tests.

:class:`TinyGaussian` models every voxel as a Gaussian in ``y = log1p(100 * voxel / E_inc)`` (clipped
at zero, so exact zeros appear) whose mean and width come from a small MLP of log E_inc. It is not a
good shower model (voxels are independent given E_inc) -- it is the smallest model that exercises
every hook of the torch base: preprocessing state with a JSON value and an array, modules built from
the config, the default single training stage (``training_tensors`` + ``loss`` with a logged extra),
dropout (so training uses torch's global RNG) and ``sample_batch`` with a ``torch.Generator``.
It is not registered as a generator.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from calobench.generator.settings import with_training_defaults
from calobench.generator.torch_base import TorchGenerator
from calobench.showers import Showers

#: y = log1p(SCALE * voxel / E_inc)
SCALE = 100.0


def _preset(hidden: int, epochs: int, batch_size: int) -> dict[str, Any]:
    return with_training_defaults(
        {"hidden": hidden, "dropout": 0.1, "epochs": epochs, "batch_size": batch_size, "lr": 1e-2}
    )


class TinyGaussian(TorchGenerator):
    """Independent per-voxel Gaussians in log1p space, conditioned on log E_inc by an MLP."""

    name = "example-tiny-gaussian"
    description = "per-voxel Gaussians from an MLP of log E_inc (TorchGenerator example, not a real model)"
    presets = {"smoke": _preset(8, 4, 16), "quick": _preset(32, 20, 128), "paper": _preset(64, 50, 256)}

    def fit_preprocessing(self, train: Showers) -> None:
        self.log_e_mean = float(np.log(train.incident_energies).mean())
        self.y_scale = np.maximum(self._y(train.energies, train.incident_energies).std(axis=0), 1e-3)

    def preprocessing_state(self) -> dict[str, Any]:
        return {"log_e_mean": self.log_e_mean, "y_scale": self.y_scale}

    def load_preprocessing_state(self, state: dict[str, Any]) -> None:
        self.log_e_mean = float(state["log_e_mean"])
        self.y_scale = np.asarray(state["y_scale"])

    @staticmethod
    def _y(energies: np.ndarray, incident: np.ndarray) -> np.ndarray:
        return np.log1p(SCALE * np.asarray(energies, dtype=np.float64) / np.asarray(incident)[:, None])

    def build_modules(self) -> dict[str, nn.Module]:
        n_voxels, hidden = self.geometry.n_voxels, self.config["hidden"]
        return {
            "net": nn.Sequential(
                nn.Linear(1, hidden), nn.ReLU(), nn.Dropout(self.config["dropout"]), nn.Linear(hidden, 2 * n_voxels)
            )
        }

    def _parameters(self, incident: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        context = (torch.log(incident.float()) - self.log_e_mean).unsqueeze(1)
        mean, log_std = self._require_modules()["net"](context).chunk(2, dim=1)
        return mean, log_std

    def training_tensors(self, showers: Showers) -> tuple[torch.Tensor, ...]:
        y = self._y(showers.energies, showers.incident_energies) / self.y_scale
        return (
            torch.as_tensor(showers.incident_energies, dtype=torch.float32),
            torch.as_tensor(y, dtype=torch.float32),
        )

    def loss(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        incident, y = batch
        mean, log_std = self._parameters(incident)
        nll = (0.5 * ((y - mean) * torch.exp(-log_std)) ** 2 + log_std).mean()
        return nll, {"mean_width": float(log_std.detach().exp().mean())}

    def sample_batch(self, incident_energies: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        mean, log_std = self._parameters(incident_energies)
        noise = torch.randn(mean.shape, generator=generator, device=generator.device)
        scale = torch.as_tensor(self.y_scale, dtype=mean.dtype, device=mean.device)
        y = ((mean + log_std.exp() * noise) * scale).clamp(min=0.0, max=30.0)
        return torch.expm1(y) * incident_energies[:, None] / SCALE
