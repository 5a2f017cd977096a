"""Checkpoint files: written atomically, loaded with ``weights_only=True`` and ``map_location``.

A checkpoint holds only tensors, plain containers (dict, list, tuple), numbers, strings, booleans
and ``None`` -- never a pickled Python object -- so that :func:`load_checkpoint` can refuse
everything else (``torch.load(weights_only=True)``). Configurations and other metadata go into
JSON files next to it (:func:`write_json_atomic`). A checkpoint saved on a GPU loads on a CPU-only
machine with ``map_location="cpu"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from calobench import textfiles
from calobench.atomic import write_atomic
from calobench.errors import CheckpointError


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """``torch.save`` ``payload`` to a temporary file beside ``path``, then rename it into place.

    An interruption leaves either the previous checkpoint or the new one, never half a file.
    """
    return write_atomic(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | Path, map_location: "str | torch.device | None" = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    ``map_location`` moves every tensor to that device (``"cpu"`` by default), so a checkpoint saved
    on a GPU loads anywhere. A missing, truncated or unsafe file raises :class:`CheckpointError`.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        raise CheckpointError(
            f"checkpoint {path} cannot be loaded safely (weights_only=True): {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(payload, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(payload).__name__}, expected a dictionary")
    return payload


def read_json(path: str | Path, what: str = "file") -> Any:
    """Read a JSON file; a missing, unreadable or malformed file raises :class:`CheckpointError`."""
    return textfiles.read_json(path, what, CheckpointError)
