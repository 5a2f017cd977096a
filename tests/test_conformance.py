"""calobench's separation powers equal the official CaloChallenge script's, to 1e-12, on files of all
four CaloChallenge geometries and on showers built to put values exactly on histogram edges.

The expected values (tests/conformance/expected.json) were computed once with the official
``evaluate.py`` (tests/conformance/README.md: its commit and the command); the files are made again
here from their seeds, in a subprocess pinned to numpy's x86-64 baseline code paths (see
tests/conformance/conformance.py for why), and their fingerprints are checked first, so that a
failure means calobench differs, not the files.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent / "conformance"
EXPECTED = json.loads((HERE / "expected.json").read_text())
CASES = sorted(EXPECTED["cases"])
TOLERANCE = 1e-12


@pytest.fixture(scope="module")
def calobench_numbers(tmp_path_factory) -> dict:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the expected values are pinned to numpy's x86-64 baseline code paths")
    out = tmp_path_factory.mktemp("conformance")
    env = dict(os.environ, NPY_ENABLE_CPU_FEATURES="X86_V2", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, str(HERE / "conformance.py"), "evaluate", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", CASES)
def test_separation_powers_equal_the_official_ones(calobench_numbers: dict, case: str) -> None:
    expected = EXPECTED["cases"][case]
    got = calobench_numbers["cases"][case]
    assert got["fingerprint"] == expected["fingerprint"], (
        f"the {case} files are not the ones the official script read (numpy {calobench_numbers['numpy']} here, "
        f"{EXPECTED['numpy']} then)"
    )
    official, ours = expected["official"], got["powers"]
    assert official, "no official numbers"
    differ = []
    for key, value in sorted(official.items()):
        mine = ours.get(key)
        if math.isnan(value):
            # undefined officially (0 / 0): a sample without an entry in range; calobench reports
            # null, or 1.0 when only one sample has none (calobench.metrics.separation)
            if mine not in (None, 1.0):
                differ.append((key, value, mine))
        elif mine is None or abs(mine - value) > TOLERANCE * max(abs(value), 1e-3):
            differ.append((key, value, mine))
    assert not differ, f"{len(differ)} of {len(official)} differ (feature, official, calobench): {differ[:10]}"
    assert set(ours) - set(official) == set(), "calobench reports separation powers the official script does not"
