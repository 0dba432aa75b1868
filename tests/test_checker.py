"""`talkdesk-bridge check` and `lookup`: the Talkdesk simulator against our SQL bridge (which must
pass every check) and against small broken bridges (each violation must be reported)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import phonenumbers
import pytest
import uvicorn
from rich.console import Console
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from typer.testing import CliRunner

from talkdesk_bridge import create_app
from talkdesk_bridge.checker import CheckOptions, CheckReport, run_check
from talkdesk_bridge.checker._judge import (
    CHECKPOINT,
    CONTENT_TYPE,
    DUPLICATES,
    ENUMS,
    FIELDS,
    NOT_OFFERED,
    PAGING,
    RUN,
    STATUS,
    TRANSPORT,
    DuplicateTracker,
    Finding,
    judge_action_result,
    judge_agent_page,
    judge_contact_page,
    judge_interactions,
)
from talkdesk_bridge.checker._plan import parse_configuration
from talkdesk_bridge.checker._report import render_json, render_text
from talkdesk_bridge.checker._store import ContactStore, StoreError, lookup
from talkdesk_bridge.cli import app as cli_app
from tests._support import TOKEN, seed, sql_settings

Scope = MutableMapping[str, Any]
ASGI = Callable[
    [Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]
]

GOOD = {"api_token": TOKEN}


def findings(report: CheckReport, level: str = "fail") -> list[Finding]:
    return [f for _, f in report.findings if f.level == level]


def failed_checks(report: CheckReport) -> set[str]:
    return {f.check for f in findings(report)}


def text_of(report: CheckReport) -> str:
    out = io.StringIO()
    render_text(report, Console(file=out, width=140, color_system=None))
    return out.getvalue()


# --- our own SQL bridge ------------------------------------------------------------------


@pytest.fixture
async def sql_app(sqlite_url: str) -> AsyncIterator[Starlette]:
    await seed(sqlite_url, contacts=60)
    app = create_app(sql_settings(sqlite_url, sql_page_size=20, sql_agents_page_size=2))
    async with app.router.lifespan_context(app):
        yield app


class RecordingProgress:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def start(self, label: str, unit: str) -> None:
        self.events.append(("start", label))

    def update(self, label: str, pages: int, items: int) -> None:
        self.events.append(("update", label))

    def finish(self, label: str) -> None:
        self.events.append(("finish", label))


async def test_sql_demo_passes_every_check(sql_app: Starlette, tmp_path: Path) -> None:
    progress = RecordingProgress()
    store = tmp_path / "talkdesk.db"
    report = await run_check(
        CheckOptions(url="https://bridge.test/sql", auth=GOOD, actions=True, store=store),
        transport=httpx.ASGITransport(app=sql_app),
        progress=progress,
    )
    assert not report.failed, [f for _, f in report.failures()]
    assert report.counts["fail"] == 0 and report.counts["pass"] > 500
    steps = {row.step for row in report.rows}
    assert steps >= {
        "auth validation",
        "contact sync (full)",
        "contact sync (incremental)",
        "interaction retrieval",
        "agent sync",
        "actions",
    }
    assert report.stats["contacts_full"] == 60 and report.stats["contact_pages_full"] == 3
    assert report.stats["agents"] == 5 and report.stats["actions"] == 2
    assert report.stats["interactions"] > 0
    assert set(report.latency) >= {
        "auth_validation",
        "contact_sync",
        "interaction_update",
        "agent_sync",
        "actions/create_ticket",
        "actions/create_contact",
    }
    assert report.latency["contact_sync"].calls >= 4  # 3 full pages + the incremental run
    assert ("start", "contact sync (full)") in progress.events
    assert progress.events[-1] == ("finish", "agent sync")

    text = text_of(report)
    assert "PASS" in text and "p95" in text and "full sync" in text
    document = orjson.loads(render_json(report))
    assert document["outcome"] == "pass" and document["counts"]["fail"] == 0
    assert document["latency_ms"]["contact_sync"]["p99"] >= 0
    assert TOKEN not in text and TOKEN not in render_json(report)

    # Every synced contact was kept, upserted by id, and callers can be identified.
    with contextlib.closing(sqlite3.connect(store)) as db:
        assert db.execute("SELECT COUNT(*) FROM contacts").fetchone()[0] == 60
        cid, phone = db.execute(
            "SELECT contact_id, raw FROM contact_phones WHERE raw LIKE '+1%' LIMIT 1"
        ).fetchone()
    national = phonenumbers.format_number(
        phonenumbers.parse(phone), phonenumbers.PhoneNumberFormat.NATIONAL
    )
    assert cid in {c["id"] for c in lookup(store, national, "US")}


async def test_interactions_use_configured_types_and_both_lookups(sql_app: Starlette) -> None:
    seen: list[dict[str, Any]] = []

    async def spy(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/interaction_update"):
            body = b""
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
            seen.append(orjson.loads(body))
            replayed = False

            async def replay() -> dict[str, Any]:
                nonlocal replayed
                if replayed:
                    return {"type": "http.disconnect"}
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            await sql_app(scope, replay, send)
            return
        await sql_app(scope, receive, send)

    report = await run_check(
        CheckOptions(url="https://bridge.test/sql", auth=GOOD, contacts_sample=3),
        transport=httpx.ASGITransport(app=spy),
    )
    assert not report.failed
    assert len(seen) == 6
    assert all(b["meta"]["interaction_types"] == ["ticket", "call"] for b in seen)
    by_id = [b["data"] for b in seen[0::2]]
    by_details = [b["data"] for b in seen[1::2]]
    assert all(set(d) == {"contact_external_id"} for d in by_id)
    assert all("contact_external_id" not in d and "contact_name" in d for d in by_details)
    assert any(d["contact_phones"] or d["contact_emails"] for d in by_details)


# --- deliberately broken bridges ---------------------------------------------------------

CONTACTS: list[dict[str, Any]] = [
    {
        "id": str(i),
        "name": f"Person {i}",
        "emails": [f"person{i}@example.com"],
        "phones": [f"+1617555{i:04d}"],
    }
    for i in range(1, 26)
]
AGENTS = [
    {"id": str(i), "name": name, "email": f"{name.lower()}@support.example"}
    for i, name in enumerate(["Alice", "Bob", "Carol"], 1)
]
PAGE = 5


@dataclass(frozen=True)
class Faults:
    int_ids: bool = False
    no_checkpoint: bool = False
    html: bool = False
    fail_page: int | None = None
    endless: bool = False
    same_offset: bool = False
    duplicate: bool = False
    changed_duplicate: bool = False
    bad_priority: bool = False
    accept_bad_auth: bool = False
    leaky_error: bool = False
    no_configuration: bool = False
    no_agents: bool = False


def fake_bridge(**faults: Any) -> tuple[Starlette, list[tuple[str, dict[str, Any]]]]:
    """A correct little bridge at /b/, unless a fault says otherwise; and its request log."""
    fault = Faults(**faults)
    log: list[tuple[str, dict[str, Any]]] = []

    def json(content: Any, status: int = 200, media: str = "application/json") -> Response:
        return Response(orjson.dumps(content), status, media_type=media)

    def unauthorized() -> Response:
        return json({"error": {"code": "unauthorized", "message": "bad token"}}, 401)

    async def read(request: Request) -> dict[str, Any]:
        body: dict[str, Any] = orjson.loads(await request.body())
        log.append((request.url.path.rsplit("/", 1)[-1], body))
        return body

    def authorized(body: dict[str, Any]) -> bool:
        return bool(body.get("auth", {}).get("api_token") == TOKEN)

    async def auth_validation(request: Request) -> Response:
        body = await read(request)
        if authorized(body):
            return Response(status_code=204)  # the old docs' answer
        return json({}) if fault.accept_bad_auth else unauthorized()

    async def contact_sync(request: Request) -> Response:
        body = await read(request)
        if not authorized(body):
            return unauthorized()
        meta = body.get("meta", {})
        checkpoint = meta.get("synchronization_checkpoint")
        offset = int(meta.get("offset") or 0)
        page = offset // PAGE + 1
        if fault.leaky_error:
            message = f"upstream refused token {body['auth']['api_token']}"
            return json({"error": {"code": "unavailable", "message": message}}, 503)
        if fault.fail_page == page:
            return json({"error": {"code": "internal_error", "message": "boom"}}, 500)
        if offset and meta.get("context") != {"after": offset}:
            return json({"error": {"code": "invalid", "message": "context not echoed"}}, 422)
        source = CONTACTS[-7:] if checkpoint else CONTACTS
        rows = [dict(c) for c in source[offset : offset + PAGE]]
        if fault.int_ids:
            for row in rows:
                row["id"] = int(row["id"])
        if page == 2 and fault.duplicate:
            rows[0] = dict(CONTACTS[0])
        if page == 2 and fault.changed_duplicate:
            rows[0] = {**CONTACTS[0], "name": "Person 1 (renamed)"}
        reply: dict[str, Any] = {"contacts": rows}
        if not fault.no_checkpoint:
            reply["synchronization_checkpoint"] = f"cp-{offset + len(rows)}"
        if offset + PAGE < len(source) or fault.endless or fault.same_offset:
            following = PAGE if fault.same_offset else offset + PAGE
            reply["next_offset"] = str(following)
            reply["context"] = {"after": following}
        return json(reply, media="text/html; charset=utf-8" if fault.html else "application/json")

    async def interaction_update(request: Request) -> Response:
        body = await read(request)
        if not authorized(body):
            return unauthorized()
        items = [
            {
                "id": "t1",
                "subject": "Printer on fire",
                "date": "2024-05-01 10:00:00 UTC",
                "type": "ticket",
                "priority": "critical" if fault.bad_priority else "high",
                "status": "open",
                "url": "https://crm.example/tickets/1",
            },
            {"id": "c1", "subject": "Call", "date": "2024-05-02 11:00:00 UTC", "type": "call"},
        ]
        wanted = body["meta"]["interaction_types"]
        return json([i for i in items if i["type"] in wanted])

    async def agent_sync(request: Request) -> Response:
        body = await read(request)
        if not authorized(body):
            return unauthorized()
        offset = body["meta"]["offset"] or 0
        reply: dict[str, Any] = {"agents": AGENTS[offset : offset + 2]}
        if offset + 2 < len(AGENTS):
            reply["next_offset"] = offset + 2
        return json(reply)

    async def action(request: Request) -> Response:
        body = await read(request)
        if not authorized(body):
            return unauthorized()
        if not body["data"].get("subject") or not body["meta"].get("contact_external_id"):
            return json({"message": "subject and a contact are required"}, 400)
        return json({"message": "Ticket created", "external_id": "t99"}, 201)

    async def configuration(request: Request) -> Response:
        return json(
            {
                "integration": {
                    "name": "fake",
                    "display_name": "Fake",
                    "description": "A fake bridge",
                    "authentication_type": "custom",
                    "authentication_configuration": [{"api_token": {"display": "Token"}}],
                    "auth_validation_endpoint": "https://public.example/b/auth_validation",
                    "contact_synchronization_endpoint": "https://public.example/b/contact_sync",
                    "interaction_retrieval_endpoint": "https://public.example/b/interaction_update",
                    "agent_synchronization_endpoint": "https://public.example/b/agent_sync",
                    "interaction_types": ["ticket", "call"],
                },
                "actions": [
                    {
                        "provider": "fake",
                        "name": "create_ticket",
                        "display": "create a ticket",
                        "description": "creates a ticket",
                        "endpoint": "https://public.example/b/actions/create_ticket",
                        "inputs": [
                            {"key": "subject", "name": "Subject", "mandatory": True},
                            {"key": "notes", "name": "Notes", "mandatory": False},
                        ],
                    }
                ],
            }
        )

    routes = [
        Route("/b/auth_validation", auth_validation, methods=["POST"]),
        Route("/b/contact_sync", contact_sync, methods=["POST"]),
        Route("/b/interaction_update", interaction_update, methods=["POST"]),
        Route("/b/actions/create_ticket", action, methods=["POST"]),
    ]
    if not fault.no_agents:
        routes.append(Route("/b/agent_sync", agent_sync, methods=["POST"]))
    if not fault.no_configuration:
        routes.append(Route("/b/configuration", configuration, methods=["GET"]))
    return Starlette(routes=routes), log


async def check_fake(**faults: Any) -> tuple[CheckReport, list[tuple[str, dict[str, Any]]]]:
    max_pages = faults.pop("max_pages", 10_000)
    actions = faults.pop("actions", True)
    app, log = fake_bridge(**faults)
    report = await run_check(
        CheckOptions(url="https://bridge.test/b", auth=GOOD, actions=actions, max_pages=max_pages),
        transport=httpx.ASGITransport(app=app),
    )
    return report, log


async def test_the_fake_bridge_itself_passes_and_is_called_like_talkdesk_does() -> None:
    report, log = await check_fake()
    assert not report.failed, [f for _, f in report.failures()]
    assert report.stats["contacts_full"] == 25 and report.stats["contacts_incremental"] == 7
    syncs = [body["meta"] for path, body in log if path == "contact_sync"]
    full, incremental = syncs[:5], syncs[5:]
    assert full[0] == {} and "offset" not in full[0]
    assert [m.get("offset") for m in full] == [None, "5", "10", "15", "20"]
    assert all(m["context"] == {"after": int(m["offset"])} for m in full[1:])
    assert "synchronization_checkpoint" not in str(full)
    # The incremental run starts from the full run's last checkpoint and keeps it on every page.
    assert [m["synchronization_checkpoint"] for m in incremental] == ["cp-25", "cp-25"]
    agent_offsets = [body["meta"]["offset"] for path, body in log if path == "agent_sync"]
    assert agent_offsets == [None, 2]
    actions = [body for path, body in log if path == "create_ticket"]
    assert len(actions) == 1 and set(actions[0]["data"]) == {"subject"}
    assert actions[0]["meta"] == {
        "contact_external_id": actions[0]["meta"]["contact_external_id"],
        "agent_external_id": "1",
    }
    bad = [body["auth"] for path, body in log if path == "auth_validation"][1]
    assert bad.keys() == GOOD.keys() and bad["api_token"] != TOKEN


async def test_integer_ids_fail() -> None:
    # Without a well-formed contact there is no contact to run an action for: leave actions out.
    report, _ = await check_fake(int_ids=True, actions=False)
    assert report.failed and failed_checks(report) == {FIELDS}
    first = findings(report)[0]
    assert (first.call, first.field) == ("contact_sync page 1", "contacts[0].id")
    assert "expected a string, got integer 1" in first.message


async def test_missing_checkpoint_fails_every_page() -> None:
    report, _ = await check_fake(no_checkpoint=True)
    assert failed_checks(report) == {CHECKPOINT}
    located = {(f.call, f.field) for f in findings(report)}
    assert ("contact_sync page 1", "synchronization_checkpoint") in located
    assert len(located) == 5
    skipped = [f for f in findings(report, "skip") if f.call == "incremental contact_sync"]
    assert skipped and "checkpoint" in skipped[0].message


async def test_html_content_type_fails() -> None:
    report, _ = await check_fake(html=True)
    assert failed_checks(report) == {CONTENT_TYPE}
    first = findings(report)[0]
    assert first.call == "contact_sync page 1" and first.field == "Content-Type"
    assert "text/html" in first.message


async def test_a_500_on_page_3_stops_the_sync_gracefully() -> None:
    report, log = await check_fake(fail_page=3)
    assert failed_checks(report) == {STATUS}
    (failure,) = findings(report)
    assert failure.call == "contact_sync page 3"
    assert "got 500 (server error): boom" in failure.message
    assert [b["meta"].get("offset") for p, b in log if p == "contact_sync"] == [None, "5", "10"]
    # The later steps still ran, on the contacts the first two pages delivered.
    assert report.stats["contacts_full"] == 10 and report.stats["agents"] == 3
    assert "Traceback" not in text_of(report)


@pytest.mark.parametrize(
    ("faults", "call", "says"),
    [
        ({"endless": True, "max_pages": 30}, "contact_sync page 31", "after 30 pages"),
        ({"same_offset": True}, "contact_sync page 2", "already followed after page 1"),
    ],
)
async def test_an_endless_next_offset_fails(faults: dict[str, Any], call: str, says: str) -> None:
    report, _ = await check_fake(**faults)
    assert failed_checks(report) == {PAGING}
    (failure,) = findings(report)
    assert failure.call == call and says in failure.message


async def test_identical_duplicate_fails_and_changed_duplicate_warns() -> None:
    report, _ = await check_fake(duplicate=True)
    assert failed_checks(report) == {DUPLICATES}
    (failure,) = findings(report)
    assert (failure.call, failure.field) == ("contact_sync page 2", "contacts[0].id")
    assert "identical" in failure.message and "contact_sync page 1 (contacts[0])" in failure.message

    report, _ = await check_fake(changed_duplicate=True)
    assert not report.failed
    (warning,) = [f for f in findings(report, "warn") if f.check == DUPLICATES]
    assert warning.field == "contacts[0].id" and "re-sent with newer data" in warning.message


async def test_unknown_priority_fails() -> None:
    report, _ = await check_fake(bad_priority=True)
    assert failed_checks(report) == {ENUMS}
    failure = findings(report)[0]
    assert failure.call.startswith("interaction_update contact ")
    assert failure.field == "[0].priority" and "'critical'" not in failure.message
    assert '"critical" is not one of none|low|normal|high|urgent' in failure.message


async def test_accepting_bad_credentials_fails() -> None:
    report, _ = await check_fake(accept_bad_auth=True)
    assert failed_checks(report) == {STATUS}
    (failure,) = findings(report)
    assert failure.call == "auth_validation (bad credentials)"
    assert "expected 401, got 200 (bad credentials were accepted)" in failure.message


async def test_credentials_never_reach_the_report() -> None:
    report, _ = await check_fake(leaky_error=True)
    assert report.failed
    assert any("upstream refused token ***" in f.message for f in findings(report))
    assert TOKEN not in text_of(report) and TOKEN not in render_json(report)


async def test_undeclared_or_missing_features_are_skipped_not_failed() -> None:
    # No configuration at all: a 404 means "not offered"; actions have no list to come from.
    app, _ = fake_bridge(no_configuration=True, no_agents=True)
    report = await run_check(
        CheckOptions(url="https://bridge.test/b", auth=GOOD, actions=True),
        transport=httpx.ASGITransport(app=app),
    )
    assert not report.failed
    skips = {(f.call, f.check) for f in findings(report, "skip")}
    assert ("agent_sync page 1", NOT_OFFERED) in skips and ("actions", RUN) in skips

    # A wrong base URL must not "pass" with everything skipped.
    app, _ = fake_bridge()
    report = await run_check(
        CheckOptions(url="https://bridge.test/typo", auth=GOOD),
        transport=httpx.ASGITransport(app=app),
    )
    assert report.failed and [f.call for f in findings(report)] == ["all endpoints"]

    # A configuration file laid out differently: its URLs are called; undeclared is skipped.
    app, log = fake_bridge()
    document = orjson.loads((await _get(app, "/b/configuration")).content)
    integration = document["integration"]
    del integration["agent_synchronization_endpoint"]
    for key in (
        "auth_validation_endpoint",
        "contact_synchronization_endpoint",
        "interaction_retrieval_endpoint",
    ):
        integration[key] = integration[key].replace(
            "https://public.example", "http://elsewhere.test"
        )
    document["actions"][0]["endpoint"] = "http://elsewhere.test/b/actions/create_ticket"
    report = await run_check(
        CheckOptions(
            configuration=parse_configuration(document, authoritative_urls=True),
            auth=GOOD,
            actions=True,
        ),
        transport=httpx.ASGITransport(app=app),
    )
    assert not report.failed, [f for _, f in report.failures()]
    assert ("agent_sync", NOT_OFFERED) in {(f.call, f.check) for f in findings(report, "skip")}
    assert "agent_sync" not in {path for path, _ in log} and report.stats["actions"] == 1


async def _get(app: Starlette, path: str) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://bridge.test"
    ) as client:
        return await client.get(path)


async def test_transport_errors_fail_the_step_without_a_traceback() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    report = await run_check(
        CheckOptions(url="https://bridge.test/b", auth=GOOD),
        transport=httpx.MockTransport(refuse),
    )
    assert failed_checks(report) == {TRANSPORT}
    calls = {f.call for f in findings(report)}
    assert {
        "auth_validation (good credentials)",
        "contact_sync page 1",
        "agent_sync page 1",
    } <= calls


# --- single judgements --------------------------------------------------------------------


def test_judging_single_answers() -> None:
    tracker = DuplicateTracker()
    page = {
        "contacts": [
            {"id": "1", "name": " ", "emails": ["a@example.com", 7], "phones": ["617 555 0101"]},
            {"id": "2", "name": "Bo", "company": None, "websites": "https://bo.example", "x": 1},
        ],
        "synchronization_checkpoint": "cp",
        "next_offset": 2,
    }
    verdict, info = judge_contact_page("contact_sync page 1", page, tracker)
    got = {(f.level, f.check, f.field) for f in verdict.findings}
    assert got == {
        ("fail", "non-empty names", "contacts[0].name"),
        ("fail", FIELDS, "contacts[0].emails[1]"),
        ("warn", "phones in E.164", "contacts[0].phones[0]"),
        ("warn", FIELDS, "contacts[1].company"),
        ("fail", FIELDS, "contacts[1].websites"),
        ("warn", "unknown fields", "contacts[1].x"),
        ("fail", "next_offset", "next_offset"),
    }
    assert not info.usable  # an integer offset cannot be sent back as Talkdesk's string

    verdict, _ = judge_agent_page(
        "agent_sync page 1",
        {"agents": [{"id": "1", "name": "A"}], "next_offset": "2"},
        DuplicateTracker(),
    )
    assert {(f.check, f.field) for f in verdict.findings} == {
        (FIELDS, "agents[0].email"),
        ("next_offset", "next_offset"),
    }
    verdict = judge_action_result("action a", {"contact_external_id": "9", "message": "ok"})
    assert [(f.level, f.check) for f in verdict.findings] == [("warn", "contact pop url")]
    verdict = judge_interactions(
        "interaction_update contact 1 by id",
        [{"id": "1", "subject": "s", "date": "2024-01-01T00:00:00Z", "type": "email"}],
        ["ticket"],
    )
    assert {(f.level, f.check, f.field) for f in verdict.findings} == {
        ("warn", "interaction dates", "[0].date"),
        ("fail", "interaction types", "[0].type"),
    }


# --- the store and lookup ----------------------------------------------------------------


def test_store_upserts_by_id_and_looks_up_callers(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with ContactStore.open(path) as store:
        store.upsert([{"id": "1", "name": "Ann", "phones": ["+16175550101"]}])
        store.upsert([{"id": "1", "name": "Ann B", "phones": ["(617) 555-0102"]}])
        store.upsert([{"id": "2", "name": "Bo", "phones": ["020 7946 0958"]}])
        assert store.count() == 2
    assert lookup(path, "+1 617 555 0101") == []
    assert [c["name"] for c in lookup(path, "617.555.0102")] == ["Ann B"]
    assert [c["id"] for c in lookup(path, "+44 20 7946 0958", "GB")] == ["2"]
    assert lookup(path, "not a number") == []
    with pytest.raises(StoreError):
        lookup(tmp_path / "missing.db", "+16175550101")
    (tmp_path / "junk.db").write_bytes(b"not sqlite at all, just junk bytes" * 50)
    with pytest.raises(StoreError):
        lookup(tmp_path / "junk.db", "+16175550101")


# --- the command line --------------------------------------------------------------------


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli_app, ["check"]).exit_code == 2
    result = runner.invoke(cli_app, ["check", "http://x.test/b", "--auth", "api_token"])
    assert result.exit_code == 2
    assert runner.invoke(cli_app, ["check", "ftp://x.test/b"]).exit_code == 2
    assert runner.invoke(cli_app, ["lookup", str(tmp_path / "none.db"), "+1"]).exit_code == 2
    assert runner.invoke(cli_app, ["lookup", "x.db", "+1", "--region", "USA"]).exit_code == 2
    help_text = runner.invoke(cli_app, ["--help"]).output
    assert "check" in help_text and "lookup" in help_text


@contextlib.contextmanager
def serving(app: ASGI) -> Iterator[str]:
    """A real uvicorn server on a free loopback port, in a thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from talkdesk_bridge.cli import main; main()", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_cli_end_to_end_against_a_real_server(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}"
    asyncio.run(seed(url, contacts=40))
    sql = create_app(sql_settings(url, sql_page_size=15))
    broken, _ = fake_bridge(accept_bad_auth=True)

    async def both(scope: Scope, receive: Any, send: Any) -> None:
        target = broken if scope["type"] == "http" and scope["path"].startswith("/b/") else sql
        await target(scope, receive, send)

    store = tmp_path / "talkdesk.db"
    with serving(both) as base:
        good = cli(
            "check",
            f"{base}/sql",
            "--auth",
            f"api_token={TOKEN}",
            "--actions",
            "--store",
            str(store),
        )
        bad = cli("check", f"{base}/b", "--auth", f"api_token={TOKEN}", "--json")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "PASS" in good.stdout and "Latency" in good.stdout
    assert TOKEN not in good.stdout + good.stderr
    assert bad.returncode == 1, bad.stdout + bad.stderr
    document = orjson.loads(bad.stdout)
    assert document["outcome"] == "fail"
    assert [f["call"] for f in document["findings"] if f["level"] == "fail"] == [
        "auth_validation (bad credentials)"
    ]

    with contextlib.closing(sqlite3.connect(store)) as db:
        assert db.execute("SELECT COUNT(*) FROM contacts").fetchone()[0] == 40
        cid, phone = db.execute(
            "SELECT contact_id, raw FROM contact_phones WHERE raw LIKE '+1%' LIMIT 1"
        ).fetchone()
        unknown = "+16175550199"
        assert not db.execute("SELECT 1 FROM contact_phones WHERE e164 = ?", (unknown,)).fetchone()
    national = phonenumbers.format_number(
        phonenumbers.parse(phone), phonenumbers.PhoneNumberFormat.NATIONAL
    )
    found = cli("lookup", str(store), national, "--region", "US", "--json")
    assert found.returncode == 0, found.stderr
    answer = orjson.loads(found.stdout)
    assert answer["caller"] == phone and cid in {c["id"] for c in answer["contacts"]}
    missing = cli("lookup", str(store), unknown)
    assert missing.returncode == 1 and "No contact matches +16175550199" in missing.stdout
