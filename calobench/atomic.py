"""Atomic file writing: everything calobench writes appears complete or not at all.

Content goes to a temporary file in the target's directory, which is renamed over the target
(``os.replace``, atomic on POSIX) only when writing succeeded; on any error, interruption included,
the temporary file is removed and the previous file (if any) is untouched. The finished file gets
the usual permissions (``0o666`` minus the umask), not ``mkstemp``'s private ``0o600``.

Whatever the operating system refuses while writing (the disk full, a file too large, no
permission, a directory in the way) is one :class:`~calobench.errors.OutputError` naming the
target; :func:`check_output_file` and :func:`check_output_dir` refuse an output path that cannot
work before a command starts its work.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from calobench.errors import OutputError

log = logging.getLogger("calobench")

#: How the errors of a full or refusing file system are described.
_OS_ERRORS = {
    errno.ENOSPC: "no space left on the device (the disk is full)",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is larger than this file system or process allows",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


def describe_os_error(exc: OSError) -> str:
    """A short description of an operating-system error, in words a user can act on."""
    return _OS_ERRORS.get(exc.errno or -1) or exc.strerror or str(exc)


class NotFiniteError(OutputError, ValueError):
    """Data for a JSON file holds NaN or infinity where the file may not."""


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_creatable(path: Path, what: str) -> None:
    """The nearest existing ancestor of ``path`` is a directory this process may write in."""
    ancestor = _existing_ancestor(path.parent)
    if not ancestor.is_dir():
        raise OutputError(f"cannot write the {what} {path}: {ancestor} is a file, not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write the {what} {path}: no permission to write in {ancestor}")


def check_output_file(path: str | Path, what: str = "output file") -> Path:
    """Refuse a file output that cannot be written (an existing directory, a parent that is a file,
    a directory without write permission), before any work is done."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"the {what} {path} is an existing directory; give a file name")
    _check_creatable(path, what)
    return path


def check_output_dir(path: str | Path, what: str = "output directory") -> Path:
    """Refuse a directory output that cannot be written (an existing file, a parent that is a file,
    no write permission), before any work is done."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"the {what} {path} is an existing file; give a directory")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputError(f"cannot write in the {what} {path}: no permission")
    else:
        _check_creatable(path, what)
    return path


def temporary_path(path: Path, suffix: str = ".tmp") -> Path:
    """A new empty file beside ``path`` (its directory is created), for writing before the rename."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {describe_os_error(exc)}") from exc
    os.close(fd)
    return Path(tmp)


def commit(tmp: Path, path: Path) -> Path:
    """Give ``tmp`` the usual permissions and rename it over ``path``."""
    os.chmod(tmp, _default_mode())
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is an existing directory")
    os.replace(tmp, path)
    return path


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path to write; it replaces ``path`` when the block ends without error.

    On any error the temporary file is removed; an operating-system error (the disk full...)
    becomes an :class:`OutputError` naming ``path``."""
    path = Path(path)
    tmp = temporary_path(path, suffix)
    try:
        yield tmp
        commit(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {path}: {describe_os_error(exc)}") from exc
        raise


def remove_stale_partials(path: Path) -> list[Path]:
    """Delete what an interrupted writer of ``path`` left behind (``.<name>.*.partial``, see
    :func:`temporary_path`). Call it only while holding ``path``'s lock
    (:func:`calobench.locking.exclusive`): then no living process is writing them."""
    removed = []
    for stale in Path(path).parent.glob(f".{Path(path).name}.*.partial"):
        size = stale.stat().st_size
        stale.unlink(missing_ok=True)
        removed.append(stale)
        log.info("removed %s (%d bytes) left by an interrupted run", stale, size)
    return removed


def write_atomic(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``path`` atomically."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def non_finite_key(data: Any, where: str = "") -> str | None:
    """The path (``timing.batch_sizes.1.mean_ms``) of the first NaN or infinite number in ``data``."""
    if isinstance(data, float) and not math.isfinite(data):
        return where or "the value"
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, (list, tuple)) else ()
    for key, value in items:
        found = non_finite_key(value, f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


def write_json_atomic(path: str | Path, data: Any, indent: int = 2, allow_nan: bool = False) -> Path:
    """Indented, key-sorted JSON written atomically (NaN/inf refused unless ``allow_nan``).

    Data that JSON cannot hold is an :class:`OutputError` naming the offending key; nothing is
    written then and an existing file stays as it was."""
    try:
        text = json.dumps(data, indent=indent, sort_keys=True, allow_nan=allow_nan)
    except ValueError as exc:
        where = non_finite_key(data)
        raise NotFiniteError(f"cannot write {path}: {where or 'a value'} is not a finite number ({exc})") from exc
    except TypeError as exc:
        raise OutputError(f"cannot write {path}: {exc}") from exc
    return write_text_atomic(path, text + "\n")
