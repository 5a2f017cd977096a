"""Settings of the metrics under the evaluation presets ``quick`` and ``paper`` (and ``smoke`` for tests).

``paper`` follows the CaloChallenge protocol (arXiv 2410.21611) where it fixes a number: FPD with
20 resamples per batch size, KPD with 10 batches of 10000, PRDC with k = 5, classifiers as in
:mod:`calobench.metrics.classifier.presets`. Where the protocol is silent (how many showers PRDC
and the intrinsic dimension use, how many showers the classifiers may hold in memory) the numbers
below are calobench's and are recorded in every report. ``quick`` trades statistical precision
(never the definitions) for minutes on two CPU cores: fewer FPD resamples and KPD batches of 5000
(the estimators stay unbiased; their errors grow), and smaller subsamples for PRDC, the intrinsic
dimension and the classifiers.

In-memory samples are capped both in showers and in bytes (float32 voxels), so dataset 3
(40500 voxels) never needs more than ``max_sample_bytes`` per sample: 2 x 50,000 dataset-3
showers would take 16 GB.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from calobench.errors import ConfigError

PRESETS: tuple[str, ...] = ("smoke", "quick", "paper")


@dataclass(frozen=True)
class MetricSettings:
    name: str
    fpd_resamples: int
    kpd_batches: int
    kpd_batch_size: int
    prdc_showers: int
    prdc_k: int
    id_showers: int
    id_k_range: tuple[int, int]
    id_bootstrap: int
    classifier_showers: int  # per sample, before the byte cap
    max_sample_bytes: int  # per in-memory sample (float32 voxels)
    voxel_buffer_bytes: int  # reference voxel values kept to avoid a second pass for the voxel spectrum;
    # past it the reference is read twice: what an evaluation holds is bounded, whatever its size

    def to_dict(self) -> dict:
        data = asdict(self)
        data["id_k_range"] = list(self.id_k_range)
        return data

    def cap(self, wanted: int, n_voxels: int) -> int:
        """``wanted`` showers, capped so one sample takes at most ``max_sample_bytes``."""
        return max(1, min(wanted, self.max_sample_bytes // (4 * n_voxels)))


_SETTINGS = {
    "smoke": MetricSettings(
        "smoke",
        fpd_resamples=2,
        kpd_batches=3,
        kpd_batch_size=500,
        prdc_showers=500,
        prdc_k=5,
        id_showers=500,
        id_k_range=(5, 20),
        id_bootstrap=20,
        classifier_showers=2000,
        max_sample_bytes=256 * 2**20,
        voxel_buffer_bytes=256 * 2**20,
    ),
    "quick": MetricSettings(
        "quick",
        fpd_resamples=5,
        kpd_batches=10,
        kpd_batch_size=5000,
        prdc_showers=5000,
        prdc_k=5,
        id_showers=5000,
        id_k_range=(5, 20),
        id_bootstrap=100,
        classifier_showers=50_000,
        max_sample_bytes=1 * 2**30,
        voxel_buffer_bytes=128 * 2**20,
    ),
    "paper": MetricSettings(
        "paper",
        fpd_resamples=20,
        kpd_batches=10,
        kpd_batch_size=10_000,
        prdc_showers=10_000,
        prdc_k=5,
        id_showers=20_000,
        id_k_range=(5, 20),
        id_bootstrap=200,
        classifier_showers=200_000,
        max_sample_bytes=3 * 2**30,
        voxel_buffer_bytes=256 * 2**20,
    ),
}


def metric_settings(preset: str) -> MetricSettings:
    """The settings of ``preset`` (``smoke``, ``quick`` or ``paper``)."""
    try:
        return _SETTINGS[preset]
    except KeyError:
        raise ConfigError(f"unknown evaluation preset {preset!r}; choose one of {', '.join(PRESETS)}") from None
