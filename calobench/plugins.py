"""Loading plugins from the ``calobench`` entry-point group into registries with provenance.

Each entry point is loaded on its own. One that raises on import, fails pluggy's hook validation,
raises anything inside a hook (``SystemExit`` and other ``BaseException`` included, only
``KeyboardInterrupt`` passes) or returns something of the wrong type is recorded as *failed* (with
its distribution, version and error), logged, and skipped: none of its registrations are kept.
A name claimed by two plugins is a *conflict*: neither gets it, whatever order they load in; asking
for it is an error naming both providers, until the user disables one; both plugins keep their other
names. ``CALOBENCH_STRICT_PLUGINS=1`` turns a failure or a conflict into a
:class:`~calobench.errors.PluginError` (for CI); ``CALOBENCH_DISABLE_PLUGINS=a,b`` skips the named
entry points. The built-in pieces of calobench register through the same hooks.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any, Literal

import pluggy

from calobench import __version__, hookspecs
from calobench.errors import PluginError, RegistryError
from calobench.names import name_problem
from calobench.registry import Provider, Registry

log = logging.getLogger("calobench.plugins")

ENTRY_POINT_GROUP = "calobench"
STRICT_ENV = "CALOBENCH_STRICT_PLUGINS"
DISABLE_ENV = "CALOBENCH_DISABLE_PLUGINS"

#: Modules of the core that register built-in pieces through the plugin hooks.
BUILTIN_MODULES: tuple[str, ...] = (
    "calobench.cli.builtin_commands",
    "calobench.datasets.hooks",
    "calobench.simulator.hooks",
    "calobench.metrics.hooks",
    "calobench.generator.hooks",
    "calobench.leaderboard.hooks",
)

Status = Literal["loaded", "failed", "disabled"]


@dataclass
class PluginRecord:
    """What happened to one plugin: where it came from, whether it loaded, what it provides."""

    name: str
    distribution: str
    version: str
    status: Status
    error: str | None = None
    provides: dict[str, list[str]] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)  # messages about names another plugin also claims

    @property
    def provider(self) -> Provider:
        return Provider(self.name, self.distribution, self.version)


def _name_of_generator(value: Any) -> str:
    from calobench.generator.base import Generator

    if not (isinstance(value, type) and issubclass(value, Generator)):
        raise TypeError(f"expected a subclass of calobench.generator.Generator, got {value!r}")
    return value.name


def _name_of_instance(module: str, cls_name: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        cls = getattr(importlib.import_module(module), cls_name)
        if not isinstance(value, cls):
            raise TypeError(f"expected a {module}.{cls_name} instance, got {value!r}")
        return value.name

    return check


#: hook name -> (registry attribute, what the registry holds, function giving an element's name)
HOOKS: dict[str, tuple[str, str, Callable[[Any], str]]] = {
    "calobench_generators": ("generators", "generator", _name_of_generator),
    "calobench_datasets": ("datasets", "data set", _name_of_instance("calobench.datasets.spec", "DatasetSpec")),
    "calobench_metrics": ("metrics", "metric", _name_of_instance("calobench.metrics.base", "Metric")),
    "calobench_commands": ("commands", "command", _name_of_instance("calobench.cli.command", "Command")),
}


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _disabled_names() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


class PluginHost:
    """The loaded plugins and the registries they filled.

    Args:
        entry_points: entry points to load; by default those installed in the ``calobench`` group.
        builtin_modules: core modules registered first, as the ``calobench`` plugin.
        strict: raise on the first failing plugin; by default from ``CALOBENCH_STRICT_PLUGINS``.
    """

    def __init__(
        self,
        entry_points: Iterable[metadata.EntryPoint] | None = None,
        builtin_modules: Iterable[str] = BUILTIN_MODULES,
        strict: bool | None = None,
    ) -> None:
        self.strict = _env_flag(STRICT_ENV) if strict is None else strict
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.records: list[PluginRecord] = []
        self.generators: Registry = Registry("generator")
        self.datasets: Registry = Registry("data set")
        self.metrics: Registry = Registry("metric")
        self.commands: Registry = Registry("command")

        builtin = PluginRecord("calobench", "calobench", __version__, "loaded")
        modules = [importlib.import_module(name) for name in builtin_modules]
        self._register(builtin, modules)  # a failing built-in is a bug: let it raise
        if builtin.status == "failed":
            raise PluginError(f"calobench's built-in registrations failed: {builtin.error}")

        if entry_points is None:
            entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
        disabled = _disabled_names()
        for entry_point in sorted(entry_points, key=lambda ep: ep.name):
            self._load_entry_point(entry_point, disabled)

    # ------------------------------------------------------------------ loading
    def _load_entry_point(self, entry_point: metadata.EntryPoint, disabled: set[str]) -> None:
        dist = getattr(entry_point, "dist", None)
        record = PluginRecord(
            name=entry_point.name,
            distribution=getattr(dist, "name", None) or "unknown",
            version=getattr(dist, "version", None) or "unknown",
            status="loaded",
        )
        self.records.append(record)
        if entry_point.name in disabled:
            record.status = "disabled"
            return
        try:
            module = entry_point.load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            self._fail(record, f"import failed: {type(exc).__name__}: {exc}")
            return
        self._register(record, [module])

    def _register(self, record: PluginRecord, modules: list[ModuleType]) -> None:
        registered: list[ModuleType] = []
        try:
            for module in modules:
                plugin_name = record.name if len(modules) == 1 else f"{record.name}:{module.__name__}"
                self.pm.register(module, name=plugin_name)
                registered.append(module)
            pending = self._collect(record, registered)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # any failure of a plugin is reported, even SystemExit
            for module in registered:
                self.pm.unregister(module)
            self._fail(record, f"{type(exc).__name__}: {exc}")
            return
        if record not in self.records:
            self.records.insert(0, record)
        for registry_attr, name, value in pending:
            registry: Registry = getattr(self, registry_attr)
            record.provides.setdefault(registry_attr, []).append(name)
            if registry.providers_of(name):
                self._conflict(registry, name, record)
            else:
                registry.add(name, value, record.provider)

    def _conflict(self, registry: Registry, name: str, record: PluginRecord) -> None:
        """``record``'s plugin claims a name another plugin holds: refuse it to both and report."""
        providers = registry.refuse(name, record.provider)
        refused = "the name is refused to all of them until all but one are disabled (CALOBENCH_DISABLE_PLUGINS)"
        for other in self.records:
            if other.provider in providers:
                others = ", ".join(str(p) for p in providers if p != other.provider)
                message = f"{registry.kind} {name!r} is also provided by {others}; {refused}"
                other.conflicts = [m for m in other.conflicts if not m.startswith(f"{registry.kind} {name!r} ")]
                other.conflicts.append(message)
        text = f"plugin {record.name!r} ({record.distribution} {record.version}): {record.conflicts[-1]}"
        if self.strict:
            raise PluginError(text + f" [{STRICT_ENV} is set]")
        log.warning(text)

    def _collect(self, record: PluginRecord, modules: list[ModuleType]) -> list[tuple[str, str, Any]]:
        """Call every hook the modules implement; check everything before registering anything."""
        pending: list[tuple[str, str, Any]] = []
        seen: set[tuple[str, str]] = set()
        for module in modules:
            for hook_name, (registry_attr, kind, name_of) in HOOKS.items():
                function = getattr(module, hook_name, None)
                if function is None or self.pm.parse_hookimpl_opts(module, hook_name) is None:
                    continue
                try:
                    result = function()
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:  # a hook may raise anything, even SystemExit
                    raise PluginError(f"hook {hook_name} raised {type(exc).__name__}: {exc}") from exc
                if result is None:
                    continue
                if isinstance(result, (str, bytes, dict)) or not isinstance(result, Iterable):
                    raise PluginError(f"hook {hook_name} must return a list, got {type(result).__name__}")
                for value in result:
                    try:
                        name = name_of(value)
                    except Exception as exc:
                        raise PluginError(f"hook {hook_name} returned an invalid {kind}: {exc}") from exc
                    problem = name_problem(name)
                    if problem is not None:
                        raise PluginError(f"hook {hook_name} returned a {kind} with invalid name {name!r}: {problem}")
                    if (registry_attr, name) in seen:
                        raise RegistryError(f"{kind} {name!r} is registered twice by {record.provider}")
                    seen.add((registry_attr, name))
                    pending.append((registry_attr, name, value))
        return pending

    def _fail(self, record: PluginRecord, error: str) -> None:
        record.status = "failed"
        record.error = error
        message = f"plugin {record.name!r} ({record.distribution} {record.version}) failed and is skipped: {error}"
        if self.strict:
            raise PluginError(message + f" [{STRICT_ENV} is set]")
        log.warning(message)

    # ------------------------------------------------------------------ queries
    def record(self, name: str) -> PluginRecord:
        for record in self.records:
            if record.name == name:
                return record
        raise PluginError(f"no plugin named {name!r}")

    @property
    def failed(self) -> list[PluginRecord]:
        return [r for r in self.records if r.status == "failed"]

    @property
    def conflicted(self) -> list[PluginRecord]:
        """Plugins that claim a name another plugin also claims."""
        return [r for r in self.records if r.conflicts]


_HOST: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, loaded on first use."""
    global _HOST
    if _HOST is None:
        _HOST = PluginHost()
    return _HOST


def set_host(host: PluginHost | None) -> PluginHost | None:
    """Replace the process-wide host (tests); returns the previous one. ``None`` forces a reload."""
    global _HOST
    previous, _HOST = _HOST, host
    return previous


def generators() -> Registry:
    return get_host().generators


def datasets() -> Registry:
    return get_host().datasets


def metrics() -> Registry:
    return get_host().metrics


def commands() -> Registry:
    return get_host().commands
