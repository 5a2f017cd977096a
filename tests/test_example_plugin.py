"""The README's example plugin honours the generator contract (as every plugin's own tests should)."""

from __future__ import annotations

from calobench.testing import check_generator_contract, random_showers


def test_example_plugin_contract() -> None:
    from calobench_example import MeanShower

    train = random_showers("ds1-photons", n=200, seed=0)
    check_generator_contract(MeanShower, train)
