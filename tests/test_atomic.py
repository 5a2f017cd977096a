"""Atomic writes: complete or absent, never half written, with the usual permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from calobench.atomic import atomic_path, write_json_atomic, write_text_atomic


def test_written_file_has_umask_permissions(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "a" / "file.txt", "hello")
    finally:
        os.umask(previous)
    assert path.read_text() == "hello"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_failure_keeps_the_previous_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = write_text_atomic(tmp_path / "file.txt", "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half written")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_json_is_sorted_and_refuses_nan_unless_allowed(tmp_path: Path) -> None:
    path = write_json_atomic(tmp_path / "x.json", {"b": 1, "a": [1.5]})
    assert path.read_text() == '{\n  "a": [\n    1.5\n  ],\n  "b": 1\n}\n'
    with pytest.raises(ValueError):
        write_json_atomic(tmp_path / "nan.json", {"x": float("nan")})
    assert not (tmp_path / "nan.json").exists()
    assert "NaN" in write_json_atomic(tmp_path / "ok.json", {"x": float("nan")}, allow_nan=True).read_text()
