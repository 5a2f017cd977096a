"""CaloINN's conditional VAE, the first half of CaloVAE+INN (arXiv 2312.09290), as the published code
builds it (heidelberg-hepml/CaloINN@342e78f, branch ``vae_calo_challenge_mark_2``, src/model.py;
line numbers in ../FIDELITY.md):

* :class:`MLPVAE` -- DS1: encoder and decoder MLPs, ReLU after every hidden layer (``CVAE``);
* :class:`KernelVAE` -- DS2 / DS3: the encoder runs one block MLP on every window of ``kernel_size``
  consecutive calorimeter layers (windows ``stride`` layers apart) and a gathering MLP on the block
  outputs; the decoder mirrors it and adds the overlapping windows (``KernelEncoder``,
  ``KernelDecoder``);
* :func:`smearing_matrix` -- the neighbour smearing of the reconstruction loss;
* :func:`vae_loss` -- the loss of the final run cards (``BCE_mode: discrete``, ``VAE_MAE_logit``):

      0.5 mean|(logit x_hat - logit x) S| + gamma 0.5 BCE(x_hat, x) + beta mean_showers KL

  with x = 0.9 x the layer-normalized voxels (data and reconstruction), the means over showers
  and voxels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from calobench.geometry import Geometry
from calobench.nn.gaussian import gaussian_kl
from calobench.nn.mlp import mlp


class MLPVAE(nn.Module):
    """Encoder ``[features, condition] -> (mu, logvar)`` and decoder ``[z, condition] -> features``,
    MLPs with ReLU (``CVAE._set_submodels``; the decoder's widths reversed)."""

    def __init__(self, features: int, condition: int, hidden: Sequence[int], latent: int) -> None:
        super().__init__()
        if latent < 1:
            raise ValueError(f"latent must be >= 1, got {latent}")
        self.latent = int(latent)
        self.encoder = mlp(features + condition, 2 * latent, list(hidden), act="relu")
        self.decoder = mlp(latent + condition, features, list(hidden)[::-1], act="relu")

    def encode(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(torch.cat([x, c], dim=1)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.cat([z, c], dim=1))


def kernel_windows(n_layers: int, size: int, stride: int) -> list[tuple[int, int]]:
    """The Kernel VAE's layer windows ``[start, end)``: block b covers the layers within
    ``(size - 1) / 2`` of layer ``b * stride``, clipped to the calorimeter; ``ceil(n / stride)`` blocks.
    On DS3 (45 layers, stride 5) the last window ends at layer 43: layer 44 is in none (as published)."""
    if size < 1 or stride < 1:
        raise ValueError(f"kernel size and stride must be >= 1, got {size}, {stride}")
    blocks = -(-n_layers // stride)
    half = (size - 1) // 2
    return [(max(0, b * stride - half), min(n_layers, b * stride + half + 1)) for b in range(blocks)]


def block_mlp(in_features: int, out_features: int, hidden: Sequence[int]) -> nn.Sequential:
    """The published ``Block`` / gathering subnet: ReLU *before* every hidden linear layer (the first
    one acts on the input), none between the last hidden layer and the output layer:
    ``ReLU, L(in, h1), ReLU, L(h1, h2), ..., L(h_k, out)``."""
    hidden = list(hidden)
    if not hidden:
        return nn.Sequential(nn.ReLU(), nn.Linear(in_features, out_features))
    body = mlp(in_features, hidden[-1], hidden[:-1], act="relu")
    return nn.Sequential(nn.ReLU(), body, nn.Linear(hidden[-1], out_features))


class KernelVAE(nn.Module):
    """The Kernel VAE of DS2 / DS3 (``KernelVAE``, ``KernelEncoder``, ``KernelDecoder``).

    Encoder: block b gets the voxels of its layer window and the condition, :func:`block_mlp` with
    ``kernel_hidden`` -> ``kernel_latent``; the gathering :func:`block_mlp` with ``hidden`` maps all
    block outputs and the condition to ``(mu, logvar)``. Decoder: the gathering MLP (``hidden``
    reversed) maps ``[z, condition]`` to ``blocks x kernel_latent``; block b maps its slice and the
    *last* ``condition`` values of that gathering output (the published code's wiring: it slices
    ``x[..., -cond_dim:]`` after overwriting x with the gathering output) to its window's voxels
    (``kernel_hidden`` reversed); overlapping windows add up, voxels in no window stay 0.
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        condition: int,
        hidden: Sequence[int],
        latent: int,
        *,
        kernel_size: int,
        kernel_stride: int,
        kernel_hidden: Sequence[int],
        kernel_latent: int,
    ) -> None:
        super().__init__()
        if latent < 1 or kernel_latent < 1:
            raise ValueError(f"latent sizes must be >= 1, got {latent} and {kernel_latent}")
        self.latent = int(latent)
        self.kernel_latent = int(kernel_latent)
        self.condition = int(condition)
        bounds = [0]
        for size in layer_sizes:
            bounds.append(bounds[-1] + int(size))
        self.n_voxels = bounds[-1]
        self.slices = [(bounds[a], bounds[b]) for a, b in kernel_windows(len(layer_sizes), kernel_size, kernel_stride)]
        n_blocks = len(self.slices)
        if n_blocks * self.kernel_latent < self.condition:
            raise ValueError(
                f"the Kernel VAE's decoder blocks read the last {self.condition} gathering outputs: "
                f"{n_blocks} blocks x kernel_latent {self.kernel_latent} must be at least that"
            )
        self.encoder_blocks = nn.ModuleList(
            block_mlp(stop - start + self.condition, self.kernel_latent, kernel_hidden) for start, stop in self.slices
        )
        self.encoder_gather = block_mlp(n_blocks * self.kernel_latent + self.condition, 2 * self.latent, hidden)
        self.decoder_gather = block_mlp(self.latent + self.condition, n_blocks * self.kernel_latent, list(hidden)[::-1])
        self.decoder_blocks = nn.ModuleList(
            block_mlp(self.kernel_latent + self.condition, stop - start, list(kernel_hidden)[::-1])
            for start, stop in self.slices
        )

    def encode(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = [block(torch.cat([x[:, a:b], c], dim=1)) for block, (a, b) in zip(self.encoder_blocks, self.slices)]
        mu, logvar = self.encoder_gather(torch.cat([*outputs, c], dim=1)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        gathered = self.decoder_gather(torch.cat([z, c], dim=1))
        tail = gathered[:, -self.condition :]
        out = gathered.new_zeros(len(z), self.n_voxels)
        k = self.kernel_latent
        for i, (block, (a, b)) in enumerate(zip(self.decoder_blocks, self.slices)):
            out[:, a:b] = out[:, a:b] + block(torch.cat([gathered[:, i * k : (i + 1) * k], tail], dim=1))
        return out


# ---------------------------------------------------------------------- smearing
def published_neighbours(index: int, n_alpha: int, n_radial: int) -> list[int]:
    """The neighbours of voxel ``index`` (``alpha * n_radial + r``) of a cylindrical layer as
    ``CVAE._get_smearing_matrix`` lists them: the angular neighbours wrap around, and below the
    innermost ring lies the voxel on the opposite side (``index + n_alpha // 2 * n_radial``). In a
    layer with one angular bin the innermost voxel is its own neighbour (published)."""
    size = n_alpha * n_radial
    i, j = divmod(index, n_radial)
    neighbours: list[int] = []

    def across(k: int) -> int:
        return (k + n_alpha // 2 * n_radial) % size

    left = index - n_radial if i > 0 else index + n_radial * (n_alpha - 1)
    if left != index:
        neighbours.append(left)
        neighbours.append(left - 1 if j > 0 else across(left))
        if j < n_radial - 1:
            neighbours.append(left + 1)
    right = index + n_radial if i < n_alpha - 1 else index - n_radial * (n_alpha - 1)
    if right != index:
        neighbours.append(right)
        neighbours.append(right - 1 if j > 0 else across(right))
        if j < n_radial - 1:
            neighbours.append(right + 1)
    neighbours.append(index - 1 if j > 0 else across(index))
    if j < n_radial - 1:
        neighbours.append(index + 1)
    return neighbours


def _cartesian_neighbours(index: int, n_rows: int, n_cols: int) -> list[int]:
    """The 8 grid neighbours inside a Cartesian (CaloGAN) layer."""
    row, col = divmod(index, n_cols)
    return [
        (row + dr) * n_cols + col + dc
        for dr in (-1, 0, 1)
        for dc in (-1, 0, 1)
        if (dr or dc) and 0 <= row + dr < n_rows and 0 <= col + dc < n_cols
    ]


def smearing_matrix(geometry: Geometry, self_weight: float = 0.6, share_weight: float = 0.05) -> torch.Tensor:
    """The (V, V) smearing matrix S of the loss, sparse: ``S[i, i] = self_weight`` and
    ``S[i, n] = share_weight`` for every neighbour n of voxel i (:func:`published_neighbours`; a
    neighbour equal to i overwrites the self weight, as in the published loop). The loss smears a
    row vector as ``d @ S``; this returns S transposed (COO, float32), so that ``S^T d^T`` is one
    sparse product. CaloGAN's Cartesian layers (not in the paper) take their 8 grid neighbours.
    """
    rows: list[int] = []
    cols: list[int] = []
    values: list[float] = []
    offset = 0
    for layer_id, size in zip(geometry.layer_ids, geometry.layer_sizes):
        n_a, n_b = geometry.layer_shape(layer_id)
        for index in range(size):
            weights = {index: self_weight}
            near = (
                published_neighbours(index, n_a, n_b)
                if geometry.kind == "cylindrical"
                else _cartesian_neighbours(index, n_a, n_b)
            )
            for neighbour in near:
                weights[neighbour] = share_weight
            for column, weight in weights.items():
                rows.append(offset + index)
                cols.append(offset + column)
                values.append(weight)
        offset += size
    indices = torch.tensor([cols, rows], dtype=torch.long)  # transposed
    n = geometry.n_voxels
    return torch.sparse_coo_tensor(indices, torch.tensor(values), (n, n), check_invariants=True).coalesce()


def smear(values: torch.Tensor, smearing_t: torch.Tensor) -> torch.Tensor:
    """``values @ S`` for (B, V) values and the transposed matrix of :func:`smearing_matrix`."""
    return torch.sparse.mm(smearing_t, values.t().to(smearing_t.dtype)).t().to(values.dtype)


# ---------------------------------------------------------------------- loss
def vae_loss(
    shares_hat: torch.Tensor,
    shares: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    *,
    smearing_t: torch.Tensor,
    alpha: float,
    gamma: float,
    beta: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The published loss of one batch (``CVAE.reco_loss`` with ``BCE_mode: discrete``,
    ``VAE_MAE_logit: True``) and its three terms.

    ``shares_hat`` and ``shares`` are ``0.9 x`` the layer-normalized reconstructed and true voxels
    (:func:`calobench_caloinn.preprocessing.loss_shares`); the logit is ``logit(a + (1 - 2a) x)``.
    Every mean runs over showers and voxels (torch's ``reduction="mean"``), the KL term is summed
    over the latent and averaged over showers.
    """
    from calobench_caloinn.preprocessing import vae_logit

    logit_term = 0.5 * smear(vae_logit(shares_hat, alpha) - vae_logit(shares, alpha), smearing_t).abs().mean()
    bce = 0.5 * F.binary_cross_entropy(shares_hat, shares, reduction="mean")
    kl = gaussian_kl(mu, logvar).mean()
    total = logit_term + gamma * bce + beta * kl
    return total, {"logit_mae": float(logit_term.detach()), "bce": float(bce.detach()), "kl": float(kl.detach())}
