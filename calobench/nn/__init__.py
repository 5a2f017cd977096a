"""Network pieces shared by the model plugins: one implementation each, used by every model.

* :mod:`calobench.nn.splines` -- rational-quadratic splines with linear tails (arXiv 1906.04032).
* :mod:`calobench.nn.cubic_splines` -- monotonic cubic splines with linear tails (arXiv 1906.02145).
* :mod:`calobench.nn.coupling` -- the conditional spline coupling block (MLP or ResidualNet
  conditioner, half or alternating mask: CaloINN's and nflows'/CaloMan's), a context-aware ActNorm
  and a builder of coupling flows on normflows' ``ConditionalNormalizingFlow``.
* :mod:`calobench.nn.mlp` -- the MLP builder (subnets, encoders, decoders, critics).
* :mod:`calobench.nn.gaussian` -- reparameterization, KL divergence and Gaussian likelihood of VAEs.

Shower preprocessing (u-space, logit, layer normalization, noise, threshold) is in
:mod:`calobench.preprocessing`; flow layers that normflows has are used from normflows.
"""
