"""The in-memory shower container and the checks every shower array goes through.

A :class:`Showers` holds the incident energies (N,) and the voxel energies (N, n_voxels), both in
MeV, together with the :class:`~calobench.geometry.Geometry` that gives the voxels their meaning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from calobench.errors import ShowerFileError, VoxelCountError
from calobench.geometry import Geometry


def _first_index(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))


def check_shower_arrays(
    incident_energies: np.ndarray,
    energies: np.ndarray,
    geometry: Geometry,
    source: str = "showers",
    offset: int = 0,
    check_values: bool = True,
) -> None:
    """Raise :class:`ShowerFileError` with a precise message if the arrays are not valid showers.

    Checks: 2-D voxel array with the geometry's voxel count, one incident energy per shower,
    floating-point types, and (``check_values``) finite, non-negative voxel energies and finite,
    positive incident energies. ``offset`` is added to reported shower indices (chunked reads).
    """
    if energies.ndim != 2:
        raise ShowerFileError(
            f"{source}: voxel energies must be a 2-D array (showers, voxels), got shape {energies.shape}"
        )
    if energies.shape[1] != geometry.n_voxels:
        raise VoxelCountError(
            f"{source}: geometry {geometry.name} expects {geometry.n_voxels} voxels per shower, "
            f"found {energies.shape[1]}"
        )
    if incident_energies.ndim != 1:
        raise ShowerFileError(
            f"{source}: incident energies must be 1-D (or (N, 1) in a file), got shape {incident_energies.shape}"
        )
    if len(incident_energies) != len(energies):
        raise ShowerFileError(
            f"{source}: length mismatch: {len(incident_energies)} incident energies but {len(energies)} showers"
        )
    for what, array in (("voxel energies", energies), ("incident energies", incident_energies)):
        if array.dtype.kind != "f":
            raise ShowerFileError(f"{source}: {what} must be floating point (float32 or float64), got {array.dtype}")
    if not check_values or energies.size == 0:
        return
    minimum, maximum = energies.min(), energies.max()  # NaN and inf show in these; no mask unless bad
    if not (np.isfinite(minimum) and np.isfinite(maximum)):
        finite = np.isfinite(energies)
        count = int(energies.size - np.count_nonzero(finite))
        shower, voxel = _first_index(~finite)
        raise ShowerFileError(
            f"{source}: {count} voxel energies are NaN or inf (first at shower {shower + offset}, voxel {voxel}, "
            f"value {energies[shower, voxel]})"
        )
    if minimum < 0:
        count = int(np.count_nonzero(energies < 0))
        shower, voxel = _first_index(energies < 0)
        raise ShowerFileError(
            f"{source}: {count} voxel energies are negative (first at shower {shower + offset}, voxel {voxel}, "
            f"{energies[shower, voxel]:.6g} MeV; minimum {minimum:.6g} MeV); energies must be >= 0 MeV"
        )
    bad = ~np.isfinite(incident_energies) | (incident_energies <= 0)
    if bad.any():
        index = int(np.argmax(bad))
        raise ShowerFileError(
            f"{source}: {int(bad.sum())} incident energies are not finite and positive "
            f"(first at shower {index + offset}: {incident_energies[index]})"
        )


@dataclass
class Showers:
    """Showers of one geometry, energies in MeV.

    Attributes:
        incident_energies: (N,) incident particle energies in MeV.
        energies: (N, n_voxels) voxel energies in MeV (float32 or float64), flattened in the
            geometry's voxel order.
        geometry: the geometry the voxels belong to.
    """

    incident_energies: np.ndarray
    energies: np.ndarray
    geometry: Geometry

    def __post_init__(self) -> None:
        self.incident_energies = np.asarray(self.incident_energies)
        if self.incident_energies.ndim == 2 and self.incident_energies.shape[1] == 1:
            self.incident_energies = self.incident_energies[:, 0]
        self.energies = np.asarray(self.energies)
        check_shower_arrays(self.incident_energies, self.energies, self.geometry, check_values=False)

    def validate(self, source: str = "showers") -> "Showers":
        """Check values (finite, non-negative); returns self for chaining."""
        check_shower_arrays(self.incident_energies, self.energies, self.geometry, source=source)
        return self

    def __len__(self) -> int:
        return len(self.energies)

    def __getitem__(self, index: slice | np.ndarray | Sequence[int]) -> "Showers":
        if isinstance(index, (int, np.integer)):
            index = slice(int(index), int(index) + 1)
        return Showers(self.incident_energies[index], self.energies[index], self.geometry)

    @property
    def n_voxels(self) -> int:
        return self.energies.shape[1]

    def layer(self, layer_id: int) -> np.ndarray:
        """Voxel energies of one layer as (N, *layer shape)."""
        return self.geometry.layer_view(self.energies, layer_id)

    def layer_energies(self) -> np.ndarray:
        """(N, n_layers) energy per layer in MeV (float64)."""
        return self.geometry.layer_energies(self.energies)

    def total_energy(self) -> np.ndarray:
        """(N,) total deposited energy in MeV (float64)."""
        return self.energies.sum(axis=1, dtype=np.float64)

    def astype(self, dtype: np.dtype | type) -> "Showers":
        return Showers(self.incident_energies, self.energies.astype(dtype, copy=False), self.geometry)

    @classmethod
    def concatenate(cls, parts: Sequence["Showers"]) -> "Showers":
        if not parts:
            raise ShowerFileError("cannot concatenate an empty list of showers")
        geometry = parts[0].geometry
        for part in parts[1:]:
            if part.geometry != geometry:
                raise ShowerFileError(
                    f"cannot concatenate showers of geometries {geometry.name} and {part.geometry.name}"
                )
        return cls(
            np.concatenate([p.incident_energies for p in parts]), np.concatenate([p.energies for p in parts]), geometry
        )

    def split(self, fractions: Sequence[float], seed: int) -> list["Showers"]:
        """Random disjoint subsets with the given fractions of the showers (deterministic by seed)."""
        order = np.random.default_rng(seed).permutation(len(self))
        bounds = np.round(np.cumsum([0.0, *fractions]) * len(self)).astype(int)
        return [self[np.sort(order[a:b])] for a, b in zip(bounds[:-1], bounds[1:])]
