"""The prepared GPU check (scripts/gpu_check.sh) runs end to end, here as a CPU dry run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from calobench.testing import write_random_file

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.sh"


def test_gpu_check_script_trains_both_models_and_times_them(tmp_path: Path) -> None:
    data = write_random_file(tmp_path / "train.h5", "ds1-photons", n=200, seed=0)
    bin_dir = str(Path(sys.executable).parent)
    environment = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "DEVICE": "cpu",
        "PRESET": "smoke",
        "BATCH": "10",
        "AMP": "false",
        "DATASET": str(data),
        "OUT": str(tmp_path / "gpu"),
    }
    completed = subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, env=environment, cwd=tmp_path, timeout=600
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    benchmarks = json.loads((tmp_path / "gpu" / "bench.json").read_text())["benchmarks"]
    timed = {b["extra_info"]["model"]: b["extra_info"] for b in benchmarks}
    assert sorted(timed) == ["caloinn", "caloinn-vae"]
    for model, info in timed.items():
        assert info["batch_size"] == 10 and info["ms_per_shower"] > 0
        assert info["source"] == f"trained run {tmp_path / 'gpu' / (model + '-seed0')}", "times the runs it trained"
