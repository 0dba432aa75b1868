"""The optional inbound secret, and HTTPS served by the bridge itself."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trustme
from pydantic import SecretStr
from typer.testing import CliRunner

from talkdesk_bridge.cli import app as cli
from tests._support import auth, free_port, seed, serve, sql_settings, wait_healthy

SECRET = "inbound-secret-value-42"


async def test_inbound_secret_guards_every_call_but_probes(sqlite_url: str) -> None:
    await seed(sqlite_url, contacts=5)
    settings = sql_settings(sqlite_url, inbound_secret=SecretStr(SECRET))
    async with serve(settings) as client:
        body = {"auth": auth(), "meta": {}}
        for query in ("", "?key=", "?key=wrong", f"?key={SECRET}x", f"?KEY={SECRET}"):
            r = await client.post(f"/sql/contact_sync{query}", json=body)
            assert r.status_code == 401, query
            assert r.headers["content-type"] == "application/json"
            assert SECRET not in r.text
        ok = await client.post(f"/sql/contact_sync?key={SECRET}", json=body)
        assert ok.status_code == 200
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200
        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/sql/configuration")).status_code == 401
        doc = (await client.get(f"/sql/configuration?key={SECRET}")).json()
    endpoints = [v for k, v in doc["integration"].items() if k.endswith("_endpoint")]
    endpoints += [a["endpoint"] for a in doc["actions"]]
    assert endpoints and all(url.endswith(f"?key={SECRET}") for url in endpoints)


def test_configuration_command_embeds_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALKDESK_BRIDGE_INBOUND_SECRET", SECRET)
    result = CliRunner().invoke(
        cli, ["configuration", "sql", "--public-url", "https://bridge.example.com"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["integration"]["contact_synchronization_endpoint"] == (
        f"https://bridge.example.com/sql/contact_sync?key={SECRET}"
    )


def test_serve_over_https(tmp_path: Path) -> None:
    """`serve --ssl-certfile/--ssl-keyfile` end to end, trusted through a local CA."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(certfile)
    for blob in cert.cert_chain_pems[1:]:
        blob.write_to_path(certfile, append=True)
    cert.private_key_pem.write_to_path(keyfile)
    port = free_port()
    env = {
        **os.environ,
        "TALKDESK_BRIDGE_SQL_URL": f"sqlite:///{tmp_path / 'tls.db'}",
        "TALKDESK_BRIDGE_SQL_API_TOKENS": "tls-token",
        "TALKDESK_BRIDGE_CONNECTORS": "sql",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "talkdesk_bridge",
            "serve",
            "--port",
            str(port),
            "--ssl-certfile",
            str(certfile),
            "--ssl-keyfile",
            str(keyfile),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        base = f"https://127.0.0.1:{port}"
        with httpx.Client(base_url=base, verify=context, timeout=5) as client:
            assert wait_healthy(client, proc, 30).status_code == 200
            bad = client.post("/sql/auth_validation", json={"auth": {"api_token": "nope"}})
            assert bad.status_code == 401
            good = client.post("/sql/auth_validation", json={"auth": {"api_token": "tls-token"}})
            assert good.status_code == 200
        with pytest.raises(httpx.ConnectError), httpx.Client(verify=True, timeout=5) as plain:
            plain.get(f"{base}/healthz")  # not trusted without the local CA
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()
