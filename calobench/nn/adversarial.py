"""Wasserstein-GAN losses with gradient penalty (Gulrajani et al., "Improved Training of Wasserstein
GANs", arXiv 1704.00028), for every adversarial model in calobench.

* :func:`critic_loss` -- ``E[D(fake)] - E[D(real)]``, what the critic minimizes (eq. 3 without the penalty);
* :func:`generator_loss` -- ``-E[D(fake)]``, what the generator minimizes;
* :func:`gradient_penalty` -- ``lambda E[(||grad_x D(x_hat)||_2 - 1)^2]`` at random points ``x_hat`` on the
  straight lines between real and fake samples (eq. 3, lambda = 10 in the paper).

The training pattern (n critic updates per generator update, several optimizers) is
:mod:`calobench.generator.adversarial`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

#: The penalty weight of arXiv 1704.00028 (also the BIB-AE's, arXiv 2005.05334).
DEFAULT_GP_WEIGHT = 10.0


def critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """``mean(D(fake)) - mean(D(real))``: minimized by the critic (the negative Wasserstein estimate)."""
    return fake_scores.mean() - real_scores.mean()


def generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """``-mean(D(fake))``: minimized by the generator."""
    return -fake_scores.mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    weight: float = DEFAULT_GP_WEIGHT,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The WGAN-GP penalty of ``critic`` between ``real`` and ``fake`` (same shape, first axis = samples).

    One mixing fraction ``eps ~ U(0, 1)`` per sample (drawn from ``generator`` if given, else torch's
    global RNG), ``x_hat = eps real + (1 - eps) fake`` (both detached), and the norm of the critic's
    gradient with respect to ``x_hat`` over all non-batch axes. The result keeps the graph
    (``create_graph=True``) so that it can be added to the critic's loss and back-propagated into
    the critic's weights. ``critic`` may close over conditioning inputs (``lambda x: D(x, energy)``);
    its scores are summed, so it may return one score per sample or several (a per-component critic).
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake samples differ in shape: {tuple(real.shape)} vs {tuple(fake.shape)}")
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = torch.rand(shape, generator=generator, device=real.device, dtype=real.dtype)
    mixed = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    with torch.enable_grad():
        scores = critic(mixed)
        (gradients,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = gradients.reshape(len(gradients), -1).norm(2, dim=1)
    return weight * (norms - 1.0).pow(2).mean()
