"""Versioned result files: one JSON file per (suite, model, seed), written atomically.

A result file records everything needed to rebuild a leaderboard row without recomputing anything:
the status (``finished``, ``failed`` or ``unsupported``), the error of a failed model, the metric
report, sampling and timing figures, training time, parameter counts and full provenance
(calobench and plugin versions, git revision, torch and CUDA versions, device name, preset, seed,
data-set checksums). Readers refuse files of a newer schema with a clear message.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from calobench import __version__
from calobench.atomic import write_json_atomic
from calobench.errors import CalobenchError

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
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ResultFileError(f"result file {path} cannot be read: {exc}") from exc
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
    if not isinstance(seed, int) or isinstance(seed, bool):
        return f"seed {seed!r} is not an integer"
    if status not in STATUSES:
        return f"status {status!r} is not one of {', '.join(STATUSES)}"
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
    timing = data.get("timing") or {}
    if not isinstance(timing, dict) or not isinstance(timing.get("batch_sizes") or {}, dict):
        return "timing.batch_sizes is not an object"
    for size, entry in (timing.get("batch_sizes") or {}).items():
        if not str(size).isdigit():
            return f"timing batch size {size!r} is not an integer"
        if not isinstance(entry, dict) or not _is_number(entry.get("mean_ms"), allow_none=False):
            return f"timing.batch_sizes.{size}.mean_ms is not a number"
        if not _is_number(entry.get("std_ms")):
            return f"timing.batch_sizes.{size}.std_ms is not a number"
    return None


def read_results(directory: str | Path) -> list[dict[str, Any]]:
    """All result files of a suite's results directory, sorted by model and seed."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    results = [read_result(p) for p in sorted(directory.glob("*.json"))]
    return sorted(results, key=lambda r: (r["model"], int(r["seed"])))
