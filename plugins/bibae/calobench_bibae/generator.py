"""``bib-ae``: the bounded-information-bottleneck autoencoder of Buhmann et al. ("Getting High",
arXiv 2005.05334; photons in "Decoding Photons", 2102.12491; pions, 2112.09709), with its
post-processor and three latent samplers.

Training (stages of the shared torch base, each resumable):

1. ``bibae`` -- an :class:`~calobench.generator.adversarial.AdversarialStage`: per batch, ``critic_steps``
   updates of the shower critic (WGAN-GP on the pairs (x, x) vs (x, x_hat)) and of the per-component
   latent critic (WGAN-GP on N(0, 1) vs the encoded z), then one update of encoder + decoder with
   ``-adversarial_weight D(x, x_hat) - latent_adversarial_weight D_L(z) + kl_weight KL +
   latent_mmd_weight MMD(z, N(0, 1))`` (models.md sec. 3.4);
2. the KDE of the encoded training showers is fitted (no gradient step; see :mod:`.samplers`);
3. ``post_pretrain`` -- the post-processor learns to reproduce the BIB-AE's output (MSE);
4. ``post`` -- then the sorted-kernel MMD to the real shower's hit-energy spectrum plus the MSE;
5. ``latent_flow`` -- the conditional latent flow, by maximum likelihood on the encoded training showers.

Generation: E_inc -> the encoded latent dimensions from ``latent_sampler`` and the remaining ones
from N(0, 1) -> decoder -> post-processor (``post_processor=true``) -> voxel energies in MeV ->
readout threshold.

The networks see ``x = voxel / E_inc * energy_scale`` (fractions of the incident energy; the
published model saw raw energies of a data set whose E_inc spans a factor 10 -- here it spans up
to 2^14) and the condition ``c`` = standardized log E_inc. Differences from the published code:
the latent critic and latent MMD act on the 24 encoded dimensions (the other 488 are exact N(0, 1)
draws, on which both terms are noise), the gradient penalty of the per-component latent critic is
per component (the published one takes the norm over all 512 components of one shower), the
critic updates of a batch reuse one BIB-AE output (the published loop recomputes it for every
critic step), and the post-processor is trained after the BIB-AE instead of alongside it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from calobench.errors import ConfigError
from calobench.generator.adversarial import AdversarialStage, OptimizerGroup, group_settings
from calobench.generator.seeding import derive_seed
from calobench.generator.settings import TrainSettings
from calobench.generator.torch_base import TorchGenerator
from calobench.generator.training import Stage
from calobench.marginals import VoxelMarginals, copula_transform
from calobench.nn.adversarial import critic_loss, generator_loss, gradient_penalty
from calobench.nn.coupling import sample_flow
from calobench.nn.gaussian import gaussian_kl, reparameterize
from calobench.preprocessing import apply_threshold
from calobench.showers import Showers
from calobench_bibae.losses import latent_mmd, sorted_kernel_mmd, voxel_energy_score
from calobench_bibae.networks import (
    Decoder,
    Encoder,
    LatentCritic,
    PostProcessor,
    ShowerCritic,
    architecture_for,
    build_decoder_body,
    build_features,
)
from calobench_bibae.presets import PRESETS
from calobench_bibae.samplers import SAMPLERS, LatentKDE, build_latent_flow

log = logging.getLogger("calobench.bibae")
#: ``calibration`` values: none (published), copula (the data's per-voxel marginals, see :meth:`BIBAE.calibrate`)
CALIBRATIONS = ("none", "copula")
Batch = tuple[torch.Tensor, ...]


class BIBAE(TorchGenerator):
    """BIB-AE: a VAE-GAN hybrid (encoder, decoder, shower critic, latent critic) plus a per-voxel
    post-processor; the encoded latent is sampled from N(0, 1), a KDE or a latent flow."""

    name = "bib-ae"
    description = "BIB-AE: VAE-GAN hybrid with latent critic, post-processor, N(0,1)/KDE/flow latents (2005.05334)"
    presets = PRESETS
    published_name = None  # the CaloChallenge 2022 tables (arXiv 2410.21611) have no BIB-AE row

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        c = self.config
        if not 1 <= int(c["latent_encoded"]) <= int(c["latent"]):
            raise ConfigError(f"latent_encoded must be between 1 and latent={c['latent']}, got {c['latent_encoded']}")
        if c["latent_sampler"] not in SAMPLERS:
            raise ConfigError(f"latent_sampler must be one of {SAMPLERS}, got {c['latent_sampler']!r}")
        if int(c["flow_epochs"]) > 0 and int(c["latent_encoded"]) < 2:
            raise ConfigError("the latent flow needs latent_encoded >= 2 (coupling blocks); set flow_epochs=0")
        if float(c["energy_scale"]) <= 0:
            raise ConfigError(f"energy_scale must be > 0, got {c['energy_scale']}")
        self.architecture = architecture_for(self.geometry, c["architecture"])
        if c["output_transform"] not in ("linear", "log") or float(c["log_scale"]) <= 0:
            raise ConfigError(
                f"output_transform must be linear or log and log_scale > 0, got {c['output_transform']!r}, "
                f"{c['log_scale']}"
            )
        self.log_e_mean, self.log_e_std = 0.0, 1.0
        self.log_r_mean, self.log_r_std = 0.0, 1.0
        self.threshold_mev = 0.0
        if c["calibration"] not in CALIBRATIONS or not 0.0 <= float(c["calibration_rho"]) <= 1.0:
            raise ConfigError(
                f"calibration must be one of {CALIBRATIONS} and calibration_rho in [0, 1], got "
                f"{c['calibration']!r}, {c['calibration_rho']}"
            )
        self.kde: LatentKDE | None = None
        self.data_marginals: VoxelMarginals | None = None
        self.calibration_energies: torch.Tensor | None = None
        self.generated_marginals: dict[str, VoxelMarginals] = {}
        self._raw_sampling = False
        self._fit_seed = 0

    # ------------------------------------------------------------------ data
    @property
    def scale(self) -> float:
        return float(self.config["energy_scale"])

    @property
    def log_scale(self) -> float:
        return float(self.config["log_scale"])

    @property
    def latent_energy(self) -> bool:
        return bool(self.config["latent_energy"])

    def condition(self, incident: torch.Tensor) -> torch.Tensor:
        """(B,) E_inc in MeV -> (B, 1) standardized log E_inc."""
        return ((torch.log(incident.float()) - self.log_e_mean) / self.log_e_std).unsqueeze(1)

    def shower_tensors(self, showers: Showers) -> tuple[torch.Tensor, torch.Tensor]:
        """(c (N, 1), x (N, V)) float32 CPU tensors: condition and voxel / E_inc * energy_scale."""
        incident = torch.as_tensor(np.asarray(showers.incident_energies, dtype=np.float64))
        voxels = torch.as_tensor(np.asarray(showers.energies, dtype=np.float64))
        x = (voxels / incident[:, None] * self.scale).float()
        return self.condition(incident).float(), x

    def to_net(self, x: torch.Tensor) -> torch.Tensor:
        """x -> the networks' space: x itself (``output_transform=linear``, published) or log(1 + x / x0)."""
        return torch.log1p(x / self.log_scale) if self.config["output_transform"] == "log" else x

    def from_net(self, s: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_net`."""
        return self.log_scale * torch.expm1(s) if self.config["output_transform"] == "log" else s

    def visible_energy(self, x: torch.Tensor) -> torch.Tensor:
        """(B, V) x -> (B, 1) standardized log(E_vis / E_inc), the energy coordinate of the latent samplers."""
        ratio = (x.sum(dim=1, keepdim=True) / self.scale).clamp_min(1e-12)
        return (torch.log(ratio) - self.log_r_mean) / self.log_r_std

    def fit(self, train: Showers, valid: Showers | None = None, *, seed: int = 0, workdir: Path | None = None) -> None:
        self._fit_seed = int(seed)
        self.kde = None
        self.data_marginals, self.calibration_energies, self.generated_marginals = None, None, {}
        train = self.random_subset(train, self.config.get("max_train_showers"), self._fit_seed, "train")
        valid = self.random_subset(valid, self.config.get("max_valid_showers"), self._fit_seed, "valid")
        super().fit(train, valid, seed=seed, workdir=workdir)
        if self.config["calibration"] != "none":
            self.generated_marginals_for_config()

    # ------------------------------------------------------------------ preprocessing state
    def fit_preprocessing(self, train: Showers) -> None:
        log_e = np.log(np.asarray(train.incident_energies, dtype=np.float64))
        self.log_e_mean = float(log_e.mean())
        self.log_e_std = float(max(log_e.std(), 1e-3))
        ratio = np.asarray(train.total_energy(), dtype=np.float64) / np.asarray(train.incident_energies, np.float64)
        log_r = np.log(np.clip(ratio, 1e-12, None))
        self.log_r_mean, self.log_r_std = float(log_r.mean()), float(max(log_r.std(), 1e-3))
        threshold = self.config.get("threshold_mev")
        if threshold is None:  # the data's readout threshold: just below its smallest non-zero voxel
            nonzero = train.energies[train.energies > 0]
            threshold = float(nonzero.min()) * (1.0 - 1e-6) if nonzero.size else 0.0
        self.threshold_mev = float(threshold)
        if self.config["calibration"] != "none":
            incident = torch.as_tensor(np.asarray(train.incident_energies, dtype=np.float64).reshape(-1))
            fractions = torch.as_tensor(np.asarray(train.energies, dtype=np.float64)) / incident[:, None]
            self.data_marginals = self._tabulate(incident, fractions)
            rng = np.random.default_rng(derive_seed(self._fit_seed, "calibration"))
            rows = rng.choice(len(incident), min(len(incident), int(self.config["calibration_showers"])), replace=False)
            self.calibration_energies = incident[torch.as_tensor(np.sort(rows))].float()

    def _tabulate(self, incident: torch.Tensor, fractions: torch.Tensor) -> VoxelMarginals:
        return VoxelMarginals.fit(
            incident, fractions, int(self.config["calibration_quantiles"]), int(self.config["calibration_energy_bins"])
        )

    def preprocessing_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "log_e_mean": self.log_e_mean,
            "log_e_std": self.log_e_std,
            "log_r_mean": self.log_r_mean,
            "log_r_std": self.log_r_std,
            "threshold_mev": self.threshold_mev,
        }
        if self.kde is not None:
            state["kde"] = self.kde.state()
        if self.data_marginals is not None and self.calibration_energies is not None:
            state["data_marginals"] = self.data_marginals.state()
            state["calibration_energies"] = self.calibration_energies
            state["generated_marginals"] = {key: m.state() for key, m in self.generated_marginals.items()}
        return state

    def load_preprocessing_state(self, state: dict[str, Any]) -> None:
        self.log_e_mean = float(state["log_e_mean"])
        self.log_e_std = float(state["log_e_std"])
        self.log_r_mean, self.log_r_std = float(state["log_r_mean"]), float(state["log_r_std"])
        self.threshold_mev = float(state["threshold_mev"])
        self.kde = LatentKDE.from_state(state["kde"]) if "kde" in state else None
        self.data_marginals, self.calibration_energies, self.generated_marginals = None, None, {}
        if "data_marginals" in state:
            self.data_marginals = VoxelMarginals.from_state(state["data_marginals"])
            self.calibration_energies = torch.as_tensor(state["calibration_energies"], dtype=torch.float32)
            self.generated_marginals = {
                key: VoxelMarginals.from_state(m) for key, m in state["generated_marginals"].items()
            }

    # ------------------------------------------------------------------ architecture
    @property
    def has_post_processor(self) -> bool:
        return int(self.config["pp_pretrain_epochs"]) + int(self.config["pp_epochs"]) > 0

    @property
    def has_flow(self) -> bool:
        return int(self.config["flow_epochs"]) > 0

    def build_modules(self) -> dict[str, nn.Module]:
        c, geometry, arch = self.config, self.geometry, self.architecture
        channels, n_voxels = list(c["channels"]), geometry.n_voxels
        encoder_features = build_features(geometry, arch, channels, [])
        modules: dict[str, nn.Module] = {
            "encoder": Encoder(encoder_features, 1, list(c["encoder_hidden"]), int(c["latent_encoded"])),
            "decoder": Decoder(
                build_decoder_body(geometry, arch, int(c["latent"]) + 1, channels, list(c["decoder_hidden"]))
            ),
            "critic": ShowerCritic(
                build_features(geometry, arch, channels, list(c["critic_hidden"])),
                build_features(geometry, arch, channels, list(c["critic_hidden"])),
                n_voxels,
                1,
                int(c["critic_width"]),
                self.log_scale,
            ),
            "latent_critic": LatentCritic(),
        }
        if self.has_post_processor:
            modules["post"] = PostProcessor(n_voxels, 1, int(c["pp_width"]), bool(c["pp_noise"]))
        if self.has_flow:
            modules["latent_flow"] = build_latent_flow(
                int(c["latent_encoded"]) + int(self.latent_energy),
                1,
                int(c["flow_blocks"]),
                int(c["flow_hidden"]),
                int(c["flow_bins"]),
                float(c["flow_tail_bound"]),
            )
        return modules

    # ------------------------------------------------------------------ the BIB-AE
    def _noise(self, n: int, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        k, total = int(self.config["latent_encoded"]), int(self.config["latent"])
        return torch.randn((n, total - k), generator=generator, device=like.device, dtype=like.dtype)

    def autoencode(self, c: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Encode, reparameterize, fill the unencoded latent dimensions with N(0, 1), decode:
        (x_hat, z, mu, logvar) with z the encoded dimensions only."""
        assert self.modules is not None
        mu, logvar = self.modules["encoder"](self.to_net(x), c)
        z = reparameterize(mu, logvar)
        s_hat = self.modules["decoder"](torch.cat([z, self._noise(len(z), z)], dim=1), c)
        return self.from_net(s_hat), z, mu, logvar

    def _prepare(self, batch: Batch) -> Batch:
        c, x = batch
        x_hat, z, _, _ = self.autoencode(c, x)
        return c, x, x_hat, z

    def critic_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """WGAN-GP loss of the shower critic: D(x, x_hat) - D(x, x) + lambda GP."""
        assert self.modules is not None
        c, x, x_hat, _ = batch
        critic = self.modules["critic"]
        real, fake = critic(x, x, c), critic(x, x_hat, c)
        penalty = gradient_penalty(lambda mixed: critic(x, mixed, c), x, x_hat, float(self.config["gp_weight"]))
        distance = (real.mean() - fake.mean()).detach()
        return critic_loss(real, fake) + penalty, {"wasserstein": float(distance), "gp": float(penalty.detach())}

    def _latent_subset(self, z: torch.Tensor) -> torch.Tensor:
        """The first ``latent_critic_batch`` showers' latents (all if null): what the latent critic sees."""
        limit = self.config["latent_critic_batch"]
        return z if limit is None else z[: int(limit)]

    def latent_critic_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """WGAN-GP loss of the per-component latent critic: N(0, 1) is real, the encoded z fake."""
        assert self.modules is not None
        z = self._latent_subset(batch[3])
        critic = self.modules["latent_critic"]
        prior = torch.randn_like(z)
        real, fake = critic(prior), critic(z)
        penalty = gradient_penalty(
            critic, prior.reshape(-1, 1), z.reshape(-1, 1), float(self.config["latent_gp_weight"])
        )
        return critic_loss(real, fake) + penalty, {"wasserstein": float((real.mean() - fake.mean()).detach())}

    def generator_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Encoder + decoder: -L_adv D(x, x_hat) - L_adv_L D_L(z) + L_KL KL + L_MMD MMD(z, N(0, 1))."""
        assert self.modules is not None
        cfg = self.config
        c, x = batch[0], batch[1]
        x_hat, z, mu, logvar = self.autoencode(c, x)
        adversarial = generator_loss(self.modules["critic"](x, x_hat, c))
        latent_adversarial = generator_loss(self.modules["latent_critic"](self._latent_subset(z)))
        kl = gaussian_kl(mu, logvar).mean()
        mmd = latent_mmd(z, torch.randn_like(z))
        loss = (
            float(cfg["adversarial_weight"]) * adversarial
            + float(cfg["latent_adversarial_weight"]) * latent_adversarial
            + float(cfg["kl_weight"]) * kl
            + float(cfg["latent_mmd_weight"]) * mmd
        )
        parts = {"adversarial": adversarial, "latent_adversarial": latent_adversarial, "kl": kl, "mmd": mmd}
        # not in the paper (weights 0 there): squared reconstruction errors, a help for short CPU trainings
        if float(cfg["reconstruction_weight"]) > 0:  # in network space
            reconstruction = (self.to_net(x_hat) - self.to_net(x)).pow(2).sum(dim=1).mean()
            loss = loss + float(cfg["reconstruction_weight"]) * reconstruction
            parts["reconstruction"] = reconstruction
        if float(cfg["linear_reconstruction_weight"]) > 0:  # in x units
            linear = (x_hat - x).pow(2).sum(dim=1).mean()
            loss = loss + float(cfg["linear_reconstruction_weight"]) * linear
            parts["linear_reconstruction"] = linear
        if float(cfg["energy_weight"]) > 0:  # the published ENR_RECON term (weight 0 in the paper)
            energy = ((x_hat.sum(dim=1) - x.sum(dim=1)) / self.scale).pow(2).mean()
            loss = loss + float(cfg["energy_weight"]) * energy
            parts["energy"] = energy
        return loss, {key: float(value.detach()) for key, value in parts.items()}

    # ------------------------------------------------------------------ the post-processor
    def _post_inputs(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c, x = batch
        with torch.no_grad():
            x_hat = self.autoencode(c, x)[0]
        return c, x, x_hat

    def post_process(
        self, x_hat: torch.Tensor, c: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The post-processor on BIB-AE output ``x_hat`` (in x units and back)."""
        assert self.modules is not None
        energy = x_hat.sum(dim=1, keepdim=True) / self.scale
        noise = None
        if self.config["pp_noise"]:
            noise = torch.randn(x_hat.shape, generator=generator, device=x_hat.device, dtype=x_hat.dtype)
        return self.from_net(self.modules["post"](self.to_net(x_hat), energy, c, noise))

    def post_pretrain_loss(self, batch: Batch) -> torch.Tensor:
        """MSE between the post-processed and the BIB-AE output (the published pretraining), in network space."""
        c, _, x_hat = self._post_inputs(batch)
        return F.mse_loss(self.to_net(self.post_process(x_hat, c)), self.to_net(x_hat))

    def post_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """pp_mmd_weight x sorted-kernel MMD(post(x_hat), x) + pp_mse_weight x MSE(post(x_hat), x_hat)
        (published) + pp_energy_score_weight x the per-voxel energy score of post(x_hat) for x, all
        in network space."""
        cfg = self.config
        c, x, x_hat = self._post_inputs(batch)
        processed = self.to_net(self.post_process(x_hat, c))
        target, x_hat = self.to_net(x), self.to_net(x_hat)
        loss = processed.new_zeros(())
        parts: dict[str, float] = {}
        if float(cfg["pp_mmd_weight"]) > 0:
            mmd = sorted_kernel_mmd(
                processed,
                target,
                int(cfg["pp_mmd_kernel"]),
                int(cfg["pp_mmd_stride"]),
                int(cfg["pp_mmd_cutoff"]),
                float(cfg["pp_mmd_alpha"]),
            )
            loss = loss + float(cfg["pp_mmd_weight"]) * mmd
            parts["mmd"] = float(mmd.detach())
        if float(cfg["pp_mse_weight"]) > 0:
            mse = F.mse_loss(processed, x_hat)
            loss = loss + float(cfg["pp_mse_weight"]) * mse
            parts["mse"] = float(mse.detach())
        if float(cfg["pp_energy_score_weight"]) > 0:
            again = self.to_net(self.post_process(self.from_net(x_hat), c))
            score = voxel_energy_score(processed, again, target)
            loss = loss + float(cfg["pp_energy_score_weight"]) * score
            parts["energy_score"] = float(score.detach())
        return loss, parts

    # ------------------------------------------------------------------ the latent samplers
    def encode_latents(self, tensors: tuple[torch.Tensor, torch.Tensor], chunk: int = 2048) -> torch.Tensor:
        """What the KDE and the flow model, one row per shower (N, latent_encoded [+ 1]) on the CPU:
        an encoded z = mu + sigma eps and, with ``latent_energy``, the standardized log(E_vis / E_inc)."""
        assert self.modules is not None
        encoder = self.modules["encoder"]
        c_all, x_all = tensors
        out = []
        with torch.no_grad():
            for first in range(0, len(x_all), chunk):
                c = c_all[first : first + chunk].to(self.device)
                x = x_all[first : first + chunk].to(self.device)
                mu, logvar = encoder(self.to_net(x), c)
                parts = [reparameterize(mu, logvar)]
                if self.latent_energy:
                    parts.append(self.visible_energy(x))
                out.append(torch.cat(parts, dim=1).cpu())
        return torch.cat(out)

    def flow_loss(self, batch: Batch) -> torch.Tensor:
        assert self.modules is not None
        z, c = batch
        return -self.modules["latent_flow"].log_prob(z, context=c).mean()

    def fit_kde(self, latents: torch.Tensor, conditions: torch.Tensor) -> LatentKDE:
        c = self.config
        kde = LatentKDE.fit(
            latents.numpy(),
            conditions[:, 0].numpy(),
            np.random.default_rng(derive_seed(self._fit_seed, "kde")),
            int(c["kde_points"]),
            int(c["kde_cv_points"]),
            list(c["kde_bandwidths"]),
            float(c["kde_energy_weight"]),
        )
        log.info("latent KDE: %d points, bandwidth %.3g (cross-validated)", len(kde.points), kde.bandwidth)
        return kde

    # ------------------------------------------------------------------ stages
    def stages(self, train: Showers, valid: Showers | None) -> Iterable[Stage]:
        assert self.modules is not None
        cfg, modules = self.config, self.modules
        tensors = self.shower_tensors(train)
        valid_tensors = None if valid is None or len(valid) == 0 else self.shower_tensors(valid)
        betas = (float(cfg["betas"][0]), float(cfg["betas"][1]))
        settings = TrainSettings.from_config(cfg)
        steps = int(cfg["critic_steps"])
        yield AdversarialStage.build(
            "bibae",
            [
                OptimizerGroup(
                    "critic",
                    {"critic": modules["critic"]},
                    self.critic_loss,
                    group_settings(cfg, "critic_", settings),
                    steps,
                    betas,
                ),
                OptimizerGroup(
                    "latent_critic",
                    {"latent_critic": modules["latent_critic"]},
                    self.latent_critic_loss,
                    group_settings(cfg, "latent_critic_", settings),
                    int(cfg["latent_critic_steps"]),
                    betas,
                ),
                OptimizerGroup(
                    "generator",
                    {"encoder": modules["encoder"], "decoder": modules["decoder"]},
                    self.generator_loss,
                    settings,
                    1,
                    betas,
                ),
            ],
            tensors,
            None,
            settings,
            prepare=self._prepare,
        )
        latents = self.encode_latents(tensors)
        self.kde = self.fit_kde(latents, tensors[0])
        if self.has_post_processor:
            post = TrainSettings.from_config(cfg, "pp_")
            post_tensors = tensors
            limit = cfg["pp_max_train_showers"]
            if limit is not None and len(tensors[0]) > int(limit):
                rows = np.sort(
                    np.random.default_rng(derive_seed(self._fit_seed, "pp")).choice(
                        len(tensors[0]), int(limit), replace=False
                    )
                )
                post_tensors = tuple(t[torch.as_tensor(rows)] for t in tensors)
            for name, epochs, loss in (
                ("post_pretrain", int(cfg["pp_pretrain_epochs"]), self.post_pretrain_loss),
                ("post", int(cfg["pp_epochs"]), self.post_loss),
            ):
                if epochs > 0:
                    yield Stage(
                        name,
                        {"post": modules["post"]},
                        loss,
                        post_tensors,
                        None,
                        replace(post, epochs=epochs),
                        keep="last",
                        betas=betas,
                    )
        if self.has_flow:
            valid_latents = None
            if valid_tensors is not None:
                valid_latents = (self.encode_latents(valid_tensors), valid_tensors[0])
            yield Stage(
                "latent_flow",
                {"latent_flow": modules["latent_flow"]},
                self.flow_loss,
                (latents, tensors[0]),
                valid_latents,
                TrainSettings.from_config(cfg, "flow_"),
            )

    # ------------------------------------------------------------------ sampling
    def sample_latent(self, c: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The encoded latent dimensions (B, latent_encoded) for conditions ``c`` (B, 1), and the
        standardized log(E_vis / E_inc) (B, 1) the KDE or flow drew with them (``latent_energy``), or None."""
        modules = self._require_modules()
        sampler, k = self.config["latent_sampler"], int(self.config["latent_encoded"])
        if sampler == "normal":
            return torch.randn((len(c), k), generator=generator, device=c.device, dtype=c.dtype), None
        if sampler == "kde":
            if self.kde is None:
                raise ConfigError("latent_sampler=kde: this model has no fitted KDE (train it again)")
            drawn = self.kde.sample(c[:, 0], generator).to(c.dtype)
        else:
            if "latent_flow" not in modules:
                raise ConfigError("latent_sampler=flow: this model has no latent flow (trained with flow_epochs=0)")
            drawn = sample_flow(modules["latent_flow"], c, generator).to(c.dtype)
        if drawn.shape[1] != k + int(self.latent_energy):
            raise ConfigError(f"the {sampler} sampler of this model draws {drawn.shape[1]} values, expected {k}")
        return drawn[:, :k], (drawn[:, k:] if self.latent_energy else None)

    def _sampling_key(self) -> str:
        return f"{self.config['latent_sampler']}/post_processor={bool(self.config['post_processor'])}"

    def generated_marginals_for_config(self) -> VoxelMarginals:
        """The per-voxel marginals of this model's uncalibrated output for the current ``latent_sampler``
        and ``post_processor``: ``calibration_showers`` showers at training energies, fixed seed;
        tabulated once per setting and saved with the model."""
        key = self._sampling_key()
        if key not in self.generated_marginals:
            if self.calibration_energies is None:
                raise ConfigError("calibration=copula: this model was trained without calibration tables")
            energies = self.calibration_energies.double()
            self._raw_sampling = True
            try:
                raw = self.sample(energies.numpy(), seed=derive_seed(self._fit_seed, "calibration", key))
            finally:
                self._raw_sampling = False
            self.generated_marginals[key] = self._tabulate(
                energies, torch.as_tensor(raw, dtype=torch.float64) / energies[:, None]
            )
        return self.generated_marginals[key]

    def calibrate(self, voxels: torch.Tensor, incident: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Not in the paper: every voxel mapped from the model's own marginal distribution to the
        training data's (per incident-energy bin) through a Gaussian copula
        (:func:`calobench.marginals.copula_transform`, ``calibration_rho``): the model's rank structure
        with the data's voxel-energy spectrum. (B, V) MeV -> (B, V) MeV (float64)."""
        assert self.data_marginals is not None
        source = self.generated_marginals_for_config()
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
        cpu = torch.Generator().manual_seed(seed)
        incident_cpu = incident.detach().double().cpu()
        fractions = voxels.detach().double().cpu() / incident_cpu[:, None]
        mapped = copula_transform(
            fractions, incident_cpu, source, self.data_marginals, float(self.config["calibration_rho"]), cpu
        )
        return (mapped * incident_cpu[:, None]).to(voxels.device)

    def sample_batch(self, incident_energies: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        modules = self._require_modules()
        c = self.condition(incident_energies)
        z, energy = self.sample_latent(c, generator)
        x_hat = self.from_net(modules["decoder"](torch.cat([z, self._noise(len(z), z, generator)], dim=1), c))
        if self.config["post_processor"]:
            if "post" not in modules:
                raise ConfigError(
                    "post_processor=true, but this model has no post-processor (pp_pretrain_epochs + pp_epochs = 0)"
                )
            x_hat = self.post_process(x_hat, c, generator)
        incident = incident_energies.double()[:, None]
        voxels = apply_threshold(x_hat.double() / self.scale * incident, self.threshold_mev)
        if self._raw_sampling:  # what calibrate() maps from
            return voxels.float()
        if self.config["calibration"] != "none":
            if self.data_marginals is None:
                raise ConfigError("calibration=copula: this model was trained without calibration tables")
            voxels = self.calibrate(voxels, incident_energies, generator)
        if energy is not None:  # rescale to the drawn visible energy (arXiv 2303.18150)
            target = torch.exp(energy.double() * self.log_r_std + self.log_r_mean) * incident
            total = voxels.sum(dim=1, keepdim=True)
            voxels = torch.where(total > 0, voxels * target / total.clamp_min(1e-300), voxels)
        return apply_threshold(voxels, self.threshold_mev).float()
