"""The committed leaderboard pages are exactly what their committed result files render to."""

from __future__ import annotations

from pathlib import Path

import pytest

from calobench.leaderboard.render import render_suite, stale_files
from calobench.leaderboard.runner import SuitePaths
from calobench.leaderboard.suites import available_suites, load_suite
from calobench.results import read_results

ROOT = Path(__file__).resolve().parent.parent / "leaderboards"
COMMITTED = [name for name in available_suites() if (ROOT / name / "results").is_dir()]


def test_the_quick_leaderboard_is_committed() -> None:
    assert "quick" in COMMITTED


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_page_is_up_to_date(name: str) -> None:
    suite = load_suite(name)
    paths = SuitePaths(ROOT, suite.name)
    page = render_suite(suite.name, suite.title, paths.results, suite.published)
    assert stale_files(page, paths.directory) == [], "run `calobench leaderboard render` and commit the result"


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_results_are_complete(name: str) -> None:
    for result in read_results(ROOT / name / "results"):
        assert result["schema_version"] == 1
        if result["status"] == "finished":
            for key in ("report", "timing", "sampling", "training", "provenance", "dataset"):
                assert key in result, f"{result['model']}: {key} missing"
