"""Checks applied to whatever a generator returns, so that a faulty plugin fails with a clear error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from calobench.errors import CalobenchError, PluginError, ShowerFileError
from calobench.showers import Showers, check_shower_arrays

if TYPE_CHECKING:
    from calobench.generator.base import Generator


@contextmanager
def plugin_call(generator: str, step: str, provider: object | None = None) -> Iterator[None]:
    """Turn anything but a :class:`CalobenchError` (or Ctrl-C) raised by a generator's code into a
    one-line :class:`PluginError` that names the generator, its provider and the step -- a
    ``SystemExit`` or another ``BaseException`` included: a plugin's ``sys.exit()`` must not end
    the command without a word, nor a leaderboard run with the models after it.

    Args:
        generator: the generator's registered name.
        step: what was called, e.g. ``"fit"``, ``"load"``, ``"sample"``.
        provider: who provided it (a :class:`~calobench.registry.Provider`), named in the message.
    """
    try:
        yield
    except (CalobenchError, KeyboardInterrupt, GeneratorExit):
        raise
    except MemoryError as exc:
        raise PluginError(
            f"generator {generator!r} ran out of memory in {step}(); use fewer showers (--max-showers) or a "
            "smaller --batch-size"
        ) from exc
    except BaseException as exc:
        dist = getattr(provider, "distribution", None)
        source = f" (from {dist} {getattr(provider, 'version', '')})".replace(" )", ")") if dist else ""
        raise PluginError(
            f"generator {generator!r}{source} raised in {step}(): {type(exc).__name__}: {exc} (--debug shows the traceback)"
        ) from exc


def checked_sample(
    generator: "Generator", incident_energies: np.ndarray, seed: int | None = None, batch_size: int | None = None
) -> Showers:
    """Call ``generator.sample`` and verify the result: an array of shape (n, n_voxels), float32,
    finite and non-negative. Anything else raises :class:`PluginError` naming the generator."""
    name = type(generator).name or type(generator).__name__
    with plugin_call(name, "sample"):
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
