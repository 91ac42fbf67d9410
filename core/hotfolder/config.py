"""The config file: found, read, validated to the last key, and explained when wrong.

Validation happens in two passes. The first checks the file's own shape: the kernel's tables
(``[imaging]``, ``[plugins]``, ``[resolvers.NAME]``, ``[chains.NAME]``) and every table a plugin
registered (``[venice]``, ``[daemon]``, ``[[folders]]``: see :mod:`hotfolder.schema`). The
second asks the registry for every ``op``, ``sink`` and resolver named, and validates their
parameters with the component's own ``Params`` model.
Every problem found is reported at once, each with the file, the key path
(``chains.product.steps[2].scale``), the value and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from hotfolder.components import Component, Operation, Sink
from hotfolder.errors import ConfigError, PluginError
from hotfolder.imaging import ImagingSection
from hotfolder.plugin_settings import PluginsSection, plugins_model, settings_of
from hotfolder.registry import Registry, suggest
from hotfolder.schema import Params, PluginSettings, Section

CONFIG_ENV = "HOTFOLDER_CONFIG"
CONFIG_NAME = "hotfolder.toml"
S = TypeVar("S", bound=Section)
P = TypeVar("P", bound=PluginSettings)


class _Component(BaseModel):
    """A step or an output before its parameters are checked: the name plus anything else."""

    model_config = ConfigDict(extra="allow", frozen=True)


class StepSection(_Component):
    op: str


class OutputSection(_Component):
    sink: str


class ChainSection(Section):
    """``[chains.NAME]``: steps run in order, then every output is written."""

    description: str = ""
    steps: list[StepSection] = Field(default_factory=list)
    outputs: list[OutputSection] = Field(min_length=1)


class FileSection(Section):
    """The kernel's part of the file, before operation and sink parameters are checked; the
    tables plugins register are added to it by :func:`file_model`."""

    imaging: ImagingSection = ImagingSection()
    plugins: PluginsSection = PluginsSection()
    resolvers: dict[str, dict[str, Any]] = {}
    chains: dict[str, ChainSection] = {}

    @field_validator("chains")
    @classmethod
    def _chain_names(cls, chains: dict[str, ChainSection]) -> dict[str, ChainSection]:
        for name in chains:
            if not name or not all(c.isalnum() or c in "-_" for c in name):
                msg = f"chain name {name!r} may use only letters, digits, '-' and '_'"
                raise ValueError(msg)
        return chains


@dataclass(frozen=True)
class StepSpec:
    """A validated step: the operation class and its parameters."""

    op: type[Operation]
    params: Params
    key_path: str

    def instantiate(self, overrides: Mapping[str, Any] | None = None) -> Operation:
        """An operation instance, with per-job ``overrides`` validated like the config."""
        params = self.params
        if overrides:
            merged = {**params.model_dump(exclude_unset=True), **overrides}
            try:
                params = self.op.Params.model_validate(merged)
            except ValidationError as exc:
                raise ConfigError(
                    "invalid step override:\n" + _explain(exc, self.key_path)
                ) from exc
        return self.op(params)


@dataclass(frozen=True)
class OutputSpec:
    sink: type[Sink]
    params: Any
    key_path: str

    def instantiate(self) -> Sink:
        return self.sink(self.params)


@dataclass(frozen=True)
class Chain:
    name: str
    steps: tuple[StepSpec, ...]
    outputs: tuple[OutputSpec, ...]
    #: A stable digest of the chain's validated parameters; part of a job's key.
    digest: str = ""


@dataclass(frozen=True)
class Config:
    """A fully validated config."""

    path: Path | None
    file: FileSection
    chains: dict[str, Chain] = field(default_factory=dict)
    resolver_params: dict[str, Any] = field(default_factory=dict)

    @property
    def imaging(self) -> ImagingSection:
        return self.file.imaging

    def section(self, cls: type[S]) -> S:
        """The table ``cls`` validates (``[venice]`` for ``VeniceSection``), typed; its
        defaults when the file leaves it out or no plugin registered it."""
        value = getattr(self.file, cls.table, None)
        return value if isinstance(value, cls) else cls()

    def plugin_settings(self, cls: type[P]) -> P:
        """The plugin's own table, ``[plugins.NAME]``, that ``cls`` validates, typed; its
        defaults when the file leaves it out."""
        return settings_of(self.file.plugins, cls)

    def sections(self, cls: type[S]) -> list[S]:
        """The entries of the array of tables ``cls`` validates (``[[folders]]``)."""
        value = getattr(self.file, cls.table, None)
        return [v for v in value if isinstance(v, cls)] if isinstance(value, list) else []

    def chain(self, name: str) -> Chain:
        try:
            return self.chains[name]
        except KeyError:
            msg = f"no chain named {name!r} in {self.path or 'the config'}"
            raise ConfigError(msg, hint=suggest(name, self.chains)) from None


def find_config(explicit: Path | None = None) -> Path:
    """The config file to use: ``--config``, ``$HOTFOLDER_CONFIG``, ``./hotfolder.toml``,
    then the user config folder. A ConfigError lists where it looked."""
    if explicit is not None:
        if not explicit.is_file():
            msg = f"config file {explicit} does not exist"
            raise ConfigError(msg, hint="check --config")
        return explicit
    candidates = []
    if env := os.environ.get(CONFIG_ENV):
        candidates.append(Path(env))
    candidates += [Path.cwd() / CONFIG_NAME, user_config_path()]
    for path in candidates:
        if path.is_file():
            return path
    looked = ", ".join(str(p) for p in candidates)
    msg = f"no config file found (looked in: {looked})"
    hint = "run 'hotfolder init' to write a starter config, or pass --config"
    raise ConfigError(msg, hint=hint)


def user_config_path() -> Path:
    return Path(platformdirs.user_config_dir("hotfolder")) / CONFIG_NAME


def read_raw(path: Path) -> dict[str, Any]:
    """The file as TOML data; a syntax error names the line and column."""
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        msg = f"not valid TOML: {exc}"
        raise ConfigError(msg, source=str(path)) from exc
    except OSError as exc:
        msg = f"cannot read the config: {exc.strerror}"
        raise ConfigError(msg, source=str(path)) from exc


#: A check of the whole config beyond its keys (folders that overlap): the problems it finds.
ConfigCheck = Callable[["Config"], list[str]]


def load_config(path: Path, registry: Registry, *, checks: Iterable[ConfigCheck] = ()) -> Config:
    """Read and fully validate ``path`` against the registered components."""
    return validate_config(read_raw(path), registry, path=path, checks=checks)


def validate_config(
    raw: dict[str, Any],
    registry: Registry,
    *,
    path: Path | None = None,
    checks: Iterable[ConfigCheck] = (),
) -> Config:
    """Validate config data; every problem found, in either pass, is listed in one ConfigError.

    A table (or an entry of an array of tables) with a problem does not hide the others: the
    rest of the file is validated without it, so that the second pass and ``checks`` (run on
    the config as far as it is valid) report theirs in the same run."""
    source = str(path) if path else None
    context = {"base_dir": path.parent if path else Path.cwd()}
    problems: list[str] = []
    section: FileSection | None = None
    model = file_model(registry)
    try:
        section = model.model_validate(raw, context=context)
    except ValidationError as exc:
        problems.append(_explain(exc, "", model, raw))
        section = _valid_part(model, raw, exc, context)

    # The second pass reads the raw data, so that it can report even when the first failed.
    raw_chains: dict[str, Any] = _table(raw, "chains")
    chains = {
        name: _build_chain(name, chain, registry, context, problems)
        for name, chain in raw_chains.items()
        if isinstance(chain, dict)
    }
    resolver_params = {}
    raw_resolvers: dict[str, Any] = _table(raw, "resolvers")
    for name, params in raw_resolvers.items():
        key = f"resolvers.{name}"
        try:
            cls = registry.resolver(name)
            resolver_params[name] = cls.Params.model_validate(params, context=context)
        except ConfigError as exc:
            problems.append(f"{key}: {exc}")
        except ValidationError as exc:
            problems.append(_explain(exc, key, cls.Params, params))
    for table, entry in registry.sections.items():
        value = getattr(section, table, None) if section else None
        entries = value if isinstance(value, list) else [value] if value is not None else []
        for i, item in enumerate(entries):
            where = f"{table}[{i}]" if isinstance(value, list) else table
            for key in entry.cls.chain_fields:
                for key_path, chain in _chain_values(item, key, where):
                    if isinstance(chain, str) and chain not in raw_chains:
                        problems.append(
                            f"{key_path}: no chain named {chain!r} ({suggest(chain, raw_chains)})"
                        )
    config = None
    if section is not None:  # as far as it is valid: the checks report on it too
        config = Config(path=path, file=section, chains=chains, resolver_params=resolver_params)
        for check in checks:
            problems += check(config)
    if problems or config is None:  # a failed first pass always added a problem
        raise ConfigError("invalid config:\n" + "\n".join(problems), source=source)
    return config


def _chain_values(item: Any, key: str, where: str) -> Iterator[tuple[str, Any]]:
    """The values of a ``chain_fields`` key with their key paths: ``chain`` is a field,
    ``routes.chain`` the ``chain`` of each entry of the list ``routes``."""
    name, _, rest = key.partition(".")
    value = getattr(item, name, None)
    if not rest:
        yield f"{where}.{name}", value
    elif isinstance(value, list):
        for j, entry in enumerate(value):
            yield from _chain_values(entry, rest, f"{where}.{name}[{j}]")


def _valid_part(
    model: type[FileSection], raw: dict[str, Any], exc: ValidationError, context: dict[str, Any]
) -> FileSection | None:
    """The file without the tables (or entries of arrays of tables) ``exc`` found wrong,
    validated; None when even that fails."""
    bad: dict[str, set[int] | None] = {}
    for err in exc.errors():
        loc = err["loc"]
        if not loc:
            return None
        table = str(loc[0])
        entry = loc[1] if len(loc) > 1 else None
        if isinstance(entry, int) and isinstance(raw.get(table), list) and table not in bad:
            bad[table] = set()
        entries = bad.get(table)
        if isinstance(entry, int) and entries is not None and isinstance(raw.get(table), list):
            entries.add(entry)
        else:
            bad[table] = None
    kept = dict(raw)
    for table, entries in bad.items():
        if entries is None:
            kept.pop(table, None)
        else:
            kept[table] = [v for i, v in enumerate(raw[table]) if i not in entries]
    try:
        return model.model_validate(kept, context=context)
    except ValidationError:
        return None


def _table(raw: dict[str, Any], key: str) -> dict[str, Any]:
    """``raw[key]`` when it is a table, else an empty one (the first pass reports it)."""
    value = raw.get(key)
    return value if isinstance(value, dict) else {}


def file_model(registry: Registry) -> type[FileSection]:
    """The model of the whole file: the kernel's tables plus every registered section."""
    fields: dict[str, Any] = {}
    for table, entry in registry.sections.items():
        if table in FileSection.model_fields:
            msg = f"plugin {entry.plugin!r} registered the table [{table}], which is the kernel's"
            raise PluginError(msg, hint="name the section's table something else")
        cls = entry.cls
        if cls.array:
            fields[table] = (list[cls], Field(default_factory=list))  # type: ignore[valid-type]
        else:
            fields[table] = (cls, Field(default_factory=cls))
    if (plugins := plugins_model(registry)) is not PluginsSection:
        fields["plugins"] = (plugins, Field(default_factory=plugins))
    if not fields:
        return FileSection
    return create_model("FileSection", __base__=FileSection, **fields)


def _build_chain(
    name: str,
    raw: dict[str, Any],
    registry: Registry,
    context: dict[str, Any],
    problems: list[str],
) -> Chain:
    """A chain's steps and outputs with their parameters validated by their components.

    Items without a usable ``op``/``sink`` are left to the first pass to report.
    """
    found: dict[str, list[Any]] = {"steps": [], "outputs": []}
    parts: tuple[tuple[str, Literal["operation", "sink"], str, type[Any]], ...] = (
        ("steps", "operation", "op", StepSpec),
        ("outputs", "sink", "sink", OutputSpec),
    )
    for part, kind, name_key, spec_cls in parts:
        for i, item in enumerate(_items(raw.get(part), name_key)):
            if item is None:
                continue
            key = f"chains.{name}.{part}[{i}]"
            params = {k: v for k, v in item.items() if k != name_key}
            spec = _component(registry, kind, item[name_key], params, key, context, problems)
            if spec:
                found[part].append(spec_cls(spec[0], spec[1], key))
    steps: list[StepSpec] = found["steps"]
    outputs: list[OutputSpec] = found["outputs"]
    described = [[s.op.name, s.params.model_dump(mode="json")] for s in steps]
    digest = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()
    return Chain(name, tuple(steps), tuple(outputs), digest)


def _items(value: Any, name_key: str) -> list[dict[str, Any] | None]:
    """The dicts of a steps/outputs list that name their component; None for the others."""
    if not isinstance(value, list):
        return []
    return [
        item if isinstance(item, dict) and isinstance(item.get(name_key), str) else None
        for item in value
    ]


def _component(
    registry: Registry,
    kind: Literal["operation", "sink"],
    name: str,
    params: dict[str, Any],
    key: str,
    context: dict[str, Any],
    problems: list[str],
) -> tuple[type[Component], Any] | None:
    try:
        cls = registry.get(kind, name)
    except ConfigError as exc:
        problems.append(f"{key}.{'op' if kind == 'operation' else 'sink'}: {exc}")
        return None
    try:
        return cls, cls.Params.model_validate(params, context=context)
    except ValidationError as exc:
        problems.append(_explain(exc, key, cls.Params, params))
        return None


# --- turning pydantic's errors into lines a user can act on ---------------------------------

_SECRET_KEYS = {"api_key", "secret", "token", "password"}


def _explain(
    exc: ValidationError,
    prefix: str,
    model: type[BaseModel] | None = None,
    data: Any = None,
) -> str:
    lines = []
    for err in exc.errors():
        loc = err["loc"]
        path = _key_path(prefix, loc)
        if err["type"] == "extra_forbidden":
            allowed = _fields_at(model, loc[:-1]) if model else []
            hint = suggest(str(loc[-1]), allowed) if allowed else ""
            what = "unknown key"
            if len(loc) == 2 and loc[0] == "plugins":  # [plugins.NAME]: a plugin's own table
                what = f"no plugin named {loc[1]!r} is installed that takes settings"
            lines.append(f"{path}: {what}" + (f"; {hint}" if hint else ""))
            continue
        secret = any(str(part) in _SECRET_KEYS for part in loc)
        shown = "" if secret or err["type"] == "missing" else f" (got {err['input']!r})"
        lines.append(f"{path}: {_message(err)}{shown}")
    return "\n".join(lines)


def _message(err: Any) -> str:
    msg = str(err["msg"])
    if err["type"] == "missing":
        return "required key is missing"
    if err["type"] == "literal_error":
        return msg.replace("Input should be", "must be one of")
    return msg.removeprefix("Value error, ")


def _key_path(prefix: str, loc: tuple[Any, ...]) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "tagged-union", "list[", "dict[")) or part in (
            "str",
            "int",
            "float",
            "bool",
        ):
            continue  # pydantic's names for union members, not keys
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed at ``loc`` inside ``model``, following nested models and lists."""
    import typing

    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        annotation = None
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(part)
            annotation = info.annotation if info else None
            if annotation is None:
                return []
        elif typing.get_origin(current) is dict:
            annotation = typing.get_args(current)[1]
        current = _unwrap(annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    import typing

    while True:
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is list and args:
            annotation = args[0]
        elif origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            annotation = models[0] if models else args[0]
        elif origin is typing.Annotated:
            annotation = args[0]
        else:
            return annotation
