"""Synced contacts kept as Talkdesk keeps them (upsert by id), and caller identification.

A plain SQLite file: the checker is a command-line tool, so the standard library's blocking
driver is fine; the runner calls it through `asyncio.to_thread` to keep its event loop free.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import orjson

from .._phones import normalize_phone

__all__ = ["ContactStore", "StoreError", "lookup"]

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    synced_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS contact_phones (
    contact_id TEXT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    raw TEXT NOT NULL,
    e164 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS contact_phones_e164 ON contact_phones (e164);
CREATE INDEX IF NOT EXISTS contact_phones_contact ON contact_phones (contact_id);
CREATE TABLE IF NOT EXISTS sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class StoreError(Exception):
    """The file cannot be used as a contact store; the message says why."""


class ContactStore:
    """One connection, used from one thread at a time (the runner awaits every call)."""

    def __init__(self, connection: sqlite3.Connection, region: str = "US") -> None:
        self._db = connection
        self._region = region

    @classmethod
    def open(cls, path: Path, region: str = "US") -> ContactStore:
        try:
            db = sqlite3.connect(path, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {path}: {exc}") from None
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _SCHEMA_VERSION):
                raise StoreError(f"{path} is not a contact store (schema version {version})")
            with db:
                db.executescript(_SCHEMA)
                db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            db.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            db.close()
            raise StoreError(f"cannot use {path} as a contact store: {exc}") from None
        except StoreError:
            db.close()
            raise
        return cls(db, region)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def upsert(self, contacts: Iterable[Mapping[str, Any]]) -> int:
        """Insert or replace each contact (by id) with its phones; the number written."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        rows = [c for c in contacts if isinstance(c.get("id"), str) and c["id"]]
        with self._db:
            for contact in rows:
                cid = contact["id"]
                name = contact.get("name")
                self._db.execute(
                    "INSERT INTO contacts (id, name, data, synced_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, data = excluded.data, "
                    "synced_at = excluded.synced_at",
                    (cid, name if isinstance(name, str) else "", orjson.dumps(contact), now),
                )
                self._db.execute("DELETE FROM contact_phones WHERE contact_id = ?", (cid,))
                phones = contact.get("phones")
                numbers = (
                    [p for p in phones if isinstance(p, str)] if isinstance(phones, list) else []
                )
                self._db.executemany(
                    "INSERT INTO contact_phones (contact_id, raw, e164) VALUES (?, ?, ?)",
                    [(cid, raw, normalize_phone(raw, self._region)) for raw in numbers],
                )
        return len(rows)

    def set_state(self, key: str, value: str) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO sync_state (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM contacts").fetchone()[0])

    def lookup(self, phone: str, region: str = "US") -> list[dict[str, Any]]:
        """Contacts with a phone equal to the caller's number once both are in E.164."""
        caller = normalize_phone(phone, region)
        if not caller.startswith("+"):
            return []
        # Numbers that were not E.164 when stored are re-read in the caller's region: a
        # national number means something only there.
        rows = self._db.execute(
            "SELECT p.contact_id, p.raw, p.e164 FROM contact_phones p "
            "WHERE p.e164 = ? OR p.raw NOT LIKE '+%'",
            (caller,),
        ).fetchall()
        ids = list(
            dict.fromkeys(
                cid for cid, raw, e164 in rows if caller in (e164, normalize_phone(raw, region))
            )
        )
        found: list[dict[str, Any]] = []
        for cid in ids:
            row = self._db.execute("SELECT data FROM contacts WHERE id = ?", (cid,)).fetchone()
            if row is not None:
                found.append(orjson.loads(row[0]))
        return found


def lookup(path: Path, phone: str, region: str = "US") -> list[dict[str, Any]]:
    """Caller identification against an existing store file (never creates one)."""
    if not path.is_file():
        raise StoreError(f"{path} does not exist")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc}") from None
    try:
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} is not a contact store: {exc}") from None
        if version != _SCHEMA_VERSION:
            raise StoreError(f"{path} is not a contact store written by `check --store`")
        return ContactStore(db).lookup(phone, region)
    finally:
        db.close()
