"""CaloMan's generalized autoencoder: a conditional Gaussian VAE (arXiv 2211.15380; Kingma & Welling,
arXiv 1312.6114).

Encoder and decoder are MLPs (published: 3 hidden layers of 512, ReLU; calo-man
config/generalized_autoencoder.py) that take the label concatenated to their input (two-step-zoo's
``ParallelMLP``). The encoder gives the mean and log-variance of a diagonal Gaussian posterior; the
decoder the mean of a Gaussian likelihood whose width is one learned scalar (``single_sigma``).
Loss: the negative ELBO with one posterior draw and beta = 1 (two_step_zoo/vae.py). The manifold the
second step models is the image of the encoder *means* (:meth:`GaussianVAE.encode`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from calobench.nn.gaussian import gaussian_kl, gaussian_nll, reparameterize
from calobench.nn.mlp import mlp


class GaussianVAE(nn.Module):
    """Conditional VAE on flat showers: ``features`` inputs, ``context`` label entries, ``latent`` dims."""

    def __init__(
        self,
        features: int,
        context: int,
        latent: int,
        hidden: Sequence[int],
        activation: str = "relu",
        input_scale: float = 1.0,
        sigma_init: "float | torch.Tensor" = 1.0,
        voxel_sigma: bool = False,
    ) -> None:
        """``input_scale`` multiplies the showers the encoder sees (not the reconstruction target):
        logit voxels (|x| up to 13.8) over thousands of inputs would otherwise make the first Adam
        steps blow the posterior variance up. ``sigma_init`` is the decoder width at the start
        (the data's spread: a width far above the reconstruction error lets the KL term win and the
        posterior collapse onto the prior before the width has been learned)."""
        super().__init__()
        if latent < 1:
            raise ValueError(f"the latent dimension must be >= 1, got {latent}")
        self.features, self.context, self.latent = int(features), int(context), int(latent)
        self.encoder = mlp(features + context, 2 * latent, list(hidden), act=activation)
        self.decoder = mlp(latent + context, features, list(reversed(list(hidden))), act=activation)
        # one decoder width for every voxel (CaloMan's single_sigma), or one per voxel
        shape = (features,) if voxel_sigma else ()
        init = torch.as_tensor(sigma_init, dtype=torch.float32).clamp_min(1e-6).log()
        self.log_sigma = nn.Parameter(init.expand(shape).clone() if init.dim() == 0 else init.reshape(shape).clone())
        self.register_buffer("input_scale", torch.tensor(float(input_scale)))

    def encode_distribution(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(posterior mean, posterior log-variance), each (B, latent); the log-variance is clamped to
        [-30, 20] so that a bad step cannot overflow its exponential."""
        mu, logvar = self.encoder(torch.cat([x * self.input_scale, y], dim=1)).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The posterior means: the latent codes the density estimator is trained on."""
        return self.encode_distribution(x, y)[0]

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The decoder mean (what CaloMan generates with)."""
        return self.decoder(torch.cat([z, y], dim=1))

    def sample(self, z: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A draw from the decoder's Gaussian likelihood: mean + sigma * noise."""
        mean = self.decode(z, y)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + self.log_sigma.exp() * noise

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Mean negative ELBO per shower, with its reconstruction and KL parts."""
        mu, logvar = self.encode_distribution(x, y)
        z = reparameterize(mu, logvar)
        reconstruction = self.decode(z, y)
        nll = gaussian_nll(x, reconstruction, self.log_sigma).mean()
        kl = gaussian_kl(mu, logvar).mean()
        mse = (reconstruction - x).pow(2).mean()
        return nll + kl, {"nll": nll.detach(), "kl": kl.detach(), "mse": mse.detach()}
