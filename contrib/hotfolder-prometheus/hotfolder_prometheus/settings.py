"""``[plugins.prometheus]``: where ``hotfolder run`` serves the metrics."""

from __future__ import annotations

from pydantic import Field

import hotfolder

DEFAULT_ADDRESS = "127.0.0.1"


class PrometheusSettings(hotfolder.PluginSettings):
    """``[plugins.prometheus]``; without ``port`` nothing is served (the hooks still count)."""

    #: The port of ``http://ADDRESS:PORT/metrics``.
    port: int | None = Field(default=None, ge=1, le=65535)
    #: The address to listen on: loopback by default, ``0.0.0.0`` for every interface.
    address: str = Field(default=DEFAULT_ADDRESS, min_length=1)
