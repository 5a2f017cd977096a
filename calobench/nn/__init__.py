"""Network pieces shared by the model plugins: one implementation each, used by every model.

* :mod:`calobench.nn.splines` -- rational-quadratic splines with linear tails (arXiv 1906.04032).
* :mod:`calobench.nn.mlp` -- the MLP builder (subnets, encoders, decoders, critics).
* :mod:`calobench.nn.gaussian` -- reparameterization, KL divergence and Gaussian likelihood of VAEs.
* :mod:`calobench.nn.coupling` -- a conditional spline coupling layer for normflows flows (normflows'
  coupling computed with the spline above).

Shower preprocessing (u-space, logit, layer normalization, noise, threshold) is in
:mod:`calobench.preprocessing`; flow layers that normflows has are used from normflows.
"""
