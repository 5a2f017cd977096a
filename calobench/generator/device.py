"""Choosing the torch device a generator runs on.

``"auto"`` (the default) means CUDA when a GPU is visible, else the CPU; anything else is a torch
device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``) that is checked before use so that a
forced device that does not exist fails with one clear :class:`~calobench.errors.ConfigError`.
"""

from __future__ import annotations

import torch

from calobench.errors import ConfigError

AUTO = "auto"


def resolve_device(spec: "str | torch.device | None" = None) -> torch.device:
    """The device named by ``spec``: ``None``/``"auto"`` -> ``cuda`` if available, else ``cpu``.

    Raises :class:`ConfigError` for an unparsable name or a device this machine does not have.
    """
    if isinstance(spec, torch.device):
        text = str(spec)
    else:
        text = (spec or AUTO).strip().lower()
    if text == AUTO:
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"unknown device {text!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {text!r} was requested but CUDA is not available on this machine "
                "(torch reports no GPU); use --device cpu or --device auto"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(
                f"device {text!r} was requested but this machine has {count} CUDA device(s) "
                f"(cuda:0 .. cuda:{count - 1})"
            )
    elif device.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ConfigError(f"device {text!r} was requested but MPS is not available on this machine")
    elif device.type != "cpu":
        raise ConfigError(f"unsupported device {text!r}; expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    return device


def device_description(device: torch.device) -> str:
    """Human-readable name of ``device`` for run records, e.g. ``"cuda:0 (NVIDIA H100 80GB HBM3)"``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(device)
