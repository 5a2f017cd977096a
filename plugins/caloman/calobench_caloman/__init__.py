"""CaloMan for calobench: density estimation on a learned manifold (arXiv 2211.15380).

Registers the generator ``caloman`` through the ``calobench_generators`` hook: a conditional spline
flow for the layer energies, a Gaussian VAE whose latent size is the intrinsic dimension measured
on the training showers, and a conditional spline flow on the VAE's latent means.
"""

from __future__ import annotations

from calobench.hookspecs import hookimpl

__version__ = "0.1.0"


@hookimpl
def calobench_generators() -> list:
    from calobench_caloman.generator import CaloMan

    return [CaloMan]
