"""The embedded demo database: a small, realistic CRM that `demo_mapping.toml` describes.

Contacts have several emails and phones in mixed national and international formats (with an
E.164 search column, as CRMs keep), `updated_at` spread over months with many ties on one second,
tickets and calls as interactions, and agents.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["METADATA", "create_schema", "demo_is_seeded", "drop_schema", "seed_demo"]

METADATA = sa.MetaData()

companies = sa.Table(
    "companies",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("website", sa.String(300)),
)
contacts = sa.Table(
    "contacts",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("full_name", sa.String(200), nullable=False),
    sa.Column("job_title", sa.String(200)),
    sa.Column("company_id", sa.Integer, sa.ForeignKey("companies.id")),
    sa.Column("photo_url", sa.String(500)),
    sa.Column("address", sa.String(500)),
    sa.Column("website", sa.String(300)),
    sa.Column("twitter_handle", sa.String(100)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Index("ix_contacts_updated_at_id", "updated_at", "id"),
)
contact_emails = sa.Table(
    "contact_emails",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id"), nullable=False),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("position", sa.Integer, nullable=False, default=0),
    sa.Index("ix_contact_emails_contact_id", "contact_id"),
    sa.Index("ix_contact_emails_email", "email"),
)
contact_phones = sa.Table(
    "contact_phones",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id"), nullable=False),
    sa.Column("number", sa.String(40), nullable=False),
    sa.Column("number_e164", sa.String(20)),
    sa.Column("label", sa.String(20), nullable=False, default="work"),
    sa.Index("ix_contact_phones_contact_id", "contact_id"),
    sa.Index("ix_contact_phones_e164", "number_e164"),
)
agents = sa.Table(
    "agents",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
)
tickets = sa.Table(
    "tickets",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id"), nullable=False),
    sa.Column("agent_id", sa.Integer, sa.ForeignKey("agents.id")),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("priority", sa.String(20), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Index("ix_tickets_contact_created", "contact_id", "created_at"),
)
calls = sa.Table(
    "calls",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id"), nullable=False),
    sa.Column("agent_id", sa.Integer, sa.ForeignKey("agents.id")),
    sa.Column("direction", sa.String(10), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("summary", sa.String(300), nullable=False),
    sa.Column("notes", sa.Text),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Index("ix_calls_contact_started", "contact_id", "started_at"),
)

_FIRST = [
    "Ana",
    "Bruno",
    "Carla",
    "Diogo",
    "Elena",
    "Farid",
    "Grace",
    "Hugo",
    "Inês",
    "João",
    "Keiko",
    "Liam",
    "Maria",
    "Nuno",
    "Olga",
    "Pedro",
    "Quinn",
    "Rita",
    "Sofia",
    "Tiago",
    "Uma",
    "Vasco",
    "Wen",
    "Xavier",
    "Yara",
    "Zé",
    "Amélie",
    "Björn",
    "Chloé",
    "Dmitri",
]
_LAST = [
    "Silva",
    "Santos",
    "Ferreira",
    "Pereira",
    "Costa",
    "Oliveira",
    "Martins",
    "Rodrigues",
    "Sousa",
    "Fernandes",
    "Smith",
    "Johnson",
    "Müller",
    "Rossi",
    "Dubois",
    "García",
    "Novak",
    "Kowalski",
    "Tanaka",
    "O'Brien",
    "Nguyen",
    "Haddad",
]
_TITLES = ("CTO", "Head of Support", "Office Manager", "Buyer", "CEO", "Engineer", None, None)
_COMPANIES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Vandelay")
_CITIES = (
    ("Lisboa", "Portugal"),
    ("Porto", "Portugal"),
    ("London", "United Kingdom"),
    ("Boston", "United States"),
    ("Berlin", "Germany"),
    ("São Paulo", "Brazil"),
)
_SUBJECTS = (
    "Cannot log in",
    "Invoice question",
    "Feature request: export",
    "Delivery delayed",
    "Refund request",
    "Password reset",
    "Upgrade plan",
)


def _phone(rng: random.Random) -> tuple[str, str]:
    """(number as a person typed it, its E.164 form), across a few countries and styles."""
    kind = rng.randrange(6)
    if kind <= 2:  # US, three national styles and one international
        area, mid, last = rng.randint(201, 989), rng.randint(200, 999), rng.randint(0, 9999)
        e164 = f"+1{area}{mid}{last:04d}"
        raw = (
            f"({area}) {mid}-{last:04d}",
            f"{area}-{mid}-{last:04d}",
            f"+1 {area} {mid} {last:04d}",
        )[kind]
    elif kind == 3:  # Portugal, mobile, international with spaces
        n = rng.randint(910_000_000, 939_999_999)
        e164, raw = f"+351{n}", f"+351 {str(n)[:3]} {str(n)[3:6]} {str(n)[6:]}"
    elif kind == 4:  # UK London, international with a (0)
        n = rng.randint(70_000_000, 89_999_999)
        e164, raw = f"+4420{n}", f"+44 (0)20 {str(n)[:4]} {str(n)[4:]}"
    else:  # Germany, international 00 prefix
        n = rng.randint(1_000_000, 9_999_999)
        e164, raw = f"+4930{n}", f"0049 30 {n}"
    return raw, e164


def _rows(n: int, seed: int, now: datetime) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    # A pool smaller than n forces many contacts to share one updated_at second.
    pool = [now - timedelta(seconds=rng.randint(0, 180 * 86400)) for _ in range(max(1, n // 7))]
    for i in range(1, n + 1):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        city, country = rng.choice(_CITIES)
        updated = rng.choice(pool)
        yield {
            "id": i,
            "full_name": f"{first} {last}",
            "job_title": rng.choice(_TITLES),
            "company_id": rng.randint(1, len(_COMPANIES)) if rng.random() < 0.8 else None,
            "photo_url": f"https://avatars.example.com/{i}.png" if rng.random() < 0.3 else None,
            "address": f"{rng.randint(1, 200)} Main Street, {city}, {country}",
            "website": f"https://{last.lower()}-{i}.example.com" if rng.random() < 0.2 else None,
            "twitter_handle": f"{first.lower()}{i}" if rng.random() < 0.25 else None,
            "created_at": updated - timedelta(days=rng.randint(0, 400)),
            "updated_at": updated,
        }


async def create_schema(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            # Persistent: lets the bridge page while other connections write.
            await conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        await conn.run_sync(METADATA.create_all)


async def drop_schema(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(METADATA.drop_all)


async def demo_is_seeded(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        has_table = await conn.run_sync(lambda c: sa.inspect(c).has_table("contacts"))
        if not has_table:
            return False
        count = (await conn.execute(sa.select(sa.func.count()).select_from(contacts))).scalar()
        return bool(count)


async def seed_demo(
    engine: AsyncEngine, *, contacts_count: int = 1000, seed: int = 7, batch: int = 5000
) -> None:
    """Create the schema and fill it. Deterministic for a given seed."""
    await create_schema(engine)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    rng = random.Random(seed + 1)
    async with engine.begin() as conn:
        await conn.execute(
            companies.insert(),
            [
                {"id": i, "name": f"{name} Inc.", "website": f"https://{name.lower()}.example"}
                for i, name in enumerate(_COMPANIES, start=1)
            ],
        )
        await conn.execute(
            agents.insert(),
            [
                {"id": i, "name": f"Agent {name}", "email": f"{name.lower()}@support.example"}
                for i, name in enumerate(("Alice", "Bob", "Carol", "Dan", "Eve"), start=1)
            ],
        )
    buffer: dict[str, list[dict[str, Any]]] = {
        "contacts": [],
        "emails": [],
        "phones": [],
        "tickets": [],
        "calls": [],
    }

    async def flush() -> None:
        async with engine.begin() as conn:
            for table, key in (
                (contacts, "contacts"),
                (contact_emails, "emails"),
                (contact_phones, "phones"),
                (tickets, "tickets"),
                (calls, "calls"),
            ):
                if buffer[key]:
                    await conn.execute(table.insert(), buffer[key])
                    buffer[key].clear()

    for row in _rows(contacts_count, seed, now):
        cid = row["id"]
        buffer["contacts"].append(row)
        local = row["full_name"].lower().replace(" ", ".").replace("'", "")
        for pos in range(rng.choice((0, 1, 1, 1, 2, 3))):
            domain = ("example.com", "mail.example", "corp.example")[pos]
            buffer["emails"].append(
                {"contact_id": cid, "email": f"{local}{cid}@{domain}", "position": pos}
            )
        for label in ("work", "mobile", "home")[: rng.choice((1, 1, 2, 2, 3))]:
            raw, e164 = _phone(rng)
            buffer["phones"].append(
                {"contact_id": cid, "number": raw, "number_e164": e164, "label": label}
            )
        for _ in range(rng.choice((0, 0, 1, 2, 4))):
            created = row["updated_at"] - timedelta(hours=rng.randint(1, 2000))
            buffer["tickets"].append(
                {
                    "contact_id": cid,
                    "agent_id": rng.randint(1, 5),
                    "subject": rng.choice(_SUBJECTS),
                    "description": "Customer wrote in about their account.",
                    "status": rng.choice(("new", "open", "pending", "solved", "closed")),
                    "priority": rng.choice(("low", "normal", "normal", "high", "urgent")),
                    "created_at": created,
                    "updated_at": created + timedelta(hours=rng.randint(0, 48)),
                }
            )
        for _ in range(rng.choice((0, 1, 1, 3))):
            outcome = rng.choice(("answered", "answered", "missed", "voicemail"))
            direction = rng.choice(("inbound", "outbound"))
            buffer["calls"].append(
                {
                    "contact_id": cid,
                    "agent_id": rng.randint(1, 5),
                    "direction": direction,
                    "outcome": outcome,
                    "summary": f"{direction.capitalize()} call, {outcome}",
                    "notes": "Talked about the latest order." if outcome == "answered" else None,
                    "started_at": row["updated_at"] - timedelta(minutes=rng.randint(1, 90_000)),
                }
            )
        if len(buffer["contacts"]) >= batch:
            await flush()
    await flush()
    if engine.dialect.name == "postgresql":
        # Rows were inserted with explicit ids: move the sequences past them.
        async with engine.begin() as conn:
            for table in ("companies", "contacts", "agents"):
                await conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT MAX(id) FROM {table}))"
                    )
                )
