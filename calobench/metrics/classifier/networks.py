"""Classifier networks: the CaloChallenge DNN, a 3-D ResNet-18 and a per-layer CNN.

Every network maps a batch of flat float32 inputs (N, d) to logits (N,). The CNNs take the
low-level inputs ``[log10 E_inc, voxel / E_inc]`` (see :mod:`.inputs`) and reshape the voxels
themselves, so that all classifiers share one input builder and one training loop.

* :class:`DNN` -- the fully connected classifier of the CaloChallenge (arXiv 2410.21611):
  ``Linear(d, w) + LeakyReLU(0.01)``, ``n_hidden - 1`` more ``Linear(w, w) + LeakyReLU``,
  ``Linear(w, 1)``; the paper uses w = 2048, three hidden layers, no dropout.
* :class:`ResNet3D` -- a 3-D ResNet-18 (He et al., arXiv 1512.03385, with 3-D convolutions as in
  Hara et al., arXiv 1711.09577) on the shower as a (1, n_layers, n_alpha, n_r) volume, with
  log10 E_inc appended to the pooled features before the final linear layer, as used for datasets
  2 and 3 in the CaloChallenge paper.
* :class:`LayerCNN` -- for the CaloGAN layout: each layer image through its own small conv stack,
  the flattened maps concatenated with log10 E_inc, then a small MLP (as the CNN classifier of
  the CaloFlow talks, arXiv 2106.05285).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from calobench.geometry import Geometry

LEAKY_SLOPE = 0.01


class Affine(nn.Module):
    """Fixed input map ``(x - shift) @ matrix`` (or ``/ scale`` elementwise), saved with the weights."""

    shift: torch.Tensor  # buffers, registered in __init__
    transform: torch.Tensor

    def __init__(self, shift: torch.Tensor, transform: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("shift", shift.detach().clone().float())
        self.register_buffer("transform", transform.detach().clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - self.shift
        return centred @ self.transform if self.transform.dim() == 2 else centred * self.transform


class DNN(nn.Module):
    """Fully connected binary classifier returning logits.

    ``preprocess`` = (shift, transform) puts a fixed :class:`Affine` input map in front (see
    :func:`calobench.metrics.classifier.training.input_transform`; not part of the published
    network, which sees the raw inputs).
    """

    def __init__(
        self,
        n_inputs: int,
        width: int = 2048,
        n_hidden: int = 3,
        dropout: float = 0.0,
        preprocess: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        if n_hidden < 1:
            raise ValueError(f"the DNN needs at least one hidden layer, got {n_hidden}")
        layers: list[nn.Module] = [] if preprocess is None else [Affine(*preprocess)]
        size = n_inputs
        for _ in range(n_hidden):
            layers += [nn.Linear(size, width), nn.LeakyReLU(LEAKY_SLOPE)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            size = width
        layers.append(nn.Linear(size, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


class BasicBlock3d(nn.Module):
    """ResNet basic block with 3-D convolutions (two 3x3x3 convs, batch norm, identity shortcut)."""

    def __init__(self, channels_in: int, channels_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(channels_in, channels_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(channels_out)
        self.conv2 = nn.Conv3d(channels_out, channels_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(channels_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or channels_in != channels_out:
            self.shortcut = nn.Sequential(
                nn.Conv3d(channels_in, channels_out, 1, stride=stride, bias=False), nn.BatchNorm3d(channels_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet3D(nn.Module):
    """3-D ResNet (default: ResNet-18, blocks (2, 2, 2, 2), channels c, 2c, 4c, 8c; paper c = 64).

    The stem is one 3x3x3 convolution without pooling (the volumes are small: 45 x 16 x 9 for
    dataset 2, 45 x 50 x 18 for dataset 3); the last three stages halve every dimension.
    """

    def __init__(self, volume: tuple[int, int, int], channels: int = 64, blocks: Sequence[int] = (2, 2, 2, 2)) -> None:
        super().__init__()
        self.volume = tuple(volume)
        self.stem = nn.Sequential(
            nn.Conv3d(1, channels, 3, padding=1, bias=False), nn.BatchNorm3d(channels), nn.ReLU(inplace=True)
        )
        stages: list[nn.Module] = []
        width = channels
        for index, n_blocks in enumerate(blocks):
            out = channels * 2**index
            for block in range(n_blocks):
                stages.append(BasicBlock3d(width, out, stride=2 if (index > 0 and block == 0) else 1))
                width = out
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.head = nn.Linear(width + 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_e_inc, voxels = x[:, :1], x[:, 1:]
        volume = voxels.reshape(len(x), 1, *self.volume)
        features = self.pool(self.stages(self.stem(volume))).flatten(1)
        return self.head(torch.cat([features, log_e_inc], dim=1)).squeeze(-1)


class LayerCNN(nn.Module):
    """One small conv stack per layer image; flattened maps + log10 E_inc into a two-layer MLP."""

    def __init__(self, layer_shapes: Sequence[tuple[int, int]], channels: int = 16, width: int = 256) -> None:
        super().__init__()
        self.layer_shapes = [tuple(shape) for shape in layer_shapes]
        self.stacks = nn.ModuleList()
        n_features = 1
        for rows, cols in self.layer_shapes:
            self.stacks.append(
                nn.Sequential(
                    nn.Conv2d(1, channels, 3, padding=1),
                    nn.LeakyReLU(LEAKY_SLOPE),
                    nn.Conv2d(channels, channels, 3, padding=1),
                    nn.LeakyReLU(LEAKY_SLOPE),
                    nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1),
                    nn.LeakyReLU(LEAKY_SLOPE),
                    nn.Flatten(),
                )
            )
            n_features += 2 * channels * ((rows + 1) // 2) * ((cols + 1) // 2)
        self.head = nn.Sequential(
            nn.Linear(n_features, width),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Linear(width, width),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Linear(width, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [x[:, :1]]
        start = 1
        for (rows, cols), stack in zip(self.layer_shapes, self.stacks):
            image = x[:, start : start + rows * cols].reshape(len(x), 1, rows, cols)
            parts.append(stack(image))
            start += rows * cols
        return self.head(torch.cat(parts, dim=1)).squeeze(-1)


def cnn_kind(geometry: Geometry) -> str | None:
    """``"resnet3d"`` for regular cylindrical geometries (every layer the same n_alpha x n_r, with
    n_alpha > 1: datasets 2 and 3), ``"layer_cnn"`` for the Cartesian CaloGAN layout, else None
    (dataset 1's layers differ in shape)."""
    if geometry.kind == "cartesian":
        return "layer_cnn"
    shapes = {layer.shape for layer in geometry.layers}
    if len(shapes) == 1 and next(iter(shapes))[0] > 1 and geometry.n_layers > 1:
        return "resnet3d"
    return None


def build_cnn(geometry: Geometry, channels: int, width: int = 256) -> nn.Module:
    """The CNN classifier suited to ``geometry`` (raises ValueError where none applies)."""
    kind = cnn_kind(geometry)
    if kind == "resnet3d":
        n_alpha, n_r = geometry.layers[0].shape
        return ResNet3D((geometry.n_layers, n_alpha, n_r), channels=channels)
    if kind == "layer_cnn":
        return LayerCNN([layer.shape for layer in geometry.layers], channels=channels, width=width)
    raise ValueError(f"no CNN classifier for geometry {geometry.name}: its layers are not images of one shape")


def n_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
