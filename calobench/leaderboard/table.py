"""Leaderboard rows from result files: headline numbers, ordering and text formatting.

Nothing here recomputes a metric: every number is read from a result file (our runs) or from the
digitized published CaloChallenge 2022 tables (arXiv 2410.21611), which were measured on the real
GEANT4 data sets and are always labelled as such.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calobench.paths import resources_dir
from calobench.textfiles import read_json

#: (column key, header) of the headline table, in order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("auc_low", "AUC low"),
    ("auc_high", "AUC high"),
    ("auc_bdt", "AUC BDT"),
    ("sep_etot", "sep E_tot/E_inc"),
    ("sep_elayer", "sep E_layer (mean)"),
    ("sep_voxel", "sep voxel"),
    ("fpd", "FPD x1e3"),
    ("kpd", "KPD x1e3"),
    ("prdc", "prec/rec/dens/cov"),
)


@dataclass
class Row:
    """One line of the leaderboard: our result, or a published reference row."""

    model: str
    status: str
    values: dict[str, Any] = field(default_factory=dict)
    timing_ms: dict[str, tuple[float, float]] = field(default_factory=dict)  # batch size -> (mean, std)
    timing_device: str = ""
    parameters: float | None = None
    training_seconds: float | None = None
    error: str | None = None
    published: bool = False
    seed: int | None = None
    preset: str | None = None

    def sort_key(self) -> tuple:
        order = {"finished": 0, "unsupported": 1, "failed": 2}.get(self.status, 3)
        auc = self.values.get("auc_low")
        mean = auc[0] if isinstance(auc, tuple) else math.inf
        return (order, mean, self.model, self.seed or 0)


def _mean_std(entry: Any) -> tuple[float, float] | None:
    if not isinstance(entry, dict):
        return None
    mean, std = entry.get("mean"), entry.get("std")
    if mean is None:
        return None
    return (float(mean), float(std or 0.0))


def _single(value: Any) -> float | None:
    """A scalar from a number or a one-entry map (e.g. ``{"all": 0.01}``)."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict) and value:
        numbers = [v for v in value.values() if isinstance(v, (int, float))]
        if len(numbers) == 1:
            return float(numbers[0])
        if numbers:
            return float(sum(numbers) / len(numbers))
    return None


def _classifier_auc(report: dict[str, Any], mode: str) -> tuple[float, float] | None:
    entry = (report.get("classifier") or {}).get(mode)
    return _mean_std(entry.get("auc")) if isinstance(entry, dict) else None


def _scaled(entry: Any, factor: float) -> tuple[float, float] | None:
    if not isinstance(entry, dict) or entry.get("value") is None:
        return None
    return (float(entry["value"]) * factor, float(entry.get("error") or 0.0) * factor)


def headline_values(report: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of one ``report.json`` (missing metrics are absent)."""
    separation = report.get("separation_power") or {}
    values: dict[str, Any] = {
        "auc_low": _classifier_auc(report, "low"),
        "auc_high": _classifier_auc(report, "high"),
        "auc_bdt": _classifier_auc(report, "bdt_high"),
        "sep_etot": _single(separation.get("etot_einc")),
        "sep_elayer": _single(separation.get("e_layer")),
        "sep_voxel": _single(separation.get("voxel")),
        "fpd": _scaled(report.get("fpd"), 1e3),
        "kpd": _scaled(report.get("kpd"), 1e3),
    }
    prdc = report.get("prdc")
    if isinstance(prdc, dict) and all(prdc.get(k) is not None for k in ("precision", "recall", "density", "coverage")):
        values["prdc"] = tuple(float(prdc[k]) for k in ("precision", "recall", "density", "coverage"))
    return {k: v for k, v in values.items() if v is not None}


def _error_text(error: Any) -> str | None:
    if not isinstance(error, dict):
        return error
    kind = f"{error['type']}: " if error.get("type") else ""
    return f"{error.get('stage', '?')}: {kind}{error.get('message', '')}"


def row_from_result(result: dict[str, Any]) -> Row:
    timing = result.get("timing") or {}
    timing_ms = {
        str(size): (float(entry["mean_ms"]), float(entry.get("std_ms") or 0.0))
        for size, entry in sorted((timing.get("batch_sizes") or {}).items(), key=lambda kv: int(kv[0]))
    }
    training = result.get("training") or {}
    error = result.get("error")
    return Row(
        model=result["model"],
        status=result["status"],
        seed=int(result["seed"]),
        preset=result.get("preset"),
        values=headline_values(result.get("report") or {}),
        timing_ms=timing_ms,
        timing_device=str(timing.get("device", "")),
        parameters=training.get("n_parameters"),
        training_seconds=training.get("seconds"),
        error=_error_text(error),
    )


# ---------------------------------------------------------------------- published numbers
def published_table_path() -> Path:
    package_dir = Path(__file__).resolve().parent.parent
    for candidate in (package_dir / "_published", package_dir.parent / "leaderboards" / "published"):
        if (candidate / "calochallenge-2022.json").is_file():
            return candidate / "calochallenge-2022.json"
    return resources_dir() / "missing-published-table.json"  # reported by published_rows


def _published_data() -> dict[str, Any] | None:
    """The digitized published tables (shipped with calobench), or None where they are missing."""
    path = published_table_path()
    if not path.is_file():
        return None
    return read_json(path, "published table file")


def published_tables() -> tuple[str, ...]:
    """The names of the published CaloChallenge 2022 tables (``ds1-photons``, ...); () without the file."""
    data = _published_data()
    return tuple(sorted(data["datasets"])) if data else ()


def published_rows(table: str, names: list[str]) -> tuple[list[Row], str]:
    """Published CaloChallenge 2022 rows of ``table`` (e.g. ``ds1-photons``) for the given model names."""
    data = _published_data()
    if data is None:
        return [], ""
    rows = []
    for entry in data["datasets"].get(table, []):
        if entry["model"] not in names:
            continue
        values: dict[str, Any] = {
            "auc_low": _mean_std(entry.get("auc_low")),
            "auc_high": _mean_std(entry.get("auc_high")),
            "sep_etot": entry.get("sep_etot"),
            "sep_elayer": entry.get("sep_elayer_mean"),
            "sep_voxel": entry.get("sep_voxel"),
            "fpd": _mean_std(entry.get("fpd_x1e3")),
            "kpd": _mean_std(entry.get("kpd_x1e3")),
        }
        prdc = entry.get("prdc")
        if prdc:
            values["prdc"] = tuple(float(prdc[k]) for k in ("precision", "recall", "density", "coverage"))
        gpu = {k: (v, 0.0) for k, v in (entry.get("gpu_ms_per_shower") or {}).items() if v is not None}
        rows.append(
            Row(
                model=entry["model"],
                status="published",
                values={k: v for k, v in values.items() if v is not None},
                timing_ms=gpu,
                timing_device="GPU (paper)",
                parameters=entry.get("parameters"),
                published=True,
            )
        )
    return rows, data.get("source", "")


# ---------------------------------------------------------------------- formatting
def _number(value: float, spec: str) -> str:
    """``value`` formatted with ``spec``; NaN and inf (a metric that could not be computed) as "n/a"."""
    return format(value, spec) if math.isfinite(value) else "n/a"


def format_value(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key == "prdc":
        return "/".join(_number(v, ".3g") for v in value)
    if isinstance(value, tuple):
        mean, std = value
        if key.startswith("auc"):
            return f"{_number(mean, '.4f')} ± {_number(std, '.4f')}"
        return f"{_number(mean, '.3g')} ± {_number(std, '.2g')}"
    return _number(value, ".3g")


def format_timing(row: Row) -> str:
    if not row.timing_ms:
        return ""
    sizes = "/".join(row.timing_ms)
    values = "/".join(_number(mean, ".3g") for mean, _ in row.timing_ms.values())
    return f"{values} (bs {sizes})"


def format_parameters(value: float | None) -> str:
    return "" if value is None else _number(value, ".3g")


def format_seconds(value: float | None) -> str:
    if value is None:
        return ""
    if not math.isfinite(value):
        return "n/a"
    return f"{value / 60:.1f} min" if value >= 60 else f"{value:.0f} s"


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#])")


def markdown_escape(text: str) -> str:
    """``text`` with Markdown's special characters backslash-escaped, for a table cell."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("\n", " ")
