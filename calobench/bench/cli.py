"""``calobench bench [MODELS] [--device D]``: run the generation benchmarks and print ms/shower."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from calobench.atomic import check_output_file
from calobench.cli.command import Command
from calobench.cli.types import count
from calobench.errors import CalobenchError


class BenchmarkError(CalobenchError):
    """The benchmark run failed."""


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="*", help="generators to time (default: every registered one)")
    parser.add_argument(
        "--device", action="append", help="device to time on (repeatable; default cpu, plus cuda when present)"
    )
    parser.add_argument(
        "--batch-sizes",
        nargs="+",
        type=count("--batch-sizes"),
        help="batch sizes (default 1 100 1000 on the CPU, 1 100 10000 on CUDA)",
    )
    parser.add_argument(
        "--rounds", type=count("--rounds"), default=5, help="timed rounds per case after one warm-up (default 5)"
    )
    parser.add_argument(
        "--runs", type=Path, help="directory of finished training runs to time (default leaderboards/quick/runs)"
    )
    parser.add_argument(
        "--json",
        type=Path,
        help="where to save the pytest-benchmark JSON (default .benchmarks/calobench-bench-<time>.json)",
    )


def run_benchmarks(
    models: list[str],
    devices: list[str] | None,
    batch_sizes: list[int] | None,
    rounds: int,
    runs: Path | None,
    json_path: Path,
) -> dict[str, Any]:
    """Run the pytest-benchmark suite in this process and return its JSON."""
    import pytest

    from calobench.bench import suite

    env = {
        "CALOBENCH_BENCH_MODELS": ",".join(models),
        "CALOBENCH_BENCH_ROUNDS": str(rounds),
        "CALOBENCH_BENCH_DEVICES": ",".join(devices or []),
        "CALOBENCH_BENCH_BATCH_SIZES": ",".join(str(b) for b in batch_sizes or []),
    }
    if runs is not None:
        env["CALOBENCH_BENCH_RUNS"] = str(runs.resolve())
    previous = {key: os.environ.get(key) for key in env}
    json_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.environ.update(env)
        with tempfile.TemporaryDirectory() as tmp:
            ini = Path(tmp) / "pytest.ini"
            ini.write_text("[pytest]\n")
            status = pytest.main(
                [
                    "-c",
                    str(ini),
                    "--rootdir",
                    tmp,
                    suite.__file__,
                    "-p",
                    "calobench.bench.pytest_plugin",
                    "-p",
                    "no:cacheprovider",
                    "-q",
                    "--benchmark-only",
                    f"--benchmark-json={json_path}",
                    "--benchmark-columns=mean,stddev,rounds",
                ]
            )
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if status != 0 or not json_path.is_file():
        raise BenchmarkError(f"the benchmark run failed (pytest exit status {int(status)}); see the output above")
    return json.loads(json_path.read_text())


def timing_table(data: dict[str, Any]) -> str:
    """ms/shower per (model, device) and batch size, like the CaloFlow talk's timing table."""
    cells: dict[tuple[str, str], dict[int, str]] = {}
    sizes: set[int] = set()
    for bench in data.get("benchmarks", []):
        info = bench["extra_info"]
        key = (info["model"], info["device"])
        sizes.add(int(info["batch_size"]))
        cells.setdefault(key, {})[int(info["batch_size"])] = (
            f"{info['ms_per_shower']:.4g} ± {info['ms_per_shower_std']:.2g}"
        )
    ordered = sorted(sizes)
    header = ["model", "device", *(f"bs {s} [ms/shower]" for s in ordered)]
    rows = [[model, device, *(values.get(s, "") for s in ordered)] for (model, device), values in sorted(cells.items())]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in [header, *rows]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def _run(args: argparse.Namespace) -> int:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    json_path = check_output_file(args.json or Path(".benchmarks") / f"calobench-bench-{stamp}.json", "JSON file")
    data = run_benchmarks(list(args.models), args.device, args.batch_sizes, args.rounds, args.runs, json_path)
    print()
    print(timing_table(data))
    sources = sorted({(b["extra_info"]["model"], b["extra_info"]["source"]) for b in data.get("benchmarks", [])})
    for model, source in sources:
        print(f"  {model}: {source}")
    print(f"benchmark JSON: {json_path}")
    return 0


def bench_command() -> Command:
    return Command(
        "bench", "time every (or the named) generator at several batch sizes; prints ms/shower", _arguments, _run
    )
