"""Secret hygiene: a whole scenario at DEBUG, and no credential value anywhere it could leak:
log lines, response bodies and headers, metrics."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from talkdesk_bridge._observability import JsonFormatter
from tests._support import seed, serve, sql_settings

API_TOKEN = "sql-token-f00dfeed-do-not-leak"
INBOUND = "inbound-key-c0ffee-do-not-leak"
SECRETS = (API_TOKEN, INBOUND)


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "httpx" and "https://bridge.test/" in record.getMessage():
            return  # the test's own client calling the bridge, not the bridge
        self.lines.append(self.format(record))
        self.lines.append(record.getMessage())


@pytest.fixture
def captured() -> Iterator[Capture]:
    handler = Capture()
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def transcript(response: httpx.Response) -> str:
    return f"{response.status_code} {dict(response.headers)} {response.text}"


async def test_sql_scenario_leaks_no_credential(sqlite_url: str, captured: Capture) -> None:
    await seed(sqlite_url, contacts=40)
    settings = sql_settings(
        sqlite_url,
        sql_api_tokens=[SecretStr(API_TOKEN)],
        inbound_secret=SecretStr(INBOUND),
        sql_page_size=15,
    )
    seen: list[str] = []
    key = f"?key={INBOUND}"
    good = {"api_token": API_TOKEN}
    async with serve(settings) as client:

        async def post(path: str, body: object) -> httpx.Response:
            r = await client.post(f"/sql/{path}{key}", json=body)
            seen.append(transcript(r))
            return r

        assert (await post("auth_validation", {"auth": good})).status_code == 200
        assert (
            await post("auth_validation", {"auth": {"api_token": API_TOKEN[:-1]}})
        ).status_code == 401
        meta: dict[str, str] = {}
        while True:
            page = (await post("contact_sync", {"auth": good, "meta": meta})).json()
            if "next_offset" not in page:
                break
            meta = {"offset": page["next_offset"]}
        await post("interaction_update", {"auth": good, "data": {"contact_external_id": "3"}})
        await post("agent_sync", {"auth": good, "meta": {"offset": 0}})
        await post(
            "actions/create_ticket",
            {"auth": good, "meta": {"contact_external_id": "3"}, "data": {"subject": "hello"}},
        )
        await post("actions/create_ticket", {"auth": good, "meta": {}, "data": {}})
        # Credentials in the wrong places: error messages must not echo them.
        assert (
            await post("contact_sync", {"auth": good, "meta": {"offset": API_TOKEN}})
        ).status_code == 422
        assert (
            await post("contact_sync", {"auth": good, "meta": {"offset": [API_TOKEN]}})
        ).status_code == 422
        assert (
            await post("agent_sync", {"auth": good, "meta": {"offset": API_TOKEN}})
        ).status_code == 422
        await post("interaction_update", {"auth": API_TOKEN})
        r = await client.post("/sql/contact_sync?key=" + API_TOKEN, json={"auth": good})
        seen.append(transcript(r))
        seen.append(transcript(await client.get(f"/metrics{key}")))
    # An unreachable database: the failure path.
    down = sql_settings(
        "postgresql+asyncpg://postgres@127.0.0.1:1/none",
        sql_api_tokens=[SecretStr(API_TOKEN)],
        inbound_secret=SecretStr(INBOUND),
    )
    async with serve(down) as client:
        r = await client.post(f"/sql/contact_sync{key}", json={"auth": good})
        assert r.status_code == 503
        seen.append(transcript(r))
    everything = "\n".join(seen + captured.lines)
    assert len(captured.lines) > 20
    for secret in SECRETS:
        assert secret not in everything
    # Only the configuration endpoint may hand out the inbound key, by design.
