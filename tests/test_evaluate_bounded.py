"""``calobench evaluate`` in bounded memory: a file that declares 10^9 showers is refused with one
clear line (the per-shower numbers the metrics keep could not fit), ``--max-showers`` evaluates its
first showers, and the separation powers alone keep no per-shower feature at all."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import h5py
import numpy as np

from calobench.cli.main import main
from calobench.formats import open_showers
from calobench.metrics.context import EvaluationContext
from calobench.metrics.separation_metric import SeparationPowerMetric
from calobench.plugins import metrics
from calobench.testing import write_random_file

BILLION = 10**9


def _declares_a_billion(path: Path) -> Path:
    """A tiny file declaring 10^9 valid showers: nothing written, reads give the fill values (1 GeV
    incident energies, empty showers)."""
    with h5py.File(path, "w") as handle:
        handle.create_dataset("incident_energies", shape=(BILLION, 1), dtype="f4", chunks=(65536, 1), fillvalue=1000.0)
        handle.create_dataset("showers", shape=(BILLION, 368), dtype="f4", chunks=(256, 368))
    assert path.stat().st_size < 10**6
    return path


def test_evaluate_refuses_a_billion_showers_in_one_line(tmp_path: Path) -> None:
    huge = _declares_a_billion(tmp_path / "huge.h5")
    reference = write_random_file(tmp_path / "ref.h5", "ds1-photons", n=300, seed=1)
    command = "import sys; from calobench.cli.main import main; sys.exit(main(sys.argv[1:]))"
    args = ["evaluate", str(huge), "--reference", str(reference), "--metrics", "fpd", "--out", str(tmp_path / "e")]
    # before the fix this streamed on without end while its memory grew: the time limit fails it
    proc = subprocess.run([sys.executable, "-c", command, *args], capture_output=True, text=True, timeout=300)
    err = proc.stderr.strip()
    assert proc.returncode == 1, err[-2000:]
    assert err.startswith("calobench: error: ") and len(err.splitlines()) == 1, err[-2000:]
    assert "1,000,000,000 generated showers" in err and "--max-showers" in err


def test_max_showers_evaluates_the_first_showers_in_bounded_memory(tmp_path: Path, capsys) -> None:
    huge = _declares_a_billion(tmp_path / "huge.h5")
    reference = write_random_file(tmp_path / "ref.h5", "ds1-photons", n=300, seed=1)
    out = tmp_path / "eval"
    metrics()  # load the plugins (and torch) before tracing: imports are not what is measured
    tracemalloc.start()
    try:
        args = ["evaluate", str(huge), "--reference", str(reference), "--max-showers", "2000"]
        status = main([*args, "--metrics", "separation_power", "--no-plots", "--out", str(out)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert (report["n_generated"], report["n_reference"]) == (2000, 300)
    assert peak < 400e6, f"{peak / 1e6:.0f} MB"  # a few 16 MB chunks in flight; 10^9 showers need > 500 GB


def test_separation_powers_alone_keep_no_per_shower_feature(tmp_path: Path) -> None:
    path = write_random_file(tmp_path / "a.h5", "ds1-photons", n=500, seed=3)
    with open_showers(path) as ref, open_showers(path) as gen:
        context = EvaluationContext(ref, gen, ref.geometry, 1.0, preset="smoke", keep_features=False)
        context.prepare([SeparationPowerMetric()])
        assert context.reference_scan.features is None and context.generated_scan.features is None
        layer_energies = context.reference_scan.histograms.e_layer
    assert layer_energies.shape == (500, 5) and layer_energies.dtype == np.float32
