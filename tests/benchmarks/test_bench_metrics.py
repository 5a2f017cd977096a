"""Speed and memory of the metrics on simulated files (the acceptance figures of calobench issue 4).

Run with ``python -m pytest tests/benchmarks/test_bench_metrics.py --benchmark-only``. The files are
simulated once per session with calobench's shower simulator (synthetic-ds2: 2 x 10,000 showers;
synthetic-ds3: 2 x 50,000, about 2 x 1 GB gzip on disk, a few minutes to make).

* every separation power (features, voxel spectrum, DS1-style per-layer binnings) of 2 x 10,000
  DS2 showers read from file: target under 5 s on 2 cores (the CaloChallenge script: ~47 s, 2.2 GB);
* the streaming pass over 2 x 50,000 DS3 showers in a fresh process, peak resident memory recorded
  (``VmHWM``): target under 3 GB, both for the features alone and for the full separation-power pass
  (features + voxel spectrum).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from calobench.formats import ShowerWriter, open_showers
from calobench.metrics.context import EvaluationContext
from calobench.metrics.separation_metric import SeparationPowerMetric, separation_powers

DS2_SHOWERS = 10_000
DS3_SHOWERS = 50_000
PEAK_LIMIT_MB = 3 * 1024


def _simulate_file(path: Path, dataset: str, n: int, seed: int) -> Path:
    from calobench.simulator.api import iter_simulate
    from calobench.simulator.catalog import resolve_detector
    from calobench.simulator.spectra import incident_spectrum

    detector = resolve_detector(dataset)
    with ShowerWriter(path, detector.geometry, compression_level=4) as writer:
        for chunk in iter_simulate(detector, incident_spectrum(dataset, n, seed), seed):
            writer.append(chunk.showers)
    return path


@pytest.fixture(scope="module")
def ds2_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("ds2")
    return (
        _simulate_file(folder / "reference.h5", "synthetic-ds2", DS2_SHOWERS, 11),
        _simulate_file(folder / "generated.h5", "synthetic-ds2", DS2_SHOWERS, 12),
    )


@pytest.fixture(scope="module")
def ds3_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("ds3")
    return (
        _simulate_file(folder / "reference.h5", "synthetic-ds3", DS3_SHOWERS, 21),
        _simulate_file(folder / "generated.h5", "synthetic-ds3", DS3_SHOWERS, 22),
    )


def all_separation_powers(reference: Path, generated: Path) -> dict:
    with open_showers(reference) as ref, open_showers(generated) as gen:
        context = EvaluationContext(ref, gen, ref.geometry, ref.geometry.threshold, preset="quick")
        context.prepare([SeparationPowerMetric()])
        powers, _ = separation_powers(context)
        powers["_second_pass"] = context.voxel_spectrum().second_pass
    return powers


def test_separation_powers_ds2_2x10k_from_file(benchmark, ds2_files) -> None:
    powers = benchmark.pedantic(all_separation_powers, args=ds2_files, rounds=3, iterations=1)
    n_values = 2 + sum(
        len(powers[k]) for k in ("e_layer", "ec_eta", "ec_phi", "width_eta", "width_phi", "ec_r", "width_r", "sparsity")
    )
    benchmark.extra_info.update(
        {
            "n_separation_powers": n_values,
            "voxel_second_pass": powers["_second_pass"],
            "etot_einc": powers["etot_einc"],
            "voxel": powers["voxel"],
        }
    )
    assert n_values == 2 + 8 * 45
    assert all(np.isfinite(v) for v in powers["e_layer"].values() if v is not None)


PASS_SCRIPT = """
import json, sys, time
from calobench.formats import open_showers
from calobench.metrics.context import EvaluationContext
from calobench.metrics.features import stream_features
from calobench.metrics.separation_metric import SeparationPowerMetric, separation_powers

start = time.perf_counter()
mode = sys.argv[3]
with open_showers(sys.argv[1]) as ref, open_showers(sys.argv[2]) as gen:
    if mode == "features":
        n = sum(len(stream_features(h.iter_chunks(), h.geometry.threshold)) for h in (ref, gen))
    else:
        context = EvaluationContext(ref, gen, ref.geometry, ref.geometry.threshold, preset="quick")
        context.prepare([SeparationPowerMetric()])
        separation_powers(context)
        n = context.n_reference + context.n_generated
elapsed = time.perf_counter() - start
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"showers": n, "seconds": elapsed, "peak_rss_mb": peak_kb / 1024}))
"""


@pytest.mark.parametrize("mode", ["features", "separation_powers"])
def test_ds3_2x50k_streamed_peak_memory(benchmark, ds3_files, mode: str) -> None:
    def run() -> dict:
        output = subprocess.run(
            [sys.executable, "-c", PASS_SCRIPT, str(ds3_files[0]), str(ds3_files[1]), mode],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return json.loads(output)

    result = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    assert result["showers"] == 2 * DS3_SHOWERS
    assert result["peak_rss_mb"] < PEAK_LIMIT_MB, f"peak memory {result['peak_rss_mb']:.0f} MB"
