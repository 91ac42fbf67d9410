"""Secrets in config files: given by reference, read at the edge, never logged."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, model_validator

from hotfolder.errors import ConfigError
from hotfolder.redact import register_secret
from hotfolder.schema import ConfigPath

__all__ = ["SecretRef"]


class SecretRef(BaseModel):
    """A secret given by reference: ``{ env = "NAME" }`` or ``{ file = "/run/secrets/x" }``.

    Config files are shared, copied and committed; secrets are not written in them. A value
    once revealed is registered with :mod:`hotfolder.redact`, so no log line can show it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = None
    #: A file holding the secret; a relative path is taken from the config file's folder.
    file: ConfigPath | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_inline(cls, value: object) -> object:
        if isinstance(value, str):
            msg = (
                "secrets are given by reference, never written in the file: "
                'use { env = "VARIABLE_NAME" } or { file = "/run/secrets/name" }'
            )
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            msg = "give exactly one of env or file"
            raise ValueError(msg)
        return self

    def describe(self) -> str:
        return f"${self.env}" if self.env else f"file {self.file}"

    def reveal(self) -> str | None:
        """The secret's value, or None when the variable or file is not there."""
        if self.env:
            value = os.environ.get(self.env) or None
        else:
            assert self.file is not None
            try:
                value = self.file.read_text().strip() or None
            except OSError as exc:
                msg = f"cannot read the secret file {self.file}: {exc.strerror}"
                raise ConfigError(msg, hint="check the path and its permissions") from exc
        register_secret(value)
        return value
