"""``hotfolder sandbox``: serve the local stand-in for Venice's image API."""

from __future__ import annotations

import click

from hotfolder.errors import ConfigError
from hotfolder.hookspecs import hookimpl


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8787, show_default=True, type=int)
@click.option(
    "--latency-ms", default=0, show_default=True, type=int, help="Added to every request."
)
@click.option(
    "--rpm", default=20, show_default=True, type=int, help="Image requests a minute per key."
)
@click.option("--balance-usd", default=100.0, show_default=True, type=float)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for scripted faults.")
def sandbox(host: str, port: int, latency_ms: int, rpm: int, balance_usd: float, seed: int) -> None:
    """Serve a local stand-in for Venice's image API (faults scriptable under /_sandbox/)."""
    from hotfolder_sandbox import SandboxConfig, SandboxError, serve

    config = SandboxConfig(
        latency_ms=latency_ms, requests_per_minute=rpm, balance_usd=balance_usd, seed=seed
    )
    try:
        serve(config, host, port)
    except SandboxError as exc:
        raise ConfigError(exc.message, hint=exc.hint) from exc


@hookimpl
def hotfolder_register_commands(cli: click.Group) -> None:
    cli.add_command(sandbox)
