"""The exact path: every hit drawn on its own (depth, radius, azimuth), then binned.

GFlash's spot-by-spot procedure (Grindhammer & Peters, hep-ex/0001020): a spot's depth follows
the spot profile, its radius the core + tail profile at that depth (``r = R sqrt(u / (1 - u))``
with R = Rc with probability p, else Rt), its azimuth is uniform (or follows the hadronic dipole).
Per layer the number of hits is Poisson (sampling calorimeters) or the spots are a fixed number
spread over the whole profile (homogeneous media), and each hit carries the layer's energy over its
expected number of hits, like the fast path. Costs O(hits) per shower: for tests with small N, to
check :mod:`calobench.simulator.fast` against.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammainc, gammaincinv

from calobench.geometry import CALOGAN_FACE_MM
from calobench.simulator.components import Block, Component
from calobench.simulator.detector import Detector
from calobench.simulator.fast import deposit_mip, step_integrals


def _layer_ranges(detector: Detector, coordinate: str) -> tuple[np.ndarray, np.ndarray]:
    """Depth range (lo, hi) of every layer in the given coordinate, (n_layers,) each."""
    steps = detector.steps
    lo, hi = steps.bounds(coordinate)
    starts, stops = steps.layer_start[:-1], steps.layer_start[1:]
    return lo[starts], hi[stops - 1]


def _azimuths(n: int, component: Component, rng: np.random.Generator) -> np.ndarray:
    """Azimuths from ``1 + a cos(phi - phase)`` (uniform when a = 0), by rejection."""
    amplitude = float(component.dipole_amplitude[0])
    if amplitude == 0.0:
        return rng.uniform(-np.pi, np.pi, n)
    phase = float(component.dipole_phase[0])
    result = np.empty(0)
    while result.size < n:
        phi = rng.uniform(-np.pi, np.pi, 2 * (n - result.size) + 8)
        keep = rng.uniform(0.0, 1.0 + amplitude, phi.size) < 1.0 + amplitude * np.cos(phi - phase)
        result = np.concatenate([result, phi[keep]])
    return result[:n]


def _place(
    detector: Detector,
    layer: int,
    component: Component,
    rel_depth: np.ndarray,
    energies: np.ndarray,
    rng: np.random.Generator,
    voxels: np.ndarray,
    overflow: np.ndarray,
) -> None:
    """Drop hits of one shower at depths ``rel_depth`` (after the start) into ``layer``."""
    geometry = detector.geometry
    steps = detector.steps
    step = steps.layer_start[layer]
    r_core, r_tail, p = component.radial(rel_depth[None, :], steps.moliere_mm[step], steps.lambda_mm[step])
    core = rng.random(rel_depth.size) < p[0]
    radius_scale = np.where(core, r_core[0], r_tail[0])
    u = rng.random(rel_depth.size)
    r = radius_scale * np.sqrt(u / (1.0 - u))
    phi = _azimuths(rel_depth.size, component, rng)
    spec = geometry.layers[layer]
    start = geometry.layer_slices[layer].start
    if geometry.kind == "cylindrical":
        edges = np.asarray(spec.r_edges)
        inside = r < edges[-1]
        r_bin = np.searchsorted(edges, r[inside], side="right") - 1
        a_bin = np.floor((phi[inside] + np.pi) / (2.0 * np.pi) * spec.n_alpha).astype(int) % spec.n_alpha
        np.add.at(voxels, start + a_bin * spec.n_r + r_bin, energies[inside])
    else:
        half = CALOGAN_FACE_MM / 2.0
        x = r * np.cos(phi) + component.shift_x[0]
        y = r * np.sin(phi) + component.shift_y[0]
        inside = (np.abs(x) < half) & (np.abs(y) < half)
        dy, dx = spec.cartesian_cell_size()
        ix = np.minimum(np.floor((x[inside] + half) / dx).astype(int), spec.shape[1] - 1)
        iy = np.minimum(np.floor((y[inside] + half) / dy).astype(int), spec.shape[0] - 1)
        np.add.at(voxels, start + iy * spec.shape[1] + ix, energies[inside])
    overflow[layer] += energies[~inside].sum()


def _hit_energy(n: int, mean: float, shape: float, rng: np.random.Generator) -> np.ndarray:
    if math.isinf(shape):
        return np.full(n, mean)
    return rng.standard_gamma(shape, n) / shape * mean


def _deposit_component(
    detector: Detector, component: Component, rng: np.random.Generator, voxels: np.ndarray, overflow: np.ndarray
) -> None:
    """All hits of one shower's component (``component`` holds one shower)."""
    energy, hits, _ = step_integrals(detector, component)
    starts = detector.steps.layer_start[:-1]
    layer_hits = np.add.reduceat(hits, starts, axis=1)[0]
    layer_energy = np.add.reduceat(energy, starts, axis=1)[0]
    mean = np.divide(layer_energy, layer_hits, out=np.zeros_like(layer_energy), where=layer_hits > 0)
    lo, hi = _layer_ranges(detector, component.coordinate)
    start = float(component.start[0])
    alpha, beta = float(component.alpha_spot[0]), float(component.beta_spot[0])
    shape = detector.spot_energy_shape

    if detector.statistics == "poisson":
        for layer in range(detector.geometry.n_layers):
            n = rng.poisson(layer_hits[layer])
            if n == 0:
                continue
            a, b = max(lo[layer] - start, 0.0), max(hi[layer] - start, 0.0)
            u = rng.uniform(gammainc(alpha, beta * a), gammainc(alpha, beta * b), n)
            rel = np.clip(gammaincinv(alpha, u) / beta, a, b)
            _place(detector, layer, component, rel, _hit_energy(n, mean[layer], shape, rng), rng, voxels, overflow)
        return

    total = int(np.rint(component.spots[0] * detector.hit_factor))
    depth = start + gammaincinv(alpha, rng.random(total)) / beta
    for layer in range(detector.geometry.n_layers):
        rel = depth[(depth >= lo[layer]) & (depth < hi[layer])] - start
        if rel.size:
            _place(
                detector, layer, component, rel, _hit_energy(rel.size, mean[layer], shape, rng), rng, voxels, overflow
            )


def deposit_exact(detector: Detector, block: Block, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Voxel energies (B, n_voxels) and lateral overflow (B, n_layers), spot by spot."""
    n = len(block.incident)
    voxels = np.zeros((n, detector.geometry.n_voxels))
    overflow = np.zeros((n, detector.geometry.n_layers))
    for i in range(n):
        for component in block.components:
            _deposit_component(detector, component.take(i), rng, voxels[i], overflow[i])
    deposit_mip(detector, block, voxels)
    return voxels, overflow
