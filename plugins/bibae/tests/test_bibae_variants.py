"""`calobench bibae-variants` on a smoke run: every (sampler, post-processor, calibration) sampled."""

from __future__ import annotations

import json

from calobench.cli.main import main
from calobench.formats import read_showers
from calobench.testing import write_random_file


def test_variants_command_samples_every_setting(tmp_path, capsys):
    tiny = write_random_file(tmp_path / "train.h5", "ds1-photons", n=96, seed=1)
    energies = write_random_file(tmp_path / "energies.h5", "ds1-photons", n=8, seed=2)
    run, out = tmp_path / "run", tmp_path / "variants"
    train = ["train", "bib-ae", "--dataset", str(tiny), "--preset", "smoke", "--out", str(run)]
    assert main([*train, "--set", "calibration=copula", "calibration_showers=64"]) == 0
    command = ["bibae-variants", "--checkpoint", str(run), "--energies-from", str(energies), "--out", str(out)]
    assert main([*command, "--samplers", "normal,flow", "--calibrations", "none,copula"]) == 0
    rows = json.loads((out / "variants.json").read_text())
    assert len(rows) == 8 and {row["calibration"] for row in rows} == {"none", "copula"}
    for row in rows:
        sample = read_showers(out / f"{row['variant']}.hdf5")
        assert len(sample) == 8 and (sample.energies >= 0).all()
    assert "| flow | off | copula |" in (out / "variants.md").read_text()
