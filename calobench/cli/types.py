"""Argument types for numeric command-line options: counts and finite numbers, checked when parsed.

A value that cannot be right (a batch size of 0, a negative seed, ``--threshold inf``) is refused
while the command line is parsed, before any work, instead of running for hours and failing when
its result is written. The error is a :class:`~calobench.errors.ConfigError` naming the option,
which argparse lets through and ``calobench`` prints as one line.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from calobench.errors import ConfigError


def count(option: str, minimum: int = 1) -> Callable[[str], int]:
    """An argparse type for ``option``: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ConfigError(f"{option} must be an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise ConfigError(f"{option} must be >= {minimum}, got {value}")
        return value

    return parse


def seed(option: str = "--seed") -> Callable[[str], int]:
    """An argparse type for a seed: an integer >= 0 (numpy and torch take no negative seeds)."""
    return count(option, 0)


def finite_float(option: str) -> Callable[[str], float]:
    """An argparse type for ``option``: a finite number (``nan`` and ``inf`` are refused)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{option} must be a number, got {text!r}") from None
        if not math.isfinite(value):
            raise ConfigError(f"{option} must be a finite number, got {text!r}")
        return value

    return parse
