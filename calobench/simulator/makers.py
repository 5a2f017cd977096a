"""Writing simulated samples to shower files: the synthetic data sets' maker and ``calobench simulate``.

Files are written in chunks (bounded memory: two chunks in flight, one being simulated and one
being compressed and written on a second thread) with a progress bar, and appear under their
final name only when complete (:class:`calobench.formats.ShowerWriter`).
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from calobench.errors import DatasetError
from calobench.formats import Format, ShowerWriter
from calobench.simulator.api import iter_simulate
from calobench.simulator.catalog import resolve_detector
from calobench.simulator.detector import Detector
from calobench.simulator.spectra import incident_spectrum

if TYPE_CHECKING:
    from calobench.datasets.spec import DatasetSpec, FileSpec

#: gzip level of simulated files: level 1 is ~1.5x faster to write than 4 and ~15 % larger.
COMPRESSION_LEVEL = 1


def write_simulation(
    path: str | Path,
    detector: "str | Detector",
    incident_energies: np.ndarray,
    seed: int,
    perturbation: Mapping[str, float] | None = None,
    format: Format | None = None,
    description: str | None = None,
    progress: bool | None = None,
) -> Path:
    """Simulate one shower per incident energy and write them to ``path`` atomically.

    ``format`` defaults to the detector's (CaloGAN files also get the per-layer lateral overflow).
    ``progress``: True/False forces the progress bar on/off; None shows it on a terminal.
    """
    detector = resolve_detector(detector)
    format = format or detector.format
    incident = np.asarray(incident_energies, dtype=np.float64)
    bar = tqdm(
        total=len(incident),
        unit="showers",
        desc=description or Path(path).name,
        disable=None if progress is None else not progress,
        leave=False,
    )
    pending: Future | None = None
    try:
        with (
            ShowerWriter(path, detector.geometry, format=format, compression_level=COMPRESSION_LEVEL) as writer,
            ThreadPoolExecutor(max_workers=1) as background,
        ):
            # compress and write chunk k on a second thread while chunk k + 1 is simulated
            for chunk in iter_simulate(detector, incident, seed, perturbation):
                if pending is not None:
                    pending.result()
                overflow = chunk.overflow if format == "calogan" else None
                pending = background.submit(writer.append, chunk.showers, overflow)
                pending.add_done_callback(functools.partial(_advance, bar, len(chunk.showers)))
            if pending is not None:
                pending.result()
    finally:
        bar.close()
    return Path(path)


def _advance(bar: tqdm, n: int, _: Future) -> None:
    """Done callback of a written chunk of ``n`` showers."""
    bar.update(n)


def file_seed(seed: int, file_name: str) -> int:
    """The seed of one file of a set made with an explicit ``seed``: combined with the file name, so
    that the train and reference files of ``make --seed S`` stay independent samples."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DatasetError(f"seed must be an integer >= 0, got {seed!r}")
    entropy = [int(seed), zlib.crc32(file_name.encode())]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint32)[0])


def make_file(
    spec: "DatasetSpec", file: "FileSpec", path: Path, n_showers: int | None = None, seed: int | None = None
) -> None:
    """The maker of every synthetic data set: ``n_showers`` showers (default: the card's) with the
    set's incident-energy spectrum, written to ``path``. The card's seed of the file is used unless
    ``seed`` is given (then :func:`file_seed` of it)."""
    n = file.n_showers if n_showers is None else n_showers
    seed = file.seed if seed is None else file_seed(seed, file.name)
    if n is None or seed is None:
        raise DatasetError(f"data set {spec.name!r}: file {file.name!r} needs n_showers and seed (card or argument)")
    if n <= 0:
        raise DatasetError(f"data set {spec.name!r}: the number of showers must be positive, got {n}")
    incident = incident_spectrum(spec.name, n, seed)
    write_simulation(path, spec.name, incident, seed, format=spec.format, description=f"{spec.name}/{file.name}")
