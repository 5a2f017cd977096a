"""Presets of ``caloinn`` and ``caloinn-vae``.

* ``paper``: the backup table of the CaloINN talk (shared/seeds/003; arXiv 2312.09290) and the
  INN cards (shared/reference/models.md sec. 2). ``null`` entries are filled per geometry from
  :data:`INN_PUBLISHED` / :data:`VAE_PUBLISHED` (DS1: 12 rational-quadratic blocks, subnets of 4
  linear layers, 450 epochs, batch 512; DS2: 14 cubic blocks, 3 layers, 200 epochs, batch 256;
  VAE hidden 5000/1000/500, 1500/1000/500, 2000/1000/500 and latent 50/50/300 for DS1/DS2/DS3;
  thresholds 2 keV DS1 and 15.15 keV DS2/DS3). CaloGAN, not part of the paper, takes the DS1 sizes.
* ``quick``: a CPU with 2 cores; each model trains in about a minute on synthetic DS1 photons (see
  the plugin README for the measured figures and how the sizes were chosen).
* ``smoke``: seconds, for tests.
"""

from __future__ import annotations

from typing import Any

from calobench.generator.settings import with_training_defaults


def onecycle(max_lr: float, div_factor: float = 10.0, pct_start: float = 0.3) -> dict[str, Any]:
    """OneCycleLR (Smith & Topin, arXiv 1708.07120), CaloINN's ``one_cycle_lr``."""
    return {"name": "onecycle", "max_lr": max_lr, "div_factor": div_factor, "pct_start": pct_start}


# ---------------------------------------------------------------------- INN
#: Published INN settings per geometry (DS1 card; DS2: cubic splines, seed table).
_INN_DS1 = {"blocks": 12, "subnet_layers": 4, "spline": "rational_quadratic", "epochs": 450, "batch_size": 512}
INN_PUBLISHED: dict[str, dict[str, Any]] = {
    "ds1-photons": _INN_DS1,
    "ds1-pions": _INN_DS1,
    "calogan": _INN_DS1,
    "ds2": {"blocks": 14, "subnet_layers": 3, "spline": "cubic", "epochs": 200, "batch_size": 256},
}

_INN_COMMON: dict[str, Any] = {
    "hidden": 256,
    "bins": 10,
    "tail_bound": 18.0,
    "alpha": 1e-8,
    "noise_width": 5e-6,
    "u_transform": "log",
    "u_noise": 0.0,
    "leftover_to_first_empty_layer": False,
    "dropout": 0.0,
    "threshold_mev": None,
    "max_train_showers": None,
    "max_valid_showers": None,
    "optimizer": "adamw",
    "weight_decay": 0.01,
    "standardize_condition": False,
}

INN_PRESETS: dict[str, dict[str, Any]] = {
    "smoke": with_training_defaults(
        {
            **_INN_COMMON,
            "blocks": 2,
            "hidden": 16,
            "subnet_layers": 2,
            "bins": 4,
            "spline": "rational_quadratic",
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
            **_INN_COMMON,
            "blocks": 4,
            "hidden": 64,
            "subnet_layers": 3,
            "bins": 8,
            "spline": "rational_quadratic",
            # u's through the logit, dequantized over bands of 1e-4, empty trailing layers' fractions 1
            "u_transform": "logit",
            "u_noise": 1e-4,
            "leftover_to_first_empty_layer": True,
            "max_train_showers": 50000,
            "max_valid_showers": 5000,
            "epochs": 2,
            "batch_size": 256,
            "lr": 1e-4,
            "schedule": onecycle(3e-3, div_factor=10.0),
            "grad_clip": 100.0,
            "sample_batch_size": 1000,
        }
    ),
    "paper": with_training_defaults(
        {
            **_INN_COMMON,
            "blocks": None,
            "subnet_layers": None,
            "spline": None,
            "epochs": None,
            "batch_size": None,
            "lr": 1e-5,
            "schedule": onecycle(1e-4),
            "sample_batch_size": 10000,
        }
    ),
}

# ---------------------------------------------------------------------- VAE + INN
_VAE_DS1 = {"vae_hidden": [5000, 1000, 500], "latent": 50, "smear_kernel": 3, "smear_stride": 1}
VAE_PUBLISHED: dict[str, dict[str, Any]] = {
    "ds1-photons": {**_VAE_DS1, "threshold_mev": 2e-3},
    "ds1-pions": {**_VAE_DS1, "threshold_mev": 2e-3},
    "calogan": dict(_VAE_DS1),
    "ds2": {
        "vae_hidden": [1500, 1000, 500],
        "latent": 50,
        "smear_kernel": 7,
        "smear_stride": 3,
        "threshold_mev": 0.01515,
    },
    "ds3": {
        "vae_hidden": [2000, 1000, 500],
        "latent": 300,
        "smear_kernel": 7,
        "smear_stride": 5,
        "threshold_mev": 0.01515,
    },
}

_VAE_COMMON: dict[str, Any] = {
    "vae_hidden": None,
    "latent": None,
    "beta": 1e-9,
    "gamma": 1e3,
    "smear_kernel": None,
    "smear_stride": None,
    "smear_centre": 0.6,
    "decoder_noise": "none",
    "residual_quantiles": 33,
    "residual_showers": 50000,
    "threshold_mev": None,
    "inn_blocks": 18,
    "inn_hidden": 32,
    "inn_subnet_layers": 3,
    "inn_bins": 10,
    "inn_tail_bound": 20.0,
    "u_noise": 0.0,
    "u_scale": 0.9,
    "leftover_to_first_empty_layer": False,
    "max_train_showers": None,
    "max_valid_showers": None,
    "vae_optimizer": "adam",
    "inn_optimizer": "adamw",
    "inn_weight_decay": 0.01,
    "standardize_condition": False,
}

VAE_PRESETS: dict[str, dict[str, Any]] = {
    "smoke": with_training_defaults(
        {
            **_VAE_COMMON,
            "vae_hidden": [32],
            "latent": 4,
            "smear_kernel": 3,
            "smear_stride": 1,
            "decoder_noise": "empirical",
            "inn_blocks": 2,
            "inn_hidden": 8,
            "inn_subnet_layers": 2,
            "inn_bins": 4,
            "max_train_showers": 256,
            "max_valid_showers": 128,
            "vae_epochs": 1,
            "vae_batch_size": 64,
            "vae_lr": 1e-3,
            "inn_epochs": 1,
            "inn_batch_size": 64,
            "inn_lr": 1e-3,
            "sample_batch_size": 1000,
        },
        prefixes=("vae_", "inn_"),
    ),
    "quick": with_training_defaults(
        {
            **_VAE_COMMON,
            "vae_hidden": [512, 256],
            "latent": 32,
            "gamma": 1.0,
            "smear_kernel": 3,
            "smear_stride": 1,
            "decoder_noise": "empirical",
            # logit(u), not logit(0.9 u), with bands of 1e-4 for the point masses at 0 and 1, and the
            # undefined fractions of empty trailing layers set to 1 (README: the measured gain)
            "u_scale": 1.0,
            "u_noise": 1e-4,
            "leftover_to_first_empty_layer": True,
            "inn_blocks": 6,
            "inn_hidden": 32,
            "max_train_showers": 60000,
            "max_valid_showers": 5000,
            "vae_epochs": 3,
            "vae_batch_size": 256,
            "vae_lr": 1e-3,
            "vae_schedule": onecycle(1e-3, div_factor=10.0),
            "inn_epochs": 3,
            "inn_batch_size": 512,
            "inn_lr": 1e-4,
            "inn_schedule": onecycle(1e-3, div_factor=10.0),
            "inn_grad_clip": 100.0,
            "sample_batch_size": 1000,
        },
        prefixes=("vae_", "inn_"),
    ),
    "paper": with_training_defaults(
        {
            **_VAE_COMMON,
            "vae_epochs": 1000,
            "vae_batch_size": 256,
            "vae_lr": 1e-4,
            "inn_epochs": 200,
            "inn_batch_size": 256,
            "inn_lr": 1e-5,
            "inn_schedule": onecycle(1e-4),
            "sample_batch_size": 10000,
        },
        prefixes=("vae_", "inn_"),
    ),
}
