"""Core subcommands: ``calobench plugins`` and ``calobench info FILE``."""

from __future__ import annotations

import argparse

from calobench.cli.command import Command
from calobench.hookspecs import hookimpl
from calobench.plugins import get_host
from calobench.summary import summarize_file


def _plugins_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", "-v", action="store_true", help="also list what each plugin registered")


def _plugins_run(args: argparse.Namespace) -> int:
    host = get_host()
    print(f"{'plugin':<22} {'distribution':<26} {'version':<10} status")
    for record in host.records:
        print(f"{record.name:<22} {record.distribution:<26} {record.version:<10} {record.status}")
        if record.error:
            print(f"    error: {record.error}")
        for conflict in record.conflicts:
            print(f"    conflict: {conflict}")
        if args.verbose or record.status == "loaded":
            for kind, names in sorted(record.provides.items()):
                print(f"    {kind}: {', '.join(sorted(names))}")
    return 1 if (host.failed or host.conflicted) and host.strict else 0


def _info_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a CaloChallenge or CaloGAN HDF5 shower file")
    parser.add_argument(
        "--geometry",
        help="geometry name (ds1-photons, ds1-pions, ds2, ds3, calogan) or "
        "binning XML; detected from the voxel count by default",
    )


def _info_run(args: argparse.Namespace) -> int:
    print(summarize_file(args.file, args.geometry).to_text())
    return 0


@hookimpl
def calobench_commands() -> list[Command]:
    return [
        Command(
            "plugins", "list installed plugins, their state and what they register", _plugins_arguments, _plugins_run
        ),
        Command(
            "info",
            "summarize a shower file: size, geometry, energy range, per-layer energy and sparsity",
            _info_arguments,
            _info_run,
        ),
    ]
