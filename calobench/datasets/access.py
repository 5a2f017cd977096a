"""Finding data sets by name and getting their files onto disk and open.

* :func:`get_dataset` looks a name up in the plugin registry (``calobench.plugins.datasets()``).
* :func:`ensure_files` returns the parts of a role ready for :func:`calobench.formats.open_showers`:
  synthetic files are made on demand, real ones must have been downloaded (and are verified).
* :func:`make_files` (re)makes the files of a synthetic set.
* :func:`role_checksums` gives the md5 of each file of a role (for result provenance).
* :func:`open_role` opens a role's showers as one :class:`~calobench.formats.ShowerSet`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TypeAlias

from calobench.atomic import remove_stale_partials
from calobench.datasets.checksums import ChecksumStore, md5_file
from calobench.datasets.local import file_status, verify
from calobench.datasets.spec import ROLES, DatasetSpec, FileSpec
from calobench.errors import ChecksumError, DatasetError, RegistryError
from calobench.locking import LockError, exclusive

log = logging.getLogger("calobench.datasets")

Part: TypeAlias = "Path | tuple[Path, int, int | None]"


def get_dataset(name: str) -> DatasetSpec:
    """The registered data set ``name`` (built-in cards, synthetic sets and plugins' sets)."""
    from calobench.plugins import datasets

    try:
        return datasets().get(name)
    except RegistryError as exc:
        raise DatasetError(f"{exc}; `calobench datasets list` shows them all") from None


def resolve(name_or_spec: "str | DatasetSpec") -> DatasetSpec:
    return name_or_spec if isinstance(name_or_spec, DatasetSpec) else get_dataset(name_or_spec)


def _check_role(spec: DatasetSpec, role: str) -> None:
    if role not in ROLES:
        raise DatasetError(f"unknown role {role!r} for data set {spec.name!r}; expected one of {', '.join(ROLES)}")
    if not spec.files_for(role):
        raise DatasetError(f"data set {spec.name!r} has no {role!r} files")


def make_file(spec: DatasetSpec, file: FileSpec, n_showers: int | None = None, seed: int | None = None) -> Path:
    """Make one file of a synthetic set with its maker and record the md5 of what was made."""
    if spec.kind != "synthetic" or spec.maker is None:
        raise DatasetError(
            f"data set {spec.name!r} is {spec.kind}: its files are downloaded, not made; "
            f"run `calobench datasets download {spec.name}`"
        )
    path = spec.path(file)
    path.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(path, f"data-set file {path}"):
        remove_stale_partials(path)
        store = ChecksumStore(spec.directory())
        store.forget(file.name)
        log.info("making %s of data set %s", file.name, spec.name)
        spec.maker(spec, file, path, n_showers=n_showers, seed=seed)
        if not path.is_file():
            raise DatasetError(f"the maker of data set {spec.name!r} did not write {path}")
        digest = md5_file(path)
        store.remember(file.name, digest)
        if file.md5 is None:
            store.pin(file.name, digest, "made")
        elif digest != file.md5:
            raise ChecksumError(
                f"{path} was made but its md5 {digest} differs from the card's {file.md5}; "
                "the simulator changed since the card was written"
            )
    return path


def make_files(
    name_or_spec: "str | DatasetSpec",
    role: str | None = None,
    n_showers: int | None = None,
    seed: int | None = None,
    force: bool = False,
) -> list[tuple[Path, bool]]:
    """Make the files of a synthetic set (of one role, or all). Existing files are kept unless ``force``.

    Returns ``(path, made)`` per file.
    """
    spec = resolve(name_or_spec)
    if spec.kind != "synthetic":
        raise DatasetError(
            f"data set {spec.name!r} is real: its files are downloaded, not made; "
            f"run `calobench datasets download {spec.name}`"
        )
    if role is not None:
        _check_role(spec, role)
    chosen = spec.files_for(role) if role is not None else spec.files
    done: list[tuple[Path, bool]] = []
    seen: set[str] = set()
    for file in chosen:
        if file.name in seen:
            continue
        seen.add(file.name)
        path = spec.path(file)
        if path.is_file() and not force:
            try:
                with exclusive(path, f"data-set file {path}"):
                    remove_stale_partials(path)
            except LockError:
                pass  # another process is making it: its partial file is not stale
            done.append((path, False))
            continue
        done.append((make_file(spec, file, n_showers, seed), True))
    return done


def ensure_files(name_or_spec: "str | DatasetSpec", role: str, verified: bool = True) -> "list[Part]":
    """The parts (paths or ``(path, start, stop)`` row windows) of ``role``, present on disk.

    Missing synthetic files are made (``spec.maker``); missing real files raise a
    :class:`DatasetError` that says to run ``calobench datasets download NAME``. With ``verified``
    every file is checked against its md5 (hashed once, then remembered); a mismatch raises
    :class:`ChecksumError`.
    """
    spec = resolve(name_or_spec)
    _check_role(spec, role)
    names = list(dict.fromkeys(f.name for f in spec.files_for(role)))
    for file in spec.unique_files():
        if file.name not in names or spec.path(file).is_file():
            continue
        if spec.kind == "synthetic":
            make_file(spec, file)
            continue
        from calobench.datasets.download import manual_download_message

        how = (
            f"run `calobench datasets download {spec.name}`"
            if file.url is not None
            else manual_download_message(spec, file)
        )
        raise DatasetError(f"data set {spec.name!r}: the {role} file {spec.path(file)} is not there; {how}")
    if verified:
        for status in verify(spec, names, progress=None):
            if status.state != "verified":
                fix = (
                    f"`calobench datasets make {spec.name} --force` makes it again"
                    if spec.kind == "synthetic"
                    else f"`calobench datasets download {spec.name}` fetches it again"
                )
                raise ChecksumError(f"data set {spec.name!r}: {status.path} is {status.state}: {status.detail}; {fix}")
    return spec.parts(role)


def role_checksums(name_or_spec: "str | DatasetSpec", role: str) -> dict[str, str]:
    """``{file name: md5}`` of the (verified) files of a role, for result provenance.

    Makes or checks the files like :func:`ensure_files`; cheap once the checksums are cached."""
    spec = resolve(name_or_spec)
    ensure_files(spec, role)
    names = list(dict.fromkeys(f.name for f in spec.files_for(role)))
    return {s.file.name: str(s.md5) for s in file_status(spec, names)}


def open_role(name_or_spec: "str | DatasetSpec", role: str):
    """Open the showers of one role (files joined, row windows applied) as a ShowerSet.

    Use as a context manager: ``with open_role("calochallenge-ds2", "reference") as showers: ...``
    """
    from calobench.formats import open_showers

    spec = resolve(name_or_spec)
    return open_showers(ensure_files(spec, role), spec.geometry_object)
