"""The state of a data set's files on disk, and their verification against the card's checksums.

States: ``missing`` (nothing there), ``partial`` (an interrupted download, ``<file>.part``),
``present-unverified`` (the file is there but its md5 has not been checked since it last changed),
``verified`` and ``corrupt``. :func:`file_status` never reads a whole file (it trusts the checksum
sidecar of :mod:`calobench.datasets.checksums`); :func:`verify` hashes whatever is not cached.

A file without a published md5 is verified by *trust on first use*: the first :func:`verify`
records its md5 (with a warning) and later checks compare against that record.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tqdm.auto import tqdm

from calobench.datasets.checksums import ChecksumStore
from calobench.datasets.spec import DatasetSpec, FileSpec

log = logging.getLogger("calobench.datasets")

State = Literal["missing", "partial", "present-unverified", "verified", "corrupt"]
STATES: tuple[str, ...] = ("missing", "partial", "present-unverified", "verified", "corrupt")
PART_SUFFIX = ".part"
CORRUPT_SUFFIX = ".corrupt"


def human_size(n: float) -> str:
    """Bytes in decimal units: ``173.8 MB``."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


_ORIGIN_TEXT = {
    "first use": "recorded on first use",
    "download": "recorded on download",
    "made": "recorded when calobench made the file",
}


def origin_text(origin: str | None) -> str:
    """How an expected md5 came about, in words."""
    if origin == "published":
        return "published"
    return _ORIGIN_TEXT.get(origin or "", f"recorded ({origin})")


def partial_path(path: Path) -> Path:
    """Where an interrupted download of ``path`` is kept: ``<file>.part``."""
    return path.with_name(path.name + PART_SUFFIX)


def corrupt_path(path: Path) -> Path:
    """Where a download that failed its checksum is moved: ``<file>.corrupt``."""
    return path.with_name(path.name + CORRUPT_SUFFIX)


@dataclass(frozen=True)
class FileStatus:
    """What is on disk for one file of a data set."""

    file: FileSpec
    path: Path
    state: State
    local_size: int | None  # bytes of the file (or of the .part file when partial)
    expected_md5: str | None
    md5_origin: str | None  # "published", or how a local record was made: "first use", "download", "made"
    md5: str | None = None  # the file's md5 when known (cached or just computed)
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "verified"

    @property
    def expected_size(self) -> int | None:
        return self.file.size


def expected_md5(store: ChecksumStore, file: FileSpec) -> tuple[str | None, str | None]:
    """(md5, origin): the published md5, else the one recorded locally, else (None, None)."""
    if file.md5 is not None:
        return file.md5, "published"
    pinned = store.pinned(file.name)
    if pinned is not None:
        return pinned["md5"], str(pinned.get("origin", "first use"))
    return None, None


def select_files(spec: DatasetSpec, files: "list[str] | None") -> list[FileSpec]:
    from calobench.errors import DatasetError
    from calobench.registry import suggestion_text

    unique = spec.unique_files()
    if files is None:
        return unique
    by_name = {f.name: f for f in unique}
    unknown = [name for name in files if name not in by_name]
    if unknown:
        raise DatasetError(f"data set {spec.name!r} has no file {unknown[0]!r}{suggestion_text(unknown[0], by_name)}")
    return [by_name[name] for name in dict.fromkeys(files)]


def _status(spec: DatasetSpec, file: FileSpec, store: ChecksumStore, md5: str | None) -> FileStatus:
    path = spec.path(file)
    expected, origin = expected_md5(store, file)

    def status(state: State, size: int | None, detail: str, digest: str | None = None) -> FileStatus:
        return FileStatus(file, path, state, size, expected, origin, digest, detail)

    if not path.is_file():
        part = partial_path(path)
        if part.is_file():
            have = part.stat().st_size
            of = f" of {file.size}" if file.size else ""
            return status(
                "partial", have, f"interrupted download: {have}{of} bytes in {part.name}; `download` resumes it"
            )
        return status("missing", None, "not downloaded" if spec.kind == "real" else "not made yet")
    size = path.stat().st_size
    if file.size is not None and size != file.size:
        return status("corrupt", size, f"size {size} bytes, expected {file.size}")
    if md5 is None:
        md5 = store.cached_md5(file.name)
    if md5 is None:
        return status(
            "present-unverified",
            size,
            "md5 not checked yet" if expected else "no published md5: `verify` records it (trust on first use)",
        )
    if expected is None:
        return status("present-unverified", size, "no published md5: `verify` records it (trust on first use)", md5)
    if md5 != expected:
        return status("corrupt", size, f"md5 {md5}, expected {expected} ({origin_text(origin)})", md5)
    how = "" if origin == "published" else f" the md5 {origin_text(origin)} (none is published)"
    return status("verified", size, "md5 matches" + how, md5)


def structure_problem(spec: DatasetSpec, file: FileSpec, path: Path | None = None) -> str | None:
    """Why the file at ``path`` (default: its place in the data set) cannot be the card's file
    (unreadable, wrong geometry or shower count), or None. Checked before an md5 is trusted on first use."""
    from calobench.errors import CalobenchError
    from calobench.formats import open_showers

    try:
        with open_showers(path or spec.path(file), spec.geometry_object) as handle:
            n_showers = handle.n_showers
    except CalobenchError as exc:
        return f"not a readable {spec.format} shower file: {exc}"
    if file.n_showers is not None and n_showers != file.n_showers:
        return f"holds {n_showers} showers, the card says {file.n_showers}"
    needed = max((f.rows[1] for f in spec.files if f.name == file.name and f.rows is not None), default=0)
    if needed > n_showers:
        return f"holds {n_showers} showers, fewer than the card's row windows need ({needed})"
    return None


def file_status(spec: DatasetSpec, files: "list[str] | None" = None) -> list[FileStatus]:
    """The state of each (selected) file of ``spec``, without hashing anything."""
    store = ChecksumStore(spec.directory())
    return [_status(spec, file, store, None) for file in select_files(spec, files)]


def verify(
    spec: DatasetSpec, files: "list[str] | None" = None, progress: bool | None = True, force: bool = False
) -> list[FileStatus]:
    """Check each present file against its md5 (hashing what the sidecar does not vouch for;
    ``force`` re-hashes everything). A file without a published md5 gets its md5 recorded the
    first time (trust on first use, with a warning). Returns the new states; raises nothing."""
    store = ChecksumStore(spec.directory())
    result = []
    for file in select_files(spec, files):
        path = spec.path(file)
        if not path.is_file() or (file.size is not None and path.stat().st_size != file.size):
            result.append(_status(spec, file, store, None))
            continue
        with tqdm(
            total=path.stat().st_size,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=f"md5 {file.name}",
            disable=None if progress is None else not progress,
            leave=False,
        ) as bar:
            digest = store.md5(file.name, update=bar.update, force=force)
        if file.md5 is None and store.pinned(file.name) is None:
            problem = structure_problem(spec, file)
            if problem is not None:
                result.append(
                    FileStatus(
                        file, path, "corrupt", path.stat().st_size, None, None, digest, f"{problem}; md5 not recorded"
                    )
                )
                continue
            store.pin(file.name, digest, "first use")
            log.warning(
                "%s: %s has no published md5; recorded md5 %s on first use (trust on first use: later "
                "checks compare against it)",
                spec.name,
                file.name,
                digest,
            )
        result.append(_status(spec, file, store, digest))
    return result
