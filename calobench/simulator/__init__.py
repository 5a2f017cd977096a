"""The parametrized (GFlash-style) shower simulator behind calobench's synthetic data sets.

Electromagnetic showers follow Grindhammer & Peters (NIM A290 (1990) 469; hep-ex/0001020); pions a
simple hadronic model (:mod:`calobench.simulator.hadronic`). Detectors are described in the
synthetic data-set cards (``datasets/cards/synthetic-*.toml``).

Public API:

* :func:`simulate` ``(detector, incident_energies, seed, perturbation=None) -> Showers``
* :data:`PERTURBATIONS`: the named mis-modelling knobs (multiplicative factors)
* :func:`incident_spectrum` ``(dataset_name, n, seed) -> np.ndarray`` (MeV)
* :func:`load_detector`, :func:`homogeneous_detector`, :class:`Detector`, :class:`Medium`
"""

from calobench.simulator.api import BLOCK_SIZE, iter_simulate, simulate
from calobench.simulator.catalog import load_detector, resolve_detector, synthetic_names
from calobench.simulator.detector import LEAD, Detector, Medium, Slab, homogeneous_detector
from calobench.simulator.perturbations import PERTURBATIONS, Perturbation, parse_perturbations
from calobench.simulator.spectra import incident_spectrum

__all__ = [
    "BLOCK_SIZE",
    "LEAD",
    "PERTURBATIONS",
    "Detector",
    "Medium",
    "Perturbation",
    "Slab",
    "homogeneous_detector",
    "incident_spectrum",
    "iter_simulate",
    "load_detector",
    "parse_perturbations",
    "resolve_detector",
    "simulate",
    "synthetic_names",
]
