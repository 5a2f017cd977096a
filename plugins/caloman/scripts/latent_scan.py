"""Latent-size scan of CaloMan on a synthetic data set: train (quick preset) at several latent sizes,
sample the evaluation reference's incident energies, evaluate with the quick metrics, and plot the
low-level classifier AUC and FPD against the latent size, marking the measured intrinsic dimension.

    CALOBENCH_DATA=... python plugins/caloman/scripts/latent_scan.py --root runs/latent-scan \\
        --dims 5 10 20 40 auto --plot plugins/caloman/docs/latent_scan.png

Each step is skipped when its output exists (re-running resumes). The evaluation reference is the
quick leaderboard's: the same fixed random 10,000 showers of the reference file. ``--set key=value``
changes the preset for every point (e.g. to tune). Writes ``<root>/scan.json`` and, with
``--plot``, the figure; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

METRICS = ["classifier_low", "classifier_high", "separation_power", "fpd"]


def reference_file(dataset: str, root: Path, n: int) -> Path:
    """The leaderboard's evaluation reference (a fixed random ``n`` showers of the reference file)."""
    from calobench.leaderboard.runner import reference_sample
    from calobench.leaderboard.suites import load_suite

    suite = dataclasses.replace(load_suite("quick"), dataset=dataset, reference_showers=n)

    class _Paths:
        runs = root

    root.mkdir(parents=True, exist_ok=True)
    return Path(reference_sample(suite, _Paths)[0])  # type: ignore[arg-type]


def measure(
    label: str,
    overrides: dict[str, Any],
    *,
    dataset: str,
    root: Path,
    reference: Path,
    preset: str,
    seed: int,
) -> dict[str, Any]:
    """Train, sample and evaluate one configuration; returns its figures (cached in ``<dir>/point.json``)."""
    from calobench.evaluation import evaluate
    from calobench.generator.runs import sample_run, train_run
    from calobench.leaderboard.table import headline_values

    directory = root / (label if seed == 0 else f"{label}-seed{seed}")
    cached = directory / "point.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    started = time.process_time()
    trained = train_run("caloman", dataset, directory / "run", preset=preset, overrides=overrides, seed=seed)
    cpu = time.process_time() - started
    generated = directory / "generated.hdf5"
    if not generated.is_file():
        sample_run(directory / "run", generated, energies_from=reference, seed=seed, progress=False)
    report = evaluate(
        str(generated),
        str(reference),
        dataset=dataset,
        metrics=METRICS,
        preset="quick",
        seed=seed,
        out=directory / "eval",
        plots=False,
        progress=False,
    )
    values = headline_values(report)
    info = trained.run.get("model_info", {})
    point = {
        "label": label,
        "seed": seed,
        "overrides": overrides,
        "latent_dim": info.get("latent_dim"),
        "latent_choice": info.get("latent_choice"),
        "training_seconds": trained.run.get("training_seconds"),
        "training_cpu_seconds_this_call": cpu,
        "n_parameters": trained.run.get("n_parameters"),
        "auc_low": values.get("auc_low"),
        "auc_high": values.get("auc_high"),
        "sep_etot": values.get("sep_etot"),
        "sep_elayer": values.get("sep_elayer"),
        "fpd_x1e3": values.get("fpd"),
    }
    cached.write_text(json.dumps(point, indent=1))
    return point


KEYS = ("auc_low", "auc_high", "fpd_x1e3", "sep_etot", "sep_elayer", "training_seconds")


def combine(points: list[dict[str, Any]]) -> dict[str, Any]:
    """One configuration over seeds: the mean of every figure, its error the larger of the mean
    statistical error and the standard deviation over seeds; the latent size of the first seed."""
    out = dict(points[0], seeds=[p.get("seed", 0) for p in points])
    for key in KEYS:
        values = [p[key] for p in points if p.get(key) is not None]
        if not values:
            continue
        if isinstance(values[0], (list, tuple)):
            means = np.array([v[0] for v in values])
            errors = np.array([v[1] for v in values])
            spread = float(means.std(ddof=1)) if len(means) > 1 else 0.0
            out[key] = [float(means.mean()), max(float(errors.mean()), spread)]
        else:
            out[key] = float(np.mean(values))
    if len(points) > 1:
        out["latent_dims"] = [p["latent_dim"] for p in points]
    return out


def _cell(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return f"{value[0]:.{digits}f} ± {value[1]:.{digits}f}"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def table(points: list[dict[str, Any]]) -> str:
    lines = [
        "| latent size | AUC low | AUC high | FPD x1e3 | sep E_tot/E_inc | sep E_layer (mean) | training |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in points:
        dims = sorted(set(p.get("latent_dims", [p["latent_dim"]])))
        name = "/".join(map(str, dims)) + " (auto)" if p["label"] == "auto" else str(p["latent_dim"])
        lines.append(
            f"| {name} | {_cell(p['auc_low'])} | {_cell(p['auc_high'])} | {_cell(p['fpd_x1e3'], 1)} | "
            f"{_cell(p['sep_etot'], 3)} | {_cell(p['sep_elayer'], 3)} | {p['training_seconds']:.0f} s |"
        )
    return "\n".join(lines)


def plot(points: list[dict[str, Any]], path: Path, title: str, baseline: dict[str, float] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fixed = sorted((p for p in points if p["label"] != "auto"), key=lambda p: p["latent_dim"])
    auto = next((p for p in points if p["label"] == "auto"), None)
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8), constrained_layout=True)
    for axis, key, name in ((axes[0], "auc_low", "low-level classifier AUC"), (axes[1], "fpd_x1e3", "FPD x 1e3")):
        xs = [p["latent_dim"] for p in fixed]
        ys = [p[key][0] for p in fixed]
        es = [p[key][1] for p in fixed]
        axis.errorbar(xs, ys, yerr=es, marker="o", color="tab:blue", label="latent_dim set")
        if auto is not None:
            axis.errorbar(
                [auto["latent_dim"]],
                [auto[key][0]],
                yerr=[auto[key][1]],
                marker="*",
                markersize=14,
                color="tab:red",
                linestyle="none",
                label=f"latent_dim = auto ({auto['latent_dim']})",
            )
            choice = auto.get("latent_choice") or {}
            if choice.get("estimate") is not None:
                axis.axvspan(
                    choice["estimate"] - choice["error"],
                    choice["estimate"] + choice["error"],
                    color="tab:red",
                    alpha=0.15,
                    label=f"measured dimension {choice['estimate']:.1f}",
                )
        if baseline and key in baseline:
            low, high = axis.get_ylim()
            if low - (high - low) <= baseline[key] <= high + (high - low):
                axis.axhline(baseline[key], color="gray", linestyle="--", label="baseline-uncorrelated")
            else:
                axis.set_title(f"baseline-uncorrelated: {baseline[key]:.3g} (off the axis)", fontsize=9)
        axis.set_xscale("log")
        axis.set_xticks(xs)
        axis.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axis.minorticks_off()
        axis.set_xlabel("latent size")
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    if baseline:
        axes[1].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    from calobench.generator.base import parse_override

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="synthetic-ds1-photons")
    parser.add_argument("--root", type=Path, default=Path("runs/latent-scan"))
    parser.add_argument("--dims", nargs="+", default=["5", "10", "20", "40", "auto"])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument(
        "--baseline",
        nargs=2,
        type=float,
        metavar=("AUC_LOW", "FPD_X1E3"),
        help="draw these baseline-uncorrelated figures as dashed lines (where they fit the axes)",
    )
    parser.add_argument("--reference-showers", type=int, default=10000)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    common = dict(parse_override(text) for text in args.overrides)
    reference = reference_file(args.dataset, args.root, args.reference_showers)
    points, raw = [], []
    for dim in args.dims:
        overrides = dict(common, latent_dim="auto" if dim == "auto" else int(dim))
        per_seed = []
        for seed in args.seeds:
            per_seed.append(
                measure(
                    dim,
                    overrides,
                    dataset=args.dataset,
                    root=args.root,
                    reference=reference,
                    preset=args.preset,
                    seed=seed,
                )
            )
            print(json.dumps(per_seed[-1]), flush=True)
        raw.extend(per_seed)
        points.append(combine(per_seed))
    (args.root / "scan.json").write_text(json.dumps({"points": points, "runs": raw}, indent=1))
    print(table(points))
    if args.plot is not None:
        seeds = f"{len(args.seeds)} seeds" if len(args.seeds) > 1 else f"seed {args.seeds[0]}"
        baseline = None if args.baseline is None else {"auc_low": args.baseline[0], "fpd_x1e3": args.baseline[1]}
        plot(
            points, args.plot, f"CaloMan ({args.preset} preset) on {args.dataset}, {seeds}: latent-size scan", baseline
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
