"""The names plugins registered: operations, resolvers and sinks, and who registered each."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from hotfolder.components import Component, Operation, Resolver, Sink
from hotfolder.errors import ConfigError, PluginError

Kind = Literal["operation", "resolver", "sink"]
C = TypeVar("C", bound=Component)

_BASES: dict[Kind, type[Component]] = {
    "operation": Operation,
    "resolver": Resolver,
    "sink": Sink,
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

    def table(self, kind: Kind) -> dict[str, Entry]:  # type: ignore[type-arg]
        return {"operation": self.operations, "resolver": self.resolvers, "sink": self.sinks}[kind]

    def add(self, kind: Kind, cls: type[Component], plugin: str) -> None:
        """Add ``cls`` under its name; a name taken by another plugin is a PluginError."""
        base = _BASES[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            msg = f"plugin {plugin!r} registered {cls!r} as an {kind}, but it is not a subclass"
            raise PluginError(msg, hint=f"subclass hotfolder.{base.__name__}")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            msg = f"plugin {plugin!r} registered {cls.__name__} without a name"
            raise PluginError(msg, hint=f'set a class attribute: name = "my-{kind}"')
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

    def get(self, kind: Kind, name: str) -> type[Component]:
        """The class registered as ``name``; a ConfigError with a "did you mean" if none."""
        table = self.table(kind)
        try:
            return table[name].cls
        except KeyError:
            msg = f"unknown {kind} {name!r}"
            raise ConfigError(msg, hint=suggest(name, table)) from None

    def operation(self, name: str) -> type[Operation]:
        return self.get("operation", name)  # type: ignore[return-value]

    def sink(self, name: str) -> type[Sink]:
        return self.get("sink", name)  # type: ignore[return-value]

    def resolver(self, name: str) -> type[Resolver]:
        return self.get("resolver", name)  # type: ignore[return-value]


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

    def __call__(self, cls: type[Component]) -> type[Component]:
        self._registry.add(self._kind, cls, self.plugin)
        return cls
