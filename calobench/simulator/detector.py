"""Detector descriptions for the simulator: media, a stack of slabs along the shower axis, and the
readout geometry whose layers some of the slabs are.

A sampling calorimeter is treated as an effective homogeneous medium with a sampling fraction
(Grindhammer & Peters, hep-ex/0001020). Every slab has a thickness in radiation lengths X0 (the
depth coordinate of electromagnetic showers) and in nuclear interaction lengths lambda_int (that of
hadronic showers); a slab without ``layer`` is passive (material in front, cryostats): energy
deposited there is lost, like energy beyond the last slab or outside the outer radial bin.

The description is the ``[simulator]`` table of a synthetic data-set card::

    [simulator]
    shower_medium = "pb-lar"          # whose Z and Ec set the GFlash parameters
    readout_threshold_mev = 0.1       # in file units (sampling fraction divided out)
    spot_energy_shape = 1.0           # Gamma shape of the hits' energies; "inf" = equal spots
    max_step_x0 = 1.0                 # longitudinal integration step inside thick layers
    [simulator.media.pb-lar]
    z = 82.0
    x0_mm = 19.0
    moliere_radius_mm = 37.0
    lambda_int_mm = 390.0
    sampling_fraction = 0.2
    mip_mev_per_x0 = 8.3
    [[simulator.slabs]]
    name = "EM middle"
    medium = "pb-lar"
    thickness_x0 = 16.0               # or thickness_lambda
    layer = 2                         # the geometry layer it is (omit: passive)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from calobench.errors import ConfigError
from calobench.geometry import Geometry, Layer, builtin_geometry
from calobench.simulator.gflash import critical_energy_from_moliere

if TYPE_CHECKING:
    from calobench.formats import Format

Particle = Literal["photon", "electron", "positron", "pion"]
PARTICLES: tuple[str, ...] = ("photon", "electron", "positron", "pion")
EM_PARTICLES: tuple[str, ...] = ("photon", "electron", "positron")
Statistics = Literal["poisson", "multinomial"]


@dataclass(frozen=True)
class Medium:
    """An effective (homogeneous) medium.

    Attributes:
        name: key used by slabs.
        z: effective atomic number (GFlash parameters, N_spot).
        x0_mm: radiation length in mm.
        moliere_radius_mm: Moliere radius in mm (radial scale of EM showers).
        lambda_int_mm: nuclear interaction length in mm (hadronic showers).
        sampling_fraction: visible fraction of the deposited energy (1 for homogeneous media);
            the files divide it out.
        spot_fraction: fraction of the N_spot spots that are seen (GFlash: the sampling fraction,
            the default). A card may set the value that reproduces the calorimeter's measured
            stochastic term a/sqrt(E): ``spot_fraction = 1 / (a^2 93 ln Z)``.
        mip_mev_per_x0: energy a minimum-ionizing particle leaves per X0, in file units
            (about 1.3 MeV per g/cm2 of absorber).
    """

    name: str
    z: float
    x0_mm: float
    moliere_radius_mm: float
    lambda_int_mm: float = math.inf
    sampling_fraction: float = 1.0
    mip_mev_per_x0: float = 0.0
    spot_fraction: float | None = None

    def __post_init__(self) -> None:
        if self.spot_fraction is None:
            object.__setattr__(self, "spot_fraction", self.sampling_fraction)
        for key in ("z", "x0_mm", "moliere_radius_mm", "lambda_int_mm"):
            value = getattr(self, key)
            if not value > 0:
                raise ConfigError(f"medium {self.name!r}: {key} must be > 0, got {value}")
        for key in ("sampling_fraction", "spot_fraction"):
            value = getattr(self, key)
            if not 0 < value <= 1:
                raise ConfigError(f"medium {self.name!r}: {key} must be in (0, 1], got {value}")
        if not self.mip_mev_per_x0 >= 0:
            raise ConfigError(f"medium {self.name!r}: mip_mev_per_x0 must be >= 0, got {self.mip_mev_per_x0}")

    @property
    def critical_energy_mev(self) -> float:
        """Ec such that R_M = X0 * 21 MeV / Ec."""
        return critical_energy_from_moliere(self.x0_mm, self.moliere_radius_mm)

    @property
    def lambda_in_x0(self) -> float:
        return self.lambda_int_mm / self.x0_mm


@dataclass(frozen=True)
class Slab:
    """A slab of one medium; ``layer`` is the id of the readout layer it is, or None (passive)."""

    name: str
    medium: str
    thickness_x0: float
    layer: int | None = None


@dataclass(frozen=True)
class Steps:
    """Longitudinal integration steps (pieces of the instrumented slabs), ordered by layer.

    Arrays of shape (S,); the steps of layer ``i`` (index into ``geometry.layers``) are
    ``layer_start[i]:layer_start[i + 1]``.
    """

    layer_index: np.ndarray
    x_lo: np.ndarray
    x_hi: np.ndarray
    l_lo: np.ndarray
    l_hi: np.ndarray
    moliere_mm: np.ndarray
    lambda_mm: np.ndarray
    spot_fraction: np.ndarray
    layer_start: np.ndarray

    def bounds(self, coordinate: str) -> tuple[np.ndarray, np.ndarray]:
        return (self.x_lo, self.x_hi) if coordinate == "x0" else (self.l_lo, self.l_hi)

    def __len__(self) -> int:
        return len(self.layer_index)


@dataclass(frozen=True)
class LayerGroup:
    """Layers with the same readout shape, processed together; ``voxels`` (L, *shape) are the flat
    voxel indices of each layer's cells."""

    layers: np.ndarray
    steps: np.ndarray
    step_layer_start: np.ndarray
    template: Layer
    voxels: np.ndarray


@dataclass(frozen=True)
class Detector:
    """A calorimeter as the simulator sees it: slabs of media in front of and behind each other,
    a readout geometry, the particle, and the readout conventions of the data set.

    Attributes:
        name: detector name (the synthetic data set's name).
        geometry: the readout geometry.
        particle: photon, electron, positron or pion.
        media: media by name.
        slabs: slabs in depth order (the particle enters the first one at r = 0, perpendicular).
        shower_medium: the medium whose Z and Ec set the GFlash parameters.
        threshold_mev: readout threshold in file units; smaller voxels are written as 0.
        spot_energy_shape: Gamma shape of the energy of one hit (inf: equal-energy spots, as in
            GFlash). A finite shape s gives hits a Landau-like spread; the hit count is raised by
            (1 + 1/s) so that the total fluctuation of N_spot equal spots is kept.
        max_step_x0: longest integration step inside a thick layer (X0).
        e_over_h: pions: ratio of the electromagnetic to the hadronic response (> 1).
        hadronic_hits_per_gev: pions: hits per GeV of visible hadronic energy (sampling and
            intrinsic fluctuations of the hadronic component).
        format: the data set's file format ("calochallenge" or "calogan").
    """

    name: str
    geometry: Geometry
    particle: str
    media: Mapping[str, Medium] = field(hash=False)
    slabs: tuple[Slab, ...]
    shower_medium: str
    threshold_mev: float = 0.0
    spot_energy_shape: float = math.inf
    max_step_x0: float = 1.0
    e_over_h: float = 1.3
    hadronic_hits_per_gev: float = 25.0
    format: Format = "calochallenge"
    description: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        where = f"detector {self.name!r}"
        if self.particle not in PARTICLES:
            raise ConfigError(f"{where}: particle must be one of {PARTICLES}, got {self.particle!r}")
        if self.shower_medium not in self.media:
            raise ConfigError(
                f"{where}: shower_medium {self.shower_medium!r} is not among its media {list(self.media)}"
            )
        if not (self.spot_energy_shape > 0 and self.max_step_x0 > 0 and self.threshold_mev >= 0):
            raise ConfigError(f"{where}: spot_energy_shape and max_step_x0 must be > 0 and the threshold >= 0")
        if not (self.e_over_h >= 1 and self.hadronic_hits_per_gev > 0):
            raise ConfigError(f"{where}: e_over_h must be >= 1 and hadronic_hits_per_gev > 0")
        if not self.slabs:
            raise ConfigError(f"{where}: has no slabs")
        ids = set(self.geometry.layer_ids)
        seen: set[int] = set()
        for slab in self.slabs:
            if slab.medium not in self.media:
                raise ConfigError(f"{where}: slab {slab.name!r} uses unknown medium {slab.medium!r}")
            if not slab.thickness_x0 > 0:
                raise ConfigError(f"{where}: slab {slab.name!r} must have a positive thickness")
            if slab.layer is not None:
                if slab.layer not in ids:
                    raise ConfigError(
                        f"{where}: slab {slab.name!r} is layer {slab.layer}, which geometry "
                        f"{self.geometry.name} does not have (layers {sorted(ids)})"
                    )
                if slab.layer in seen:
                    raise ConfigError(f"{where}: layer {slab.layer} is given by more than one slab")
                seen.add(slab.layer)
        missing = ids - seen
        if missing:
            raise ConfigError(f"{where}: no slab for readout layer(s) {sorted(missing)}")
        if self.statistics == "multinomial" and self.particle not in EM_PARTICLES:
            raise ConfigError(
                f"{where}: homogeneous detectors (every instrumented medium sees all its spots) "
                "are implemented for electromagnetic showers only"
            )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(
        cls,
        name: str,
        geometry: Geometry | str,
        particle: str,
        config: Mapping[str, Any],
        format: Format = "calochallenge",
    ) -> "Detector":
        """Build from the ``[simulator]`` table of a card (see the module docstring)."""
        geometry = builtin_geometry(geometry) if isinstance(geometry, str) else geometry
        where = f"detector {name!r}"
        try:
            media = {
                key: Medium(name=key, **{k: float(v) for k, v in value.items()})
                for key, value in config["media"].items()
            }
            slabs: list[Slab] = []
            for entry in config["slabs"]:
                entry = dict(entry)
                if entry.get("medium") not in media:
                    raise ConfigError(
                        f"{where}: slab {entry.get('name')!r} uses unknown medium "
                        f"{entry.get('medium')!r}; media: {', '.join(media)}"
                    )
                medium = media[entry["medium"]]
                if ("thickness_x0" in entry) == ("thickness_lambda" in entry):
                    raise ConfigError(
                        f"{where}: slab {entry.get('name')!r} needs exactly one of thickness_x0 and thickness_lambda"
                    )
                thickness = (
                    float(entry["thickness_x0"])
                    if "thickness_x0" in entry
                    else float(entry["thickness_lambda"]) * medium.lambda_in_x0
                )
                layer = entry.get("layer")
                slabs.append(
                    Slab(
                        str(entry.get("name", f"slab {len(slabs)}")),
                        entry["medium"],
                        thickness,
                        None if layer is None else int(layer),
                    )
                )
            return cls(
                name=name,
                geometry=geometry,
                particle=particle,
                media=media,
                slabs=tuple(slabs),
                shower_medium=str(config["shower_medium"]),
                threshold_mev=float(config.get("readout_threshold_mev", geometry.threshold or 0.0)),
                spot_energy_shape=float(config.get("spot_energy_shape", math.inf)),
                max_step_x0=float(config.get("max_step_x0", 1.0)),
                e_over_h=float(config.get("e_over_h", 1.3)),
                hadronic_hits_per_gev=float(config.get("hadronic_hits_per_gev", 25.0)),
                format=format,
                description=dict(config),
            )
        except KeyError as exc:
            raise ConfigError(f"{where}: the simulator description lacks {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: malformed simulator description: {exc}") from exc

    def with_particle(self, particle: str) -> "Detector":
        """The same detector for another particle (e.g. photons in the DS1 pion geometry)."""
        return replace(self, particle=particle, name=f"{self.name}[{particle}]")

    # ------------------------------------------------------------------ derived quantities
    @property
    def medium(self) -> Medium:
        """The shower medium (GFlash parameters)."""
        return self.media[self.shower_medium]

    @property
    def hit_factor(self) -> float:
        """Hits per spot, (1 + 1/s) for hit energies with Gamma shape s."""
        return 1.0 + 1.0 / self.spot_energy_shape

    @cached_property
    def statistics(self) -> str:
        """ "multinomial" when every instrumented medium sees all its spots (homogeneous media: a
        fixed number of spots), else "poisson" (spots thinned by the spot fraction)."""
        seen = {self.media[s.medium].spot_fraction for s in self.slabs if s.layer is not None}
        return "multinomial" if seen == {1.0} else "poisson"

    @cached_property
    def slab_x_edges(self) -> np.ndarray:
        """Depth of the slab boundaries in X0, shape (K + 1,)."""
        return np.concatenate([[0.0], np.cumsum([s.thickness_x0 for s in self.slabs])])

    @cached_property
    def slab_l_edges(self) -> np.ndarray:
        """Depth of the slab boundaries in interaction lengths, shape (K + 1,)."""
        thick = [s.thickness_x0 / self.media[s.medium].lambda_in_x0 for s in self.slabs]
        return np.concatenate([[0.0], np.cumsum(thick)])

    @cached_property
    def slab_mip_mev(self) -> np.ndarray:
        """Mean MIP deposit of each slab crossed completely (file units), shape (K,)."""
        return np.array([s.thickness_x0 * self.media[s.medium].mip_mev_per_x0 for s in self.slabs])

    @cached_property
    def slab_layer_index(self) -> np.ndarray:
        """Index into ``geometry.layers`` of each slab, -1 for passive slabs, shape (K,)."""
        return np.array([-1 if s.layer is None else self.geometry.layer_index(s.layer) for s in self.slabs])

    def lambda_to_x0(self, depth_lambda: np.ndarray) -> np.ndarray:
        """Convert depths in interaction lengths to depths in X0 (piecewise linear over the slabs)."""
        x_edges, l_edges = self.slab_x_edges, self.slab_l_edges
        depth = np.asarray(depth_lambda, dtype=np.float64)
        inside = np.interp(depth, l_edges, x_edges)
        # behind the last slab continue with its ratio (nothing is deposited there anyway)
        ratio = (x_edges[-1] - x_edges[-2]) / (l_edges[-1] - l_edges[-2])
        return np.where(depth > l_edges[-1], x_edges[-1] + (depth - l_edges[-1]) * ratio, inside)

    @cached_property
    def steps(self) -> Steps:
        """The instrumented slabs cut into steps of at most ``max_step_x0``, ordered by layer."""
        rows: list[tuple[int, float, float, float, float, Medium]] = []
        for k, slab in enumerate(self.slabs):
            if slab.layer is None:
                continue
            medium = self.media[slab.medium]
            n = max(1, math.ceil(slab.thickness_x0 / self.max_step_x0 - 1e-9))
            x = np.linspace(self.slab_x_edges[k], self.slab_x_edges[k + 1], n + 1)
            lam = np.linspace(self.slab_l_edges[k], self.slab_l_edges[k + 1], n + 1)
            index = self.geometry.layer_index(slab.layer)
            rows.extend((index, x[i], x[i + 1], lam[i], lam[i + 1], medium) for i in range(n))
        rows.sort(key=lambda row: (row[0], row[1]))
        layer_index = np.array([r[0] for r in rows])
        start = np.searchsorted(layer_index, np.arange(self.geometry.n_layers + 1))
        return Steps(
            layer_index=layer_index,
            x_lo=np.array([r[1] for r in rows]),
            x_hi=np.array([r[2] for r in rows]),
            l_lo=np.array([r[3] for r in rows]),
            l_hi=np.array([r[4] for r in rows]),
            moliere_mm=np.array([r[5].moliere_radius_mm for r in rows]),
            lambda_mm=np.array([r[5].lambda_int_mm for r in rows]),
            spot_fraction=np.array([r[5].spot_fraction for r in rows]),
            layer_start=start,
        )

    @cached_property
    def layer_groups(self) -> tuple[LayerGroup, ...]:
        """Layers grouped by identical readout shape (all 45 layers of DS2 form one group)."""
        keys: dict[tuple, list[int]] = {}
        for index, layer in enumerate(self.geometry.layers):
            keys.setdefault((layer.shape, layer.r_edges, layer.cell_size), []).append(index)
        steps = self.steps
        groups = []
        for indices in keys.values():
            template = self.geometry.layers[indices[0]]
            step_ranges = [np.arange(steps.layer_start[i], steps.layer_start[i + 1]) for i in indices]
            counts = np.array([len(r) for r in step_ranges])
            voxels = np.stack(
                [
                    np.arange(self.geometry.layer_slices[i].start, self.geometry.layer_slices[i].stop).reshape(
                        template.shape
                    )
                    for i in indices
                ]
            )
            groups.append(
                LayerGroup(
                    layers=np.array(indices),
                    steps=np.concatenate(step_ranges),
                    step_layer_start=np.concatenate([[0], np.cumsum(counts)[:-1]]),
                    template=template,
                    voxels=voxels,
                )
            )
        return tuple(groups)

    def summary(self) -> str:
        """A human-readable description of the slab stack."""
        lines = [
            f"detector {self.name}: {self.particle} in geometry {self.geometry.name}; shower medium "
            f"{self.shower_medium} (Z={self.medium.z:g}, X0={self.medium.x0_mm:g} mm, "
            f"R_M={self.medium.moliere_radius_mm:g} mm, Ec={self.medium.critical_energy_mev:.2f} MeV)"
        ]
        for k, slab in enumerate(self.slabs):
            what = "passive" if slab.layer is None else f"layer {slab.layer}"
            lines.append(
                f"  {slab.name:<24} {what:<9} {slab.medium:<10} X0 {self.slab_x_edges[k]:7.2f}-"
                f"{self.slab_x_edges[k + 1]:7.2f}  lambda {self.slab_l_edges[k]:5.2f}-{self.slab_l_edges[k + 1]:5.2f}"
            )
        return "\n".join(lines)


def homogeneous_detector(
    medium: Medium,
    layer_x0: float,
    n_layers: int,
    r_edges_rm: "list[float] | np.ndarray",
    n_alpha: int = 1,
    particle: str = "photon",
    name: str = "homogeneous",
    max_step_x0: float = 1.0,
) -> Detector:
    """A homogeneous test calorimeter: ``n_layers`` layers of ``layer_x0`` each, radial bins given in
    Moliere radii (for physics tests of the parametrization)."""
    edges = tuple(float(r) * medium.moliere_radius_mm for r in r_edges_rm)
    layers = tuple(Layer(id=i, shape=(n_alpha, len(edges) - 1), r_edges=edges) for i in range(n_layers))
    geometry = Geometry(name=name, kind="cylindrical", layers=layers, particle=particle, threshold=0.0)
    slabs = tuple(Slab(f"layer {i}", medium.name, layer_x0, i) for i in range(n_layers))
    return Detector(
        name=name,
        geometry=geometry,
        particle=particle,
        media={medium.name: medium},
        slabs=slabs,
        shower_medium=medium.name,
        max_step_x0=max_step_x0,
    )


#: Lead (Grindhammer & Peters reference values): Z = 82, X0 = 5.6 mm, R_M = 16.0 mm (Ec ~ 7.4 MeV).
LEAD = Medium(
    "lead",
    z=82.0,
    x0_mm=5.6,
    moliere_radius_mm=16.0,
    lambda_int_mm=175.9,
    sampling_fraction=1.0,
    mip_mev_per_x0=1.3 * 6.37,
)
