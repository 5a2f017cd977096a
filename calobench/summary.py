"""A one-pass summary of a shower file: size, geometry, energy range, per-layer means and sparsity."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calobench.formats import open_showers
from calobench.geometry import Geometry


@dataclass
class FileSummary:
    path: Path
    format: str
    geometry: Geometry
    dtype: str
    n_showers: int
    incident_min: float
    incident_max: float
    n_distinct_incident: int
    threshold: float
    layer_mean_energy: np.ndarray  # (n_layers,) MeV
    layer_sparsity: np.ndarray  # (n_layers,) fraction of voxels below threshold
    mean_etot_over_einc: float

    def to_text(self) -> str:
        g = self.geometry
        lines = [
            f"file:       {self.path}",
            f"format:     {self.format} ({self.dtype})",
            f"geometry:   {g.name} ({g.kind}, {g.n_layers} layers, {g.n_voxels} voxels, particle {g.particle})",
            f"showers:    {self.n_showers}",
            f"E_inc:      {self.incident_min:.6g} - {self.incident_max:.6g} MeV"
            + (f" ({self.n_distinct_incident} distinct values)" if self.n_distinct_incident <= 50 else ""),
            f"<E_tot/E_inc>: {self.mean_etot_over_einc:.4f}",
            f"per layer (sparsity = fraction of voxels below {self.threshold:.4g} MeV):",
            "  layer  voxels   mean energy [MeV]   sparsity",
        ]
        for layer, mean, sparsity in zip(g.layers, self.layer_mean_energy, self.layer_sparsity):
            lines.append(f"  {layer.id:>5}  {layer.n_voxels:>6}   {mean:>17.4f}   {sparsity:>8.4f}")
        return "\n".join(lines)


def summarize_file(path: str | Path, geometry: "Geometry | str | Path | None" = None) -> FileSummary:
    """Stream ``path`` once (bounded memory) and summarize it."""
    with open_showers(path, geometry) as handle:
        g = handle.geometry
        threshold = g.threshold if g.threshold is not None else 0.0
        sizes = np.asarray(g.layer_sizes, dtype=np.float64)
        energy_sum = np.zeros(g.n_layers)
        below_sum = np.zeros(g.n_layers)
        ratio_sum = 0.0
        for chunk in handle.iter_chunks():
            energy_sum += chunk.layer_energies().sum(axis=0)
            below = chunk.energies < threshold if threshold > 0 else chunk.energies <= 0
            below_sum += np.stack([below[:, s].sum(axis=0, dtype=np.float64).sum() for s in g.layer_slices])
            ratio_sum += float((chunk.total_energy() / chunk.incident_energies).sum())
        incident = handle.incident_energies()
        n = handle.n_showers
        return FileSummary(
            path=Path(path),
            format=handle.format,
            geometry=g,
            dtype=handle.stored_dtype
            + ("" if handle.stored_dtype == str(np.dtype(handle.dtype)) else f", read as {np.dtype(handle.dtype)}"),
            n_showers=n,
            incident_min=float(incident.min()),
            incident_max=float(incident.max()),
            n_distinct_incident=len(np.unique(incident)),
            threshold=threshold,
            layer_mean_energy=energy_sum / n,
            layer_sparsity=below_sum / (n * sizes),
            mean_etot_over_einc=ratio_sum / n,
        )
