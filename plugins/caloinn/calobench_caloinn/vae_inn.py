"""``caloinn-vae``: CaloVAE+INN -- a conditional VAE compresses the showers, a small conditional INN
learns the distribution of its encodings (arXiv 2312.09290; heidelberg-hepml/CaloINN@342e78f, branch
``vae_calo_challenge_mark_2``: src/trainer.py ``VAETrainer``, ``KVAETrainer``, ``ECAETrainer``).

Stage ``vae``: the VAE (vae.py: an MLP VAE on DS1, the Kernel VAE on DS2 / DS3) on the standardized
``logit([0.9 x, u / 1.15])`` with ``logit(E_inc / (1.15 max))``, its decoder conditioned on
``logit(u / 1.15)`` and the same energy logit; loss :func:`~calobench_caloinn.vae.vae_loss`.
Stage ``inn``: a spline-coupling INN (calobench.nn.coupling; ReLU subnets, no ActNorm) on the
standardized ``[mu, logvar, logit(0.9 u)]`` of every training shower, given ``ln(E_inc / 100 GeV)``.
Both stages end with their last epoch's weights. Generation: INN -> (mu, logvar, u) -> layer
energies from the u's -> ``z = mu + sigma eps`` -> decoder -> sigmoid -> every layer scaled to its
energy -> internal threshold -> readout threshold.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from calobench.generator.settings import TrainSettings
from calobench.generator.training import Stage
from calobench.nn.coupling import coupling_flow, sample_flow
from calobench.nn.gaussian import reparameterize
from calobench.preprocessing import apply_threshold, u_to_energies
from calobench.showers import Showers
from calobench_caloinn.common import CaloINNGenerator, hidden_widths
from calobench_caloinn.preprocessing import (
    SHARE_SCALE,
    VAE_U0_SCALE,
    decoded_voxels,
    decoder_condition,
    encoder_features,
    energy_logit,
    inn_energy_condition,
    latent_u_logits,
    loss_shares,
    u_from_latent_logits,
    vae_shares_and_u,
)
from calobench_caloinn.presets import METHOD_VERSION, VAE_METHOD, VAE_PRESETS, VAE_PUBLISHED
from calobench_caloinn.vae import MLPVAE, KernelVAE, smearing_matrix, vae_loss

SUPPORTED_GEOMETRIES = ("ds1-photons", "ds1-pions", "calogan", "ds2", "ds3")
#: Showers per encoder pass when the INN's training data are made.
ENCODE_BATCH = 4096
#: Largest log-variance used when sampling (exp(10 / 2) = 150 latent widths; a guard).
MAX_LOGVAR = 10.0


def _standardization(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature (mean, std) of (N, F) values, a std of 0 replaced by 1 (``FixedLinearTransform``
    with ``1 / std``, which the published code would make infinite for a constant feature)."""
    values = values.double()
    std = values.std(dim=0) if len(values) > 1 else torch.zeros(values.shape[1], dtype=values.dtype)
    return values.mean(dim=0).float(), torch.where(std > 0, std, torch.ones_like(std)).float()


class CaloVAEINN(CaloINNGenerator):
    """CaloVAE+INN: a conditional VAE with a conditional INN on its latent encodings."""

    name = "caloinn-vae"
    description = "CaloVAE+INN: conditional (Kernel) VAE + spline-coupling INN on its latent encodings (2312.09290)"
    presets = VAE_PRESETS
    published = VAE_PUBLISHED
    method = VAE_METHOD
    published_name = "CaloVAE+INN"
    supported_geometries = SUPPORTED_GEOMETRIES
    unsupported_reason_text = "It needs a geometry with known layer grids for its smearing kernel."

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.statistics: dict[str, torch.Tensor] = {}
        self._smearing: torch.Tensor | None = None
        self._device_statistics: dict[str, torch.Tensor] = {}

    @classmethod
    def check_saved_run(cls, directory: Path) -> dict[str, Any]:
        """Runs saved before method_version 2 had another VAE (LeakyReLU MLPs on other inputs, another
        loss): they are refused with what to do."""
        data = super().check_saved_run(directory)
        if data.get("config", {}).get("method_version") != METHOD_VERSION:
            raise cls.legacy_run_error(cls.name, directory)
        return data

    # ------------------------------------------------------------------ configuration
    @property
    def alpha(self) -> float:
        return float(self.config["vae_alpha"])

    @property
    def kernel(self) -> bool:
        return self.config["kernel_size"] is not None

    def u0_scale_for(self, train: Showers) -> float:
        """2: the cards halve every voxel (``x = x / 2``), so ``u_0 = E_dep / (2 E_inc)``."""
        return VAE_U0_SCALE

    def event_mask(self, showers: Showers) -> np.ndarray:
        """The cards' training cuts (``data_util.preprocess``): 0 < E_dep / 2 < E_inc."""
        deposited = showers.total_energy()
        return (deposited > 0) & (deposited < VAE_U0_SCALE * np.asarray(showers.incident_energies, dtype=np.float64))

    # ------------------------------------------------------------------ preprocessing
    def _prepared(self, showers: Showers) -> tuple[torch.Tensor, ...]:
        """(layer shares (N, V), u (N, n_layers), layer energies (N, n_layers) MeV, E_inc (N,) MeV), float32."""
        incident, voxels = self.shower_tensors(showers)
        with torch.no_grad():
            shares, u, layers = vae_shares_and_u(voxels.double(), incident.double(), self.layer_sizes)
        return shares.float(), u.float(), layers.float(), incident.float()

    def fit_preprocessing(self, train: Showers) -> None:
        """u0 scale, threshold, the standardization of the encoder's features and the largest E_inc."""
        self.fit_constants(train)
        shares, u, _, incident = self._prepared(train)
        mean, std = _standardization(encoder_features(shares.double(), u.double(), self.alpha))
        self.statistics = {
            "feature_mean": mean,
            "feature_std": std,
            "energy_max": torch.tensor(float(incident.max())),
        }
        self._device_statistics = {}

    def preprocessing_state(self) -> dict[str, Any]:
        return {**super().preprocessing_state(), "statistics": dict(self.statistics)}

    def load_preprocessing_state(self, state: dict[str, Any]) -> None:
        super().load_preprocessing_state(state)
        self.statistics = {
            key: torch.as_tensor(value, dtype=torch.float32) for key, value in state["statistics"].items()
        }
        self._device_statistics = {}

    def _stat(self, key: str) -> torch.Tensor:
        if key not in self._device_statistics:
            self._device_statistics[key] = self.statistics[key].to(self.device)
        return self._device_statistics[key]

    @property
    def energy_max(self) -> float:
        return float(self.statistics["energy_max"])

    def _encoder_inputs(
        self, shares: torch.Tensor, u: torch.Tensor, incident: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(standardized voxel logits (B, V), condition [standardized u logits, energy logit] (B, n + 1))."""
        features = (encoder_features(shares, u, self.alpha) - self._stat("feature_mean")) / self._stat("feature_std")
        n = self.geometry.n_voxels
        return features[:, :n], torch.cat([features[:, n:], energy_logit(incident, self.energy_max, self.alpha)], 1)

    def _decode_voxels(
        self, z: torch.Tensor, u: torch.Tensor, layer_energies: torch.Tensor, incident: torch.Tensor
    ) -> torch.Tensor:
        """Decoder -> de-standardized logits -> voxels in MeV at the given layer energies."""
        assert self.modules is not None
        n = self.geometry.n_voxels
        logits = self.modules["vae"].decode(z, decoder_condition(u, incident, self.energy_max, self.alpha))
        logits = logits * self._stat("feature_std")[:n] + self._stat("feature_mean")[:n]
        return decoded_voxels(
            logits,
            layer_energies,
            self.layer_sizes,
            alpha=self.alpha,
            internal_threshold_mev=float(self.config["internal_threshold_mev"]),
        )

    @property
    def smearing(self) -> torch.Tensor:
        """The (transposed) smearing matrix on the device (built from the geometry, not saved)."""
        if self._smearing is None:
            c = self.config
            self._smearing = smearing_matrix(self.geometry, float(c["smear_self"]), float(c["smear_share"])).to(
                self.device
            )
        return self._smearing

    # ------------------------------------------------------------------ architecture
    @property
    def inn_features(self) -> int:
        """Latent INN dimension: mu and logvar of every latent, one u per layer."""
        return 2 * int(self.config["latent"]) + self.geometry.n_layers

    def build_modules(self) -> dict[str, nn.Module]:
        c = self.config
        condition = self.geometry.n_layers + 1
        vae: nn.Module
        if self.kernel:
            vae = KernelVAE(
                self.layer_sizes,
                condition,
                [int(h) for h in c["vae_hidden"]],
                int(c["latent"]),
                kernel_size=int(c["kernel_size"]),
                kernel_stride=int(c["kernel_stride"]),
                kernel_hidden=[int(h) for h in c["kernel_hidden"]],
                kernel_latent=int(c["kernel_latent"]),
            )
        else:
            vae = MLPVAE(self.geometry.n_voxels, condition, [int(h) for h in c["vae_hidden"]], int(c["latent"]))
        inn = coupling_flow(
            self.inn_features,
            1,
            int(c["inn_blocks"]),
            hidden_widths(c["inn_hidden"], c["inn_subnet_layers"]),
            num_bins=int(c["inn_bins"]),
            tail_bound=float(c["inn_tail_bound"]),
            spline="rational_quadratic",
            activation="relu",
            actnorm=False,
            identity_init=False,
        )
        return {"vae": vae, "inn": inn}

    # ------------------------------------------------------------------ training
    def vae_stage_loss(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        """The published reconstruction loss (vae.py) of one batch."""
        assert self.modules is not None
        shares, u, layer_energies, incident = batch
        x, cond = self._encoder_inputs(shares, u, incident)
        mu, logvar = self.modules["vae"].encode(x, cond)
        voxels_hat = self._decode_voxels(reparameterize(mu, logvar), u, layer_energies, incident)
        c = self.config
        return vae_loss(
            loss_shares(voxels_hat, self.layer_sizes),
            SHARE_SCALE * shares,
            mu,
            logvar,
            smearing_t=self.smearing,
            alpha=self.alpha,
            gamma=float(c["gamma"]),
            beta=float(c["beta"]),
        )

    @torch.no_grad()
    def latent_values(self, shares: torch.Tensor, u: torch.Tensor, incident: torch.Tensor) -> torch.Tensor:
        """(N, 2 L + n_layers) ``[mu, logvar, logit(0.9 u)]`` of the trained encoder, not standardized."""
        assert self.modules is not None
        vae = self.modules["vae"]
        vae.eval()
        encodings = []
        for first in range(0, len(shares), ENCODE_BATCH):
            part = slice(first, first + ENCODE_BATCH)
            x, cond = self._encoder_inputs(
                shares[part].to(self.device), u[part].to(self.device), incident[part].to(self.device)
            )
            encodings.append(torch.cat(vae.encode(x, cond), dim=1).cpu())
        return torch.cat([torch.cat(encodings), latent_u_logits(u.double(), self.alpha).float()], dim=1)

    def inn_tensors(self, shares: torch.Tensor, u: torch.Tensor, incident: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The latent INN's (standardized values, context ``ln(E_inc / 100 GeV)``)."""
        values = (self.latent_values(shares, u, incident) - self.statistics["latent_mean"]) / self.statistics[
            "latent_std"
        ]
        return values, inn_energy_condition(incident.double()).float()

    def inn_stage_loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """-mean log p(standardized [mu, logvar, logit(0.9 u)] | ln(E_inc / 100 GeV))."""
        assert self.modules is not None
        values, context = batch
        return -self.modules["inn"].log_prob(values, context).mean()

    def stages(self, train: Showers, valid: Showers | None) -> Iterable[Stage]:
        assert self.modules is not None
        c = self.config
        shares, u, layers, incident = self._prepared(train)
        valid_tensors = None if valid is None or len(valid) == 0 else self._prepared(valid)
        yield Stage(
            "vae",
            {"vae": self.modules["vae"]},
            self.vae_stage_loss,
            (shares, u, layers, incident),
            valid_tensors,
            TrainSettings.from_config(c, "vae_"),
            keep="last",
        )
        mean, std = _standardization(self.latent_values(shares, u, incident))
        self.statistics["latent_mean"], self.statistics["latent_std"] = mean, std
        self._device_statistics = {}
        yield Stage(
            "inn",
            {"inn": self.modules["inn"]},
            self.inn_stage_loss,
            self.inn_tensors(shares, u, incident),
            None if valid_tensors is None else self.inn_tensors(valid_tensors[0], valid_tensors[1], valid_tensors[3]),
            TrainSettings.from_config(c, "inn_"),
            keep="last",
            eps=float(c["inn_adam_eps"]),
        )

    # ------------------------------------------------------------------ sampling
    def sample_batch(self, incident_energies: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        modules = self._require_modules()
        assert self.u0_scale is not None and self.threshold_mev is not None
        latent = int(self.config["latent"])

        def draw(energies: torch.Tensor) -> torch.Tensor:
            values = sample_flow(modules["inn"], inn_energy_condition(energies), generator)
            values = values * self._stat("latent_std") + self._stat("latent_mean")
            mu, logvar, u_values = values.split([latent, latent, self.geometry.n_layers], dim=1)
            u = u_from_latent_logits(u_values, self.alpha)
            layer_energies = u_to_energies(u, energies.to(u.dtype), self.u0_scale)
            z = reparameterize(mu, logvar.clamp(max=MAX_LOGVAR), generator)
            voxels = self._decode_voxels(z, u, layer_energies, energies)
            return apply_threshold(voxels, self.threshold_mev)

        return self.redraw_non_finite(draw, incident_energies)
