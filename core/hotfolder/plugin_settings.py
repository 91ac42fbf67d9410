"""``[plugins]``: which plugins not to load, and each plugin's own table, ``[plugins.NAME]``.

``[plugins]`` is one section of the kernel's. Its ``disabled`` key is the kernel's; every
sub-table belongs to the plugin of that name, which declares its model with the
``hotfolder_plugin_settings`` hook (a :class:`~hotfolder.schema.PluginSettings`)::

    [plugins]
    disabled = ["s3"]

    [plugins.prometheus]         # validated by the model hotfolder-prometheus declares
    port = 9464

:func:`plugins_model` adds one field per declaring plugin to :class:`PluginsSection`, so the
config loader validates each table like any other (key paths, "did you mean"); a table named
after no plugin that declares settings is a config error, except for a disabled plugin's,
which is kept and ignored so that disabling a plugin never makes its config invalid.
"""

from __future__ import annotations

import keyword
from typing import Any, TypeVar

from pydantic import BaseModel, Field, create_model

from hotfolder.errors import PluginError
from hotfolder.registry import Entry, Registry
from hotfolder.schema import PluginSettings, Section

P = TypeVar("P", bound=PluginSettings)

#: The hook a plugin declares its settings model with.
HOOK = "hotfolder_plugin_settings"


class PluginsSection(Section):
    """``[plugins]``: which installed plugins not to load; the plugins' own tables are added
    by :func:`plugins_model`."""

    disabled: list[str] = []


def add_settings(registry: Registry, plugin: str, cls: object) -> None:
    """Record ``cls`` as the model of ``[plugins.<plugin>]``; a PluginError says what is wrong
    with it (not a PluginSettings, a field without a default, a name that cannot be a key)."""
    if not (isinstance(cls, type) and issubclass(cls, PluginSettings)):
        msg = f"plugin {plugin!r} returned {cls!r} from {HOOK}, which is not a settings model"
        raise PluginError(msg, hint="return a subclass of hotfolder.PluginSettings")
    if not plugin.isidentifier() or keyword.iskeyword(plugin) or plugin in _TAKEN:
        msg = f"plugin {plugin!r} declares settings, but [plugins.{plugin}] cannot be its table"
        hint = (
            "name the plugin (its entry point) with letters, digits and '_', and not "
            + " or ".join(repr(n) for n in sorted(PluginsSection.model_fields))
        )
        raise PluginError(msg, hint=hint)
    required = [name for name, info in cls.model_fields.items() if info.is_required()]
    if required:
        msg = f"plugin {plugin!r}: {cls.__name__} has fields without a default: {required}"
        raise PluginError(
            msg, hint="give every field a default: a config without the table must still load"
        )
    cls.table = f"plugins.{plugin}"
    registry.settings[plugin] = Entry(cls, plugin)


def plugins_model(registry: Registry) -> type[PluginsSection]:
    """``[plugins]`` with a field for each plugin that declared settings, and one that takes
    anything for each disabled plugin."""
    fields: dict[str, Any] = {
        name: (entry.cls, Field(default_factory=entry.cls))
        for name, entry in registry.settings.items()
    }
    for name in registry.disabled:
        if name.isidentifier() and name not in fields and name not in _TAKEN:
            fields[name] = (dict[str, Any], Field(default_factory=dict))
    if not fields:
        return PluginsSection
    model: type[PluginsSection] = create_model("PluginsSection", __base__=PluginsSection, **fields)
    return model


def settings_of(plugins: PluginsSection, cls: type[P]) -> P:
    """The validated ``[plugins.NAME]`` that ``cls`` is the model of; its defaults when the
    file leaves the table out or the plugin is not loaded."""
    for name in type(plugins).model_fields:
        value = getattr(plugins, name)
        if isinstance(value, cls):
            return value
    return cls()


#: Keys of ``[plugins]`` that are not a plugin's table, and names of BaseModel's own.
_TAKEN = frozenset(PluginsSection.model_fields) | frozenset(dir(BaseModel))
