"""The command line: help, configuration output, refusing to serve without tokens, demo."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from talkdesk_bridge.cli import app
from tests._support import free_port, wait_healthy

runner = CliRunner()


def test_every_command_has_help() -> None:
    for command in ([], ["serve"], ["configuration"], ["demo"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage" in result.output


def test_configuration_prints_the_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TALKDESK_BRIDGE_SQL_API_TOKENS", raising=False)
    result = runner.invoke(
        app, ["configuration", "sql", "--public-url", "https://bridge.example.com"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["integration"]["auth_validation_endpoint"] == (
        "https://bridge.example.com/sql/auth_validation"
    )
    assert len(doc["actions"]) == 2
    missing = runner.invoke(app, ["configuration", "sql"])
    assert missing.exit_code == 2 and "--public-url" in missing.output


def test_serve_refuses_sql_without_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TALKDESK_BRIDGE_SQL_API_TOKENS", raising=False)
    monkeypatch.setenv("TALKDESK_BRIDGE_CONNECTORS", "sql")
    result = runner.invoke(app, ["serve", "--port", "0"])
    assert result.exit_code == 2
    assert "TALKDESK_BRIDGE_SQL_API_TOKENS" in result.output


def test_demo_serves_every_contact_exactly_once(tmp_path: Path) -> None:
    """What a new user does: run the demo, then page through contact sync with its token."""
    port = free_port()
    env = {
        **os.environ,
        "TALKDESK_BRIDGE_SQL_URL": f"sqlite:///{tmp_path / 'demo.db'}",
    }
    env.pop("TALKDESK_BRIDGE_SQL_API_TOKENS", None)
    env.pop("TALKDESK_BRIDGE_CONNECTORS", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "talkdesk_bridge",
            "demo",
            "--port",
            str(port),
            "--contacts",
            "1200",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        token = None
        deadline = time.monotonic() + 60
        while token is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if match := re.match(r"API token:\s+(\S+)", line):
                token = match.group(1)
        assert token
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as client:
            assert wait_healthy(client, proc).status_code == 200
            ids: list[str] = []
            meta: dict[str, str] = {}
            while True:
                r = client.post(
                    "/sql/contact_sync", json={"auth": {"api_token": token}, "meta": meta}
                )
                assert r.status_code == 200, r.text
                body = r.json()
                ids.extend(c["id"] for c in body["contacts"])
                if "next_offset" not in body:
                    break
                meta = {"offset": body["next_offset"]}
            assert len(ids) == 1200 and len(set(ids)) == 1200
            bad = client.post("/sql/contact_sync", json={"auth": {"api_token": "x"}})
            assert bad.status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


def test_demo_never_prints_a_token_it_was_given(tmp_path: Path) -> None:
    """A token from the environment is named by its variable (and at most its last four
    characters), never printed; every token in the variable keeps working."""
    port = free_port()
    given, other = "env-secret-token-0123456789-WXYZ", "second-env-token-abcdefghij"
    env = {
        **os.environ,
        "TALKDESK_BRIDGE_SQL_URL": f"sqlite:///{tmp_path / 'demo.db'}",
        "TALKDESK_BRIDGE_SQL_API_TOKENS": f"{given},{other}",
    }
    env.pop("TALKDESK_BRIDGE_CONNECTORS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "talkdesk_bridge", "demo", "--port", str(port), "--contacts", "20"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    banner: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while not (banner and banner[-1].startswith("Try:")) and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, f"the demo exited: {''.join(banner)}"
            banner.append(line)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            assert wait_healthy(client, proc).status_code == 200
            for token in (given, other):
                r = client.post("/sql/auth_validation", json={"auth": {"api_token": token}})
                assert r.status_code == 200, r.text
    finally:
        proc.terminate()
        rest, _ = proc.communicate(timeout=10)
    text = "".join(banner)
    assert "API token:     the first token in TALKDESK_BRIDGE_SQL_API_TOKENS" in text
    assert "...WXYZ" in text  # the last four, to tell tokens apart
    assert "<token from TALKDESK_BRIDGE_SQL_API_TOKENS>" in banner[-1]
    for token in (given, other):
        assert token not in text + rest
        assert token[:-4] not in text + rest
