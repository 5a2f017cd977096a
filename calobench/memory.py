"""How much memory a job may take, checked before a whole file is read into it.

Reading a whole shower file into memory (training data) is refused with one clear message when it
would not fit, instead of ending in an out-of-memory kill or a ``MemoryError`` traceback.
"""

from __future__ import annotations

import os

from calobench.errors import ConfigError

#: Fraction of the available memory a single in-memory data set may take.
MEMORY_FRACTION = 0.6


def available_memory_bytes() -> int:
    """Memory available to new allocations: ``MemAvailable`` on Linux, else the physical memory."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 2**63


def gigabytes(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.1f} GB"


def check_showers_fit(
    n_showers: int, n_voxels: int, *, copies: float, what: str, option: str = "--max-showers"
) -> None:
    """Raise :class:`ConfigError` if ``copies`` float32 copies of ``n_showers x n_voxels`` do not fit.

    The message gives the size, the memory available and the largest ``option`` value that fits.
    """
    per_shower = 4.0 * n_voxels * copies
    need = n_showers * per_shower
    budget = MEMORY_FRACTION * available_memory_bytes()
    if need <= budget:
        return
    fits = int(budget // per_shower)
    raise ConfigError(
        f"{what} holds {n_showers:,} showers x {n_voxels:,} voxels: about {gigabytes(need)} in memory, more than "
        f"this machine can give ({gigabytes(available_memory_bytes())} available); pass {option} {max(fits, 1):,} "
        "or fewer"
    )
