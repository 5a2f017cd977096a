"""Seeds and random-number-generator state.

Every random step in calobench takes a seed; the same seed on the CPU gives the same numbers.
:func:`seed_everything` seeds python, numpy and torch (all devices); :func:`derive_seed` makes an
independent, reproducible seed for a named sub-task (a training stage, a sampling chunk);
:func:`capture_rng_state` / :func:`restore_rng_state` move the global generator states in and out of
a checkpoint using only tensors, numbers and plain containers (loadable with ``weights_only=True``).
"""

from __future__ import annotations

import random
import zlib
from typing import Any

import numpy as np
import torch

#: Seeds are reduced to this range (what numpy and torch both accept).
SEED_MODULUS = 2**63 - 1


def derive_seed(seed: int, *keys: "int | str") -> int:
    """A seed for a sub-task named by ``keys``, reproducible and independent of the parent stream.

    Built with numpy's SeedSequence from ``seed`` and the keys (strings hashed with CRC-32).
    """
    entropy = [int(seed) % 2**64] + [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) % 2**32 for k in keys]
    return int(np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint64)[0] % SEED_MODULUS)


def fresh_seed() -> int:
    """A seed from the operating system's entropy, for calls that were given ``seed=None``."""
    return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] % SEED_MODULUS)


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds all CUDA devices


def torch_generator(seed: int, device: "torch.device | str" = "cpu") -> torch.Generator:
    """A dedicated ``torch.Generator`` on ``device`` seeded with ``seed``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed) % SEED_MODULUS)
    return generator


def capture_rng_state() -> dict[str, Any]:
    """The global python, numpy, torch-CPU and CUDA generator states as checkpoint-safe values."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put back the states saved by :func:`capture_rng_state` (CUDA states only where CUDA is in use)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached"],
        )
    )
    torch.set_rng_state(state["torch"].cpu())
    cuda_states = state.get("cuda")
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])
