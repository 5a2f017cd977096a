"""Name registries that remember who provided each entry.

Every generator, data set, metric and command is registered under a unique name together with
its :class:`Provider` (plugin name, distribution and version), so that results can record which
code produced them. Two plugins claiming the same name never make a silent winner: the name is
*refused* (:meth:`Registry.refuse`) and asking for it raises an error that names every provider
and says how to disable one, whatever order the plugins loaded in.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from calobench.errors import RegistryError

T = TypeVar("T")


@dataclass(frozen=True)
class Provider:
    """Who registered an entry: the plugin (entry-point) name, its distribution and version."""

    plugin: str
    distribution: str
    version: str

    def __str__(self) -> str:
        return f"plugin {self.plugin!r} ({self.distribution} {self.version})"


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    value: T
    provider: Provider


def suggestion_text(name: str, known: Iterable[str]) -> str:
    """``"; did you mean 'a' or 'b'?"`` for the closest known names, or a list of all of them."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    if close:
        return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    if known:
        shown = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
        return f"; known names: {shown}"
    return "; nothing is registered"


class Registry(Generic[T]):
    """A mapping from names to registered objects with provenance.

    Args:
        kind: what the registry holds, used in messages ("generator", "data set", ...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._refused: dict[str, list[Provider]] = {}

    def add(self, name: str, value: T, provider: Provider) -> None:
        """Register ``value`` as ``name``; a name that is taken or refused raises :class:`RegistryError`."""
        if not isinstance(name, str) or not name:
            raise RegistryError(f"{provider} registered a {self.kind} with an invalid name {name!r}")
        if name in self._entries or name in self._refused:
            raise RegistryError(self._clash_text(name, [*self.providers_of(name), provider]))
        self._entries[name] = Entry(name, value, provider)

    def refuse(self, name: str, provider: Provider) -> list[Provider]:
        """Record that ``provider`` also claims ``name``: the name is withdrawn for every provider.

        Returns all providers that claim it. :meth:`get` then raises an error naming them.
        """
        claimants = self.providers_of(name)
        self._entries.pop(name, None)
        self._refused[name] = [*claimants, provider]
        return list(self._refused[name])

    def providers_of(self, name: str) -> list[Provider]:
        """Every provider claiming ``name`` (one for a normal entry, several for a refused name)."""
        if name in self._refused:
            return list(self._refused[name])
        if name in self._entries:
            return [self._entries[name].provider]
        return []

    def refused(self) -> dict[str, list[Provider]]:
        """``{name: providers}`` of the names claimed by more than one provider."""
        return {name: list(providers) for name, providers in sorted(self._refused.items())}

    def _clash_text(self, name: str, providers: list[Provider]) -> str:
        plugins = [p.plugin for p in providers]
        return (
            f"{self.kind} {name!r} is provided by {' and by '.join(str(p) for p in providers)}; calobench does not "
            f"choose between them: disable all but one, e.g. CALOBENCH_DISABLE_PLUGINS={plugins[-1]}"
            + (f" (or {plugins[0]})" if len(set(plugins)) > 1 else "")
        )

    def get(self, name: str) -> T:
        return self.entry(name).value

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            if name in self._refused:
                raise RegistryError(self._clash_text(name, self._refused[name])) from None
            raise RegistryError(f"unknown {self.kind} {name!r}{suggestion_text(name, self._entries)}") from None

    def provider(self, name: str) -> Provider:
        return self.entry(name).provider

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        return [self._entries[name] for name in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
