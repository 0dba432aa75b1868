"""Request ids, one JSON access line per request, Prometheus metrics."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from talkdesk_bridge._observability import JsonFormatter, log_config
from tests._support import TOKEN, auth


async def test_request_id_is_echoed_or_made(demo_client: httpx.AsyncClient) -> None:
    r = await demo_client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    made = (await demo_client.get("/healthz")).headers["x-request-id"]
    assert len(made) == 32
    hostile = await demo_client.get("/healthz", headers={"X-Request-ID": "a b" + "x" * 200})
    assert hostile.headers["x-request-id"] != "a b"
    assert len(hostile.headers["x-request-id"]) == 32
    err = await demo_client.post("/sql/contact_sync", content=b"{", headers={"X-Request-ID": "e1"})
    assert err.status_code == 400 and err.headers["x-request-id"] == "e1"


async def test_one_access_line_per_request(
    demo_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="talkdesk_bridge.access")
    await demo_client.post(
        "/sql/contact_sync?key=should-not-be-logged",
        json={"auth": auth(), "meta": {}},
        headers={"X-Request-ID": "req-1"},
    )
    lines = [r for r in caplog.records if r.name == "talkdesk_bridge.access"]
    assert len(lines) == 1
    record = lines[0].__dict__
    assert record["request_id"] == "req-1"
    assert record["connector"] == "sql" and record["endpoint"] == "contact_sync"
    assert record["status"] == 200 and record["latency_ms"] > 0
    assert record["upstream_calls"] >= 1  # the database counts as the upstream
    assert record["path"] == "/sql/contact_sync"
    rendered = JsonFormatter().format(lines[0])
    parsed = json.loads(rendered)
    assert parsed["request_id"] == "req-1" and parsed["message"] == "request"
    assert "should-not-be-logged" not in rendered and TOKEN not in rendered


async def test_metrics(demo_client: httpx.AsyncClient) -> None:
    await demo_client.post("/sql/auth_validation", json={"auth": auth()})
    await demo_client.post("/sql/auth_validation", json={"auth": auth("bad")})
    await demo_client.get("/no/such/path/../../x")
    r = await demo_client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert (
        'talkdesk_bridge_requests_total{connector="sql",endpoint="auth_validation",status="401"}'
        in text
    )
    assert 'endpoint="unknown"' in text and "/no/such" not in text
    assert "talkdesk_bridge_request_seconds_bucket" in text
    assert 'talkdesk_bridge_upstream_calls_total{connector="sql"' in text
    assert TOKEN not in text


def test_log_config_is_valid_and_silences_uvicorn_access() -> None:
    import logging.config

    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    access = logging.getLogger("uvicorn.access")
    saved_access = (access.level, access.propagate, list(access.handlers))
    logging.config.dictConfig(log_config("debug"))
    try:
        assert access.level == logging.CRITICAL
        assert isinstance(root.handlers[-1].formatter, JsonFormatter)
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        access.setLevel(saved_access[0])
        access.propagate = saved_access[1]
        access.handlers[:] = saved_access[2]


async def test_upstream_calls_retries_and_waits_reach_log_and_metrics(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from talkdesk_sandbox.intercom import FakeIntercom, ManualClock
    from tests.test_intercom_support import T0, bridge
    from tests.test_intercom_support import auth as intercom_auth

    clock = ManualClock(T0)
    fake = FakeIntercom(token=intercom_auth()["access_token"], clock=clock)
    caplog.set_level(logging.INFO, logger="talkdesk_bridge.access")
    async with bridge(fake, clock) as b:
        fake.fail_next(2, status=503, path_prefix="/admins")
        r = await b.post("agent_sync", {"auth": intercom_auth()})
        assert r.status_code == 200
        metrics = (await b.client.get("/metrics")).text
    line = next(
        rec.__dict__ for rec in caplog.records if getattr(rec, "endpoint", "") == "agent_sync"
    )
    assert line["connector"] == "intercom"
    assert line["upstream_calls"] >= 3 and line["upstream_retries"] == 2
    assert 'talkdesk_bridge_upstream_calls_total{connector="intercom",outcome="503"}' in metrics
    assert 'talkdesk_bridge_upstream_retries_total{connector="intercom"}' in metrics
    assert intercom_auth()["access_token"] not in metrics
