"""Separation power (the CaloChallenge "chi2", a triangular discrimination) of two histograms.

With ``p`` and ``q`` the per-bin probabilities of the reference and the generated histogram, each
normalized over its *in-range* entries (entries outside the bin range are dropped)::

    S = 1/2 * sum_i (p_i - q_i)^2 / (p_i + q_i + 1e-16),     0 <= S <= 1

(arXiv 2410.21611). Given the bin edges, ``p`` is formed as the official script forms it,
``np.histogram(..., density=True)[0] * np.diff(bins)`` = ``counts / widths / total * widths``, so that
the result is the official number to the last bit. S = 0 for identical histograms and S = 1 for
histograms without a common bin. Where exactly one sample has no entry in range, calobench gives
1.0 (nothing in common) and the official script NaN (0 / 0): a deliberate difference, so that a
sample entirely out of range ranks as the worst rather than as unknown.

For two samples of the *same* distribution with N and M entries, ``2 N_eff S`` with
``N_eff = 2 N M / (N + M)`` is approximately a chi^2 variable with (occupied bins - 1) degrees of
freedom (the two-sample chi^2 test), which gives the floor below which a separation power means
nothing: :func:`null_separation_power`. This is calobench's addition, not part of the protocol.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EPS = 1e-16


def histogram_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts (int64) of ``values`` in the bins ``edges``: :func:`numpy.histogram` itself (bins closed
    on the left, the last one also on the right, out-of-range values dropped), which for explicit
    edges sorts blocks of the data and is faster than searching every value."""
    values = np.asarray(values).reshape(-1)
    return np.histogram(values, np.asarray(edges, dtype=np.float64))[0].astype(np.int64)


def separation_power_from_counts(
    reference_counts: np.ndarray, generated_counts: np.ndarray, edges: np.ndarray | None = None
) -> float:
    """S of two histograms given as counts (or weights) on the same bins.

    With ``edges``, the probabilities are rounded as the official script rounds them (see the
    module docstring). Returns ``nan`` when both histograms are empty and 1.0 when exactly one of
    them is (nothing in common), instead of dividing by zero.
    """
    ref = np.asarray(reference_counts)
    gen = np.asarray(generated_counts)
    if ref.shape != gen.shape:
        raise ValueError(f"histograms have different bins: {ref.shape} and {gen.shape}")
    ref_total, gen_total = ref.sum(), gen.sum()
    if ref_total <= 0 or gen_total <= 0:
        return math.nan if ref_total <= 0 and gen_total <= 0 else 1.0
    if edges is not None:
        widths = np.diff(np.asarray(edges, dtype=np.float64))
        p, q = ref / widths / ref_total * widths, gen / widths / gen_total * widths
    else:
        p, q = ref / ref_total, gen / gen_total
    terms = (p - q) ** 2
    terms /= p + q + EPS
    return float(0.5 * terms.sum())


def separation_power(reference: np.ndarray, generated: np.ndarray, edges: np.ndarray) -> float:
    """S of two samples histogrammed with ``edges`` (see the module docstring)."""
    return separation_power_from_counts(histogram_counts(reference, edges), histogram_counts(generated, edges), edges)


@dataclass(frozen=True)
class NullExpectation:
    """Mean and standard deviation of S for two samples of one distribution (chi^2 approximation)."""

    mean: float
    std: float
    degrees_of_freedom: int
    n_effective: float


def null_separation_power(reference_counts: np.ndarray, generated_counts: np.ndarray) -> NullExpectation:
    """What S would be, on average, if both histograms came from the same distribution.

    ``2 N_eff S ~ chi^2(k - 1)`` with k the occupied bins and ``N_eff = 2 N M / (N + M)`` the
    effective number of in-range entries, so S has mean ``(k - 1) / (2 N_eff)`` and standard
    deviation ``sqrt(2 (k - 1)) / (2 N_eff)``. A large-count approximation: bins with a handful of
    entries make it rough, but it tells a real difference (S many standard deviations above the
    mean) from sampling noise.
    """
    ref = np.asarray(reference_counts, dtype=np.float64)
    gen = np.asarray(generated_counts, dtype=np.float64)
    n, m = ref.sum(), gen.sum()
    occupied = int(np.count_nonzero(ref + gen))
    if n <= 0 or m <= 0 or occupied < 1:
        return NullExpectation(math.nan, math.nan, max(occupied - 1, 0), 0.0)
    n_eff = 2.0 * n * m / (n + m)
    dof = occupied - 1
    return NullExpectation(dof / (2.0 * n_eff), math.sqrt(2.0 * dof) / (2.0 * n_eff), dof, n_eff)
