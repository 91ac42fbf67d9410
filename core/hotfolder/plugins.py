"""Finding and loading plugins: the built-ins, then third-party ones from entry points.

Built-ins are listed in :data:`DEFAULT_PLUGINS` and registered exactly like a third-party
plugin, so any of them can be blocked and replaced. Third-party plugins declare an entry
point in the ``hotfolder`` group::

    [project.entry-points.hotfolder]
    my_sink = "my_package.my_sink"
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Sequence
from typing import Any

import pluggy
from loguru import logger

import hotfolder.hookspecs as hookspecs
from hotfolder import plugin_settings
from hotfolder.errors import PluginError
from hotfolder.registry import Kind, Register, Registry

DEFAULT_PLUGINS: tuple[str, ...] = (
    "hotfolder_plugins.local_ops",
    "hotfolder_plugins.resolvers",
    "hotfolder_plugins.sinks",
    "hotfolder_plugins.venice_ops",
    "hotfolder.daemon.settings",
    "hotfolder.fleet.settings",
    "hotfolder.web.settings",
)

_BUILTIN_PREFIXES = ("hotfolder.", "hotfolder_plugins.")

#: Comma-separated plugin names that must not be loaded.
DISABLE_ENV = "HOTFOLDER_DISABLE_PLUGINS"

_REGISTER_HOOKS: dict[Kind, str] = {
    "operation": "hotfolder_register_operations",
    "resolver": "hotfolder_register_resolvers",
    "sink": "hotfolder_register_sinks",
    "section": "hotfolder_register_sections",
}


def blocked_names(disabled: Iterable[str] = ()) -> set[str]:
    """Plugin names blocked by the config plus those in ``$HOTFOLDER_DISABLE_PLUGINS``."""
    names = {n.strip() for n in disabled if n.strip()}
    names |= {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}
    return names


def make_plugin_manager(
    disabled: Iterable[str] = (),
    *,
    load_entrypoints: bool = True,
    extra: Iterable[tuple[Any, str]] = (),
    builtins: Sequence[str] = DEFAULT_PLUGINS,
) -> pluggy.PluginManager:
    """A plugin manager with the hookspecs, the built-ins and the installed plugins.

    ``disabled`` names plugins to block (a built-in's module path, e.g.
    ``hotfolder_plugins.venice_ops``, or an entry point's name). ``extra`` registers
    ``(plugin, name)`` pairs after the others, which is how tests add theirs. ``builtins``
    are the modules registered first by name (the command line adds its commands' modules).
    """
    pm = pluggy.PluginManager(hookspecs.NAME)
    pm.add_hookspecs(hookspecs)
    for name in sorted(blocked_names(disabled)):
        pm.set_blocked(name)
    for module_name in builtins:
        if pm.is_blocked(module_name):
            continue
        pm.register(importlib.import_module(module_name), module_name)
    if load_entrypoints:
        try:
            pm.load_setuptools_entrypoints(hookspecs.NAME)
        except Exception as exc:  # an installed plugin that fails to import
            msg = f"a plugin in the {hookspecs.NAME!r} entry-point group failed to load: {exc}"
            raise PluginError(
                msg, hint=f"fix or uninstall it, or name it in {DISABLE_ENV} to skip it"
            ) from exc
    for plugin, name in extra:
        pm.register(plugin, name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        msg = f"plugin {exc.plugin!r} implements a hook that does not exist: {exc}"
        raise PluginError(msg, hint="check the hook's name against docs/plugins.md") from exc
    return pm


def build_registry(pm: pluggy.PluginManager) -> Registry:
    """Ask every plugin to register its operations, resolvers, sinks and sections, and for
    the model of its own settings (``[plugins.NAME]``).

    Each hook implementation is called on its own, so a duplicate name can be blamed on the
    right plugin and a plugin that raises is named in the error.
    """
    blocked = tuple(sorted(name for name, plugin in pm.list_name_plugin() if plugin is None))
    registry = Registry(disabled=blocked)
    for kind, hook_name in _REGISTER_HOOKS.items():
        hook = getattr(pm.hook, hook_name)
        # get_hookimpls() lists them in load order (pluggy itself calls them last first).
        for impl in hook.get_hookimpls():
            register = Register(registry, kind, impl.plugin_name)
            try:
                impl.function(**{a: register for a in impl.argnames})
            except PluginError:
                raise
            except Exception as exc:
                msg = f"plugin {impl.plugin_name!r} raised in {hook_name}: {exc!r}"
                raise PluginError(msg, hint="fix or disable that plugin") from exc
    for impl in getattr(pm.hook, plugin_settings.HOOK).get_hookimpls():
        try:
            model = impl.function()
        except Exception as exc:
            msg = f"plugin {impl.plugin_name!r} raised in {plugin_settings.HOOK}: {exc!r}"
            raise PluginError(msg, hint="fix or disable that plugin") from exc
        plugin_settings.add_settings(registry, impl.plugin_name, model)
    return registry


def plugin_info(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """Each registered plugin: its name, distribution version and the hooks it implements."""
    distinfo = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    rows = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        dist = distinfo.get(id(plugin))
        hooks = sorted(h.name for h in (pm.get_hookcallers(plugin) or []))
        rows.append(
            {
                "name": name,
                "distribution": dist.project_name if dist else "hotfolder",
                "version": dist.version if dist else _own_version(),
                "builtin": name.startswith(_BUILTIN_PREFIXES),
                "hooks": hooks,
            }
        )
    return rows


def call_observers(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> None:
    """Call a hook's implementations one by one, in load order (built-ins first); a plugin
    that raises is logged by name and does not stop the others (lifecycle hooks, command
    registration)."""
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        try:
            impl.function(**{a: kwargs[a] for a in impl.argnames})
        except Exception:
            logger.exception(
                "plugin {!r} raised in {}; going on without it", impl.plugin_name, hook_name
            )


def _own_version() -> str:
    from importlib.metadata import version

    return version("hotfolder")
