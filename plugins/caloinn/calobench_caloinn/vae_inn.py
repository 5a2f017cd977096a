"""``caloinn-vae``: CaloVAE+INN -- a conditional VAE compresses the layer shares, a small conditional
INN learns the distribution of its encodings (arXiv 2312.09290; models.md sec. 2.6).

Stage ``vae``: the VAE (vae.py) on standardized share logits, conditioned on ``log2(E_inc / GeV)``
and ``logit(0.9 u)``. Stage ``inn``: a spline-coupling INN (calobench.nn.coupling) on the encoder's
``[mu, logvar]`` and ``logit(0.9 u)`` of every training shower, conditioned on ``log2(E_inc / GeV)``
(standardized).
Generation: INN -> (mu, logvar, u) -> z = mu + sigma eps -> decoder -> sigmoid -> every layer
renormalized to its energy from the u's -> threshold.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from calobench.errors import ConfigError
from calobench.generator.settings import TrainSettings
from calobench.generator.training import Stage
from calobench.nn.coupling import coupling_flow, sample_flow
from calobench.nn.gaussian import reparameterize
from calobench.showers import Showers
from calobench_caloinn.common import CaloINNGenerator, hidden_widths
from calobench_caloinn.preprocessing import (
    U_SCALE,
    dequantize_u,
    log2_energy,
    requantize_u,
    share_logits,
    shares_and_u,
    shares_from_logits,
    u_from_logits,
    u_logits,
    vae_to_voxels,
)
from calobench_caloinn.presets import VAE_PRESETS, VAE_PUBLISHED
from calobench_caloinn.vae import ConditionalVAE, ResidualQuantiles, smearing_matrix, vae_loss

SUPPORTED_GEOMETRIES = ("ds1-photons", "ds1-pions", "calogan", "ds2", "ds3")
#: Showers per encoder pass when the INN's training data are made.
ENCODE_BATCH = 4096
#: Largest log-variance used when sampling (exp(10 / 2) = 150 latent widths).
MAX_LOGVAR = 10.0
#: Decoder-noise options: ``none`` decodes the mean (as published), ``empirical`` adds per-voxel
#: residuals drawn from their training distribution at the shower's energy (vae.ResidualQuantiles).
DECODER_NOISE = ("none", "empirical")


class CaloVAEINN(CaloINNGenerator):
    """CaloVAE+INN: a conditional VAE with a conditional INN on its latent encodings."""

    name = "caloinn-vae"
    description = "CaloVAE+INN: conditional VAE + spline-coupling INN on its latent means and variances (2312.09290)"
    presets = VAE_PRESETS
    published = VAE_PUBLISHED
    published_name = "CaloVAE+INN"
    supported_geometries = SUPPORTED_GEOMETRIES
    unsupported_reason_text = "It needs a geometry with known layer grids for its smearing kernel."

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.config["decoder_noise"] not in DECODER_NOISE:
            raise ConfigError(f"decoder_noise must be one of {DECODER_NOISE}, got {self.config['decoder_noise']!r}")
        self.statistics: dict[str, torch.Tensor] = {}
        self._smearing: torch.Tensor | None = None
        self._device_statistics: dict[str, torch.Tensor] = {}

    @property
    def u_scale(self) -> float:
        """The factor in ``logit(scale u)``: the config's ``u_scale`` (0.9 as published) when training,
        the stored one for a loaded run (0.9 for runs saved before it was stored)."""
        stored = self.statistics.get("u_scale")
        if stored is not None:
            return float(stored)
        return U_SCALE if self.statistics else float(self.config["u_scale"])

    # ------------------------------------------------------------------ preprocessing
    def _prepared(self, showers: Showers) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(layer shares (N, V), raw condition [log2 E_inc/GeV, logit(0.9 u)] (N, 1 + n_layers),
        u (N, n_layers)), float32 CPU."""
        assert self.u0_scale is not None
        incident, voxels = self.shower_tensors(showers)
        with torch.no_grad():
            shares, u = shares_and_u(
                voxels.double(), incident.double(), self.layer_sizes, self.u0_scale, self.empty_tail
            )
            condition = torch.cat([log2_energy(incident.double()), u_logits(u, self.u_scale)], dim=1)
        return shares.float(), condition.float(), u.float()

    def fit_preprocessing(self, train: Showers) -> None:
        """u0 scale, threshold, and the standardization of the share logits and the condition, and
        the mean share per voxel (the data-space loss weights)."""
        self.fit_constants(train)
        self.statistics = {}
        shares, condition, _ = self._prepared(train)
        logits = share_logits(shares.double())
        condition = condition.double()
        self.statistics = {
            "logit_mean": logits.mean(dim=0).float(),
            "logit_std": logits.std(dim=0).clamp_min(1e-3).float(),
            "condition_mean": condition.mean(dim=0).float(),
            "condition_std": condition.std(dim=0).clamp_min(1e-3).float(),
            "mean_shares": shares.double().mean(dim=0).float(),
            "residual_edges": residual_edges(condition[:, 0]),
            "inn_condition": torch.tensor(self.condition_scale(condition[:, 0])),
            "u_scale": torch.tensor(float(self.config["u_scale"])),
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

    def _standardized(self, shares: torch.Tensor, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = (share_logits(shares) - self._stat("logit_mean")) / self._stat("logit_std")
        return logits, (condition - self._stat("condition_mean")) / self._stat("condition_std")

    @property
    def smearing(self) -> torch.Tensor:
        """The smearing kernel on the device (built from the geometry, not saved)."""
        if self._smearing is None:
            c = self.config
            self._smearing = smearing_matrix(
                self.geometry, int(c["smear_kernel"]), int(c["smear_stride"]), float(c["smear_centre"])
            ).to(self.device)
        return self._smearing

    # ------------------------------------------------------------------ architecture
    @property
    def inn_features(self) -> int:
        """Latent INN dimension: mu and logvar of every latent, one u per layer."""
        return 2 * int(self.config["latent"]) + self.geometry.n_layers

    def build_modules(self) -> dict[str, nn.Module]:
        c = self.config
        vae = ConditionalVAE(
            self.geometry.n_voxels, 1 + self.geometry.n_layers, [int(h) for h in c["vae_hidden"]], int(c["latent"])
        )
        inn = coupling_flow(
            self.inn_features,
            1,
            int(c["inn_blocks"]),
            hidden_widths(c["inn_hidden"], c["inn_subnet_layers"]),
            num_bins=int(c["inn_bins"]),
            tail_bound=float(c["inn_tail_bound"]),
            spline="rational_quadratic",
            activation="leaky_relu",
        )
        modules: dict[str, nn.Module] = {"vae": vae, "inn": inn}
        if c["decoder_noise"] == "empirical":
            modules["residuals"] = ResidualQuantiles(
                self.statistics["residual_edges"], int(c["residual_quantiles"]), self.geometry.n_voxels
            )
        return modules

    # ------------------------------------------------------------------ training
    def vae_stage_loss(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        """Smeared MAE of the standardized logits + gamma MSE of the shares + beta KL (vae.py)."""
        assert self.modules is not None
        shares, condition = batch
        logits, cond = self._standardized(shares, condition)
        vae: ConditionalVAE = self.modules["vae"]  # type: ignore[assignment]
        mu, logvar = vae.encode(logits, cond)
        z = reparameterize(mu, logvar)
        logits_hat = vae.decode(z, cond)
        shares_hat = shares_from_logits(logits_hat * self._stat("logit_std") + self._stat("logit_mean"))
        return vae_loss(
            logits_hat,
            logits,
            shares_hat,
            shares,
            self._stat("mean_shares"),
            mu,
            logvar,
            smearing=self.smearing,
            gamma=float(self.config["gamma"]),
            beta=float(self.config["beta"]),
        )

    @torch.no_grad()
    def latent_tensors(
        self, shares: torch.Tensor, condition: torch.Tensor, u: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The INN's training data: ([mu, logvar] (N, 2 L), u (N, n_layers), context (N, 1)); the u's
        are dequantized and mapped to ``logit(0.9 u)`` per batch (:meth:`inn_stage_loss`)."""
        assert self.modules is not None
        vae = self.modules["vae"]
        vae.eval()
        encodings = []
        for first in range(0, len(shares), ENCODE_BATCH):
            s = shares[first : first + ENCODE_BATCH].to(self.device)
            c = condition[first : first + ENCODE_BATCH].to(self.device)
            mu, logvar = vae.encode(*self._standardized(s, c))
            encodings.append(torch.cat([mu, logvar], dim=1).cpu())
        return torch.cat(encodings), u.float(), self._inn_context(condition[:, :1])

    @torch.no_grad()
    def fit_residuals(self, shares: torch.Tensor, condition: torch.Tensor) -> None:
        """Quantiles of the trained VAE's residuals (standardized logits minus the decoding of the
        encoder mean) on the first ``residual_showers`` training showers, per energy bin."""
        assert self.modules is not None
        vae = self.modules["vae"]
        vae.eval()
        n = min(len(shares), int(self.config["residual_showers"]))
        residuals = []
        for first in range(0, n, ENCODE_BATCH):
            s = shares[first : min(first + ENCODE_BATCH, n)].to(self.device)
            c = condition[first : min(first + ENCODE_BATCH, n)].to(self.device)
            logits, cond = self._standardized(s, c)
            mu, _ = vae.encode(logits, cond)
            residuals.append((logits - vae.decode(mu, cond)).cpu())
        self.modules["residuals"].fit(torch.cat(residuals), condition[:n, 0])

    def _inn_context(self, log_energy: torch.Tensor) -> torch.Tensor:
        """The latent INN's context: ``log2(E_inc / GeV)``, offset and scaled as stored (runs made
        before ``inn_condition`` was stored used the VAE condition's standardization)."""
        if "inn_condition" in self.statistics:
            mean, std = self.statistics["inn_condition"]
        else:
            mean, std = self.statistics["condition_mean"][0], self.statistics["condition_std"][0]
        return (log_energy - mean.to(log_energy.device)) / std.to(log_energy.device)

    def inn_stage_loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """-mean log p([mu, logvar, logit(0.9 u)] | log2 E_inc)."""
        assert self.modules is not None
        encodings, u, context = batch
        values = torch.cat([encodings, u_logits(dequantize_u(u, float(self.config["u_noise"])), self.u_scale)], dim=1)
        return -self.modules["inn"].log_prob(values, context).mean()

    def stages(self, train: Showers, valid: Showers | None) -> Iterable[Stage]:
        assert self.modules is not None
        shares, condition, u = self._prepared(train)
        valid_tensors = None if valid is None or len(valid) == 0 else self._prepared(valid)
        yield Stage(
            "vae",
            {"vae": self.modules["vae"]},
            self.vae_stage_loss,
            (shares, condition),
            None if valid_tensors is None else valid_tensors[:2],
            TrainSettings.from_config(self.config, "vae_"),
        )
        if "residuals" in self.modules:
            self.fit_residuals(shares, condition)
        yield Stage(
            "inn",
            {"inn": self.modules["inn"]},
            self.inn_stage_loss,
            self.latent_tensors(shares, condition, u),
            None if valid_tensors is None else self.latent_tensors(*valid_tensors),
            TrainSettings.from_config(self.config, "inn_"),
        )

    # ------------------------------------------------------------------ sampling
    def sample_batch(self, incident_energies: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        modules = self._require_modules()
        assert self.u0_scale is not None and self.threshold_mev is not None
        latent = int(self.config["latent"])
        vae: ConditionalVAE = modules["vae"]  # type: ignore[assignment]

        def draw(energies: torch.Tensor) -> torch.Tensor:
            log_energy = log2_energy(energies)
            values = sample_flow(modules["inn"], self._inn_context(log_energy), generator)
            mu, logvar, u_values = values.split([latent, latent, self.geometry.n_layers], dim=1)
            u = requantize_u(u_from_logits(u_values, self.u_scale), float(self.config["u_noise"]))
            condition = torch.cat([log_energy, u_logits(u, self.u_scale)], dim=1)
            cond = (condition - self._stat("condition_mean")) / self._stat("condition_std")
            z = reparameterize(mu, logvar.clamp(max=MAX_LOGVAR), generator)
            logits = vae.decode(z, cond)
            if "residuals" in modules:
                logits = logits + modules["residuals"].sample(log_energy, generator)
            logits = logits * self._stat("logit_std") + self._stat("logit_mean")
            return vae_to_voxels(
                shares_from_logits(logits),
                u,
                energies,
                self.layer_sizes,
                u0_scale=self.u0_scale,
                threshold_mev=self.threshold_mev,
            )

        return self.redraw_non_finite(draw, incident_energies)


def residual_edges(log2_energy: torch.Tensor) -> torch.Tensor:
    """Bins of width 1 in log2(E_inc / GeV) covering the training energies (DS1: one per energy)."""
    low = math.floor(float(log2_energy.min()) + 0.5) - 0.5
    high = math.ceil(float(log2_energy.max()) - 0.5) + 0.5
    return torch.arange(low, high + 0.25, 1.0, dtype=torch.float32)
