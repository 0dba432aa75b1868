"""The SQL connector on SQLite, PostgreSQL and MariaDB, through the HTTP service."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from talkdesk_bridge.connectors.sql.client import async_url
from tests._support import TOKEN, auth, seed, serve, sql_settings

E164 = r"^\+[1-9]\d{6,14}$"


async def full_sync(
    client: httpx.AsyncClient, checkpoint: str | None = None, **auth_fields: str
) -> tuple[list[dict[str, Any]], str, int]:
    """Follow next_offset like Talkdesk does: (contacts, final checkpoint, pages)."""
    contacts: list[dict[str, Any]] = []
    meta: dict[str, Any] = {}
    if checkpoint:
        meta["synchronization_checkpoint"] = checkpoint
    pages = 0
    while True:
        r = await client.post("/sql/contact_sync", json={"auth": auth(), "meta": meta})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        body = r.json()
        pages += 1
        assert isinstance(body["synchronization_checkpoint"], str)
        contacts.extend(body["contacts"])
        if "next_offset" not in body:
            return contacts, body["synchronization_checkpoint"], pages
        meta = {**meta, "offset": body["next_offset"]}
        if "context" in body:
            meta["context"] = body["context"]


async def test_full_sync_returns_every_contact_once_in_order(db_url: str) -> None:
    await seed(db_url, contacts=130)
    async with serve(sql_settings(db_url, sql_page_size=25)) as client:
        contacts, checkpoint, pages = await full_sync(client)
    ids = [c["id"] for c in contacts]
    assert len(ids) == 130 and len(set(ids)) == 130
    assert pages == 6
    assert sorted(ids, key=int) == [str(i) for i in range(1, 131)]
    for contact in contacts:
        assert isinstance(contact["id"], str) and contact["name"].strip()
        for phone in contact.get("phones", []):
            assert phone.startswith("+"), phone
    assert checkpoint


async def test_mapping_fields_and_phone_normalization(sqlite_url: str) -> None:
    await seed(sqlite_url, contacts=60)
    engine = create_async_engine(async_url(sqlite_url))
    async with engine.connect() as conn:
        raw = (await conn.execute(sa.text("SELECT number, number_e164 FROM contact_phones"))).all()
    await engine.dispose()
    assert any(not number.startswith("+") for number, _ in raw)  # mixed formats stored
    expected = {e164 for _, e164 in raw}
    async with serve(sql_settings(sqlite_url)) as client:
        contacts, _, _ = await full_sync(client)
    synced = {p for c in contacts for p in c.get("phones", [])}
    assert synced == expected
    with_company = [c for c in contacts if "company" in c]
    assert with_company and all(c["company"].endswith("Inc.") for c in with_company)
    assert all(c["url"] == f"https://crm.example.com/contacts/{c['id']}" for c in contacts)
    assert any(len(c.get("emails", [])) > 1 for c in contacts)


async def test_incremental_sync_returns_changes_since_checkpoint(db_url: str) -> None:
    await seed(db_url, contacts=40)
    async with serve(sql_settings(db_url, sql_page_size=10, sql_lag_seconds=0)) as client:
        _, checkpoint, _ = await full_sync(client)
        # Nothing changed: an incremental run re-reads at most the rows at the watermark.
        unchanged, checkpoint2, _ = await full_sync(client, checkpoint)
        assert len(unchanged) < 40
        engine = create_async_engine(async_url(db_url))
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "UPDATE contacts SET full_name = 'Renamed Person', updated_at = :now "
                    "WHERE id IN (3, 17)"
                ),
                {"now": "2999-01-01 00:00:00.000000" if "sqlite" in db_url else _future()},
            )
        await engine.dispose()
        changed, _, _ = await full_sync(client, checkpoint2)
    renamed = {c["id"]: c["name"] for c in changed}
    assert renamed.get("3") == "Renamed Person" and renamed.get("17") == "Renamed Person"


def _future() -> Any:
    from datetime import datetime

    return datetime(2999, 1, 1)


async def test_bad_offsets_and_checkpoints_are_422(demo_client: httpx.AsyncClient) -> None:
    for meta in (
        {"offset": "not-base64!!"},
        {"offset": "eyJ2IjoxfQ"},  # {"v":1}: ours in shape, missing the key
        {"synchronization_checkpoint": "Zm9v"},
        {"offset": "x" * 5000},
    ):
        r = await demo_client.post("/sql/contact_sync", json={"auth": auth(), "meta": meta})
        assert r.status_code == 422, (meta, r.text)
        assert "meta." in r.json()["error"]["message"]


async def test_auth_validation(demo_client: httpx.AsyncClient) -> None:
    ok = await demo_client.post("/sql/auth_validation", json={"auth": auth()})
    assert ok.status_code == 200 and ok.json() == {}
    for body in (
        {"auth": auth("wrong")},
        {"auth": {}},
        {},
        {"auth": {"api_token": 12345}},
        {"auth": {"api_token": TOKEN + "x"}},
    ):
        r = await demo_client.post("/sql/auth_validation", json=body)
        assert r.status_code == 401, body
        assert r.json()["error"]["code"] == "unauthorized"
        assert TOKEN not in r.text


@pytest.mark.parametrize(
    "path",
    ["contact_sync", "interaction_update", "agent_sync", "actions/create_ticket"],
)
async def test_every_endpoint_rejects_bad_credentials(
    demo_client: httpx.AsyncClient, path: str
) -> None:
    r = await demo_client.post(f"/sql/{path}", json={"auth": auth("nope"), "meta": {}})
    assert r.status_code == 401


async def _contact_with_interactions(url: str) -> tuple[int, list[str], str]:
    engine = create_async_engine(async_url(url))
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text(
                    "SELECT t.contact_id, COUNT(*) FROM tickets t JOIN calls c "
                    "ON c.contact_id = t.contact_id GROUP BY t.contact_id "
                    "ORDER BY COUNT(*) DESC, t.contact_id LIMIT 1"
                )
            )
        ).first()
        assert row is not None
        cid = row[0]
        emails = [
            r[0]
            for r in await conn.execute(
                sa.text("SELECT email FROM contact_emails WHERE contact_id = :c"), {"c": cid}
            )
        ]
        phone = (
            await conn.execute(
                sa.text("SELECT number FROM contact_phones WHERE contact_id = :c"), {"c": cid}
            )
        ).scalar()
    await engine.dispose()
    return cid, emails, phone


async def test_interactions_by_id_email_and_phone(db_url: str) -> None:
    await seed(db_url, contacts=80)
    cid, emails, phone = await _contact_with_interactions(db_url)
    async with serve(sql_settings(db_url)) as client:

        async def fetch(data: dict[str, Any], types: list[str] | None = None) -> list[Any]:
            meta = {"interaction_types": types} if types is not None else {}
            r = await client.post(
                "/sql/interaction_update", json={"auth": auth(), "meta": meta, "data": data}
            )
            assert r.status_code == 200, r.text
            body = r.json()
            assert isinstance(body, list)
            return body

        by_id = await fetch({"contact_external_id": str(cid)}, ["ticket", "call"])
        assert by_id
        assert {i["type"] for i in by_id} == {"ticket", "call"}
        dates = [i["date"] for i in by_id]
        assert dates == sorted(dates, reverse=True)
        for item in by_id:
            assert item["date"].endswith(" UTC") and len(item["date"]) == 23
            assert item["subject"] and isinstance(item["id"], str)
            assert item.get("status") in {None, "new", "open", "pending", "solved", "closed"}
        only_tickets = await fetch({"contact_external_id": str(cid)}, ["ticket"])
        assert only_tickets and {i["type"] for i in only_tickets} == {"ticket"}
        assert await fetch({"contact_external_id": str(cid)}, ["meeting"]) == []
        if emails:
            by_email = await fetch({"contact_emails": [emails[0].upper()]}, ["ticket", "call"])
            assert by_email == by_id
        by_phone = await fetch({"contact_phones": [phone]}, ["ticket", "call"])
        assert {i["id"] for i in by_phone} >= {i["id"] for i in by_id}
        assert await fetch({"contact_external_id": "999999"}, ["ticket"]) == []
        assert await fetch({"contact_external_id": "not-a-number"}, ["ticket"]) == []
        assert await fetch({"contact_phones": ["+1 000"]}, ["ticket"]) == []
        assert await fetch({}, ["ticket"]) == []


async def test_interaction_limit(sqlite_url: str) -> None:
    await seed(sqlite_url, contacts=20)
    engine = create_async_engine(async_url(sqlite_url))
    async with engine.begin() as conn:
        for i in range(30):
            await conn.execute(
                sa.text(
                    "INSERT INTO tickets (contact_id, subject, status, priority, created_at, "
                    "updated_at) VALUES (1, :s, 'open', 'high', :d, :d)"
                ),
                {"s": f"Ticket {i}", "d": f"2030-01-01 00:00:{i:02d}.000000"},
            )
    await engine.dispose()
    async with serve(sql_settings(sqlite_url, sql_interactions_limit=7)) as client:
        r = await client.post(
            "/sql/interaction_update",
            json={
                "auth": auth(),
                "meta": {"interaction_types": ["ticket"]},
                "data": {"contact_external_id": "1"},
            },
        )
    body = r.json()
    assert [i["subject"] for i in body] == [f"Ticket {i}" for i in range(29, 22, -1)]
    assert body[0]["priority"] == "high" and body[0]["date"] == "2030-01-01 00:00:29 UTC"


async def test_actions(db_url: str) -> None:
    await seed(db_url, contacts=10)
    async with serve(sql_settings(db_url)) as client:
        r = await client.post(
            "/sql/actions/create_ticket",
            json={
                "auth": auth(),
                "meta": {"contact_external_id": "4", "agent_external_id": "2"},
                "data": {"subject": "Missed call", "description": "Call back"},
            },
        )
        assert r.status_code == 201, r.text
        ticket_id = r.json()["external_id"]
        items = (
            await client.post(
                "/sql/interaction_update",
                json={
                    "auth": auth(),
                    "meta": {"interaction_types": ["ticket"]},
                    "data": {"contact_external_id": "4"},
                },
            )
        ).json()
        assert f"ticket-{ticket_id}" in {i["id"] for i in items}  # the mapping's id_prefix

        r = await client.post(
            "/sql/actions/create_contact",
            json={
                "auth": auth(),
                "meta": {},
                "data": {
                    "name": "Zoe Quinn",
                    "email": "zoe@example.com",
                    "phone": "(617) 555-0142",
                },
            },
        )
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["contact_external_type"] == "contact"
        assert created["contact_external_url"].endswith("/" + created["contact_external_id"])
        found = await client.post(
            "/sql/interaction_update",
            json={"auth": auth(), "data": {"contact_phones": ["+16175550142"]}},
        )
        assert found.status_code == 200
        contacts, _, _ = await full_sync(client)
        new = next(c for c in contacts if c["id"] == created["contact_external_id"])
        assert new["name"] == "Zoe Quinn" and new["phones"] == ["+16175550142"]
        assert new["emails"] == ["zoe@example.com"]

        failures = [
            ("create_ticket", {"contact_external_id": "4"}, {}, "subject"),
            ("create_ticket", {}, {"subject": "x"}, "contact_external_id"),
            ("create_ticket", {"contact_external_id": "424242"}, {"subject": "x"}, "not found"),
            ("create_ticket", {"contact_external_id": "4"}, {"subject": ["x"]}, "subject"),
            ("create_ticket", {"contact_external_id": "4"}, {"subject": "x" * 301}, "subject"),
            ("create_contact", {}, {"name": "  "}, "name"),
            ("create_contact", {}, {"name": "A", "email": "no-at-sign"}, "email"),
        ]
        for action, meta, data, named in failures:
            r = await client.post(
                f"/sql/actions/{action}", json={"auth": auth(), "meta": meta, "data": data}
            )
            assert r.status_code == 400, (action, data, r.text)
            assert named in r.json()["message"]
        r = await client.post("/sql/actions/delete_everything", json={"auth": auth()})
        assert r.status_code == 404


async def test_agents_paging(sqlite_url: str) -> None:
    await seed(sqlite_url, contacts=5)
    async with serve(sql_settings(sqlite_url, sql_agents_page_size=2)) as client:
        seen: list[dict[str, Any]] = []
        offset: int | None = None
        for _ in range(10):
            r = await client.post(
                "/sql/agent_sync", json={"auth": auth(), "meta": {"offset": offset}}
            )
            assert r.status_code == 200
            body = r.json()
            seen.extend(body["agents"])
            offset = body.get("next_offset")
            if offset is None:
                break
            assert isinstance(offset, int)
        # Old-docs variant: no meta at all.
        first = (await client.post("/sql/agent_sync", json={"auth": auth()})).json()
    assert [a["id"] for a in seen] == ["1", "2", "3", "4", "5"]
    assert all(isinstance(a["email"], str) and "@" in a["email"] for a in seen)
    assert first["agents"] == seen[:2]


async def test_readyz_reports_database(sqlite_url: str) -> None:
    await seed(sqlite_url, contacts=1)
    async with serve(sql_settings(sqlite_url)) as client:
        r = await client.get("/readyz")
        assert r.status_code == 200 and r.json()["connectors"] == {"sql": "ok"}
    bad = sql_settings("postgresql+asyncpg://postgres@127.0.0.1:1/nothing")
    async with serve(bad) as client:
        r = await client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["connectors"]["sql"].startswith("unavailable")
        r = await client.post("/sql/contact_sync", json={"auth": auth()})
        assert r.status_code == 503 and r.headers["retry-after"]
