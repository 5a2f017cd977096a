"""CaloINN for calobench: the INN and the VAE+INN of Ernst, Favaro, Krause, Plehn and Shih
(arXiv 2312.09290).

Registers two generators through the ``calobench_generators`` hook:

* ``caloinn`` -- a conditional spline-coupling INN on every voxel's layer share plus the
  layer-energy fractions (inn.py).
* ``caloinn-vae`` -- a conditional VAE whose latent means and log-variances, with the layer-energy
  fractions, are modelled by a small conditional INN (vae_inn.py).

The coupling blocks, splines, MLPs and preprocessing transforms are calobench's shared pieces
(:mod:`calobench.nn`, :mod:`calobench.preprocessing`); this package holds CaloINN's assembly,
losses and presets.
"""

from __future__ import annotations

from calobench.hookspecs import hookimpl

__version__ = "0.1.0"


@hookimpl
def calobench_generators() -> list:
    from calobench_caloinn.inn import CaloINN
    from calobench_caloinn.vae_inn import CaloVAEINN

    return [CaloINN, CaloVAEINN]
