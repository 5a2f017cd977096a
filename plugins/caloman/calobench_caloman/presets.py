"""Presets of ``caloman``.

Training keys come per stage with the prefixes ``epl_`` (layer-energy flow), ``vae_`` (the VAE) and
``flow_`` (the latent flow); see :mod:`calobench.generator.settings` for their meaning.

* ``paper``: the published configuration (arXiv 2211.15380; calo-man config/*.py, models.md sec. 4):
  VAE MLPs 3 x 512, latent flow 4 coupling layers with ResidualNet(64, 3 blocks), 8 bins, tail
  bound 1; layer-energy flow the same with hidden 8 (``epl=True`` config); Adam lr 1e-3, batch 512,
  gradient clipping 10, early stopping with patience 20; up to 300 epochs for the layer-energy flow
  and the VAE, 200 for the latent flow. The intrinsic dimension is measured on 20,000 training
  showers (the ``full`` metric preset's sample).
* ``quick``: sized for a 2-core CPU (34 s of training on synthetic DS1 photons on a quiet machine,
  sampling ~0.015 ms per shower at batch 1,000): 60,000 training showers; layer-energy flow 4
  coupling layers of width 32, 3 epochs; VAE MLPs 2 x 256, 6 epochs; latent flow 4 coupling layers
  of width 64 with one residual block, 2 epochs; one-cycle schedules; flow inputs standardized
  (``flow_scaling``, see :mod:`calobench_caloman.preprocessing`); the intrinsic dimension on 5,000
  showers (the ``quick`` metric preset's sample).
* ``smoke``: seconds, for tests.
"""

from __future__ import annotations

from typing import Any

from calobench.generator.settings import with_training_defaults

PREFIXES = ("epl_", "vae_", "flow_")


def _onecycle(max_lr: float, pct_start: float = 0.3) -> dict[str, Any]:
    return {"name": "onecycle", "max_lr": max_lr, "pct_start": pct_start, "div_factor": 10.0, "final_div_factor": 1e3}


_COMMON: dict[str, Any] = {
    "latent_dim": "auto",
    "id_showers": 5000,
    "shower_space": None,
    "flow_scaling": "absmax",
    "decoder_sigma": "single",
    "decoder_output": "mean",
    "u0_scale": None,
    "threshold_mev": None,
    "max_train_showers": None,
    "max_valid_showers": None,
    "vae_hidden": [512, 512, 512],
    "epl_layers": 4,
    "epl_hidden": 8,
    "epl_blocks": 3,
    "epl_bins": 8,
    "epl_tail_bound": 1.0,
    "flow_layers": 4,
    "flow_hidden": 64,
    "flow_blocks": 3,
    "flow_bins": 8,
    "flow_tail_bound": 1.0,
}

PRESETS: dict[str, dict[str, Any]] = {
    "smoke": with_training_defaults(
        {
            **_COMMON,
            "id_showers": 500,
            "max_train_showers": 256,
            "max_valid_showers": 128,
            "vae_hidden": [16],
            "epl_layers": 2,
            "epl_hidden": 8,
            "epl_blocks": 1,
            "epl_bins": 4,
            "flow_layers": 2,
            "flow_hidden": 8,
            "flow_blocks": 1,
            "flow_bins": 4,
            "epl_epochs": 1,
            "epl_batch_size": 64,
            "vae_epochs": 1,
            "vae_batch_size": 64,
            "flow_epochs": 1,
            "flow_batch_size": 64,
            "sample_batch_size": 1000,
        },
        prefixes=PREFIXES,
    ),
    "quick": with_training_defaults(
        {
            **_COMMON,
            "max_train_showers": 60000,
            "max_valid_showers": 5000,
            "flow_scaling": "standardize",
            "vae_hidden": [256, 256],
            "epl_hidden": 32,
            "epl_blocks": 1,
            "epl_tail_bound": 4.0,
            "flow_blocks": 1,
            "flow_tail_bound": 4.0,
            "epl_epochs": 3,
            "epl_batch_size": 1024,
            "epl_lr": 1e-3,
            "epl_schedule": _onecycle(5e-3),
            "epl_grad_clip": 10.0,
            "vae_epochs": 6,
            "vae_batch_size": 512,
            "vae_lr": 1e-3,
            "vae_schedule": _onecycle(3e-3),
            "vae_grad_clip": 10.0,
            "flow_epochs": 2,
            "flow_batch_size": 1024,
            "flow_lr": 1e-3,
            "flow_schedule": _onecycle(5e-3),
            "flow_grad_clip": 10.0,
            "sample_batch_size": 1000,
        },
        prefixes=PREFIXES,
    ),
    "paper": with_training_defaults(
        {
            **_COMMON,
            "id_showers": 20000,
            "epl_epochs": 300,
            "epl_batch_size": 512,
            "epl_lr": 1e-3,
            "epl_grad_clip": 10.0,
            "epl_patience": 20,
            "vae_epochs": 300,
            "vae_batch_size": 512,
            "vae_lr": 1e-3,
            "vae_grad_clip": 10.0,
            "vae_patience": 20,
            "flow_epochs": 200,
            "flow_batch_size": 512,
            "flow_lr": 1e-3,
            "flow_grad_clip": 10.0,
            "flow_patience": 20,
            "sample_batch_size": 10000,
        },
        prefixes=PREFIXES,
    ),
}
