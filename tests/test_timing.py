"""The repeat budget of the generation-time measurement (calobench.timing)."""

from __future__ import annotations

import numpy as np
import pytest

from calobench import timing
from calobench.leaderboard.suites import SuiteError, load_suite


@pytest.fixture
def fixed_call_seconds(monkeypatch):
    """Every ``sample`` call of a batch of B showers 'takes' B / 100 seconds; the calls are recorded."""
    calls: list[int] = []

    def fake_call(generator, energies, seed):
        calls.append(len(energies))
        return len(energies) / 100.0

    monkeypatch.setattr(timing, "time_one_call", fake_call)
    return calls


def test_all_repeats_when_they_fit_the_budget(fixed_call_seconds):
    result = timing.time_generator(object(), np.full(5, 1000.0), batch_sizes=(1, 100), repeats=3, max_seconds=10)
    for size in ("1", "100"):
        assert result["batch_sizes"][size]["repeats"] == 3
    assert fixed_call_seconds == [1] * 4 + [100] * 4  # one warm-up and three timed calls each
    assert result["batch_sizes"]["100"]["mean_ms"] == pytest.approx(10.0)  # 1 s / 100 showers


def test_fewer_repeats_when_the_warm_up_shows_they_would_exceed_the_budget(fixed_call_seconds):
    # a batch of 1000 takes 10 s: 3 repeats (30 s) exceed 25 s, two fit; a batch of 2000 (20 s) gets one
    result = timing.time_generator(object(), np.full(5, 1000.0), batch_sizes=(1000, 2000), repeats=3, max_seconds=25)
    assert result["batch_sizes"]["1000"]["repeats"] == 2
    assert result["batch_sizes"]["2000"]["repeats"] == 1
    assert not result["batch_sizes"]["2000"]["from_warmup"]
    assert fixed_call_seconds == [1000] * 3 + [2000] * 2


def test_a_warm_up_call_beyond_the_budget_is_the_measurement(fixed_call_seconds):
    # a batch of 3000 takes 30 s, more than the 25 s budget on its own: no second call
    result = timing.time_generator(object(), np.full(5, 1000.0), batch_sizes=(3000,), repeats=3, max_seconds=25)
    assert result["batch_sizes"]["3000"]["repeats"] == 1
    assert result["batch_sizes"]["3000"]["from_warmup"]
    assert result["batch_sizes"]["3000"]["mean_ms"] == pytest.approx(10.0)
    assert fixed_call_seconds == [3000]


def test_suite_timing_budget_is_read_and_checked(tmp_path):
    assert load_suite("quick").timing_max_seconds == 20
    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\ndataset = "synthetic-ds1-photons"\n[timing]\nmax_seconds = 0\n')
    with pytest.raises(SuiteError, match="max_seconds must be a positive number"):
        load_suite(path)
