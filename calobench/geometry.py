"""Calorimeter geometries: layers, voxel counts, per-layer slices and voxel coordinates.

Two families are supported:

* cylindrical CaloChallenge geometries, built from a binning XML file
  (``<Bins><Bin pid name><Layer id r_edges n_bin_alpha/>``; arXiv 2410.21611). A layer's block of
  the flat voxel vector reshapes to ``(n_alpha, n_r)``: radial bin fastest, then angle, then layer.
  Voxel centres: ``r_c`` = midpoint of the radial bin, ``alpha_c = -pi + (j + 1/2) 2 pi / n_alpha``,
  "eta" = ``r_c cos(alpha_c)``, "phi" = ``r_c sin(alpha_c)`` (mm), each rounded in the last bit
  exactly as the CaloChallenge code computes it (:func:`_cylindrical_centres`).
* the Cartesian CaloGAN layout (Paganini, de Oliveira, Nachman, arXiv 1712.10321): three layers of
  3 x 96, 12 x 12 and 12 x 6 cells on a 480 mm x 480 mm face, flattened row-major per layer;
  "eta" is the cell-centre x and "phi" the cell-centre y (mm).

Everything that needs shape information asks the :class:`Geometry`.
"""

from __future__ import annotations

import functools
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from calobench.errors import GeometryError
from calobench.paths import binning_file
from calobench.textfiles import read_text

Kind = Literal["cylindrical", "cartesian"]

#: CaloGAN calorimeter face (mm), from the CaloGAN paper (arXiv 1712.10321).
CALOGAN_FACE_MM = 480.0
#: CaloGAN layer shapes (rows = y, columns = x).
CALOGAN_LAYER_SHAPES = ((3, 96), (12, 12), (12, 6))

#: Readout thresholds (MeV) applied before the high-level features, per the CaloChallenge protocol
#: (1 MeV for dataset 1, 0.5 keV / 0.033 = 15.15 keV for datasets 2 and 3). For CaloGAN the protocol
#: defines none; calobench uses CaloFlow's post-processing cut of 0.01 MeV (arXiv 2106.05285).
DS1_THRESHOLD_MEV = 1.0
DS23_THRESHOLD_MEV = 0.5e-3 / 0.033
CALOGAN_THRESHOLD_MEV = 0.01

_PARTICLE_FROM_PID = {22: "photon", 11: "electron", -11: "positron", 211: "pion", -211: "pion"}


@dataclass(frozen=True)
class Layer:
    """One instrumented layer.

    ``shape`` is ``(n_alpha, n_r)`` for cylindrical layers and ``(n_y, n_x)`` for Cartesian ones,
    the order in which the layer's voxels are flattened (last index fastest).
    """

    id: int
    shape: tuple[int, int]
    r_edges: tuple[float, ...] | None = None
    cell_size: tuple[float, float] | None = None

    @property
    def n_voxels(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def n_alpha(self) -> int:
        return self.shape[0]

    @property
    def n_r(self) -> int:
        return self.shape[1]

    def cartesian_cell_size(self) -> tuple[float, float]:
        """``(dy, dx)`` in mm of a Cartesian layer's cells (GeometryError if the layer has none)."""
        if self.cell_size is None:
            raise GeometryError(f"layer {self.id} has no cell_size; a Cartesian layer needs one")
        return self.cell_size


@dataclass(frozen=True)
class Geometry:
    """A calorimeter readout geometry.

    Attributes:
        name: short name, e.g. ``"ds1-photons"`` or the XML file stem for custom geometries.
        kind: ``"cylindrical"`` (CaloChallenge) or ``"cartesian"`` (CaloGAN).
        layers: the instrumented layers in file order (empty XML layers are dropped).
        particle: particle type named by the binning file (``photon``, ``pion``, ``electron``...).
        threshold: readout threshold in MeV used before computing high-level features,
            or ``None`` when the geometry does not define one.
    """

    name: str
    kind: Kind
    layers: tuple[Layer, ...]
    particle: str = "unknown"
    threshold: float | None = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not self.layers:
            raise GeometryError(f"geometry {self.name!r} has no instrumented layer")
        ids = [layer.id for layer in self.layers]
        if len(set(ids)) != len(ids):
            raise GeometryError(f"geometry {self.name!r} repeats layer ids: {ids}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_xml(
        cls, path: str | Path, particle: str | None = None, name: str | None = None, threshold: float | None = None
    ) -> "Geometry":
        """Build a cylindrical geometry from a CaloChallenge binning XML file.

        If the result equals one of the built-in geometries, that geometry's name and threshold are
        used unless given explicitly.
        """
        path = Path(path)
        text = read_text(path, "binning file", GeometryError)
        geometry = parse_binning_xml(text, particle=particle, name=name or path.stem, source=str(path))
        builtin = _match_builtin(geometry)
        if builtin is not None:
            geometry = Geometry(
                name=name or builtin.name,
                kind=builtin.kind,
                layers=builtin.layers,
                particle=builtin.particle,
                threshold=builtin.threshold,
            )
        if threshold is not None:
            geometry = geometry.with_threshold(threshold)
        return geometry

    @classmethod
    def calogan(cls) -> "Geometry":
        """The CaloGAN layout: 3 x 96, 12 x 12 and 12 x 6 cells (504 voxels) on a 480 mm face."""
        layers = tuple(
            Layer(id=i, shape=shape, cell_size=(CALOGAN_FACE_MM / shape[0], CALOGAN_FACE_MM / shape[1]))
            for i, shape in enumerate(CALOGAN_LAYER_SHAPES)
        )
        return cls(name="calogan", kind="cartesian", layers=layers, particle="any", threshold=CALOGAN_THRESHOLD_MEV)

    def with_threshold(self, threshold: float) -> "Geometry":
        """A copy with another readout threshold (MeV)."""
        if not (threshold >= 0 and math.isfinite(threshold)):
            raise GeometryError(f"threshold must be a finite energy >= 0 MeV, got {threshold}")
        return Geometry(self.name, self.kind, self.layers, self.particle, float(threshold))

    # ------------------------------------------------------------------ shape information
    @property
    def n_voxels(self) -> int:
        return sum(layer.n_voxels for layer in self.layers)

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def layer_ids(self) -> tuple[int, ...]:
        return tuple(layer.id for layer in self.layers)

    @property
    def layer_slices(self) -> tuple[slice, ...]:
        """Slice of the flat voxel vector belonging to each layer, in layer order."""
        if "slices" not in self._cache:
            slices, start = [], 0
            for layer in self.layers:
                slices.append(slice(start, start + layer.n_voxels))
                start += layer.n_voxels
            self._cache["slices"] = tuple(slices)
        return self._cache["slices"]

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return tuple(layer.n_voxels for layer in self.layers)

    def layer_index(self, layer_id: int) -> int:
        """Position in :attr:`layers` of the layer with the given id."""
        for index, layer in enumerate(self.layers):
            if layer.id == layer_id:
                return index
        raise GeometryError(f"geometry {self.name!r} has no layer {layer_id}; its layers are {list(self.layer_ids)}")

    def layer_slice(self, layer_id: int) -> slice:
        return self.layer_slices[self.layer_index(layer_id)]

    def layer_shape(self, layer_id: int) -> tuple[int, int]:
        return self.layers[self.layer_index(layer_id)].shape

    def binned_in_angle(self, layer_id: int) -> bool:
        """Whether the layer resolves a second transverse coordinate (eta/phi centres are defined).

        Cylindrical layers need more than one angular bin; CaloGAN layers are 2-D images.
        """
        layer = self.layers[self.layer_index(layer_id)]
        return self.kind == "cartesian" or layer.n_alpha > 1

    def layer_view(self, voxels: np.ndarray, layer_id: int) -> np.ndarray:
        """View of one layer of ``voxels`` (..., n_voxels) as (..., *layer shape)."""
        layer = self.layers[self.layer_index(layer_id)]
        block = voxels[..., self.layer_slice(layer_id)]
        return block.reshape(*voxels.shape[:-1], *layer.shape)

    def layer_energies(self, voxels: np.ndarray) -> np.ndarray:
        """Energy per layer, shape (..., n_layers), summed in float64."""
        voxels = np.asarray(voxels)
        return np.stack([voxels[..., s].sum(axis=-1, dtype=np.float64) for s in self.layer_slices], axis=-1)

    # ------------------------------------------------------------------ coordinates (mm, rad)
    @property
    def voxel_layer(self) -> np.ndarray:
        """Index into :attr:`layers` of every voxel, shape (n_voxels,)."""
        return self._coordinates()["layer"]

    @property
    def voxel_r(self) -> np.ndarray:
        return self._coordinates()["r"]

    @property
    def voxel_alpha(self) -> np.ndarray:
        return self._coordinates()["alpha"]

    @property
    def voxel_eta(self) -> np.ndarray:
        """The "eta" coordinate of each voxel centre, r cos(alpha) (mm)."""
        return self._coordinates()["eta"]

    @property
    def voxel_phi(self) -> np.ndarray:
        """The "phi" coordinate of each voxel centre, r sin(alpha) (mm)."""
        return self._coordinates()["phi"]

    def _coordinates(self) -> dict[str, np.ndarray]:
        if "coords" not in self._cache:
            parts: dict[str, list[np.ndarray]] = {k: [] for k in ("layer", "r", "alpha", "eta", "phi")}
            for index, layer in enumerate(self.layers):
                if self.kind == "cylindrical":
                    r, alpha, eta, phi = _cylindrical_centres(layer)
                else:
                    dy, dx = layer.cell_size  # type: ignore[misc]
                    half = CALOGAN_FACE_MM / 2.0
                    y_centres = -half + (np.arange(layer.shape[0]) + 0.5) * dy
                    x_centres = -half + (np.arange(layer.shape[1]) + 0.5) * dx
                    phi, eta = np.meshgrid(y_centres, x_centres, indexing="ij")
                    r, alpha = np.hypot(eta, phi), np.arctan2(phi, eta)
                parts["layer"].append(np.full(layer.n_voxels, index, dtype=np.int64))
                for key, value in (("r", r), ("alpha", alpha), ("eta", eta), ("phi", phi)):
                    parts[key].append(value.reshape(-1))
            coords = {key: np.concatenate(values) for key, values in parts.items()}
            for value in coords.values():
                value.setflags(write=False)
            self._cache["coords"] = coords
        return self._cache["coords"]

    def describe(self) -> str:
        """One line per layer: id, shape and voxel count."""
        lines = [f"{self.name}: {self.kind}, {self.n_layers} layers, {self.n_voxels} voxels"]
        for layer in self.layers:
            lines.append(f"  layer {layer.id:>2}: {layer.shape[0]} x {layer.shape[1]} = {layer.n_voxels}")
        return "\n".join(lines)


def _cylindrical_centres(layer: Layer) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(r, alpha, eta, phi) of a cylindrical layer's voxel centres, flattened angle-major, rounded
    exactly as the CaloChallenge code rounds them (CaloChallenge/homepage code/XMLHandler.py and
    HighLevelFeatures.py), because a centre of energy that lands on a histogram edge falls on the
    side its last bit decides:

    * ``r`` (the centre of energy and width in r): ``(r_i + r_{i+1}) * 0.5``;
    * ``alpha``: the midpoints ``a_j + (a_{j+1} - a_j) / 2`` of ``linspace(-pi, pi, n_alpha + 1)``;
    * ``eta`` = ``r' cos(alpha)``, ``phi`` = ``r' sin(alpha)`` with the radial midpoint
      ``r' = r_i + (r_{i+1} - r_i) / 2`` (XMLHandler's, which can differ from ``r`` in the last bit).
    """
    edges = np.asarray(layer.r_edges, dtype=np.float64)
    n_alpha, n_r = layer.shape
    r_centres = (edges[:-1] + edges[1:]) * 0.5
    r_midpoints = edges[:-1] + (edges[1:] - edges[:-1]) / 2
    alpha_edges = np.linspace(-math.pi, math.pi, n_alpha + 1)
    alpha_centres = alpha_edges[:-1] + (alpha_edges[1:] - alpha_edges[:-1]) / 2
    alpha = np.repeat(alpha_centres, n_r)
    r_prime = np.tile(r_midpoints, n_alpha)
    return np.tile(r_centres, n_alpha), alpha, r_prime * np.cos(alpha), r_prime * np.sin(alpha)


# ---------------------------------------------------------------------- XML parsing
def parse_binning_xml(
    text: str, particle: str | None = None, name: str = "custom", source: str = "<string>"
) -> Geometry:
    """Parse the text of a CaloChallenge binning XML file into a cylindrical :class:`Geometry`.

    Layers with ``r_edges="0"`` have no voxels and are dropped. With several ``<Bin>`` elements,
    ``particle`` selects one by its ``name`` attribute.
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise GeometryError(f"{source} is not valid XML: {exc}") from exc
    bins = root.findall("Bin") if root.tag == "Bins" else ([root] if root.tag == "Bin" else [])
    if not bins:
        raise GeometryError(f"{source}: expected <Bins><Bin ...> elements, found root <{root.tag}>")
    if particle is not None:
        chosen = [b for b in bins if b.get("name") == particle]
        if not chosen:
            names = [b.get("name") for b in bins]
            raise GeometryError(f"{source}: no <Bin name={particle!r}>; available: {names}")
        bin_element = chosen[0]
    elif len(bins) == 1:
        bin_element = bins[0]
    else:
        names = [b.get("name") for b in bins]
        raise GeometryError(f"{source} holds {len(bins)} <Bin> elements {names}; choose one with particle=")

    layers: list[Layer] = []
    for element in bin_element.findall("Layer"):
        layers_so_far = len(layers)
        layer = _parse_layer(element, source, layers_so_far)
        if layer is not None:
            layers.append(layer)
    if not layers:
        raise GeometryError(f"{source}: no layer with voxels (every r_edges is '0' or no <Layer> given)")
    pid_text = bin_element.get("pid")
    particle_name = bin_element.get("name") or "unknown"
    if pid_text is not None:
        try:
            particle_name = _PARTICLE_FROM_PID.get(int(pid_text), particle_name)
        except ValueError as exc:
            raise GeometryError(f"{source}: pid {pid_text!r} is not an integer") from exc
    return Geometry(name=name, kind="cylindrical", layers=tuple(layers), particle=particle_name)


def _parse_layer(element: ET.Element, source: str, position: int) -> Layer | None:
    where = f"{source}: <Layer> #{position}"
    try:
        layer_id = int(element.get("id", ""))
    except ValueError as exc:
        raise GeometryError(f"{where}: attribute id={element.get('id')!r} is not an integer") from exc
    where = f"{source}: layer {layer_id}"
    edges_text = element.get("r_edges")
    if edges_text is None:
        raise GeometryError(f"{where}: missing attribute r_edges")
    try:
        edges = tuple(float(v) for v in edges_text.replace(" ", "").split(",") if v != "")
    except ValueError as exc:
        raise GeometryError(f"{where}: r_edges={edges_text!r} is not a comma-separated list of numbers") from exc
    if len(edges) <= 1:
        return None
    if not all(math.isfinite(e) for e in edges) or edges[0] < 0:
        raise GeometryError(f"{where}: r_edges must be finite and start at >= 0 mm, got {edges_text!r}")
    if any(b <= a for a, b in zip(edges, edges[1:])):
        raise GeometryError(f"{where}: r_edges must be strictly increasing, got {edges_text!r}")
    try:
        n_alpha = int(element.get("n_bin_alpha", "1"))
    except ValueError as exc:
        raise GeometryError(f"{where}: n_bin_alpha={element.get('n_bin_alpha')!r} is not an integer") from exc
    if n_alpha < 1:
        raise GeometryError(f"{where}: n_bin_alpha must be >= 1, got {n_alpha}")
    return Layer(id=layer_id, shape=(n_alpha, len(edges) - 1), r_edges=edges)


# ---------------------------------------------------------------------- built-in geometries
_BUILTIN_XML = {
    "ds1-photons": ("binning_dataset_1_photons.xml", DS1_THRESHOLD_MEV),
    "ds1-pions": ("binning_dataset_1_pions.xml", DS1_THRESHOLD_MEV),
    "ds2": ("binning_dataset_2.xml", DS23_THRESHOLD_MEV),
    "ds3": ("binning_dataset_3.xml", DS23_THRESHOLD_MEV),
}
BUILTIN_GEOMETRIES: tuple[str, ...] = (*_BUILTIN_XML, "calogan")


@functools.cache
def builtin_geometry(name: str) -> Geometry:
    """One of the shipped geometries: ``ds1-photons``, ``ds1-pions``, ``ds2``, ``ds3``, ``calogan``."""
    if name == "calogan":
        return Geometry.calogan()
    if name not in _BUILTIN_XML:
        from calobench.registry import suggestion_text

        raise GeometryError(f"unknown geometry {name!r}{suggestion_text(name, BUILTIN_GEOMETRIES)}")
    filename, threshold = _BUILTIN_XML[name]
    path = binning_file(filename)
    geometry = parse_binning_xml(path.read_text(), name=name, source=str(path))
    return Geometry(
        name=name, kind="cylindrical", layers=geometry.layers, particle=geometry.particle, threshold=threshold
    )


def _match_builtin(geometry: Geometry) -> Geometry | None:
    for name in _BUILTIN_XML:
        candidate = builtin_geometry(name)
        if candidate.layers == geometry.layers:
            return candidate
    return None


def geometries_with_voxel_count(n_voxels: int) -> list[Geometry]:
    """The built-in geometries with exactly ``n_voxels`` voxels."""
    return [g for g in map(builtin_geometry, BUILTIN_GEOMETRIES) if g.n_voxels == n_voxels]


def detect_geometry(n_voxels: int) -> Geometry:
    """The built-in geometry with ``n_voxels`` voxels, if exactly one matches."""
    matches = geometries_with_voxel_count(n_voxels)
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(f"{g.name} ({g.n_voxels})" for g in map(builtin_geometry, BUILTIN_GEOMETRIES))
    if not matches:
        raise GeometryError(
            f"no known geometry has {n_voxels} voxels (known: {known}); pass the binning XML with --geometry"
        )
    names = ", ".join(g.name for g in matches)
    raise GeometryError(f"{n_voxels} voxels match several geometries ({names}); choose one explicitly")


def resolve_geometry(spec: "str | Path | Geometry") -> Geometry:
    """A geometry from a built-in name, a binning XML path, or a Geometry (returned as is)."""
    if isinstance(spec, Geometry):
        return spec
    text = str(spec)
    if text in BUILTIN_GEOMETRIES:
        return builtin_geometry(text)
    path = Path(text)
    if path.suffix.lower() == ".xml" or path.exists():
        return Geometry.from_xml(path)
    return builtin_geometry(text)  # raises with suggestions
