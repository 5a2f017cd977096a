"""Where calobench reads its shipped resources and keeps its data.

Nothing is ever written inside the installed package: data sets, caches and downloads live in
the data directory, ``$CALOBENCH_DATA`` if set, else the platform's user cache directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

DATA_ENV = "CALOBENCH_DATA"


def data_dir() -> Path:
    """The directory holding downloaded and generated data sets (created on demand)."""
    override = os.environ.get(DATA_ENV)
    path = Path(override).expanduser() if override else Path(platformdirs.user_cache_dir("calobench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def resources_dir() -> Path:
    """The shipped ``datasets/`` directory (cards and binning XML files).

    In a wheel it is installed as ``calobench/_datasets``; in an editable install or a source
    checkout it is the repository's top-level ``datasets/`` directory.
    """
    package_dir = Path(__file__).resolve().parent
    for candidate in (package_dir / "_datasets", package_dir.parent / "datasets"):
        if (candidate / "binning").is_dir():
            return candidate
    raise FileNotFoundError(
        "calobench's shipped data-set cards were not found next to the package "
        f"({package_dir / '_datasets'} or {package_dir.parent / 'datasets'}); reinstall calobench"
    )


def binning_file(name: str) -> Path:
    """Path of a shipped CaloChallenge binning XML file, e.g. ``binning_dataset_2.xml``."""
    path = resources_dir() / "binning" / name
    if not path.is_file():
        raise FileNotFoundError(f"shipped binning file {name!r} not found in {path.parent}")
    return path
