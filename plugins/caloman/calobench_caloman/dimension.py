"""The latent size of CaloMan's VAE, chosen by measuring the data's intrinsic dimension.

CaloMan's premise (arXiv 2211.15380; the ML4Jets 2022 talk) is that showers lie on a manifold of
much lower dimension than the voxel count -- about 20 for CaloChallenge DS1 photons, 75 for DS2,
110 for DS3 by the Levina-Bickel estimator -- and that the autoencoder's latent space should have
that dimension. With ``latent_dim = "auto"`` calobench's own estimator
(:func:`calobench.metrics.intrinsic_dimension.shower_intrinsic_dimension`, the
``intrinsic_dimension`` metric: Levina-Bickel MLE averaged over k = 5..20 on log10 voxel energies
above the readout threshold) is run on a seeded random subsample of the training showers and

    latent_dim = max(2, round(estimate))         (the rule, :data:`RULE`)

An integer ``latent_dim`` skips the measurement.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from calobench.errors import ConfigError
from calobench.generator.seeding import derive_seed
from calobench.metrics.intrinsic_dimension import K_RANGE, shower_intrinsic_dimension

RULE = "max(2, round(Levina-Bickel estimate on the training showers))"
MIN_LATENT = 2


@dataclass(frozen=True)
class LatentChoice:
    """The chosen latent size and, for ``"auto"``, the measurement behind it."""

    latent_dim: int
    requested: Any
    estimate: float | None = None
    error: float | None = None
    n_showers: int | None = None
    k_range: tuple[int, int] | None = None
    rule: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["k_range"] = None if self.k_range is None else list(self.k_range)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LatentChoice":
        values = dict(data)
        if values.get("k_range") is not None:
            values["k_range"] = tuple(values["k_range"])
        return cls(**values)

    def describe(self) -> str:
        if self.estimate is None:
            return f"latent_dim {self.latent_dim} (set)"
        return (
            f"latent_dim {self.latent_dim} (auto: intrinsic dimension {self.estimate:.1f} +- {self.error:.1f} "
            f"on {self.n_showers} training showers)"
        )


def rule(estimate: float) -> int:
    """The latent size for an intrinsic-dimension estimate (:data:`RULE`)."""
    return max(MIN_LATENT, int(round(float(estimate))))


def validate_request(requested: Any) -> None:
    """Raise :class:`ConfigError` unless ``requested`` is ``"auto"`` or an integer >= :data:`MIN_LATENT`."""
    if requested == "auto":
        return
    if isinstance(requested, bool) or not isinstance(requested, (int, float)) or int(requested) != requested:
        raise ConfigError(f"latent_dim must be an integer >= {MIN_LATENT} or 'auto', got {requested!r}")
    if int(requested) < MIN_LATENT:
        raise ConfigError(f"latent_dim must be >= {MIN_LATENT} (the latent flow couples two halves), got {requested}")


def choose_latent_dim(
    requested: Any,
    energies: np.ndarray,
    threshold: float,
    *,
    max_showers: int,
    seed: int,
    n_bootstrap: int = 20,
) -> LatentChoice:
    """``requested`` (an integer, or ``"auto"``) -> the latent size, measuring the showers for ``"auto"``.

    Args:
        requested: the config's ``latent_dim``.
        energies: (n, n_voxels) training showers in MeV.
        threshold: readout threshold in MeV (the metric's transform sets voxels below it to 0.1 MeV).
        max_showers: size of the seeded random subsample measured.
        seed: seed of the subsample and of the bootstrap error.
        n_bootstrap: bootstrap resamples of the error.
    """
    validate_request(requested)
    if requested != "auto":
        return LatentChoice(int(requested), requested)
    n = len(energies)
    if n <= K_RANGE[1] + 1:
        raise ConfigError(
            f"latent_dim='auto' measures the intrinsic dimension with up to {K_RANGE[1]} neighbours and needs more "
            f"than {K_RANGE[1] + 1} training showers (got {n}); set latent_dim to an integer"
        )
    rng = np.random.default_rng(derive_seed(seed, "intrinsic-dimension"))
    chosen = np.sort(rng.choice(n, min(n, int(max_showers)), replace=False))
    result = shower_intrinsic_dimension(
        np.asarray(energies[chosen], dtype=np.float32), threshold, K_RANGE, n_bootstrap=n_bootstrap, seed=seed
    )
    return LatentChoice(
        latent_dim=rule(result.value),
        requested="auto",
        estimate=result.value,
        error=result.error,
        n_showers=result.n_points,
        k_range=result.k_range,
        rule=RULE,
    )
