"""Training runs on disk (``calobench train``) and sampling from them (``calobench sample``).

A run directory holds::

    run.json               status (training | finished), generator + provider, preset, config, seed,
                           device, data set (name, files, fingerprints), geometry, validation split,
                           training wall time, n_parameters, model_info (Generator.run_info()),
                           calobench and torch versions
    incident_energies.npy  the training file's incident energies (MeV), for ``sample --showers N``
    work/                  resumable checkpoints (TorchGenerator: one ``<stage>.pt`` per stage)
    model/                 the saved generator (``generator.json`` + weights), written when training ends

Re-running the same training command on the directory resumes an unfinished run; a finished run is
reported and left alone (``force=True`` trains again from scratch); a directory made with another
generator, preset, config, seed or training data is refused with the differences listed.

The validation set is a seeded random fraction of the training file (``valid_fraction``, default
10 %), never the data set's reference file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from calobench import __version__
from calobench.atomic import check_output_dir, check_output_file, remove_stale_partials, write_atomic, write_json_atomic
from calobench.errors import CheckpointError, ConfigError, GeometryError, ShowerFileError, VoxelCountError
from calobench.formats import Format, ShowerWriter, open_showers
from calobench.generator.base import Generator, resolve_config
from calobench.generator.checkpoint import read_json
from calobench.generator.checks import plugin_call
from calobench.generator.device import resolve_device
from calobench.generator.distributed import World, barrier, init_process_group, local_device
from calobench.generator.seeding import derive_seed
from calobench.generator.serialization import geometry_to_dict
from calobench.geometry import Geometry, resolve_geometry
from calobench.interrupts import interruptible
from calobench.locking import exclusive
from calobench.memory import check_showers_fit
from calobench.showers import Showers

log = logging.getLogger("calobench.runs")

RUN_FILE = "run.json"
ENERGIES_FILE = "incident_energies.npy"
RUN_SCHEMA = 1
DEFAULT_VALID_FRACTION = 0.1
#: Fields that must agree for a run directory to be resumed.
IDENTITY_KEYS = ("generator", "preset", "config", "seed", "dataset", "geometry", "max_showers", "valid_fraction")
#: Bytes read at each of the start, middle and end of a file for its fast fingerprint.
FINGERPRINT_BLOCK = 2**20
#: Rows of voxels per written chunk stay below this many bytes.
SAMPLE_CHUNK_BYTES = 256 * 2**20
#: In-memory copies of the training showers during training: the file's array, the training /
#: validation split and the model's own tensors.
TRAINING_COPIES = 3.0


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def fingerprint(path: str | Path) -> str:
    """A fast content fingerprint: BLAKE2b of the size and 1 MiB at the start, middle and end of the file
    (the whole file when it is smaller than 3 MiB). Not a checksum: it detects a replaced file quickly."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.blake2b(str(size).encode(), digest_size=16)
    with path.open("rb") as handle:
        if size <= 3 * FINGERPRINT_BLOCK:
            digest.update(handle.read())
        else:
            for offset in (0, size // 2, size - FINGERPRINT_BLOCK):
                handle.seek(offset)
                digest.update(handle.read(FINGERPRINT_BLOCK))
    return "blake2b-sampled:" + digest.hexdigest()


def _describe_parts(parts: list[Any], md5s: dict[str, str | None]) -> list[dict[str, Any]]:
    described = []
    for part in parts:
        path, start, stop = (part, 0, None) if isinstance(part, (str, Path)) else part
        path = Path(path).resolve()
        described.append(
            {
                "path": str(path),
                "rows": None if (start, stop) == (0, None) else [start, stop],
                "size": path.stat().st_size,
                "fingerprint": fingerprint(path),
                "md5": md5s.get(path.name),
            }
        )
    return described


@dataclass
class TrainingData:
    """The training file(s) of a run: what to read, in which geometry and format, and how it is recorded."""

    parts: list[Any]
    geometry: Geometry
    format: str
    dataset: str | None
    record: dict[str, Any]


def resolve_training_data(dataset: str, geometry: "str | Path | None" = None) -> TrainingData:
    """A registered data set's training files (made on first use for synthetic sets), or a shower file."""
    path = Path(dataset).expanduser()
    looks_like_file = path.suffix.lower() in (".h5", ".hdf5", ".hdf") or os.sep in dataset
    if path.is_file() or looks_like_file:
        if not path.is_file():
            raise ShowerFileError(f"training file {path} does not exist")
        try:
            with open_showers(path, geometry) as handle:
                chosen, fmt = handle.geometry, handle.format
        except GeometryError as exc:
            raise ShowerFileError(f"{path}: {exc}") from exc
        record: dict[str, Any] = {"name": None, "files": _describe_parts([path], {})}
        return TrainingData([path], chosen, fmt, None, record)
    from calobench.datasets import ensure_files, get_dataset

    spec = get_dataset(dataset)
    if geometry is not None and resolve_geometry(geometry) != spec.geometry_object:
        raise ConfigError(
            f"data set {dataset!r} has geometry {spec.geometry!r}; do not pass --geometry {geometry} with it"
        )
    parts = ensure_files(spec, "train")
    md5s = {f.name: f.md5 for f in spec.files_for("train")}
    record = {"name": spec.name, "kind": spec.kind, "files": _describe_parts(list(parts), md5s)}
    return TrainingData(list(parts), spec.geometry_object, spec.format, spec.name, record)


@dataclass
class TrainResult:
    """What :func:`train_run` did."""

    directory: Path
    run: dict[str, Any]
    already_finished: bool = False
    resumed: bool = False


def _versions() -> dict[str, str]:
    versions = {"calobench": __version__}
    try:
        import torch

        versions["torch"] = torch.__version__
    except ImportError:  # pragma: no cover - torch is a dependency
        versions["torch"] = "not installed"
    return versions


def _device_text(model: Generator) -> str:
    device = getattr(model, "device", None)
    if device is None:
        return "cpu"
    from calobench.generator.device import device_description

    return device_description(device)


def read_run(directory: str | Path) -> dict[str, Any]:
    """The ``run.json`` of a run directory (:class:`CheckpointError` if missing or unreadable)."""
    directory = Path(directory)
    if not (directory / RUN_FILE).is_file():
        raise CheckpointError(
            f"{directory} is not a calobench run directory (no {RUN_FILE}); "
            "train one with `calobench train MODEL --dataset ... --out DIR`"
        )
    hint = "; `calobench train ... --force` discards the directory's contents and trains again"
    try:
        run = read_json(directory / RUN_FILE, what="run description")
    except CheckpointError as exc:
        raise CheckpointError(f"{exc}{hint}") from exc
    if not isinstance(run, dict) or run.get("schema_version") != RUN_SCHEMA:
        raise CheckpointError(f"{directory / RUN_FILE} is not a calobench run description (schema {RUN_SCHEMA}){hint}")
    return run


def _identity(run: dict[str, Any], key: str) -> Any:
    """The part of ``run[key]`` that identifies a run (data files by content, not by where they are)."""
    value = run.get(key)
    if key == "dataset" and isinstance(value, dict):
        return {
            "name": value.get("name"),
            "files": [
                {
                    "file": Path(f["path"]).name,
                    "rows": f.get("rows"),
                    "size": f.get("size"),
                    "fingerprint": f.get("fingerprint"),
                }
                for f in value.get("files", [])
            ],
        }
    return value


def _check_same_run(existing: dict[str, Any], planned: dict[str, Any], directory: Path) -> None:
    different = [key for key in IDENTITY_KEYS if _identity(existing, key) != _identity(planned, key)]
    if different:
        details = "; ".join(
            f"{key}: {_identity(existing, key)!r} there, {_identity(planned, key)!r} now" for key in different
        )
        raise CheckpointError(
            f"{directory} holds a different training run ({details}); use another --out "
            "directory, or --force to discard it and train from scratch"
        )


def train_run(
    model_name: str,
    dataset: str,
    out: str | Path,
    *,
    preset: str = "quick",
    overrides: dict[str, Any] | None = None,
    device: str | None = None,
    seed: int = 0,
    geometry: "str | Path | None" = None,
    max_showers: int | None = None,
    valid_fraction: float = DEFAULT_VALID_FRACTION,
    force: bool = False,
) -> TrainResult:
    """Train generator ``model_name`` on ``dataset`` (registered name or shower file) into run directory ``out``.

    Resumes an unfinished run in ``out``; returns without training if it already finished (unless
    ``force``). See the module docstring for the directory layout.
    """
    from calobench.plugins import generators

    registry = generators()
    cls = registry.get(model_name)
    provider = registry.provider(model_name)
    config = resolve_config(cls, preset, overrides)
    if not 0.0 <= valid_fraction < 1.0:
        raise ConfigError(f"the validation fraction must be in [0, 1), got {valid_fraction}")
    if max_showers is not None and max_showers < 1:
        raise ConfigError(f"--max-showers must be >= 1, got {max_showers}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"--out {out} is a file, expected a (new or run) directory")
    check_output_dir(out, "run directory")
    out.mkdir(parents=True, exist_ok=True)
    world = init_process_group(resolve_device(device))
    if world.active:
        device = str(local_device(resolve_device(device), world))
    # rank 0 of a data-parallel run holds the lock and writes; the other ranks only train
    with exclusive(out, f"run directory {out}") if world.is_main else nullcontext():
        return _train_locked(
            cls,
            provider,
            model_name,
            dataset,
            out,
            config,
            preset,
            device,
            seed,
            geometry,
            max_showers,
            valid_fraction,
            force,
            world,
        )


def _train_locked(
    cls: type[Generator],
    provider: Any,
    model_name: str,
    dataset: str,
    out: Path,
    config: dict[str, Any],
    preset: str,
    device: str | None,
    seed: int,
    geometry: "str | Path | None",
    max_showers: int | None,
    valid_fraction: float,
    force: bool,
    world: World,
) -> TrainResult:
    """:func:`train_run` once the run directory is locked (by rank 0 of a data-parallel run)."""
    data = resolve_training_data(dataset, geometry)
    cls.check_geometry(data.geometry)
    planned: dict[str, Any] = {
        "schema_version": RUN_SCHEMA,
        "generator": model_name,
        "provider": {"plugin": provider.plugin, "distribution": provider.distribution, "version": provider.version},
        "preset": preset,
        "config": config,
        "seed": int(seed),
        "dataset": data.record,
        "format": data.format,
        "geometry": geometry_to_dict(data.geometry),
        "max_showers": max_showers,
        "valid_fraction": valid_fraction,
        "trainable": cls.trainable,
    }
    resumed = False
    previous_seconds = 0.0
    started_at = _now()
    finished: dict[str, Any] | None = None
    if not world.is_main:
        pass  # rank 0 decides below; the others read its decision after the barrier
    elif (out / RUN_FILE).exists():
        if force:  # whatever is there, even an unreadable run.json, is discarded unread
            for name in ("work", "model", ".model.partial", ENERGIES_FILE, RUN_FILE):
                target = out / name
                shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
        else:
            existing = read_run(out)
            _check_same_run(existing, planned, out)
            if existing.get("status") == "finished":
                finished = existing
            resumed = True
            previous_seconds = float(existing.get("training_seconds", 0.0))
            started_at = existing.get("started_at", started_at)
    elif any(p.name != ".lock" for p in out.iterdir()):
        raise CheckpointError(
            f"--out {out} exists, is not empty and is not a calobench run directory; choose a new directory"
        )
    barrier(world)
    if not world.is_main and (out / RUN_FILE).exists():
        existing = read_run(out)
        finished = existing if existing.get("status") == "finished" else None
    if finished is not None:
        return TrainResult(out, finished, already_finished=True)

    with open_showers(data.parts, data.geometry) as handle:
        n_read = len(handle) if max_showers is None else min(len(handle), max_showers)
        check_showers_fit(
            n_read,
            data.geometry.n_voxels,
            copies=TRAINING_COPIES,
            what=f"the training data ({data.dataset or data.parts[0]})",
        )
        showers = handle.read(0, max_showers)
    if world.is_main:
        energies = np.asarray(showers.incident_energies, dtype=np.float64)
        write_atomic(out / ENERGIES_FILE, lambda tmp: _save_array(tmp, energies))
    valid: Showers | None
    if valid_fraction > 0 and len(showers) >= 2:
        train, valid = showers.split([1.0 - valid_fraction, valid_fraction], seed=derive_seed(seed, "validation"))
        if len(valid) == 0:
            valid = None
    else:
        train, valid = showers, None

    with plugin_call(model_name, "__init__", provider):
        model = cls(data.geometry, config, preset, dataset=data.dataset, device=device)
    run = dict(
        planned,
        **_versions(),
        status="training",
        device=_device_text(model),
        n_train=len(train),
        n_valid=0 if valid is None else len(valid),
        training_seconds=previous_seconds,
        started_at=started_at,
        finished_at=None,
        **({"data_parallel": {"world_size": world.size}} if world.active else {}),
    )
    if world.is_main:
        write_json_atomic(out / RUN_FILE, run)
    if not world.is_main:
        with plugin_call(model_name, "fit", provider):
            model.fit(train, valid, seed=seed, workdir=out / "work")
        barrier(world)  # until rank 0 has saved the model
        return TrainResult(out, run, resumed=resumed)
    log.info(
        "%s %s on %s (%d training, %d validation showers) on %s -> %s",
        "resuming" if resumed else "training",
        model_name,
        data.dataset or data.parts[0],
        run["n_train"],
        run["n_valid"],
        run["device"],
        out,
    )
    start = time.perf_counter()

    def record_time(*_: Any) -> None:
        """After every epoch's checkpoint: the time so far, so that a killed run keeps it."""
        run["training_seconds"] = previous_seconds + (time.perf_counter() - start)
        write_json_atomic(out / RUN_FILE, run)

    callbacks = getattr(model, "callbacks", None)
    if isinstance(callbacks, list):
        callbacks.append(record_time)
    try:
        with plugin_call(model_name, "fit", provider):
            model.fit(train, valid, seed=seed, workdir=out / "work")
    finally:
        record_time()
    staging = out / ".model.partial"
    if staging.exists():
        shutil.rmtree(staging)
    with plugin_call(model_name, "save", provider):
        model.save(staging)
    if (out / "model").exists():
        shutil.rmtree(out / "model")
    os.replace(staging, out / "model")
    results = getattr(model, "training_results", [])
    run.update(
        status="finished",
        finished_at=_now(),
        n_parameters=int(model.n_parameters()),
        model_info=model.run_info(),
        stages=[
            {
                "name": r.name,
                "epochs_run": len(r.history),
                "best_epoch": r.best_epoch + 1,
                "best_loss": r.best_loss,
                "stopped_early": r.stopped_early,
            }
            for r in results
        ],
    )
    write_json_atomic(out / RUN_FILE, run)
    barrier(world)
    return TrainResult(out, run, resumed=resumed)


def _save_array(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:  # np.save would append .npy to the temporary name
        np.save(handle, array, allow_pickle=False)


# ---------------------------------------------------------------------- sampling
@dataclass
class SampleResult:
    """What :func:`sample_run` wrote."""

    path: Path
    n_showers: int
    seconds: float  # time spent in the generator (not writing)
    generator: str


@contextmanager
def _energy_source(path: str | Path, geometry: Geometry) -> Iterator[Any]:
    """An open shower file whose incident energies are sampled: in the model's geometry if it has it,
    else in whatever geometry the file has (only its incident energies are read)."""
    try:
        handle = open_showers(path, geometry)
    except VoxelCountError as first:  # another geometry: only its incident energies are needed
        try:
            handle = open_showers(path)
        except ShowerFileError:
            raise first from None
    with handle:
        yield handle


def check_provider(run: dict[str, Any], directory: Path, installed: Any, allow_other_version: bool = False) -> None:
    """Refuse a run whose generator came from another distribution (or version) than the installed one."""
    recorded = run.get("provider")
    if not isinstance(recorded, dict):
        return  # runs written before providers were recorded
    then = (recorded.get("distribution"), recorded.get("version"))
    now = (installed.distribution, installed.version)
    if then[0] != now[0] or (then[1] != now[1] and not allow_other_version):
        what = "distribution" if then[0] != now[0] else "version"
        raise CheckpointError(
            f"{directory} was trained with {run.get('generator')!r} from {then[0]} {then[1]}, but the installed "
            f"{run.get('generator')!r} comes from {now[0]} {now[1]} (another {what}); install {then[0]}=={then[1]}"
            + (
                " or pass --allow-other-version to load it anyway"
                if what == "version"
                else f", or disable plugin {installed.plugin!r} with CALOBENCH_DISABLE_PLUGINS"
            )
        )


def load_run_model(
    directory: str | Path, device: str | None = None, allow_other_version: bool = False
) -> tuple[dict[str, Any], Generator]:
    """The run description and the trained generator of a finished run directory.

    The generator's provider (distribution and version) must be the one the run was trained with.
    """
    from calobench.plugins import generators

    directory = Path(directory)
    run = read_run(directory)
    if run.get("status") != "finished":
        raise CheckpointError(
            f"the training in {directory} has not finished (status {run.get('status')!r}); "
            "run the same `calobench train` command again to resume it"
        )
    entry = generators().entry(str(run.get("generator")))
    check_provider(run, directory, entry.provider, allow_other_version)
    with plugin_call(entry.name, "load", entry.provider):
        model = entry.value.load(directory / "model", device=device)
    return run, model


def run_incident_energies(directory: Path) -> np.ndarray:
    """The training file's incident energies (MeV) that ``train`` stored in the run directory."""
    path = directory / ENERGIES_FILE
    try:
        pool = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise CheckpointError(
            f"{path} is missing; give the incident energies with --energies-from FILE, or train the run again "
            "with --force"
        ) from None
    except (OSError, ValueError, EOFError) as exc:
        raise CheckpointError(
            f"{path} is damaged ({type(exc).__name__}: {exc}); give the incident energies with --energies-from "
            "FILE, or train the run again with --force"
        ) from exc
    pool = np.asarray(pool).reshape(-1) if np.ndim(pool) <= 2 else np.asarray([])
    if pool.size == 0 or pool.dtype.kind not in "fiu" or not np.all(np.isfinite(pool)) or np.any(pool <= 0):
        raise CheckpointError(
            f"{path} does not hold positive, finite incident energies; give them with --energies-from FILE"
        )
    return pool.astype(np.float64)


def sample_run(
    checkpoint: str | Path,
    out: str | Path,
    *,
    energies_from: "str | Path | None" = None,
    n_showers: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    device: str | None = None,
    progress: bool | None = None,
    allow_other_version: bool = False,
) -> SampleResult:
    """Sample a trained run into ``out`` in the training data's format, in bounded memory.

    Incident energies come from ``energies_from`` (a shower file, in its order) or are ``n_showers``
    draws (seeded) from the training file's incident energies. The output depends only on
    (model, energies, seed, batch size).
    """
    if (energies_from is None) == (n_showers is None):
        raise ConfigError("give exactly one of --energies-from FILE and --showers N")
    if n_showers is not None and n_showers < 1:
        raise ConfigError(f"--showers must be >= 1, got {n_showers}")
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
    checkpoint, out = Path(checkpoint), check_output_file(out, "output file")
    with exclusive(out, f"output file {out}"):
        remove_stale_partials(out)  # what an interrupted earlier sample left
        return _sample_locked(
            checkpoint, out, energies_from, n_showers, batch_size, seed, device, progress, allow_other_version
        )


def _sample_locked(
    checkpoint: Path,
    out: Path,
    energies_from: "str | Path | None",
    n_showers: int | None,
    batch_size: int | None,
    seed: int,
    device: str | None,
    progress: bool | None,
    allow_other_version: bool,
) -> SampleResult:
    """:func:`sample_run` once the output file is locked."""
    from tqdm.auto import tqdm

    run, model = load_run_model(checkpoint, device, allow_other_version)
    geometry = model.geometry
    fmt: Format = "calogan" if geometry.kind == "cartesian" else run.get("format", "calochallenge")
    batch = int(batch_size or model.config.get("sample_batch_size") or 10000)
    chunk = max(1, min(batch, SAMPLE_CHUNK_BYTES // (4 * geometry.n_voxels)))
    with ExitStack() as stack:
        if energies_from is not None:
            source = stack.enter_context(_energy_source(energies_from, geometry))
            total = len(source)
            chunks: Iterator[np.ndarray] = source.iter_incident_energies(chunk)
        else:
            total = int(n_showers or 0)
            chunks = _drawn_energies(run_incident_energies(checkpoint), total, chunk, seed)
        seconds = 0.0
        stack.enter_context(model.bulk_sampling())
        writer = stack.enter_context(ShowerWriter(out, geometry, format=fmt))
        bar = stack.enter_context(
            tqdm(
                total=total,
                desc=f"sampling {run['generator']}",
                unit="shower",
                unit_scale=True,
                disable=None if progress is None else not progress,
                dynamic_ncols=True,
            )
        )
        done = 0
        with interruptible():  # Ctrl-C stops the loop within a second, even if Python drops it once
            for index, part in enumerate(chunks):
                start = time.perf_counter()
                showers = model.sample_showers(part, seed=derive_seed(seed, "chunk", index), batch_size=batch)
                seconds += time.perf_counter() - start
                writer.append(showers)
                done += len(part)
                bar.update(len(part))
                bar.set_postfix(rate=f"{done / max(seconds, 1e-9):.0f}/s", refresh=False)
    return SampleResult(Path(out), done, seconds, run["generator"])


def _drawn_energies(pool: np.ndarray, n: int, chunk: int, seed: int) -> Iterator[np.ndarray]:
    """``n`` incident energies drawn (seeded, with replacement) from ``pool``, ``chunk`` at a time."""
    rng = np.random.default_rng(derive_seed(seed, "incident-energies"))
    for first in range(0, n, chunk):
        yield rng.choice(pool, size=min(chunk, n - first), replace=True)
