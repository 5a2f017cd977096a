"""``calobench evaluate`` and ``calobench validate-metrics``: argument parsing only."""

from __future__ import annotations

import argparse
from pathlib import Path

from calobench.cli.command import Command
from calobench.cli.types import count, finite_float, seed
from calobench.metrics.presets import PRESETS

EVALUATE_HELP = "evaluate a generated shower file against a reference with the CaloChallenge metrics"
EVALUATE_DESCRIPTION = """\
Evaluate GENERATED (a CaloChallenge or CaloGAN HDF5 file, whoever made it) against a reference
sample. Writes OUT/report.json (schema version 1), OUT/report.md and OUT/plots/*.png.
The geometry comes from --dataset (with its threshold; its reference files are the default
reference), from --geometry, or is detected from the voxel count."""


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("generated", help="generated shower file (HDF5)")
    parser.add_argument("--reference", help="reference shower file; default: the reference files of --dataset")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--dataset", help="data-set name: sets geometry and threshold (and is recorded)")
    where.add_argument(
        "--geometry",
        help="built-in geometry (ds1-photons, ds1-pions, ds2, ds3, calogan) or a binning "
        "XML file; default: detected from the voxel count",
    )
    parser.add_argument(
        "--metrics",
        default="all",
        help="comma-separated metric names (`calobench plugins -v` lists them; 'classifier' = all "
        "classifier modes); default: all",
    )
    parser.add_argument(
        "--preset",
        choices=list(PRESETS),
        default="quick",
        help="quick (minutes on a CPU), paper (the published settings) or smoke (tests); default quick",
    )
    parser.add_argument("--seed", type=seed(), default=0, help="seed of every random step (default 0)")
    parser.add_argument("--device", default="auto", help="torch device: auto (default), cpu, cuda, cuda:1 ...")
    parser.add_argument(
        "--threshold", type=finite_float("--threshold"), help="readout threshold in MeV (default: the geometry's)"
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the plots")
    parser.add_argument(
        "--max-showers", type=int, help="evaluate only the first N showers of each sample (default: all)"
    )
    parser.add_argument("--out", required=True, type=Path, help="output directory")


def _evaluate_run(args: argparse.Namespace) -> int:
    from calobench.evaluation.runner import evaluate

    report = evaluate(
        args.generated,
        args.reference,
        dataset=args.dataset,
        geometry=args.geometry,
        metrics=args.metrics,
        preset=args.preset,
        seed=args.seed,
        device=args.device,
        out=args.out,
        plots=not args.no_plots,
        progress=True,
        threshold=args.threshold,
        max_showers=args.max_showers,
    )
    rows = report.get("summary", [])
    print(
        f"evaluated {report['n_generated']} generated against {report['n_reference']} reference showers "
        f"({report['geometry']}, preset {report['preset']})"
    )
    for row in rows:
        value = "n/a" if row["value"] is None else f"{row['value']:.4g}"
        error = "" if row.get("error") is None else f" ± {row['error']:.2g}"
        print(f"  {row['label']:<28} {value}{error}")
    failed = [name for name, entry in report["metrics"].items() if entry["status"] == "failed"]
    for name in failed:
        print(f"  metric {name} failed: {report['metrics'][name]['reason']}")
    print(f"report: {args.out / 'report.json'}, {args.out / 'report.md'}")
    return 1 if failed else 0


VALIDATE_HELP = "check which metrics detect which simulator mis-modelling at which strength"
VALIDATE_DESCRIPTION = """\
Simulate a reference sample, an independent reference sample and perturbed samples of increasing
strength with calobench's shower simulator, evaluate each against the reference with the quick
metrics, and write OUT/validation.json, OUT/validation.md and OUT/validation.png: which metric
detects which mis-modelling at which strength."""


def _validate_arguments(parser: argparse.ArgumentParser) -> None:
    from calobench.evaluation.validation import (
        DEFAULT_METRICS,
        DEFAULT_PERTURBATIONS,
        DEFAULT_SHOWERS,
        DEFAULT_STRENGTHS,
    )

    parser.add_argument(
        "--dataset",
        required=True,
        help="a synthetic data set whose detector the simulator models (e.g. synthetic-ds1-photons)",
    )
    parser.add_argument(
        "--showers",
        type=count("--showers"),
        default=DEFAULT_SHOWERS,
        help=f"showers per sample (default {DEFAULT_SHOWERS})",
    )
    parser.add_argument(
        "--perturbations",
        help="comma-separated simulator knobs (`calobench simulate --help` lists "
        "them; default: " + ", ".join(DEFAULT_PERTURBATIONS) + ")",
    )
    parser.add_argument(
        "--strengths",
        default=",".join(str(s) for s in DEFAULT_STRENGTHS),
        help="comma-separated relative strengths: a knob is set to 1 + strength "
        f"(default {','.join(str(s) for s in DEFAULT_STRENGTHS)})",
    )
    parser.add_argument(
        "--metrics",
        default=",".join(DEFAULT_METRICS),
        help="comma-separated metric names (default: every metric but the classifiers, which take "
        "about a minute per sample; add e.g. classifier_low,classifier_high)",
    )
    parser.add_argument("--preset", choices=list(PRESETS), default="quick", help="metric preset (default quick)")
    parser.add_argument("--seed", type=seed(), default=0, help="seed (default 0)")
    parser.add_argument("--device", default="auto", help="torch device (default auto)")
    parser.add_argument("--out", required=True, type=Path, help="output directory")


def _validate_run(args: argparse.Namespace) -> int:
    from calobench.evaluation.validation import validate_metrics

    strengths = [float(s) for s in args.strengths.split(",") if s.strip()]
    perturbations = [p.strip() for p in args.perturbations.split(",")] if args.perturbations else None
    result = validate_metrics(
        args.dataset,
        out=args.out,
        n_showers=args.showers,
        perturbations=perturbations,
        strengths=strengths,
        metrics=args.metrics,
        preset=args.preset,
        seed=args.seed,
        device=args.device,
        progress=True,
    )
    print(result.markdown_table())
    print(f"written: {args.out / 'validation.json'}, {args.out / 'validation.md'}, {args.out / 'validation.png'}")
    return 0


def evaluate_command() -> Command:
    return Command("evaluate", EVALUATE_HELP, _evaluate_arguments, _evaluate_run, description=EVALUATE_DESCRIPTION)


def validate_metrics_command() -> Command:
    return Command(
        "validate-metrics", VALIDATE_HELP, _validate_arguments, _validate_run, description=VALIDATE_DESCRIPTION
    )
