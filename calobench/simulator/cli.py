"""``calobench simulate``: write a (possibly deliberately mis-modelled) synthetic sample."""

from __future__ import annotations

import argparse
from pathlib import Path

from calobench.cli.command import Command
from calobench.cli.types import count, seed
from calobench.errors import ConfigError
from calobench.simulator.perturbations import describe_perturbations, parse_perturbations

EPILOG = """perturbations (--perturb KEY=FACTOR, multiplicative, 1 = nominal):
{knobs}

examples:
  calobench simulate synthetic-ds1-photons --showers 20000 --out nominal.hdf5
  calobench simulate synthetic-ds2 --showers 10000 --perturb depth_scale=1.03 --out deeper.hdf5
  calobench simulate ds2 --energies-from reference.hdf5 --perturb spot_scale=0.8 --out fewer_spots.hdf5
"""


def _arguments(parser: argparse.ArgumentParser) -> None:
    from calobench.simulator.catalog import synthetic_names

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG.format(knobs=describe_perturbations())
    parser.add_argument(
        "name",
        help="synthetic data set / detector: "
        + ", ".join(synthetic_names())
        + " (the 'synthetic-' prefix may be left out)",
    )
    parser.add_argument(
        "--showers",
        "-n",
        type=count("--showers"),
        help="number of showers (default: all energies of --energies-from, else required)",
    )
    parser.add_argument("--seed", type=seed(), default=0, help="random seed (default 0)")
    parser.add_argument(
        "--perturb",
        action="append",
        default=[],
        metavar="KEY=FACTOR",
        help="mis-model the simulator; repeatable (see below)",
    )
    parser.add_argument(
        "--energies-from",
        type=Path,
        metavar="FILE",
        help="take the incident energies from this shower file instead of the data set's spectrum",
    )
    parser.add_argument(
        "--format", choices=("calochallenge", "calogan"), help="output format (default: the data set's)"
    )
    parser.add_argument("--out", "-o", type=Path, required=True, help="output HDF5 file")


def _run(args: argparse.Namespace) -> int:
    import numpy as np

    from calobench.formats import open_showers
    from calobench.simulator.catalog import canonical_name, resolve_detector
    from calobench.simulator.makers import write_simulation
    from calobench.simulator.spectra import incident_spectrum

    name = canonical_name(args.name)
    detector = resolve_detector(name)
    perturbation = parse_perturbations(args.perturb)
    if args.showers is not None and args.showers <= 0:
        raise ConfigError(f"--showers must be a positive number, got {args.showers}")
    if args.seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {args.seed}")
    if args.energies_from is not None:
        with open_showers(args.energies_from) as handle:
            incident = handle.incident_energies()
        if args.showers is not None:
            if args.showers > len(incident):
                raise ConfigError(
                    f"--showers {args.showers} is more than the {len(incident)} showers of {args.energies_from}"
                )
            incident = incident[: args.showers]
    elif args.showers is None:
        raise ConfigError("give --showers N (or --energies-from FILE to reuse a file's incident energies)")
    else:
        incident = incident_spectrum(name, args.showers, args.seed)
    if args.format == "calogan" and detector.geometry.kind != "cartesian":
        raise ConfigError(f"the CaloGAN format holds only the CaloGAN geometry, not {detector.geometry.name}")
    write_simulation(args.out, detector, np.asarray(incident), args.seed, perturbation, format=args.format)
    knobs = ", ".join(f"{k}={v:g}" for k, v in perturbation.items()) or "none"
    print(
        f"wrote {len(incident)} {detector.particle} showers of {name} to {args.out} "
        f"(seed {args.seed}, perturbation: {knobs})"
    )
    return 0


COMMAND = Command(
    name="simulate",
    help="simulate showers with the parametrized (GFlash-style) simulator, optionally mis-modelled",
    add_arguments=_arguments,
    run=_run,
    description="Simulate showers of a synthetic data set with calobench's parametrized simulator and write "
    "them in the data set's format. --perturb moves the simulator's knobs to make a deliberately "
    "mis-modelled sample (for measuring the sensitivity of metrics).",
)
