"""What a data set is: its card (source, DOI, files, checksums, geometry, particle, energy range,
license, citation) and, for synthetic sets, the function that makes its files.

Cards are TOML files in the shipped ``datasets/cards/`` directory, one per data set::

    name = "ds1-photons"
    title = "CaloChallenge dataset 1, photons"
    kind = "real"                       # or "synthetic"
    geometry = "ds1-photons"            # a built-in geometry name
    particle = "photon"
    format = "calochallenge"            # or "calogan"
    energy_range_mev = [256.0, 4194304.0]
    doi = "10.5281/zenodo.8099322"
    ...
    [[files]]
    name = "dataset_1_photons_1.hdf5"
    role = "train"                      # train | reference | extra
    url = "https://zenodo.org/records/8099322/files/dataset_1_photons_1.hdf5?download=1"
    md5 = "005d2adeda7db034b388112661265656"
    size = 173797023
    n_showers = 121000                  # optional
    rows = [0, 70000]                   # optional row window: only these showers belong to the role

Files of a role are read in card order and joined (dataset 3's reference is files 3 and 4). A file
may appear in several entries with different row windows (the CaloGAN sets: one file per particle,
rows 0-70000 train, 70000-100000 reference). ``url``, ``md5`` and ``size`` are optional: a file
without a url is downloaded by hand from the DOI landing page; one without an md5 is verified by
trust on first use (its md5 is recorded the first time). Keys the dataclass does not know are kept
in ``DatasetSpec.extra`` (e.g. ``zenodo_record``, ``approx_showers_per_file``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from calobench.errors import DatasetError
from calobench.geometry import BUILTIN_GEOMETRIES, Geometry, builtin_geometry
from calobench.names import child_path
from calobench.paths import data_dir
from calobench.textfiles import read_toml

if TYPE_CHECKING:
    from calobench.formats import Format


Kind = Literal["real", "synthetic"]
Role = Literal["train", "reference", "extra"]
ROLES: tuple[str, ...] = ("train", "reference", "extra")


class Maker(Protocol):
    """``maker(spec, file, path, n_showers=..., seed=...)`` writes one synthetic file atomically to
    ``path``; ``n_showers`` and ``seed`` are None for the card's values."""

    def __call__(
        self, spec: DatasetSpec, file: FileSpec, path: Path, /, n_showers: int | None, seed: int | None
    ) -> None: ...


@dataclass(frozen=True)
class FileSpec:
    """One file of a data set."""

    name: str
    role: Role
    url: str | None = None
    md5: str | None = None
    size: int | None = None
    n_showers: int | None = None
    seed: int | None = None  # synthetic files: the default seed that makes this file
    #: optional row window ``(start, stop)``: only these showers of the file belong to ``role``
    #: (the CaloGAN sets are one file per particle, split into a train and a reference window)
    rows: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not self.name or Path(self.name).name != self.name or self.name in (".", ".."):
            raise DatasetError(f"file name {self.name!r} must be a plain file name, without directories")
        if self.rows is not None:
            try:
                start, stop = (int(v) for v in self.rows)
            except (TypeError, ValueError):
                raise DatasetError(f"file {self.name!r}: rows must be [start, stop], got {self.rows!r}") from None
            if not 0 <= start < stop:
                raise DatasetError(f"file {self.name!r}: rows [{start}, {stop}] must satisfy 0 <= start < stop")
            object.__setattr__(self, "rows", (start, stop))
        if self.md5 is not None:
            md5 = str(self.md5).lower()
            if len(md5) != 32 or any(c not in "0123456789abcdef" for c in md5):
                raise DatasetError(f"file {self.name!r}: md5 must be 32 hex digits, got {self.md5!r}")
            object.__setattr__(self, "md5", md5)
        if self.size is not None and (not isinstance(self.size, int) or self.size <= 0):
            raise DatasetError(f"file {self.name!r}: size must be a positive number of bytes, got {self.size!r}")


@dataclass(frozen=True)
class DatasetSpec:
    """A named data set. Real sets are downloaded; synthetic ones are made by ``maker`` on demand."""

    name: str
    title: str
    kind: Kind
    geometry: str
    particle: str
    format: Format
    files: tuple[FileSpec, ...]
    energy_range_mev: tuple[float, float]
    doi: str | None = None
    license: str | None = None
    citation: str | None = None
    description: str = ""
    card: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    maker: Maker | None = field(default=None, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        where = f"data set {self.name!r}" + (f" (card {self.card})" if self.card else "")
        if self.kind not in ("real", "synthetic"):
            raise DatasetError(f"{where}: kind must be 'real' or 'synthetic', got {self.kind!r}")
        if self.format not in ("calochallenge", "calogan"):
            raise DatasetError(f"{where}: format must be 'calochallenge' or 'calogan', got {self.format!r}")
        if self.geometry not in BUILTIN_GEOMETRIES:
            raise DatasetError(f"{where}: unknown geometry {self.geometry!r}; known: {', '.join(BUILTIN_GEOMETRIES)}")
        if not self.files:
            raise DatasetError(f"{where}: lists no files")
        for file in self.files:
            if file.role not in ROLES:
                raise DatasetError(f"{where}: file {file.name!r} has role {file.role!r}; expected one of {ROLES}")
        if not self.files_for("train") or not self.files_for("reference"):
            raise DatasetError(f"{where}: needs at least one 'train' and one 'reference' file")
        if self.kind == "synthetic" and self.maker is None:
            raise DatasetError(f"{where}: a synthetic data set needs a maker function")
        seen: dict[str, FileSpec] = {}
        for file in self.files:
            first = seen.setdefault(file.name, file)
            if (first.url, first.md5, first.size) != (file.url, file.md5, file.size):
                raise DatasetError(f"{where}: file {file.name!r} is listed twice with different url, md5 or size")
            if first is not file and (first.rows is None or file.rows is None):
                raise DatasetError(f"{where}: file {file.name!r} is listed twice; each entry needs a row window")

    # ------------------------------------------------------------------ card
    @classmethod
    def from_card(cls, path: str | Path, maker: Maker | None = None) -> "DatasetSpec":
        """Read a TOML data-set card."""
        path = Path(path)
        data = read_toml(path, "data-set card", DatasetError)
        try:
            files = tuple(FileSpec(**entry) for entry in data.pop("files"))
            low, high = data.pop("energy_range_mev")
            low, high = float(low), float(high)
        except KeyError as exc:
            raise DatasetError(f"data-set card {path} is malformed: the required key {exc} is missing") from exc
        except DatasetError as exc:  # a [[files]] entry failed its checks
            raise DatasetError(f"data-set card {path} is malformed: {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise DatasetError(f"data-set card {path} is malformed: {type(exc).__name__}: {exc}") from exc
        special = ("files", "energy_range_mev", "card", "maker", "extra")
        known = {f for f in cls.__dataclass_fields__ if f not in special}
        extra = {k: data.pop(k) for k in list(data) if k not in known}
        try:
            return cls(files=files, energy_range_mev=(low, high), card=path, maker=maker, extra=extra, **data)
        except TypeError as exc:
            raise DatasetError(f"data-set card {path} is malformed: {exc}") from exc

    # ------------------------------------------------------------------ files
    @property
    def geometry_object(self) -> Geometry:
        return builtin_geometry(self.geometry)

    def files_for(self, role: str) -> list[FileSpec]:
        return [f for f in self.files if f.role == role]

    def directory(self) -> Path:
        """Where this data set's files live: ``<data dir>/<name>/``."""
        return child_path(data_dir(), self.name, "data set")

    def path(self, file: FileSpec) -> Path:
        return child_path(self.directory(), file.name, "data-set file")

    def paths(self, role: str) -> list[Path]:
        return [self.path(f) for f in self.files_for(role)]

    def unique_files(self) -> list[FileSpec]:
        """Each file on disk once (a file split into row windows appears once), in card order."""
        seen: dict[str, FileSpec] = {}
        for file in self.files:
            seen.setdefault(file.name, file)
        return list(seen.values())

    def parts(self, role: str) -> "list[Path | tuple[Path, int, int | None]]":
        """What :func:`calobench.formats.open_showers` reads for ``role``: paths, or ``(path, start, stop)``
        for files with a row window."""
        return [self.path(f) if f.rows is None else (self.path(f), *f.rows) for f in self.files_for(role)]
