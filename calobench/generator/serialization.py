"""The ``generator.json`` file every saved calobench generator carries, and geometry (de)serialization.

A saved generator is a directory holding ``generator.json``::

    {"format": 1, "generator": "baseline-uncorrelated", "calobench_version": "0.1.0",
     "preset": "quick", "config": {...}, "geometry": {"name": "ds1-photons"}, "dataset": null,
     "n_parameters": 0, "state": {...}}

plus whatever weights the model needs (``weights.pt`` for torch models, loaded with
``weights_only=True``). The geometry is stored by name for the built-in geometries and in full
(layers, radial edges, cell sizes, threshold) otherwise, so that a model trained on a custom binning
XML loads without that file. :func:`load_generator` finds the class of a saved generator in the
plugin registry and calls its ``load``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from calobench import __version__
from calobench.atomic import write_json_atomic
from calobench.errors import CheckpointError, GeometryError
from calobench.generator.checkpoint import read_json
from calobench.geometry import BUILTIN_GEOMETRIES, Geometry, Layer, builtin_geometry

if TYPE_CHECKING:
    from calobench.generator.base import Generator

GENERATOR_FILE = "generator.json"
SAVE_FORMAT = 1


def geometry_to_dict(geometry: Geometry) -> dict[str, Any]:
    """``{"name": ...}`` for an unchanged built-in geometry, else a full JSON description."""
    if geometry.name in BUILTIN_GEOMETRIES and builtin_geometry(geometry.name) == geometry:
        return {"name": geometry.name}
    return {
        "name": geometry.name,
        "kind": geometry.kind,
        "particle": geometry.particle,
        "threshold": geometry.threshold,
        "layers": [
            {
                "id": layer.id,
                "shape": list(layer.shape),
                "r_edges": None if layer.r_edges is None else list(layer.r_edges),
                "cell_size": None if layer.cell_size is None else list(layer.cell_size),
            }
            for layer in geometry.layers
        ],
    }


def geometry_from_dict(data: dict[str, Any]) -> Geometry:
    """Inverse of :func:`geometry_to_dict`."""
    if "layers" not in data:
        return builtin_geometry(data["name"])
    try:
        layers = tuple(
            Layer(
                id=int(entry["id"]),
                shape=(int(entry["shape"][0]), int(entry["shape"][1])),
                r_edges=None if entry["r_edges"] is None else tuple(float(e) for e in entry["r_edges"]),
                cell_size=None if entry["cell_size"] is None else _float_pair(entry["cell_size"]),
            )
            for entry in data["layers"]
        )
        return Geometry(
            name=data["name"],
            kind=data["kind"],
            layers=layers,
            particle=data.get("particle", "unknown"),
            threshold=data.get("threshold"),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise GeometryError(f"malformed stored geometry: {type(exc).__name__}: {exc}") from exc


def _float_pair(values: Any) -> tuple[float, float]:
    """Two numbers as floats (ValueError unless there are exactly two)."""
    first, second = (float(v) for v in values)
    return first, second


def write_generator_json(directory: str | Path, generator: "Generator", state: dict[str, Any] | None = None) -> Path:
    """Write ``directory/generator.json`` atomically for ``generator``; ``state`` is model-specific JSON."""
    data = {
        "format": SAVE_FORMAT,
        "generator": type(generator).name,
        "class": f"{type(generator).__module__}:{type(generator).__qualname__}",
        "calobench_version": __version__,
        "preset": generator.preset,
        "config": generator.config,
        "geometry": geometry_to_dict(generator.geometry),
        "dataset": getattr(generator, "dataset", None),
        "n_parameters": int(generator.n_parameters()),
        "state": state or {},
    }
    return write_json_atomic(Path(directory) / GENERATOR_FILE, data)


def read_generator_json(directory: str | Path, expected: "type[Generator] | None" = None) -> dict[str, Any]:
    """Read ``directory/generator.json``; with ``expected``, check that it was saved by that generator."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"saved-model directory {directory} does not exist")
    data = read_json(directory / GENERATOR_FILE, what="saved-model description")
    if not isinstance(data, dict) or data.get("format") != SAVE_FORMAT or "generator" not in data:
        raise CheckpointError(
            f"{directory / GENERATOR_FILE} is not a calobench saved-model description (format {SAVE_FORMAT})"
        )
    if expected is not None and data["generator"] != expected.name:
        raise CheckpointError(f"{directory} holds a saved {data['generator']!r} model, not {expected.name!r}")
    data["geometry_object"] = geometry_from_dict(data["geometry"])
    return data


def construct_from_json(cls: "type[Generator]", data: dict[str, Any], device: str | None = None) -> "Generator":
    """``cls`` built with the preset, config, geometry and data set recorded in ``data``."""
    return cls(data["geometry_object"], data["config"], data["preset"], dataset=data.get("dataset"), device=device)


def load_generator(directory: str | Path, device: str | None = None) -> "Generator":
    """Load any saved generator: its class is looked up by name in the plugin registry."""
    from calobench.plugins import generators

    data = read_generator_json(directory)
    cls = generators().get(data["generator"])
    return cls.load(Path(directory), device=device)
