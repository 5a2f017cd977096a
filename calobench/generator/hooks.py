"""What calobench.generator registers through the plugin hooks (see calobench.hookspecs)."""

from __future__ import annotations

from calobench.hookspecs import hookimpl


@hookimpl
def calobench_commands() -> list:
    return []
