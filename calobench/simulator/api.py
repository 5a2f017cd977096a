"""Simulating showers: the public entry points of the simulator.

Showers are made in blocks of :data:`BLOCK_SIZE`; block ``b`` draws from its own random stream
``SeedSequence(seed, spawn_key=(b,))``, so the result depends only on the seed and the incident
energies, never on how the work is chunked. Output is in file units (MeV, the sampling fraction
divided out), on the detector's readout geometry, with voxels below the readout threshold set to 0.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from calobench.errors import ConfigError
from calobench.showers import Showers
from calobench.simulator.catalog import resolve_detector
from calobench.simulator.components import sample_block
from calobench.simulator.detector import Detector
from calobench.simulator.exact import deposit_exact
from calobench.simulator.fast import deposit_fast
from calobench.simulator.perturbations import check_perturbation

#: Showers per random-number block (the unit of reproducibility).
BLOCK_SIZE = 256
#: Voxel values per chunk yielded by :func:`iter_simulate` (float32: 64 MB).
CHUNK_VOXELS = 16 * 2**20
METHODS = ("fast", "exact")


@dataclass
class Chunk:
    """Consecutive simulated showers and their lateral overflow per layer (B, n_layers), MeV."""

    showers: Showers
    overflow: np.ndarray


def block_rng(seed: int, block: int) -> np.random.Generator:
    """The random stream of block ``block`` of a simulation with ``seed``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(block,))))


def _check_inputs(incident_energies: np.ndarray, seed: int) -> np.ndarray:
    incident = np.asarray(incident_energies, dtype=np.float64)
    if incident.ndim == 2 and incident.shape[1] == 1:
        incident = incident[:, 0]
    if incident.ndim != 1:
        raise ConfigError(f"incident energies must be a 1-D array (MeV), got shape {incident.shape}")
    if incident.size and not (np.all(np.isfinite(incident)) and incident.min() > 0):
        raise ConfigError("incident energies must be finite and > 0 MeV")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
    return incident


def _chunk_blocks(detector: Detector, chunk_size: int | None) -> int:
    if chunk_size is None:
        chunk_size = CHUNK_VOXELS // detector.geometry.n_voxels
    return max(1, int(chunk_size) // BLOCK_SIZE)


def iter_simulate(
    detector: "str | Detector",
    incident_energies: np.ndarray,
    seed: int,
    perturbation: Mapping[str, float] | None = None,
    chunk_size: int | None = None,
    method: str = "fast",
) -> Iterator[Chunk]:
    """Simulate showers chunk by chunk (memory bounded by one chunk of about ``chunk_size`` showers,
    rounded to whole blocks; by default about 64 MB of voxels).

    ``method`` is ``"fast"`` (expected fractions per voxel, then counts) or ``"exact"`` (spot by spot;
    slow, for tests).
    """
    detector = resolve_detector(detector)
    incident = _check_inputs(incident_energies, seed)
    knobs = check_perturbation(perturbation)
    if method not in METHODS:
        raise ConfigError(f"unknown simulation method {method!r}; expected one of {METHODS}")
    deposit = deposit_fast if method == "fast" else deposit_exact
    threshold = detector.threshold_mev * knobs["threshold_scale"]
    per_chunk = _chunk_blocks(detector, chunk_size)
    n_blocks = -(-len(incident) // BLOCK_SIZE)
    for first in range(0, n_blocks, per_chunk):
        voxels, overflows = [], []
        blocks = range(first, min(first + per_chunk, n_blocks))
        for b in blocks:
            rng = block_rng(int(seed), b)
            energies = incident[b * BLOCK_SIZE : (b + 1) * BLOCK_SIZE]
            block = sample_block(detector, energies, rng, knobs)
            deposits, overflow = deposit(detector, block, rng)
            deposits = deposits.astype(np.float32)
            deposits[deposits < threshold] = 0.0
            voxels.append(deposits)
            overflows.append(overflow)
        lo, hi = blocks[0] * BLOCK_SIZE, min(blocks[-1] * BLOCK_SIZE + BLOCK_SIZE, len(incident))
        yield Chunk(Showers(incident[lo:hi], np.concatenate(voxels), detector.geometry), np.concatenate(overflows))


def simulate(
    detector: "str | Detector",
    incident_energies: np.ndarray,
    seed: int,
    perturbation: Mapping[str, float] | None = None,
    method: str = "fast",
) -> Showers:
    """Simulate one shower per incident energy (MeV) in a synthetic detector.

    Args:
        detector: a synthetic data-set name (``"synthetic-ds1-photons"``, short form ``"ds1-photons"``)
            or a :class:`~calobench.simulator.detector.Detector`.
        incident_energies: (N,) incident energies in MeV.
        seed: integer >= 0; the same seed gives the same showers.
        perturbation: knob -> factor (see :data:`~calobench.simulator.perturbations.PERTURBATIONS`).
        method: ``"fast"`` or ``"exact"``.

    Returns:
        :class:`~calobench.showers.Showers` in file units (MeV, sampling fraction divided out),
        float32, thresholded at the detector's readout threshold.
    """
    detector = resolve_detector(detector)
    incident = _check_inputs(incident_energies, seed)
    if incident.size == 0:
        return Showers(incident, np.zeros((0, detector.geometry.n_voxels), np.float32), detector.geometry)
    chunks = [c.showers for c in iter_simulate(detector, incident, seed, perturbation, method=method)]
    return chunks[0] if len(chunks) == 1 else Showers.concatenate(chunks)
