"""MD5 checksums of data-set files and the per-data-set sidecar that remembers them.

The sidecar ``<data dir>/<name>/.calobench-checksums.json`` holds, per file,

* ``cache``: the md5 last computed, with the file's size and mtime then, so a 1.3 GB file is
  hashed once; a changed size or mtime invalidates the entry;
* ``pinned``: for files without a published md5, the md5 recorded the first time the file was
  verified (trust on first use) or when calobench made it (synthetic sets).

It is rewritten atomically (temporary file + ``os.replace``), each change read, made and written
under the sidecar's lock: two processes recording two files of one data set at the same time (its
train and reference files made in parallel) both keep their entries.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from calobench.atomic import write_json_atomic
from calobench.locking import waiting_lock

SIDECAR_NAME = ".calobench-checksums.json"
SCHEMA_VERSION = 1
BLOCK_SIZE = 1 << 20
#: Seconds to wait for another process's update of the sidecar (each takes milliseconds).
LOCK_TIMEOUT = 60.0


def md5_file(path: str | Path, update: Callable[[int], Any] | None = None, block_size: int = BLOCK_SIZE) -> str:
    """The hex md5 of a file, read in blocks; ``update(n_bytes)`` is called after each block."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while block := handle.read(block_size):
            digest.update(block)
            if update is not None:
                update(len(block))
    return digest.hexdigest()


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


class ChecksumStore:
    """The checksum sidecar of one data-set directory."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / SIDECAR_NAME

    # ------------------------------------------------------------------ storage
    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            data = {}
        if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
            data = {}
        data.setdefault("schema_version", SCHEMA_VERSION)
        for key in ("cache", "pinned"):
            if not isinstance(data.get(key), dict):
                data[key] = {}
        return data

    def _save(self, data: dict[str, Any]) -> None:
        write_json_atomic(self.path, data, indent=1)

    @contextmanager
    def _update(self) -> Iterator[dict[str, Any]]:
        """The sidecar's content to change in place, written back when the block ends; read, changed
        and written under the sidecar's lock, so that concurrent updates are never lost."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with waiting_lock(self.path, f"checksum record {self.path}", LOCK_TIMEOUT, poll=0.02):
            data = self._load()
            yield data
            self._save(data)

    # ------------------------------------------------------------------ cache
    def cached_md5(self, name: str) -> str | None:
        """The remembered md5 of ``name`` if the file still has the size and mtime it had then."""
        entry = self._load()["cache"].get(name)
        path = self.directory / name
        if not isinstance(entry, dict) or not path.is_file():
            return None
        size, mtime_ns = _stamp(path)
        if entry.get("size") != size or entry.get("mtime_ns") != mtime_ns:
            return None
        md5 = entry.get("md5")
        return md5 if isinstance(md5, str) else None

    def remember(self, name: str, md5: str) -> None:
        """Cache ``md5`` for the file ``name`` as it is on disk now."""
        size, mtime_ns = _stamp(self.directory / name)
        with self._update() as data:
            data["cache"][name] = {"size": size, "mtime_ns": mtime_ns, "md5": md5}

    def md5(self, name: str, update: Callable[[int], Any] | None = None, force: bool = False) -> str:
        """The md5 of the file ``name``: from the cache when valid, else computed and cached."""
        if not force and (cached := self.cached_md5(name)) is not None:
            return cached
        digest = md5_file(self.directory / name, update)
        self.remember(name, digest)
        return digest

    # ------------------------------------------------------------------ pins
    def pinned(self, name: str) -> dict[str, Any] | None:
        """``{"md5", "origin", "recorded"}`` for a file whose md5 was recorded locally, else None."""
        entry = self._load()["pinned"].get(name)
        return entry if isinstance(entry, dict) and isinstance(entry.get("md5"), str) else None

    def pin(self, name: str, md5: str, origin: str) -> None:
        """Record ``md5`` as the expected checksum of ``name`` (``origin``: "first use", "download", "made")."""
        with self._update() as data:
            data["pinned"][name] = {"md5": md5, "origin": origin, "recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z")}

    def forget(self, name: str) -> None:
        """Drop everything remembered about ``name`` (the file is being replaced)."""
        with self._update() as data:
            for key in ("cache", "pinned"):
                data[key].pop(name, None)
