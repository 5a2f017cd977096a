"""The fast path: expected number of hits per voxel from profile integrals, then counts.

For every shower and longitudinal step: the energy and the number of spots in the step are
differences of the regularized incomplete gamma function (GFlash, hep-ex/0001020); the lateral
profile is averaged over two depths inside the step (mean -+ standard deviation of the spot profile
truncated to the step) and integrated analytically over each radial bin (cylindrical readouts) or rectangular cell
(Cartesian readouts); the azimuth is uniform (or carries the hadronic dipole). The expected hits
of a voxel are (spots in the layer) x (lateral fraction) x (angular fraction). Counts are then
Poisson (sampling calorimeters: the spots are thinned by the sampling fraction) or multinomial
(homogeneous media: a fixed number of spots); every hit of a layer carries the layer's energy
divided by its expected hit count, spread with a Gamma of shape ``spot_energy_shape``; in sampling
media the hit count is set so that the visible energy has the variance of binomially thinned spots
(:func:`thinning_factor`).

This is equal in distribution to dropping every spot at its own depth, radius and azimuth
(:mod:`calobench.simulator.exact`) up to the depth discretization of the lateral parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import gammainc

from calobench.simulator.components import Block, Component
from calobench.simulator.detector import Detector, LayerGroup
from calobench.simulator.gflash import radial_cdf, rectangle_integral


@dataclass
class GroupHits:
    """Expected hits of one layer group.

    Cylindrical layers: ``hits`` (B, L_g, n_r) per ring (layer, radial bin), spread over the
    angular bins by ``angular`` (a scalar 1/n_alpha for a uniform azimuth, else (B, n_alpha)).
    Cartesian layers: ``hits`` (B, L_g, n_y, n_x) per cell and ``angular`` None.
    """

    hits: np.ndarray
    angular: "np.ndarray | float | None"

    def per_voxel(self) -> np.ndarray:
        """Expected hits per voxel, (B, L_g, *layer shape)."""
        if self.angular is None:
            return self.hits
        if not isinstance(self.angular, np.ndarray):  # a scalar: uniform azimuth
            n_alpha = round(1.0 / float(self.angular))
            return np.repeat(self.hits[:, :, None, :] * self.angular, n_alpha, axis=2)
        return self.hits[:, :, None, :] * self.angular[:, None, :, None]


@dataclass
class Expectation:
    """Expected hits of one component for a block of B showers.

    Attributes:
        groups: per layer group (``detector.layer_groups``), the expected hits.
        hit_energy: (B, n_layers) mean energy of one hit in each layer (file units).
        layer_hits: (B, n_layers) expected hits in each layer (inside and outside the readout).
        outside: (B, n_layers) expected hits that fall outside the readout's lateral extent.
    """

    groups: list[GroupHits]
    hit_energy: np.ndarray
    layer_hits: np.ndarray
    outside: np.ndarray


def step_integrals(detector: Detector, component: Component) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energy (B, S) and expected hits (B, S) per step, and the two depths after the start (B, S, 2)
    at which the lateral profile of the step's spots is evaluated.

    The nodes are ``m -+ s``, the mean and standard deviation of the spot profile truncated to the
    step (a two-point rule exact for lateral fractions that vary quadratically with depth)."""
    steps = detector.steps
    lo, hi = steps.bounds(component.coordinate)
    n_steps = len(lo)
    edges, inverse = np.unique(np.concatenate([lo, hi]), return_inverse=True)
    i_lo, i_hi = inverse[:n_steps], inverse[n_steps:]
    rel = np.maximum(edges[None, :] - component.start[:, None], 0.0)

    alpha, beta = component.alpha[:, None], component.beta[:, None]
    cdf = gammainc(alpha, beta * rel)
    energy = component.energy[:, None] * (cdf[:, i_hi] - cdf[:, i_lo])
    if component.same_spot_profile:
        alpha_s, beta_s, cdf_s = alpha, beta, cdf
    else:
        alpha_s, beta_s = component.alpha_spot[:, None], component.beta_spot[:, None]
        cdf_s = gammainc(alpha_s, beta_s * rel)
    spot_fraction = cdf_s[:, i_hi] - cdf_s[:, i_lo]
    # moments of a Gamma(alpha, beta) truncated to the step:
    # E[t] = (alpha/beta) dP(alpha+1)/dP(alpha), E[t^2] = (alpha (alpha+1)/beta^2) dP(alpha+2)/dP(alpha)
    lo_rel, hi_rel = rel[:, i_lo], rel[:, i_hi]
    ok = spot_fraction > 1e-12
    safe = np.where(ok, spot_fraction, 1.0)
    cdf_1 = gammainc(alpha_s + 1.0, beta_s * rel)
    cdf_2 = gammainc(alpha_s + 2.0, beta_s * rel)
    mean = np.where(ok, (alpha_s / beta_s) * (cdf_1[:, i_hi] - cdf_1[:, i_lo]) / safe, 0.5 * (lo_rel + hi_rel))
    second = np.where(
        ok,
        (alpha_s * (alpha_s + 1.0) / beta_s**2) * (cdf_2[:, i_hi] - cdf_2[:, i_lo]) / safe,
        mean**2 + (hi_rel - lo_rel) ** 2 / 12.0,
    )
    spread = np.sqrt(np.clip(second - mean**2, 0.0, (hi_rel - lo_rel) ** 2 / 4.0))
    depth = np.stack([mean - spread, mean + spread], axis=-1)
    depth = np.clip(depth, lo_rel[..., None], hi_rel[..., None])

    hits = component.spots[:, None] * detector.hit_factor * spot_fraction
    if component.thinned and detector.statistics == "poisson":
        hits = hits * thinning_factor(steps.spot_fraction * component.knobs["sampling_fraction_scale"])[None, :]
    return energy, hits, depth


def thinning_factor(spot_fraction: np.ndarray) -> np.ndarray:
    """Expected hits per spot of a sampling medium, ``f / (1 - f)``.

    Spots seen with probability f (binomial thinning of N spots) give a visible energy of relative
    variance ``(1 - f) / (N f)``; Poisson hits of this mean number (times 1 + 1/s for hit energies
    of Gamma shape s) have the same mean and variance.
    """
    f = np.minimum(spot_fraction, 0.95)
    return f / (1.0 - f)


def angular_fractions(n_alpha: int, component: Component) -> np.ndarray | float:
    """Fraction of the azimuth in each angular bin, (B, n_alpha), or a scalar when uniform.

    ``int (1 + a cos(alpha - phase)) dalpha / 2 pi`` over ``[-pi + j 2 pi/n, -pi + (j+1) 2 pi/n]``.
    """
    if n_alpha == 1 or not np.any(component.dipole_amplitude):
        return 1.0 / n_alpha
    edges = -np.pi + 2.0 * np.pi * np.arange(n_alpha + 1) / n_alpha
    phase = component.dipole_phase[:, None]
    sines = np.sin(edges[None, :] - phase)
    return 1.0 / n_alpha + component.dipole_amplitude[:, None] * np.diff(sines, axis=1) / (2.0 * np.pi)


def _signed_grid(coords: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unique |coords|, index of each coordinate into them, sign of each coordinate)."""
    absolute, inverse = np.unique(np.abs(coords), return_inverse=True)
    return absolute, inverse.reshape(-1), np.sign(coords)


def cell_fractions(
    template_shape: tuple[int, int],
    cell_size: tuple[float, float],
    face_mm: float,
    radii: np.ndarray,
    shift_x: np.ndarray,
    shift_y: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of one core/tail component (2-D density R^2/(pi (r^2+R^2)^2), radii (B, S) in mm)
    in every cell of a Cartesian layer, (B, S, n_y, n_x), and the fraction inside the face (B, S)."""
    n_y, n_x = template_shape
    dy, dx = cell_size
    half = face_mm / 2.0
    xs = -half + dx * np.arange(n_x + 1)
    ys = -half + dy * np.arange(n_y + 1)
    radius = radii[:, :, None, None]
    if not (np.any(shift_x) or np.any(shift_y)):
        ax, ix, sx = _signed_grid(xs)
        ay, iy, sy = _signed_grid(ys)
        quadrant = rectangle_integral(ax[None, None, None, :], ay[None, None, :, None], radius)
        grid = quadrant[:, :, iy[:, None], ix[None, :]] * (sy[:, None] * sx[None, :])
    else:
        x = (xs[None, :] - shift_x[:, None])[:, None, None, :]
        y = (ys[None, :] - shift_y[:, None])[:, None, :, None]
        grid = rectangle_integral(x, y, radius)
    cells = grid[:, :, 1:, 1:] - grid[:, :, :-1, 1:] - grid[:, :, 1:, :-1] + grid[:, :, :-1, :-1]
    inside = grid[:, :, -1, -1] - grid[:, :, 0, -1] - grid[:, :, -1, 0] + grid[:, :, 0, 0]
    return cells, inside


def _group_hits(
    detector: Detector,
    group: LayerGroup,
    component: Component,
    hits: np.ndarray,
    r_core: np.ndarray,
    r_tail: np.ndarray,
    p: np.ndarray,
) -> tuple[GroupHits, np.ndarray]:
    """Expected hits of the group's layers and the hits outside their lateral extent (B, L_g)."""
    from calobench.geometry import CALOGAN_FACE_MM

    s = group.steps
    step_hits = hits[:, s]
    if detector.geometry.kind == "cylindrical":
        r_edges = np.asarray(group.template.r_edges)
        cdf = radial_cdf(r_edges, r_core[:, s, :, None], r_tail[:, s, :, None], p[:, s, :, None]).mean(axis=2)
        per_step = np.diff(cdf, axis=2) * step_hits[:, :, None]
        outside_step = (1.0 - cdf[:, :, -1]) * step_hits
        rings = np.maximum(np.add.reduceat(per_step, group.step_layer_start, axis=1), 0.0)
        expected = GroupHits(rings, angular_fractions(group.template.n_alpha, component))
    else:
        fractions, inside = 0.0, 0.0
        for node in range(r_core.shape[2]):
            core, core_in = cell_fractions(
                group.template.shape,
                group.template.cartesian_cell_size(),
                CALOGAN_FACE_MM,
                r_core[:, s, node],
                component.shift_x,
                component.shift_y,
            )
            tail, tail_in = cell_fractions(
                group.template.shape,
                group.template.cartesian_cell_size(),
                CALOGAN_FACE_MM,
                r_tail[:, s, node],
                component.shift_x,
                component.shift_y,
            )
            weight = p[:, s, node]
            fractions = fractions + weight[..., None, None] * core + (1.0 - weight[..., None, None]) * tail
            inside = inside + weight * core_in + (1.0 - weight) * tail_in
        fractions, inside = fractions / r_core.shape[2], inside / r_core.shape[2]
        per_step = fractions * step_hits[:, :, None, None]
        outside_step = (1.0 - inside) * step_hits
        cells = np.maximum(np.add.reduceat(per_step, group.step_layer_start, axis=1), 0.0)
        expected = GroupHits(cells, None)
    outside = np.add.reduceat(outside_step, group.step_layer_start, axis=1)
    return expected, np.maximum(outside, 0.0)


def expectation(detector: Detector, component: Component) -> Expectation:
    """Expected hits per voxel of one component (see the module docstring)."""
    steps = detector.steps
    energy, hits, depth = step_integrals(detector, component)
    starts = steps.layer_start[:-1]
    layer_energy = np.add.reduceat(energy, starts, axis=1)
    layer_hits = np.add.reduceat(hits, starts, axis=1)
    hit_energy = np.divide(layer_energy, layer_hits, out=np.zeros_like(layer_energy), where=layer_hits > 0)
    r_core, r_tail, p = component.radial(depth, steps.moliere_mm[None, :, None], steps.lambda_mm[None, :, None])
    groups, outside = [], np.zeros_like(layer_hits)
    for group in detector.layer_groups:
        expected, out = _group_hits(detector, group, component, hits, r_core, r_tail, p)
        groups.append(expected)
        outside[:, group.layers] = out
    return Expectation(groups, hit_energy, layer_hits, outside)


def hit_energies(counts: np.ndarray, hit_energy: np.ndarray, shape: float, rng: np.random.Generator) -> np.ndarray:
    """Energy of ``counts`` hits with mean energy ``hit_energy`` (broadcast) and Gamma shape ``shape``
    (the sum of k Gamma(s) hits is Gamma(k s))."""
    mean = np.broadcast_to(hit_energy, counts.shape)
    if math.isinf(shape):
        return counts * mean
    energies = np.zeros(counts.shape)
    hit = counts > 0
    energies[hit] = rng.standard_gamma(counts[hit] * shape) / shape * mean[hit]
    return energies


def _group_slice(group: LayerGroup) -> slice | np.ndarray:
    flat = group.voxels.reshape(-1)
    if flat.size and np.array_equal(flat, np.arange(flat[0], flat[0] + flat.size)):
        return slice(int(flat[0]), int(flat[0]) + flat.size)
    return flat


#: A group is sampled hit by hit (sparse) when it expects fewer hits than this fraction of its voxels.
SPARSE_BELOW = 1.0


def _poisson_dense(
    group: LayerGroup, expected: GroupHits, hit_energy: np.ndarray, shape: float, rng: np.random.Generator
) -> np.ndarray:
    """Poisson counts in every voxel of the group, then their energies; (B, L_g * cells)."""
    per_voxel = expected.per_voxel()
    counts = rng.poisson(per_voxel)
    mean = hit_energy[:, group.layers].reshape(per_voxel.shape[:2] + (1,) * (per_voxel.ndim - 2))
    return hit_energies(counts, mean, shape, rng).reshape(len(per_voxel), -1)


def _poisson_sparse(
    group: LayerGroup, expected: GroupHits, hit_energy: np.ndarray, shape: float, rng: np.random.Generator
) -> np.ndarray:
    """The same distribution drawn hit by hit: Poisson counts per ring, each hit's angular bin from
    the angular fractions (a Poisson count split over bins is independent Poisson counts), then
    summed per voxel; (B, L_g * cells). Costs O(hits) instead of O(voxels)."""
    rings = expected.hits
    n, n_layers = rings.shape[:2]
    size = group.voxels[0].size * n_layers  # voxels of the group per shower
    counts = rng.poisson(rings)
    shower = np.arange(n).reshape(n, 1, *([1] * (rings.ndim - 2)))
    layer = np.arange(n_layers).reshape(1, n_layers, *([1] * (rings.ndim - 2)))
    cells = group.voxels[0].size
    # per ring (per cell in Cartesian layers): its first voxel in the (B, size) output and the
    # mean energy of its hits
    if expected.angular is None:
        local = np.arange(cells).reshape(1, 1, *rings.shape[2:])
    else:
        n_r, n_alpha = rings.shape[2], group.template.n_alpha
        local = np.arange(n_r).reshape(1, 1, n_r)
    base = shower * size + layer * cells + local
    mean = hit_energy[:, group.layers].reshape(n, n_layers, *([1] * (rings.ndim - 2)))
    mean = np.broadcast_to(mean, rings.shape)
    counts = counts.reshape(-1)
    target = np.repeat(np.broadcast_to(base, rings.shape).reshape(-1), counts)
    energy = np.repeat(mean.reshape(-1), counts)
    if expected.angular is not None:
        if np.isscalar(expected.angular):
            a_bin = rng.integers(0, n_alpha, target.size)
        else:
            hit_shower = target // size
            cumulative = np.cumsum(expected.angular, axis=1)
            u = rng.random(target.size) * cumulative[hit_shower, -1]
            a_bin = np.minimum((u[:, None] >= cumulative[hit_shower]).sum(axis=1), n_alpha - 1)
        target += a_bin * n_r
    if not math.isinf(shape):
        energy *= rng.standard_gamma(shape, target.size) / shape
    return np.bincount(target, weights=energy, minlength=n * size).reshape(n, size)


def deposit_fast(detector: Detector, block: Block, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Voxel energies (B, n_voxels) float64 and lateral overflow per layer (B, n_layers) of a block."""
    n = len(block.incident)
    geometry = detector.geometry
    voxels = np.zeros((n, geometry.n_voxels))
    overflow = np.zeros((n, geometry.n_layers))
    shape = detector.spot_energy_shape
    for component in block.components:
        exp = expectation(detector, component)
        if detector.statistics == "poisson":
            for group, expected in zip(detector.layer_groups, exp.groups):
                sparse = expected.hits.sum() < SPARSE_BELOW * n * group.voxels.size
                sample = _poisson_sparse if sparse else _poisson_dense
                voxels[:, _group_slice(group)] += sample(group, expected, exp.hit_energy, shape, rng)
            counts = rng.poisson(exp.outside)
            overflow += hit_energies(counts, exp.hit_energy, shape, rng)
        else:
            _multinomial(detector, component, exp, rng, voxels, overflow)
    deposit_mip(detector, block, voxels)
    return voxels, overflow


def _multinomial(
    detector: Detector,
    component: Component,
    exp: Expectation,
    rng: np.random.Generator,
    voxels: np.ndarray,
    overflow: np.ndarray,
) -> None:
    """Homogeneous media: a fixed number of spots spread over all voxels, the lateral overflow of
    every layer and everything else (leakage)."""
    n = len(component)
    n_voxels, n_layers = detector.geometry.n_voxels, detector.geometry.n_layers
    expected = np.zeros((n, n_voxels + n_layers + 1))
    for group, hits in zip(detector.layer_groups, exp.groups):
        expected[:, :n_voxels][:, _group_slice(group)] = hits.per_voxel().reshape(n, -1)
    expected[:, n_voxels : n_voxels + n_layers] = exp.outside
    total = np.rint(component.spots * detector.hit_factor)
    probabilities = expected[:, :-1] / np.maximum(total, 1.0)[:, None]
    scale = np.maximum(probabilities.sum(axis=1), 1.0)  # guard against rounding above 1
    probabilities = probabilities / scale[:, None]
    probabilities = np.concatenate([probabilities, (1.0 - probabilities.sum(axis=1))[:, None].clip(0.0)], axis=1)
    counts = rng.multinomial(total.astype(np.int64), probabilities)
    mean = np.concatenate([exp.hit_energy[:, detector.geometry.voxel_layer], exp.hit_energy], axis=1)
    energies = hit_energies(counts[:, :-1], mean, detector.spot_energy_shape, rng)
    voxels += energies[:, :n_voxels]
    overflow += energies[:, n_voxels:]


def deposit_mip(detector: Detector, block: Block, voxels: np.ndarray) -> None:
    """Put each layer's MIP-track energy into the voxel that holds the shower axis."""
    if not np.any(block.mip):
        return
    geometry = detector.geometry
    rows = np.arange(len(block.incident))
    for index, layer in enumerate(geometry.layers):
        start = geometry.layer_slices[index].start
        if geometry.kind == "cylindrical":
            a = np.floor((block.mip_angle + np.pi) / (2.0 * np.pi) * layer.n_alpha).astype(int) % layer.n_alpha
            cell = a * layer.n_r  # innermost radial bin of angular bin a
        else:
            from calobench.geometry import CALOGAN_FACE_MM

            dy, dx = layer.cartesian_cell_size()
            half = CALOGAN_FACE_MM / 2.0
            ix = np.clip(np.floor((block.mip_xy[:, 0] + half) / dx).astype(int), 0, layer.shape[1] - 1)
            iy = np.clip(np.floor((block.mip_xy[:, 1] + half) / dy).astype(int), 0, layer.shape[0] - 1)
            cell = iy * layer.shape[1] + ix
        voxels[rows, start + cell] += block.mip[:, index]
