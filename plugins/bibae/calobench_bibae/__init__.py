"""BIB-AE for calobench: the bounded-information-bottleneck autoencoder of the DESY/Hamburg group.

Registers the generator ``bib-ae`` (Buhmann et al., "Getting High", arXiv 2005.05334; "Decoding
Photons", arXiv 2102.12491; pions, arXiv 2112.09709): a VAE-GAN hybrid -- encoder and decoder
conditioned on E_inc, a shower critic on (x, x_hat) pairs, a per-component latent critic, KL and
latent-MMD terms -- with a per-voxel post-processor trained on the hit-energy spectrum, and three
latent samplers (N(0, 1), a KDE of the encoded showers, a conditional latent flow). 3-D cylindrical
convolutions for datasets 2 and 3, per-layer 2-D convolutions for CaloGAN, MLPs for dataset 1.

Also adds the command ``calobench bibae-variants`` (one trained run sampled with every latent
sampler, with and without the post-processor).
"""

from __future__ import annotations

from calobench.hookspecs import hookimpl

__version__ = "0.1.0"


@hookimpl
def calobench_generators() -> list:
    from calobench_bibae.generator import BIBAE

    return [BIBAE]


@hookimpl
def calobench_commands() -> list:
    from calobench_bibae.variants import COMMANDS

    return COMMANDS
