"""Shared fixtures: every test runs with its own data directory, never the user's cache.

The README's example plugin (``tests/example_plugin``) is importable by the tests but never
installed into the project environment: tests that need it registered fake its entry point
(:func:`example_plugin_entry_point`), so that `make test` leaves the environment as `make run` sees it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

EXAMPLE_PLUGIN = Path(__file__).resolve().parent / "example_plugin"
if str(EXAMPLE_PLUGIN) not in sys.path:
    sys.path.append(str(EXAMPLE_PLUGIN))


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALOBENCH_DATA", str(tmp_path_factory.getbasetemp() / "calobench-data"))


@pytest.fixture
def example_plugin_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A dist-info directory on sys.path declaring the example plugin's entry point, as if installed."""
    site = tmp_path / "example-site"
    info = site / "calobench_example_plugin-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: calobench-example-plugin\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[calobench]\nexample = calobench_example\n")
    monkeypatch.syspath_prepend(str(site))
    yield site
