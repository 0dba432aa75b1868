"""Shared harness for the `rest` connector's tests (the bridge in front of the three sample
company APIs of `talkdesk_sandbox.rest`), and the sandbox's own awkward parts.

The connector's real HTTP code talks to the sandbox over `httpx.ASGITransport`; time is a
`ManualClock` shared by the sandbox and the connector, whose `sleep` advances it.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from talkdesk_bridge import Settings
from talkdesk_bridge._phones import normalize_phone
from talkdesk_bridge.connectors.rest import RestConnector
from talkdesk_sandbox._clock import ManualClock
from talkdesk_sandbox.rest import MAPPINGS, RestSandbox
from tests._support import advancing_sleep, serve

T0 = 1_720_000_000.0
BASE = "https://api.acme.example/api/v1"
STYLES = ("pages", "cursor", "keyset")


@dataclass
class Bridge:
    client: httpx.AsyncClient
    connector: RestConnector
    clock: ManualClock
    auth: dict[str, str]
    sleeps: list[float] = field(default_factory=list)

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(f"/rest/{path}", json={"auth": self.auth, **body})


def sandbox(style: str, clock: ManualClock, **options: Any) -> RestSandbox:
    options.setdefault("rate_limit", None)
    return RestSandbox(style=style, clock=clock, **options)


def variant(style: str, tmp_path: Path, changes: Mapping[str, str]) -> Path:
    """The style's mapping file with textual replacements (each must apply)."""
    text = MAPPINGS[style].read_text()
    for old, new in changes.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / f"{style}-variant.toml"
    path.write_text(text)
    return path


@contextlib.asynccontextmanager
async def bridge(
    fake: RestSandbox,
    clock: ManualClock,
    *,
    mapping: Path | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    **overrides: Any,
) -> AsyncIterator[Bridge]:
    values = {"connectors": ["rest"], "rest_mapping": mapping or fake.mapping, **overrides}
    settings = Settings(**values)
    sleeps: list[float] = []

    sleep = advancing_sleep(clock, sleeps)

    connector = RestConnector(
        settings,
        transport=transport or httpx.ASGITransport(app=fake.app),
        clock=clock,
        monotonic=clock,
        sleep=sleep,
    )
    async with serve(settings, connectors={"rest": connector}) as client:
        yield Bridge(client, connector, clock, fake.credentials(), sleeps)


async def run_sync(
    b: Bridge,
    view: dict[str, dict[str, Any]],
    checkpoint: str | None = None,
    *,
    between_pages: Callable[[int], None] | None = None,
) -> tuple[str, int, int]:
    """Talkdesk's synchronizer: follow next_offset, upsert by id, come back after a 503 when
    told. Returns (last checkpoint, pages, 503s)."""
    meta: dict[str, Any] = {}
    if checkpoint:
        meta["synchronization_checkpoint"] = checkpoint
    pages = retried = 0
    while True:
        r = await b.post("contact_sync", {"meta": meta})
        if r.status_code == 503:
            wait = int(r.headers.get("retry-after", "1"))
            b.clock.advance(max(1, wait))
            retried += 1
            assert retried < 100, "the bridge keeps failing"
            continue
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        for contact in body["contacts"]:
            assert contact["name"].strip()
            assert isinstance(contact["emails"], list) and isinstance(contact["phones"], list)
            view[contact["id"]] = contact
        if "next_offset" not in body:
            return body["synchronization_checkpoint"], pages, retried
        meta = {**meta, "offset": body["next_offset"]}
        if between_pages is not None:
            between_pages(pages)


def expected(style: str, record: dict[str, Any]) -> dict[str, Any]:
    """What Talkdesk must hold for a live record of the sandbox, as the style's API shows it."""
    phones = [p["number"] for p in record["phones"]]
    if style == "keyset":
        phones = phones[:2]  # that API has a phone and a mobile field only
    normalized: list[str] = []
    for number in phones:
        if (value := normalize_phone(number)) not in normalized:
            normalized.append(value)
    return {
        "name": f"{record['first_name']} {record['last_name']}".strip(),
        "emails": list(dict.fromkeys(record["emails"])),
        "phones": normalized,
        "company": record["company"],
        "title": None if style == "keyset" else record["title"],
    }


def held(contact: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "emails", "phones", "company", "title")
    return {k: contact.get(k, [] if k in ("emails", "phones") else None) for k in keys}


def assert_complete(fake: RestSandbox, view: dict[str, dict[str, Any]]) -> int:
    live = {fake.public_id(rid): record for rid, record in fake.live().items()}
    missing = sorted(set(live) - set(view))
    assert not missing, f"{len(missing)} live contacts never reached Talkdesk: {missing[:5]}"
    stale = [cid for cid, r in live.items() if held(view[cid]) != expected(fake.style, r)]
    assert not stale, f"{len(stale)} contacts hold outdated data, e.g. {stale[:3]}"
    return len(live)


def headers(fake: RestSandbox) -> dict[str, str]:
    """The raw API's credentials for each style (bearer, X-Api-Key, Basic)."""
    if fake.style == "cursor":
        return {"X-Api-Key": fake.token}
    if fake.style == "keyset":
        return {
            "Authorization": "Basic " + base64.b64encode(f"acme:{fake.token}".encode()).decode()
        }
    return {"Authorization": f"Bearer {fake.token}"}


@contextlib.asynccontextmanager
async def raw(fake: RestSandbox) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=fake.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers(fake)) as c:
        yield c


# --- the sandboxes' behaviour -----------------------------------------------------------


async def test_page_numbers_really_shift_when_a_contact_is_updated_mid_walk() -> None:
    clock = ManualClock(T0)
    fake = sandbox("pages", clock)
    fake.seed(contacts=30)
    params = {"updated_since": "1970-01-01T00:00:00Z", "sort": "updated_at", "per_page": 10}
    async with raw(fake) as c:
        first = (await c.get("/contacts", params={**params, "page": 1})).json()["data"]
        fake.update_contact(str(first[3]["id"]))  # moves to the end: the rest shift back one
        second = (await c.get("/contacts", params={**params, "page": 2})).json()["data"]
        before = (await c.get("/contacts", params={**params, "page": 1})).json()["data"]
    # The contact that was 11th is now 10th: page 2 never shows it.
    assert before[-1]["id"] not in {p["id"] for p in first + second}
    stamps = [p["updated_at"] for p in first]
    assert stamps == sorted(stamps)


async def test_each_style_speaks_its_own_shape_and_credentials() -> None:
    clock = ManualClock(T0)
    for style in STYLES:
        fake = sandbox(style, clock)
        fake.seed(contacts=12)
        async with raw(fake) as c:
            path = {"pages": "/contacts", "cursor": "/customers", "keyset": "/people"}[style]
            r = await c.get(path, params={"limit": 5, "per_page": 5})
            assert r.status_code == 200, r.text
            body = r.json()
            if style == "pages":
                assert len(body["data"]) == 5 and body["meta"]["total"] == 12
            elif style == "cursor":
                assert len(body["results"]) == 5 and body["next_cursor"]
                nxt = await c.get(path, params={"limit": 5, "cursor": body["next_cursor"]})
                assert nxt.json()["results"][0]["customer_id"] != body["results"][-1]["customer_id"]
                bad = await c.get(path, params={"cursor": "not-a-cursor"})
                assert bad.status_code == 400
            else:
                assert isinstance(body, list) and len(body) == 5
                assert 'rel="next"' in r.headers["link"] and "after_id=" in r.headers["link"]
            wrong = await c.get(path, headers={"Authorization": "Bearer nope", "X-Api-Key": "no"})
            assert wrong.status_code == 401


async def test_lists_see_writes_late_and_rate_limits_answer_429() -> None:
    clock = ManualClock(T0)
    fake = sandbox("cursor", clock, lag=30, rate_limit=(3, 10.0))
    fake.seed(contacts=3)
    rid = fake.create_contact()
    async with raw(fake) as c:
        listed = (await c.get("/customers", params={"limit": 50})).json()["results"]
        assert fake.public_id(rid) not in {x["customer_id"] for x in listed}
        direct = await c.get(f"/contacts/{fake.public_id(rid)}")
        assert direct.status_code == 200
        assert (await c.get("/customers")).status_code == 200  # the window's third call
        limited = await c.get("/customers")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        clock.advance(31)
        listed = (await c.get("/customers", params={"limit": 50})).json()["results"]
        assert fake.public_id(rid) in {x["customer_id"] for x in listed}
