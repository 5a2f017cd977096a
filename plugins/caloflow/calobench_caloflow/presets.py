"""Presets of ``caloflow-teacher`` and ``caloflow-student``.

* ``paper``: the published sizes and schedules (models.md sec. 1.1 and 1.4; CFDS1 run_gamma_2023.py):
  Flow I 6 blocks x MADE(3 x 64), OneCycle to 1e-3, 100 epochs; Flow II 8 blocks x MADE(2 x 378
  photons / 533 pions), 8 bins, tail bound 14, dropout 0.05, CyclicLR triangular2 (5e-5 .. 2e-3,
  850 steps up), 100 epochs, batch 200; student MADE width 736 photons / 500 pions / 504 CaloGAN,
  batch 175, OneCycle to 1e-3, 100 epochs. ``null`` widths mean "published for this geometry".
  The pion teacher's published schedule (OneCycle to 1e-3, batch 500) and the pion student's 150
  epochs differ from the photon ones used here; set them with ``--set``.
* ``quick``: sized for a CPU with 2 cores, so that ``make run`` with every model of the suite fits
  20 minutes on a slow 2-core machine too: teacher (Flow I 4 epochs, Flow II 5 epochs, on 70,000
  training showers) and student (1 epoch of 60,000 from the teacher's weights) together train in
  about 5.5 minutes on synthetic DS1 photons there (README: what the cut cost); timing the teacher
  at batch 1,000 -- 368 sequential MADE passes per block -- takes half a minute. Flow I keeps its
  published architecture (it is tiny).
  Flow II: 3 blocks of MADE(2 x 64) with 4 bins, the best validation likelihood among the shapes of
  equal sampling cost we tried (2 x 48 / 4 x 48 / 3 x 64 / 2 x 96 wide, 2-8 bins); the student has the
  teacher's shape and starts from its weights.
* ``smoke``: seconds, for tests.
"""

from __future__ import annotations

from typing import Any

from calobench.generator.settings import with_training_defaults


def _onecycle(max_lr: float, pct_start: float = 0.4, three_phase: bool = True, div_factor: float = 25.0) -> dict:
    return {
        "name": "onecycle",
        "max_lr": max_lr,
        "pct_start": pct_start,
        "div_factor": div_factor,
        "final_div_factor": 1e4,
        "three_phase": three_phase,
    }


_COMMON: dict[str, Any] = {
    "tail_bound": 14.0,
    "noise": True,
    "threshold_mev": None,
    "u0_scale": None,
    "max_train_showers": None,
    "max_valid_showers": None,
}

TEACHER_PRESETS: dict[str, dict[str, Any]] = {
    "smoke": with_training_defaults(
        {
            **_COMMON,
            "max_train_showers": 256,
            "max_valid_showers": 128,
            "flow1_blocks": 2,
            "flow1_hidden": 8,
            "flow1_hidden_layers": 2,
            "flow1_bins": 4,
            "flow2_blocks": 2,
            "flow2_hidden": 8,
            "flow2_hidden_layers": 2,
            "flow2_bins": 4,
            "flow2_dropout": 0.0,
            "flow1_epochs": 1,
            "flow1_batch_size": 64,
            "flow1_lr": 1e-3,
            "flow2_epochs": 1,
            "flow2_batch_size": 64,
            "flow2_lr": 1e-3,
            "sample_batch_size": 1000,
        },
        prefixes=("flow1_", "flow2_"),
    ),
    "quick": with_training_defaults(
        {
            **_COMMON,
            "max_train_showers": 70000,
            "max_valid_showers": 10000,
            "flow1_blocks": 6,
            "flow1_hidden": 64,
            "flow1_hidden_layers": 3,
            "flow1_bins": 8,
            "flow2_blocks": 3,
            "flow2_hidden": 64,
            "flow2_hidden_layers": 2,
            "flow2_bins": 4,
            "flow2_dropout": 0.0,
            "flow1_epochs": 4,
            "flow1_batch_size": 500,
            "flow1_lr": 1e-4,
            "flow1_schedule": _onecycle(3e-3),
            "flow2_epochs": 5,
            "flow2_batch_size": 500,
            "flow2_lr": 1e-4,
            "flow2_schedule": _onecycle(3e-3),
            "flow2_grad_clip": 100.0,
            "sample_batch_size": 1000,
        },
        prefixes=("flow1_", "flow2_"),
    ),
    "paper": with_training_defaults(
        {
            **_COMMON,
            "threshold_mev": 0.01,
            "flow1_blocks": 6,
            "flow1_hidden": 64,
            "flow1_hidden_layers": 3,
            "flow1_bins": 8,
            "flow2_blocks": 8,
            "flow2_hidden": None,
            "flow2_hidden_layers": 2,
            "flow2_bins": 8,
            "flow2_dropout": 0.05,
            "flow1_epochs": 100,
            "flow1_batch_size": 200,
            "flow1_lr": 1e-4,
            "flow1_schedule": _onecycle(1e-3),
            "flow2_epochs": 100,
            "flow2_batch_size": 200,
            "flow2_lr": 5e-5,
            "flow2_schedule": {
                "name": "cyclic",
                "base_lr": 5e-5,
                "max_lr": 2e-3,
                "step_size_up": 850,
                "mode": "triangular2",
            },
            "sample_batch_size": 10000,
        },
        prefixes=("flow1_", "flow2_"),
    ),
}

_STUDENT_COMMON: dict[str, Any] = {
    "teacher_checkpoint": None,
    "hidden_layers": 2,
    "init_from_teacher": False,
    "guided": True,
    "beta": 0.5,
    "noise_width": 1.0,
    "max_train_showers": None,
    "max_valid_showers": None,
}

STUDENT_PRESETS: dict[str, dict[str, Any]] = {
    "smoke": with_training_defaults(
        {
            **_STUDENT_COMMON,
            "hidden": 16,
            "dropout": 0.0,
            "max_train_showers": 256,
            "max_valid_showers": 128,
            "epochs": 1,
            "batch_size": 64,
            "lr": 1e-3,
            "sample_batch_size": 1000,
        }
    ),
    "quick": with_training_defaults(
        {
            **_STUDENT_COMMON,
            "hidden": 64,
            "init_from_teacher": True,
            "dropout": 0.0,
            "max_train_showers": 60000,
            "max_valid_showers": 5000,
            "epochs": 1,
            "batch_size": 250,
            "lr": 1e-4,
            "schedule": _onecycle(2e-3),
            "grad_clip": 100.0,
            "sample_batch_size": 1000,
        }
    ),
    "paper": with_training_defaults(
        {
            **_STUDENT_COMMON,
            "hidden": None,
            "dropout": 0.05,
            "epochs": 100,
            "batch_size": 175,
            "lr": 1e-4,
            "schedule": _onecycle(1e-3),
            "sample_batch_size": 10000,
        }
    ),
}
