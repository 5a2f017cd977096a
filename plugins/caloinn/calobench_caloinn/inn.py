"""``caloinn``: CaloINN's conditional INN on all voxels plus the layer-energy fractions
(Ernst, Favaro, Krause, Plehn, Shih, arXiv 2312.09290; shared/reference/models.md sec. 2.1-2.5).

One conditional coupling flow (:func:`calobench.nn.coupling.coupling_flow`: per block ActNorm ->
spline coupling -> fixed random permutation; rational-quadratic splines, or cubic ones as on the DS2
card) on ``log(x + alpha)`` of the noisy layer shares and u's, conditioned on ``log2(E_inc / GeV)``,
trained by maximum likelihood. Sampling is one pass through the blocks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from calobench.errors import ConfigError
from calobench.nn.coupling import coupling_flow, sample_flow
from calobench.showers import Showers
from calobench_caloinn.common import CaloINNGenerator, hidden_widths
from calobench_caloinn.preprocessing import U_TRANSFORMS, inn_inputs, inn_to_voxels, log2_energy, shares_and_u
from calobench_caloinn.presets import INN_METHOD, INN_PRESETS, INN_PUBLISHED, METHOD_VERSION

#: method_version 1: runs saved before the published post-processing (loaded and sampled as they were).
LEGACY_VERSION = 1

#: Geometries the INN was published on, and CaloGAN (the older INN cards, models.md sec. 2.4).
SUPPORTED_GEOMETRIES = ("ds1-photons", "ds1-pions", "calogan", "ds2")


class CaloINN(CaloINNGenerator):
    """CaloINN: a conditional spline-coupling INN over every voxel and the layer-energy fractions."""

    name = "caloinn"
    description = "CaloINN: conditional spline-coupling INN on layer shares + layer-energy fractions (2312.09290)"
    presets = INN_PRESETS
    published = INN_PUBLISHED
    method = INN_METHOD
    method_versions = (LEGACY_VERSION, METHOD_VERSION)
    published_name = "CaloINN"
    supported_geometries = SUPPORTED_GEOMETRIES
    unsupported_reason_text = (
        "The INN transforms every voxel in every coupling block (its subnets grow with the square of the "
        "voxel count); for dataset 3 (40500 voxels) the paper compresses first: use caloinn-vae."
    )

    @property
    def features(self) -> int:
        """INN dimension: voxels + one u per layer."""
        return self.geometry.n_voxels + self.geometry.n_layers

    # ------------------------------------------------------------------ architecture
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.config["u_transform"] not in U_TRANSFORMS:
            raise ConfigError(f"u_transform must be one of {U_TRANSFORMS}, got {self.config['u_transform']!r}")
        self.condition_mean = 0.0
        self.condition_std = 1.0

    @property
    def legacy(self) -> bool:
        """A run saved before method_version 2 (its post-processing is kept, :func:`inn_to_voxels`)."""
        return int(self.config["method_version"]) == LEGACY_VERSION

    @property
    def published_u(self) -> bool:
        """The u's as published: through the log, ``u_0 = E_dep / E_inc`` not clipped."""
        return self.config["u_transform"] == "log" and not self.legacy

    def u0_scale_for(self, train: Showers) -> float:
        """1 as published (``u_0 = E_dep / E_inc`` goes through the log and may exceed 1); for the
        ``logit`` option, whose u's must stay in [0, 1], 1.1 x the largest E_dep / E_inc when above 1."""
        if self.published_u:
            return 1.0
        ratio = float(np.max(train.total_energy() / np.asarray(train.incident_energies, dtype=np.float64)))
        return 1.0 if ratio < 1.0 else 1.1 * ratio

    def event_mask(self, showers: Showers) -> np.ndarray:
        """The published training-event cuts (``data_util.preprocess``): ``u_0 = E_dep / E_inc`` below
        ``u0_max`` (7; pions 3.5) and every voxel below ``voxel_max_mev`` (0: none; pions 600 GeV)."""
        incident = np.asarray(showers.incident_energies, dtype=np.float64)
        keep = showers.total_energy() / incident < float(self.config["u0_max"])
        voxel_max = float(self.config["voxel_max_mev"])
        if voxel_max > 0:
            keep &= np.asarray(showers.energies).max(axis=1) < voxel_max
        return keep

    def fit_preprocessing(self, train: Showers) -> None:
        """u0 scale, threshold, and -- only with ``standardize_condition`` -- the training mean and
        width of the condition ``log2(E_inc / GeV)``; by default the condition is fed as published."""
        self.fit_constants(train)
        condition = log2_energy(torch.as_tensor(np.asarray(train.incident_energies, dtype=np.float64)))
        self.condition_mean, self.condition_std = self.condition_scale(condition)

    def preprocessing_state(self) -> dict[str, Any]:
        return {
            **super().preprocessing_state(),
            "condition": [self.condition_mean, self.condition_std],
            "method_version": int(self.config["method_version"]),
        }

    def load_preprocessing_state(self, state: dict[str, Any]) -> None:
        """Restore the state; a run saved before method_version 2 (no ``method_version`` in its state)
        is marked as such and keeps its post-processing."""
        super().load_preprocessing_state(state)
        self.condition_mean, self.condition_std = (float(v) for v in state["condition"])
        self.config["method_version"] = int(state.get("method_version", LEGACY_VERSION))

    def condition(self, incident_mev: torch.Tensor) -> torch.Tensor:
        """The flow's context: ``log2(E_inc / GeV)`` (standardized with the stored training mean and
        width for ``standardize_condition`` and for runs made before it existed)."""
        return (log2_energy(incident_mev) - self.condition_mean) / self.condition_std

    def build_modules(self) -> dict[str, nn.Module]:
        c = self.config
        flow = coupling_flow(
            self.features,
            1,
            int(c["blocks"]),
            hidden_widths(c["hidden"], c["subnet_layers"]),
            num_bins=int(c["bins"]),
            tail_bound=float(c["tail_bound"]),
            spline=str(c["spline"]),
            activation="leaky_relu",
            dropout=float(c["dropout"]),
            identity_init=self.legacy,  # CaloINN's start (derivatives 0.69); runs before version 2: the identity
        )
        return {"inn": flow}

    # ------------------------------------------------------------------ training
    def training_tensors(self, showers: Showers) -> tuple[torch.Tensor, ...]:
        """(layer shares and u's (N, V + n_layers), condition (N, 1)): the noise is added per batch."""
        assert self.u0_scale is not None
        incident, voxels = self.shower_tensors(showers)
        with torch.no_grad():
            shares, u = shares_and_u(
                voxels.double(),
                incident.double(),
                self.layer_sizes,
                self.u0_scale,
                self.empty_tail,
                clip_total=not self.published_u,
            )
        return torch.cat([shares, u], dim=1).float(), self.condition(incident.double()).float()

    def main_stage_options(self) -> dict[str, Any]:
        """AdamW with the cards' eps 1e-10, ending with the last epoch's weights (the published
        trainer saves and samples the final model; its validation loss is only printed)."""
        return {"keep": "last", "eps": float(self.config["adam_eps"])}

    def loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """-mean log p(log(x + U(0, b) + alpha) | log2 E_inc): fresh noise in every batch."""
        assert self.modules is not None
        shares_u, condition = batch
        c = self.config
        inputs = inn_inputs(
            shares_u,
            self.geometry.n_voxels,
            float(c["noise_width"]),
            float(c["alpha"]),
            str(c["u_transform"]),
            float(c["u_noise"]),
        )
        return -self.modules["inn"].log_prob(inputs, condition).mean()

    # ------------------------------------------------------------------ sampling
    def sample_batch(self, incident_energies: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        modules = self._require_modules()
        assert self.u0_scale is not None and self.threshold_mev is not None
        c = self.config

        def draw(energies: torch.Tensor) -> torch.Tensor:
            values = sample_flow(modules["inn"], self.condition(energies), generator)
            return inn_to_voxels(
                values,
                energies,
                self.layer_sizes,
                noise_width=float(c["noise_width"]),
                alpha=float(c["alpha"]),
                u0_scale=self.u0_scale,
                threshold_mev=self.threshold_mev,
                u_transform=str(c["u_transform"]),
                u_noise=float(c["u_noise"]),
                legacy=self.legacy,
            )

        return self.redraw_non_finite(draw, incident_energies)
