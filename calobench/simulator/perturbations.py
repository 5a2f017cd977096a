"""Named knobs that deliberately mis-model the simulator (multiplicative factors, 1 = nominal).

The metrics use samples made with one knob moved (``depth_scale=1.03``: depth of maximum +3 %) to
measure how sensitive each metric is to each kind of mis-modelling. On the command line:
``calobench simulate synthetic-ds2 --perturb depth_scale=1.03 --perturb spot_scale=0.8 ...``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from calobench.errors import ConfigError


@dataclass(frozen=True)
class Perturbation:
    """One knob: its name, what it multiplies, and the range of accepted factors."""

    name: str
    description: str
    minimum: float = 0.0
    maximum: float = math.inf


#: Every knob of the simulator, by name. All are multiplicative factors with nominal value 1.
PERTURBATIONS: dict[str, Perturbation] = {
    p.name: p
    for p in (
        Perturbation("depth_scale", "EM depth of maximum T (and the spots' T_spot): 1.03 = showers 3 % deeper"),
        Perturbation(
            "depth_fluctuation_scale", "shower-to-shower spreads sigma(ln T), sigma(ln alpha) of the EM profile"
        ),
        Perturbation(
            "spot_scale", "number of energy spots N_spot (EM) and hadronic hits: 0.8 = 20 % fewer, larger fluctuations"
        ),
        Perturbation("core_radius_scale", "EM radial core radius Rc"),
        Perturbation("tail_radius_scale", "EM radial tail radius Rt"),
        Perturbation("core_fraction_scale", "EM core probability p (clipped to at most 1)"),
        Perturbation(
            "sampling_fraction_scale",
            "true sampling fraction relative to the calibration that the file "
            "units divide out: 1.02 = response +2 %, 2 % more spots",
        ),
        Perturbation("energy_scale", "overall energy response (every deposit)"),
        Perturbation("threshold_scale", "readout threshold"),
        Perturbation(
            "em_fraction_scale",
            "pions: mean electromagnetic fraction f_em (clipped to [0.02, 0.98])",
            minimum=0.0,
            maximum=10.0,
        ),
        Perturbation("invisible_fraction_scale", "pions: mean invisible fraction of the hadronic energy (e/h)"),
        Perturbation("interaction_length_scale", "pions: nuclear interaction length (mean first-interaction depth)"),
        Perturbation("hadronic_depth_scale", "pions: depth of maximum of the hadronic component"),
        Perturbation("hadronic_radius_scale", "pions: core and tail radii of the hadronic component"),
    )
}


def check_perturbation(perturbation: Mapping[str, float] | None) -> dict[str, float]:
    """Validate knob names and values; returns a full mapping (every knob, defaults 1.0)."""
    values = {name: 1.0 for name in PERTURBATIONS}
    if not perturbation:
        return values
    for name, value in perturbation.items():
        if name not in PERTURBATIONS:
            from calobench.registry import suggestion_text

            raise ConfigError(
                f"unknown perturbation {name!r}{suggestion_text(name, list(PERTURBATIONS))} "
                "(`calobench simulate --help` lists them)"
            )
        try:
            factor = float(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"perturbation {name} must be a number (a multiplicative factor), got {value!r}"
            ) from None
        knob = PERTURBATIONS[name]
        if not (math.isfinite(factor) and knob.minimum < factor <= knob.maximum):
            raise ConfigError(
                f"perturbation {name}={value} is out of range: expected a finite factor in "
                f"({knob.minimum:g}, {knob.maximum:g}]"
            )
        values[name] = factor
    return values


def parse_perturbations(items: Iterable[str]) -> dict[str, float]:
    """Parse ``["depth_scale=1.03", "spot_scale=0.8"]`` into a mapping (checked)."""
    parsed: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"perturbation {item!r} must look like key=value, e.g. depth_scale=1.03")
        parsed[name.strip()] = value.strip()  # type: ignore[assignment]
    check_perturbation(parsed)
    return {k: float(v) for k, v in parsed.items()}


def describe_perturbations() -> str:
    """One line per knob, for help texts."""
    width = max(map(len, PERTURBATIONS))
    return "\n".join(f"  {p.name:<{width}}  {p.description}" for p in PERTURBATIONS.values())
