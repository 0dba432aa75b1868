"""What every connector's answers hold, whatever the source: contacts always carry `emails`
and `phones` lists; interaction ids are unique within one answer.

SQL tables each count from 1, so the mapping prefixes ids per type (`id_prefix`, default
"<type>-"); Intercom numbers conversations and tickets apart, so tickets are prefixed.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from talkdesk_bridge._models import Contact
from talkdesk_bridge.connectors import REGISTRY
from talkdesk_bridge.connectors.intercom.mapping import TICKET_ID_PREFIX
from talkdesk_sandbox.intercom import FakeIntercom
from tests._support import auth, connector_client, serve, sql_settings
from tests.test_intercom_support import TOKEN, bridge
from tests.test_intercom_support import auth as intercom_auth


def test_a_contact_without_details_still_has_both_lists() -> None:
    assert Contact(id="1", name="Ana").model_dump(exclude_none=True) == {
        "id": "1",
        "name": "Ana",
        "emails": [],
        "phones": [],
    }


@pytest.mark.parametrize("name", list(REGISTRY))
async def test_every_synced_contact_has_emails_and_phones_lists(name: str) -> None:
    async with connector_client(name) as connector:
        r = await connector.client.post(
            f"/{name}/contact_sync", json={"auth": connector.auth, "meta": {}}
        )
    assert r.status_code == 200, r.text
    contacts = r.json()["contacts"]
    assert contacts
    for contact in contacts:
        assert isinstance(contact["emails"], list) and isinstance(contact["phones"], list)


async def test_sql_contact_created_with_a_name_only(demo_client: httpx.AsyncClient) -> None:
    created = await demo_client.post(
        "/sql/actions/create_contact", json={"auth": auth(), "data": {"name": "Bare Name"}}
    )
    assert created.status_code == 201, created.text
    cid = created.json()["contact_external_id"]
    meta: dict[str, str] = {}
    while True:
        page = await demo_client.post("/sql/contact_sync", json={"auth": auth(), "meta": meta})
        body = page.json()
        if found := [c for c in body["contacts"] if c["id"] == cid]:
            break
        assert "next_offset" in body, "the new contact was not synced"
        meta = {"offset": body["next_offset"]}
    assert found[0]["emails"] == [] and found[0]["phones"] == []


MAPPING = """
[contacts]
id_type = "integer"
query = "SELECT id, name, updated_at FROM people"

[[interactions]]
type = "ticket"
query = "SELECT id, subject, day AS date FROM tickets WHERE contact_id IN :contact_ids LIMIT :limit"
url_template = "https://crm.example.com/tickets/{id}"

[[interactions]]
type = "call"
id_prefix = "c"
query = "SELECT id, subject, day AS date FROM calls WHERE contact_id IN :contact_ids LIMIT :limit"

[[interactions]]
type = "note"
id_prefix = ""
query = "SELECT id, subject, day AS date FROM notes WHERE contact_id IN :contact_ids LIMIT :limit"
"""


def build_database(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, updated_at TEXT)")
        db.execute("INSERT INTO people VALUES (1, 'Ana', '2024-05-01 10:00:00')")
        for table in ("tickets", "calls", "notes"):
            db.execute(f"CREATE TABLE {table} (id INTEGER, contact_id INTEGER, subject, day)")
            db.execute(f"INSERT INTO {table} VALUES (1, 1, '{table} one', '2024-05-01')")


async def test_sql_ids_carry_their_types_prefix(tmp_path: Path) -> None:
    build_database(tmp_path / "crm.db")
    (tmp_path / "mapping.toml").write_text(MAPPING, encoding="utf-8")
    settings = sql_settings(
        f"sqlite:///{tmp_path / 'crm.db'}", sql_mapping=tmp_path / "mapping.toml"
    )
    async with serve(settings) as client:
        r = await client.post(
            "/sql/interaction_update",
            json={"auth": auth(), "data": {"contact_external_id": "1"}},
        )
    assert r.status_code == 200, r.text
    found = {i["type"]: i for i in r.json()}
    assert {t: i["id"] for t, i in found.items()} == {
        "ticket": "ticket-1",
        "call": "c1",
        "note": "1",
    }
    # Templates still see the row's own id.
    assert found["ticket"]["url"] == "https://crm.example.com/tickets/1"


async def test_sql_demo_answers_hold_no_id_twice(demo_client: httpx.AsyncClient) -> None:
    both = 0
    for contact in range(1, 31):
        r = await demo_client.post(
            "/sql/interaction_update",
            json={"auth": auth(), "data": {"contact_external_id": str(contact)}},
        )
        ids = [i["id"] for i in r.json()]
        assert len(ids) == len(set(ids))
        assert all(i.startswith(("ticket-", "call-")) for i in ids)
        both += {i["type"] for i in r.json()} == {"ticket", "call"}
    assert both  # answers that mix the two tables, where raw ids could repeat


async def test_intercom_conversation_and_ticket_with_one_number() -> None:
    fake = FakeIntercom(token=TOKEN)
    person = fake.add_contact(name="Ana", email="ana@example.com")
    fake.add_conversation(person["id"], id="7", body="A question")
    fake.add_ticket(person["id"], id="7", title="A ticket")
    async with bridge(fake) as b:
        r = await b.post(
            "interaction_update",
            {"auth": intercom_auth(), "data": {"contact_external_id": person["id"]}},
        )
    assert r.status_code == 200, r.text
    found = {i["type"]: i for i in r.json()}
    assert found["conversation"]["id"] == "7"  # Intercom's own id where it is unique
    assert found["ticket"]["id"] == f"{TICKET_ID_PREFIX}7"
    assert found["ticket"]["url"].endswith("/conversation/7")  # links use the real id
