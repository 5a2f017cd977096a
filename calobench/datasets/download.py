"""Downloading real data-set files: streamed, resumable, retried, checksum-verified, placed atomically.

A file is streamed into ``<file>.part``. An interrupted transfer keeps the ``.part`` file and the
next attempt (or the next run) asks for the rest with ``Range: bytes=N-``; a server that ignores the
range (answers 200) or rejects it (416) makes the download restart from zero. Transient failures
(refused or reset connections, timeouts, truncated responses, HTTP 408/429/5xx) are retried a few
times with growing delays. When the transfer is complete the md5 is checked: only a matching file is
renamed to its final name; a mismatching one is moved to ``<file>.corrupt`` and
:class:`~calobench.errors.ChecksumError` is raised. Nothing unverified is ever left under the real
name. A file without a published md5 gets its md5 recorded on download (trust on first use).
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from calobench import __version__
from calobench.datasets.checksums import ChecksumStore, md5_file
from calobench.datasets.local import (
    FileStatus,
    corrupt_path,
    expected_md5,
    file_status,
    human_size,
    origin_text,
    partial_path,
    select_files,
    structure_problem,
    verify,
)
from calobench.datasets.spec import DatasetSpec, FileSpec
from calobench.errors import ChecksumError, DatasetError, DownloadError

log = logging.getLogger("calobench.datasets")

#: HTTP statuses worth retrying: timeouts, rate limits and server-side failures.
TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})
BLOCK_SIZE = 1 << 20
#: Free space kept beyond the file itself.
DISK_MARGIN = 64 * 2**20


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient failures are retried.

    ``delays[i]`` is the wait before attempt ``i + 2``; ``sleep`` is injectable so tests do not wait.
    """

    attempts: int = 4
    delays: Sequence[float] = (2.0, 8.0, 30.0)
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delay(self, failed_attempt: int) -> float:
        return float(self.delays[min(failed_attempt - 1, len(self.delays) - 1)]) if self.delays else 0.0


class _Transient(Exception):
    """A failure worth another attempt (the .part file is kept)."""


class _Restart(Exception):
    """The server cannot resume: start again from zero at once (does not count as a failure)."""


def landing_page(spec: DatasetSpec) -> str | None:
    """Where a person can download the files by hand: the card's ``landing_page``, else the DOI."""
    page = spec.extra.get("landing_page")
    if page:
        return str(page)
    return f"https://doi.org/{spec.doi}" if spec.doi else None


def manual_download_message(spec: DatasetSpec, file: FileSpec) -> str:
    where = landing_page(spec)
    source = f"from {where}" + (f" (DOI {spec.doi})" if spec.doi and where and spec.doi not in where else "")
    return (
        f"{file.name} of data set {spec.name!r} has no direct download URL: download it by hand "
        f"{source if where else '(the card names no source)'}, put it at {spec.path(file)} "
        f"(`calobench datasets path {spec.name}` prints the paths), then run "
        f"`calobench datasets verify {spec.name}`"
    )


def _check_disk_space(directory: Path, needed: int) -> None:
    free = shutil.disk_usage(directory).free
    if needed + DISK_MARGIN > free:
        raise DownloadError(
            f"not enough disk space in {directory}: the download needs {human_size(needed)} more, "
            f"{human_size(free)} are free; free some space or point CALOBENCH_DATA at a larger disk"
        )


def _total_from_content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) from ``bytes a-b/N`` or ``bytes */N``."""
    match = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", value or "")
    if not match:
        return None, None
    first = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(2)) if match.group(2) != "*" else None
    return first, total


def _transfer(
    url: str, part: Path, expected_size: int | None, timeout: float, block_size: int, progress: bool | None, label: str
) -> None:
    """One attempt: append the rest of ``url`` to ``part``. Raises _Transient, _Restart or DownloadError."""
    offset = part.stat().st_size if part.exists() else 0
    if expected_size is not None and offset > expected_size:
        part.unlink()
        offset = 0
    if expected_size is not None and offset == expected_size:
        return  # complete already: the checksum decides
    headers = {"User-Agent": f"calobench/{__version__}", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            _, total = _total_from_content_range(exc.headers.get("Content-Range"))
            if total is not None and total == offset:
                return  # the .part file already holds everything
            part.unlink(missing_ok=True)
            raise _Restart(f"the server refused to resume at byte {offset} (HTTP 416)") from exc
        if exc.code in TRANSIENT_HTTP:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from exc
        raise DownloadError(
            f"downloading {label} from {url} failed: HTTP {exc.code} {exc.reason}"
            + ("; the file is not at that address" if exc.code in (404, 410) else "")
        ) from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Transient(f"cannot connect: {reason}") from exc

    with response:
        status = response.status
        length_header = response.headers.get("Content-Length")
        length = int(length_header) if length_header and length_header.isdigit() else None
        if status == 206 and offset:
            first, total = _total_from_content_range(response.headers.get("Content-Range"))
            if first != offset:
                part.unlink(missing_ok=True)
                raise _Restart(f"the server resumed at byte {first}, not at {offset}")
            mode = "ab"
        elif status == 200:
            if offset:
                log.info("%s: the server ignored the resume request; restarting from zero", label)
            offset, mode, total = 0, "wb", length
        else:
            raise DownloadError(f"downloading {label} from {url} failed: unexpected HTTP status {status}")
        if expected_size is not None and total is not None and total != expected_size:
            raise DownloadError(
                f"downloading {label} from {url}: the server offers {total} bytes but the card "
                f"says {expected_size}; the file on the server changed or the card is wrong"
            )
        done = offset
        with (
            open(part, mode) as out,
            tqdm(
                total=total or expected_size,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=label,
                disable=None if progress is None else not progress,
                leave=False,
            ) as bar,
        ):
            while True:
                try:
                    block = response.read(block_size)
                except (http.client.IncompleteRead, OSError, http.client.HTTPException) as exc:
                    raise _Transient(f"the connection broke after {done} bytes ({type(exc).__name__}: {exc})") from exc
                if not block:
                    break
                out.write(block)
                done += len(block)
                bar.update(len(block))
        if length is not None and done < offset + length:
            raise _Transient(f"the response was truncated: {done} of {offset + length} bytes arrived")


def _fetch(
    spec: DatasetSpec,
    file: FileSpec,
    store: ChecksumStore,
    progress: bool | None,
    retry: RetryPolicy,
    timeout: float,
    block_size: int,
) -> None:
    """Download one file to its final place (see the module docstring)."""
    path, part = spec.path(file), partial_path(spec.path(file))
    if file.url is None:
        raise DownloadError(manual_download_message(spec, file))
    path.parent.mkdir(parents=True, exist_ok=True)
    if file.size is not None:
        have = part.stat().st_size if part.exists() else 0
        _check_disk_space(path.parent, max(file.size - have, 0))
    log.info("downloading %s from %s", file.name, file.url)

    attempt, restarts = 1, 0
    while True:
        try:
            _transfer(file.url, part, file.size, timeout, block_size, progress, file.name)
            break
        except _Restart as exc:
            restarts += 1
            if restarts > retry.attempts:
                raise DownloadError(f"downloading {file.name} from {file.url} failed: {exc}, repeatedly") from exc
            log.info("%s: %s; restarting from zero", file.name, exc)
        except _Transient as exc:
            have = part.stat().st_size if part.exists() else 0
            if attempt >= retry.attempts:
                kept = (
                    f"{have} bytes so far are kept in {part} and re-running `calobench datasets download "
                    f"{spec.name}` resumes from there"
                    if have
                    else f"nothing was received; check the address and the network, then re-run "
                    f"`calobench datasets download {spec.name}`"
                )
                raise DownloadError(
                    f"downloading {file.name} from {file.url} failed after {attempt} attempt"
                    f"{'s' if attempt > 1 else ''}: {exc}; {kept}"
                ) from exc
            delay = retry.delay(attempt)
            log.warning(
                "%s: %s (%d bytes so far); retrying in %.0f s (attempt %d of %d)",
                file.name,
                exc,
                have,
                delay,
                attempt + 1,
                retry.attempts,
            )
            retry.sleep(delay)
            attempt += 1

    size = part.stat().st_size
    with tqdm(
        total=size,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=f"md5 {file.name}",
        leave=False,
        disable=None if progress is None else not progress,
    ) as bar:
        digest = md5_file(part, bar.update)
    expected, origin = expected_md5(store, file)
    problem = None
    if file.size is not None and size != file.size:
        problem = f"it has {size} bytes, the card says {file.size}"
    elif expected is not None and digest != expected:
        problem = f"its md5 is {digest}, expected {expected} ({origin_text(origin)})"
    elif expected is None:
        problem = structure_problem(spec, file, part)
    if problem is not None:
        bad = corrupt_path(path)
        os.replace(part, bad)
        raise ChecksumError(
            f"the download of {file.name} from {file.url} is corrupt: {problem}. It was moved to "
            f"{bad} and nothing was installed; run `calobench datasets download {spec.name}` "
            "to try again"
        )
    store.forget(file.name)
    os.replace(part, path)
    store.remember(file.name, digest)
    if expected is None:
        store.pin(file.name, digest, "download")
        log.warning(
            "%s: %s has no published md5; recorded md5 %s on download (trust on first use)",
            spec.name,
            file.name,
            digest,
        )


def download(
    spec: DatasetSpec,
    files: "list[str] | None" = None,
    progress: bool | None = True,
    *,
    include_extra: bool = False,
    retry: RetryPolicy | None = None,
    timeout: float = 60.0,
    block_size: int = BLOCK_SIZE,
) -> list[FileStatus]:
    """Download the files of a real data set into ``<data dir>/<name>/`` and verify them.

    Args:
        spec: the data set.
        files: file names to fetch; by default every train and reference file (plus the extra
            ones with ``include_extra``).
        progress: tqdm progress bars on stderr (True), none (False), or only on a terminal (None).
        retry: attempts and delays for transient failures.
        timeout: seconds without data before a connection counts as failed.

    Files already verified are skipped; a corrupt local file is moved to ``<file>.corrupt`` and
    fetched again. Raises :class:`DownloadError` or :class:`ChecksumError` with one clear message.
    """
    if spec.kind != "real":
        raise DatasetError(
            f"data set {spec.name!r} is {spec.kind}: it is made locally, not downloaded; "
            f"run `calobench datasets make {spec.name}`"
        )
    retry = retry or RetryPolicy()
    store = ChecksumStore(spec.directory())
    chosen = select_files(spec, files)
    if files is None and not include_extra:
        chosen = [f for f in chosen if any(e.role != "extra" for e in spec.files if e.name == f.name)]
    for file in chosen:
        path = spec.path(file)
        if path.is_file():
            status = verify(spec, [file.name], progress)[0]
            if status.state == "verified":
                log.info("%s: already there and verified", file.name)
                continue
            if file.url is None:
                raise ChecksumError(
                    f"{path} does not match the card ({status.detail}); " + manual_download_message(spec, file)
                )
            bad = corrupt_path(path)
            log.warning(
                "%s: the local file is corrupt (%s); moved to %s and downloading again", file.name, status.detail, bad
            )
            os.replace(path, bad)
            store.forget(file.name)
        _fetch(spec, file, store, progress, retry, timeout, block_size)
    return file_status(spec, [f.name for f in chosen])
