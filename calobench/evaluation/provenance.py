"""Provenance of a report: software versions, git revision, device, input-file checksums."""

from __future__ import annotations

import datetime
import hashlib
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

from calobench import __version__

#: Files up to this size get a full md5; larger ones a fingerprint (md5 of size + first and last blocks).
FULL_MD5_MAX_BYTES = 2 * 2**30
FINGERPRINT_BLOCK = 16 * 2**20


def git_revision() -> str:
    """``git rev-parse HEAD`` of the checkout calobench runs from, or ``"unknown"``."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    revision = result.stdout.strip()
    return revision if result.returncode == 0 and revision else "unknown"


def device_description(device: str) -> str:
    """``cpu`` or the CUDA device name, e.g. ``cuda:0 (NVIDIA H100 80GB HBM3)``."""
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            index = torch.device(device).index or 0
            return f"{device} ({torch.cuda.get_device_name(index)})"
    return device


def software_provenance(device: str) -> dict:
    return {
        "calobench_version": __version__,
        "git_revision": git_revision(),
        "torch_version": _torch_version(),
        "numpy_version": np.__version__,
        "python_version": sys.version.split()[0],
        "platform": platform.platform(),
        "device": device_description(device),
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def file_fingerprint(path: "str | Path") -> dict:
    """``{"path", "size", "md5"}`` for files up to 2 GiB; larger files get ``"fingerprint"``, the md5
    of the size and the first and last 16 MiB (cheap, catches truncation and most replacements)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        return {"path": str(path), "size": None}
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        if size <= FULL_MD5_MAX_BYTES:
            while block := handle.read(1 << 20):
                digest.update(block)
            return {"path": str(path), "size": size, "md5": digest.hexdigest()}
        digest.update(str(size).encode())
        digest.update(handle.read(FINGERPRINT_BLOCK))
        handle.seek(size - FINGERPRINT_BLOCK)
        digest.update(handle.read(FINGERPRINT_BLOCK))
    return {
        "path": str(path),
        "size": size,
        "fingerprint": digest.hexdigest(),
        "fingerprint_kind": "md5 of the size and the first and last 16 MiB",
    }


def _torch_version() -> str:
    """torch's version, without importing it when no metric did."""
    if "torch" in sys.modules:
        return str(sys.modules["torch"].__version__)
    from importlib import metadata

    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return "not installed"
