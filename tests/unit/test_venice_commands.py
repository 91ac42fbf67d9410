"""``hotfolder models`` and ``hotfolder balance``, run in process against a sandbox."""

from __future__ import annotations

import json

from click.testing import CliRunner

from hotfolder.cli.commands import account as commands
from hotfolder.errors import AuthError


def test_models_lists_ids_prices_and_constraints(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no config file here: the defaults apply
    result = CliRunner().invoke(commands.models, ["--sandbox", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["id"]: row for row in json.loads(result.output)}
    assert rows["firered-image-edit"]["price"] == "$0.04"
    assert rows["gpt-image-2-edit"]["price"] == "1K $0.34 / 2K $0.52 / 4K $0.84"
    assert "quality low/medium/high" in rows["gpt-image-2-edit"]["constraints"]
    assert "images<=14" in rows["gpt-image-2-edit"]["constraints"]
    assert rows["upscaler"]["price"] == "2x $0.02 / 4x $0.08"

    table = CliRunner().invoke(commands.models, ["--sandbox"])
    assert table.exit_code == 0 and "gpt-image-2-edit" in table.output


def test_balance_shows_whether_the_account_can_pay(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(commands.balance, ["--sandbox", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["canConsume"] is True and body["balances"]["usd"] == 100.0
    text = CliRunner().invoke(commands.balance, ["--sandbox"]).output
    assert "can pay:   yes" in text and "USD:       100.00" in text


def test_balance_without_a_key_says_how_to_set_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VENICE_API_KEY", raising=False)
    result = CliRunner().invoke(commands.balance, [])
    assert isinstance(result.exception, AuthError)
    assert "VENICE_API_KEY" in str(result.exception)
