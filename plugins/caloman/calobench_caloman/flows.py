"""CaloMan's conditional neural spline flows, built from normflows parts (arXiv 2211.15380).

Both flows of the model -- the layer-energy flow given E_inc and the density estimator on the VAE's
latent means given the label -- are the two-step-zoo ``simple_nsf`` (calo-man
config/density_estimator.py: 4 layers, conditioner ``ResidualNet`` hidden 64 with 3 blocks, 8 bins,
tail bound 1, linear tails), each coupling layer followed by a random permutation and an LU-factorized
linear map initialized to the identity (normflows ``LULinearPermute``), on a standard normal base.
The coupling layers are :class:`calobench.nn.coupling.ConditionalSplineCoupling` with the ``resnet``
conditioner and the ``alternating`` mask (nflows' coupling computed with calobench's faster spline);
the masks alternate between layers.
"""

from __future__ import annotations

import normflows as nf
import torch
from normflows.flows import LULinearPermute

from calobench.nn.coupling import ConditionalSplineCoupling


def spline_flow(
    features: int,
    context: int,
    layers: int,
    hidden: int,
    blocks: int,
    bins: int,
    tail_bound: float,
) -> nf.ConditionalNormalizingFlow:
    """``layers`` x (coupling RQS with context, LULinearPermute) on N(0, I_features).

    The permutations are drawn from torch's global generator (seeded by the training base before the
    modules are built) and saved as buffers.
    """
    if features < 2:
        raise ValueError(f"a coupling flow needs at least 2 features, got {features}")
    transforms: list[nf.flows.Flow] = []
    for index in range(layers):
        transforms.append(
            ConditionalSplineCoupling(
                features,
                context,
                [hidden] * blocks,
                num_bins=bins,
                tail_bound=tail_bound,
                activation="relu",
                conditioner="resnet",
                mask="alternating",
                reverse_mask=index % 2 == 1,
            )
        )
        transforms.append(LULinearPermute(features, identity_init=True))
    base = nf.distributions.DiagGaussian(features, trainable=False)
    return nf.ConditionalNormalizingFlow(base, transforms)


def nll(flow: nf.ConditionalNormalizingFlow, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood ``-mean log p(x | context)``."""
    return -flow.log_prob(x, context=context).mean()


def sample(flow: nf.ConditionalNormalizingFlow, context: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One draw per context row, the base noise taken from ``generator`` (reproducible by seed)."""
    features = int(flow.q0.d)
    noise = torch.randn((len(context), features), generator=generator, device=context.device, dtype=context.dtype)
    return flow.forward(noise, context=context)
