"""``caloman``: CaloMan -- density estimation on a learned manifold (Cresswell, Ross, Loaiza-Ganem,
Caterini, Reyes-Gonzalez, Letizia, arXiv 2211.15380), in its final three-step form (calo-man
``main.py --epl_model=flow --gae-model vae --de-model flow``; models.md sec. 4).

Training, as three stages of the torch base, each after the previous one:

1. ``epl`` -- a conditional spline flow for the layer energies given E_inc, on CaloFlow's u-space;
2. ``vae`` -- a Gaussian VAE on the per-layer-normalized showers (logit of them for datasets 2/3),
   label ``[log E_inc, log E_layer]`` concatenated into encoder and decoder, one decoder sigma;
   its validation loss is the L2 reconstruction error of the posterior means (CaloMan's early
   stopping metric), its training loss the negative ELBO;
3. ``flow`` -- a conditional neural spline flow on the VAE's encoder means given the label,
   trained once the VAE is (its inputs are the trained encoder's outputs).

Sampling: layer energies from the ``epl`` flow -> label -> latent from the ``flow`` -> decoder mean
-> voxel shares renormalized to the layer energies -> readout threshold.

The latent size is ``latent_dim`` (default ``"auto"``: measured, :mod:`calobench_caloman.dimension`);
the measurement is part of the preprocessing state and of :meth:`CaloMan.run_info`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from calobench.errors import ConfigError, PluginError
from calobench.generator.settings import TrainSettings
from calobench.generator.torch_base import TorchGenerator
from calobench.generator.training import Stage
from calobench.geometry import Geometry
from calobench.preprocessing import logit
from calobench.showers import Showers
from calobench_caloman import flows
from calobench_caloman.dimension import LatentChoice, choose_latent_dim, validate_request
from calobench_caloman.preprocessing import (
    ALPHA,
    FLOW_SCALINGS,
    PUBLISHED_SPACE,
    SHOWER_SPACES,
    Conventions,
    epl_context,
    epl_to_layers,
    label,
    layers_to_epl,
    logit_u,
    raw_label,
    scaling,
    showers_to_vae,
    u0_scale_for,
    vae_to_showers,
)
from calobench_caloman.presets import PRESETS
from calobench_caloman.vae import GaussianVAE

#: Geometries of the CaloChallenge (CaloMan's) and CaloGAN.
SUPPORTED_GEOMETRIES = ("ds1-photons", "ds1-pions", "ds2", "ds3", "calogan")
#: How often a non-finite generated shower is drawn again before sampling fails.
MAX_REDRAWS = 3
#: Rows encoded at once when the latent flow's training data are made.
ENCODE_BATCH = 4096
#: Showers the initial decoder widths are measured on.
STATISTICS_SHOWERS = 10000

log = logging.getLogger("calobench.caloman")


class LatentFlow(nn.Module):
    """The latent density estimator and the scaling of its inputs (``(z - shift) / scale``, from the
    encoder means of the training set, :func:`~calobench_caloman.preprocessing.scaling`), kept as
    buffers so that they travel with the weights."""

    def __init__(self, flow: nn.Module, features: int) -> None:
        super().__init__()
        self.flow = flow
        self.register_buffer("shift", torch.zeros(features))
        self.register_buffer("scale", torch.ones(features))

    def to_flow(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.shift) / self.scale

    def from_flow(self, values: torch.Tensor) -> torch.Tensor:
        return values * self.scale + self.shift


class CaloMan(TorchGenerator):
    """Layer-energy flow + Gaussian VAE + latent spline flow, latent size by measured intrinsic dimension."""

    name = "caloman"
    description = (
        "CaloMan: layer-energy flow, Gaussian VAE and a latent spline flow on its manifold; latent size = "
        "measured intrinsic dimension (2211.15380)"
    )
    presets = PRESETS
    published_name = "CaloMan"
    supported_geometries = SUPPORTED_GEOMETRIES
    untyped_config_keys = frozenset({"latent_dim"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conventions: Conventions | None = None
        self.latent: LatentChoice | None = None
        self._voxel_std: torch.Tensor | None = None
        self._fit_seed = 0
        validate_request(self.config["latent_dim"])
        space = self.config["shower_space"]
        if space is not None and space not in SHOWER_SPACES:
            raise ConfigError(f"shower_space must be null or one of {SHOWER_SPACES}, got {space!r}")
        for key, choices in (
            ("flow_scaling", FLOW_SCALINGS),
            ("decoder_sigma", ("single", "voxel")),
            ("decoder_output", ("mean", "sample")),
        ):
            if self.config[key] not in choices:
                raise ConfigError(f"{key} must be one of {choices}, got {self.config[key]!r}")

    @classmethod
    def check_geometry(cls, geometry: Geometry) -> None:
        if geometry.name not in SUPPORTED_GEOMETRIES:
            raise ConfigError(
                f"caloman does not support geometry {geometry.name!r}: its preprocessing constants (u-space "
                f"scale, shower space) are those of CaloMan's CaloChallenge data sets and CaloGAN; supported: "
                f"{', '.join(SUPPORTED_GEOMETRIES)}"
            )

    # ------------------------------------------------------------------ data
    def fit(self, train: Showers, valid: Showers | None = None, *, seed: int = 0, workdir: Path | None = None) -> None:
        self._fit_seed = int(seed)
        train = self.random_subset(train, self.config["max_train_showers"], seed, "train")
        valid = self.random_subset(valid, self.config["max_valid_showers"], seed, "valid")
        super().fit(train, valid, seed=seed, workdir=workdir)

    @property
    def layer_sizes(self) -> list[int]:
        return list(self.geometry.layer_sizes)

    # ------------------------------------------------------------------ preprocessing
    def fit_preprocessing(self, train: Showers) -> None:
        c = self.config
        incident = np.asarray(train.incident_energies, dtype=np.float64)
        layers = train.layer_energies()
        ratio = float(np.max(layers.sum(axis=1) / incident))
        scale = c["u0_scale"]
        if scale is None:
            scale = u0_scale_for(self.geometry.name, ratio)
        elif ratio >= float(scale):
            raise ConfigError(
                f"u0_scale={scale} must exceed the largest E_dep / E_inc of the training data, {ratio:.4g}"
            )
        threshold = c["threshold_mev"]
        if threshold is None:  # the data's readout threshold: just below its smallest non-zero voxel
            nonzero = train.energies[train.energies > 0]
            threshold = float(nonzero.min()) * (1.0 - 1e-6) if nonzero.size else 0.0
        incident_t, layers_t = torch.as_tensor(incident), torch.as_tensor(layers)
        raw = raw_label(incident_t, layers_t)
        conventions = Conventions(
            space=c["shower_space"] or PUBLISHED_SPACE[self.geometry.name],
            u0_scale=float(scale),
            threshold_mev=float(threshold),
            label_mean=raw.mean(dim=0).tolist(),
            label_std=raw.std(dim=0).clamp_min(1e-6).tolist(),
        )
        shift, scale = scaling(logit_u(layers_t, incident_t, conventions.u0_scale), c["flow_scaling"])
        conventions.epl_shift, conventions.epl_scale = shift.tolist(), scale.tolist()
        sample = self.random_subset(train, STATISTICS_SHOWERS, self._fit_seed, "statistics")
        assert sample is not None
        x, _ = showers_to_vae(
            torch.as_tensor(sample.energies, dtype=torch.float32), self.layer_sizes, conventions.space
        )
        conventions.shower_std = float(x.var(dim=0).mean().sqrt().clamp_min(1e-6))
        self._voxel_std = x.std(dim=0).clamp_min(1e-4 * conventions.shower_std)  # initial per-voxel widths
        self.conventions = conventions
        self.latent = choose_latent_dim(
            c["latent_dim"],
            train.energies,
            self.geometry.threshold,
            max_showers=c["id_showers"],
            seed=self._fit_seed,
        )
        log.info("caloman: %s", self.latent.describe())

    def preprocessing_state(self) -> dict[str, Any]:
        assert self.conventions is not None and self.latent is not None
        return {"conventions": self.conventions.to_dict(), "latent": self.latent.to_dict()}

    def load_preprocessing_state(self, state: dict[str, Any]) -> None:
        self.conventions = Conventions(**state["conventions"])
        self.latent = LatentChoice.from_dict(state["latent"])

    def run_info(self) -> dict[str, Any]:
        if self.latent is None:
            return {}
        return {"latent_dim": self.latent.latent_dim, "latent_choice": self.latent.to_dict()}

    # ------------------------------------------------------------------ architecture
    def build_modules(self) -> dict[str, nn.Module]:
        assert self.latent is not None
        c, n_layers, latent = self.config, self.geometry.n_layers, self.latent.latent_dim
        epl = flows.spline_flow(
            n_layers, 1, c["epl_layers"], c["epl_hidden"], c["epl_blocks"], c["epl_bins"], c["epl_tail_bound"]
        )
        assert self.conventions is not None
        input_scale = (
            1.0 / float(logit(torch.ones((), dtype=torch.float64), ALPHA)) if self.conventions.space == "logit" else 1.0
        )
        vae = GaussianVAE(
            self.geometry.n_voxels,
            1 + n_layers,
            latent,
            c["vae_hidden"],
            input_scale=input_scale,
            sigma_init=self._voxel_std
            if c["decoder_sigma"] == "voxel" and self._voxel_std is not None
            else self.conventions.shower_std,
            voxel_sigma=c["decoder_sigma"] == "voxel",
        )
        density = flows.spline_flow(
            latent,
            1 + n_layers,
            c["flow_layers"],
            c["flow_hidden"],
            c["flow_blocks"],
            c["flow_bins"],
            c["flow_tail_bound"],
        )
        return {"epl": epl, "vae": vae, "flow": LatentFlow(density, latent)}

    # ------------------------------------------------------------------ training
    def _epl_tensors(self, showers: Showers) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.conventions is not None
        incident = torch.as_tensor(np.asarray(showers.incident_energies, dtype=np.float64))
        layers = torch.as_tensor(showers.layer_energies())
        return (
            layers_to_epl(layers, incident, self.conventions).float(),
            epl_context(incident).float(),
        )

    def _vae_tensors(self, showers: Showers) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.conventions is not None
        incident = torch.as_tensor(np.asarray(showers.incident_energies, dtype=np.float64))
        voxels = torch.as_tensor(np.asarray(showers.energies, dtype=np.float32))
        x, _ = showers_to_vae(voxels, self.layer_sizes, self.conventions.space)
        layers = torch.as_tensor(showers.layer_energies())
        return x, label(incident, layers, self.conventions).float()

    def epl_loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """-mean log p(u | E_inc) of the layer-energy flow."""
        assert self.modules is not None
        return flows.nll(self.modules["epl"], *batch)

    def vae_loss(self, batch: tuple[torch.Tensor, ...]) -> "torch.Tensor | tuple[torch.Tensor, dict[str, Any]]":
        """Training: the negative ELBO. Validation (eval mode): the L2 reconstruction error of the
        posterior means, CaloMan's early-stopping metric (``l2_reconstruction_error``)."""
        assert self.modules is not None
        vae = self.modules["vae"]
        x, y = batch
        if not vae.training:
            return (vae.decode(vae.encode(x, y), y) - x).pow(2).sum(dim=1).mean()
        return vae.loss(x, y)

    def flow_loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """-mean log p(z | label) of the latent flow on the scaled encoder means."""
        assert self.modules is not None
        return flows.nll(self.modules["flow"].flow, *batch)

    @torch.no_grad()
    def _encode(self, tensors: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        assert self.modules is not None
        vae = self.modules["vae"].eval()
        x, y = tensors
        parts = [
            vae.encode(x[i : i + ENCODE_BATCH].to(self.device), y[i : i + ENCODE_BATCH].to(self.device)).cpu()
            for i in range(0, len(x), ENCODE_BATCH)
        ]
        return torch.cat(parts)

    def stages(self, train: Showers, valid: Showers | None) -> Iterable[Stage]:
        assert self.modules is not None
        has_valid = valid is not None and len(valid) > 0
        c = self.config
        yield Stage(
            "epl",
            {"epl": self.modules["epl"]},
            self.epl_loss,
            self._epl_tensors(train),
            self._epl_tensors(valid) if has_valid else None,
            TrainSettings.from_config(c, "epl_"),
        )
        vae_train = self._vae_tensors(train)
        vae_valid = self._vae_tensors(valid) if has_valid else None
        yield Stage(
            "vae",
            {"vae": self.modules["vae"]},
            self.vae_loss,
            vae_train,
            vae_valid,
            TrainSettings.from_config(c, "vae_"),
        )
        # the latent flow's data: the trained encoder's means, scaled into the spline interval
        latent_train = self._encode(vae_train)
        shift, scale = scaling(latent_train, c["flow_scaling"])
        density = self.modules["flow"]
        density.shift.copy_(shift)
        density.scale.copy_(scale)
        flow_valid = None if vae_valid is None else ((self._encode(vae_valid) - shift) / scale, vae_valid[1])
        yield Stage(
            "flow",
            {"flow": density},
            self.flow_loss,
            ((latent_train - shift) / scale, vae_train[1]),
            flow_valid,
            TrainSettings.from_config(c, "flow_"),
        )

    # ------------------------------------------------------------------ sampling
    def sample_batch(self, incident_energies: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        showers = self._generate(incident_energies, generator)
        bad = ~torch.isfinite(showers).all(dim=1)
        for _ in range(MAX_REDRAWS):
            if not bool(bad.any()):
                break
            log.warning("caloman: %d of %d showers were not finite; drawing them again", int(bad.sum()), len(showers))
            showers[bad] = self._generate(incident_energies[bad], generator)
            bad = ~torch.isfinite(showers).all(dim=1)
        if bool(bad.any()):
            raise PluginError(f"caloman: {int(bad.sum())} showers stayed non-finite after {MAX_REDRAWS} redraws")
        return showers

    def _generate(self, incident_energies: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Layer energies -> latent -> decoder mean -> voxels (MeV)."""
        modules = self._require_modules()
        assert self.conventions is not None
        conventions = self.conventions
        energies = incident_energies.to(torch.float64)
        epl_values = flows.sample(modules["epl"], epl_context(incident_energies), generator)
        layers = epl_to_layers(epl_values.to(torch.float64), energies, conventions)
        y = label(energies, layers, conventions).to(torch.float32)
        density = modules["flow"]
        z = density.from_flow(flows.sample(density.flow, y, generator))
        vae = modules["vae"]
        outputs = vae.sample(z, y, generator) if self.config["decoder_output"] == "sample" else vae.decode(z, y)
        return vae_to_showers(outputs, layers.to(outputs.dtype), self.layer_sizes, conventions)
