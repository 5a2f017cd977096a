"""`make test` leaves the project environment as `make run` finds it (issue: the README's two commands
must not change each other's results): no test fixture is installed as a plugin, so the registered
generators are exactly calobench's own and those of the distributions under plugins/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import tomllib

REPOSITORY = Path(__file__).resolve().parent.parent

LIST_GENERATORS = """
import json
from calobench.plugins import PluginHost
host = PluginHost(strict=False)
print(json.dumps({name: host.generators.provider(name).distribution for name in host.generators.names()}))
"""


def _shipped_distributions() -> set[str]:
    names = {"calobench"}
    for project in sorted((REPOSITORY / "plugins").glob("*/pyproject.toml")):
        names.add(tomllib.loads(project.read_text())["project"]["name"])
    return names


def test_only_calobench_and_its_plugins_register_generators(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALOBENCH_") and k != "PYTHONPATH"}
    env["CALOBENCH_DATA"] = str(tmp_path / "data")
    # a fresh interpreter outside the repository: what an installed environment provides, not what tests added
    completed = subprocess.run(
        [sys.executable, "-c", LIST_GENERATORS], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    providers = json.loads(completed.stdout)
    assert set(providers.values()) == _shipped_distributions(), (
        "the project environment registers generators of other distributions (a test fixture installed by "
        f"`make test`?): {providers}"
    )
    assert "example-mean-shower" not in providers
