"""``calobench models``, ``calobench train`` and ``calobench sample``: thin wrappers of
:mod:`calobench.generator.runs` and the generator registry."""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

from calobench.cli.command import Command
from calobench.cli.types import count, finite_float, seed
from calobench.errors import ConfigError
from calobench.generator.base import PRESETS, parse_override
from calobench.generator.distributed import current_world, requested_world, spawn
from calobench.generator.runs import DEFAULT_VALID_FRACTION, RUN_FILE, TrainResult, read_run, sample_run, train_run
from calobench.generator.training import TrainingError

log = logging.getLogger("calobench.train")


# ---------------------------------------------------------------------- models
def _models_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="show the presets' configurations of this generator")


def _models_run(args: argparse.Namespace) -> int:
    from calobench.plugins import generators

    registry = generators()
    if args.name:
        entry = registry.entry(args.name)
        cls = entry.value
        print(f"{cls.name}: {cls.description}")
        print(f"  provided by {entry.provider.distribution} {entry.provider.version} (plugin {entry.provider.plugin})")
        print(f"  geometries: {', '.join(cls.supported_geometries) if cls.supported_geometries else 'any'}")
        print(f"  trainable: {'yes' if cls.trainable else 'no'}")
        for preset in cls.presets:
            print(f"  preset {preset}: {json.dumps(cls.presets[preset], sort_keys=True)}")
        return 0
    rows = [("generator", "provider", "presets", "geometries", "description")]
    for entry in registry.entries():
        cls = entry.value
        rows.append(
            (
                entry.name,
                f"{entry.provider.distribution} {entry.provider.version}",
                ",".join(cls.presets),
                ",".join(cls.supported_geometries) if cls.supported_geometries else "any",
                cls.description,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths)) + "  " + row[4])
    return 0


# ---------------------------------------------------------------------- train
def _overrides(items: list[str] | None) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for item in items or []:
        key, value = parse_override(item)
        overrides[key] = value
    return overrides


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="registered generator name (see `calobench models`)")
    parser.add_argument("--dataset", required=True, help="registered data-set name or a shower file (HDF5)")
    parser.add_argument("--out", required=True, help="run directory (resumed if it holds an unfinished run)")
    parser.add_argument("--preset", default="quick", choices=PRESETS, help="configuration preset (default: quick)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="extend",
        nargs="+",
        metavar="KEY=VALUE",
        help="change config keys (values read as JSON), e.g. --set epochs=5 lr=1e-4",
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA if present, else CPU), cpu, cuda, cuda:N")
    parser.add_argument("--seed", type=seed(), default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--geometry",
        help="geometry name or binning XML for a shower file whose geometry cannot be detected from its voxel count",
    )
    parser.add_argument(
        "--max-showers", type=count("--max-showers"), help="train on the first N showers of the training file"
    )
    parser.add_argument(
        "--valid-fraction",
        type=finite_float("--valid-fraction"),
        default=DEFAULT_VALID_FRACTION,
        help=f"seeded fraction of the training file held out for validation "
        f"(default: {DEFAULT_VALID_FRACTION}; 0 = none)",
    )
    parser.add_argument("--force", action="store_true", help="discard a finished or different run in --out")
    parser.add_argument(
        "--nproc",
        type=count("--nproc"),
        default=1,
        help="data-parallel training in N local processes (one per GPU with nccl, or CPU core groups with "
        "gloo); the global batch stays the config's batch_size. Under torchrun, leave it out",
    )


def _train_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "preset": args.preset,
        "overrides": _overrides(args.overrides),
        "device": args.device,
        "seed": args.seed,
        "geometry": args.geometry,
        "max_showers": args.max_showers,
        "valid_fraction": args.valid_fraction,
        "force": args.force,
    }


def _train_rank(model: str, dataset: str, out: str, kwargs: dict[str, Any]) -> None:
    """One rank of ``calobench train --nproc N`` (run by :func:`calobench.generator.distributed.spawn`)."""
    train_run(model, dataset, out, **kwargs)


def _check_process_count(nproc: int, device: str) -> None:
    """Warn when ``--nproc`` asks for more processes than this machine has cores (or GPUs on CUDA):
    they would share them and train slower than fewer processes."""
    from calobench.generator.device import resolve_device

    if resolve_device(device).type == "cuda":
        import torch

        have, what = torch.cuda.device_count(), "GPU(s)"
    else:
        have, what = os.cpu_count() or 1, "CPU core(s)"
    if nproc > have:
        log.warning(
            "--nproc %d starts %d processes on %d %s: they share them and train slower than --nproc %d would",
            nproc,
            nproc,
            have,
            what,
            have,
        )


def _train_run(args: argparse.Namespace) -> int:
    if args.nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {args.nproc}")
    if args.nproc > 1 and requested_world().active:
        raise ConfigError("--nproc starts its own processes; under torchrun leave it out (torchrun sets the ranks)")
    if args.nproc > 1:
        _check_process_count(args.nproc, args.device)
        resumed = (Path(args.out) / RUN_FILE).is_file() and not args.force
        try:
            spawn(args.nproc, _train_rank, args.model, args.dataset, args.out, _train_kwargs(args))
        except Exception as exc:  # a rank's error comes back as text with its traceback
            raise TrainingError(f"data-parallel training failed: {str(exc).strip().splitlines()[-1]}") from exc
        result = TrainResult(Path(args.out), read_run(args.out), resumed=resumed)
    else:
        result = train_run(args.model, args.dataset, args.out, **_train_kwargs(args))
    if not current_world().is_main:
        return 0
    run = result.run
    if result.already_finished:
        print(
            f"{args.out}: {run['generator']} already trained (finished {run.get('finished_at')}); "
            "nothing to do (use --force to train again)"
        )
        return 0
    parallel = run.get("data_parallel", {}).get("world_size", 1)
    print(
        f"trained {run['generator']} ({run['preset']}, seed {run['seed']}, {run['n_parameters']} parameters) on "
        f"{run['device']}{f' x {parallel} processes' if parallel > 1 else ''} in {run['training_seconds']:.1f} s"
        f"{' (resumed)' if result.resumed else ''} -> {result.directory / 'model'}"
    )
    for key, value in (run.get("model_info") or {}).items():
        print(f"  {key}: {json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value}")
    return 0


# ---------------------------------------------------------------------- sample
def _sample_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="run directory written by `calobench train`")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--energies-from", metavar="FILE", help="use the incident energies of this shower file")
    source.add_argument(
        "--showers",
        type=count("--showers"),
        metavar="N",
        help="draw N incident energies from the training file's spectrum",
    )
    parser.add_argument("--out", required=True, help="output shower file (same format as the training data)")
    parser.add_argument(
        "--batch-size", type=count("--batch-size"), help="showers per generator batch (default: the model's)"
    )
    parser.add_argument("--seed", type=seed(), default=0, help="random seed (default: 0)")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present, else CPU), cpu, cuda, cuda:N")
    parser.add_argument(
        "--allow-other-version",
        action="store_true",
        help="load a run trained with another version of the generator's distribution",
    )


def _sample_run(args: argparse.Namespace) -> int:
    if args.showers is not None and args.showers < 1:
        raise ConfigError(f"--showers must be >= 1, got {args.showers}")
    result = sample_run(
        args.checkpoint,
        args.out,
        energies_from=args.energies_from,
        n_showers=args.showers,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
        allow_other_version=args.allow_other_version,
    )
    rate = result.n_showers / result.seconds if result.seconds > 0 else float("inf")
    print(
        f"wrote {result.n_showers} {result.generator} showers to {result.path} "
        f"({result.seconds:.2f} s in the generator, {rate:.0f} showers/s)"
    )
    return 0


COMMANDS = [
    Command("models", "list the registered generators: provider, presets, geometries", _models_arguments, _models_run),
    Command(
        "train",
        "train a generator on a data set or shower file into a resumable run directory",
        _train_arguments,
        _train_run,
    ),
    Command("sample", "generate showers from a trained run into a shower file", _sample_arguments, _sample_run),
]
