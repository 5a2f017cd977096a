"""Opening the reference and generated showers of an evaluation, from any supported file.

The geometry comes from ``--dataset`` (the data set's geometry and threshold; its reference files
are the default reference), from ``--geometry`` (a built-in name or a binning XML file), or is
detected from the voxel count. Both files must have the same geometry; a mismatch is one clear
error naming both.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from calobench.errors import CalobenchError, GeometryError, ShowerFileError, VoxelCountError
from calobench.formats import open_showers
from calobench.geometry import Geometry, resolve_geometry
from calobench.metrics.scan import ShowerSource


class EvaluationInputError(CalobenchError):
    """The inputs of an evaluation do not fit together (geometries, options)."""


@dataclass
class EvaluationInputs:
    """Open shower sources and what they were opened as."""

    reference: ShowerSource
    generated: ShowerSource
    geometry: Geometry
    threshold: float
    dataset: str | None
    reference_files: list[str]
    generated_files: list[str]
    dataset_checksums: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        for source in (self.reference, self.generated):
            close = getattr(source, "close", None)
            if close is not None:
                close()


def _paths(parts: "list | str | Path") -> list[str]:
    items = parts if isinstance(parts, list) else [parts]
    return [str(p if isinstance(p, (str, Path)) else p[0]) for p in items]


def _describe(source: ShowerSource) -> str:
    return f"{source.geometry.name} ({source.geometry.n_voxels} voxels)"


@contextlib.contextmanager
def open_inputs(
    generated: "str | Path",
    reference: "str | Path | None" = None,
    *,
    dataset: str | None = None,
    geometry: "str | Path | Geometry | None" = None,
    threshold: float | None = None,
) -> Iterator[EvaluationInputs]:
    """Open both samples (context manager; the files are closed on exit).

    Args:
        generated: the generated shower file (CaloChallenge or CaloGAN format).
        reference: the reference file; default: the ``reference`` files of ``dataset``.
        dataset: a registered data-set name: sets geometry and threshold.
        geometry: built-in geometry name or binning XML (not together with ``dataset``).
        threshold: readout threshold in MeV (default: the geometry's, 0 if it has none).
    """
    if dataset is not None and geometry is not None:
        raise EvaluationInputError("give either --dataset or --geometry, not both (the data set fixes the geometry)")
    checksums: dict[str, str] = {}
    if dataset is not None:
        from calobench.datasets import ensure_files, get_dataset

        spec = get_dataset(dataset)
        geometry_object: Geometry | None = spec.geometry_object
        if reference is None:
            reference_parts: "list | str | Path" = ensure_files(spec, "reference")
            checksums = _dataset_checksums(spec)
        else:
            reference_parts = reference
    else:
        if reference is None:
            raise EvaluationInputError("no reference sample: give --reference FILE or --dataset NAME")
        reference_parts = reference
        geometry_object = resolve_geometry(geometry) if geometry is not None else None
    with contextlib.ExitStack() as stack:
        try:
            generated_source = open_showers(generated, geometry_object)
            stack.enter_context(generated_source)
        except ShowerFileError as exc:
            raise ShowerFileError(f"generated sample: {exc}") from exc
        chosen = geometry_object or generated_source.geometry
        try:
            reference_source = open_showers(reference_parts, chosen)
            stack.enter_context(reference_source)
        except VoxelCountError as exc:
            if geometry_object is None:
                raise EvaluationInputError(_mismatch(reference_parts, generated_source)) from exc
            raise ShowerFileError(f"reference sample: {exc}") from exc
        except ShowerFileError as exc:  # unreadable, truncated, malformed: say so, not "another geometry"
            raise ShowerFileError(f"reference sample: {exc}") from exc
        if reference_source.geometry.layers != generated_source.geometry.layers:
            raise EvaluationInputError(
                f"reference is {_describe(reference_source)} but generated is {_describe(generated_source)}; "
                "both samples must have the same geometry"
            )
        level = chosen.threshold if threshold is None else threshold
        if level is None:
            level = 0.0
        if not (level >= 0 and math.isfinite(level)):
            raise EvaluationInputError(f"threshold must be a finite number >= 0 MeV, got {level}")
        yield EvaluationInputs(
            reference_source,
            generated_source,
            chosen,
            float(level),
            dataset,
            _paths(reference_parts),
            _paths(generated),
            checksums,
        )


def _mismatch(reference_parts: "list | str | Path", generated_source: ShowerSource) -> str:
    """The message for a reference whose voxel count does not fit the generated file's geometry."""
    try:
        with open_showers(reference_parts) as detected:
            other = _describe(detected)
    except (ShowerFileError, GeometryError) as exc:
        other = f"unreadable as any known geometry ({exc})"
    return (
        f"reference is {other} but generated is {_describe(generated_source)}; both samples must have the same geometry"
    )


def _dataset_checksums(spec) -> dict[str, str]:
    from calobench.datasets.access import role_checksums

    try:
        return role_checksums(spec, "reference")
    except CalobenchError:
        return {}
