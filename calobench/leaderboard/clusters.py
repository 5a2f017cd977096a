"""The Dask cluster of a distributed sweep: a local one, a running scheduler, or Slurm/HTCondor jobs.

``--cluster local[:N]`` starts N worker processes on this machine (one task at a time each);
``--scheduler ADDRESS`` connects to a running scheduler; ``--cluster slurm|htcondor`` submits
dask-jobqueue jobs, each running worker processes that connect back to a scheduler in this
process. Options not given on the command line come from dask's configuration
(``~/.config/dask/jobqueue.yaml``, ``DASK_JOBQUEUE__SLURM__QUEUE=...``), as dask-jobqueue reads it.
Dask and dask-jobqueue are the optional extra ``calobench[distributed]``.
"""

from __future__ import annotations

import logging
import math
import os
import shlex
import shutil
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from calobench.errors import CalobenchError

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger("calobench.leaderboard")

INSTALL_HINT = "pip install 'calobench[distributed]'"
JOBQUEUE_KINDS = ("slurm", "htcondor")
#: Options of the batch-system jobs (a user error to give them with another kind of cluster).
JOB_OPTIONS = ("queue", "account", "walltime", "cores", "memory", "disk", "processes", "jobs", "gpus", "job_extra")
SLURM_ONLY = ("queue", "account", "walltime")
#: Times a task is started again after it raised or its worker died.
DEFAULT_RETRIES = 2
#: Seconds to wait for the first worker of a scheduler or of submitted jobs (--worker-timeout).
DEFAULT_WORKER_TIMEOUT = 600.0
#: Seconds to wait for a scheduler to answer.
CONNECT_TIMEOUT = 10.0
#: The command that submits the jobs of each batch system.
SUBMIT_COMMANDS = {"slurm": "sbatch", "htcondor": "condor_submit"}
#: Dask's nannies start their workers with ``MALLOC_TRIM_THRESHOLD_=65536``. Setting it at all turns
#: off glibc's dynamic mmap threshold, so every tensor buffer above 128 KiB is a fresh mmap/munmap
#: pair and torch training runs about 3x slower (a CaloFlow Flow-II step on one thread: 2,372
#: showers/s in a plain process, 756 with the variable, 653 in a Dask worker, 2,314 in a worker
#: without it). calobench's workers start without it.
NANNY_ENVIRON_UNSET = "MALLOC_TRIM_THRESHOLD_"


class ClusterError(CalobenchError):
    """The Dask cluster options are invalid, or the distributed extra is not installed."""


@dataclass
class ClusterOptions:
    """How to get Dask workers for a sweep (the ``--cluster`` / ``--scheduler`` options)."""

    kind: str | None = None  # "local", "slurm", "htcondor" or None (serial, or a running scheduler)
    workers: int | None = None  # local:N
    scheduler: str | None = None
    queue: str | None = None
    account: str | None = None
    walltime: str | None = None
    cores: int | None = None
    memory: str | None = None
    processes: int | None = None
    jobs: int | None = None
    gpus: int | None = None
    disk: str | None = None  # HTCondor
    job_extra: list[str] = field(default_factory=list)
    retries: int | None = None  # default DEFAULT_RETRIES
    threads_per_task: int | None = None
    worker_timeout: float | None = None  # default DEFAULT_WORKER_TIMEOUT

    @property
    def distributed(self) -> bool:
        return self.kind is not None or self.scheduler is not None

    @property
    def task_retries(self) -> int:
        return DEFAULT_RETRIES if self.retries is None else self.retries

    @property
    def worker_wait(self) -> float:
        return DEFAULT_WORKER_TIMEOUT if self.worker_timeout is None else self.worker_timeout


def parse_cluster(text: str) -> tuple[str, int | None]:
    """``local``, ``local:N``, ``slurm`` or ``htcondor`` -> (kind, N)."""
    kind, _, count = text.strip().lower().partition(":")
    if kind == "local":
        if not count:
            return kind, None
        if count.isascii() and count.isdigit() and int(count) >= 1:  # not "²", which isdigit() accepts
            return kind, int(count)
        raise ClusterError(f"--cluster {text}: the number of local workers must be an integer >= 1")
    if kind in JOBQUEUE_KINDS and not count:
        return kind, None
    raise ClusterError(f"--cluster {text}: expected local, local:N, slurm or htcondor")


def check_options(options: ClusterOptions) -> None:
    """Refuse contradictory or misplaced options with one line."""
    if options.kind is not None and options.scheduler is not None:
        raise ClusterError("--cluster and --scheduler contradict each other; choose one")
    given = [name for name in JOB_OPTIONS if getattr(options, name) not in (None, [])]
    if given and options.kind not in JOBQUEUE_KINDS:
        names = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ClusterError(f"{names}: only for --cluster slurm or --cluster htcondor")
    if options.kind == "slurm" and options.disk is not None:
        raise ClusterError("--disk is an HTCondor option; Slurm jobs get their disk from the site")
    if options.kind == "htcondor":
        slurm = [name for name in SLURM_ONLY if getattr(options, name) is not None]
        if slurm:
            raise ClusterError(
                f"--{slurm[0]} is a Slurm option; give HTCondor submit commands as --job-extra KEY=VALUE"
            )
    if not options.distributed and (
        options.retries is not None or options.threads_per_task is not None or options.worker_timeout is not None
    ):
        raise ClusterError("--retries, --threads-per-task and --worker-timeout: only for --cluster or --scheduler")
    for name in ("cores", "processes", "jobs", "gpus", "threads_per_task"):
        value = getattr(options, name)
        if value is not None and value < 1:
            raise ClusterError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if options.retries is not None and options.retries < 0:
        raise ClusterError(f"--retries must be >= 0, got {options.retries}")
    if options.worker_timeout is not None and not (
        math.isfinite(options.worker_timeout) and options.worker_timeout > 0
    ):
        raise ClusterError(f"--worker-timeout must be a positive number of seconds, got {options.worker_timeout}")
    if options.scheduler is not None:
        scheduler_address(options.scheduler)


def scheduler_address(text: str) -> tuple[str, str, int | None]:
    """``(protocol, host, port)`` of a Dask scheduler address (``tcp://host:8786``, ``host:8786``), or a
    :class:`ClusterError` saying what is wrong with it."""
    require_distributed()
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    try:
        protocol, location = parse_address(text.strip())
        if protocol not in ("tcp", "tls"):
            return protocol, location, None
        host, port = parse_host_port(location)
    except (ValueError, TypeError) as exc:
        raise ClusterError(f"--scheduler {text!r} is not a scheduler address like tcp://host:8786 ({exc})") from None
    if not host or not 0 < int(port) < 65536:
        raise ClusterError(f"--scheduler {text!r} is not a scheduler address like tcp://host:8786")
    return protocol, host, int(port)


def _reachable(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail fast, with one line, when nothing listens at a TCP scheduler address."""
    _, host, port = scheduler_address(address)
    if port is None:
        return
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = "connection refused" if isinstance(exc, ConnectionRefusedError) else (exc.strerror or str(exc))
        raise ClusterError(
            f"no Dask scheduler answers at {address} ({reason}); start one with `dask scheduler`, or check the address"
        ) from None


def _require_submit_command(kind: str) -> None:
    """The batch system's submit command must be here (a login node of the cluster)."""
    command = SUBMIT_COMMANDS[kind]
    if shutil.which(command) is None:
        raise ClusterError(
            f"--cluster {kind} submits jobs with {command}, which is not on PATH here; run calobench on a "
            f"{kind} login node, or use --cluster local or --scheduler ADDRESS"
        )


def wait_for_workers(client: Client, description: str, timeout: float) -> None:
    """Wait, visibly and at most ``timeout`` seconds, until a worker is connected to ``client``'s scheduler."""
    if client.scheduler_info().get("workers"):
        return
    log.info("waiting up to %.0f s for a worker of %s (--worker-timeout)", timeout, description)
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (TimeoutError, OSError) as exc:
        raise ClusterError(
            f"no worker joined {description} within {timeout:.0f} s; start workers (`dask worker ADDRESS`) "
            "or allow more time with --worker-timeout"
        ) from exc


def require_distributed() -> None:
    """Import dask.distributed, or fail with one line saying how to install it."""
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise ClusterError(f"distributed sweeps need Dask ({exc}); install it with: {INSTALL_HINT}") from None


def _require_jobqueue() -> Any:
    # importing dask_jobqueue (its runner module) replaces the SIGINT handler with sys.exit(): Ctrl-C
    # would then be a SystemExit, which calobench reports as a failed plugin call; keep Python's own
    handler = signal.getsignal(signal.SIGINT)
    try:
        import dask_jobqueue
    except ImportError as exc:
        raise ClusterError(
            f"--cluster slurm|htcondor needs dask-jobqueue ({exc}); install it with: {INSTALL_HINT}"
        ) from None
    finally:
        if handler is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, handler)
    return dask_jobqueue


def gpu_count() -> int:
    """CUDA devices this process sees (0 without CUDA)."""
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:  # pragma: no cover - torch is a dependency
        return 0


def pinned_gpu(worker_name: Any, visible: str | None, n_gpus: int) -> str | None:
    """The ``CUDA_VISIBLE_DEVICES`` of a worker: its index (the trailing ``-<i>`` of a dask-jobqueue
    worker name, a LocalCluster's integer name) modulo the GPUs it sees (``visible``, else 0..n-1)."""
    devices = [d.strip() for d in visible.split(",") if d.strip()] if visible else [str(i) for i in range(n_gpus)]
    tail = str(worker_name).rsplit("-", 1)[-1]
    if not devices or not tail.isdigit():
        return None
    return devices[int(tail) % len(devices)]


@dataclass
class Sweep:
    """A connected Dask client and how its tasks should run."""

    client: Client
    gpu_tasks: bool
    threads_per_task: int | None
    description: str


def wants_gpu(options: ClusterOptions, device: str) -> bool:
    """Whether each task asks for a GPU resource: a ``cuda`` device, or ``auto`` where the cluster has
    GPUs (a local machine with CUDA, jobs with ``--gpus``)."""
    if device.startswith("cuda"):
        return True
    if device != "auto":
        return False
    if options.kind == "local":
        return gpu_count() > 0
    if options.kind in JOBQUEUE_KINDS:
        return bool(options.gpus) or _config_declares_gpu(options.kind)
    return False


def workers_declare_gpu(client: Client) -> bool:
    """Whether a worker connected to ``client``'s scheduler declares a ``GPU`` resource."""
    workers = client.scheduler_info().get("workers", {})
    return any(worker.get("resources", {}).get("GPU") for worker in workers.values())


def _config_declares_gpu(kind: str) -> bool:
    import dask.config

    _require_jobqueue()  # its import loads the jobqueue defaults into dask's configuration
    extra = dask.config.get(f"jobqueue.{kind}.worker-extra-args", default=None) or []
    return any("GPU=" in str(arg) for arg in extra)


def job_cluster_arguments(options: ClusterOptions, gpu_tasks: bool) -> dict[str, Any]:
    """The keyword arguments of SLURMCluster / HTCondorCluster: the options given here, extending
    (for lists and submit commands) what dask's ``jobqueue.<kind>`` configuration holds."""
    import dask.config

    _require_jobqueue()
    kind = options.kind
    assert kind in JOBQUEUE_KINDS
    config = dask.config.get(f"jobqueue.{kind}", default={}) or {}
    kwargs: dict[str, Any] = {
        name: getattr(options, name)
        for name in ("queue", "account", "walltime", "cores", "memory", "processes")
        if getattr(options, name) is not None
    }
    if options.gpus and options.processes is None:
        kwargs["processes"] = options.gpus  # one worker process per GPU
    worker_args = list(config.get("worker-extra-args") or [])
    if (gpu_tasks or options.gpus) and not any("GPU=" in str(arg) for arg in worker_args):
        worker_args += ["--resources", "GPU=1"]
    if worker_args:
        kwargs["worker_extra_args"] = worker_args
    if kind == "slurm":
        directives = list(config.get("job-extra-directives") or [])
        directives += options.job_extra
        if options.gpus:
            directives.append(f"--gres=gpu:{options.gpus}")
        if directives:
            kwargs["job_extra_directives"] = directives
    else:
        commands = dict(config.get("job-extra-directives") or {})
        for item in options.job_extra:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ClusterError(f"--job-extra {item!r}: HTCondor submit commands are given as KEY=VALUE")
            commands[key.strip()] = value.strip()
        if options.gpus:
            commands["request_gpus"] = str(options.gpus)
        if commands:
            kwargs["job_extra_directives"] = commands
        if options.disk is not None:
            kwargs["disk"] = options.disk
    prologue = list(config.get("job-script-prologue") or [])
    from calobench.paths import DATA_ENV, data_dir

    # the workers read the driver's data directory (quoted: a space or $(...) in it stays a path)
    prologue.append(f"export {DATA_ENV}={shlex.quote(str(data_dir()))}")
    # dask reads this variable as configuration: the nanny on the node spawns its workers without
    # the malloc setting (see NANNY_ENVIRON_UNSET)
    prologue.append(f"export DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON='{{\"{NANNY_ENVIRON_UNSET}\": None}}'")
    kwargs["job_script_prologue"] = prologue
    return kwargs


def job_cluster(options: ClusterOptions, gpu_tasks: bool, **extra: Any) -> Any:
    """A dask-jobqueue cluster (no job submitted yet: :meth:`scale` submits them)."""
    jobqueue = _require_jobqueue()
    cls = jobqueue.SLURMCluster if options.kind == "slurm" else jobqueue.HTCondorCluster
    kwargs = {**job_cluster_arguments(options, gpu_tasks), **extra}
    try:
        return cls(**kwargs)
    except ValueError as exc:  # dask-jobqueue's own checks, e.g. cores/memory missing
        raise ClusterError(f"--cluster {options.kind}: {exc}") from exc


def job_script(options: ClusterOptions, device: str) -> str:
    """The batch script each dask-jobqueue job would run (``--print-job-script``)."""
    require_distributed()
    if options.kind not in JOBQUEUE_KINDS:
        raise ClusterError("--print-job-script needs --cluster slurm or --cluster htcondor")
    _quiet_dask_logs()
    with job_cluster(options, wants_gpu(options, device), scheduler_options={"dashboard_address": ":0"}) as cluster:
        return str(cluster.job_script())


def _quiet_dask_logs() -> None:
    """Dask's own INFO records (scheduler, nannies, connections) only with calobench's DEBUG."""
    if logging.getLogger("calobench").getEffectiveLevel() > logging.DEBUG:
        logger = logging.getLogger("distributed")
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))


def pin_gpu_plugin() -> Any:
    """A :class:`~calobench.leaderboard.dask_plugins.PinGPU` worker plugin."""
    from calobench.leaderboard.dask_plugins import PinGPU

    return PinGPU()


@contextmanager
def open_sweep(options: ClusterOptions, device: str) -> Iterator[Sweep]:
    """Start (or connect to) the cluster, yield a client; close what was started on exit."""
    require_distributed()
    import dask.config
    from distributed import Client, LocalCluster

    gpu_tasks = wants_gpu(options, device)
    threads = options.threads_per_task
    _quiet_dask_logs()
    with ExitStack() as stack:
        # a worker that dies during a task (killed, out of memory, end of a job's walltime) makes the
        # task "suspicious"; the scheduler reschedules it up to this many times
        stack.enter_context(dask.config.set({"distributed.scheduler.allowed-failures": options.task_retries}))
        # local nannies run in this process and read this configuration (see NANNY_ENVIRON_UNSET)
        stack.enter_context(dask.config.set({f"distributed.nanny.pre-spawn-environ.{NANNY_ENVIRON_UNSET}": None}))
        if options.scheduler is not None:
            _reachable(options.scheduler)
            try:
                client = stack.enter_context(Client(options.scheduler, timeout=CONNECT_TIMEOUT))
            except (OSError, TimeoutError) as exc:
                raise ClusterError(f"cannot connect to the Dask scheduler at {options.scheduler}: {exc}") from None
            description = f"the scheduler at {options.scheduler}"
            wait_for_workers(client, description, options.worker_wait)
            if device == "auto":
                gpu_tasks = workers_declare_gpu(client)
        elif options.kind == "local":
            n_gpus = gpu_count() if gpu_tasks else 0
            workers = options.workers or (n_gpus if gpu_tasks and n_gpus else os.cpu_count() or 1)
            if threads is None:
                threads = max(1, (os.cpu_count() or 1) // workers)
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    resources={"GPU": 1} if gpu_tasks else None,
                )
            )
            client = stack.enter_context(Client(cluster))
            if gpu_tasks and n_gpus > 1:
                client.register_plugin(pin_gpu_plugin())
            description = f"a local cluster of {workers} worker process(es), {threads} torch thread(s) each"
        else:
            assert options.kind is not None
            _require_submit_command(options.kind)
            cluster = stack.enter_context(job_cluster(options, gpu_tasks))
            jobs = options.jobs or 1
            # adaptive with a fixed size: a job that ends (walltime, preemption) is replaced by a new one
            cluster.adapt(minimum_jobs=jobs, maximum_jobs=jobs)
            client = stack.enter_context(Client(cluster))
            if gpu_tasks:
                client.register_plugin(pin_gpu_plugin())
            description = f"{jobs} {options.kind} job(s), each replaced when it ends"
            wait_for_workers(client, description, options.worker_wait)
        log.info("distributed sweep on %s", description)
        yield Sweep(client, gpu_tasks, threads, description)
