"""Exact (brute-force) nearest-neighbour distances with torch, chunked, on the CPU or a GPU.

Squared distances come from ``|a|^2 + |b|^2 - 2 a.b`` on one block of rows at a time, so memory
stays at one (block x n) matrix. Points are centred on the mean of the first sample before the
products (distances do not change, the cancellation in ``|a|^2 + |b|^2 - 2 a.b`` shrinks), which
keeps float32 accurate to ~1e-6 relative on calorimeter data; pass ``dtype=torch.float64`` for
more. Where a selected squared distance is within the rounding error of the products (near
duplicates), :func:`knn_distances` recomputes it from the coordinate differences, so exact
duplicates come out at exactly 0. These are exact neighbours, not an approximate index.
"""

from __future__ import annotations

import numpy as np
import torch

#: Elements of one block of the distance matrix (64 Mi elements = 256 MB in float32).
BLOCK_ELEMENTS = 1 << 26
#: Squared distances below this fraction of |a|^2 + |b|^2 are recomputed from differences.
REFINE_FRACTION = {torch.float32: 1e-3, torch.float64: 1e-10}
#: Elements of coordinate differences recomputed at once (64 MB in float32).
REFINE_ELEMENTS = 1 << 24


def as_tensor(x: "np.ndarray | torch.Tensor", device: "str | torch.device", dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=dtype, device=device)


def block_rows(n_columns: int) -> int:
    return max(1, BLOCK_ELEMENTS // max(n_columns, 1))


def squared_distances(a: torch.Tensor, b: torch.Tensor, b_norms: torch.Tensor | None = None) -> torch.Tensor:
    """(len(a), len(b)) squared Euclidean distances, clamped at 0."""
    if b_norms is None:
        b_norms = (b * b).sum(dim=1)
    result = (a * a).sum(dim=1, keepdim=True) + b_norms[None, :] - 2.0 * (a @ b.T)
    return result.clamp_(min=0.0)


def knn_distances(
    x: "np.ndarray | torch.Tensor",
    k: int,
    *,
    device: "str | torch.device" = "cpu",
    dtype: torch.dtype = torch.float32,
    centre: bool = True,
    refine: bool = True,
) -> torch.Tensor:
    """Distances (n, k) from every point to its k nearest *other* points, ascending (float64).

    The point itself is excluded by index, so exact duplicates count as neighbours at distance 0.
    ``centre=False`` skips the centring (for points already centred); ``refine=False`` returns the
    distances of the matrix products as they are, never recomputed from differences (so that they
    compare consistently with other distances computed the same way, as in PRDC).
    """
    points = as_tensor(x, device, dtype)
    n = len(points)
    if not 1 <= k < n:
        raise ValueError(f"k must be between 1 and n - 1 = {n - 1}, got {k}")
    if centre:
        points = points - points.mean(dim=0, keepdim=True)
    norms = (points * points).sum(dim=1)
    out = torch.empty((n, k), dtype=torch.float64, device=device)
    rows = block_rows(n)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        block = squared_distances(points[start:stop], points, norms)
        local = torch.arange(stop - start, device=device)
        block[local, local + start] = float("inf")
        nearest = torch.topk(block, k, dim=1, largest=False, sorted=True)
        del block
        squared = nearest.values.to(torch.float64)
        if refine:
            scale = norms[start:stop, None] + norms[nearest.indices]
            hit_rows, hit_columns = torch.nonzero(squared < REFINE_FRACTION.get(dtype, 1e-3) * scale, as_tuple=True)
            step = max(1, REFINE_ELEMENTS // points.shape[1])
            for a in range(0, len(hit_rows), step):
                r, c = hit_rows[a : a + step], hit_columns[a : a + step]
                diff = points[start + r] - points[nearest.indices[r, c]]
                squared[r, c] = diff.to(torch.float64).square().sum(dim=1)
        out[start:stop] = squared.sqrt()
    return out.sort(dim=1).values if refine else out
