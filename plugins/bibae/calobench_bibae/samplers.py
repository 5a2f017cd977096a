"""Latent samplers of the BIB-AE: where the encoded latent dimensions come from at generation time.

* ``normal`` -- N(0, 1), the prior the KL, MMD and latent-critic terms push the encoded latents to
  (the published default, arXiv 2005.05334);
* ``kde`` -- a Gaussian kernel density estimate of the encoded training showers ("Decoding Photons",
  Buhmann et al., arXiv 2102.12491: the encoded latent space is not exactly N(0, 1), and sampling
  from its density estimate improves the generated showers). The density is fitted jointly over
  ``[z, w e]``, e the standardized log E_inc and w = ``kde_energy_weight``, with scikit-learn's
  ``KernelDensity`` (Gaussian kernel), the bandwidth chosen by cross-validated log-likelihood
  (``GridSearchCV``); it is sampled conditionally on E_inc: a training point i with probability
  ``proportional to exp(-(w e - w e_i)^2 / 2h^2)``, then ``z_i + h N(0, 1)`` (the exact conditional
  of the product-kernel KDE). The original KDE code is not public (models.md sec. 3.5);
* ``flow`` -- a conditional normalizing flow p(z | E_inc) trained on the encoded training showers
  (the BIB-AE with a latent flow of arXiv 2303.18150): the core's conditional rational-quadratic
  spline coupling flow (:mod:`calobench.nn.coupling`) with the energy as context.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import normflows as nf
import numpy as np
import torch

from calobench.nn.coupling import coupling_flow

SAMPLERS = ("normal", "kde", "flow")


@dataclass
class LatentKDE:
    """A fitted conditional KDE: ``points`` (n, k) latents, ``energies`` (n,) their weighted
    standardized log E_inc, ``bandwidth`` h (in the joint space), ``energy_weight`` w."""

    points: torch.Tensor
    energies: torch.Tensor
    bandwidth: float
    energy_weight: float

    @classmethod
    def fit(
        cls,
        latents: np.ndarray,
        conditions: np.ndarray,
        rng: np.random.Generator,
        max_points: int,
        cv_points: int,
        bandwidths: Sequence[float],
        energy_weight: float,
        folds: int = 3,
    ) -> "LatentKDE":
        """Fit on (N, k) latents and (N,) standardized log E_inc; the bandwidth by ``folds``-fold CV
        over ``bandwidths`` on at most ``cv_points`` random points; keep at most ``max_points``."""
        from sklearn.model_selection import GridSearchCV
        from sklearn.neighbors import KernelDensity

        joint = np.hstack([latents, energy_weight * conditions[:, None]]).astype(np.float64)
        order = rng.permutation(len(joint))
        candidates = sorted({float(b) for b in bandwidths})
        if len(candidates) > 1 and len(joint) >= 2 * folds:
            subset = joint[order[: max(2 * folds, min(int(cv_points), len(joint)))]]
            search = GridSearchCV(KernelDensity(kernel="gaussian"), {"bandwidth": candidates}, cv=folds)
            search.fit(subset)
            bandwidth = float(search.best_params_["bandwidth"])
        else:
            bandwidth = candidates[0]
        kept = joint[np.sort(order[: min(int(max_points), len(joint))])]
        return cls(
            torch.as_tensor(kept[:, :-1], dtype=torch.float32),
            torch.as_tensor(kept[:, -1], dtype=torch.float32),
            bandwidth,
            float(energy_weight),
        )

    def state(self) -> dict:
        return {
            "points": self.points,
            "energies": self.energies,
            "bandwidth": self.bandwidth,
            "energy_weight": self.energy_weight,
        }

    @classmethod
    def from_state(cls, state: dict) -> "LatentKDE":
        return cls(
            torch.as_tensor(state["points"], dtype=torch.float32),
            torch.as_tensor(state["energies"], dtype=torch.float32),
            float(state["bandwidth"]),
            float(state["energy_weight"]),
        )

    def sample(self, conditions: torch.Tensor, generator: torch.Generator, chunk: int = 512) -> torch.Tensor:
        """(B,) standardized log E_inc -> (B, k) latents drawn from the KDE given the energy."""
        device = conditions.device
        points, energies = self.points.to(device), self.energies.to(device)
        h = self.bandwidth
        out = []
        for first in range(0, len(conditions), chunk):
            target = self.energy_weight * conditions[first : first + chunk].float()
            logits = -0.5 * ((target[:, None] - energies[None, :]) / h) ** 2
            weights = torch.softmax(logits, dim=1)
            index = torch.multinomial(weights, 1, generator=generator).squeeze(1)
            noise = torch.randn((len(index), points.shape[1]), generator=generator, device=device)
            out.append(points[index] + h * noise)
        return torch.cat(out)


def build_latent_flow(
    n_latent: int, cond_dim: int, blocks: int, hidden: int, bins: int, tail_bound: float
) -> nf.ConditionalNormalizingFlow:
    """The shared conditional coupling flow (:func:`calobench.nn.coupling.coupling_flow`: per block
    ActNorm -> rational-quadratic spline coupling with an MLP conditioner of two ``hidden``-wide
    layers -> fixed permutation) over ``n_latent`` dimensions with ``cond_dim`` context values."""
    return coupling_flow(n_latent, cond_dim, blocks, [hidden, hidden], num_bins=bins, tail_bound=tail_bound)
