"""Cylindrical 3-D convolutions (calobench.nn.cylindrical): circular in angle, zero-padded in layer and radius."""

from __future__ import annotations

import pytest
import torch

from calobench.geometry import builtin_geometry
from calobench.nn.cylindrical import CylindricalConv3d, as_cylinder, cylinder_shape


def test_cylinder_shapes_of_the_builtin_geometries():
    assert cylinder_shape(builtin_geometry("ds2")) == (45, 16, 9)
    assert cylinder_shape(builtin_geometry("ds3")) == (45, 50, 18)
    assert cylinder_shape(builtin_geometry("ds1-photons")) is None  # irregular layers
    assert cylinder_shape(builtin_geometry("calogan")) is None  # Cartesian


def test_as_cylinder_follows_the_flat_order():
    shape = (3, 4, 2)
    flat = torch.arange(24.0).reshape(1, 24)
    grid = as_cylinder(flat, shape)
    assert grid.shape == (1, 1, 3, 4, 2)
    assert grid[0, 0, 1, 2, 1] == 1 * 8 + 2 * 2 + 1  # layer, angle, radius (radius fastest)


def test_rotating_the_input_in_angle_rotates_the_output():
    torch.manual_seed(0)
    conv = CylindricalConv3d(2, 3, kernel_size=3)
    x = torch.randn(4, 2, 5, 8, 6)
    out = conv(x)
    assert out.shape == (4, 3, 5, 8, 6)
    torch.testing.assert_close(conv(torch.roll(x, 3, dims=3)), torch.roll(out, 3, dims=3))
    # but not in radius: the radial axis has edges (zero padding)
    assert not torch.allclose(conv(torch.roll(x, 1, dims=4)), torch.roll(out, 1, dims=4))


def test_padding_is_circular_in_angle_and_zero_elsewhere():
    conv = CylindricalConv3d(1, 1, kernel_size=3, bias=False)
    with torch.no_grad():
        conv.conv.weight.fill_(1.0)  # box sum over the 3x3x3 neighbourhood
    x = torch.zeros(1, 1, 3, 4, 3)
    x[0, 0, 0, 0, 0] = 1.0  # first layer, first angle bin, innermost radius
    with torch.no_grad():
        out = conv(x)[0, 0]
    assert out[0, 3, 0] == 1.0  # the last angle bin neighbours the first
    assert out[0, 2, 0] == 0.0
    assert out[1, 1, 1] == 1.0 and out[2, 0, 0] == 0.0
    assert float(out.sum()) == 2 * 3 * 2  # 2 layers x 3 angles (wrapped) x 2 radii: zeros beyond the edges


@pytest.mark.parametrize("stride", [2, (2, 1, 2)])
def test_strided_output_size_and_even_kernels(stride):
    conv = CylindricalConv3d(1, 2, kernel_size=3, stride=stride)
    out = conv(torch.randn(2, 1, 45, 16, 9))
    expected = (23, 8, 5) if stride == 2 else (23, 16, 5)
    assert out.shape == (2, 2, *expected)
    with pytest.raises(ValueError, match="odd"):
        CylindricalConv3d(1, 1, kernel_size=4)
