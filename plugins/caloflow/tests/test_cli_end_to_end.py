"""The acceptance path at smoke size: train the teacher, train the student from it, sample, evaluate."""

from __future__ import annotations

import json

import numpy as np

from calobench.cli.main import main
from calobench.formats import read_showers
from calobench.testing import write_random_file


def test_train_teacher_then_student_then_sample_and_evaluate(tmp_path, capsys):
    train = write_random_file(tmp_path / "train.h5", "ds1-photons", n=200, seed=0)
    reference = write_random_file(tmp_path / "reference.h5", "ds1-photons", n=100, seed=1)
    teacher, student = tmp_path / "teacher", tmp_path / "student"
    assert main(["train", "caloflow-teacher", "--dataset", str(train), "--preset", "smoke", "--out", str(teacher)]) == 0
    assert (
        main(
            [
                "train",
                "caloflow-student",
                "--dataset",
                str(train),
                "--preset",
                "smoke",
                "--out",
                str(student),
                "--set",
                f"teacher_checkpoint={teacher}",
            ]
        )
        == 0
    )
    generated = tmp_path / "generated.h5"
    assert main(["sample", "--checkpoint", str(student), "--showers", "60", "--out", str(generated)]) == 0
    showers = read_showers(generated)
    assert showers.energies.shape == (60, 368) and np.isfinite(showers.energies).all()
    out = tmp_path / "evaluation"
    assert (
        main(
            [
                "evaluate",
                str(generated),
                "--reference",
                str(reference),
                "--metrics",
                "separation_power",
                "--preset",
                "smoke",
                "--no-plots",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    assert report["separation_power_summary"]["etot_einc"] is not None
    capsys.readouterr()


def test_student_without_teacher_is_one_clear_error(tmp_path, capsys):
    train = write_random_file(tmp_path / "train.h5", "ds1-photons", n=50, seed=0)
    assert (
        main(
            [
                "train",
                "caloflow-student",
                "--dataset",
                str(train),
                "--preset",
                "smoke",
                "--out",
                str(tmp_path / "student"),
            ]
        )
        != 0
    )
    assert "teacher_checkpoint" in capsys.readouterr().err
