"""Atomic file writing: everything calobench writes appears complete or not at all.

Content goes to a temporary file in the target's directory, which is renamed over the target
(``os.replace``, atomic on POSIX) only when writing succeeded; on any error, interruption included,
the temporary file is removed and the previous file (if any) is untouched. The finished file gets
the usual permissions (``0o666`` minus the umask), not ``mkstemp``'s private ``0o600``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def temporary_path(path: Path, suffix: str = ".tmp") -> Path:
    """A new empty file beside ``path`` (its directory is created), for writing before the rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def commit(tmp: Path, path: Path) -> Path:
    """Give ``tmp`` the usual permissions and rename it over ``path``."""
    os.chmod(tmp, _default_mode())
    os.replace(tmp, path)
    return path


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path to write; it replaces ``path`` when the block ends without error."""
    path = Path(path)
    tmp = temporary_path(path, suffix)
    try:
        yield tmp
        commit(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``path`` atomically."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json_atomic(path: str | Path, data: Any, indent: int = 2, allow_nan: bool = False) -> Path:
    """Indented, key-sorted JSON written atomically (NaN/inf refused unless ``allow_nan``)."""
    return write_text_atomic(path, json.dumps(data, indent=indent, sort_keys=True, allow_nan=allow_nan) + "\n")
