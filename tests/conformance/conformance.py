"""The CaloChallenge conformance set: shower files made from seeds, and calobench's separation
powers on them, to be compared with the official script's (expected.json; README.md beside this
file says how those were made).

    python tests/conformance/conformance.py write OUT_DIR      # the files the official script reads
    python tests/conformance/conformance.py evaluate OUT_DIR   # write them, print calobench's numbers (JSON)

Run both with ``NPY_ENABLE_CPU_FEATURES=X86_V2`` (numpy's x86-64 baseline code paths): numpy's
vectorized float32 ``log10`` (the official top edge of the E_layer and voxel binnings) and the
simulator's vectorized math give other last bits on CPUs with other vector units, so the files
and the official numbers are the same on every x86-64 machine only on the baseline paths.

Cases: two independent simulated samples (reference seed 1, generated seed 2) of dataset-1 photons,
dataset-1 pions, dataset 2 and dataset 3, and for each geometry a constructed pair whose showers put
values exactly on histogram edges (:func:`edge_showers`).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

#: case -> (synthetic data set, official --dataset, showers per sample)
SIMULATED = {
    "ds1-photons": ("synthetic-ds1-photons", "1-photons", 3000),
    "ds1-pions": ("synthetic-ds1-pions", "1-pions", 3000),
    "ds2": ("synthetic-ds2", "2", 2000),
    "ds3": ("synthetic-ds3", "3", 1000),
}
#: case -> (geometry, official --dataset, showers per sample)
EDGES = {
    "edges-ds1-photons": ("ds1-photons", "1-photons", 600),
    "edges-ds1-pions": ("ds1-pions", "1-pions", 600),
    "edges-ds2": ("ds2", "2", 300),
    "edges-ds3": ("ds3", "3", 120),
}
SEEDS = {"reference": 1, "generated": 2}


def edge_showers(geometry_name: str, n: int, seed: int):
    """Showers (float32, float32 incident energies) built so that features land on histogram edges.

    Per shower one of: a random number of voxels above threshold in every layer (sparsity on every
    ``k/20``); full rings of equal energy (centres in eta and phi zero up to rounding); single
    voxels (a centre in r on the radial midpoint, which for dataset 1 is an edge of its binning;
    widths exactly 0); voxels exactly at the float32 threshold and one step below it; and showers
    scaled so that E_tot / E_inc is an edge of ``linspace(0.5, 1.5, 101)`` in float64. The incident
    energies are powers of two for dataset 1 and log-uniform otherwise."""
    from calobench.geometry import builtin_geometry
    from calobench.showers import Showers

    geometry = builtin_geometry(geometry_name)
    rng = np.random.default_rng([seed, 0xED6E])
    threshold = np.float32(geometry.threshold)
    energies = np.zeros((n, geometry.n_voxels), dtype=np.float32)
    if geometry_name.startswith("ds1"):
        incident = (2.0 ** rng.integers(8, 23, n)).astype(np.float32)
    else:
        incident = (10 ** rng.uniform(3, 6, n)).astype(np.float32)
    etot_edges = np.linspace(0.5, 1.5, 101)
    for i in range(n):
        kind = i % 5
        for layer, block in zip(geometry.layers, geometry.layer_slices):
            size = layer.n_voxels
            row = energies[i, block]
            if kind == 0:  # sparsity: any count of voxels above threshold
                count = int(rng.integers(0, size + 1))
                row[rng.choice(size, count, replace=False)] = rng.uniform(1, 1000, count).astype(np.float32)
            elif kind == 1:  # rings: the same energy in every angular bin of some radial bins
                n_alpha, n_r = layer.shape
                block_view = row.reshape(n_alpha, n_r)
                for r in rng.choice(n_r, int(rng.integers(1, n_r + 1)), replace=False):
                    block_view[:, r] = np.float32(rng.uniform(1, 500))
            elif kind == 2:  # one voxel
                row[rng.integers(0, size)] = np.float32(rng.uniform(2, 5000))
            elif kind == 3:  # voxels at the threshold (kept) and just below it (zeroed)
                picks = rng.choice(size, min(size, 4), replace=False)
                row[picks] = [threshold, np.nextafter(threshold, np.float32(0)), threshold * 3, 100.0][: len(picks)]
            else:  # random voxels, rescaled below so that E_tot / E_inc lies on an edge in float64
                count = int(rng.integers(1, min(size, 8) + 1))
                row[rng.choice(size, count, replace=False)] = rng.uniform(1, 100, count).astype(np.float32)
        if kind == 4:
            target = etot_edges[rng.integers(0, 101)] * float(incident[i])
            total = float(energies[i].astype(np.float64).sum())
            energies[i] = (energies[i].astype(np.float64) * (target / total)).astype(np.float32)
    energies[energies < 0] = 0
    return Showers(incident.astype(np.float64), energies, geometry), incident.dtype


def write_cases(out: Path) -> dict[str, dict[str, str]]:
    """Write every case's reference and generated file under ``out``; returns their paths and the
    sha256 of their showers and incident energies (the files' fingerprints)."""
    from calobench.formats import write_showers
    from calobench.simulator.makers import write_simulation
    from calobench.simulator.spectra import incident_spectrum

    out.mkdir(parents=True, exist_ok=True)
    cases: dict[str, dict[str, str]] = {}
    for case, (name, dataset, n) in SIMULATED.items():
        files = {"dataset": dataset}
        for role, seed in SEEDS.items():
            path = out / f"{case}-{role}.hdf5"
            write_simulation(path, name, incident_spectrum(name, n, seed), seed, progress=False)
            files[role] = str(path)
        cases[case] = files
    for case, (geometry, dataset, n) in EDGES.items():
        files = {"dataset": dataset}
        for role, seed in SEEDS.items():
            path = out / f"{case}-{role}.hdf5"
            showers, _ = edge_showers(geometry, n, seed)
            write_showers(path, showers, dtype=np.float32)
            files[role] = str(path)
        cases[case] = files
    for files in cases.values():
        files["fingerprint"] = fingerprint(Path(files["reference"]), Path(files["generated"]))
    return cases


def fingerprint(*paths: Path) -> str:
    """sha256 of the arrays (not the file bytes, which carry HDF5 metadata) of the given files."""
    import h5py

    digest = hashlib.sha256()
    for path in paths:
        with h5py.File(path, "r") as handle:
            for key in ("incident_energies", "showers"):
                digest.update(np.ascontiguousarray(handle[key][()]).tobytes())
    return digest.hexdigest()


def flatten(powers: dict) -> dict[str, float | None]:
    """calobench's ``separation_power`` fragment as ``{"feature" or "feature/layer": S}``."""
    flat: dict[str, float | None] = {}
    for key, value in powers.items():
        if isinstance(value, dict):
            for sub, number in value.items():
                flat[f"{key}/{sub}"] = number
        else:
            flat[key] = value
    return flat


def evaluate_cases(out: Path) -> dict:
    from calobench.evaluation.runner import evaluate

    cases = write_cases(out)
    result = {"numpy": np.__version__, "cases": {}}
    for case, files in cases.items():
        report = evaluate(
            files["generated"], files["reference"], metrics="separation_power", plots=False, progress=False
        )
        result["cases"][case] = {
            "fingerprint": files["fingerprint"],
            "powers": flatten(report["separation_power"]),
        }
    return result


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("write", "evaluate"):
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[1])
    if argv[0] == "write":
        print(json.dumps(write_cases(out), indent=1))
    else:
        print(json.dumps(evaluate_cases(out), allow_nan=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
