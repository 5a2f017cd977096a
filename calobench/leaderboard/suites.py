"""Suite definitions: which data set, which models at which preset, which metrics, seeds and timing.

Suites are TOML files in ``leaderboards/suites/`` (shipped with the package)::

    name = "quick"
    dataset = "synthetic-ds1-photons"
    published = "ds1-photons"        # published CaloChallenge table shown beside the results
    models = "all"                   # every registered generator, or a list of names
    preset = "quick"                 # default model preset
    metrics = "all"                  # or a list of metric names
    exclude_metrics = []             # optional: names left out of "all" (or of the list)
    metrics_preset = "quick"
    seeds = [0]
    reference_showers = 10000        # optional cap on the evaluation sample
    report_plots = true              # optional: the per-model report's plots (the page draws its own)
    device = "auto"
    [timing]
    batch_sizes = [1, 100, 1000]
    repeats = 3
    max_seconds = 60                 # optional: fewer repeats where repeats x one call would exceed it
    [model.caloflow-teacher]         # optional per-model settings
    preset = "quick"
    set = { epochs = 5 }
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calobench.errors import CalobenchError
from calobench.generator.base import PRESETS
from calobench.names import check_name, name_problem
from calobench.registry import suggestion_text
from calobench.textfiles import read_toml


class SuiteError(CalobenchError):
    """A suite file is missing or malformed."""


@dataclass(frozen=True)
class ModelSettings:
    preset: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    name: str
    title: str
    dataset: str
    models: tuple[str, ...] | None  # None: every registered generator
    preset: str
    metrics: tuple[str, ...] | None  # None: every registered metric
    metrics_preset: str
    seeds: tuple[int, ...]
    timing_batch_sizes: tuple[int, ...]
    timing_repeats: int
    timing_max_seconds: float = 60.0
    excluded_metrics: tuple[str, ...] = ()
    device: str = "auto"
    reference_showers: int | None = None
    report_plots: bool = True
    published: str | None = None
    model_settings: dict[str, ModelSettings] = field(default_factory=dict)
    path: Path | None = None

    def preset_for(self, model: str) -> str:
        settings = self.model_settings.get(model)
        return settings.preset if settings and settings.preset else self.preset

    def overrides_for(self, model: str) -> dict[str, Any]:
        settings = self.model_settings.get(model)
        return dict(settings.overrides) if settings else {}


def suites_dir() -> Path:
    """The shipped suites: ``leaderboards/suites`` in a checkout, ``calobench/_suites`` in a wheel."""
    package_dir = Path(__file__).resolve().parent.parent
    for candidate in (package_dir / "_suites", package_dir.parent / "leaderboards" / "suites"):
        if candidate.is_dir():
            return candidate
    raise SuiteError(f"calobench's suite definitions were not found near {package_dir}; reinstall calobench")


def available_suites() -> list[str]:
    return sorted(p.stem for p in suites_dir().glob("*.toml"))


def load_suite(name_or_path: str | Path) -> Suite:
    """A suite by shipped name (``quick``) or from a TOML file path, checked in full: every problem
    (unknown keys with suggestions, wrong types, signs, fractional counts, an unknown published
    table) is reported at once, before any work."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = suites_dir() / f"{name_or_path}.toml"
        if not path.is_file():
            raise SuiteError(
                f"unknown suite {str(name_or_path)!r}{suggestion_text(str(name_or_path), available_suites())}"
            )
    data = read_toml(path, "suite file", SuiteError)
    reader = _Reader()
    suite = _suite_from_dict(data, path, reader)
    if reader.problems:
        raise SuiteError(f"suite file {path} is malformed: " + "; ".join(reader.problems))
    return suite


#: The keys of a suite file, of its ``[timing]`` table and of each ``[model.NAME]`` table.
SUITE_KEYS = (
    "name",
    "title",
    "dataset",
    "published",
    "models",
    "preset",
    "metrics",
    "exclude_metrics",
    "metrics_preset",
    "seeds",
    "reference_showers",
    "report_plots",
    "device",
    "timing",
    "model",
)
TIMING_KEYS = ("batch_sizes", "repeats", "max_seconds")
MODEL_KEYS = ("preset", "set")


def _close(key: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else f" (known keys: {', '.join(known)})"


class _Reader:
    """Reads typed values out of a suite's tables, collecting every problem instead of stopping at
    the first one."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def table(self, data: Any, where: str, known: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.problems.append(f"{where} must be a table, got {data!r}")
            return {}
        prefix = f"{where}." if where else ""
        for key in data:
            if key not in known:
                self.problems.append(f"unknown key {prefix}{key}{_close(key, known)}")
        return data

    def text(self, data: dict[str, Any], key: str, default: str | None, where: str = "") -> Any:
        value = data.get(key, default)
        if value is None and default is None and key not in data:
            return None
        if not isinstance(value, str) or not value:
            self.problems.append(f"{where}{key} must be a non-empty string, got {value!r}")
            return default
        return value

    def choice(
        self, data: dict[str, Any], key: str, default: str | None, choices: tuple[str, ...], where: str = ""
    ) -> Any:
        value = self.text(data, key, default, where)
        if isinstance(value, str) and value not in choices:
            self.problems.append(f"{where}{key} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def count(self, value: Any, what: str, minimum: int) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
            return value
        self.problems.append(f"{what} must be an integer >= {minimum}, got {value!r}")
        return minimum

    def counts(self, value: Any, what: str, minimum: int) -> tuple[int, ...]:
        if not isinstance(value, list) or not value:
            self.problems.append(f"{what} must be a non-empty list of integers >= {minimum}, got {value!r}")
            return ()
        before = len(self.problems)
        values = tuple(self.count(v, f"{what} entry", minimum) for v in value)
        return values if len(self.problems) == before else ()

    def names(self, value: Any, what: str) -> tuple[str, ...] | None:
        try:
            return _names(value, what)
        except ValueError as exc:
            self.problems.append(str(exc))
            return ()


def _names(value: Any, what: str) -> tuple[str, ...] | None:
    if value == "all":
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f'{what} must be "all" or a list of names, got {value!r}')
    for name in value:
        problem = name_problem(name)
        if problem is not None:
            raise ValueError(f"{what}: the name {name!r} {problem}")
    return tuple(value)


def _positive_seconds(reader: _Reader, value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return float(value)
    reader.problems.append(f"timing.max_seconds must be a positive number of seconds, got {value!r}")
    return 60.0


def _published(reader: _Reader, data: dict[str, Any]) -> str | None:
    from calobench.leaderboard.table import published_tables

    value = reader.text(data, "published", None)
    tables = published_tables()
    if isinstance(value, str) and tables and value not in tables:
        reader.problems.append(f"published table {value!r} is unknown{_close(value, tables)}")
    return value


def _model_settings(reader: _Reader, data: dict[str, Any]) -> dict[str, ModelSettings]:
    settings = {}
    for name, entry in reader.table(data.get("model", {}), "model", tuple(data.get("model") or ())).items():
        where = f"model.{name}."
        problem = name_problem(name)
        if problem is not None:
            reader.problems.append(f"[model.{name}]: the model name {problem}")
        entry = reader.table(entry, f"model.{name}", MODEL_KEYS)
        preset = reader.choice(entry, "preset", None, PRESETS, where) if "preset" in entry else None
        overrides = entry.get("set", {})
        if not isinstance(overrides, dict):
            reader.problems.append(f"{where}set must be a table of config keys, got {overrides!r}")
            overrides = {}
        settings[name] = ModelSettings(preset=preset, overrides=dict(overrides))
    return settings


def _suite_from_dict(data: dict[str, Any], path: Path, reader: _Reader) -> Suite:
    """The suite ``data`` describes; its problems are collected in ``reader`` (the suite is then unusable)."""
    from calobench.metrics.presets import PRESETS as METRIC_PRESETS

    reader.table(data, "", SUITE_KEYS)
    timing = reader.table(data.get("timing", {}), "timing", TIMING_KEYS)
    name = reader.text(data, "name", None)
    if name is None:
        reader.problems.append("the required key name is missing")
    elif isinstance(name, str):
        check_name(name, "suite")  # a name that would be a path outside --root is refused at once
    dataset = reader.text(data, "dataset", None)
    if dataset is None:
        reader.problems.append("the required key dataset is missing")
    reference_showers = data.get("reference_showers")
    report_plots = data.get("report_plots", True)
    if not isinstance(report_plots, bool):
        reader.problems.append(f"report_plots must be true or false, got {report_plots!r}")
    suite = Suite(
        name=str(name),
        title=reader.text(data, "title", str(name)),
        dataset=str(dataset),
        models=reader.names(data.get("models", "all"), "models"),
        preset=reader.choice(data, "preset", "quick", PRESETS),
        metrics=reader.names(data.get("metrics", "all"), "metrics"),
        excluded_metrics=reader.names(data.get("exclude_metrics", []), "exclude_metrics") or (),
        metrics_preset=reader.choice(data, "metrics_preset", "quick", METRIC_PRESETS),
        seeds=reader.counts(data.get("seeds", [0]), "seeds", 0),
        timing_batch_sizes=reader.counts(timing.get("batch_sizes", [1, 100, 10000]), "timing.batch_sizes", 1),
        timing_repeats=reader.count(timing.get("repeats", 10), "timing.repeats", 1),
        timing_max_seconds=_positive_seconds(reader, timing.get("max_seconds", 60.0)),
        device=reader.text(data, "device", "auto"),
        reference_showers=(
            reader.count(reference_showers, "reference_showers", 1) if reference_showers is not None else None
        ),
        report_plots=bool(report_plots),
        published=_published(reader, data),
        model_settings=_model_settings(reader, data),
        path=path,
    )
    if len(set(suite.seeds)) != len(suite.seeds):
        reader.problems.append(f"seeds must not repeat, got {list(suite.seeds)}")
    return suite
