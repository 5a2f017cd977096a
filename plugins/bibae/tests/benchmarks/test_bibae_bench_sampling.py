"""Sampling speed of bib-ae on the CPU at batch 1 / 100 / 1,000 (run with ``--benchmark-only``).

The model has the ``quick`` architecture on DS1 photons (MLP variant) and on DS2 (3-D convolutions)
with untrained weights -- the cost of a pass does not depend on the weights --, a KDE of random
latents and calibration tables of random showers; timed: the quick preset's default (flow sampler,
no post-processor, copula calibration), the same without calibration, N(0, 1) with and without the
post-processor, the KDE. Each benchmark records ms per shower in its ``extra_info``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from calobench_bibae.generator import BIBAE
from calobench_bibae.samplers import LatentKDE
from torch import nn

from calobench.geometry import builtin_geometry

BATCHES = (1, 100, 1000)
#: (latent sampler, post-processor, calibration); the first is the quick preset's default
VARIANTS = (
    ("flow", False, "copula"),
    ("flow", False, "none"),
    ("normal", True, "none"),
    ("normal", False, "none"),
    ("kde", False, "copula"),
)


def _model(geometry: str) -> BIBAE:
    torch.manual_seed(0)
    model = BIBAE(builtin_geometry(geometry), preset="quick", device="cpu")
    model.log_e_mean, model.log_e_std, model.threshold_mev = float(np.log(1e4)), 2.0, 0.1
    model.modules = nn.ModuleDict(model.build_modules()).eval()
    rng = np.random.default_rng(0)
    k = model.config["latent_encoded"] + int(model.latent_energy)
    model.kde = LatentKDE.fit(rng.standard_normal((5000, k)), rng.standard_normal(5000), rng, 5000, 500, [0.3], 4.0)
    incident = torch.as_tensor(_energies(2000))
    fractions = torch.as_tensor(rng.exponential(1e-3, (2000, model.geometry.n_voxels)))
    model.data_marginals = model._tabulate(incident, fractions)
    model.calibration_energies = incident.float()
    for sampler, post, calibration in VARIANTS:
        if calibration != "none":
            model.config.update(latent_sampler=sampler, post_processor=post)
            model.generated_marginals_for_config()
    return model


@pytest.fixture(scope="module")
def models():
    return {name: _model(name) for name in ("ds1-photons", "ds2")}


def _energies(n: int) -> np.ndarray:
    return np.random.default_rng(0).choice(2.0 ** np.arange(8, 23), n)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize(("sampler", "post", "calibration"), VARIANTS)
@pytest.mark.parametrize("geometry", ["ds1-photons", "ds2"])
def test_sampling_speed(benchmark, models, geometry, sampler, post, calibration, batch):
    if geometry == "ds2" and (sampler, post, calibration) != VARIANTS[0]:
        pytest.skip("DS2: the default variant only (the samplers cost the same as on DS1)")
    model = models[geometry]
    model.config.update(latent_sampler=sampler, post_processor=post, calibration=calibration)
    energies = _energies(batch)
    rounds = {1: 20, 100: 10, 1000: 3}[batch]
    benchmark.pedantic(
        model.sample, args=(energies,), kwargs={"seed": 0, "batch_size": batch}, rounds=rounds, warmup_rounds=1
    )
    ms = benchmark.stats.stats.min / batch * 1e3
    benchmark.extra_info.update(
        {
            "model": model.name,
            "geometry": geometry,
            "preset": "quick",
            "latent_sampler": sampler,
            "post_processor": post,
            "calibration": calibration,
            "batch_size": batch,
            "ms_per_shower": ms,
            "n_parameters": model.n_parameters(),
            "threads": torch.get_num_threads(),
        }
    )
