"""The names plugins registered: operations, resolvers, sinks, config sections and plugins'
own settings, and who registered each."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from hotfolder.components import Operation, Resolver, Sink
from hotfolder.errors import ConfigError, PluginError
from hotfolder.schema import PluginSettings, Section

Kind = Literal["operation", "resolver", "sink", "section"]
C = TypeVar("C")

_BASES: dict[Kind, type[Any]] = {
    "operation": Operation,
    "resolver": Resolver,
    "sink": Sink,
    "section": Section,
}


@dataclass(frozen=True)
class Entry(Generic[C]):
    """A registered component class and the plugin that registered it."""

    cls: type[C]
    plugin: str


@dataclass
class Registry:
    """Everything plugins registered, by kind and name."""

    operations: dict[str, Entry[Operation]] = field(default_factory=dict)
    resolvers: dict[str, Entry[Resolver]] = field(default_factory=dict)
    sinks: dict[str, Entry[Sink]] = field(default_factory=dict)
    #: Top-level config tables, by their key (``venice`` for ``[venice]``).
    sections: dict[str, Entry[Section]] = field(default_factory=dict)
    #: Plugins' own tables (``[plugins.NAME]``), by plugin name (:mod:`.plugin_settings`).
    settings: dict[str, Entry[PluginSettings]] = field(default_factory=dict)
    #: The plugins blocked by the user, named when something they may provide is missing.
    disabled: tuple[str, ...] = ()

    def table(self, kind: Kind) -> dict[str, Entry[Any]]:
        tables: dict[str, dict[str, Entry[Any]]] = {
            "operation": self.operations,
            "resolver": self.resolvers,
            "sink": self.sinks,
            "section": self.sections,
        }
        return tables[kind]

    def add(self, kind: Kind, cls: type[Any], plugin: str) -> None:
        """Add ``cls`` under its name; a name taken by another plugin is a PluginError."""
        base = _BASES[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            msg = f"plugin {plugin!r} registered {cls!r} as an {kind}, but it is not a subclass"
            raise PluginError(msg, hint=f"subclass hotfolder.{base.__name__}")
        name = getattr(cls, "table" if kind == "section" else "name", None)
        if not isinstance(name, str) or not name:
            msg = f"plugin {plugin!r} registered {cls.__name__} without a name"
            attribute = 'table = "my-section"' if kind == "section" else f'name = "my-{kind}"'
            raise PluginError(msg, hint=f"set a class attribute: {attribute}")
        table = self.table(kind)
        if name in table and table[name].plugin != plugin:
            msg = (
                f"{kind} {name!r} is registered twice: by plugin {table[name].plugin!r} "
                f"and by plugin {plugin!r}"
            )
            raise PluginError(
                msg,
                hint="uninstall one of them, or block one with [plugins] disabled "
                "or HOTFOLDER_DISABLE_PLUGINS",
            )
        table[name] = Entry(cls, plugin)

    def get(self, kind: Kind, name: str) -> type[Any]:
        """The class registered as ``name``; a ConfigError with a "did you mean" if none."""
        table = self.table(kind)
        try:
            return table[name].cls
        except KeyError:
            msg = f"unknown {kind} {name!r}"
            hint = suggest(name, table)
            if self.disabled:
                hint += (
                    f"; these plugins are disabled and one may provide it: "
                    f"{', '.join(self.disabled)} ([plugins] disabled or "
                    "$HOTFOLDER_DISABLE_PLUGINS)"
                )
            raise ConfigError(msg, hint=hint) from None

    def operation(self, name: str) -> type[Operation]:
        cls: type[Operation] = self.get("operation", name)
        return cls

    def sink(self, name: str) -> type[Sink]:
        cls: type[Sink] = self.get("sink", name)
        return cls

    def resolver(self, name: str) -> type[Resolver]:
        cls: type[Resolver] = self.get("resolver", name)
        return cls


def suggest(word: str, choices: object) -> str:
    """``did you mean 'x'?`` when one choice is close, else the list of choices."""
    names = sorted(str(c) for c in choices)  # type: ignore[attr-defined]
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return "choose one of: " + ", ".join(names) if names else "none is registered"


class Register:
    """The callable a ``hotfolder_register_*`` hook receives: ``register(SomeClass)``."""

    def __init__(self, registry: Registry, kind: Kind, plugin: str) -> None:
        self._registry = registry
        self._kind = kind
        self.plugin = plugin

    def __call__(self, cls: type[C]) -> type[C]:
        self._registry.add(self._kind, cls, self.plugin)
        return cls
