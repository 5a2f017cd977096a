"""Checks applied to whatever a generator returns, so that a faulty plugin fails with a clear error."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from calobench.errors import PluginError, ShowerFileError
from calobench.showers import Showers, check_shower_arrays

if TYPE_CHECKING:
    from calobench.generator.base import Generator


def checked_sample(
    generator: "Generator", incident_energies: np.ndarray, seed: int | None = None, batch_size: int | None = None
) -> Showers:
    """Call ``generator.sample`` and verify the result: an array of shape (n, n_voxels), float32,
    finite and non-negative. Anything else raises :class:`PluginError` naming the generator."""
    name = type(generator).name or type(generator).__name__
    output = generator.sample(incident_energies, seed=seed, batch_size=batch_size)
    if not isinstance(output, np.ndarray):
        raise PluginError(
            f"generator {name!r} returned {type(output).__name__} from sample(); "
            "expected a numpy array of shape (n, n_voxels) in MeV on the host"
        )
    expected = (len(incident_energies), generator.geometry.n_voxels)
    if output.shape != expected:
        raise PluginError(
            f"generator {name!r} returned shape {output.shape} from sample(); expected {expected} "
            f"({len(incident_energies)} showers x {generator.geometry.n_voxels} voxels of "
            f"{generator.geometry.name})"
        )
    if output.dtype != np.float32:
        raise PluginError(f"generator {name!r} returned dtype {output.dtype} from sample(); expected float32")
    try:
        check_shower_arrays(incident_energies, output, generator.geometry, source=f"output of generator {name!r}")
    except ShowerFileError as exc:
        raise PluginError(str(exc)) from exc
    return Showers(incident_energies, output, generator.geometry)
