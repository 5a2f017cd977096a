"""Streaming a DS2-sized CaloChallenge file (50,000 x 6,480 float32) keeps peak memory bounded.

Run with ``python -m pytest tests/benchmarks/test_bench_streaming.py --benchmark-only``. The peak
resident memory of a fresh process that streams the whole file (reading every chunk and summing it)
is recorded in the benchmark's ``extra_info`` and must stay under 600 MB.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from calobench.formats import ShowerWriter
from calobench.geometry import builtin_geometry
from calobench.showers import Showers

N_SHOWERS = 50_000
PEAK_LIMIT_MB = 600

STREAM_SCRIPT = """
import json, sys, time
import numpy as np
from calobench.formats import open_showers

start = time.perf_counter()
total, n = 0.0, 0
with open_showers(sys.argv[1]) as handle:
    for chunk in handle.iter_chunks():
        total += float(chunk.energies.sum(dtype=np.float64))
        n += len(chunk)
elapsed = time.perf_counter() - start
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"showers": n, "seconds": elapsed, "peak_rss_mb": peak_kb / 1024, "total_mev": total}))
"""


@pytest.fixture(scope="module")
def ds2_sized_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    geometry = builtin_geometry("ds2")
    path = tmp_path_factory.mktemp("stream") / "ds2_50k.hdf5"
    rng = np.random.default_rng(0)
    with ShowerWriter(path, geometry, compression_level=1) as writer:
        for _ in range(N_SHOWERS // 2_000):
            energies = rng.exponential(1.0, (2_000, geometry.n_voxels)).astype(np.float32)
            energies[rng.random(energies.shape) < 0.7] = 0.0
            writer.append(Showers(rng.uniform(1e3, 1e6, 2_000), energies, geometry))
    return path


def test_stream_ds2_sized_file_peak_memory(benchmark, ds2_sized_file: Path) -> None:
    def stream() -> dict:
        output = subprocess.run(
            [sys.executable, "-c", STREAM_SCRIPT, str(ds2_sized_file)], check=True, capture_output=True, text=True
        ).stdout
        return json.loads(output)

    result = benchmark.pedantic(stream, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    assert result["showers"] == N_SHOWERS
    assert result["peak_rss_mb"] < PEAK_LIMIT_MB, f"streaming peak memory {result['peak_rss_mb']:.0f} MB"
