"""Per-voxel marginal distributions in incident-energy bins: their CDF and its inverse.

:class:`VoxelMarginals` tabulates, for each incident-energy bin and each voxel, the empirical
distribution of ``x = voxel energy / E_inc`` the way ``baseline-uncorrelated`` does: the probability
``p0`` that the voxel is exactly zero and ``Q`` quantiles (levels ``0, 1/(Q-1), ..., 1``) of its
non-zero values, linear in between. On top of the tables it offers

* :meth:`VoxelMarginals.cdf` -- the randomized probability integral transform (PIT): a zero voxel
  goes to ``u ~ U(0, p0)``, a non-zero one to ``p0 + (1 - p0) F(x)`` with F the tabulated CDF of
  the non-zero values, so that ``u`` is U(0, 1) when ``x`` follows the tabulated distribution;
* :meth:`VoxelMarginals.inverse_cdf` -- the quantile function (``u < p0`` gives 0);
* :func:`copula_transform` -- the two together: a generator's output is mapped voxel by voxel to
  the data's marginals through its own marginals (``u = F_gen(x)``, ``x' = F_data^-1(u)``), which
  keeps the rank (copula) structure of the generated voxels and makes their per-bin marginals the
  data's; with ``rho < 1`` the normal scores of the ranks are mixed with independent noise,
  ``s = rho Phi^-1(u) + sqrt(1 - rho^2) eps`` (a Gaussian-copula shrinkage towards independence;
  ``rho = 0`` samples what ``baseline-uncorrelated`` samples).

Energy bins: one per training energy when there are at most ``max_discrete`` distinct values (the
CaloChallenge data set 1 energies), else ``n_energy_bins`` bins with equal numbers of showers in
log E_inc. Tables are float64 torch tensors on the CPU; :meth:`state` / :meth:`from_state` hold
only tensors and numbers (checkpoints load with ``weights_only=True``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class VoxelMarginals:
    """Tables of per-(energy bin, voxel) distributions of voxel / E_inc (see the module docstring).

    ``log_energies``: bin centres (``discrete``) or the inner bin edges in log(E_inc / MeV);
    ``p_zero`` (bins, V); ``quantiles`` (bins, V, Q), non-decreasing along the last axis."""

    log_energies: torch.Tensor
    discrete: bool
    p_zero: torch.Tensor
    quantiles: torch.Tensor

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls,
        incident: torch.Tensor,
        fractions: torch.Tensor,
        n_quantiles: int = 64,
        n_energy_bins: int = 10,
        max_discrete: int = 32,
    ) -> "VoxelMarginals":
        """Tabulate (N,) incident energies in MeV and (N, V) fractions voxel / E_inc."""
        fractions = torch.as_tensor(fractions)
        return cls._tabulate(
            incident,
            fractions.shape[1],
            lambda rows: fractions[rows].double(),
            n_quantiles,
            n_energy_bins,
            max_discrete,
        )

    @classmethod
    def fit_energies(
        cls,
        incident: torch.Tensor,
        energies: torch.Tensor,
        n_quantiles: int = 64,
        n_energy_bins: int = 10,
        max_discrete: int = 32,
    ) -> "VoxelMarginals":
        """Tabulate (N,) incident energies and (N, V) voxel energies, both in MeV: the fractions are
        formed one energy bin at a time in float64, so the voxels are never copied whole."""
        energies = torch.as_tensor(energies)
        incident64 = torch.as_tensor(incident, dtype=torch.float64).reshape(-1)
        return cls._tabulate(
            incident,
            energies.shape[1],
            lambda rows: energies[rows].double() / incident64[rows, None],
            n_quantiles,
            n_energy_bins,
            max_discrete,
        )

    @classmethod
    def _tabulate(
        cls,
        incident: torch.Tensor,
        n_voxels: int,
        fractions_of: Callable[[torch.Tensor], torch.Tensor],
        n_quantiles: int,
        n_energy_bins: int,
        max_discrete: int,
    ) -> "VoxelMarginals":
        """The tables, from ``fractions_of(rows)``: the (len(rows), V) float64 fractions of those showers."""
        if n_quantiles < 2:
            raise ValueError(f"n_quantiles must be >= 2, got {n_quantiles}")
        if len(incident) == 0:
            raise ValueError("no showers to tabulate")
        log_energy = torch.log(torch.as_tensor(incident, dtype=torch.float64).reshape(-1))
        unique = torch.unique(log_energy)
        discrete = len(unique) <= max_discrete and len(log_energy) >= 2 * len(unique)
        if discrete:
            edges = unique
        else:
            n_bins = max(1, min(int(n_energy_bins), len(log_energy) // 2))
            levels = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)[1:-1]
            edges = torch.unique(torch.quantile(log_energy, levels))
        marginals = cls(edges, bool(discrete), torch.empty(0), torch.empty(0))
        bins = marginals.bins(log_energy.exp())
        n_bins = len(edges) if discrete else len(edges) + 1
        levels = torch.linspace(0, 1, n_quantiles, dtype=torch.float64)
        p_zero = torch.ones((n_bins, n_voxels), dtype=torch.float64)
        quantiles = torch.zeros((n_bins, n_voxels, n_quantiles), dtype=torch.float64)
        counts = torch.bincount(bins, minlength=n_bins)
        for b in range(n_bins):
            rows = torch.nonzero(bins == b).view(-1)
            if len(rows) == 0:
                continue
            values = torch.sort(fractions_of(rows), dim=0).values
            n_zero = (values <= 0).sum(dim=0)
            n_nonzero = len(rows) - n_zero
            p_zero[b] = n_zero.double() / len(rows)
            # quantile j of the non-zero part: linear interpolation between order statistics
            position = n_zero[None, :] + levels[:, None] * (n_nonzero - 1).clamp_min(0)[None, :]
            low = position.floor().long().clamp(max=len(rows) - 1)
            high = (low + 1).clamp(max=len(rows) - 1)
            weight = position - low
            table = values.gather(0, low) * (1 - weight) + values.gather(0, high) * weight
            table[:, n_nonzero == 0] = 0.0
            quantiles[b] = table.T
        filled = torch.nonzero(counts > 0).view(-1)
        for empty in torch.nonzero(counts == 0).view(-1).tolist():  # borrow the nearest filled bin
            source = int(filled[(filled - empty).abs().argmin()])
            p_zero[empty], quantiles[empty] = p_zero[source], quantiles[source]
        # stored as float32 (:meth:`state`): the fitted tables hold exactly what a loaded model holds
        marginals.p_zero, marginals.quantiles = p_zero.float().double(), quantiles.float().double()
        return marginals

    def bins(self, incident: torch.Tensor) -> torch.Tensor:
        """(N,) incident energies in MeV -> (N,) bin indices."""
        log_energy = torch.log(torch.as_tensor(incident, dtype=torch.float64).reshape(-1))
        if self.discrete:
            return (log_energy[:, None] - self.log_energies[None, :]).abs().argmin(dim=1)
        return torch.searchsorted(self.log_energies, log_energy, right=True)

    # ------------------------------------------------------------------ transforms
    def cdf(
        self, fractions: torch.Tensor, incident: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Randomized PIT of (N, V) fractions at (N,) incident energies -> (N, V) u in [0, 1] (float64)."""
        fractions = torch.as_tensor(fractions, dtype=torch.float64)
        uniform = torch.rand(fractions.shape, generator=generator, dtype=torch.float64)
        bins = self.bins(incident)
        out = torch.empty_like(fractions)
        n_quantiles = self.quantiles.shape[2]
        for b in torch.unique(bins).tolist():
            rows = torch.nonzero(bins == b).view(-1)
            x, p0 = fractions[rows].T.contiguous(), self.p_zero[b][:, None]  # (V, n)
            table = self.quantiles[b]  # (V, Q)
            index = torch.searchsorted(table, x).clamp(1, n_quantiles - 1)
            low, high = table.gather(1, index - 1), table.gather(1, index)
            width = high - low
            weight = torch.where(width > 0, (x - low) / width.clamp_min(1e-300), torch.ones_like(x)).clamp(0, 1)
            level = ((index - 1) + weight) / (n_quantiles - 1)
            level = torch.where(x <= table[:, :1], torch.zeros_like(level), level)
            u = p0 + (1 - p0) * level
            u = torch.where(x <= 0, p0 * uniform[rows].T, u)
            out[rows] = u.T
        return out

    def inverse_cdf(self, u: torch.Tensor, incident: torch.Tensor) -> torch.Tensor:
        """The quantile function: (N, V) u in [0, 1] at (N,) incident energies -> (N, V) fractions (float64)."""
        u = torch.as_tensor(u, dtype=torch.float64)
        bins = self.bins(incident)
        out = torch.zeros_like(u)
        n_quantiles = self.quantiles.shape[2]
        for b in torch.unique(bins).tolist():
            rows = torch.nonzero(bins == b).view(-1)
            p0 = self.p_zero[b][None, :]
            v = u[rows]
            nonzero = v >= p0
            level = torch.where(nonzero, (v - p0) / (1 - p0).clamp_min(1e-300), torch.zeros_like(v)).clamp(0, 1)
            position = level * (n_quantiles - 1)
            low = position.floor().long().clamp(max=n_quantiles - 2)
            weight = position - low
            table = self.quantiles[b].T  # (Q, V)
            values = table.gather(0, low) * (1 - weight) + table.gather(0, low + 1) * weight
            out[rows] = torch.where(nonzero, values, torch.zeros_like(values))
        return out

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        return {
            "log_energies": self.log_energies,
            "discrete": self.discrete,
            "p_zero": self.p_zero.float(),
            "quantiles": self.quantiles.float(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "VoxelMarginals":
        return cls(
            torch.as_tensor(state["log_energies"], dtype=torch.float64),
            bool(state["discrete"]),
            torch.as_tensor(state["p_zero"], dtype=torch.float64),
            torch.as_tensor(state["quantiles"], dtype=torch.float64),
        )


def copula_transform(
    fractions: torch.Tensor,
    incident: torch.Tensor,
    source: VoxelMarginals,
    target: VoxelMarginals,
    rho: float = 1.0,
    generator: torch.Generator | None = None,
    eps: float = 1e-7,
) -> torch.Tensor:
    """Map (N, V) fractions distributed per ``source`` to ``target``'s marginals voxel by voxel,
    keeping the ranks (``rho = 1``) or shrinking their normal scores towards independence (see the
    module docstring). Returns float64 fractions."""
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"rho must be in [0, 1], got {rho}")
    u = source.cdf(fractions, incident, generator)
    if rho < 1.0:
        noise = torch.randn(u.shape, generator=generator, dtype=torch.float64)
        scores = torch.special.ndtri(u.clamp(eps, 1 - eps))
        u = torch.special.ndtr(rho * scores + math.sqrt(1.0 - rho * rho) * noise)
    return target.inverse_cdf(u, incident)
