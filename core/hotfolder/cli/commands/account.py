"""``hotfolder models`` and ``hotfolder balance``: what Venice offers, and what is left to spend.

Both use the client of the config's runtime (so ``--config`` and ``[venice]`` apply), or with
``--sandbox`` a sandbox started for the command; with no config file at all, the defaults and
``$VENICE_API_KEY``. Without a key, ``models`` shows the cached list, else the snapshot shipped
with hotfolder, and says so.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click
from loguru import logger

from hotfolder.cli._state import CliState, pass_state
from hotfolder.hookspecs import hookimpl

if TYPE_CHECKING:
    from hotfolder.cli.local_sandbox import LocalSandbox
    from hotfolder.runtime import Runtime
    from hotfolder.venice import ModelInfo, VeniceClient


class _Session:
    """The client for one command, and what to close after it: the config's runtime when
    there is a config file, else the defaults and ``$VENICE_API_KEY``."""

    def __init__(self, state: CliState, sandbox: bool) -> None:
        from hotfolder.venice import VeniceClient, VeniceSection, get_client

        self.runtime: Runtime | None = state.runtime() if state.has_config() else None
        settings = self.runtime.section(VeniceSection) if self.runtime else VeniceSection()
        self.sandbox: LocalSandbox | None = None
        if sandbox:
            from hotfolder.cli.local_sandbox import LocalSandbox

            self.sandbox = LocalSandbox(settings)
            if self.runtime is None:
                self.client: VeniceClient = self.sandbox.client(settings)
                return
            self.sandbox.attach(self.runtime)
        if self.runtime is not None:
            self.client = get_client(self.runtime)
        else:
            self.client = VeniceClient.from_settings(settings)

    async def aclose(self) -> None:
        if self.runtime is not None:
            await self.runtime.aclose()  # closes the client too
        else:
            await self.client.aclose()
        if self.sandbox is not None:
            self.sandbox.stop()


def _price(model: ModelInfo) -> str:
    p = model.pricing
    if "upscale" in p:
        tiers = p["upscale"]
        return " / ".join(f"{k} ${v['usd']:g}" for k, v in tiers.items() if "usd" in v)
    tiers = p.get("resolutions") or {}
    if tiers:
        return " / ".join(f"{k} ${v['usd']:g}" for k, v in tiers.items())
    usd = (p.get("inpaint") or {}).get("usd")
    return f"${usd:g}" if usd is not None else "-"


def _models_rows(models: Sequence[ModelInfo], kind: str) -> list[dict[str, Any]]:
    return [
        {
            "id": m.id,
            "type": kind,
            "name": m.name,
            "price": _price(m),
            "constraints": m.constraints.describe() if kind == "inpaint" else "",
            "deprecated": bool(m.deprecation),
            "pricing": dict(m.pricing),
        }
        for m in models
    ]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--refresh", is_flag=True, help="Fetch the list now instead of using the cache.")
@click.option("--sandbox", is_flag=True, help="Ask a local sandbox started for this command.")
@pass_state
def models(state: CliState, as_json: bool, refresh: bool, sandbox: bool) -> None:
    """List Venice's edit and upscale models: id, name, price and constraints."""
    from hotfolder.venice import BACKGROUND_REMOVE_USD, VeniceSection, offline_catalog

    settings = state.runtime().section(VeniceSection) if state.has_config() else VeniceSection()
    offline = not sandbox and not settings.api_key.reveal()

    async def fetch() -> tuple[list[dict[str, Any]], str]:
        if offline:  # no key: what is cached, else the snapshot shipped with hotfolder
            catalog = offline_catalog(settings)
            inpaint, upscale = catalog.cached("inpaint"), catalog.cached("upscale")
        else:
            session = _Session(state, sandbox)
            try:
                inpaint = await session.client.catalog.models("inpaint", refresh=refresh)
                upscale = await session.client.catalog.models("upscale", refresh=refresh)
            finally:
                await session.aclose()
        rows = _models_rows(list(inpaint.models.values()), "inpaint")
        rows += _models_rows(list(upscale.models.values()), "upscale")
        return rows, "the local sandbox" if sandbox else inpaint.source

    rows, source = asyncio.run(fetch())
    if offline:
        logger.info(
            "no Venice API key ({}): the {} model list, not asked of Venice",
            settings.api_key.describe(),
            source,
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Venice models ({source})")
    table.add_column("id", no_wrap=True)  # ids are what a config names: never cut
    for heading in ("name", "price (USD)", "constraints"):
        table.add_column(heading)
    for row in rows:
        name = row["name"] + (" (deprecated)" if row["deprecated"] else "")
        table.add_row(row["id"], name, row["price"], row["constraints"])
    table.add_row("(background-remove)", "fixed model", f"${BACKGROUND_REMOVE_USD:g}", "")
    Console().print(table)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
@click.option("--sandbox", is_flag=True, help="Ask a local sandbox started for this command.")
@pass_state
def balance(state: CliState, as_json: bool, sandbox: bool) -> None:
    """Show the Venice account balance and whether it can pay for requests."""

    async def fetch() -> dict[str, Any]:
        session = _Session(state, sandbox)
        try:
            return await session.client.balance()
        finally:
            await session.aclose()

    body = asyncio.run(fetch())
    if as_json:
        click.echo(json.dumps(body, indent=2))
        return
    if sandbox:
        click.echo("the local sandbox (simulated; no money involved)")
    balances = body.get("balances") or {}
    usd, diem = balances.get("usd"), balances.get("diem")
    click.echo(f"can pay:   {'yes' if body.get('canConsume') else 'NO'}")
    click.echo(f"currency:  {body.get('consumptionCurrency') or '-'}")
    click.echo(f"USD:       {'-' if usd is None else f'{usd:.2f}'}")
    click.echo(f"DIEM:      {'-' if diem is None else f'{diem:.2f}'}")


@hookimpl
def hotfolder_register_commands(cli: click.Group) -> None:
    cli.add_command(models)
    cli.add_command(balance)
