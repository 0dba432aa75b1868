"""The operator console (/console): off by default, a login, CSRF, escaping, no credential
kept, logged or echoed; its pages on the SQL demo database through the app itself."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sqlite3
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from talkdesk_bridge import Settings, create_app
from talkdesk_bridge._observability import JsonFormatter, recent_requests
from talkdesk_bridge.cli import _console_token
from talkdesk_bridge.connectors import REGISTRY
from talkdesk_bridge.console._session import Sessions
from tests._support import TOKEN, seed, sql_settings

CONSOLE_TOKEN = "console-token-for-tests-0123456789"
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(1)>"
CREDENTIAL = "typed-credential-Zq8-0123456789abcdef"


def hostile_database(path: Path) -> str:
    """Rename the first contact the sync sends to an XSS attempt; return one of its phones."""
    with sqlite3.connect(path) as db:
        (first,) = db.execute("SELECT id FROM contacts ORDER BY updated_at, id LIMIT 1").fetchone()
        db.execute("UPDATE contacts SET full_name = ? WHERE id = ?", (HOSTILE, first))
        row = db.execute(
            "SELECT number_e164 FROM contact_phones"
            " WHERE contact_id = ? AND number_e164 IS NOT NULL",
            (first,),
        ).fetchone()
    db.close()
    return str(row[0]) if row else ""


@asynccontextmanager
async def console(
    *, base_url: str = "http://127.0.0.1:8000", **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The app on a seeded demo database with the console on; (client, a caller's phone)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demo.db"
        await seed(f"sqlite:///{path}", contacts=30)
        phone = hostile_database(path)
        values: dict[str, Any] = {
            "console_token": SecretStr(CONSOLE_TOKEN),
            "console_sample_seconds": 0.2,
            **overrides,
        }
        app = create_app(sql_settings(f"sqlite:///{path}", **values))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
                yield client, phone


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


async def login(client: httpx.AsyncClient, token: str = CONSOLE_TOKEN) -> httpx.Response:
    form = await client.get("/console/login")
    assert form.status_code == 200
    return await client.post("/console/login", data={"csrf": csrf_of(form.text), "token": token})


async def logged_in(client: httpx.AsyncClient) -> str:
    """Log in; the session's CSRF token."""
    assert (await login(client)).status_code == 303
    page = await client.get("/console")
    assert page.status_code == 200
    return csrf_of(page.text)


GET_ROUTES = [
    "/console",
    "/console/try",
    "/console/try?connector=sql",
    "/console/lookup",
    "/console/health",
    "/console/health/live",
    "/console/configuration/sql",
    "/console/logos/sql",
    "/console/check/anything",
]
POST_ROUTES = ["/console/try", "/console/lookup", "/console/check", "/console/logout"]


async def test_the_console_is_off_without_its_token() -> None:
    async with console(console_token=None) as (client, _):
        for path in ["/console", "/console/login", "/console/static/console.js"]:
            r = await client.get(path)
            assert r.status_code == 404, path
        assert (await client.post("/console/login", data={"token": "x"})).status_code in (404, 405)


def test_a_short_console_token_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        Settings(console_token=SecretStr("short"))


async def test_without_the_session_cookie_no_route_gives_console_data() -> None:
    async with console() as (client, _):
        for path in GET_ROUTES:
            r = await client.get(path)
            assert r.status_code in (303, 401), (path, r.status_code)
            if r.status_code == 303:
                assert r.headers["location"] == "/console/login"
            assert "sql_demo_crm" not in r.text and "auth_validation" not in r.text, path
        for path in POST_ROUTES:
            r = await client.post(path, data={"connector": "sql", "auth.api_token": TOKEN})
            assert r.status_code == 401, path
            assert "contact" not in r.text.lower().replace("console", ""), path
        # A forged or expired cookie is no session either.
        other = Sessions("another-console-token-0123456789", 60)
        _, forged = other.issue()
        mine = Sessions(CONSOLE_TOKEN, 60)
        _, expired = mine.issue(now=1_000)
        for cookie in (forged, expired, "v1.9999999999.x.y", "garbage"):
            client.cookies.set("td_console", cookie, path="/console")
            r = await client.get("/console")
            assert r.status_code == 303, cookie
        # The static script and stylesheet are no data: the login page needs them.
        assert (await client.get("/console/static/console.js")).status_code == 200
        assert (await client.get("/console/static/../_routes.py")).status_code == 404


async def test_a_wrong_token_is_refused_and_a_right_one_gives_a_strict_cookie() -> None:
    async with console(base_url="https://bridge.test") as (client, _):
        for wrong in ["", "nope", CONSOLE_TOKEN[:-1], CONSOLE_TOKEN + "x", HOSTILE]:
            r = await login(client, wrong)
            assert r.status_code == 401 and "wrong console token" in r.text
            assert "td_console=" not in r.headers.get("set-cookie", "").replace(
                "td_console_login=", ""
            )
        r = await login(client)
        assert r.status_code == 303 and r.headers["location"] == "/console"
        cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("td_console="))
        attributes = {part.strip().lower() for part in cookie.split(";")}
        assert {"httponly", "secure", "samesite=strict", "path=/console"} <= attributes
        assert (await client.get("/console")).status_code == 200


async def test_the_cookie_is_not_marked_secure_on_plain_http() -> None:
    async with console() as (client, _):
        r = await login(client)
        cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("td_console="))
        assert "secure" not in cookie.lower()


async def test_repeated_wrong_tokens_are_slowed_down() -> None:
    async with console() as (client, _):
        statuses = [(await login(client, "wrong-token")).status_code for _ in range(12)]
        assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429]
        assert (await login(client)).status_code == 429  # even the right one, for a minute


async def test_login_and_every_state_change_need_their_csrf_token() -> None:
    async with console() as (client, _):
        await client.get("/console/login")
        r = await client.post("/console/login", data={"token": CONSOLE_TOKEN})
        assert r.status_code == 403
        r = await client.post("/console/login", data={"token": CONSOLE_TOKEN, "csrf": "forged"})
        assert r.status_code == 403
        csrf = await logged_in(client)
        for path in POST_ROUTES:
            for bad in ({}, {"csrf": "forged"}, {"csrf": csrf[:-1]}):
                data = {"connector": "sql", "auth.api_token": TOKEN, **bad}
                r = await client.post(path, data=data)
                assert r.status_code == 403, (path, bad)
        # The header works as well as the field (the script's fetches may use either).
        r = await client.post(
            "/console/try", data={"connector": "sql"}, headers={"X-CSRF-Token": csrf}
        )
        assert r.status_code == 200
        r = await client.post("/console/logout", data={"csrf": csrf})
        assert r.status_code == 303
        assert (await client.get("/console")).status_code == 303


async def test_logout_revokes_the_session_even_if_the_cookie_is_kept() -> None:
    async with console() as (client, _):
        csrf = await logged_in(client)
        kept = client.cookies.get("td_console", path="/console")
        assert kept
        await client.post("/console/logout", data={"csrf": csrf})
        client.cookies.set("td_console", kept, path="/console")
        assert (await client.get("/console")).status_code == 303


async def test_pages_carry_a_strict_policy_and_no_inline_script() -> None:
    async with console() as (client, _):
        csrf = await logged_in(client)
        pages = [await client.get(p) for p in GET_ROUTES[:6]]
        pages.append(await client.post("/console/try", data={"csrf": csrf, "connector": "sql"}))
        pages.append(await client.get("/console/login"))
        for r in pages:
            assert r.status_code in (200, 303), r.url  # logged in: the login page redirects
            policy = r.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
            assert "unsafe-inline" not in policy
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["cache-control"] == "no-store"
            if r.headers.get("content-type", "").startswith("text/html"):
                scripts = re.findall(r"<script[^>]*>", r.text)
                assert all('src="/console/static/' in s for s in scripts), scripts
                assert not re.search(r"\son[a-z]+=", r.text), "an inline event handler"


async def test_overview_lists_every_registered_connector_and_why_one_is_off() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            sql_url=f"sqlite:///{Path(tmp) / 'none.db'}",
            console_token=SecretStr(CONSOLE_TOKEN),
        )  # every usable connector; sql has no API token, so it is skipped
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://b.test") as client:
                await logged_in(client)
                page = (await client.get("/console")).text
    for name in REGISTRY:
        assert f'data-connector="{name}"' in page, name
    sql_card = page.split('data-connector="sql"', 1)[1].split("</article>", 1)[0]
    assert "not enabled" in sql_card and "no API token configured" in sql_card
    assert "Authentication" in sql_card  # described even when off


async def test_overview_shows_readiness_configuration_and_download() -> None:
    async with console() as (client, _):
        await logged_in(client)
        page = (await client.get("/console")).text
        card = page.split('data-connector="sql"', 1)[1].split("</article>", 1)[0]
        assert 'data-readiness="ok"' in card
        assert "&#34;auth_validation_endpoint&#34;" in card  # the JSON, escaped
        assert "http://127.0.0.1:8000/sql/auth_validation" in card
        assert 'data-copy="config-sql"' in card and 'download="sql-configuration.json"' in card
        download = await client.get("/console/configuration/sql")
        assert download.status_code == 200
        assert "attachment" in download.headers["content-disposition"]
        assert download.json()["integration"]["name"] == "sql_demo_crm"
        logo = await client.get("/console/logos/sql")
        assert logo.headers["content-type"].startswith("image/")
        assert (await client.get("/console/configuration/nope")).status_code == 404


async def test_try_a_connection_shows_what_talkdesk_receives_and_inerts_hostile_names() -> None:
    async with console() as (client, _):
        csrf = await logged_in(client)
        r = await client.post(
            "/console/try", data={"csrf": csrf, "connector": "sql", "auth.api_token": TOKEN}
        )
        assert r.status_code == 200
        assert 'data-ok="true"' in r.text
        assert r.text.count("POST /sql/interaction_update") == 3
        assert "+1" in r.text  # E.164 phones
        assert HOSTILE not in r.text and "<img src=x" not in r.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in r.text
        assert TOKEN not in r.text  # not even as the form's value

        bad = await client.post(
            "/console/try", data={"csrf": csrf, "connector": "sql", "auth.api_token": CREDENTIAL}
        )
        assert bad.status_code == 200 and 'data-ok="false"' in bad.text
        assert '<td class="num">401</td>' in bad.text
        assert "unauthorized" in bad.text  # the error body exactly as Talkdesk gets it
        assert "/sql/contact_sync" not in bad.text  # nothing after a failed validation
        assert CREDENTIAL not in bad.text


async def test_caller_lookup_finds_the_contact_and_its_interactions() -> None:
    async with console() as (client, phone):
        assert phone
        csrf = await logged_in(client)
        spaced = f"{phone[:-7]} {phone[-7:-4]} {phone[-4:]}"  # as a person types it
        r = await client.post(
            "/console/lookup",
            data={"csrf": csrf, "connector": "sql", "caller": spaced, "auth.api_token": TOKEN},
        )
        assert r.status_code == 200
        result = r.text.split('id="lookup-result"', 1)[1]
        assert f"<code>{phone}</code>" in result
        assert "&lt;script&gt;alert(1)" in result and HOSTILE not in result
        assert "POST /sql/interaction_update" in result
        assert "no interactions" not in result
        assert TOKEN not in r.text


async def test_the_full_check_runs_with_progress_and_only_for_its_session() -> None:
    async with console() as (client, _):
        csrf = await logged_in(client)
        started = await client.post(
            "/console/check", data={"csrf": csrf, "connector": "sql", "auth.api_token": TOKEN}
        )
        assert started.status_code == 202
        status_url = started.json()["status"]
        for _ in range(200):
            status = (await client.get(status_url)).json()
            if status["state"] != "running":
                break
            await asyncio.sleep(0.05)
        assert status["state"] == "done", status
        assert {s["label"] for s in status["steps"]} >= {"contact sync (full)", "agent sync"}
        assert 'data-outcome="pass"' in status["html"]
        assert TOKEN not in str(status)
        # Another session cannot see it.
        async with httpx.AsyncClient(
            transport=client._transport, base_url=str(client.base_url)
        ) as other:
            await logged_in(other)
            assert (await other.get(status_url)).status_code == 404


HOSTILE_VALUES = [
    "<script>alert(1)</script>",
    '"><svg onload=alert(1)>',
    "x" * 5000,
    "\x00\x01\x07\x1b[31m\r\n\t",
    "\u202e\ufeff\ud7ff💥" * 50,
    "' OR 1=1 -- ; DROP TABLE contacts",
    "{{ 7*7 }}{% raw %}",
    "%ff%fe%00",
]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
async def test_hostile_form_values_never_500_and_render_as_text(value: str) -> None:
    async with console() as (client, _):
        csrf = await logged_in(client)
        forms = {
            "/console/try": {"auth.api_token": value},
            "/console/lookup": {"caller": value, "auth.api_token": value},
            "/console/check": {"auth.api_token": value},
        }
        for path, fields in forms.items():
            for connector in ("sql", value):
                r = await client.post(path, data={"csrf": csrf, "connector": connector, **fields})
                assert r.status_code < 500, (path, r.status_code)
                assert "<script>alert" not in r.text and "<svg onload" not in r.text
        r = await client.get("/console/try", params={"connector": value})
        assert r.status_code == 404 and "<script>alert" not in r.text
        client.cookies.clear()
        r = await login(client, value)
        assert r.status_code in (401, 429) and "<script>alert" not in r.text


async def test_a_huge_form_is_refused_not_read() -> None:
    async with console() as (client, _):
        csrf = await logged_in(client)
        r = await client.post(
            "/console/try",
            data={"csrf": csrf, "connector": "sql", "auth.api_token": "x" * 200_000},
        )
        assert r.status_code == 413
        r = await client.post("/console/login", data={"token": "x" * 200_000})
        assert r.status_code == 413


async def test_no_typed_credential_reaches_a_log_line_or_a_response(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    answers: list[str] = []
    typed = [TOKEN, CREDENTIAL]
    async with console() as (client, phone):
        csrf = await logged_in(client)
        for credential in typed:
            for path, fields in {
                "/console/try": {},
                "/console/lookup": {"caller": phone},
            }.items():
                r = await client.post(
                    path,
                    data={
                        "csrf": csrf,
                        "connector": "sql",
                        "auth.api_token": credential,
                        **fields,
                    },
                )
                answers.append(r.text + str(r.headers))
            started = await client.post(
                "/console/check",
                data={"csrf": csrf, "connector": "sql", "auth.api_token": credential},
            )
            answers.append(started.text)
            for _ in range(200):
                status = await client.get(started.json()["status"])
                if status.json()["state"] != "running":
                    break
                await asyncio.sleep(0.05)
            answers.append(status.text)
        for path in GET_ROUTES[:6]:
            answers.append((await client.get(path)).text)
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert any("/sql/contact_sync" in line for line in lines)  # the calls were logged
    for credential in typed:
        assert not [line for line in lines if credential in line]
        assert not [a for a in answers if credential in a]
    assert not [line for line in lines if CONSOLE_TOKEN in line]
    assert not [r for r in recent_requests() if "key=" in r.path or TOKEN in r.path]


async def test_health_shows_requests_per_endpoint_and_the_latest_requests() -> None:
    async with console() as (client, _):
        csrf = await logged_in(client)
        before = (await client.get("/console/health/live")).text
        for _ in range(3):
            await client.post(
                "/console/try", data={"csrf": csrf, "connector": "sql", "auth.api_token": TOKEN}
            )
        await client.post("/sql/contact_sync", json={"auth": {"api_token": "wrong"}})
        await asyncio.sleep(0.3)  # a sample or two
        after = (await client.get("/console/health/live")).text
        assert after != before
        series = after.split('class="data series"', 1)[1].split("</table>", 1)[0]
        assert "<td>sql</td><td>contact_sync</td>" in series
        assert "<td>console</td>" not in series  # the console's own polling is not load
        recent = after.split('class="data recent"', 1)[1]
        assert "<code>/sql/interaction_update</code>" in recent
        assert "/console" not in recent
        assert re.search(r'data-title="Requests" data-total="(?!0\.000)', after)
        page = await client.get("/console/health")
        assert 'data-live="/console/health/live"' in page.text
        assert "<polyline" in page.text


async def test_the_console_works_with_the_inbound_secret_on() -> None:
    secret = "inbound-secret-0123456789"
    async with console(inbound_secret=SecretStr(secret)) as (client, _):
        csrf = await logged_in(client)  # no ?key= on console pages
        r = await client.post(
            "/console/try", data={"csrf": csrf, "connector": "sql", "auth.api_token": TOKEN}
        )
        assert 'data-ok="true"' in r.text  # the in-process calls carry the key
        assert secret not in r.text.replace(f"key={secret}", "")  # only in the configuration
        assert (await client.post("/sql/auth_validation", json={"auth": {}})).status_code == 401


def test_demo_prints_a_console_token_it_made_but_never_one_it_was_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Recorded first, so the variable the function sets is removed afterwards.
    monkeypatch.setenv("TALKDESK_BRIDGE_CONSOLE_TOKEN", "placeholder")
    monkeypatch.delenv("TALKDESK_BRIDGE_CONSOLE_TOKEN")
    made = _console_token(Settings())

    assert len(made) >= 24 and os.environ["TALKDESK_BRIDGE_CONSOLE_TOKEN"] == made
    given = "env-console-token-0123456789-WXYZ"
    shown = _console_token(Settings(console_token=SecretStr(given)))
    assert given not in shown and "TALKDESK_BRIDGE_CONSOLE_TOKEN" in shown and "WXYZ" in shown


@pytest.mark.parametrize(
    "value", ["v1.²³.x.y", "v1.9999999999.é.ß", "\uff561.1.x.y", "v1.1.x.\udcff"]
)
def test_hostile_cookies_and_csrf_tokens_are_refused_not_errors(value: str) -> None:
    sessions = Sessions(CONSOLE_TOKEN, 60)
    session, _ = sessions.issue()
    assert sessions.verify(value) is None
    assert not sessions.csrf_ok(session, value)
    assert not sessions.login_csrf_ok("²³-x", value)
    assert not sessions.login_csrf_ok(sessions.login_nonce(), value)


async def test_a_non_ascii_csrf_field_is_refused() -> None:
    async with console() as (client, _):
        await logged_in(client)
        r = await client.post("/console/try", data={"csrf": "é" * 20, "connector": "sql"})
        assert r.status_code in (400, 403), r.status_code
        client.cookies.clear()
        form = await client.get("/console/login")
        assert form.status_code == 200
        r = await client.post("/console/login", data={"csrf": "ß" * 43, "token": CONSOLE_TOKEN})
        assert r.status_code in (400, 403), r.status_code
