"""The generator interface, presets and output checks."""

from calobench.generator.base import PRESETS, Generator, parse_override, resolve_config

__all__ = ["PRESETS", "Generator", "parse_override", "resolve_config"]
