"""The bottom of every config model: :class:`Params`, :class:`Section` and :data:`ConfigPath`.

Each part of hotfolder owns the model of its own part of ``hotfolder.toml``: the kernel owns
``[imaging]``, ``[plugins]``, ``[resolvers.NAME]`` and ``[chains.NAME]``; the Venice client owns
``[venice]``; the daemon owns ``[daemon]`` and ``[[folders]]``; a plugin owns its own
``[plugins.NAME]``. They all build on this module, which imports nothing else of hotfolder, so
config ownership points downward.

A :class:`Section` names the top-level table it validates (``table = "venice"``) and is
registered by a plugin (``hotfolder_register_sections``); the config loader then checks the
file's ``[venice]`` against it and hands it back typed: ``config.section(VeniceSection)``.
A :class:`PluginSettings` is a plugin's own table, ``[plugins.NAME]`` under the plugin's name,
declared with ``hotfolder_plugin_settings`` and read with ``runtime.plugin_settings(cls)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar

from loguru import logger
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, model_validator

__all__ = ["ConfigPath", "Params", "PluginSettings", "Section"]


class _Strict(BaseModel):
    """Unknown keys are errors, values are frozen, and renamed keys still load for a release."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Old key -> new key, still accepted for one release (with a warning naming the new key).
    #: Giving both is refused (the old one is then an unknown key), so a config never
    #: silently means two things.
    renamed: ClassVar[Mapping[str, str]] = {}
    #: Key -> why it went and what replaces it: still loads for a release, ignored, with a
    #: warning that says so.
    removed: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def _where(cls) -> str:
        """Where the keys live, for the warning (a section's ``[table]``)."""
        return ""

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: Any) -> Any:
        if not (cls.renamed or cls.removed) or not isinstance(data, Mapping):
            return data
        out = dict(data)
        where = f"{cls._where()} " if cls._where() else ""
        for old, why in cls.removed.items():
            if old in out:
                del out[old]
                logger.warning(
                    "config: {}{} is no longer used and is ignored ({}); remove it",
                    where,
                    old,
                    why,
                )
        for old, new in cls.renamed.items():
            if old in out and new not in out:
                out[new] = out.pop(old)
                logger.warning(
                    "config: {}{} is deprecated and will stop working in the next release; "
                    "rename it to {}",
                    where,
                    old,
                    new,
                )
        return out


class Params(_Strict):
    """Base for every component's parameter model: unknown keys are errors, values frozen."""


class Section(_Strict):
    """Base for a top-level config table: unknown keys are errors, values frozen.

    ``table`` is the key in the file; ``array`` is true for an array of tables
    (``[[folders]]``), whose value is then a list of this model.
    """

    #: The top-level key this section validates (``"venice"`` for ``[venice]``).
    table: ClassVar[str] = ""
    #: True for an array of tables (``[[folders]]``).
    array: ClassVar[bool] = False
    #: Fields whose value names a ``[chains.NAME]``; the loader checks that the chain exists.
    chain_fields: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _where(cls) -> str:
        return f"[{cls.table}]" if cls.table else ""


class PluginSettings(_Strict):
    """Base for a plugin's own table, ``[plugins.NAME]``: unknown keys are errors, values frozen.

    NAME is the plugin's name (its entry point's). Every field has a default, so that a config
    without the table loads and the plugin reads its defaults.
    """

    #: ``plugins.NAME``, set by hotfolder when the plugin declares the model (for warnings).
    table: ClassVar[str] = ""

    @classmethod
    def _where(cls) -> str:
        return f"[{cls.table}]" if cls.table else ""


def _resolve_against_config(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    value = value.expanduser()
    return value if value.is_absolute() or base is None else Path(base) / value


#: A path parameter: relative values are taken from the config file's folder.
ConfigPath = Annotated[Path, AfterValidator(_resolve_against_config)]
