"""The shipped synthetic detectors: one per ``datasets/cards/synthetic-*.toml`` card.

A detector is named like its data set (``synthetic-ds2``); the short form without ``synthetic-``
(``ds2``, ``ds1-pions``, ``calogan-gamma``) is accepted wherever a detector name is.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from calobench.errors import ConfigError
from calobench.paths import resources_dir
from calobench.simulator.detector import Detector
from calobench.textfiles import read_toml

PREFIX = "synthetic-"


def cards_directory() -> Path:
    return resources_dir() / "cards"


def synthetic_names() -> tuple[str, ...]:
    """Names of the shipped synthetic data sets (= detectors), sorted."""
    return tuple(sorted(p.stem for p in cards_directory().glob(f"{PREFIX}*.toml")))


def canonical_name(name: str) -> str:
    """``ds2`` -> ``synthetic-ds2``; raises :class:`ConfigError` for unknown names."""
    names = synthetic_names()
    for candidate in (name, PREFIX + name):
        if candidate in names:
            return candidate
    from calobench.registry import suggestion_text

    short = [n[len(PREFIX) :] for n in names]
    raise ConfigError(f"unknown synthetic detector {name!r}{suggestion_text(name, [*names, *short])}")


@functools.cache
def card(name: str) -> dict[str, Any]:
    """The parsed card of a synthetic data set."""
    path = cards_directory() / f"{canonical_name(name)}.toml"
    return read_toml(path, "synthetic data-set card", ConfigError)


@functools.cache
def load_detector(name: str) -> Detector:
    """The detector of a synthetic data set, from the ``[simulator]`` table of its card."""
    data = card(name)
    if "simulator" not in data:
        raise ConfigError(f"card of {name!r} has no [simulator] table")
    return Detector.from_config(
        canonical_name(name),
        data["geometry"],
        data["particle"],
        data["simulator"],
        format=data.get("format", "calochallenge"),
    )


def resolve_detector(detector: "str | Detector") -> Detector:
    """A :class:`Detector` from a detector, a synthetic data-set name or its short form."""
    return detector if isinstance(detector, Detector) else load_detector(canonical_name(detector))
