"""The committed leaderboard pages are exactly what their committed result files render to."""

from __future__ import annotations

import re
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


def test_the_check_compares_what_a_reader_sees(tmp_path: Path) -> None:
    """Another matplotlib draws other clip-path ids and path data: not stale. Another number: stale."""
    suite = load_suite("quick")
    paths = SuitePaths(ROOT, suite.name)
    page = render_suite(suite.name, suite.title, paths.results, suite.published)
    html = page.files["index.html"]
    assert "<svg" in html and 'clip-path="url(#' in html
    redrawn = re.sub(r'clip-path="url\(#(\w+)\)"', r'clip-path="url(#\1x)"', html)
    redrawn = re.sub(r'<clipPath id="(\w+)"', r'<clipPath id="\1x"', redrawn).replace(' d="M ', ' d="M  ')
    for name, content in {**page.files, "index.html": redrawn}.items():
        (tmp_path / name).write_text(content)
    assert stale_files(page, tmp_path) == []
    readme = page.files["README.md"]
    number = re.search(r"\| (0\.\d{4}) ± ", readme)
    assert number is not None
    (tmp_path / "README.md").write_text(readme.replace(number.group(1), "0.1234", 1))
    (tmp_path / "index.html").write_text(redrawn.replace(number.group(1), "0.1234", 1))
    assert stale_files(page, tmp_path) == ["README.md", "index.html"]
