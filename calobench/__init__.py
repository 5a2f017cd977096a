"""calobench: a plugin-based benchmarking suite for generative calorimeter-shower models.

The core owns geometries, shower files, data sets, the generator interface, the CaloChallenge
metrics, result files and the leaderboard; models arrive as plugins through the ``calobench``
entry-point group. Energies are in MeV at every boundary.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
