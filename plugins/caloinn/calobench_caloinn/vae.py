"""CaloINN's conditional VAE (the first half of CaloVAE+INN, arXiv 2312.09290; INNVAE branch, models.md
sec. 2.6): MLP encoder and decoder, the neighbour-smearing kernel and the reconstruction loss.

The loss of a batch is, per shower (summed over voxels, averaged over showers),

    |S (l_hat - l)|_1  +  gamma * |(x_hat - x) / sqrt(mean x)|^2  +  beta * KL(q(z|x, c) || N(0, 1))

with l the standardized share logits the decoder predicts, S the smearing kernel (every voxel keeps
``centre`` of itself and shares the rest evenly with its neighbours in a ``kernel x kernel`` window
of its layer's grid; with a stride > 1 only every stride-th position is kept), x the layer shares in
data space and mean x their training mean per voxel.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from calobench.geometry import Geometry
from calobench.nn.gaussian import gaussian_kl
from calobench.nn.mlp import mlp

#: Floor of the per-voxel mean share in the data-space term (keeps never-hit voxels finite).
MIN_MEAN_SHARE = 1e-6


class ConditionalVAE(nn.Module):
    """Encoder q(z | x, c) -> (mu, logvar) and decoder x_hat(z, c), MLPs with LeakyReLU."""

    def __init__(self, features: int, condition: int, hidden: Sequence[int], latent: int) -> None:
        super().__init__()
        if latent < 1:
            raise ValueError(f"latent must be >= 1, got {latent}")
        self.latent = int(latent)
        self.encoder = mlp(features + condition, 2 * latent, list(hidden), act="leaky_relu")
        self.decoder = mlp(latent + condition, features, list(hidden)[::-1], act="leaky_relu")

    def encode(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(torch.cat([x, c], dim=1)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.cat([z, c], dim=1))


def smearing_matrix(geometry: Geometry, kernel: int = 3, stride: int = 1, centre: float = 0.6) -> torch.Tensor:
    """The (R, V) sparse smearing kernel of the reconstruction loss (COO, float32).

    Each kept position of a layer's (alpha, r) grid -- or (y, x) for Cartesian layers -- takes
    ``centre`` of its own voxel and ``(1 - centre) / (kernel^2 - 1)`` of every other voxel of the
    ``kernel x kernel`` window (0.05 for the 3 x 3 kernel, as in the INNVAE code). The angular
    direction of a cylindrical layer wraps around when it has at least ``kernel`` bins; windows
    leaving the grid otherwise lose those weights. ``stride`` keeps every stride-th row and column.
    """
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"the smearing kernel must be an odd size >= 1, got {kernel}")
    if stride < 1:
        raise ValueError(f"the smearing stride must be >= 1, got {stride}")
    if not 0.0 < centre <= 1.0:
        raise ValueError(f"the smearing centre weight must be in (0, 1], got {centre}")
    half = kernel // 2
    other = (1.0 - centre) / (kernel * kernel - 1) if kernel > 1 else 0.0
    rows: list[int] = []
    cols: list[int] = []
    values: list[float] = []
    row = 0
    offset = 0
    for layer_id, size in zip(geometry.layer_ids, geometry.layer_sizes):
        n_a, n_b = geometry.layer_shape(layer_id)
        wrap = geometry.kind == "cylindrical" and n_a >= kernel
        for a in range(0, n_a, stride):
            for b in range(0, n_b, stride):
                for da in range(-half, half + 1):
                    aa = a + da
                    if wrap:
                        aa %= n_a
                    elif not 0 <= aa < n_a:
                        continue
                    for db in range(-half, half + 1):
                        bb = b + db
                        if not 0 <= bb < n_b:
                            continue
                        rows.append(row)
                        cols.append(offset + aa * n_b + bb)
                        values.append(centre if da == 0 and db == 0 else other)
                row += 1
        offset += size
    indices = torch.tensor([rows, cols], dtype=torch.long)
    matrix = torch.sparse_coo_tensor(
        indices, torch.tensor(values, dtype=torch.float32), (row, geometry.n_voxels), check_invariants=True
    )
    return matrix.coalesce()


def smeared_mae(difference: torch.Tensor, smearing: torch.Tensor | None) -> torch.Tensor:
    """``|S d|_1`` per shower for (B, V) differences ``d`` (``|d|_1`` without a kernel)."""
    if smearing is None:
        return difference.abs().sum(dim=1)
    smeared = torch.sparse.mm(smearing, difference.t().to(smearing.dtype)).t()
    return smeared.abs().sum(dim=1)


def vae_loss(
    logits_hat: torch.Tensor,
    logits: torch.Tensor,
    shares_hat: torch.Tensor,
    shares: torch.Tensor,
    mean_shares: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    *,
    smearing: torch.Tensor | None,
    gamma: float,
    beta: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The VAE loss (module docstring), averaged over the batch, and its three terms."""
    mae = smeared_mae(logits_hat - logits, smearing).mean()
    scale = mean_shares.clamp_min(MIN_MEAN_SHARE).rsqrt()
    mse = ((shares_hat - shares) * scale).pow(2).sum(dim=1).mean()
    kl = gaussian_kl(mu, logvar).mean()
    total = mae + gamma * mse + beta * kl
    return total, {"mae": float(mae.detach()), "mse": float(mse.detach()), "kl": float(kl.detach())}


class ResidualQuantiles(nn.Module):
    """Per-voxel quantiles of the VAE's reconstruction residuals (standardized logit space) in bins of
    ``log2(E_inc / GeV)``: a non-parametric decoder noise ``p(x | z) = decoder(z) + r`` with ``r`` drawn
    voxel by voxel from its empirical distribution at the shower's energy (the ``empirical`` option of
    ``decoder_noise``; the published model decodes without noise).

    Buffers: ``edges`` (n_bins + 1) in log2(E / GeV), ``quantiles`` (n_bins, Q, V).
    """

    def __init__(self, edges: torch.Tensor, n_quantiles: int, features: int) -> None:
        super().__init__()
        if n_quantiles < 2:
            raise ValueError(f"residual_quantiles must be >= 2, got {n_quantiles}")
        self.register_buffer("edges", torch.as_tensor(edges, dtype=torch.float32).clone())
        self.register_buffer("quantiles", torch.zeros(len(edges) - 1, n_quantiles, features))

    @property
    def n_bins(self) -> int:
        return int(self.quantiles.shape[0])

    def bin_index(self, log2_energy: torch.Tensor) -> torch.Tensor:
        """Energy bin of every shower (clamped to the first / last bin)."""
        inner = self.edges[1:-1].to(log2_energy.dtype).contiguous()
        return torch.bucketize(log2_energy.reshape(-1).contiguous(), inner).clamp(0, self.n_bins - 1)

    @torch.no_grad()
    def fit(self, residuals: torch.Tensor, log2_energy: torch.Tensor) -> None:
        """Quantiles of (N, V) residuals per energy bin; an empty bin takes its nearest filled one."""
        bins = self.bin_index(log2_energy.to(self.edges.device))
        n_q = self.quantiles.shape[1]
        # mid-point levels: the extreme draws stay within the 1/(2Q) and 1 - 1/(2Q) quantiles instead
        # of reaching the sample's minimum and maximum
        levels = (torch.arange(n_q, dtype=torch.float64) + 0.5) / n_q
        filled = []
        for b in range(self.n_bins):
            rows = residuals[bins.cpu() == b]
            if len(rows):
                self.quantiles[b] = torch.quantile(rows.double(), levels, dim=0).to(self.quantiles)
                filled.append(b)
        if not filled:
            raise ValueError("no residuals to fit")
        for b in range(self.n_bins):
            if b not in filled:
                self.quantiles[b] = self.quantiles[min(filled, key=lambda f: abs(f - b))]

    def sample(self, log2_energy: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, V) residuals, each voxel drawn independently by inverting its interpolated quantiles."""
        n_q, n_v = self.quantiles.shape[1], self.quantiles.shape[2]
        bins = self.bin_index(log2_energy)
        position = torch.rand((len(bins), n_v), generator=generator, device=self.quantiles.device) * (n_q - 1)
        low = position.floor().long().clamp(max=n_q - 2)
        fraction = (position - low).to(self.quantiles.dtype)
        flat = self.quantiles.reshape(-1, n_v)
        index = bins.reshape(-1, 1) * n_q + low
        below, above = flat.gather(0, index), flat.gather(0, index + 1)
        return below + fraction * (above - below)
