"""The evaluation report: ``report.json`` (schema version 1) and its human-readable ``report.md``.

``report.json`` always holds these keys (``null`` where a metric did not run)::

    schema_version, kind, dataset, geometry, threshold_mev, n_reference, n_generated, preset, seed,
    provenance {calobench_version, git_revision, torch_version, device, ...}, inputs, settings,
    metrics {name: {version, provider, status, reason, seconds}}, metric_versions {name: version},
    separation_power, separation_power_summary, separation_power_null,
    classifier {low, low_normed, high, bdt_high, cnn}, fpd, kpd, prdc, w1, intrinsic_dimension,
    energy_response, layer_correlation, in_memory_samples, plots, timings

Files are written atomically (temporary file in the same directory, then ``os.replace``).
"""

from __future__ import annotations

import json
import math
from typing import Any

from calobench.metrics.binning import LAYER_FEATURES

SCHEMA_VERSION = 1
KIND = "calobench-evaluation"
CLASSIFIER_MODES: tuple[str, ...] = ("low", "low_normed", "high", "bdt_high", "cnn")
#: Keys every report has, whatever metrics ran.
METRIC_KEYS: tuple[str, ...] = (
    "separation_power",
    "separation_power_summary",
    "separation_power_null",
    "classifier",
    "fpd",
    "kpd",
    "prdc",
    "w1",
    "intrinsic_dimension",
    "energy_response",
    "layer_correlation",
)
HEADER_KEYS: tuple[str, ...] = (
    "schema_version",
    "kind",
    "dataset",
    "geometry",
    "threshold_mev",
    "n_reference",
    "n_generated",
    "preset",
    "seed",
    "provenance",
    "inputs",
    "settings",
    "metrics",
    "metric_versions",
    "in_memory_samples",
    "plots",
    "timings",
)


def empty_metric_sections() -> dict[str, Any]:
    sections: dict[str, Any] = {key: None for key in METRIC_KEYS}
    sections["classifier"] = {mode: None for mode in CLASSIFIER_MODES}
    return sections


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, allow_nan=False) + "\n"


# ---------------------------------------------------------------------- markdown
def _f(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return str(value)
    value = float(value)
    if not math.isfinite(value):
        return "n/a"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def _pm(entry: dict | None, value: str = "value", error: str = "error") -> str:
    if not entry:
        return "n/a"
    return f"{_f(entry.get(value))} ± {_f(entry.get(error), 2)}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(map(_cell, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in rows]
    return lines + [""]


def render_markdown(report: dict[str, Any]) -> str:
    """A readable summary of every number in the report."""
    prov = report["provenance"]
    lines = [f"# calobench evaluation: {report.get('dataset') or report['geometry']}", ""]
    lines += _table(
        ["", ""],
        [
            ["data set", str(report.get("dataset") or "—")],
            ["geometry", f"{report['geometry']} (threshold {_f(report['threshold_mev'])} MeV)"],
            [
                "reference",
                f"{report['n_reference']} showers: " + ", ".join(_file_text(f) for f in report["inputs"]["reference"]),
            ],
            [
                "generated",
                f"{report['n_generated']} showers: " + ", ".join(_file_text(f) for f in report["inputs"]["generated"]),
            ],
            ["preset / seed", f"{report['preset']} / {report['seed']}"],
            [
                "in memory (PRDC, ID, classifiers)",
                f"{report['in_memory_samples']['reference']} reference, "
                f"{report['in_memory_samples']['generated']} generated showers",
            ],
            ["calobench", f"{prov['calobench_version']} (git {prov['git_revision'][:12]})"],
            ["torch / device", f"{prov['torch_version']} / {prov['device']}"],
            ["created", prov["created_utc"]],
        ],
    )
    lines += _summary_section(report)
    lines += _separation_section(report)
    lines += _classifier_section(report)
    lines += _distance_section(report)
    lines += _response_section(report)
    lines += _metrics_section(report)
    if report.get("plots"):
        lines += ["## Plots", ""] + [f"- [{p}]({p})" for p in report["plots"]] + [""]
    return "\n".join(lines)


def _file_text(entry: dict) -> str:
    digest = entry.get("md5") or entry.get("fingerprint")
    return f"`{entry['path']}`" + (f" (md5 {digest[:12]}…)" if digest else "")


def _summary_section(report: dict) -> list[str]:
    rows = report.get("summary") or []
    if not rows:
        return []
    lines = [
        "## Summary",
        "",
        "Headline numbers (± the metric's own uncertainty where it has one; for separation "
        "powers, the spread expected between two samples of one distribution).",
        "",
    ]
    return lines + _table(
        ["metric", "value"],
        [
            [r["label"], f"{_f(r['value'])}" + (f" ± {_f(r['error'], 2)}" if r.get("error") is not None else "")]
            for r in rows
        ],
    )


def _separation_section(report: dict) -> list[str]:
    powers = report.get("separation_power")
    if not powers:
        return []
    summary = report.get("separation_power_summary") or {}
    lines = [
        "## Separation powers",
        "",
        "S = 1/2 Σ (p − q)² / (p + q); 0 = identical histograms, 1 = disjoint (CaloChallenge binnings).",
        "",
    ]
    lines += _table(
        ["E_tot/E_inc", "voxel spectrum", "E_layer (mean over layers)"],
        [[_f(powers.get("etot_einc")), _f(powers.get("voxel")), _f(summary.get("e_layer_mean"))]],
    )
    layer_ids = list(powers["e_layer"].keys())
    header = ["layer"] + list(LAYER_FEATURES)
    rows = [
        [layer] + [_f(powers[feature].get(layer)) if layer in powers[feature] else "—" for feature in LAYER_FEATURES]
        for layer in layer_ids
    ]
    lines += _table(header, rows)
    per_energy = powers.get("etot_einc_per_energy")
    if per_energy:
        lines += ["E_tot/E_inc per incident energy (dataset 1):", ""]
        lines += _table(["E_inc [MeV]", "S"], [[energy, _f(value)] for energy, value in per_energy.items()])
    return lines


def _classifier_section(report: dict) -> list[str]:
    classifier = report.get("classifier") or {}
    statuses = report.get("metrics", {})
    rows = []
    for mode in CLASSIFIER_MODES:
        entry = classifier.get(mode)
        status = statuses.get(f"classifier_{mode}", {})
        if entry is None:
            rows.append([mode, "n/a", "n/a", "—", status.get("reason") or status.get("status") or "not run"])
            continue
        rows.append(
            [
                mode,
                _pm(entry["auc"], "mean", "std"),
                _pm(entry["jsd"], "mean", "std"),
                str(entry.get("n_per_class", "?")),
                f"{entry.get('n_runs', len(entry['auc']['runs']))} runs",
            ]
        )
    lines = ["## Classifiers", "", "AUC 0.5 = indistinguishable; mean ± std over independent runs.", ""]
    return lines + _table(["mode", "AUC", "JSD", "showers / class", "notes"], rows)


def _distance_section(report: dict) -> list[str]:
    lines = ["## Distances and intrinsic dimension", ""]
    rows = [["FPD", _pm(report.get("fpd"))], ["KPD", _pm(report.get("kpd"))]]
    prdc = report.get("prdc")
    if prdc:
        rows.append(
            [
                "precision / recall / density / coverage",
                " / ".join(_f(prdc[k], 3) for k in ("precision", "recall", "density", "coverage"))
                + f" (k = {prdc['k']}, {prdc['n_reference']} + {prdc['n_generated']} showers)",
            ]
        )
    else:
        rows.append(["precision / recall / density / coverage", "n/a"])
    ident = report.get("intrinsic_dimension")
    if ident:
        rows.append(["intrinsic dimension, reference", _pm(ident["reference"])])
        rows.append(["intrinsic dimension, generated", _pm(ident["generated"])])
    w1 = report.get("w1")
    if w1:
        rows.append(["W1 / reference std (mean over features)", _f(w1.get("normalized_mean"))])
        rows.append(["W1 of E_tot/E_inc", _f(w1.get("etot_einc"))])
    return lines + _table(["metric", "value"], rows)


def _response_section(report: dict) -> list[str]:
    lines: list[str] = []
    response = report.get("energy_response")
    if response:
        lines += [
            "## Energy response and resolution",
            "",
            "Mean and std/mean of E_tot/E_inc per incident-energy bin.",
            "",
        ]
        rows = []
        for entry in response["bins"]:
            energy = (
                _f(entry["e_low"])
                if entry["e_low"] == entry["e_high"]
                else f"{_f(entry['e_low'])}–{_f(entry['e_high'])}"
            )
            ref, gen = entry["reference"], entry["generated"]
            rows.append(
                [
                    energy,
                    str(ref["n"]),
                    _f(ref["mean"]),
                    _f(gen["mean"]),
                    _f(ref["resolution"]),
                    _f(gen["resolution"]),
                    str(gen["n"]),
                ]
            )
        lines += _table(
            ["E_inc [MeV]", "n ref", "response ref", "response gen", "resolution ref", "resolution gen", "n gen"], rows
        )
        lines += [
            f"Weighted mean relative shift (generated / reference − 1): response "
            f"{_pm(response.get('response_shift'))}, resolution {_pm(response.get('resolution_shift'))}.",
            "",
        ]
    correlation = report.get("layer_correlation")
    if correlation:
        lines += [
            "Layer-energy correlations: max |ρ_gen − ρ_ref| = "
            f"{_f(correlation['max_abs_difference'])}, mean {_f(correlation['mean_abs_difference'])}.",
            "",
        ]
    return lines


def _metrics_section(report: dict) -> list[str]:
    rows = []
    for name, entry in sorted(report.get("metrics", {}).items()):
        rows.append(
            [
                name,
                str(entry.get("version")),
                entry.get("status", "?"),
                _f(entry.get("seconds"), 3),
                entry.get("provider", ""),
                entry.get("reason") or "",
            ]
        )
    lines = ["## Metrics, versions and timings", ""]
    lines += _table(["metric", "version", "status", "seconds", "provider", "note"], rows)
    timings = report.get("timings", {})
    lines += [
        f"Streaming passes: reference {_f(timings.get('scan_reference_s'), 3)} s, generated "
        f"{_f(timings.get('scan_generated_s'), 3)} s; total {_f(timings.get('total_s'), 3)} s.",
        "",
    ]
    return lines
