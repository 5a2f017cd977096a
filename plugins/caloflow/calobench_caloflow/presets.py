"""Presets of ``caloflow-teacher`` and ``caloflow-student`` (the card: ``FIDELITY.md``).

* ``paper``: the configuration that produced the published numbers, per geometry. The dicts below
  are DS1 photons (Ian-Pang/caloflow-for-calochallenge at f29cd71, run_gamma_2023.py and README);
  :data:`PAPER_BY_GEOMETRY` replaces what differs for DS1 pions (run_piplus_2023.py, README) and
  CaloGAN (Ian-Pang/AD_with_CF at 6aec256, run.py, the cleaned-up CaloFlow I/II code). A
  ``paper`` generator applies them for its geometry to every key not set explicitly. ``null``
  widths mean "published for this geometry".
* ``quick``: the published method at CPU size, so that ``make run`` with every model of the suite
  fits 20 minutes on a slow 2-core machine: Flow I as published (it is tiny) for 4 epochs; Flow II
  3 blocks of MADE(2 x 64) with 4 bins for 5 epochs, both on 70,000 training showers at batch 500
  (the pion teacher's batch); the student of the teacher's shape, started from the teacher's MADE
  weights, 1 epoch on 60,000 showers (from scratch its KL after that epoch is 204 nats instead of
  8.8: FIDELITY.md). The schedules are CaloFlow's OneCycle (its Flow I, pion-teacher and student
  schedule) over the short run: the photon teacher's CyclicLR has 850-step half cycles, more than
  the 700 steps quick runs.
* ``smoke``: seconds, for tests.
"""

from __future__ import annotations

from typing import Any

from calobench.generator.settings import with_training_defaults


def onecycle(max_lr: float, pct_start: float = 0.4, div_factor: float = 25.0) -> dict:
    """torch's OneCycleLR as CaloFlow configures it (three phases, cosine, final divisor 1e4,
    momentum cycled between 0.85 and 0.95; run_gamma_2023.py:543, 659)."""
    return {
        "name": "onecycle",
        "max_lr": max_lr,
        "pct_start": pct_start,
        "div_factor": div_factor,
        "final_div_factor": 1e4,
        "three_phase": True,
    }


def multistep(milestones: list[int]) -> dict:
    """torch's MultiStepLR halving the learning rate at ``milestones`` (epochs; AD_with_CF run.py)."""
    return {"name": "multistep", "milestones": milestones, "gamma": 0.5}


_COMMON: dict[str, Any] = {
    "tail_bound": 14.0,
    "noise": True,
    "threshold_mev": 0.01,
    "u0_scale": None,
    "dtype": "float32",
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
            "flow2_dropout": 0.05,
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
            "flow2_dropout": 0.05,
            "flow1_epochs": 4,
            "flow1_batch_size": 500,
            "flow1_lr": 1e-4,
            "flow1_schedule": onecycle(3e-3),
            "flow2_epochs": 5,
            "flow2_batch_size": 500,
            "flow2_lr": 1e-4,
            "flow2_schedule": onecycle(3e-3),
            "sample_batch_size": 1000,
        },
        prefixes=("flow1_", "flow2_"),
    ),
    "paper": with_training_defaults(
        {
            **_COMMON,
            "dtype": "float64",
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
            "flow1_schedule": onecycle(1e-3),
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
    "z_energies": None,
    "accumulation": [],
    "max_train_showers": None,
}

STUDENT_PRESETS: dict[str, dict[str, Any]] = {
    "smoke": with_training_defaults(
        {
            **_STUDENT_COMMON,
            "hidden": 16,
            "dropout": 0.05,
            "max_train_showers": 256,
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
            "dropout": 0.05,
            "max_train_showers": 60000,
            "epochs": 1,
            "batch_size": 250,
            "lr": 1e-4,
            "schedule": onecycle(2e-3),
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
            "schedule": onecycle(1e-3),
            "sample_batch_size": 10000,
        }
    ),
}

#: What the ``paper`` configuration changes for DS1 pions and CaloGAN (keys of either generator;
#: each generator takes those it has). Photons use the dicts above as they are.
PAPER_BY_GEOMETRY: dict[str, dict[str, Any]] = {
    "ds1-pions": {
        # teacher (README: --batch_size 500; run_piplus_2023.py:285, 997): Flow I's OneCycle is
        # hard-wired to 423 steps per epoch = ceil(84,560 / 200), i.e. batch 200
        "flow1_lr": 1e-3,
        "flow2_lr": 1e-4,
        "flow2_batch_size": 500,
        "flow2_schedule": onecycle(1e-3, pct_start=0.45),
        # student (README: 150 epochs, batch 175; run_piplus_2023.py:682, 725)
        "epochs": 150,
        "schedule": onecycle(1e-3, div_factor=50.0),
    },
    "calogan": {
        # teacher (AD_with_CF run.py:111-113, 494-497, 828-833, 1258)
        "flow1_epochs": 75,
        "flow1_lr": 1e-4,
        "flow1_schedule": multistep([5, 15, 40, 60]),
        "flow2_lr": 1e-4,
        "flow2_schedule": multistep([50]),
        # student (run.py:936-940, 1099-1122): batch 200, gradients summed over 2, 4, 8, 16 batches
        "batch_size": 200,
        "schedule": multistep([10, 40, 70]),
        "accumulation": [[0, 2], [10, 4], [40, 8], [70, 16]],
    },
}
