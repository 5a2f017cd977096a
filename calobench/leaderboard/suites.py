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

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calobench.errors import CalobenchError
from calobench.names import check_name, name_problem
from calobench.registry import suggestion_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


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
    """A suite by shipped name (``quick``) or from a TOML file path."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = suites_dir() / f"{name_or_path}.toml"
        if not path.is_file():
            raise SuiteError(
                f"unknown suite {str(name_or_path)!r}{suggestion_text(str(name_or_path), available_suites())}"
            )
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SuiteError(f"suite file {path} cannot be read: {exc}") from exc
    try:
        return _suite_from_dict(data, path)
    except (KeyError, TypeError, ValueError) as exc:
        raise SuiteError(f"suite file {path} is malformed: {type(exc).__name__}: {exc}") from exc


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


def _positive_seconds(value: Any) -> float:
    seconds = float(value)
    if not seconds > 0:
        raise ValueError(f"timing.max_seconds must be a positive number of seconds, got {value!r}")
    return seconds


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{what} must be true or false, got {value!r}")
    return value


def _suite_from_dict(data: dict[str, Any], path: Path) -> Suite:
    timing = data.get("timing", {})
    settings = {
        name: ModelSettings(preset=entry.get("preset"), overrides=dict(entry.get("set", {})))
        for name, entry in data.get("model", {}).items()
    }
    seeds = tuple(int(s) for s in data.get("seeds", [0]))
    if not seeds:
        raise ValueError("seeds must list at least one seed")
    reference_showers = data.get("reference_showers")
    return Suite(
        name=check_name(data["name"], "suite"),
        title=str(data.get("title", data["name"])),
        dataset=str(data["dataset"]),
        models=_names(data.get("models", "all"), "models"),
        preset=str(data.get("preset", "quick")),
        metrics=_names(data.get("metrics", "all"), "metrics"),
        excluded_metrics=_names(data.get("exclude_metrics", []), "exclude_metrics") or (),
        metrics_preset=str(data.get("metrics_preset", "quick")),
        seeds=seeds,
        timing_batch_sizes=tuple(int(b) for b in timing.get("batch_sizes", [1, 100, 10000])),
        timing_repeats=int(timing.get("repeats", 10)),
        timing_max_seconds=_positive_seconds(timing.get("max_seconds", 60.0)),
        device=str(data.get("device", "auto")),
        reference_showers=int(reference_showers) if reference_showers is not None else None,
        report_plots=_flag(data.get("report_plots", True), "report_plots"),
        published=data.get("published"),
        model_settings=settings,
        path=path,
    )
