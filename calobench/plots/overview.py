"""Overview plots of a shower sample: what ``calobench datasets show`` writes.

* ``average_shower.png``: mean energy per voxel, every layer drawn in its real geometry (polar
  bins for CaloChallenge layers, rectangular cells for CaloGAN), log colour scale;
* ``longitudinal_profile.png``: mean energy per layer / E_inc, per incident-energy group;
* ``etot_einc.png``: the E_tot / E_inc distribution per incident-energy group;
* ``voxel_spectrum.png``: the spectrum of non-zero voxel energies per incident-energy group;
* ``single_showers.png``: a few single showers at different incident energies.

Figures are drawn on Agg canvases (no pyplot state, no display needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import QuadMesh
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from calobench.atomic import check_output_dir, write_atomic
from calobench.errors import ConfigError
from calobench.geometry import CALOGAN_FACE_MM, Geometry
from calobench.showers import Showers

#: Showers plotted by default.
MAX_SHOWERS = 20000
#: Most incident-energy groups drawn in one figure.
MAX_GROUPS = 5
#: Most layers drawn per single shower when a geometry has many (DS2/DS3: 45).
MAX_SINGLE_LAYERS = 6


# ---------------------------------------------------------------------- input
def load_sample(source: "Showers | str | Path | Sequence", max_showers: int | None = None) -> tuple[Showers, str]:
    """Showers (at most ``max_showers``, spread over the whole file) and a label for titles.

    A file larger than ``max_showers`` is read in ten evenly spaced windows, so that files sorted by
    incident energy are still sampled across their whole spectrum. ``None`` means :data:`MAX_SHOWERS`.
    """
    max_showers = MAX_SHOWERS if max_showers is None else int(max_showers)
    if max_showers < 1:
        raise ConfigError(f"the number of showers to plot must be >= 1, got {max_showers}")
    if isinstance(source, Showers):
        return (source if len(source) <= max_showers else source[:max_showers]), "showers"
    from calobench.formats import open_showers

    with open_showers(source) as handle:
        label = Path(str(handle.path)).name if not isinstance(source, (list, tuple)) else str(handle.path)
        n = handle.n_showers
        if n <= max_showers:
            return handle.read(), label
        windows = min(10, max_showers)
        size = max_showers // windows
        starts = np.linspace(0, n - size, windows).astype(int)
        parts = [handle.read(int(s), int(s) + size) for s in starts]
    return Showers.concatenate(parts), label


def energy_groups(incident: np.ndarray, max_groups: int = MAX_GROUPS) -> list[tuple[str, np.ndarray]]:
    """(label, mask) of incident-energy groups: a spread of the discrete energies when there are at
    most 20 distinct values (dataset 1), else log-spaced bins."""
    distinct = np.unique(incident)
    if len(distinct) <= 20:
        chosen = distinct[np.unique(np.linspace(0, len(distinct) - 1, min(max_groups, len(distinct))).astype(int))]
        return [(_energy_label(e), incident == e) for e in chosen]
    edges = np.geomspace(incident.min(), incident.max() * (1 + 1e-9), max_groups + 1)
    groups = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (incident >= lo) & (incident < hi)
        if mask.any():
            groups.append((f"{_energy_label(lo)} - {_energy_label(hi)}", mask))
    return groups


def _energy_label(mev: float) -> str:
    if mev >= 1e6:
        return f"{mev / 1e6:.3g} TeV"
    if mev >= 1e3:
        return f"{mev / 1e3:.3g} GeV"
    return f"{mev:.3g} MeV"


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    write_atomic(path, lambda tmp: figure.savefig(tmp, dpi=110, format="png"))
    return path


# ---------------------------------------------------------------------- layer images
def _display_radius(edges: np.ndarray, radial_energy: np.ndarray, containment: float = 0.995) -> float:
    """Smallest outer bin edge holding ``containment`` of the layer's energy (at least 3 bins)."""
    total = radial_energy.sum()
    if total <= 0:
        return float(edges[-1])
    index = int(np.searchsorted(np.cumsum(radial_energy) / total, containment)) + 1
    return float(edges[min(max(index, 3), len(edges) - 1)])


def draw_layer(
    figure: Figure,
    position: tuple[int, int, int],
    geometry: Geometry,
    layer_index: int,
    values: np.ndarray,
    norm: LogNorm,
    title: str,
    full_extent: bool = False,
) -> QuadMesh:
    """Draw one layer's voxel values (flat, the layer's block) in its geometry; returns the artist."""
    layer = geometry.layers[layer_index]
    image = np.ma.masked_less_equal(values.reshape(layer.shape), 0.0)
    if geometry.kind == "cylindrical":
        axes = figure.add_subplot(*position, projection="polar")
        edges = np.asarray(layer.r_edges)
        # subdivide every angular bin so that rings are drawn round (and a single bin is drawable)
        split = max(1, 96 // layer.n_alpha)
        theta = np.linspace(-np.pi, np.pi, layer.n_alpha * split + 1)
        artist = axes.pcolormesh(
            theta, edges, np.repeat(image, split, axis=0).T, norm=norm, cmap="viridis", shading="flat"
        )
        r_max = float(edges[-1]) if full_extent else _display_radius(edges, values.reshape(layer.shape).sum(axis=0))
        axes.set_ylim(0, r_max)
        axes.set_xticks([])
        axes.tick_params(labelsize=6)
        axes.set_yticks([r_max])
        axes.set_yticklabels([f"{r_max:g} mm"])
        axes.grid(False)
    else:
        axes = figure.add_subplot(*position)
        dy, dx = layer.cartesian_cell_size()
        half = CALOGAN_FACE_MM / 2.0
        xs = -half + dx * np.arange(layer.shape[1] + 1)
        ys = -half + dy * np.arange(layer.shape[0] + 1)
        artist = axes.pcolormesh(xs, ys, image, norm=norm, cmap="viridis", shading="flat")
        axes.set_aspect("equal")
        axes.tick_params(labelsize=6)
        axes.set_xlabel("x [mm]", fontsize=7)
        axes.set_ylabel("y [mm]", fontsize=7)
    axes.set_title(title, fontsize=8)
    return artist


def _log_norm(values: np.ndarray) -> LogNorm:
    positive = values[values > 0]
    if positive.size == 0:
        return LogNorm(1e-3, 1.0)
    vmax = float(positive.max())
    return LogNorm(max(float(positive.min()), vmax * 1e-7), vmax)


def _grid(n: int, max_columns: int) -> tuple[int, int]:
    columns = min(n, max_columns)
    return -(-n // columns), columns


def plot_average_shower(showers: Showers, label: str) -> Figure:
    geometry = showers.geometry
    mean = showers.energies.mean(axis=0, dtype=np.float64)
    rows, columns = _grid(geometry.n_layers, 9 if geometry.n_layers > 9 else geometry.n_layers)
    size = 1.9 if geometry.n_layers > 9 else 3.0
    figure = Figure(figsize=(columns * size + 1.2, rows * size + 0.8))
    norm = _log_norm(mean)
    artist: QuadMesh | None = None
    for index, layer in enumerate(geometry.layers):
        block = mean[geometry.layer_slices[index]]
        artist = draw_layer(
            figure, (rows, columns, index + 1), geometry, index, block, norm, f"layer {layer.id}: {block.sum():.3g} MeV"
        )
    figure.suptitle(f"average shower, {label} ({len(showers)} showers, {geometry.name})", fontsize=10)
    figure.subplots_adjust(left=0.04, right=0.88, top=0.9, bottom=0.05, wspace=0.35, hspace=0.45)
    assert artist is not None  # a Geometry has at least one layer
    colorbar_axes = figure.add_axes((0.91, 0.15, 0.015, 0.7))
    figure.colorbar(artist, cax=colorbar_axes, label="mean energy per voxel [MeV]")
    return figure


def plot_single_showers(showers: Showers, label: str, n_showers: int = 4, seed: int = 0) -> Figure:
    geometry = showers.geometry
    groups = energy_groups(showers.incident_energies, n_showers)
    rng = np.random.default_rng(seed)
    picks = [int(rng.choice(np.flatnonzero(mask))) for _, mask in groups]
    layer_energy = showers.layer_energies().mean(axis=0)
    layers = list(range(geometry.n_layers))
    if geometry.n_layers > MAX_SINGLE_LAYERS:  # evenly spaced over the layers holding 99 % of the energy
        cumulative = np.cumsum(layer_energy) / max(layer_energy.sum(), 1e-30)
        first = int(np.searchsorted(cumulative, 0.005))
        last = int(np.searchsorted(cumulative, 0.995))
        layers = sorted(set(np.linspace(first, max(last, first), MAX_SINGLE_LAYERS).astype(int).tolist()))
    figure = Figure(figsize=(2.3 * len(layers) + 1.2, 2.4 * len(picks) + 0.6))
    artist: QuadMesh | None = None
    norm = _log_norm(showers.energies[picks])
    for row, shower in enumerate(picks):
        voxels = showers.energies[shower].astype(np.float64)
        for column, index in enumerate(layers):
            block = voxels[geometry.layer_slices[index]]
            title = (
                f"E_inc {_energy_label(showers.incident_energies[shower])}\n" if column == 0 else ""
            ) + f"layer {geometry.layers[index].id}: {block.sum():.3g} MeV"
            artist = draw_layer(
                figure, (len(picks), len(layers), row * len(layers) + column + 1), geometry, index, block, norm, title
            )
    figure.suptitle(f"single showers, {label}", fontsize=10)
    figure.subplots_adjust(left=0.07, right=0.88, top=0.9, bottom=0.04, wspace=0.45, hspace=0.6)
    colorbar_axes = figure.add_axes((0.91, 0.15, 0.015, 0.7))
    # an empty sample draws no layer: its colorbar is matplotlib's default one (what mappable=None gave)
    mappable = artist if artist is not None else ScalarMappable()
    figure.colorbar(mappable, cax=colorbar_axes, label="voxel energy [MeV]")
    return figure


# ---------------------------------------------------------------------- distributions
def plot_longitudinal_profile(showers: Showers, label: str) -> Figure:
    geometry = showers.geometry
    fractions = showers.layer_energies() / showers.incident_energies[:, None]
    figure = Figure(figsize=(7, 4.5))
    axes = figure.add_subplot(1, 1, 1)
    positions = np.arange(geometry.n_layers)
    for group_label, mask in energy_groups(showers.incident_energies):
        axes.plot(positions, fractions[mask].mean(axis=0), marker="o", markersize=3, label=group_label)
    axes.set_yscale("log")
    axes.set_xticks(positions if geometry.n_layers <= 15 else positions[::5])
    axes.set_xticklabels([str(geometry.layers[i].id) for i in axes.get_xticks().astype(int)])
    axes.set_xlabel("layer")
    axes.set_ylabel("mean layer energy / E_inc")
    axes.set_title(f"longitudinal profile, {label}", fontsize=10)
    axes.legend(fontsize=7, title="E_inc", title_fontsize=7)
    figure.tight_layout()
    return figure


def plot_etot_einc(showers: Showers, label: str) -> Figure:
    ratio = showers.total_energy() / showers.incident_energies
    figure = Figure(figsize=(7, 4.5))
    axes = figure.add_subplot(1, 1, 1)
    bins = np.linspace(0.0, 1.5, 151)
    for group_label, mask in energy_groups(showers.incident_energies):
        axes.hist(ratio[mask], bins=bins.tolist(), histtype="step", density=True, label=f"{group_label} ({mask.sum()})")
    above = int((ratio > bins[-1]).sum())
    axes.set_xlabel("E_tot / E_inc")
    axes.set_ylabel("density")
    axes.set_title(f"E_tot / E_inc, {label} (mean {ratio.mean():.3f}; {above} above {bins[-1]:g})", fontsize=10)
    axes.legend(fontsize=7, title="E_inc", title_fontsize=7)
    figure.tight_layout()
    return figure


def plot_voxel_spectrum(showers: Showers, label: str) -> Figure:
    figure = Figure(figsize=(7, 4.5))
    axes = figure.add_subplot(1, 1, 1)
    positive = showers.energies[showers.energies > 0]
    if positive.size:
        bins = np.geomspace(max(float(positive.min()), 1e-4), float(positive.max()) * 1.001, 80)
        for group_label, mask in energy_groups(showers.incident_energies):
            values = showers.energies[mask]
            axes.hist(values[values > 0], bins=bins.tolist(), histtype="step", label=group_label)
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.legend(fontsize=7, title="E_inc", title_fontsize=7)
    axes.set_xlabel("voxel energy [MeV] (non-zero voxels)")
    axes.set_ylabel("voxels")
    threshold = showers.geometry.threshold
    if threshold:
        axes.axvline(threshold, color="grey", linestyle=":", linewidth=1)
    axes.set_title(f"voxel-energy spectrum, {label}", fontsize=10)
    figure.tight_layout()
    return figure


# ---------------------------------------------------------------------- entry point
def write_overview_plots(
    source: "Showers | str | Path | Sequence", out_dir: str | Path, max_showers: int | None = MAX_SHOWERS
) -> list[Path]:
    """Write the overview PNGs of a shower sample to ``out_dir``; returns their paths.

    ``source`` is a :class:`~calobench.showers.Showers` or anything
    :func:`calobench.formats.open_showers` accepts (a path, or a list of paths / row windows).
    """
    out = check_output_dir(out_dir, "plot directory")
    showers, label = load_sample(source, max_showers)
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "average_shower.png": plot_average_shower(showers, label),
        "longitudinal_profile.png": plot_longitudinal_profile(showers, label),
        "etot_einc.png": plot_etot_einc(showers, label),
        "voxel_spectrum.png": plot_voxel_spectrum(showers, label),
        "single_showers.png": plot_single_showers(showers, label),
    }
    return [_save(figure, out / name) for name, figure in figures.items()]
