"""The BIB-AE's networks for three kinds of geometry (Buhmann et al., arXiv 2005.05334; models.md sec. 3.1).

Every network is conditioned on the incident energy through a conditioning vector ``c`` (the
standardized log E_inc): concatenated to the encoder's features, to the decoder's input, to the
critic's branches and to the post-processor's conditioning MLP (models.md sec. 3.3).

The shower-specific parts -- a **feature extractor** (B, V) -> (B, F) and a **decoder body**
(B, H) -> (B, V) -- come in three variants (:func:`architecture_for`):

* ``conv3d`` (datasets 2 and 3): the shower as a 3-D image (layer, angle, radius), strided
  :class:`~calobench.nn.cylindrical.CylindricalConv3d` blocks (circular padding along the angle,
  GroupNorm(1, C) -- a layer norm over channels and space -- and LeakyReLU(0.2)) down to a small
  grid; the decoder mirrors it with nearest-neighbour upsampling and cylindrical convolutions, as
  the published 3-D BIB-AE (4 Conv3d + LayerNorm + LeakyReLU(0.2) down, ConvTranspose3d / Conv3d up);
* ``layer_conv`` (CaloGAN's three Cartesian layers of different shapes): a 2-D conv stack per layer,
  features concatenated; the decoder has one upsampling 2-D conv head per layer;
* ``mlp`` (dataset 1: layers with different (angle, radius) binnings that no grid holds): MLPs.

Linear layers and MLPs come from :func:`calobench.nn.mlp.mlp`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from calobench.errors import ConfigError
from calobench.geometry import Geometry
from calobench.nn.cylindrical import CylindricalConv3d, cylinder_shape
from calobench.nn.mlp import mlp

ARCHITECTURES = ("auto", "mlp", "conv3d", "layer_conv")
SLOPE = 0.2  # LeakyReLU slope of the published networks


def architecture_for(geometry: Geometry, requested: str = "auto") -> str:
    """The network variant for ``geometry``: ``conv3d`` for equal cylindrical layers binned in angle,
    ``layer_conv`` for the Cartesian CaloGAN layout, ``mlp`` otherwise (or the requested one)."""
    if requested not in ARCHITECTURES:
        raise ConfigError(f"architecture must be one of {ARCHITECTURES}, got {requested!r}")
    shape = cylinder_shape(geometry)
    if requested == "conv3d" and shape is None:
        raise ConfigError(f"architecture conv3d needs equal cylindrical layers; {geometry.name} has none")
    if requested == "layer_conv" and geometry.kind != "cartesian":
        raise ConfigError(f"architecture layer_conv is for Cartesian layers; {geometry.name} is {geometry.kind}")
    if requested != "auto":
        return requested
    if shape is not None and shape[1] > 1:
        return "conv3d"
    if geometry.kind == "cartesian":
        return "layer_conv"
    return "mlp"


def _act() -> nn.Module:
    return nn.LeakyReLU(SLOPE)


def _halve(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple((n + 1) // 2 for n in shape)


# ---------------------------------------------------------------------- conv3d
class Conv3dFeatures(nn.Module):
    """(B, V) -> (B, F): stride-2 cylindrical convolutions, one per entry of ``channels``."""

    def __init__(self, shape: tuple[int, int, int], channels: Sequence[int]) -> None:
        super().__init__()
        self.shape = tuple(shape)
        layers: list[nn.Module] = []
        c_in, grid = 1, self.shape
        for c_out in channels:
            layers += [CylindricalConv3d(c_in, c_out, 3, stride=2), nn.GroupNorm(1, c_out), _act()]
            c_in, grid = c_out, _halve(grid)
        self.net = nn.Sequential(*layers)
        self.out_features = c_in * math.prod(grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(len(x), 1, *self.shape)).flatten(1)


def depth_to_space(h: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """(B, 8 C, l, a, r) -> (B, C, 2l, 2a, 2r) cropped to ``shape``: each coarse cell's 8 channel
    groups become its 2 x 2 x 2 sub-cells (the sub-pixel convolution of Shi et al., arXiv 1609.05158)."""
    b, c8, length, angle, radius = h.shape
    c = c8 // 8
    h = h.reshape(b, c, 2, 2, 2, length, angle, radius).permute(0, 1, 5, 2, 6, 3, 7, 4)
    h = h.reshape(b, c, 2 * length, 2 * angle, 2 * radius)
    return h[:, :, : shape[0], : shape[1], : shape[2]]


class Conv3dDecoder(nn.Module):
    """(B, H) -> (B, V): MLP to the coarsest grid, then (upsample, cylindrical conv, norm, LeakyReLU)
    per level back up the encoder's grids; the last convolution, on the grid of half resolution,
    makes 8 values per cell that :func:`depth_to_space` spreads over its 2 x 2 x 2 voxels. (A 3-D
    convolution to one channel at full resolution costs several times more on a CPU; the published
    decoder upsamples with a ConvTranspose3d.)"""

    def __init__(self, in_features: int, shape: tuple[int, int, int], channels: Sequence[int], hidden: Sequence[int]):
        super().__init__()
        grids = [tuple(shape)]
        for _ in channels:
            grids.append(_halve(grids[-1]))
        self.shape = tuple(shape)
        self.start = (channels[-1], *grids[-1])
        self.fc = nn.Sequential(mlp(in_features, math.prod(self.start), hidden, act="leaky_relu"), _act())
        layers: list[nn.Module] = []
        for level in reversed(range(1, len(channels))):  # grid `level` carries channels[level - 1]
            layers += [
                nn.Upsample(size=grids[level], mode="nearest"),
                CylindricalConv3d(channels[level], channels[level - 1], 3),
                nn.GroupNorm(1, channels[level - 1]),
                _act(),
            ]
        if len(channels) == 1:
            layers.append(nn.Identity())
        layers.append(CylindricalConv3d(channels[0], 8, 3))
        self.net = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        coarse = self.net(self.fc(h).reshape(len(h), *self.start))
        return depth_to_space(coarse, self.shape).reshape(len(h), -1)


# ---------------------------------------------------------------------- per-layer 2-D convs
def _conv2d(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)


class LayerConvFeatures(nn.Module):
    """(B, V) -> (B, F): a stride-2 2-D conv stack per layer (zero padding), features concatenated."""

    def __init__(self, layer_shapes: Sequence[tuple[int, int]], channels: Sequence[int]) -> None:
        super().__init__()
        self.layer_shapes = [tuple(s) for s in layer_shapes]
        self.sizes = [h * w for h, w in self.layer_shapes]
        self.stacks = nn.ModuleList()
        self.out_features = 0
        for shape in self.layer_shapes:
            layers: list[nn.Module] = []
            c_in, grid = 1, shape
            for c_out in channels:
                layers += [_conv2d(c_in, c_out, 2), nn.GroupNorm(1, c_out), _act()]
                c_in, grid = c_out, _halve(grid)
            self.stacks.append(nn.Sequential(*layers))
            self.out_features += c_in * math.prod(grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = torch.split(x, self.sizes, dim=1)
        return torch.cat(
            [
                stack(part.reshape(len(x), 1, *shape)).flatten(1)
                for stack, part, shape in zip(self.stacks, parts, self.layer_shapes)
            ],
            dim=1,
        )


class LayerConvDecoder(nn.Module):
    """(B, H) -> (B, V): a shared MLP, then per layer a linear map to a coarse grid and (upsample,
    2-D conv) levels up to the layer's shape."""

    def __init__(
        self, in_features: int, layer_shapes: Sequence[tuple[int, int]], channels: Sequence[int], hidden: Sequence[int]
    ) -> None:
        super().__init__()
        width = hidden[-1] if hidden else in_features
        self.trunk = (
            nn.Sequential(mlp(in_features, width, hidden[:-1], act="leaky_relu"), _act()) if hidden else nn.Identity()
        )
        self.heads = nn.ModuleList()
        self.starts: list[tuple[int, ...]] = []
        for shape in layer_shapes:
            grids = [tuple(shape)]
            for _ in channels:
                grids.append(_halve(grids[-1]))
            start = (channels[-1], *grids[-1])
            layers: list[nn.Module] = [nn.Linear(width, math.prod(start)), _act()]
            for level in reversed(range(1, len(channels))):
                layers += [
                    nn.Upsample(size=grids[level], mode="nearest"),
                    _conv2d(channels[level], channels[level - 1]),
                    nn.GroupNorm(1, channels[level - 1]),
                    _act(),
                ]
            layers += [nn.Upsample(size=grids[0], mode="nearest"), _conv2d(channels[0], 1)]
            self.heads.append(nn.Sequential(*layers))
            self.starts.append(start)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        trunk = self.trunk(h)
        outputs = []
        for head, start in zip(self.heads, self.starts):
            linear, act, *rest = head
            grid = act(linear(trunk)).reshape(len(h), *start)
            for layer in rest:
                grid = layer(grid)
            outputs.append(grid.flatten(1))
        return torch.cat(outputs, dim=1)


# ---------------------------------------------------------------------- MLP
class MLPFeatures(nn.Module):
    """(B, V) -> (B, F): an MLP with layer norm and LeakyReLU(0.2) after every layer."""

    def __init__(self, n_voxels: int, hidden: Sequence[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_voxels
        for size in hidden:
            layers += [nn.Linear(width, size), nn.LayerNorm(size), _act()]
            width = size
        self.net = nn.Sequential(*layers)
        self.out_features = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MLPDecoder(nn.Module):
    """(B, H) -> (B, V): an MLP with layer norm and LeakyReLU(0.2) between its layers."""

    def __init__(self, in_features: int, n_voxels: int, hidden: Sequence[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.LayerNorm(size), _act()]
            width = size
        layers.append(nn.Linear(width, n_voxels))
        self.net = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


# ---------------------------------------------------------------------- builders
def build_features(geometry: Geometry, architecture: str, channels: Sequence[int], hidden: Sequence[int]) -> nn.Module:
    """A feature extractor for ``geometry``: conv channels for ``conv3d`` / ``layer_conv``, MLP widths for ``mlp``."""
    if architecture == "conv3d":
        shape = cylinder_shape(geometry)
        assert shape is not None
        return Conv3dFeatures(shape, channels)
    if architecture == "layer_conv":
        return LayerConvFeatures([layer.shape for layer in geometry.layers], channels)
    return MLPFeatures(geometry.n_voxels, hidden)


def build_decoder_body(
    geometry: Geometry, architecture: str, in_features: int, channels: Sequence[int], hidden: Sequence[int]
) -> nn.Module:
    """A decoder body (B, in_features) -> (B, V) pre-activations for ``geometry``."""
    if architecture == "conv3d":
        shape = cylinder_shape(geometry)
        assert shape is not None
        return Conv3dDecoder(in_features, shape, channels, hidden)
    if architecture == "layer_conv":
        return LayerConvDecoder(in_features, [layer.shape for layer in geometry.layers], channels, hidden)
    return MLPDecoder(in_features, geometry.n_voxels, hidden)


# ---------------------------------------------------------------------- the BIB-AE's modules
class Encoder(nn.Module):
    """q(z | x, E): features of the shower (the generator passes log(1 + x / x0)), concatenated with
    ``c``, an MLP to (mu, log var) of the encoded latent dimensions (published: conv features ->
    FC 4000 -> FC 1.5 z -> mu, logvar heads)."""

    def __init__(self, features: nn.Module, cond_dim: int, hidden: Sequence[int], n_encoded: int) -> None:
        super().__init__()
        self.features = features
        self.head = nn.Sequential(
            mlp(features.out_features + cond_dim, 2 * n_encoded, hidden, act="leaky_relu", layer_norm=True)
        )

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.cat([self.features(x), c], dim=1)
        mu, logvar = self.head(h).chunk(2, dim=1)
        return mu, logvar


class Decoder(nn.Module):
    """p(x | z, E): the decoder body on [z, c], then ReLU (exact zeros, as the published decoder);
    the output is in the generator's network space (x itself, or log(1 + x / x0))."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(torch.cat([z, c], dim=1)))


class ShowerCritic(nn.Module):
    """The published shower critic on a pair (x, x_hat) (``Discriminator_F_Conv_DIRENR_Diff_v3``):
    a feature branch on x_hat, one on log(1 + x_hat / x0), a linear branch on x_hat - x and an embedding
    of ``c``, each to width/2 with LeakyReLU(0.2), then three hidden layers of 2 width and one output.
    The real pair is (x, x), the fake one (x, x_hat): it judges realism and reconstruction at once."""

    def __init__(
        self, linear: nn.Module, log: nn.Module, n_voxels: int, cond_dim: int, width: int, log_scale: float = 1.0
    ) -> None:
        super().__init__()
        half = max(1, width // 2)
        self.log_scale = float(log_scale)
        self.linear_branch, self.log_branch = linear, log
        self.fc_linear = nn.Linear(linear.out_features, half)
        self.fc_log = nn.Linear(log.out_features, half)
        self.fc_difference = nn.Linear(n_voxels, half)
        self.fc_energy = nn.Linear(cond_dim, half)
        self.head = mlp(4 * half, 1, [2 * width] * 3, act="leaky_relu")

    def forward(self, x: torch.Tensor, x_hat: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        act = _act()
        parts = [
            act(self.fc_linear(self.linear_branch(x_hat))),
            act(self.fc_log(self.log_branch(torch.log1p(x_hat / self.log_scale)))),
            act(self.fc_difference(x_hat - x)),
            act(self.fc_energy(c)),
        ]
        return self.head(torch.cat(parts, dim=1)).squeeze(1)


class LatentCritic(nn.Module):
    """The published per-component latent critic: one 1-50-100-50-1 MLP (LeakyReLU) applied to every
    latent component separately; (B, k) -> (B, k) scores."""

    def __init__(self, hidden: Sequence[int] = (50, 100, 50)) -> None:
        super().__init__()
        self.net = mlp(1, 1, list(hidden), act="leaky_relu")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.reshape(-1, 1)).reshape(z.shape)


class PostProcessor(nn.Module):
    """The published per-voxel post-processor (``PostProcess_Size1Conv_EcondV2``).

    Every voxel goes through the same 1x1x1 convolutions (here matrix products with the (B, C, V)
    activations: one shared map per voxel); the conditioning MLP of (energy sum of x_hat, ``c``) is
    broadcast to every voxel after the first layer (its share of the second layer is added per
    shower, the same as concatenating it to every voxel); layer norms over the voxels of each
    channel with a per-voxel scale and shift (the published ``LayerNorm([30, 30, 30])``) after the
    first four layers; LeakyReLU(0.01); ReLU output. One change: the network predicts a correction
    added to x_hat, its last layer zero-initialized, so that it starts as the identity (the published
    one learns the identity in its MSE pretraining; this saves that time on a CPU).
    """

    def __init__(self, n_voxels: int, cond_dim: int, width: int, noise: bool = False) -> None:
        super().__init__()
        half = max(1, width // 2)
        self.noise = bool(noise)
        self.condition = mlp(1 + cond_dim, half, [half, half], act="leaky_relu")
        self.first = nn.Linear(1 + int(self.noise), width, bias=False)
        self.position = nn.Parameter(torch.zeros(width, n_voxels))  # a learned per-voxel offset
        self.condition_in = nn.Linear(half, width, bias=False)
        self.layers = nn.ModuleList([nn.Linear(width, width, bias=False) for _ in range(4)])
        self.norms = nn.ModuleList([nn.LayerNorm(n_voxels) for _ in range(4)])
        self.last = nn.Linear(width, 1, bias=False)
        nn.init.zeros_(self.last.weight)  # starts as the identity (residual output)

    def forward(
        self, x_hat: torch.Tensor, energy: torch.Tensor, c: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``x_hat`` (B, V) in network space, ``energy`` (B, 1) its energy sum / E_inc, ``c`` (B, 1);
        ``noise`` (B, V) N(0, 1) per voxel if the post-processor was built with ``noise=True``."""
        act = nn.LeakyReLU(0.01)
        cond = act(self.condition(torch.cat([energy, c], dim=1)))
        inputs = x_hat.unsqueeze(1)
        if self.noise:
            if noise is None:
                raise ValueError("this post-processor takes a noise input")
            inputs = torch.cat([inputs, noise.unsqueeze(1)], dim=1)
        h = act(self.norms[0](self.first.weight @ inputs + self.position))  # (B, C, V)
        for index, layer in enumerate(self.layers):
            h = layer.weight @ h
            if index == 0:
                h = h + self.condition_in(cond).unsqueeze(2)
            if index + 1 < len(self.norms):
                h = self.norms[index + 1](h)
            h = act(h)
        return F.relu(x_hat + (self.last.weight @ h).squeeze(1))
