"""The automatic latent size: calobench's intrinsic-dimension estimate on the training showers."""

from __future__ import annotations

import pytest
from calobench_caloman.dimension import RULE, LatentChoice, choose_latent_dim, rule
from caloman_data import manifold_showers, tiny_showers

from calobench.errors import ConfigError
from calobench.metrics.intrinsic_dimension import shower_intrinsic_dimension


@pytest.mark.parametrize("dimension", [4, 8, 12])
def test_showers_on_a_manifold_of_known_dimension_get_that_latent_size(dimension):
    showers = manifold_showers(dimension, 1000, seed=dimension)
    choice = choose_latent_dim("auto", showers.energies, 1.0, max_showers=1000, seed=0)
    assert abs(choice.latent_dim - dimension) <= 0.2 * dimension, choice
    assert choice.requested == "auto" and choice.rule == RULE and choice.n_showers == 1000
    assert choice.error is not None and 0 < choice.error < 1


def test_auto_uses_the_core_metric_on_a_seeded_subsample():
    showers = manifold_showers(6, 900, seed=1)
    choice = choose_latent_dim("auto", showers.energies, 1.0, max_showers=400, seed=3)
    again = choose_latent_dim("auto", showers.energies, 1.0, max_showers=400, seed=3)
    assert choice == again and choice.n_showers == 400
    whole = shower_intrinsic_dimension(showers.energies, 1.0, n_bootstrap=2)
    assert abs(choice.estimate - whole.value) < 0.15 * whole.value


def test_rule_and_explicit_sizes():
    assert rule(19.6) == 20 and rule(0.4) == 2
    showers = tiny_showers(n=30)
    fixed = choose_latent_dim(7, showers.energies, 1.0, max_showers=10, seed=0)
    assert fixed == LatentChoice(7, 7) and fixed.estimate is None and "set" in fixed.describe()
    assert LatentChoice.from_dict(fixed.to_dict()) == fixed
    for bad in ("seven", 0, 1, 2.5, True):
        with pytest.raises(ConfigError, match="latent_dim"):
            choose_latent_dim(bad, showers.energies, 1.0, max_showers=10, seed=0)
    with pytest.raises(ConfigError, match="more than 21 training showers"):
        choose_latent_dim("auto", showers[:20].energies, 1.0, max_showers=10, seed=0)
