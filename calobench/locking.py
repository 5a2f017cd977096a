"""Exclusive locks on what calobench writes: run directories, data-set files, leaderboard suites.

Two processes that would write the same thing (two ``calobench train --out D``, two ``datasets
make`` of one set, two ``leaderboard run`` of one suite) must not both go ahead: the second one
gets a :class:`LockError` that names the holder (pid, host, command, start time) and what to do.

A lock is a file ``<target>.lock`` held with ``fcntl.flock``: the kernel releases it when its
process dies, however it dies (``kill -9`` included), so a lock file left behind by a dead process
is *stale* and is taken over (with a note in the log). The file holds the holder's description as
JSON for the error message. Locks are per process and not re-entrant across processes; the same
process may take the same lock again (nested use), which is counted.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from calobench.errors import CalobenchError

log = logging.getLogger("calobench.locking")

LOCK_SUFFIX = ".lock"

#: Locks this process holds: lock path -> (open file, depth).
_HELD: dict[Path, tuple[Any, int]] = {}


class LockError(CalobenchError):
    """Another process holds the lock on something this process wants to write."""


def lock_path(target: str | Path) -> Path:
    """The lock file of ``target``: ``<target>.lock`` beside it (``D/.lock`` for a directory ``D/``)."""
    target = Path(target)
    return target / LOCK_SUFFIX if target.is_dir() else target.with_name(target.name + LOCK_SUFFIX)


def _holder_text(path: Path) -> str:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "another process"
    return (
        f"process {holder.get('pid')} on {holder.get('host')} (`{holder.get('command', '?')}`, "
        f"since {holder.get('since', '?')})"
    )


def _acquire(path: Path, what: str) -> Any:
    """Open and flock ``path``; retry if the file was replaced (its holder unlinked it) meanwhile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the lock's lifetime
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise LockError(
                f"{what} is in use by {_holder_text(path)}; wait for it to finish (or stop it) and try again"
            ) from None
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return handle
        handle.close()  # we locked a file its previous holder had just removed: take the new one
    raise LockError(f"could not take the lock {path} of {what}: it keeps being replaced")


@contextmanager
def exclusive(target: str | Path, what: str, *, lock_file: str | Path | None = None) -> Iterator[Path]:
    """Hold the exclusive lock of ``target`` for the ``with`` block.

    Args:
        target: the file or directory to protect (the lock file is :func:`lock_path` of it unless
            ``lock_file`` is given).
        what: how the target is named in the error, e.g. ``"run directory runs/teacher"``.

    Raises:
        LockError: another living process holds the lock.
    """
    path = Path(lock_file) if lock_file is not None else lock_path(target)
    key = path.resolve()
    if key in _HELD:
        handle, depth = _HELD[key]
        _HELD[key] = (handle, depth + 1)
        try:
            yield path
        finally:
            handle, depth = _HELD[key]
            _HELD[key] = (handle, depth - 1)
        return
    handle = _acquire(path, what)
    handle.seek(0)
    previous = handle.read().strip()
    if previous:
        log.info("taking over the stale lock %s (its holder is gone): %s", path, previous)
    handle.seek(0)
    handle.truncate()
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:]) if sys.argv else "python",
        "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    handle.write(json.dumps(holder) + "\n")
    handle.flush()
    _HELD[key] = (handle, 1)
    try:
        yield path
    finally:
        handle, depth = _HELD.pop(key)
        try:
            handle.seek(0)
            handle.truncate()
            path.unlink(missing_ok=True)
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()


@contextmanager
def waiting_lock(target: str | Path, what: str, timeout: float, poll: float = 2.0) -> Iterator[None]:
    """Hold the exclusive lock of ``target``, waiting up to ``timeout`` seconds for another holder
    (:class:`LockError` after that)."""
    deadline = time.monotonic() + timeout
    waited = False
    while True:
        stack = ExitStack()
        try:
            stack.enter_context(exclusive(target, what))
        except LockError:
            if time.monotonic() >= deadline:
                raise
            if not waited and poll >= 1:
                log.info("%s is locked by another process: waiting up to %.0f s", what, timeout)
                waited = True
            time.sleep(poll)
            continue
        with stack:
            yield
        return
