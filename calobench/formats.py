"""Shower files on disk: the CaloChallenge and CaloGAN HDF5 formats, streamed in bounded memory.

* CaloChallenge (arXiv 2410.21611): datasets ``incident_energies`` (N, 1) and ``showers``
  (N, n_voxels), both in MeV, gzip-compressed; float32 or float64.
* CaloGAN (arXiv 1712.10321): ``energy`` (N, 1) or (N,) in **GeV**, ``layer_0`` (N, 3, 96),
  ``layer_1`` (N, 12, 12), ``layer_2`` (N, 12, 6) in MeV and ``overflow`` (N, 3). calobench converts
  the incident energy to MeV on reading and back to GeV on writing.

Every malformed file raises one :class:`~calobench.errors.ShowerFileError` saying what is wrong and
what was expected. Writers write to a temporary file next to the target and rename it into place
only when complete, so an interrupted write never leaves a half-written file under the real name.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal, TypeAlias

import h5py
import numpy as np

from calobench.atomic import check_output_file, commit, describe_os_error, temporary_path
from calobench.chunkread import chunk_reader
from calobench.errors import GeometryError, OutputError, ShowerFileError, VoxelCountError
from calobench.geometry import Geometry, detect_geometry, resolve_geometry
from calobench.showers import Showers, check_shower_arrays

Format = Literal["calochallenge", "calogan"]
FORMATS: tuple[str, ...] = ("calochallenge", "calogan")

CALOCHALLENGE_KEYS = ("incident_energies", "showers")
CALOGAN_KEYS = ("energy", "layer_0", "layer_1", "layer_2")
CALOGAN_LAYER_KEYS = ("layer_0", "layer_1", "layer_2")
GEV = 1000.0  # MeV per GeV

#: Bytes of voxel data read per chunk when streaming with the default chunk size: below glibc's
#: largest dynamic mmap threshold (32 MiB), so that the arrays of one chunk are recycled by malloc
#: for the next instead of being mapped and zeroed anew (a fifth less CPU time on dataset 3).
DEFAULT_CHUNK_BYTES = 16 * 2**20


def default_chunk_size(n_voxels: int, itemsize: int = 4) -> int:
    """Showers per chunk so that one chunk of voxels takes about 16 MB."""
    return max(1, DEFAULT_CHUNK_BYTES // (n_voxels * itemsize))


def _open_h5(path: Path) -> h5py.File:
    if not path.exists():
        raise ShowerFileError(f"{path}: no such file")
    if path.is_dir():
        raise ShowerFileError(f"{path} is a directory, expected an HDF5 shower file")
    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError as exc:
        raise ShowerFileError(f"{path}: cannot read the file: {exc}") from exc
    if not is_hdf5:
        raise ShowerFileError(
            f"{path} is not an HDF5 file (no HDF5 signature); expected a CaloChallenge or CaloGAN .hdf5 shower file"
        )
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        text = str(exc)
        if "truncated" in text or "eof" in text.lower():
            raise ShowerFileError(
                f"{path} is truncated: the file is shorter than its HDF5 header says "
                "(an interrupted download or copy?); download or write it again"
            ) from exc
        raise ShowerFileError(f"{path}: HDF5 file cannot be opened: {text}") from exc


def detect_format(handle: h5py.File, source: str) -> Format:
    keys = set(handle.keys())
    if set(CALOCHALLENGE_KEYS) <= keys:
        return "calochallenge"
    if set(CALOGAN_KEYS) <= keys:
        return "calogan"
    found = ", ".join(sorted(keys)) or "nothing"
    raise ShowerFileError(
        f"{source}: missing keys: a CaloChallenge file needs {list(CALOCHALLENGE_KEYS)}, a CaloGAN file "
        f"{list(CALOGAN_KEYS)} (+ overflow); found {found}"
    )


#: Incident energies read per chunk when only they are needed (8 MB of float64).
INCIDENT_CHUNK = 2**20


def _check_incident(values: np.ndarray, source: str, offset: int) -> None:
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        index = int(np.argmax(bad))
        raise ShowerFileError(
            f"{source}: {int(bad.sum())} incident energies are not finite and positive "
            f"(first at shower {index + offset}: {values[index]})"
        )


class ShowerFile:
    """An open shower file that reads showers in chunks.

    Args:
        path: the HDF5 file.
        geometry: a :class:`Geometry`, built-in name or binning XML path; by default detected from
            the voxel count (CaloChallenge) or the CaloGAN layout.

    Use as a context manager, or call :meth:`close`.
    """

    #: every chunk read is a new array that the caller may modify in place
    fresh_chunks = True

    def __init__(self, path: str | Path, geometry: "Geometry | str | Path | None" = None) -> None:
        self.path = Path(path)
        self._handle = _open_h5(self.path)
        try:
            self.format: Format = detect_format(self._handle, str(self.path))
            self._setup(geometry)
        except BaseException:
            self._handle.close()
            raise

    def _dataset(self, key: str) -> h5py.Dataset:
        link = self._handle.get(key, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            raise ShowerFileError(
                f"{self.path}: {key!r} is an external link to {link.filename}:{link.path}; calobench reads "
                "only the file it is given (copy the data into it)"
            )
        item = self._handle.get(key)
        if isinstance(item, h5py.Dataset) and (item.external or item.is_virtual):
            raise ShowerFileError(
                f"{self.path}: dataset {key!r} keeps its data in other files (HDF5 "
                f"{'external storage' if item.external else 'virtual dataset'}); calobench reads only the file "
                "it is given (copy the data into it)"
            )
        if not isinstance(item, h5py.Dataset):
            raise ShowerFileError(f"{self.path}: {key!r} is a group, expected a dataset")
        if item.dtype.kind not in "fiu":
            raise ShowerFileError(f"{self.path}: dataset {key!r} has non-numeric type {item.dtype}")
        return item

    def _setup(self, geometry: "Geometry | str | Path | None") -> None:
        source = str(self.path)
        if self.format == "calochallenge":
            einc, showers = self._dataset("incident_energies"), self._dataset("showers")
            if showers.ndim != 2:
                raise ShowerFileError(
                    f"{source}: dataset 'showers' must be 2-D (N, n_voxels), got shape {showers.shape}"
                )
            if einc.ndim not in (1, 2) or (einc.ndim == 2 and einc.shape[1] != 1):
                raise ShowerFileError(f"{source}: dataset 'incident_energies' must have shape (N, 1), got {einc.shape}")
            n_voxels = showers.shape[1]
            self._einc, self._voxels = einc, [showers]
            self._chunks = chunk_reader(showers)
            n_incident, n_showers = einc.shape[0], showers.shape[0]
        else:
            einc = self._dataset("energy")
            layers = [self._dataset(k) for k in CALOGAN_LAYER_KEYS]
            reference = Geometry.calogan()
            for key, dataset, layer in zip(CALOGAN_LAYER_KEYS, layers, reference.layers):
                if dataset.shape[1:] != layer.shape:
                    raise ShowerFileError(
                        f"{source}: CaloGAN dataset {key!r} must have shape (N, {layer.shape[0]}, "
                        f"{layer.shape[1]}), got {dataset.shape}"
                    )
            lengths = {d.shape[0] for d in layers}
            if len(lengths) != 1:
                raise ShowerFileError(
                    f"{source}: length mismatch between CaloGAN layers: {[d.shape[0] for d in layers]} showers"
                )
            if einc.ndim not in (1, 2) or (einc.ndim == 2 and einc.shape[1] != 1):
                raise ShowerFileError(f"{source}: dataset 'energy' must have shape (N,) or (N, 1), got {einc.shape}")
            n_voxels = reference.n_voxels
            self._einc, self._voxels = einc, layers
            self._chunks = None
            n_incident, n_showers = einc.shape[0], layers[0].shape[0]
        if n_incident != n_showers:
            raise ShowerFileError(f"{source}: length mismatch: {n_incident} incident energies but {n_showers} showers")
        if n_showers == 0:
            raise ShowerFileError(f"{source} holds no showers")

        try:
            if geometry is None:
                self.geometry = Geometry.calogan() if self.format == "calogan" else detect_geometry(n_voxels)
            else:
                self.geometry = resolve_geometry(geometry)
        except GeometryError as exc:
            raise ShowerFileError(f"{source}: {exc}") from exc
        if self.geometry.n_voxels != n_voxels:
            raise VoxelCountError(
                f"{source}: geometry {self.geometry.name} expects {self.geometry.n_voxels} voxels per shower, "
                f"found {n_voxels}"
            )
        self.n_showers = n_showers
        # reading gives float64 for float64 files and float32 for everything else (float16, integers)
        wide = any(d.dtype == np.float64 for d in self._voxels)
        self.dtype = np.dtype(np.float64) if wide else np.dtype(np.float32)
        #: the voxel type(s) as stored in the file (``dtype`` is what reading returns)
        self.stored_dtype = "/".join(dict.fromkeys(str(d.dtype) for d in self._voxels))
        #: the type the incident energies are stored in (reading returns float64 MeV); the
        #: CaloChallenge script divides E_tot by them in it (calobench.metrics.features)
        stored = np.dtype(self._einc.dtype)
        self.incident_dtype = stored if self.format == "calochallenge" and stored.kind == "f" else np.dtype(np.float64)

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return self.n_showers

    def incident_energies(self) -> np.ndarray:
        """All incident energies (N,) in MeV as float64."""
        return self._read_incident(0, self.n_showers)

    def _read_incident(self, start: int, stop: int) -> np.ndarray:
        values = np.asarray(self._guarded(lambda: self._einc[start:stop]), dtype=np.float64).reshape(-1)
        return values * GEV if self.format == "calogan" else values

    def iter_incident_energies(self, chunk_size: int = INCIDENT_CHUNK) -> Iterator[np.ndarray]:
        """Stream the incident energies (MeV, float64) in chunks, each checked to be finite and positive."""
        for start in range(0, self.n_showers, chunk_size):
            values = self._read_incident(start, min(start + chunk_size, self.n_showers))
            _check_incident(values, str(self.path), start)
            yield values

    def _guarded(self, read):
        try:
            return read()
        except OSError as exc:
            raise ShowerFileError(
                f"{self.path}: reading failed ({exc}); the file is probably truncated or corrupted"
            ) from exc

    def read(self, start: int = 0, stop: int | None = None, validate: bool = True) -> Showers:
        """Showers ``start:stop`` (all by default) as a :class:`Showers`."""
        stop = self.n_showers if stop is None else min(stop, self.n_showers)
        if not 0 <= start <= stop:
            raise ShowerFileError(f"{self.path}: invalid shower range {start}:{stop} (file holds {self.n_showers})")
        incident = self._read_incident(start, stop)
        if self.format == "calochallenge":
            voxels = self._guarded(lambda: self._read_voxels(start, stop))
        else:
            blocks = [self._guarded(lambda d=d: d[start:stop]) for d in self._voxels]
            voxels = np.concatenate([b.reshape(len(b), -1) for b in blocks], axis=1)
        if voxels.dtype != self.dtype:
            voxels = voxels.astype(self.dtype)
        check_shower_arrays(incident, voxels, self.geometry, source=str(self.path), offset=start, check_values=validate)
        return Showers(incident, voxels, self.geometry)

    def _read_voxels(self, start: int, stop: int) -> np.ndarray:
        """Voxel rows of a CaloChallenge file: stored chunks decoded by :mod:`calobench.chunkread`
        where it handles the layout (h5py's array, at a quarter of the CPU time), else h5py."""
        dataset = self._voxels[0]
        if self._chunks is None or stop <= start:
            return dataset[start:stop]
        return self._chunks.read(start, stop, lambda a, b: dataset[a:b])

    def iter_chunks(self, chunk_size: int | None = None, validate: bool = True) -> Iterator[Showers]:
        """Stream the file as consecutive :class:`Showers` of at most ``chunk_size`` showers.

        Memory stays bounded by one chunk (about 16 MB of voxels by default).
        """
        size = chunk_size or default_chunk_size(self.geometry.n_voxels, np.dtype(self.dtype).itemsize)
        for start in range(0, self.n_showers, size):
            yield self.read(start, start + size, validate=validate)

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "ShowerFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: One part of a shower source: a file, optionally restricted to the rows ``start:stop``.
Part: TypeAlias = "str | Path | tuple[str | Path, int, int | None]"


class ShowerSet:
    """Several shower files (or row windows of files) of one geometry, read as one sequence.

    Dataset 3's reference sample is files 3 and 4 joined; a data set without a separate reference
    file can use row windows of one file. Same reading interface as :class:`ShowerFile`.
    """

    fresh_chunks = True

    def __init__(self, parts: "Sequence[Part]", geometry: "Geometry | str | Path | None" = None) -> None:
        if not parts:
            raise ShowerFileError("no shower files given")
        self._files: list[ShowerFile] = []
        self._windows: list[tuple[int, int]] = []
        try:
            for part in parts:
                path, start, stop = (part, 0, None) if isinstance(part, (str, Path)) else part
                handle = ShowerFile(path, geometry if not self._files else self._files[0].geometry)
                self._files.append(handle)
                stop = handle.n_showers if stop is None else stop
                if not 0 <= start < stop <= handle.n_showers:
                    raise ShowerFileError(
                        f"{path}: row window {start}:{stop} outside the file's {handle.n_showers} showers"
                    )
                self._windows.append((start, stop))
        except BaseException:
            self.close()
            raise
        self.geometry = self._files[0].geometry
        formats = {f.format for f in self._files}
        self.format = self._files[0].format if len(formats) == 1 else "mixed"
        self.dtype = np.result_type(*[f.dtype for f in self._files])
        self.stored_dtype = "/".join(dict.fromkeys(f.stored_dtype for f in self._files))
        self.incident_dtype = np.result_type(*[f.incident_dtype for f in self._files])
        self.n_showers = sum(b - a for a, b in self._windows)
        self.path = (
            Path(self._files[0].path) if len(self._files) == 1 else Path(" + ".join(str(f.path) for f in self._files))
        )

    def __len__(self) -> int:
        return self.n_showers

    def _pieces(self, start: int, stop: int) -> Iterator[tuple[ShowerFile, int, int, int]]:
        """(file, local start, local stop, global offset) covering global rows start:stop."""
        offset = 0
        for handle, (a, b) in zip(self._files, self._windows):
            length = b - a
            lo, hi = max(start, offset), min(stop, offset + length)
            if lo < hi:
                yield handle, a + lo - offset, a + hi - offset, lo
            offset += length

    def incident_energies(self) -> np.ndarray:
        return np.concatenate([h._read_incident(a, b) for h, (a, b) in zip(self._files, self._windows)])

    def iter_incident_energies(self, chunk_size: int = INCIDENT_CHUNK) -> Iterator[np.ndarray]:
        """Stream the incident energies (MeV, float64) in chunks, each checked to be finite and positive."""
        for start in range(0, self.n_showers, chunk_size):
            stop = min(start + chunk_size, self.n_showers)
            values = np.concatenate([h._read_incident(a, b) for h, a, b, _ in self._pieces(start, stop)])
            _check_incident(values, str(self.path), start)
            yield values

    def read(self, start: int = 0, stop: int | None = None, validate: bool = True) -> Showers:
        stop = self.n_showers if stop is None else min(stop, self.n_showers)
        if not 0 <= start <= stop:
            raise ShowerFileError(f"{self.path}: invalid shower range {start}:{stop} (holds {self.n_showers})")
        parts = [h.read(a, b, validate=validate) for h, a, b, _ in self._pieces(start, stop)]
        if not parts:
            return Showers(np.zeros(0), np.zeros((0, self.geometry.n_voxels), dtype=self.dtype), self.geometry)
        return parts[0] if len(parts) == 1 else Showers.concatenate(parts)

    def iter_chunks(self, chunk_size: int | None = None, validate: bool = True) -> Iterator[Showers]:
        size = chunk_size or default_chunk_size(self.geometry.n_voxels, np.dtype(self.dtype).itemsize)
        for start in range(0, self.n_showers, size):
            yield self.read(start, start + size, validate=validate)

    def close(self) -> None:
        for handle in self._files:
            handle.close()

    def __enter__(self) -> "ShowerSet":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_showers(
    source: "str | Path | Sequence[Part]", geometry: "Geometry | str | Path | None" = None
) -> "ShowerFile | ShowerSet":
    """Open a CaloChallenge or CaloGAN shower file for chunked reading.

    ``source`` is a path, or a list of paths / ``(path, start, stop)`` row windows read as one
    sequence (a :class:`ShowerSet`). Both have ``geometry``, ``n_showers``, ``incident_energies()``,
    ``read(start, stop)`` and ``iter_chunks(chunk_size)``.
    """
    if isinstance(source, (str, Path)):
        return ShowerFile(source, geometry)
    return ShowerSet(list(source), geometry)


def read_showers(
    source: "str | Path | Sequence[Part]",
    geometry: "Geometry | str | Path | None" = None,
    max_showers: int | None = None,
    validate: bool = True,
) -> Showers:
    """Read a whole shower file or set (or its first ``max_showers``) into memory."""
    with open_showers(source, geometry) as handle:
        return handle.read(0, max_showers, validate=validate)


# ---------------------------------------------------------------------- writing
class _GuardedFile:
    """The file under an HDF5 file being written (h5py's ``fileobj`` driver) that never lets a write
    fail inside HDF5.

    The first write the operating system refuses (the disk full, a file too large, an I/O error)
    is kept in :attr:`failed` and every later write or truncation is dropped. HDF5 itself then never
    sees an error: after a failed flush the HDF5 library is left in a state in which closing the
    file, or the interpreter's exit, ends in a segmentation fault. :class:`ShowerWriter` checks
    :attr:`failed` after every batch and before its rename, and discards the file.
    """

    def __init__(self, path: Path) -> None:
        self._file = open(path, "r+b", buffering=0)  # noqa: SIM115 - closed by ShowerWriter
        self.failed: OSError | None = None

    def _guard(self, call, *args):
        if self.failed is None:
            try:
                return call(*args)
            except OSError as exc:
                self.failed = exc
        return None

    def write(self, data) -> int:
        self._guard(self._file.write, data)
        return len(data)

    def truncate(self, size: int | None = None) -> int | None:
        self._guard(self._file.truncate, size)
        return size

    def flush(self) -> None:
        self._guard(self._file.flush)

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def readinto(self, buffer) -> int | None:
        return self._file.readinto(buffer)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()


class ShowerWriter:
    """Append showers to a new file; it appears under its final name only when closed cleanly.

    Args:
        path: the target file (replaced atomically if it exists).
        geometry: the geometry of the showers to be written.
        format: ``"calochallenge"`` (default) or ``"calogan"`` (CaloGAN geometry only).
        dtype: float32 (default) or float64 for the voxel energies.
        compression_level: gzip level 0-9.
    """

    def __init__(
        self,
        path: str | Path,
        geometry: Geometry,
        format: Format = "calochallenge",
        dtype: np.dtype | type = np.float32,
        compression_level: int = 4,
    ) -> None:
        if format not in FORMATS:
            raise ShowerFileError(f"unknown shower-file format {format!r}; choose one of {FORMATS}")
        if format == "calogan" and geometry.kind != "cartesian":
            raise ShowerFileError(f"the CaloGAN format holds only the CaloGAN geometry, not {geometry.name}")
        self.path, self.geometry, self.format = Path(path), geometry, format
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise ShowerFileError(f"shower files hold float32 or float64 energies, not {self.dtype}")
        check_output_file(self.path, "shower file")
        self._tmp = temporary_path(self.path, suffix=".partial")
        try:
            self._raw = _GuardedFile(self._tmp)
            self._handle = h5py.File(self._raw, "w")
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        self.n_written = 0
        options = dict(compression="gzip", compression_opts=compression_level, shuffle=True)
        rows = max(1, 2**20 // (geometry.n_voxels * self.dtype.itemsize))
        if format == "calochallenge":
            self._einc = self._handle.create_dataset(
                "incident_energies", shape=(0, 1), maxshape=(None, 1), dtype=self.dtype, chunks=(4096, 1), **options
            )
            self._blocks = [
                self._handle.create_dataset(
                    "showers",
                    shape=(0, geometry.n_voxels),
                    maxshape=(None, geometry.n_voxels),
                    dtype=self.dtype,
                    chunks=(rows, geometry.n_voxels),
                    **options,
                )
            ]
        else:
            self._einc = self._handle.create_dataset(
                "energy", shape=(0, 1), maxshape=(None, 1), dtype=self.dtype, chunks=(4096, 1), **options
            )
            self._blocks = [
                self._handle.create_dataset(
                    f"layer_{i}",
                    shape=(0, *layer.shape),
                    maxshape=(None, *layer.shape),
                    dtype=self.dtype,
                    chunks=(rows, *layer.shape),
                    **options,
                )
                for i, layer in enumerate(geometry.layers)
            ]
            self._overflow = self._handle.create_dataset(
                "overflow", shape=(0, 3), maxshape=(None, 3), dtype=self.dtype, chunks=(4096, 3), **options
            )

    def append(self, showers: Showers, overflow: np.ndarray | None = None) -> None:
        """Write a batch of showers (values are checked first). ``overflow`` (N, 3) is CaloGAN only."""
        if showers.geometry != self.geometry:
            raise ShowerFileError(f"cannot write {showers.geometry.name} showers into a {self.geometry.name} file")
        showers.validate(source=f"showers for {self.path}")
        n, start = len(showers), self.n_written
        incident = showers.incident_energies.reshape(-1, 1)
        if self.format == "calogan":
            incident = incident / GEV
        self._einc.resize(start + n, axis=0)
        self._einc[start:] = incident
        if self.format == "calochallenge":
            self._blocks[0].resize(start + n, axis=0)
            self._blocks[0][start:] = showers.energies
        else:
            for dataset, layer in zip(self._blocks, self.geometry.layers):
                dataset.resize(start + n, axis=0)
                dataset[start:] = showers.layer(layer.id)
            extra = np.zeros((n, 3)) if overflow is None else np.asarray(overflow).reshape(n, 3)
            self._overflow.resize(start + n, axis=0)
            self._overflow[start:] = extra
        self._check_written()
        self.n_written += n

    def _check_written(self) -> None:
        """Raise :class:`OutputError` if the file system refused a write (see :class:`_GuardedFile`)."""
        if self._raw.failed is not None:
            raise OutputError(f"cannot write {self.path}: {describe_os_error(self._raw.failed)}")

    def close(self) -> Path:
        """Finish the file and move it to its final name."""
        try:
            self._handle.attrs["creator"] = "calobench"
            self._handle.close()
            self._raw.flush()
            self._raw.close()
            self._check_written()
            if self.n_written == 0:
                raise ShowerFileError(f"no showers were written to {self.path}")
            return commit(self._tmp, self.path)
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError):
                raise OutputError(f"cannot write {self.path}: {describe_os_error(exc)}") from exc
            raise

    def abort(self) -> None:
        """Discard everything written so far."""
        try:
            if self._handle.id.valid:
                self._handle.close()
        finally:
            self._raw.close()
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "ShowerWriter":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_showers(
    path: str | Path,
    showers: Showers,
    format: Format | None = None,
    dtype: np.dtype | type = np.float32,
    overflow: np.ndarray | None = None,
) -> Path:
    """Write showers to one file atomically; CaloGAN-geometry showers default to the CaloGAN format."""
    if format is None:
        format = "calogan" if showers.geometry.kind == "cartesian" else "calochallenge"
    with ShowerWriter(path, showers.geometry, format=format, dtype=dtype) as writer:
        writer.append(showers, overflow=overflow)
    return Path(path)
