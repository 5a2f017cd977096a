"""Convolutions on the cylindrical grid of CaloChallenge datasets 2 and 3 (arXiv 2410.21611).

A shower of a geometry whose layers all have the same ``(n_alpha, n_r)`` binning is a 3-D image
``(layer, angle, radius)`` (the flat CaloChallenge order reshaped: radial bin fastest, then angle,
then layer; :func:`as_cylinder`). The angular axis closes on itself, so a convolution along it pads
circularly (the first bin neighbours the last), while the layer and radial axes pad with zeros --
as the cylindrical convolutions of CaloDiffusion (Amram & Pedro, arXiv 2308.03876) do.
:class:`CylindricalConv3d` is that convolution; shared by every convolutional model of such showers.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from calobench.geometry import Geometry


def cylinder_shape(geometry: Geometry) -> tuple[int, int, int] | None:
    """``(n_layers, n_alpha, n_r)`` if every layer of ``geometry`` has the same cylindrical binning,
    else ``None`` (irregular layers, as in dataset 1, or the Cartesian CaloGAN layout)."""
    if geometry.kind != "cylindrical":
        return None
    shapes = {layer.shape for layer in geometry.layers}
    if len(shapes) != 1:
        return None
    (n_alpha, n_r) = shapes.pop()
    return geometry.n_layers, n_alpha, n_r


def as_cylinder(voxels: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """(B, n_voxels) in the flat CaloChallenge order -> (B, 1, n_layers, n_alpha, n_r)."""
    return voxels.reshape(voxels.shape[0], 1, *shape)


class CylindricalConv3d(nn.Module):
    """``Conv3d`` over (layer, angle, radius) with "same" padding: circular along the angle, zeros
    along layer and radius. With stride s the output has ``ceil(n / s)`` bins per axis (odd kernels).

    Args:
        in_channels, out_channels: channels.
        kernel_size: an odd int or (k_layer, k_angle, k_radius).
        stride: int or per-axis strides.
        bias: learn a bias.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int, int] = 3,
        stride: int | tuple[int, int, int] = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        sizes = (kernel_size,) * 3 if isinstance(kernel_size, int) else tuple(kernel_size)
        kernel = (int(sizes[0]), int(sizes[1]), int(sizes[2]))
        if any(k % 2 == 0 for k in kernel):
            raise ValueError(f"kernel sizes must be odd for 'same' padding, got {kernel}")
        self.padding = tuple(k // 2 for k in kernel)
        self.conv = nn.Conv3d(in_channels, out_channels, kernel, stride=stride, padding=0, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, n_layers, n_alpha, n_r) -> (B, C_out, ...)."""
        pad_layer, pad_angle, pad_radius = self.padding
        if pad_angle:
            n_alpha = x.shape[3]
            if pad_angle <= n_alpha:
                x = torch.cat([x[:, :, :, n_alpha - pad_angle :], x, x[:, :, :, :pad_angle]], dim=3)
            else:  # fewer bins than the padding: wrap around several times
                index = torch.arange(-pad_angle, n_alpha + pad_angle, device=x.device) % n_alpha
                x = x.index_select(3, index)
        if pad_layer or pad_radius:
            x = F.pad(x, (pad_radius, pad_radius, 0, 0, pad_layer, pad_layer))
        return self.conv(x)
