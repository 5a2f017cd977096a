"""``calobench bibae-variants``: one trained BIB-AE run sampled with every latent sampler, with and
without the post-processor (and, with ``--calibrations none,copula``, with and without the copula
calibration), and (with ``--dataset``) each sample evaluated, side by side.

``latent_sampler``, ``post_processor`` and ``calibration`` act only at sampling time, so one trained
model serves every variant; each is sampled like ``calobench sample`` does (same chunking and seeds)
with the incident energies of ``--energies-from``, written to ``OUT/<sampler>-<pp|nopp>[-<calibration>].hdf5``,
evaluated into ``OUT/<variant>/report.json`` (``--metrics``: a subset of the metric preset), and the
headline numbers go to ``OUT/variants.md`` / ``.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from calobench.atomic import write_text_atomic
from calobench.cli.command import Command
from calobench.errors import ConfigError

#: Headline columns of the variants table: (key of ``headline_values``, header).
COLUMNS = (
    ("auc_low", "AUC low"),
    ("auc_high", "AUC high"),
    ("sep_etot", "sep E_tot/E_inc"),
    ("sep_elayer", "sep E_layer (mean)"),
    ("sep_voxel", "sep voxel"),
    ("fpd", "FPD x1e3"),
)


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return f"{value[0]:.4g} ± {value[1]:.2g}"
    return f"{value:.3g}"


def sample_variant(
    model: Any, energies: np.ndarray, out: Path, sampler: str, post: bool, seed: int, chunk: int = 10000
) -> float:
    """Sample ``model`` with ``latent_sampler=sampler`` and ``post_processor=post`` into ``out``;
    returns the seconds spent in the generator."""
    from calobench.formats import ShowerWriter
    from calobench.generator.seeding import derive_seed

    model.config["latent_sampler"], model.config["post_processor"] = sampler, post
    fmt = "calogan" if model.geometry.kind == "cartesian" else "calochallenge"
    seconds = 0.0
    with ShowerWriter(out, model.geometry, format=fmt) as writer:
        for index, first in enumerate(range(0, len(energies), chunk)):
            start = time.perf_counter()
            showers = model.sample_showers(energies[first : first + chunk], seed=derive_seed(seed, "chunk", index))
            seconds += time.perf_counter() - start
            writer.append(showers)
    return seconds


def run_variants(
    checkpoint: str | Path,
    energies_from: str | Path,
    out: str | Path,
    *,
    dataset: str | None = None,
    samplers: tuple[str, ...] = ("normal", "kde", "flow"),
    calibrations: tuple[str, ...] | None = None,
    metrics: list[str] | None = None,
    metrics_preset: str = "quick",
    seed: int = 0,
    device: str | None = None,
) -> list[dict[str, Any]]:
    """Sample (and evaluate) every variant; returns one row per variant."""
    from calobench.formats import open_showers
    from calobench.generator.runs import load_run_model
    from calobench.leaderboard.table import headline_values

    out = Path(out)
    run, model = load_run_model(checkpoint, device)
    if run["generator"] != "bib-ae":
        raise ConfigError(f"{checkpoint} holds a {run['generator']!r} run, not bib-ae")
    with open_showers(energies_from) as handle:
        energies = np.asarray(handle.read().incident_energies, dtype=np.float64).reshape(-1)
    rows = []
    variants = [
        (sampler, post, calibration)
        for sampler in samplers
        for post in (True, False)
        for calibration in (calibrations or (model.config["calibration"],))
    ]
    for sampler, post, calibration in variants:
        name = f"{sampler}-{'pp' if post else 'nopp'}" + (f"-{calibration}" if calibrations else "")
        generated = out / f"{name}.hdf5"
        model.config["calibration"] = calibration
        seconds = sample_variant(model, energies, generated, sampler, post, seed)
        row: dict[str, Any] = {
            "variant": name,
            "latent_sampler": sampler,
            "post_processor": post,
            "calibration": calibration,
        }
        row["ms_per_shower"] = 1e3 * seconds / max(len(energies), 1)
        if dataset is not None:
            from calobench.evaluation import evaluate

            report = evaluate(
                str(generated),
                str(energies_from),
                dataset=dataset,
                metrics=metrics,
                preset=metrics_preset,
                seed=seed,
                device=device,
                out=out / name,
                plots=False,
                progress=False,
            )
            row["values"] = headline_values(report)
        rows.append(row)
    lines = [
        "| latent sampler | post-processor | calibration | " + " | ".join(h for _, h in COLUMNS) + " | ms/shower |",
        "|---|---|---|" + "---|" * (len(COLUMNS) + 1),
    ]
    for row in rows:
        values = row.get("values", {})
        cells = [_format(values.get(key)) for key, _ in COLUMNS]
        lines.append(
            f"| {row['latent_sampler']} | {'on' if row['post_processor'] else 'off'} | {row['calibration']} | "
            + " | ".join(cells)
            + f" | {row['ms_per_shower']:.3g} |"
        )
    write_text_atomic(out / "variants.md", "\n".join(lines) + "\n")
    serializable = [
        {**row, "values": {k: list(v) if isinstance(v, tuple) else v for k, v in row.get("values", {}).items()}}
        for row in rows
    ]
    write_text_atomic(out / "variants.json", json.dumps(serializable, indent=2) + "\n")
    print("\n".join(lines))
    return rows


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="run directory of a trained bib-ae (calobench train)")
    parser.add_argument(
        "--energies-from",
        required=True,
        metavar="FILE",
        help="shower file: incident energies and, with --dataset, the reference",
    )
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument(
        "--dataset", help="evaluate every variant against --energies-from with this data set's geometry and threshold"
    )
    parser.add_argument("--samplers", default="normal,kde,flow", help="comma-separated latent samplers (default: all)")
    parser.add_argument(
        "--calibrations", help="comma-separated calibration settings to compare (none,copula); default: the run's"
    )
    parser.add_argument("--metrics", help="comma-separated metric names (default: every metric of the preset)")
    parser.add_argument("--metrics-preset", default="quick", choices=("smoke", "quick", "paper"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")


def _run(args: argparse.Namespace) -> int:
    run_variants(
        args.checkpoint,
        args.energies_from,
        args.out,
        dataset=args.dataset,
        samplers=tuple(s.strip() for s in args.samplers.split(",") if s.strip()),
        calibrations=tuple(s.strip() for s in args.calibrations.split(",")) if args.calibrations else None,
        metrics=[m.strip() for m in args.metrics.split(",")] if args.metrics else None,
        metrics_preset=args.metrics_preset,
        seed=args.seed,
        device=args.device,
    )
    return 0


COMMANDS = [
    Command(
        "bibae-variants",
        "sample one trained bib-ae run with every latent sampler, with and without its post-processor, and evaluate each",
        _arguments,
        _run,
    )
]
