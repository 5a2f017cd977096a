"""Centres of energy and widths of every layer, histogram-exact at a fraction of the official cost.

The official code (CaloChallenge/homepage ``code/HighLevelFeatures.py``) forms, per layer,
``EC_x = (x * E).sum(-1) / (E.sum(-1) + 1e-16)`` and
``width_x = sqrt(((x * x * E).sum(-1) / (E.sum(-1) + 1e-16) - EC_x**2).clip(min=0))``: elementwise
float64 products, numpy's pairwise sum per row, the denominator in the voxels' own type. Six such
passes over every voxel cost more than reading the file; calobench instead

1. computes the six weighted sums (and the float64 energy) of every layer with one float64 matrix
   product per layer (:func:`layer_sums`), and the denominator exactly as the official code forms
   it (given by the caller);
2. bounds how far each centre and width can be from the official value: two sums of the same n
   products in different orders differ by at most ``2 (n + 1) u sum|x E| <= 2 (n + 1) u max|x| E``
   (u = 2^-53, E >= 0 after the threshold), plus a few ulps for the divisions, and the width's
   error follows from ``|sqrt(a) - sqrt(b)| <= sqrt(|a - b|)``;
3. recomputes, the official way and bit for bit, every (shower, layer) whose centre or width lies
   within that bound of one of its histogram's edges (:func:`calobench.metrics.binning.linear_edges`;
   the edge at 0 of a width is skipped: no width lies below it). Layers without energy give 0
   exactly both ways.

The result fills every histogram exactly as the official values do; values far from all edges
may differ from the official ones in the last bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from calobench.geometry import Geometry
from calobench.metrics.binning import linear_edges

EPS = 1e-16
_U64 = float(np.finfo(np.float64).eps) / 2
#: Which columns of the weight matrix hold x and x^2 for each coordinate (column 0: the energy).
_COLUMNS = {"r": 1, "eta": 3, "phi": 5}


@dataclass(frozen=True)
class _Grid:
    """Evenly spaced edges ``start + k * step``, k = 0 ... n, per layer (arrays of shape (La,)), and
    the slack that covers linspace's rounding of them."""

    start: np.ndarray
    step: np.ndarray
    n: np.ndarray
    slack: np.ndarray

    @classmethod
    def of(cls, edges: list[np.ndarray]) -> "_Grid":
        start = np.array([e[0] for e in edges])
        n = np.array([len(e) - 1 for e in edges], dtype=np.float64)
        step = np.array([(e[-1] - e[0]) / (len(e) - 1) for e in edges])
        for e, a, s in zip(edges, start, step):
            if not np.allclose(e, a + s * np.arange(len(e)), rtol=0, atol=1e-9 * max(abs(e[0]), abs(e[-1]))):
                raise ValueError("the centre and width histograms need evenly spaced edges")
        slack = np.array([16 * _U64 * max(abs(e[0]), abs(e[-1])) for e in edges])
        return cls(start, step, n, slack)

    def near(self, values: np.ndarray, tolerance: np.ndarray) -> np.ndarray:
        """Where ``values`` (N, La) lie within ``tolerance`` of an edge (NaN counts as near)."""
        k = np.clip(np.rint((values - self.start) / self.step), 0, self.n)
        distance = np.abs(values - (self.start + k * self.step))
        return ~(distance > tolerance + self.slack)


@dataclass(frozen=True)
class _Coordinate:
    """One coordinate (r, eta or phi) over the layers that have it."""

    name: str
    layers: np.ndarray  # positions in geometry.layers
    largest: np.ndarray  # (La,) max |x| over each layer's voxels
    centre: _Grid
    width: _Grid  # without the edge at 0


@dataclass(frozen=True)
class MomentPlan:
    """Per-geometry constants: official coordinates, weight matrices, edges (cached on the geometry)."""

    slices: tuple[slice, ...]
    n_voxels: np.ndarray  # (L,)
    weights: np.ndarray  # (n_voxels, 7): 1, r, r^2, eta, eta^2, phi, phi^2 (0 where a layer has no angle)
    voxel_layer: np.ndarray  # (n_voxels,) position of each voxel's layer
    values: tuple[dict[str, tuple[np.ndarray, np.ndarray]], ...]  # per layer {name: (x, x * x)}
    coordinates: tuple[_Coordinate, ...]

    @classmethod
    def of(cls, geometry: Geometry) -> "MomentPlan":
        key = "moment-plan"
        if key not in geometry._cache:
            geometry._cache[key] = cls._build(geometry)
        return geometry._cache[key]

    @classmethod
    def _build(cls, geometry: Geometry) -> "MomentPlan":
        source = {"r": geometry.voxel_r, "eta": geometry.voxel_eta, "phi": geometry.voxel_phi}
        weights = np.zeros((geometry.n_voxels, 7))
        weights[:, 0] = 1.0
        values = []
        members: dict[str, list[int]] = {"r": [], "eta": [], "phi": []}
        for index, (layer, block) in enumerate(zip(geometry.layers, geometry.layer_slices)):
            names = ("r", "eta", "phi") if geometry.binned_in_angle(layer.id) else ("r",)
            per_layer = {}
            for name in names:
                x = np.ascontiguousarray(source[name][block])
                per_layer[name] = (x, x * x)  # x * x * E is (x * x) * E in the official code
                weights[block, _COLUMNS[name]] = x
                weights[block, _COLUMNS[name] + 1] = x * x
                members[name].append(index)
            values.append(per_layer)
        coordinates = []
        for name, positions in members.items():
            if not positions:
                continue
            ids = [geometry.layers[i].id for i in positions]
            widths = [linear_edges(geometry, f"width_{name}", i) for i in ids]
            coordinates.append(
                _Coordinate(
                    name=name,
                    layers=np.array(positions),
                    largest=np.array([float(np.abs(values[i][name][0]).max()) for i in positions]),
                    centre=_Grid.of([linear_edges(geometry, f"ec_{name}", i) for i in ids]),
                    width=_Grid.of([w[1:] if w[0] == 0 else w for w in widths]),
                )
            )
        weights.setflags(write=False)
        voxel_layer = np.repeat(np.arange(geometry.n_layers), geometry.layer_sizes)
        voxel_layer.setflags(write=False)
        return cls(
            slices=tuple(geometry.layer_slices),
            n_voxels=np.array(geometry.layer_sizes, dtype=np.float64),
            weights=weights,
            voxel_layer=voxel_layer,
            values=tuple(values),
            coordinates=tuple(coordinates),
        )


def official_moments(values: np.ndarray, denominator: np.ndarray, x: np.ndarray, x2: np.ndarray):
    """Centre and width of the rows of ``values`` as HighLevelFeatures.py computes them."""
    centre = (x * values).sum(axis=-1) / denominator
    second = (x2 * values).sum(axis=-1) / denominator
    return centre, np.sqrt((second - centre**2).clip(min=0.0))


def layer_sums(energies: np.ndarray, plan: MomentPlan) -> np.ndarray:
    """The float64 sums of E, r E, r^2 E, eta E, eta^2 E, phi E, phi^2 E per (shower, layer), shape
    (N, L, 7): one float64 matrix product per layer (BLAS, single-threaded: a skinny product gains
    nothing from threads but CPU time)."""
    sums = np.zeros((len(energies), len(plan.slices), 7))
    with threadpool_limits(1, user_api="blas"):
        for index, block in enumerate(plan.slices):
            sums[:, index] = energies[:, block] @ plan.weights[block]
    return sums


def layer_moments(
    energies: np.ndarray, totals: np.ndarray, sums: np.ndarray, plan: MomentPlan
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{coordinate: (centres, widths)}``, each (N, layers with that coordinate).

    Args:
        energies: thresholded voxels (N, n_voxels), any float type.
        totals: the per-layer sums (N, L) in the voxels' type, formed as the official code does.
        sums: the float64 weighted sums of :func:`layer_sums`.
    """
    denominator = totals + EPS  # in the voxels' type, as the official code forms it
    denominator64 = denominator.astype(np.float64)
    scale = 2.0 * (plan.n_voxels + 2) * _U64 * sums[:, :, 0] / denominator64
    recompute = np.zeros(totals.shape, dtype=bool)
    out = {}
    for coordinate in plan.coordinates:
        columns = coordinate.layers
        d = denominator[:, columns]
        first = sums[:, columns, _COLUMNS[coordinate.name]] / d
        second = sums[:, columns, _COLUMNS[coordinate.name] + 1] / d
        width = np.sqrt((second - first**2).clip(min=0.0))
        centre_error = scale[:, columns] * coordinate.largest + 8 * _U64 * np.abs(first)
        width2_error = (
            scale[:, columns] * coordinate.largest**2
            + (2 * np.abs(first) + centre_error) * centre_error
            + 8 * _U64 * np.abs(second)
        )
        width_error = np.sqrt(width2_error) + 8 * _U64 * width
        recompute[:, columns] |= coordinate.centre.near(first, centre_error) | coordinate.width.near(width, width_error)
        out[coordinate.name] = (first, width)
    recompute &= totals > 0  # an empty layer gives exactly 0 both ways
    position = {c.name: {int(layer): k for k, layer in enumerate(c.layers)} for c in plan.coordinates}
    for index in np.flatnonzero(recompute.any(axis=0)):
        rows = np.flatnonzero(recompute[:, index])
        subset = energies[rows, plan.slices[index]]
        for name, (x, x2) in plan.values[index].items():
            centre, width = official_moments(subset, denominator[rows, index], x, x2)
            column = position[name][int(index)]
            out[name][0][rows, column] = centre
            out[name][1][rows, column] = width
    return out
