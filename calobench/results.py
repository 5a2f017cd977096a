"""Versioned result files: one JSON file per (suite, model, seed), written atomically.

A result file records everything needed to rebuild a leaderboard row without recomputing anything:
the status (``finished``, ``failed`` or ``unsupported``), the error of a failed model, the metric
report, sampling and timing figures, training time, parameter counts and full provenance
(calobench and plugin versions, git revision, torch and CUDA versions, device name, preset, seed,
data-set checksums). Readers refuse files of a newer schema with a clear message.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeGuard

from calobench import __version__
from calobench.atomic import write_json_atomic
from calobench.errors import CalobenchError
from calobench.textfiles import read_json

RESULT_SCHEMA_VERSION = 1
STATUSES = ("finished", "failed", "unsupported")


class ResultFileError(CalobenchError):
    """A result file is unreadable, malformed or of an unsupported schema version."""


def git_revision(directory: str | Path | None = None) -> str:
    """The git commit of ``directory`` (default: this package's source tree), or ``"unknown"``;
    ``-dirty`` appended when tracked files differ from it (leaderboard outputs do not count)."""
    cwd = Path(directory) if directory else Path(__file__).resolve().parent
    try:
        output = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if output.returncode != 0:
        return "unknown"
    revision = output.stdout.strip()
    dirty = subprocess.run(
        [
            "git",
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ":(top)",
            *(f":(top,exclude){pattern}" for pattern in RUN_OUTPUTS),
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout.strip()
    return revision + ("-dirty" if dirty else "")


#: What a leaderboard run itself rewrites in a checkout: not a change of the code that made it.
RUN_OUTPUTS = (
    "leaderboards/*/results/*",
    "leaderboards/*/reports/*",
    "leaderboards/*/README.md",
    "leaderboards/*/index.html",
)


def cpu_name() -> str:
    """The processor's model name ("AMD EPYC 7763 64-Core Processor"), else its architecture."""
    cpuinfo = Path("/proc/cpuinfo")
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if platform.system() == "Darwin":
        try:
            output = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5
            )
            if output.returncode == 0 and output.stdout.strip():
                return output.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine()


def environment_provenance(device: str | None = None) -> dict[str, Any]:
    """calobench, Python, torch and CUDA versions, the device and its name, the host's platform."""
    info: dict[str, Any] = {
        "calobench_version": __version__,
        "git_revision": git_revision(),
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "processor": cpu_name(),
        "cpu_count": os.cpu_count(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        import torch

        info["torch_version"] = torch.__version__
        info["cuda_version"] = torch.version.cuda
        info["torch_threads"] = torch.get_num_threads()
        if device is not None:
            info["device"] = str(device)
            if str(device).startswith("cuda") and torch.cuda.is_available():
                info["device_name"] = torch.cuda.get_device_name(torch.device(device))
            else:
                info["device_name"] = f"{info['processor']} ({os.cpu_count()} cores)"
    except ImportError:  # pragma: no cover - torch is a dependency
        info["torch_version"] = None
    return info


def result_filename(model: str, seed: int) -> str:
    """``<model>-seed<seed>.json`` for a model name that is safe as a file name."""
    from calobench.names import check_name

    return f"{check_name(model, 'model')}-seed{int(seed)}.json"


def write_result(directory: str | Path, result: dict[str, Any]) -> Path:
    """Write one result (``model``, ``seed`` and ``status`` required) as ``<model>-seed<seed>.json``."""
    for key in ("suite", "model", "seed", "status"):
        if key not in result:
            raise ResultFileError(f"a result needs the key {key!r}")
    if result["status"] not in STATUSES:
        raise ResultFileError(f"result status must be one of {STATUSES}, got {result['status']!r}")
    payload = {"schema_version": RESULT_SCHEMA_VERSION, **result}
    return write_json_atomic(
        Path(directory) / result_filename(result["model"], int(result["seed"])), payload, allow_nan=True
    )


def read_result(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    data = read_json(path, "result file", ResultFileError)
    version = data.get("schema_version") if isinstance(data, dict) else None
    if not isinstance(version, int):
        raise ResultFileError(f"result file {path} has no schema_version; it was not written by calobench")
    if version > RESULT_SCHEMA_VERSION:
        raise ResultFileError(
            f"result file {path} has schema_version {version}, newer than this calobench "
            f"({RESULT_SCHEMA_VERSION}); upgrade calobench to read it"
        )
    problem = result_problem(data)
    if problem is not None:
        raise ResultFileError(f"result file {path} is malformed: {problem}; run the model again to rewrite it")
    return data


def _is_number(value: Any, allow_none: bool = True) -> bool:
    if value is None:
        return allow_none
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _where(path: str, value: Any, expected: str) -> str:
    shown = repr(value) if len(repr(value)) <= 40 else f"a {type(value).__name__}"
    return f"{path} is {shown}, expected {expected}"


def _check_numbers(entry: Any, path: str, keys: tuple[str, ...]) -> str | None:
    """``entry`` is absent, or an object whose ``keys`` are numbers (NaN allowed) or null."""
    if entry is None:
        return None
    if not isinstance(entry, dict):
        return _where(path, entry, "an object")
    for key in keys:
        if not _is_number(entry.get(key)):
            return _where(f"{path}.{key}", entry.get(key), "a number")
    return None


def report_problem(report: dict[str, Any]) -> str | None:
    """What is wrong with the headline numbers a leaderboard row reads from a report (:mod:`calobench.leaderboard.table`), or None."""
    classifier = report.get("classifier")
    if classifier is not None and not isinstance(classifier, dict):
        return _where("report.classifier", classifier, "an object")
    for mode, entry in (classifier or {}).items():
        if entry is None:
            continue
        if not isinstance(entry, dict):
            return _where(f"report.classifier.{mode}", entry, "an object")
        problem = _check_numbers(entry.get("auc"), f"report.classifier.{mode}.auc", ("mean", "std"))
        if problem is not None:
            return problem
    separation = report.get("separation_power")
    if separation is not None and not isinstance(separation, dict):
        return _where("report.separation_power", separation, "an object")
    for key, value in (separation or {}).items():
        values = value.values() if isinstance(value, dict) else [value]
        if not all(_is_number(v) for v in values):
            return _where(f"report.separation_power.{key}", value, "a number or an object of numbers")
    for key in ("fpd", "kpd"):
        problem = _check_numbers(report.get(key), f"report.{key}", ("value", "error"))
        if problem is not None:
            return problem
    return _check_numbers(report.get("prdc"), "report.prdc", ("precision", "recall", "density", "coverage"))


def _finite_list(value: Any) -> TypeGuard[list[float]]:
    return isinstance(value, list) and all(_is_number(v, allow_none=False) and math.isfinite(v) for v in value)


def _check_histograms(histograms: Any) -> str | None:
    """Binned feature distributions (:mod:`calobench.leaderboard.histograms`): finite increasing edges
    (positive where drawn on a log axis) and finite, non-negative counts, one per bin."""
    if histograms is None:
        return None
    if not isinstance(histograms, dict):
        return _where("histograms", histograms, "an object")
    for feature, entry in histograms.items():
        where = f"histograms.{feature!r}"
        if not isinstance(entry, dict):
            return _where(where, entry, "an object")
        edges = entry.get("edges")
        if not _finite_list(edges) or len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
            return f"{where}.edges is not a list of at least two finite, increasing numbers"
        if not isinstance(entry.get("log_x", False), bool):
            return _where(f"{where}.log_x", entry.get("log_x"), "true or false")
        if entry.get("log_x") and edges[0] <= 0:
            return f"{where}.edges must be positive on a logarithmic axis"
        for key in ("reference", "generated"):
            counts = entry.get(key)
            if not _finite_list(counts) or len(counts) != len(edges) - 1 or any(c < 0 for c in counts):
                return f"{where}.{key} is not a list of {len(edges) - 1} finite, non-negative counts"
    return None


def timing_problem(timing: Any) -> str | None:
    """What is wrong with a timing record (:func:`calobench.timing.time_generator`), or None."""
    if timing is None:
        return None
    if not isinstance(timing, dict) or not isinstance(timing.get("batch_sizes") or {}, dict):
        return "timing.batch_sizes is not an object"
    if not isinstance(timing.get("device", ""), str):
        return _where("timing.device", timing.get("device"), "a string")
    for size, entry in (timing.get("batch_sizes") or {}).items():
        if not (size.isascii() and size.isdigit() and len(size) <= 12 and int(size) >= 1):
            return f"timing batch size {size[:20]!r} is not a positive integer"
        if not isinstance(entry, dict) or not _is_number(entry.get("mean_ms"), allow_none=False):
            return f"timing.batch_sizes.{size}.mean_ms is not a number"
        if not _is_number(entry.get("std_ms")):
            return f"timing.batch_sizes.{size}.std_ms is not a number"
    return None


#: Top-level fields a leaderboard page shows as text: a string or absent.
TEXT_FIELDS = ("suite", "preset", "metrics_preset", "published_name")


def result_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with the fields of a result that the leaderboard reads, or None.

    Numbers may be NaN (a metric that could not be computed; shown as "n/a"), but not strings
    or other types; a finished result must hold its report.
    """
    from calobench.names import name_problem

    model, seed, status = data.get("model"), data.get("seed"), data.get("status")
    problem = name_problem(model)
    if problem is not None:
        return f"model {model!r}: {problem}"
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        return f"seed {seed!r} is not an integer in [0, 2^63)"
    if status not in STATUSES:
        return f"status {status!r} is not one of {', '.join(STATUSES)}"
    for key in TEXT_FIELDS:
        if not isinstance(data.get(key, ""), (str, type(None))):
            return _where(key, data.get(key), "a string")
    for key in ("dataset", "provenance", "provider"):
        if not isinstance(data.get(key) or {}, dict):
            return _where(key, data.get(key), "an object")
    if not isinstance((data.get("dataset") or {}).get("name", ""), (str, type(None))):
        return _where("dataset.name", data["dataset"]["name"], "a string")
    error = data.get("error")
    if error is not None and not isinstance(error, (str, dict)):
        return _where("error", error, "an object")
    if isinstance(error, dict) and not all(isinstance(v, (str, type(None))) for v in error.values()):
        return "error holds a value that is not a string"
    if status != "finished":
        return None
    if not isinstance(data.get("report"), dict):
        return "the status is 'finished' but it holds no evaluation report"
    training = data.get("training")
    if training is not None:
        if not isinstance(training, dict):
            return f"training is {type(training).__name__}, expected an object"
        for key in ("seconds", "n_parameters"):
            if not _is_number(training.get(key)):
                return f"training.{key} is {training.get(key)!r}, expected a number"
    for check in (
        report_problem(data["report"]),
        timing_problem(data.get("timing")),
        _check_histograms(data.get("histograms")),
    ):
        if check is not None:
            return check
    return None


def read_results(directory: str | Path) -> list[dict[str, Any]]:
    """All result files of a suite's results directory, sorted by model and seed."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    results = [read_result(p) for p in sorted(directory.glob("*.json"))]
    return sorted(results, key=lambda r: (r["model"], int(r["seed"])))
