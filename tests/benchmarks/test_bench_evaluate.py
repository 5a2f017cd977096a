"""``calobench evaluate`` against the official CaloChallenge script: peak memory flat in the number of
showers, and the CPU time of the separation powers side by side with the official ``hist-chi``.

    python -m pytest tests/benchmarks/test_bench_evaluate.py --benchmark-only

* memory: ``calobench evaluate --metrics separation_power --no-plots`` on 2 x 20,000 and 2 x 50,000
  dataset-3 showers (``--max-showers`` on one simulated pair), peak resident memory (``VmHWM``) of
  each run; the two must differ by less than 10 %.
* CPU: user + sys time of ``calobench evaluate --metrics separation_power --no-plots`` and of the
  official ``evaluate.py --mode hist-chi`` (its reference cache removed first) on the same files,
  dataset 2 (2 x 20,000 showers) and dataset 3 (2 x 5,000: the official script holds both files in
  float32 and more, about 3.7 GB at this size and 12.8 GB at 2 x 10,000). Both are whole processes,
  imports included. Needs the official code (``CALOCHALLENGE_CODE``: a checkout's ``code/``
  folder) and an interpreter with its dependencies (``CALOCHALLENGE_PYTHON``; numpy, h5py,
  matplotlib, torch, scikit-learn); skipped without them.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parents[1]
HARNESS = HERE / "conformance" / "official_harness.py"
MEMORY_SIZES = (20_000, 50_000)
DATASET = {"synthetic-ds2": "2", "synthetic-ds3": "3"}


def _simulate(path: Path, dataset: str, n: int, seed: int) -> Path:
    from calobench.simulator.makers import write_simulation
    from calobench.simulator.spectra import incident_spectrum

    return write_simulation(path, dataset, incident_spectrum(dataset, n, seed), seed, progress=False)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


PEAK = (
    "import json, sys; from calobench.cli.main import main; status = main(sys.argv[1:]); "
    "peak = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')); "
    "print(json.dumps({'status': status, 'peak_rss_mb': peak / 1024}))"
)


def _calobench(generated: Path, reference: Path, out: Path, *extra: str) -> dict:
    """Run ``calobench evaluate`` (separation powers) in a fresh process: its peak memory and CPU time."""
    args = [str(generated), "--reference", str(reference), "--metrics", "separation_power", "--no-plots"]
    before = _children_cpu()
    proc = subprocess.run(
        [sys.executable, "-c", PEAK, "evaluate", *args, "--out", str(out), *extra],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["cpu_s"] = _children_cpu() - before
    return result


@pytest.fixture(scope="module")
def ds3_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("ds3")
    n = max(MEMORY_SIZES)
    return (
        _simulate(folder / "reference.h5", "synthetic-ds3", n, 21),
        _simulate(folder / "generated.h5", "synthetic-ds3", n, 22),
    )


def test_evaluate_peak_memory_is_flat_in_the_number_of_showers(benchmark, ds3_pair, tmp_path: Path) -> None:
    reference, generated = ds3_pair

    def run() -> dict:
        return {
            n: _calobench(generated, reference, tmp_path / f"eval-{n}", "--max-showers", str(n)) for n in MEMORY_SIZES
        }

    results = benchmark.pedantic(run, rounds=1, iterations=1)
    small, large = (results[n]["peak_rss_mb"] for n in MEMORY_SIZES)
    benchmark.extra_info.update(
        {f"peak_rss_mb_{n}": results[n]["peak_rss_mb"] for n in MEMORY_SIZES}
        | {f"cpu_s_{n}": results[n]["cpu_s"] for n in MEMORY_SIZES}
        | {"peak_growth": large / small - 1}
    )
    print(f"\npeak memory: {small:.0f} MB at 2 x {MEMORY_SIZES[0]:,}, {large:.0f} MB at 2 x {MEMORY_SIZES[1]:,}")
    assert all(results[n]["status"] == 0 for n in MEMORY_SIZES)
    assert abs(large / small - 1) < 0.10, f"peak memory {small:.0f} MB -> {large:.0f} MB"


OFFICIAL_CODE = os.environ.get("CALOCHALLENGE_CODE")
OFFICIAL_PYTHON = os.environ.get("CALOCHALLENGE_PYTHON")
official = pytest.mark.skipif(
    not (OFFICIAL_CODE and OFFICIAL_PYTHON),
    reason="set CALOCHALLENGE_CODE (the official code/ folder) and CALOCHALLENGE_PYTHON (a python with its dependencies)",
)

OFFICIAL = (
    "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; import official_harness as h; "
    "h.run_official(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), sys.argv[5], Path(sys.argv[6]), "
    "helpers=False)"
)


@official
@pytest.mark.parametrize(("dataset", "n"), [("synthetic-ds2", 20_000), ("synthetic-ds3", 5_000)])
def test_separation_powers_cpu_against_the_official_hist_chi(
    benchmark, tmp_path_factory: pytest.TempPathFactory, dataset: str, n: int
) -> None:
    folder = tmp_path_factory.mktemp(dataset)
    reference = _simulate(folder / "reference.h5", dataset, n, 31)
    generated = _simulate(folder / "generated.h5", dataset, n, 32)

    def run() -> dict:
        ours = _calobench(generated, reference, folder / "calobench")
        before = _children_cpu()
        subprocess.run(
            [
                str(OFFICIAL_PYTHON),
                "-c",
                OFFICIAL,
                str(HARNESS.parent),
                str(OFFICIAL_CODE),
                str(generated),
                str(reference),
                DATASET[dataset],
                str(folder / "official"),
            ],
            capture_output=True,
            check=True,
        )
        return {"calobench_cpu_s": ours["cpu_s"], "official_cpu_s": _children_cpu() - before}

    result = benchmark.pedantic(run, rounds=1, iterations=1)
    result["ratio"] = result["official_cpu_s"] / result["calobench_cpu_s"]
    result["load_average"] = os.getloadavg()[0]
    benchmark.extra_info.update(result)
    print(
        f"\n{dataset} 2 x {n:,}: calobench {result['calobench_cpu_s']:.1f} s, official hist-chi "
        f"{result['official_cpu_s']:.1f} s user+sys: {result['ratio']:.1f}x (load {result['load_average']:.1f})"
    )
