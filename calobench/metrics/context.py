"""The evaluation context a metric computes on: two shower sources and what one pass over each gave.

The context streams each source once (:func:`calobench.metrics.scan.scan_source`), reference first,
collecting the high-level features, the voxel-energy histogram and a random in-memory subsample as
large as the most demanding selected metric needs (capped by the preset). Metrics read the results
through the properties below; nothing is read twice except, for a reference too large for the
voxel buffer, one extra pass for its voxel-energy histogram.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from calobench.errors import CalobenchError, ConfigError, ShowerFileError
from calobench.geometry import Geometry
from calobench.metrics.binning import voxel_edges
from calobench.metrics.features import HighLevelFeatures
from calobench.metrics.presets import MetricSettings, metric_settings
from calobench.metrics.scan import ShowerSource, SourceScan, histogram_source, random_rows, scan_source
from calobench.metrics.separation import histogram_counts
from calobench.showers import Showers

if TYPE_CHECKING:
    from calobench.metrics.base import Metric

REFERENCE_SALT = 0x5EF
GENERATED_SALT = 0x6E4


@dataclass(frozen=True)
class VoxelSpectrum:
    """The voxel-energy histograms of both samples on the reference binning."""

    edges: np.ndarray
    reference_counts: np.ndarray
    generated_counts: np.ndarray
    second_pass: bool


@dataclass
class EvaluationContext:
    """Everything a :class:`~calobench.metrics.base.Metric` may use.

    Attributes:
        reference, generated: shower sources (open files or :class:`~calobench.metrics.scan.InMemorySource`).
        geometry: the common geometry; ``threshold`` the readout threshold (MeV) of the features.
        preset: ``quick`` or ``paper`` (``smoke`` in tests); ``settings`` its metric settings.
        seed: every random step of every metric derives from it.
        device: torch device for kNN, kernels and classifiers (``cpu``, ``cuda``...).
        dataset: the data-set name, when known.
        options: free-form settings for individual metrics (e.g. ``classifier_runs``).
        mean_shower: collect the average shower of each sample (the plots need it).
        keep_features: keep every shower's high-level features even if no selected metric reads
            them (the plots do); they take memory in proportion to the number of showers.
    """

    reference: ShowerSource
    generated: ShowerSource
    geometry: Geometry
    threshold: float
    preset: str = "quick"
    seed: int = 0
    device: str = "cpu"
    dataset: str | None = None
    progress: bool = False
    chunk_size: int | None = None
    options: dict = field(default_factory=dict)
    mean_shower: bool = True
    keep_features: bool = True
    settings: MetricSettings = field(init=False)
    _scans: dict[str, SourceScan] = field(default_factory=dict, init=False, repr=False)
    _spectrum: VoxelSpectrum | None = field(default=None, init=False, repr=False)
    _sample_size: int = field(default=0, init=False, repr=False)
    _wants_spectrum: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.settings = metric_settings(self.preset)
        for name, source in (("reference", self.reference), ("generated", self.generated)):
            if source.geometry.n_voxels != self.geometry.n_voxels or source.geometry.layers != self.geometry.layers:
                raise ShowerFileError(
                    f"the {name} showers have geometry {source.geometry.name} ({source.geometry.n_voxels} voxels) "
                    f"but the evaluation uses {self.geometry.name} ({self.geometry.n_voxels} voxels); reference "
                    "and generated samples must share one geometry"
                )
        if self.reference.n_showers < 2 or self.generated.n_showers < 2:
            raise ShowerFileError(
                f"an evaluation needs at least 2 showers per sample, got {self.reference.n_showers} "
                f"reference and {self.generated.n_showers} generated"
            )

    # ------------------------------------------------------------------ the streaming pass
    def prepare(self, metrics: Iterable["Metric"] = ()) -> None:
        """Stream both sources once, collecting what ``metrics`` need (idempotent)."""
        if self._scans:
            return
        metrics = list(metrics)
        self._sample_size = max([m.showers_needed(self) for m in metrics] + [0])
        self._wants_spectrum = any(m.needs_voxel_spectrum for m in metrics)
        n_sample = self.sample_cap(self._sample_size)
        budget = self.settings.voxel_buffer_bytes if self._wants_spectrum else 0
        keep = self.keeps_features(metrics)
        self.check_memory(keep)
        ref_rows = random_rows(self.reference.n_showers, n_sample, self.seed, REFERENCE_SALT) if n_sample else None
        reference = scan_source(
            self.reference,
            self.threshold,
            sample_rows=ref_rows,
            buffer_bytes=budget,
            chunk_size=self.chunk_size,
            progress=self.progress,
            label="reference",
            mean_shower=self.mean_shower,
            keep_features=keep,
        )
        edges = None
        if self._wants_spectrum:
            edges = voxel_edges(
                self.threshold, reference.voxel_max, reference.voxel_positive_min, reference.voxel_dtype
            )
        gen_rows = random_rows(self.generated.n_showers, n_sample, self.seed, GENERATED_SALT) if n_sample else None
        generated = scan_source(
            self.generated,
            self.threshold,
            sample_rows=gen_rows,
            voxel_edges=edges,
            chunk_size=self.chunk_size,
            progress=self.progress,
            label="generated",
            mean_shower=self.mean_shower,
            keep_features=keep,
        )
        self._scans = {"reference": reference, "generated": generated}
        if edges is not None:
            second_pass = reference.voxel_values is None
            if second_pass:
                ref_counts = histogram_source(
                    self.reference, self.threshold, edges, self.chunk_size, self.progress, "reference"
                )
            else:
                ref_counts = np.zeros(len(edges) - 1, dtype=np.int64)
                for values in reference.voxel_values:  # type: ignore[union-attr]
                    ref_counts += histogram_counts(values, edges)
                reference.voxel_values = None
            self._spectrum = VoxelSpectrum(edges, ref_counts, generated.voxel_counts, second_pass)  # type: ignore[arg-type]

    def keeps_features(self, metrics: Iterable["Metric"]) -> bool:
        """Whether streaming keeps every shower's high-level features (the plots or a metric read them)."""
        return self.keep_features or any(m.needs_features for m in metrics)

    def check_memory(self, keep_features: bool) -> None:
        """Refuse, with one clear error, samples whose per-shower numbers cannot fit in memory.

        Streaming keeps per shower the layer energies (in the voxels' type) and, when a metric or
        the plots read them, every high-level feature (float64, twice while the chunks are joined);
        a file that declares 10^9 showers would grow without limit."""
        from calobench.memory import MEMORY_FRACTION, available_memory_bytes, gigabytes

        n_layers = self.geometry.n_layers
        n_angular = sum(1 for i in self.geometry.layer_ids if self.geometry.binned_in_angle(i))
        per_shower = 8.0 * n_layers  # layer energies, float64 at most
        if keep_features:
            per_shower += 2 * 8.0 * (2 + 4 * n_layers + 4 * n_angular)
        n_total = self.reference.n_showers + self.generated.n_showers
        need = n_total * per_shower
        budget = MEMORY_FRACTION * available_memory_bytes()
        if need <= budget:
            return
        largest = max(self.reference.n_showers, self.generated.n_showers)
        fits = max(1, int(budget // (2 * per_shower)))
        raise ConfigError(
            f"the samples hold {self.reference.n_showers:,} reference and {self.generated.n_showers:,} generated "
            f"showers ({largest:,} in the larger): their per-shower {'features' if keep_features else 'layer energies'} "
            f"take about {gigabytes(need)}, more than this machine can give "
            f"({gigabytes(available_memory_bytes())} available); evaluate the first showers only "
            f"(--max-showers {fits:,} or fewer)"
            + ("" if not keep_features else ", or only the separation powers (--metrics separation_power --no-plots)")
        )

    def sample_cap(self, wanted: int) -> int:
        """Showers per in-memory sample for ``wanted``, after the preset's byte cap."""
        return self.settings.cap(wanted, self.geometry.n_voxels) if wanted > 0 else 0

    def _scan(self, which: str) -> SourceScan:
        if not self._scans:
            self.prepare()
        return self._scans[which]

    @property
    def reference_scan(self) -> SourceScan:
        return self._scan("reference")

    @property
    def generated_scan(self) -> SourceScan:
        return self._scan("generated")

    def _features(self, which: str) -> HighLevelFeatures:
        features = self._scan(which).features
        if features is None:
            raise CalobenchError(
                f"the {which} showers' high-level features were not kept: a metric reads them but did not "
                "say so (Metric.needs_features)"
            )
        return features

    @property
    def reference_features(self) -> HighLevelFeatures:
        return self._features("reference")

    @property
    def generated_features(self) -> HighLevelFeatures:
        return self._features("generated")

    @property
    def n_reference(self) -> int:
        return self.reference_scan.n_showers

    @property
    def n_generated(self) -> int:
        return self.generated_scan.n_showers

    def voxel_spectrum(self) -> VoxelSpectrum | None:
        """The voxel-energy histograms (None if no metric asked for them in :meth:`prepare`, or if
        the reference has no voxel above the threshold)."""
        self._scan("reference")
        return self._spectrum

    def sample(self, which: str, n: int) -> tuple[Showers, HighLevelFeatures]:
        """A uniformly random subsample of at most ``n`` showers (thresholded, in memory) of the
        ``reference`` or ``generated`` source, with its features; deterministic given the seed."""
        scan = self._scan(which)
        if scan.sample is None or scan.sample_rows is None:
            raise CalobenchError(
                f"no {which} showers were kept in memory: a metric needs showers but did not "
                "ask for them through showers_needed()"
            )
        available = len(scan.sample_rows)
        assert scan.sample_features is not None  # collected with the sample
        if n < available:
            rng = np.random.default_rng([self.seed, REFERENCE_SALT if which == "reference" else GENERATED_SALT, n])
            pick = np.sort(rng.permutation(available)[:n])
            return scan.sample[pick], scan.sample_features.subset(pick)
        return scan.sample, scan.sample_features

    def sample_sizes(self) -> dict[str, int]:
        sizes = {}
        for which in ("reference", "generated"):
            scan = self._scans.get(which)
            sizes[which] = 0 if scan is None or scan.sample_rows is None else len(scan.sample_rows)
        return sizes

    def scan_seconds(self) -> dict[str, float]:
        return {which: scan.seconds for which, scan in self._scans.items()}


def finite_or_none(value: float | None) -> float | None:
    """JSON-friendly float: NaN and inf become None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
