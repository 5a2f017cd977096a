"""Reference rows for every leaderboard.

* :class:`~calobench.generator.baselines.uncorrelated.UncorrelatedVoxels` (``baseline-uncorrelated``):
  per incident-energy bin, each voxel's own distribution, sampled independently -- a floor that every
  real model must beat.
* :class:`~calobench.generator.baselines.simulator_truth.SimulatorTruth` (``simulator-truth``): the
  synthetic data sets' simulator itself -- the "truth" row.
"""

from calobench.generator.baselines.simulator_truth import SimulatorTruth
from calobench.generator.baselines.uncorrelated import UncorrelatedVoxels

__all__ = ["SimulatorTruth", "UncorrelatedVoxels"]
