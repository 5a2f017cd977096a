"""Per-shower generation time, as the CaloChallenge measures it (arXiv 2410.21611, "Timing").

For each batch size, one warm-up call and then ``repeats`` timed calls of ``generator.sample``;
each call returns a float32 array on the host, so the device-to-host transfer is included, and
CUDA work is synchronized before the clock starts. Reported: milliseconds per shower, mean and
standard deviation over the repeats. Where ``repeats`` calls would take longer than ``max_seconds``
(judged from the warm-up call), fewer are timed -- at least one, the number recorded -- so that a
slow model on a CPU cannot stall a suite; where the warm-up call alone takes longer than
``max_seconds``, it is the one measurement (``from_warmup``: a first-call overhead of a fraction of
a second is noise on such a call).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from calobench.errors import ConfigError
from calobench.generator.base import Generator


@dataclass
class BatchTiming:
    batch_size: int
    seconds: list[float] = field(default_factory=list)
    from_warmup: bool = False

    @property
    def ms_per_shower(self) -> np.ndarray:
        return np.asarray(self.seconds) * 1e3 / self.batch_size

    def to_dict(self) -> dict[str, Any]:
        values = self.ms_per_shower
        return {
            "mean_ms": float(values.mean()),
            "std_ms": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "repeats": len(values),
            "runs_ms": [float(v) for v in values],
            "from_warmup": self.from_warmup,
        }


def synchronize(device: Any) -> None:
    """Wait for queued CUDA work on ``device`` (no-op elsewhere)."""
    if device is not None and str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize(torch.device(str(device)))


def energies_for_batch(pool: np.ndarray, batch_size: int, seed: int) -> np.ndarray:
    """``batch_size`` incident energies drawn (seeded, with replacement) from ``pool`` (MeV)."""
    return np.random.default_rng(seed).choice(np.asarray(pool, dtype=np.float64), size=batch_size, replace=True)


def time_one_call(generator: Generator, energies: np.ndarray, seed: int) -> float:
    """Wall time of one ``sample`` call of ``len(energies)`` showers, result on the host."""
    device = getattr(generator, "device", None)
    synchronize(device)
    start = time.perf_counter()
    output = generator.sample(energies, seed=seed, batch_size=len(energies))
    np.asarray(output)  # the result is already a host array; this guards against lazy wrappers
    return time.perf_counter() - start


def time_generator(
    generator: Generator,
    incident_pool: np.ndarray,
    batch_sizes: tuple[int, ...] = (1, 100, 10000),
    repeats: int = 10,
    seed: int = 0,
    max_seconds: float = 60.0,
) -> dict[str, Any]:
    """Milliseconds per shower at each batch size (see the module docstring)."""
    if not batch_sizes or any(int(b) < 1 for b in batch_sizes) or int(repeats) < 1:
        raise ConfigError(f"timing needs batch sizes >= 1 and repeats >= 1, got {list(batch_sizes)} and {repeats}")
    if not (math.isfinite(max_seconds) and max_seconds > 0):
        raise ConfigError(f"timing needs a positive, finite max_seconds, got {max_seconds}")
    results: dict[str, Any] = {}
    for batch_size in batch_sizes:
        energies = energies_for_batch(incident_pool, batch_size, seed + batch_size)
        warmup = time_one_call(generator, energies, seed)
        timing = BatchTiming(batch_size)
        if warmup > max_seconds:
            timing.seconds.append(warmup)
            timing.from_warmup = True
        else:
            allowed = repeats if warmup * repeats <= max_seconds else max(1, int(max_seconds // max(warmup, 1e-9)))
            for repeat in range(allowed):
                timing.seconds.append(time_one_call(generator, energies, seed + 1 + repeat))
        results[str(batch_size)] = timing.to_dict()
    device = getattr(generator, "device", None)
    return {"device": str(device) if device is not None else "cpu", "batch_sizes": results}
