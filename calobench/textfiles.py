"""Reading the text files a user can edit, damage or swap: JSON and TOML, always as UTF-8.

Run descriptions, result files, reports, leaderboard step files and suites are read through these
functions, so that whatever is wrong with such a file -- missing, a directory, unreadable, not
UTF-8, not JSON/TOML, a number too long to convert, nested too deeply -- is one
:class:`~calobench.errors.CalobenchError` (of the caller's class) that names the file and the
problem, never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from calobench.errors import CalobenchError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def read_text(path: str | Path, what: str = "file", error: type[CalobenchError] = CalobenchError) -> str:
    """The content of ``path`` decoded as UTF-8, else ``error`` naming ``what`` and the problem."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise error(f"{what} {path} cannot be read: it is a directory, not a file") from None
    except UnicodeDecodeError as exc:
        raise error(
            f"{what} {path} cannot be read: it is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start})"
        ) from None
    except OSError as exc:
        raise error(f"{what} {path} cannot be read: {exc.strerror or exc}") from exc


def parse_json(text: str, source: str, error: type[CalobenchError] = CalobenchError) -> Any:
    """``json.loads(text)`` with every failure as ``error`` (``source`` names the text)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{source} cannot be read: not valid JSON: {exc}") from None
    except RecursionError:
        raise error(f"{source} cannot be read: not valid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise error(f"{source} cannot be read: not valid JSON: {exc}") from None


def read_json(path: str | Path, what: str = "file", error: type[CalobenchError] = CalobenchError) -> Any:
    """The JSON value in ``path`` (UTF-8), else ``error`` naming ``what`` and the problem."""
    return parse_json(read_text(path, what, error), f"{what} {path}", error)


def read_toml(path: str | Path, what: str = "file", error: type[CalobenchError] = CalobenchError) -> dict[str, Any]:
    """The TOML table in ``path`` (UTF-8), else ``error`` naming ``what`` and the problem."""
    text = read_text(path, what, error)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{what} {path} cannot be read: not valid TOML: {exc}") from None
    except (RecursionError, ValueError) as exc:
        raise error(f"{what} {path} cannot be read: not valid TOML: {exc or 'nested too deeply'}") from None
