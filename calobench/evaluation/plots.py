"""Evaluation plots (matplotlib, Agg, PNG): feature histograms with ratio panels, average showers,
E_tot/E_inc per incident energy, energy response, layer correlations.

Histograms use the separation-power binnings (:mod:`calobench.metrics.binning`) and show the
fraction of the in-range entries per bin (the p and q of the separation power): reference filled,
generated as a step line, ratio generated / reference below. Geometries with more than :data:`MAX_LAYER_PANELS`
layers (datasets 2 and 3) show evenly spaced layers (first and last included) so a report plots
in seconds; the separation powers and report.json cover every layer.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot state), so plotting
works in any thread and never opens a window.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, MaxNLocator, NullLocator

from calobench.atomic import write_atomic
from calobench.geometry import Geometry
from calobench.metrics.binning import (
    ETOT_EINC_EDGES,
    LAYER_FEATURES,
    SPARSITY_EDGES,
    e_layer_edges,
    is_dataset_1,
    linear_edges,
    per_energy_edges,
)
from calobench.metrics.context import EvaluationContext
from calobench.metrics.features import HighLevelFeatures
from calobench.metrics.response import discrete_energies, match_discrete
from calobench.metrics.separation import histogram_counts

MAX_LAYER_PANELS = 8
DPI = 80
REF_COLOR = "#9ecae1"
GEN_COLOR = "#d62728"
LABELS = {
    "e_layer": "E_layer [MeV]",
    "ec_eta": "EC_eta [mm]",
    "ec_phi": "EC_phi [mm]",
    "width_eta": "width_eta [mm]",
    "width_phi": "width_phi [mm]",
    "ec_r": "EC_r [mm]",
    "width_r": "width_r [mm]",
    "sparsity": "sparsity",
}


def shown_layers(layer_ids: tuple[int, ...], limit: int = MAX_LAYER_PANELS) -> list[int]:
    """All layer positions if at most ``limit``, else ``limit`` evenly spaced ones (first and last kept)."""
    n = len(layer_ids)
    if n <= limit:
        return list(range(n))
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, limit)})


def _outer_grid(fig: Figure, rows: int, cols: int) -> Any:
    """A grid with fixed margins (matplotlib's constrained layout doubles the drawing time)."""
    height = fig.get_figheight()
    return fig.add_gridspec(
        rows, cols, left=0.07, right=0.98, bottom=0.5 / height, top=1.0 - 0.55 / height, wspace=0.3, hspace=0.45
    )


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, 4)
    return math.ceil(n / cols), cols


def _histogram_panel(
    fig: Figure,
    spec: Any,
    reference: np.ndarray,
    generated: np.ndarray,
    edges: np.ndarray,
    title: str,
    xlabel: str,
    log_x: bool = False,
    legend: bool = False,
) -> None:
    _counts_panel(
        fig,
        spec,
        histogram_counts(reference, edges),
        histogram_counts(generated, edges),
        edges,
        title,
        xlabel,
        log_x,
        legend,
    )


def _counts_panel(
    fig: Figure,
    spec: Any,
    ref_counts: np.ndarray,
    gen_counts: np.ndarray,
    edges: np.ndarray,
    title: str,
    xlabel: str,
    log_x: bool = False,
    legend: bool = False,
) -> None:
    """Per-bin fractions (reference filled, generated step) over a ratio panel."""
    inner = spec.subgridspec(2, 1, height_ratios=(3, 1), hspace=0.05)
    top, bottom = fig.add_subplot(inner[0]), fig.add_subplot(inner[1])
    ref = np.asarray(ref_counts, dtype=np.float64)
    gen = np.asarray(gen_counts, dtype=np.float64)
    # fraction of the in-range entries per bin: the p and q of the separation power (on log-spaced
    # bins a density per MeV would hide everything but the lowest bins)
    ref_density = ref / ref.sum() if ref.sum() else ref
    gen_density = gen / gen.sum() if gen.sum() else gen
    top.stairs(ref_density, edges, fill=True, color=REF_COLOR, label="reference")
    top.stairs(gen_density, edges, color=GEN_COLOR, linewidth=1.2, label="generated")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ref_density > 0, gen_density / ref_density, np.nan)
    bottom.stairs(ratio, edges, color=GEN_COLOR, baseline=None)
    bottom.axhline(1.0, color="0.4", linewidth=0.8)
    bottom.set_ylim(0.5, 1.5)
    if log_x:
        top.set_xscale("log")
        bottom.set_xscale("log")
    for ax in (top, bottom):
        _few_ticks(ax, log_x)
    top.set_xlim(edges[0], edges[-1])
    bottom.set_xlim(edges[0], edges[-1])
    _title(top, title)
    _title(bottom)
    top.tick_params(labelbottom=False, labelsize=7)
    bottom.tick_params(labelsize=7)
    bottom.set_xlabel(xlabel, fontsize=8)
    bottom.set_ylabel("gen/ref", fontsize=7)
    top.set_ylabel("fraction", fontsize=7)
    if legend:
        top.legend(fontsize=7, frameon=False)


def _few_ticks(ax: Any, log_x: bool = False) -> None:
    """Three or four major ticks and no minor ones: tick objects are most of the drawing time of
    a figure with many panels."""
    ax.xaxis.set_major_locator(LogLocator(numticks=4) if log_x else MaxNLocator(4))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_locator(MaxNLocator(3))
    ax.yaxis.set_minor_locator(NullLocator())


def _title(ax: Any, text: str = "", size: float = 9) -> None:
    """A title at a fixed height: matplotlib otherwise measures every tick label to place it."""
    ax.set_title(text, fontsize=size, y=1.0)


def _save(fig: Figure, path: Path) -> Path:
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=DPI, format="png"))
    return path


def feature_histograms(context: EvaluationContext, folder: Path) -> list[Path]:
    """One figure per per-layer feature, plus E_tot/E_inc and the voxel spectrum."""
    ref: HighLevelFeatures = context.reference_features
    gen: HighLevelFeatures = context.generated_features
    paths = []
    fig = Figure(figsize=(10, 4))
    outer = _outer_grid(fig, 1, 2)
    _histogram_panel(
        fig,
        outer[0],
        ref.etot_over_einc,
        gen.etot_over_einc,
        ETOT_EINC_EDGES,
        "E_tot / E_inc",
        "E_tot / E_inc",
        legend=True,
    )
    spectrum = context.voxel_spectrum()
    if spectrum is not None:
        _counts_panel(
            fig,
            outer[1],
            spectrum.reference_counts,
            spectrum.generated_counts,
            spectrum.edges,
            "voxel energies",
            "voxel energy [MeV]",
            log_x=True,
        )
    paths.append(_save(fig, folder / "etot_einc_and_voxels.png"))
    for feature in LAYER_FEATURES:
        layer_ids = ref.layer_columns(feature)
        columns = shown_layers(layer_ids)
        if not columns:
            continue
        rows, cols = _grid(len(columns))
        fig = Figure(figsize=(3.2 * cols, 2.9 * rows))
        outer = _outer_grid(fig, rows, cols)
        for panel, column in enumerate(columns):
            layer = layer_ids[column]
            ref_values, gen_values = getattr(ref, feature)[:, column], getattr(gen, feature)[:, column]
            if feature == "e_layer":
                edges = e_layer_edges(context.threshold, ref_values)
            elif feature == "sparsity":
                edges = SPARSITY_EDGES
            else:
                edges = linear_edges(context.geometry, feature, layer)
            if edges is None:
                continue
            _histogram_panel(
                fig,
                outer[panel // cols, panel % cols],
                ref_values,
                gen_values,
                edges,
                f"layer {layer}",
                LABELS[feature],
                log_x=feature == "e_layer",
                legend=panel == 0,
            )
        fig.suptitle(LABELS[feature].split(" [")[0], fontsize=11)
        paths.append(_save(fig, folder / f"{feature}.png"))
    return paths


def per_energy_histograms(context: EvaluationContext, folder: Path) -> list[Path]:
    """Dataset 1: E_tot/E_inc at each discrete incident energy, with the per-energy binnings."""
    ref, gen = context.reference_features, context.generated_features
    values = discrete_energies(ref.e_inc)
    if not is_dataset_1(context.geometry) or values is None:
        return []
    ref_index, gen_index = match_discrete(ref.e_inc, values), match_discrete(gen.e_inc, values)
    rows, cols = _grid(len(values))
    fig = Figure(figsize=(3.2 * cols, 2.9 * rows))
    outer = _outer_grid(fig, rows, cols)
    for i, energy in enumerate(values):
        edges = per_energy_edges(context.geometry, float(energy))
        _histogram_panel(
            fig,
            outer[i // cols, i % cols],
            ref.etot_over_einc[ref_index == i],
            gen.etot_over_einc[gen_index == i],
            edges,
            f"E_inc = {energy:g} MeV",
            "E_tot / E_inc",
            legend=i == 0,
        )
    return [_save(fig, folder / "etot_einc_per_energy.png")]


#: Polar images draw at least this many angular cells (a layer with one angular bin is a full ring).
MIN_POLAR_CELLS = 64


def _polar_mesh(geometry: Geometry, index: int, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(alpha edges, r edges, values (n_r, n_cells)) of one layer's image, each angular bin split
    into equal cells so that coarse layers draw as rings and sectors."""
    layer = geometry.layers[index]
    split = max(1, math.ceil(MIN_POLAR_CELLS / layer.n_alpha))
    alpha = -np.pi + np.arange(layer.n_alpha * split + 1) * 2.0 * np.pi / (layer.n_alpha * split)
    return alpha, np.asarray(layer.r_edges, dtype=np.float64), np.repeat(image, split, axis=0).T


def average_showers(context: EvaluationContext, folder: Path) -> list[Path]:
    """Average shower per layer, reference above generated (polar for cylindrical geometries), and
    the longitudinal and radial profiles with ratio panels."""
    geometry = context.geometry
    ref_mean, gen_mean = context.reference_scan.mean_shower, context.generated_scan.mean_shower
    columns = shown_layers(geometry.layer_ids)
    fig = Figure(figsize=(2.4 * len(columns), 5.0), layout="constrained")
    polar = geometry.kind == "cylindrical"
    for panel, index in enumerate(columns):
        layer = geometry.layers[index]
        block = geometry.layer_slices[index]
        images = [ref_mean[block].reshape(layer.shape), gen_mean[block].reshape(layer.shape)]
        top = max(float(images[0].max()), float(images[1].max()), 1e-12)
        low = max(top * 1e-4, 1e-12)
        for row, (image, name) in enumerate(zip(images, ("reference", "generated"))):
            ax = fig.add_subplot(2, len(columns), row * len(columns) + panel + 1, projection="polar" if polar else None)
            shown = np.clip(image, low, None)
            norm = LogNorm(vmin=low, vmax=top)
            if polar:
                alpha, r_edges, values = _polar_mesh(geometry, index, shown)
                ax.pcolormesh(alpha, r_edges, values, norm=norm, shading="flat")
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                ax.imshow(shown, norm=norm, aspect="auto", origin="lower")
                ax.set_xticks([])
                ax.set_yticks([])
            _title(ax, f"{name}, layer {layer.id}", 8)
    paths = [_save(fig, folder / "average_shower.png")]

    fig = Figure(figsize=(10, 4))
    outer = _outer_grid(fig, 1, 2)
    ref_layers = np.array([ref_mean[s].sum() for s in geometry.layer_slices])
    gen_layers = np.array([gen_mean[s].sum() for s in geometry.layer_slices])
    _profile_panel(
        fig,
        outer[0],
        np.arange(geometry.n_layers),
        ref_layers,
        gen_layers,
        "longitudinal profile",
        "layer index",
        "mean energy [MeV]",
    )
    if polar and len({layer.r_edges for layer in geometry.layers}) == 1:
        r_edges = np.asarray(geometry.layers[0].r_edges)
        centres = 0.5 * (r_edges[:-1] + r_edges[1:])
        ref_r = sum(
            ref_mean[s].reshape(layer.shape).sum(axis=0) for s, layer in zip(geometry.layer_slices, geometry.layers)
        )
        gen_r = sum(
            gen_mean[s].reshape(layer.shape).sum(axis=0) for s, layer in zip(geometry.layer_slices, geometry.layers)
        )
        _profile_panel(fig, outer[1], centres, ref_r, gen_r, "radial profile", "r [mm]", "mean energy [MeV]")
    paths.append(_save(fig, folder / "profiles.png"))
    return paths


def _profile_panel(
    fig: Figure,
    spec: Any,
    x: np.ndarray,
    ref: np.ndarray,
    gen: np.ndarray,
    title: str,
    xlabel: str,
    ylabel: str,
    log_x: bool = False,
    log_y: bool = True,
) -> None:
    inner = spec.subgridspec(2, 1, height_ratios=(3, 1), hspace=0.05)
    top, bottom = fig.add_subplot(inner[0]), fig.add_subplot(inner[1])
    top.plot(x, ref, "o-", color="#3182bd", markersize=3, label="reference")
    top.plot(x, gen, "s--", color=GEN_COLOR, markersize=3, label="generated")
    if log_y:
        top.set_yscale("log")
    if log_x:
        top.set_xscale("log")
        bottom.set_xscale("log")
    _title(top, title)
    _title(bottom)
    top.set_ylabel(ylabel, fontsize=8)
    top.tick_params(labelbottom=False, labelsize=7)
    top.legend(fontsize=7, frameon=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        bottom.plot(x, np.where(ref > 0, gen / ref, np.nan), "s-", color=GEN_COLOR, markersize=3)
    bottom.axhline(1.0, color="0.4", linewidth=0.8)
    bottom.set_ylim(0.5, 1.5)
    bottom.set_xlabel(xlabel, fontsize=8)
    bottom.set_ylabel("gen/ref", fontsize=7)
    bottom.tick_params(labelsize=7)


def response_plot(report: dict, folder: Path) -> list[Path]:
    response = report.get("energy_response")
    if not response:
        return []
    bins = [b for b in response["bins"] if b["reference"]["n"] and b["generated"]["n"]]
    if not bins:
        return []
    x = np.array([math.sqrt(b["e_low"] * b["e_high"]) for b in bins])
    fig = Figure(figsize=(10, 4))
    outer = _outer_grid(fig, 1, 2)
    for spec, key, title in (
        (outer[0], "mean", "response <E_tot/E_inc>"),
        (outer[1], "resolution", "resolution std/mean"),
    ):
        ref = np.array([b["reference"][key] if b["reference"][key] is not None else np.nan for b in bins])
        gen = np.array([b["generated"][key] if b["generated"][key] is not None else np.nan for b in bins])
        _profile_panel(fig, spec, x, ref, gen, title, "E_inc [MeV]", key, log_x=True, log_y=False)
    return [_save(fig, folder / "energy_response.png")]


def correlation_plot(report: dict, folder: Path) -> list[Path]:
    correlation = report.get("layer_correlation")
    if not correlation:
        return []
    matrices = [
        np.array([[np.nan if v is None else v for v in row] for row in correlation[key]], dtype=float)
        for key in ("reference", "generated")
    ]
    matrices.append(matrices[1] - matrices[0])
    fig = Figure(figsize=(13, 4), layout="constrained")
    for i, (matrix, title) in enumerate(zip(matrices, ("reference", "generated", "generated - reference"))):
        ax = fig.add_subplot(1, 3, i + 1)
        limit = 1.0 if i < 2 else max(float(np.nanmax(np.abs(matrix))) if np.isfinite(matrix).any() else 0.1, 1e-3)
        image = ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit, origin="lower")
        _title(ax, f"layer-energy correlation: {title}")
        ax.set_xlabel("layer index", fontsize=8)
        ax.set_ylabel("layer index", fontsize=8)
        fig.colorbar(image, ax=ax, shrink=0.8)
    return [_save(fig, folder / "layer_correlation.png")]


def make_plots(context: EvaluationContext, report: dict, out: Path) -> list[Path]:
    """Write every plot under ``out/plots/``; returns the paths relative to ``out``."""
    folder = out / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    paths = feature_histograms(context, folder)
    paths += per_energy_histograms(context, folder)
    paths += average_showers(context, folder)
    paths += response_plot(report, folder)
    paths += correlation_plot(report, folder)
    return [p.relative_to(out) for p in paths]
