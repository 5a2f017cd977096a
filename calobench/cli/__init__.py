"""The ``calobench`` command line: a thin layer that parses arguments and calls the library."""

from calobench.cli.command import Command

__all__ = ["Command"]
