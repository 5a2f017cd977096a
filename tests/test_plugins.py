"""The plugin host, tested with fake *installed* distributions (dist-info directories on sys.path)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from calobench import plugins
from calobench.cli.main import main
from calobench.errors import PluginError, RegistryError
from calobench.plugins import PluginHost
from calobench.registry import Provider, Registry

GOOD = """
from calobench.cli.command import Command
from calobench.hookspecs import hookimpl
from calobench_example import MeanShower


class FakeGood(MeanShower):
    name = "fake-good-model"


@hookimpl
def calobench_generators():
    return [FakeGood]


@hookimpl
def calobench_commands():
    return [Command("fake-hello", "say hello", lambda parser: None, lambda args: print("hello from a plugin"))]
"""

RAISES = """
raise RuntimeError("this plugin is broken on import")
"""

GARBAGE = """
from calobench.hookspecs import hookimpl


@hookimpl
def calobench_generators():
    return [42, "not a class"]
"""

NOT_A_LIST = """
from calobench.hookspecs import hookimpl


@hookimpl
def calobench_generators():
    return "fake-model"
"""

DUPLICATE = """
from calobench.hookspecs import hookimpl
from calobench_example import MeanShower


class Clash(MeanShower):
    name = "fake-good-model"


@hookimpl
def calobench_generators():
    return [Clash]
"""

HOOK_RAISES = """
from calobench.hookspecs import hookimpl


@hookimpl
def calobench_metrics():
    raise ValueError("cannot build my metric")
"""

BAD_SIGNATURE = """
from calobench.hookspecs import hookimpl


@hookimpl
def calobench_generators(unexpected_argument):
    return []
"""

HIJACK = """
from calobench.hookspecs import hookimpl
from calobench_example import MeanShower


class Impostor(MeanShower):
    name = "baseline-uncorrelated"


@hookimpl
def calobench_generators():
    return [Impostor]
"""

SYS_EXIT_IN_HOOK = """
from calobench.hookspecs import hookimpl


@hookimpl
def calobench_generators():
    raise SystemExit("a plugin that calls sys.exit() in a hook")
"""

SYS_EXIT_ON_IMPORT = """
raise SystemExit(3)
"""

FAKES = {
    "fakegood": ("fake-good-dist", "1.2.3", GOOD),
    "fakeraises": ("fake-raises-dist", "0.1", RAISES),
    "fakegarbage": ("fake-garbage-dist", "0.2", GARBAGE),
    "fakenotalist": ("fake-notalist-dist", "0.3", NOT_A_LIST),
    "fakeduplicate": ("fake-duplicate-dist", "0.4", DUPLICATE),
    "fakehookraises": ("fake-hookraises-dist", "0.5", HOOK_RAISES),
    "fakebadsignature": ("fake-badsignature-dist", "0.6", BAD_SIGNATURE),
    "fakesysexit": ("fake-sysexit-dist", "0.7", SYS_EXIT_IN_HOOK),
    "fakeimportexit": ("fake-importexit-dist", "0.8", SYS_EXIT_ON_IMPORT),
}


def _install_fake(root: Path, module: str, dist: str, version: str, source: str) -> None:
    """Write a module plus a dist-info directory declaring a ``calobench`` entry point for it."""
    (root / f"{module}_mod.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[calobench]\n{module} = {module}_mod\n")


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A site directory holding every fake distribution, put on sys.path; the global host is restored after."""
    for module, (dist, version, source) in FAKES.items():
        _install_fake(tmp_path, module, dist, version, source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(plugins.STRICT_ENV, raising=False)
    monkeypatch.delenv(plugins.DISABLE_ENV, raising=False)
    previous = plugins.set_host(None)
    yield tmp_path
    plugins.set_host(previous)


def _fake_entry_points(*names: str) -> list[metadata.EntryPoint]:
    found = [ep for ep in metadata.entry_points(group="calobench") if ep.name in names]
    assert sorted(ep.name for ep in found) == sorted(names), "fake distributions were not discovered"
    return found


def test_good_plugin_registers_with_provenance(fake_site: Path) -> None:
    host = PluginHost(_fake_entry_points("fakegood"))
    record = host.record("fakegood")
    assert record.status == "loaded"
    assert (record.distribution, record.version) == ("fake-good-dist", "1.2.3")
    assert host.generators.provider("fake-good-model") == Provider("fakegood", "fake-good-dist", "1.2.3")
    assert "fake-hello" in host.commands
    assert host.commands.provider("plugins").distribution == "calobench"


def test_plugin_raising_on_import_is_reported_and_skipped(fake_site: Path, caplog: pytest.LogCaptureFixture) -> None:
    host = PluginHost(_fake_entry_points("fakegood", "fakeraises"))
    record = host.record("fakeraises")
    assert record.status == "failed"
    assert "RuntimeError: this plugin is broken on import" in record.error
    assert "fake-raises-dist 0.1" in caplog.text
    assert "fake-good-model" in host.generators  # the others still load


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("fakegarbage", "returned an invalid generator"),
        ("fakenotalist", "must return a list"),
        ("fakehookraises", "ValueError: cannot build my metric"),
        ("fakebadsignature", "unexpected_argument"),
    ],
)
def test_misbehaving_plugins_fail_cleanly(fake_site: Path, name: str, message: str) -> None:
    host = PluginHost(_fake_entry_points(name, "fakegood"))
    record = host.record(name)
    assert record.status == "failed"
    assert message in record.error
    assert record.provides == {}
    assert host.record("fakegood").status == "loaded"


def test_duplicate_name_is_refused_to_both_providers(fake_site: Path) -> None:
    host = PluginHost(_fake_entry_points("fakegood", "fakeduplicate"))
    # no winner, whatever the load order: both plugins stay loaded, the contested name is refused
    first, second = host.record("fakeduplicate"), host.record("fakegood")
    assert first.status == "loaded" and second.status == "loaded"
    assert "fake-good-model" not in host.generators and "fake-good-model" not in host.generators.names()
    with pytest.raises(RegistryError) as info:
        host.generators.get("fake-good-model")
    message = str(info.value)
    assert "fake-good-dist 1.2.3" in message and "fake-duplicate-dist 0.4" in message
    assert "CALOBENCH_DISABLE_PLUGINS" in message
    assert any("fake-duplicate-dist" in c for c in second.conflicts)
    assert any("fake-good-dist" in c for c in first.conflicts)
    assert "fake-hello" in host.commands  # the plugin's other names are unaffected


def test_disabling_one_claimant_gives_the_name_to_the_other(fake_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(plugins.DISABLE_ENV, "fakeduplicate")
    host = PluginHost(_fake_entry_points("fakegood", "fakeduplicate"))
    assert host.generators.provider("fake-good-model").distribution == "fake-good-dist"
    monkeypatch.setenv(plugins.DISABLE_ENV, "fakegood")
    host = PluginHost(_fake_entry_points("fakegood", "fakeduplicate"))
    assert host.generators.provider("fake-good-model").distribution == "fake-duplicate-dist"


def test_strict_mode_makes_a_conflict_fatal(fake_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(plugins.STRICT_ENV, "1")
    with pytest.raises(PluginError, match="fake-good-model.*also provided by"):
        PluginHost(_fake_entry_points("fakegood", "fakeduplicate"))


def test_a_plugin_cannot_take_a_builtin_name(fake_site: Path, tmp_path: Path) -> None:
    site = tmp_path / "hijack"
    site.mkdir()
    _install_fake(site, "fakehijack", "fake-hijack-dist", "6.6.6", HIJACK)
    import sys

    sys.path.insert(0, str(site))
    try:
        host = PluginHost(_fake_entry_points("fakehijack"))
    finally:
        sys.path.remove(str(site))
    with pytest.raises(RegistryError, match=r"baseline-uncorrelated.*calobench 0\.1\.0.*fake-hijack-dist 6\.6\.6"):
        host.generators.get("baseline-uncorrelated")


@pytest.mark.parametrize("name", ["fakesysexit", "fakeimportexit"])
def test_base_exceptions_in_plugins_are_isolated(fake_site: Path, name: str) -> None:
    host = PluginHost(_fake_entry_points(name, "fakegood"))
    record = host.record(name)
    assert record.status == "failed" and "SystemExit" in record.error
    assert host.record("fakegood").status == "loaded"


def test_strict_mode_makes_failures_fatal(fake_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(plugins.STRICT_ENV, "1")
    with pytest.raises(PluginError, match="fakeraises.*RuntimeError"):
        PluginHost(_fake_entry_points("fakeraises"))


def test_disable_skips_named_plugins(fake_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(plugins.DISABLE_ENV, "fakeraises, fakegood")
    host = PluginHost(_fake_entry_points("fakegood", "fakeraises"))
    assert host.record("fakeraises").status == "disabled"
    assert host.record("fakegood").status == "disabled"
    assert "fake-good-model" not in host.generators


def test_cli_plugins_lists_failed_plugin(
    fake_site: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(plugins.DISABLE_ENV, "fakeduplicate")
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith("fakeraises"))
    assert "fake-raises-dist" in line and "0.1" in line and "failed" in line
    assert "this plugin is broken on import" in out
    assert main(["fake-hello"]) == 0
    assert "hello from a plugin" in capsys.readouterr().out


def test_registry_suggests_close_names() -> None:
    registry: Registry = Registry("generator")
    provider = Provider("p", "d", "1")
    registry.add("caloflow-teacher", object(), provider)
    registry.add("caloflow-student", object(), provider)
    with pytest.raises(RegistryError, match="unknown generator 'caloflow-techer'; did you mean 'caloflow-teacher'"):
        registry.get("caloflow-techer")
    with pytest.raises(RegistryError, match="provided by plugin 'p' .* and by plugin 'q'"):
        registry.add("caloflow-teacher", object(), Provider("q", "e", "2"))


def test_example_plugin_registers_through_its_entry_point(example_plugin_entry_point: Path) -> None:
    """The README's example plugin (tests/example_plugin) loads through its declared entry point."""
    host = PluginHost()
    record = host.record("example")
    assert record.status == "loaded", record.error
    assert record.distribution == "calobench-example-plugin"
    assert "example-mean-shower" in host.generators
