"""One streaming pass over a shower source that collects everything the metrics need.

Per chunk (bounded memory, one decompression of the file): the voxels below the readout threshold
are zeroed once (compared in the file's own type, as the official script compares them); then the high-level features, the maximum and the per-voxel sum (for the average
shower) are accumulated, the voxel-energy histogram is filled when its edges are known (the
generated sample: the edges come from the reference), the voxel values above the threshold are
kept in a bounded buffer when they are not (the reference: the edges need its maximum, known only
at the end), and the rows of a random subsample are copied out for the metrics that need showers
in memory (PRDC, intrinsic dimension, classifiers).
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from tqdm.auto import tqdm

from calobench.geometry import Geometry
from calobench.metrics.features import HighLevelFeatures, features_of_thresholded, official_threshold
from calobench.metrics.histograms import FeatureHistograms
from calobench.metrics.separation import histogram_counts
from calobench.showers import Showers


class ShowerSource(Protocol):
    """What the metrics read showers from: an open file (:func:`calobench.formats.open_showers`)
    or showers in memory (:class:`InMemorySource`)."""

    geometry: Geometry
    n_showers: int
    incident_dtype: np.dtype

    def iter_chunks(self, chunk_size: int | None = None, validate: bool = True) -> Iterator[Showers]: ...


class InMemorySource:
    """Showers already in memory, read through the :class:`ShowerSource` interface."""

    def __init__(self, showers: Showers, chunk_size: int = 4096, label: str = "in memory") -> None:
        self.showers = showers
        self.geometry = showers.geometry
        self.n_showers = len(showers)
        self.chunk_size = chunk_size
        self.path = label
        self.format = "memory"
        self.incident_dtype = np.dtype(np.float64)

    def iter_chunks(self, chunk_size: int | None = None, validate: bool = True) -> Iterator[Showers]:
        size = chunk_size or self.chunk_size
        for start in range(0, self.n_showers, size):
            chunk = self.showers[start : start + size]
            yield chunk.validate("showers in memory") if validate else chunk

    def incident_energies(self) -> np.ndarray:
        return np.asarray(self.showers.incident_energies, dtype=np.float64)

    def close(self) -> None:
        pass


class FirstShowers:
    """The first ``n`` showers of a source, read through the same interface (``--max-showers``)."""

    def __init__(self, source: ShowerSource, n: int) -> None:
        self.source = source
        self.geometry = source.geometry
        self.n_showers = min(int(n), source.n_showers)
        self.incident_dtype = getattr(source, "incident_dtype", np.dtype(np.float64))
        self.fresh_chunks = getattr(source, "fresh_chunks", False)
        self.path = getattr(source, "path", "showers")

    def iter_chunks(self, chunk_size: int | None = None, validate: bool = True) -> Iterator[Showers]:
        left = self.n_showers
        for chunk in self.source.iter_chunks(chunk_size, validate=validate):
            if left <= 0:
                return
            yield chunk if len(chunk) <= left else chunk[:left]
            left -= len(chunk)

    def close(self) -> None:
        close = getattr(self.source, "close", None)
        if close is not None:
            close()


def prefetched(chunks: Iterable[Showers], depth: int = 1) -> Iterator[Showers]:
    """Iterate ``chunks`` with the next ``depth`` chunks read by a background thread, so that the
    HDF5 decompression (which releases the GIL) overlaps with the work on the current chunk.
    Exceptions of the reader are raised in the consumer; memory grows by ``depth`` chunks."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(item: object) -> bool:
        """Hand one item over; False if the consumer has gone."""
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
            put(done)
        except BaseException as exc:
            put(exc)

    reader = threading.Thread(target=read, name="calobench-prefetch", daemon=True)
    reader.start()
    try:
        while True:
            item = items.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


def threshold_voxels(energies: np.ndarray, threshold: float, copy: bool = True) -> np.ndarray:
    """``energies`` (same dtype; a copy unless ``copy`` is False) with voxels below ``threshold`` MeV
    set to zero, compared in the array's own type as the CaloChallenge script compares them
    (:func:`calobench.metrics.features.official_threshold`)."""
    return official_threshold(energies, threshold, copy=copy)


def random_rows(n_total: int, n_wanted: int, seed: int, salt: int) -> np.ndarray:
    """Sorted random rows (without replacement) of a sample of ``n_total``; all rows if fewer."""
    if n_wanted >= n_total:
        return np.arange(n_total)
    rng = np.random.default_rng([seed, salt])
    return np.sort(rng.choice(n_total, n_wanted, replace=False))


@dataclass
class SourceScan:
    """What one pass over a shower source collected (voxel energies after the threshold)."""

    features: HighLevelFeatures | None  # every shower's features; None if not kept
    histograms: FeatureHistograms
    n_showers: int
    voxel_max: float  # in ``voxel_dtype`` (a float32 file's maximum is a float32 value)
    voxel_positive_min: float
    voxel_sum: np.ndarray | None  # (n_voxels,) float64; None if not collected
    sample: Showers | None = None  # thresholded showers of ``sample_rows``, file order
    sample_features: HighLevelFeatures | None = None  # their features
    sample_rows: np.ndarray | None = None
    voxel_counts: np.ndarray | None = None  # histogram on the edges given to the scan
    voxel_values: list[np.ndarray] | None = None  # buffered values >= threshold (None: over budget)
    seconds: float = 0.0
    voxel_dtype: str = "float64"
    extra: dict = field(default_factory=dict)

    @property
    def mean_shower(self) -> np.ndarray:
        """Average energy per voxel (MeV) after the threshold."""
        if self.voxel_sum is None:
            raise ValueError("the scan did not collect the mean shower (mean_shower=False)")
        return self.voxel_sum / max(self.n_showers, 1)


def scan_source(
    source: ShowerSource,
    threshold: float,
    *,
    sample_rows: np.ndarray | None = None,
    voxel_edges: np.ndarray | None = None,
    buffer_bytes: int = 0,
    chunk_size: int | None = None,
    progress: bool = False,
    label: str = "showers",
    mean_shower: bool = True,
    keep_features: bool = True,
) -> SourceScan:
    """Stream ``source`` once; see the module docstring.

    Args:
        threshold: readout threshold (MeV); voxels below it are zero for everything collected.
        sample_rows: sorted rows to keep in memory (thresholded), or None.
        voxel_edges: edges of the voxel-energy histogram to fill, or None.
        buffer_bytes: keep the non-zero voxel values (after the threshold) while they take at
            most this many bytes; past it the buffer is dropped (``voxel_values`` is None).
        mean_shower: accumulate the energy per voxel (for the average-shower plots).
        keep_features: keep every shower's high-level features (else only the histograms of
            :class:`~calobench.metrics.histograms.FeatureHistograms` and the layer energies).
    """
    started = time.perf_counter()
    geometry = source.geometry
    features, kept, kept_features, buffer = [], [], [], []
    buffered = 0
    keep_buffer = buffer_bytes > 0
    voxel_max, positive_min = 0.0, math.inf
    voxel_dtype: np.dtype | None = None
    incident_dtype = getattr(source, "incident_dtype", np.dtype(np.float64))
    fresh = getattr(source, "fresh_chunks", False)  # each chunk a new array: threshold it in place
    voxel_sum = np.zeros(geometry.n_voxels) if mean_shower else None
    histograms = FeatureHistograms(geometry)
    counts = np.zeros(len(voxel_edges) - 1, dtype=np.int64) if voxel_edges is not None else None
    offset = 0
    n_chunks = None
    if chunk_size is not None:
        n_chunks = math.ceil(source.n_showers / chunk_size)
    bar = tqdm(
        prefetched(source.iter_chunks(chunk_size)),
        total=n_chunks,
        desc=f"reading {label}",
        unit="chunk",
        disable=None if progress else True,
        leave=False,
    )
    for chunk in bar:
        energies = chunk.energies if fresh else chunk.energies.copy()
        if threshold > 0:
            below = energies < float(threshold)  # the official comparison, in the voxels' own type
            np.putmask(energies, below, 0)
            above_zero = ~below  # validated voxels are >= 0: above zero = not below a positive threshold
        else:
            above_zero = energies > 0
        n = len(energies)
        voxel_dtype = energies.dtype if voxel_dtype is None else np.result_type(voxel_dtype, energies.dtype)
        chunk_features = features_of_thresholded(
            energies, chunk.incident_energies, geometry, incident_dtype, above_zero
        )
        histograms.add(chunk_features)
        if keep_features:
            features.append(chunk_features)
        positive = energies[above_zero]
        if positive.size:
            voxel_max = max(voxel_max, float(positive.max()))
        if voxel_sum is not None:
            voxel_sum += energies.sum(axis=0, dtype=np.float64)
        if counts is not None or keep_buffer or threshold <= 0:
            if threshold <= 0 and positive.size:
                positive_min = min(positive_min, float(positive.min()))
            if counts is not None:
                assert voxel_edges is not None  # counts is allocated only when there are edges
                counts += histogram_counts(positive, voxel_edges)
            if keep_buffer:
                buffered += positive.nbytes
                if buffered <= buffer_bytes:
                    buffer.append(positive)
                else:
                    keep_buffer, buffer = False, []
        if sample_rows is not None:
            local = sample_rows[(sample_rows >= offset) & (sample_rows < offset + n)] - offset
            if local.size:
                kept.append(Showers(chunk.incident_energies[local], energies[local], geometry))
                kept_features.append(chunk_features.subset(local))
        offset += n
    bar.close()
    if threshold > 0:
        positive_min = float(threshold)
    sample = sample_features = None
    if sample_rows is not None and kept:
        sample, sample_features = Showers.concatenate(kept), HighLevelFeatures.concatenate(kept_features)
    return SourceScan(
        features=HighLevelFeatures.concatenate(features) if keep_features else None,
        histograms=histograms,
        n_showers=offset,
        voxel_max=voxel_max,
        voxel_positive_min=positive_min if math.isfinite(positive_min) else math.nan,
        voxel_sum=voxel_sum,
        sample=sample,
        sample_features=sample_features,
        sample_rows=sample_rows,
        voxel_counts=counts,
        voxel_values=buffer if buffer_bytes > 0 and keep_buffer else None,
        seconds=time.perf_counter() - started,
        voxel_dtype=str(voxel_dtype or np.dtype(np.float64)),
    )


def histogram_source(
    source: ShowerSource,
    threshold: float,
    edges: np.ndarray,
    chunk_size: int | None = None,
    progress: bool = False,
    label: str = "showers",
) -> np.ndarray:
    """Voxel-energy histogram of a whole source in a second pass (voxels below threshold dropped)."""
    counts = np.zeros(len(edges) - 1, dtype=np.int64)
    bar = tqdm(
        prefetched(source.iter_chunks(chunk_size)),
        desc=f"voxel spectrum {label}",
        unit="chunk",
        disable=None if progress else True,
        leave=False,
    )
    for chunk in bar:
        energies = threshold_voxels(chunk.energies, threshold, copy=not getattr(source, "fresh_chunks", False))
        counts += histogram_counts(energies[energies > 0], edges)
    bar.close()
    return counts
