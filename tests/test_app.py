"""The service's HTTP surface: routing, bad input, error shapes, configuration JSON."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from talkdesk_bridge import ConfigurationError, Settings, create_app
from tests._support import TOKEN, auth, serve, sql_settings

ENDPOINTS = ["auth_validation", "contact_sync", "interaction_update", "agent_sync"]


def assert_json_error(r: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    message = body["error"]["message"] if "error" in body else body["message"]
    for word in words:
        assert word in message, (word, message)
    assert "Traceback" not in r.text
    return dict(body)


async def test_health(demo_client: httpx.AsyncClient) -> None:
    r = await demo_client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    index = (await demo_client.get("/")).json()
    assert set(index["connectors"]["sql"]) == {*ENDPOINTS, "actions"}


@pytest.mark.parametrize("endpoint", [*ENDPOINTS, "actions/create_ticket"])
async def test_malformed_bodies_are_400(demo_client: httpx.AsyncClient, endpoint: str) -> None:
    path = f"/sql/{endpoint}"
    for content in (
        b"{not json",
        b"",
        b"   ",
        b"\xff\xfe{}",
        b"[1, 2]",
        b'"auth"',
        b"NaN",
        b"null",
    ):
        r = await demo_client.post(path, content=content)
        assert_json_error(r, 400)
    deep = b"[" * 5000 + b"]" * 5000
    assert_json_error(await demo_client.post(path, content=deep), 400)
    r = await demo_client.post(
        path, content=b"auth=x", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert_json_error(r, 400)


@pytest.mark.parametrize(
    ("endpoint", "body", "field"),
    [
        ("contact_sync", {"auth": auth(), "meta": "x"}, "meta"),
        ("contact_sync", {"auth": auth(), "meta": {"offset": 5}}, "meta.offset"),
        ("contact_sync", {"auth": auth(), "meta": {"synchronization_checkpoint": []}}, "meta"),
        ("contact_sync", {"auth": "token"}, "auth"),
        ("interaction_update", {"auth": auth(), "data": {"contact_emails": "a@b"}}, "data"),
        ("interaction_update", {"auth": auth(), "meta": {"interaction_types": "x"}}, "meta"),
        ("interaction_update", {"auth": auth(), "data": {"contact_phones": ["1"] * 500}}, "data"),
        ("agent_sync", {"auth": auth(), "meta": {"offset": "ten"}}, "meta.offset"),
        ("agent_sync", {"auth": auth(), "meta": {"offset": -1}}, "meta.offset"),
        ("actions/create_ticket", {"auth": auth(), "data": []}, "data"),
        ("actions/create_ticket", {"auth": auth(), "meta": {"contact_external_id": 1}}, "meta"),
    ],
)
async def test_wrong_types_are_422_naming_the_field(
    demo_client: httpx.AsyncClient, endpoint: str, body: dict[str, Any], field: str
) -> None:
    r = await demo_client.post(f"/sql/{endpoint}", json=body)
    assert_json_error(r, 422, field)


async def test_unknown_fields_are_ignored(demo_client: httpx.AsyncClient) -> None:
    r = await demo_client.post(
        "/sql/contact_sync",
        json={"auth": {**auth(), "extra": 1}, "meta": {"future": True}, "account_id": "x"},
    )
    assert r.status_code == 200


async def test_body_over_limit_is_413(sqlite_url: str) -> None:
    async with serve(sql_settings(sqlite_url, max_body_bytes=4096)) as client:
        big = {"auth": auth(), "data": {"contact_name": "x" * 5000}}
        r = await client.post("/sql/interaction_update", json=big)
        assert_json_error(r, 413, "4096")

        async def chunks() -> Any:  # no content-length: the limit still holds
            yield b'{"auth": {}, "pad": "'
            for _ in range(10):
                yield b"x" * 1000
            yield b'"}'

        r = await client.post("/sql/interaction_update", content=chunks())
        assert_json_error(r, 413)


async def test_routing_errors(demo_client: httpx.AsyncClient) -> None:
    assert_json_error(await demo_client.post("/zendesk/contact_sync", json={}), 404)
    assert_json_error(await demo_client.post("/sql/actions/nope", json={"auth": auth()}), 404)
    assert_json_error(await demo_client.get("/sql/contact_sync"), 405, "GET")
    assert_json_error(await demo_client.post("/sql/configuration"), 405)


async def test_hostile_values_never_500(demo_client: httpx.AsyncClient) -> None:
    hostile = ["'; DROP TABLE contacts; --", "\u0000", "%00", "../../etc/passwd", "\ud7ff" * 300]
    for value in hostile:
        for endpoint, body in (
            (
                "interaction_update",
                {
                    "auth": auth(),
                    "data": {
                        "contact_external_id": value,
                        "contact_emails": [value],
                        "contact_phones": [value],
                    },
                },
            ),
            (
                "interaction_update",
                {"auth": auth(), "data": {"contact_emails": [value], "contact_phones": [value]}},
            ),
            ("contact_sync", {"auth": auth(), "meta": {"offset": value}}),
            ("actions/create_contact", {"auth": auth(), "data": {"name": value}}),
            ("auth_validation", {"auth": {"api_token": value}}),
        ):
            r = await demo_client.post(f"/sql/{endpoint}", json=body)
            assert r.status_code < 500, (endpoint, value, r.text)
            assert r.headers["content-type"] == "application/json"
    count = await demo_client.post("/sql/contact_sync", json={"auth": auth()})
    assert count.status_code == 200 and count.json()["contacts"]


async def test_configuration_matches_the_contract(demo_client: httpx.AsyncClient) -> None:
    doc = (await demo_client.get("/sql/configuration")).json()
    integration = doc["integration"]
    allowed = {
        "name",
        "display_name",
        "description",
        "logo_url",
        "icon_url",
        "authentication_type",
        "authentication_configuration",
        "auth_validation_endpoint",
        "contact_synchronization_endpoint",
        "interaction_retrieval_endpoint",
        "agent_synchronization_endpoint",
        "interaction_types",
    }
    assert set(integration) <= allowed
    assert {"name", "display_name", "description", "authentication_type"} <= set(integration)
    assert integration["authentication_type"] == "custom"
    (field,) = integration["authentication_configuration"]
    assert list(field) == ["api_token"]
    assert {"source", "display", "mandatory", "type", "store"} <= set(field["api_token"])
    assert field["api_token"]["source"] in {"input", "default", "auth_validation"}
    for key in (
        "auth_validation",
        "contact_synchronization",
        "interaction_retrieval",
        "agent_synchronization",
    ):
        assert integration[f"{key}_endpoint"].startswith("https://bridge.test/sql/")
    assert integration["interaction_types"] == ["ticket", "call"]
    actions = doc["actions"]
    assert {a["name"] for a in actions} == {"create_ticket", "create_contact"}
    for action in actions:
        assert set(action) == {"provider", "name", "display", "description", "endpoint", "inputs"}
        assert action["provider"] == integration["name"]
        assert action["display"] == action["display"].lower()
        assert action["description"] == action["description"].lower()
        assert action["endpoint"] == f"https://bridge.test/sql/actions/{action['name']}"
        for item in action["inputs"]:
            assert set(item) == {"key", "name", "mandatory"}
            assert isinstance(item["mandatory"], bool)


async def test_configuration_uses_public_url(sqlite_url: str) -> None:
    settings = sql_settings(sqlite_url, public_url="https://bridge.example.com/")
    async with serve(settings) as client:
        doc = (await client.get("/sql/configuration")).json()
    assert doc["integration"]["contact_synchronization_endpoint"] == (
        "https://bridge.example.com/sql/contact_sync"
    )


def test_sql_connector_needs_tokens_when_named(sqlite_url: str) -> None:
    with pytest.raises(ConfigurationError, match="TALKDESK_BRIDGE_SQL_API_TOKENS"):
        create_app(Settings(sql_url=sqlite_url, connectors=["sql"]))
    with pytest.raises(ConfigurationError, match="unknown connector 'nope'"):
        create_app(Settings(sql_url=sqlite_url, connectors=["nope"]))


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALKDESK_BRIDGE_SQL_API_TOKENS", f"{TOKEN}, second ")
    monkeypatch.setenv("TALKDESK_BRIDGE_CONNECTORS", "sql")
    monkeypatch.setenv("TALKDESK_BRIDGE_DEFAULT_REGION", "pt")
    settings = Settings()
    assert [t.get_secret_value() for t in settings.sql_api_tokens] == [TOKEN, "second"]
    assert settings.connectors == ["sql"] and settings.default_region == "PT"
    assert TOKEN not in repr(settings) and TOKEN not in json.dumps(settings.model_dump(mode="json"))
