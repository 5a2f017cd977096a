"""Names that become paths: suites, data sets, models, run and report directories.

Every registered or user-given name that calobench turns into a file or directory name passes
:func:`check_name`, and every such path is built with :func:`child_path`, which also checks that
the result stays inside its root. A name like ``../../x`` or ``/etc`` can therefore never make
calobench write, or delete (``--fresh``, ``--force``), outside ``--root`` or the data directory.
"""

from __future__ import annotations

import re
from pathlib import Path

from calobench.errors import ConfigError

#: Letters, digits and ``. _ + -``, starting with a letter or digit, at most 128 characters.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


class UnsafeNameError(ConfigError):
    """A name that would become a path outside its root, or an unusable file name."""


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a file name, or None if it can."""
    if not isinstance(name, str):
        return f"must be a string, got {type(name).__name__}"
    if not NAME_PATTERN.fullmatch(name):
        return "may only hold letters, digits and . _ + - (starting with a letter or digit, at most 128 characters)"
    if ".." in name:
        return "must not contain '..'"
    return None


def check_name(name: object, what: str) -> str:
    """``name`` if it is safe as a single path component, else :class:`UnsafeNameError`."""
    problem = name_problem(name)
    if problem is not None:
        raise UnsafeNameError(f"invalid {what} name {name!r}: a {what} name {problem}")
    assert isinstance(name, str)
    return name


def child_path(root: str | Path, name: object, what: str) -> Path:
    """``root / name`` for a checked ``name``, verified to lie inside ``root`` (symlinks resolved)."""
    root = Path(root)
    path = root / check_name(name, what)
    resolved_root = root.resolve()
    resolved = path.resolve()
    if resolved != resolved_root and resolved_root not in resolved.parents:
        raise UnsafeNameError(f"the {what} {name!r} would be at {resolved}, outside {resolved_root}")
    return path
