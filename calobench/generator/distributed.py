"""Data-parallel training over several processes (``calobench train --nproc N`` or ``torchrun``).

Every process (rank) holds the whole model, sees its own slice of every global batch and averages
its gradients with the others after each backward pass, so that each optimizer step is the step a
single process would take on the whole batch: the algorithm of PyTorch's DistributedDataParallel
(Li et al., arXiv 2006.15704). calobench's stages call arbitrary module methods (``log_prob``,
``sample``, several networks per loss), which DDP's forward wrapper does not see, so the averaging is
done by a gradient hook on every parameter (:func:`average_gradients`) instead of the wrapper; the
result is the same.

Processes are one per GPU (backend ``nccl``) or one per group of CPU cores (``gloo``); the usual
``torch.distributed`` environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``) describes the group, as ``torchrun`` sets it. :func:`spawn` starts N local
processes with that environment. Rank 0 writes checkpoints, the run description and the model,
and logs; every rank is seeded from the run's seed and its rank.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from calobench.errors import ConfigError

#: The environment variables of a torch.distributed process group (as torchrun sets them).
ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
#: Seconds every rank waits for the others to join the process group (overridden by this variable).
JOIN_TIMEOUT_ENV = "CALOBENCH_DIST_TIMEOUT"
DEFAULT_JOIN_TIMEOUT = 300.0

log = logging.getLogger("calobench.distributed")


@dataclass(frozen=True)
class World:
    """Where this process stands in its process group (a single process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        """True when there is more than one process."""
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and logs."""
        return self.rank == 0


def current_world() -> World:
    """The initialized process group of this process, else a single-process world."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    return World()


def requested_world() -> World:
    """The world described by the environment (``WORLD_SIZE`` > 1 under torchrun or :func:`spawn`)."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise ConfigError(f"malformed torch.distributed environment: {exc}") from exc
    if size < 1 or not 0 <= rank < size or local < 0:
        raise ConfigError(
            f"malformed torch.distributed environment: RANK={rank}, LOCAL_RANK={local}, WORLD_SIZE={size} "
            "(needs 0 <= RANK < WORLD_SIZE); unset them, or start with torchrun"
        )
    return World(rank, size, local)


def join_timeout() -> float:
    """Seconds to wait for the ranks of a process group (``$CALOBENCH_DIST_TIMEOUT``, default 300)."""
    text = os.environ.get(JOIN_TIMEOUT_ENV)
    if text is None:
        return DEFAULT_JOIN_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{JOIN_TIMEOUT_ENV}={text!r} must be a positive number of seconds")
    return value


def backend_for(device: torch.device) -> str:
    """``nccl`` for CUDA devices, ``gloo`` otherwise."""
    return "nccl" if device.type == "cuda" else "gloo"


def local_device(device: torch.device, world: World) -> torch.device:
    """One GPU per process: ``cuda:<local rank>`` when training on CUDA; the CPU stays the CPU."""
    if device.type == "cuda" and world.active:
        return torch.device("cuda", world.local_rank % max(1, torch.cuda.device_count()))
    return device


def init_process_group(device: torch.device) -> World:
    """Join the process group the environment describes (once, also for a world of one under torchrun);
    a process started without that environment is a single process and does nothing.

    CPU processes split the cores between them (``torch.set_num_threads``), one group per rank.
    """
    world = requested_world()
    if "WORLD_SIZE" not in os.environ:  # not started by torchrun or spawn: a plain single process
        return World()
    if not dist.is_available():
        raise ConfigError("this torch build has no torch.distributed; train with --nproc 1")
    if not dist.is_initialized():
        missing = [key for key in ("MASTER_ADDR", "MASTER_PORT") if key not in os.environ]
        if missing:
            raise ConfigError(f"WORLD_SIZE={world.size} but {', '.join(missing)} are not set; start with torchrun")
        backend = backend_for(device)
        if backend == "nccl":
            torch.cuda.set_device(local_device(device, world))
        address = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
        timeout = join_timeout()
        if world.active:  # a stray WORLD_SIZE would otherwise wait without a word
            log.info(
                "joining a process group of %d ranks at %s as rank %d (WORLD_SIZE, RANK, MASTER_ADDR from the "
                "environment); waiting up to %.0f s for the others (%s)",
                world.size,
                address,
                world.rank,
                timeout,
                JOIN_TIMEOUT_ENV,
            )
        try:
            dist.init_process_group(
                backend=backend, rank=world.rank, world_size=world.size, timeout=timedelta(seconds=timeout)
            )
        except (RuntimeError, ValueError, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(
                f"the process group of WORLD_SIZE={world.size} ranks at {address} did not form within {timeout:.0f} s "
                f"({first}); if WORLD_SIZE is a leftover in the environment, unset it, else start every rank "
                "(torchrun, or calobench train --nproc N)"
            ) from exc
    if device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world.size))
    return current_world()


def average_gradients(modules: Iterable[nn.Module], world: World) -> list[Any]:
    """Average every parameter's gradient over the ranks as soon as backward has produced it.

    Returns the hook handles (``handle.remove()`` detaches them). Nothing is registered for a
    single process. Every rank must run the same backward passes (the same code on its own data).
    """
    if not world.active:
        return []

    def hook(parameter: torch.Tensor) -> None:
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
            parameter.grad.div_(world.size)

    handles = []
    seen: set[int] = set()
    for module in modules:
        for parameter in module.parameters():
            if parameter.requires_grad and id(parameter) not in seen:
                seen.add(id(parameter))
                handles.append(parameter.register_post_accumulate_grad_hook(hook))
    return handles


def shard(indices: torch.Tensor, world: World) -> torch.Tensor:
    """This rank's share of a global batch: every ``world.size``-th index from ``world.rank``."""
    return indices[world.rank :: world.size] if world.active else indices


def sum_over_ranks(values: list[float], world: World) -> list[float]:
    """Element-wise sum of ``values`` over the ranks (the values themselves for one process)."""
    if not world.active:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return [float(v) for v in tensor.cpu()]


def barrier(world: World) -> None:
    """Wait for every rank (no-op for one process)."""
    if world.active:
        dist.barrier()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_rank(rank: int, size: int, port: int, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(size), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    try:
        function(*args)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def spawn(nproc: int, function: Callable[..., Any], *args: Any) -> None:
    """Run ``function(*args)`` in ``nproc`` local processes forming one process group.

    An exception in any rank stops all of them and is raised here.
    """
    if nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {nproc}")
    import torch.multiprocessing as mp

    mp.spawn(_run_rank, args=(nproc, _free_port(), function, args), nprocs=nproc, join=True)
