"""Presets of ``bib-ae``.

* ``paper``: the published sizes and schedules ("Getting High", arXiv 2005.05334; GH:BIBAE/BIBAE_Run.py,
  BIBAE_PP_Run.py, BIBAE_models.py; models.md sec. 3): latent 512 of which 24 encoded; encoder conv
  channels 8/16/32/64 (ngf 8) and an FC 4000 -> 768 head; decoder FC 768 -> 4000 -> 8000; critic
  width (ndf) 128; post-processor width 128; KL 0.05, latent MMD 100 (alpha 1 and 0.01), critic 1,
  latent critic 100, gradient penalties lambda = 10, 5 critic steps per generator step; Adam betas
  (0.5, 0.9), lr 5e-4 (latent critic 2e-3), StepLR gamma 0.95 per epoch, batch 8; the post-processor
  trained with MSE for 100 epochs, then with the sorted-kernel MMD (weight 5, kernel 100, stride
  25, cutoff 2000, alpha 200) plus MSE. The published run trains up to 1000 epochs on ~950k
  showers (GH:README.md); ``epochs`` is 100 here (set it with ``--set``). The paper samples the
  latent from N(0, 1).
* ``quick``: sized for a CPU with 2 cores (see the plugin README for the measured times).
* ``smoke``: seconds, for tests.

Keys (all can be changed with ``--set``): ``architecture`` (auto | mlp | conv3d | layer_conv),
``latent`` / ``latent_encoded``, ``energy_scale`` (the networks see voxel / E_inc x energy_scale),
``channels`` (conv channels per level), ``encoder_hidden``, ``decoder_hidden``, ``critic_hidden``
(MLP widths of the encoder head, the decoder and the MLP critic branches), ``critic_width``,
``pp_width``, the loss weights, ``critic_steps``, ``betas``, the training keys of the BIB-AE stage
(unprefixed), of the critics (``critic_lr``, ``critic_schedule``, ``latent_critic_lr``,
``latent_critic_schedule``), of the post-processor (``pp_*``, pretraining ``pp_pretrain_epochs``) and
of the latent flow (``flow_*``); the KDE (``kde_*``); ``latent_sampler`` (normal | kde | flow) and
``post_processor`` (true | false), which only act at sampling time; ``threshold_mev`` (null: the
training data's smallest non-zero voxel energy, its readout threshold).
"""

from __future__ import annotations

from typing import Any

from calobench.generator.settings import with_training_defaults

PREFIXES = ("", "pp_", "flow_")


def _step(gamma: float = 0.95) -> dict[str, Any]:
    return {"name": "step", "step_size": 1, "gamma": gamma}


_PUBLISHED: dict[str, Any] = {
    "architecture": "auto",
    "latent": 512,
    "latent_encoded": 24,
    "energy_scale": 1000.0,
    "output_transform": "linear",
    "log_scale": 1.0,
    "latent_energy": False,
    "kl_weight": 0.05,
    "latent_mmd_weight": 100.0,
    "adversarial_weight": 1.0,
    "latent_adversarial_weight": 100.0,
    "reconstruction_weight": 0.0,
    "linear_reconstruction_weight": 0.0,
    "energy_weight": 0.0,
    "gp_weight": 10.0,
    "latent_gp_weight": 10.0,
    "critic_steps": 5,
    "latent_critic_steps": 5,
    "latent_critic_batch": None,
    "betas": [0.5, 0.9],
    "lr": 5e-4,
    "schedule": _step(),
    "critic_lr": 5e-4,
    "critic_schedule": _step(),
    "latent_critic_lr": 2e-3,
    "latent_critic_schedule": _step(),
    "post_processor": True,
    "pp_noise": False,
    "pp_lr": 5e-4,
    "pp_schedule": _step(),
    "pp_mmd_weight": 5.0,
    "pp_mse_weight": 1.0,
    "pp_energy_score_weight": 0.0,
    "pp_mmd_kernel": 100,
    "pp_mmd_stride": 25,
    "pp_mmd_cutoff": 2000,
    "pp_mmd_alpha": 200.0,
    "pp_max_train_showers": None,
    "latent_sampler": "normal",
    "kde_energy_weight": 4.0,
    "kde_points": 20000,
    "kde_cv_points": 3000,
    "kde_bandwidths": [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0],
    "flow_blocks": 6,
    "flow_hidden": 64,
    "flow_bins": 8,
    "flow_tail_bound": 5.0,
    "flow_lr": 1e-3,
    "calibration": "none",
    "calibration_rho": 1.0,
    "calibration_quantiles": 64,
    "calibration_energy_bins": 10,
    "calibration_showers": 20000,
    "threshold_mev": None,
    "max_train_showers": None,
    "max_valid_showers": None,
}

PRESETS: dict[str, dict[str, Any]] = {
    "smoke": with_training_defaults(
        {
            **_PUBLISHED,
            "latent": 16,
            "latent_encoded": 4,
            "channels": [2, 4],
            "encoder_hidden": [16],
            "decoder_hidden": [16],
            "critic_hidden": [16],
            "critic_width": 8,
            "pp_width": 4,
            "critic_steps": 2,
            "latent_critic_steps": 1,
            "epochs": 1,
            "batch_size": 32,
            "pp_pretrain_epochs": 1,
            "pp_epochs": 1,
            "pp_batch_size": 32,
            "pp_mmd_kernel": 16,
            "pp_mmd_stride": 8,
            "pp_mmd_cutoff": 64,
            "calibration_showers": 256,
            "calibration_quantiles": 16,
            "kde_points": 200,
            "kde_cv_points": 60,
            "kde_bandwidths": [0.2, 0.5],
            "flow_blocks": 2,
            "flow_hidden": 8,
            "flow_epochs": 1,
            "flow_batch_size": 64,
            "max_train_showers": 256,
            "max_valid_showers": 64,
            "sample_batch_size": 1000,
        },
        prefixes=PREFIXES,
    ),
    "quick": with_training_defaults(
        {
            **_PUBLISHED,
            "output_transform": "log",
            "log_scale": 0.01,
            "latent_energy": True,
            "reconstruction_weight": 1.0,
            "linear_reconstruction_weight": 0.1,
            "channels": [4, 8, 16],
            "encoder_hidden": [256, 64],
            "decoder_hidden": [128, 256, 512],
            "critic_hidden": [256, 128],
            "critic_width": 64,
            "pp_width": 16,
            "critic_steps": 1,
            "latent_critic_steps": 1,
            "epochs": 3,
            "batch_size": 256,
            "lr": 1e-3,
            "critic_lr": 1e-3,
            "post_processor": True,
            "pp_pretrain_epochs": 1,
            "pp_epochs": 1,
            "pp_batch_size": 256,
            "pp_max_train_showers": 5000,
            "pp_mmd_kernel": 50,
            "pp_mmd_stride": 50,
            "pp_mmd_cutoff": 1000,
            "latent_sampler": "flow",
            "flow_blocks": 4,
            "flow_hidden": 32,
            "flow_epochs": 2,
            "flow_batch_size": 512,
            "calibration": "none",
            "calibration_rho": 0.3,
            "calibration_showers": 10000,
            "max_train_showers": 40000,
            "max_valid_showers": 5000,
            "sample_batch_size": 1000,
        },
        prefixes=PREFIXES,
    ),
    "paper": with_training_defaults(
        {
            **_PUBLISHED,
            "channels": [8, 16, 32, 64],
            "encoder_hidden": [4000, 768],
            "decoder_hidden": [768, 4000, 8000],
            "critic_hidden": [512, 256],
            "critic_width": 128,
            "pp_width": 128,
            "epochs": 100,
            "batch_size": 8,
            "pp_pretrain_epochs": 100,
            "pp_epochs": 100,
            "pp_batch_size": 8,
            "flow_epochs": 200,
            "flow_batch_size": 1024,
            "flow_lr": 1e-4,
            "sample_batch_size": 10000,
        },
        prefixes=PREFIXES,
    ),
}
