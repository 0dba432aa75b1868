"""Contacts, then unconverted Leads, as one `WindowSource` walk keyed `(object, stamp, id)`.

Both objects are read in one run over the same window of `SystemModstamp` (whole seconds, ties
broken by `Id`, keyset `WHERE SystemModstamp > T OR (SystemModstamp = T AND Id > X)`). The key's
first part orders the two objects one after the other, so the engine's offsets stay valid
across the switch and nothing is skipped: a Contact's last key is always below any Lead's.
The window's upper bound is the server's clock (HTTP `Date`), never the bridge's; the engine
moves each run's lower bound back by the lag window, which covers rows that commit late with
an older stamp. No query locator and no `OFFSET` ever leaves the bridge.

Account names change without touching a Contact's stamp: a run whose window crosses a
multiple of the company refresh period reads every row up to its upper bound instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import JsonValue

from ..._errors import UpstreamFailed
from ..._models import Contact
from ..._upstream import Deadline
from ...sync import Batch, Record, Window
from .client import SalesforceClient, Session, checked_id, records
from .mapping import CONTACT_FIELDS, LEAD_FIELDS, to_contact
from .soql import datetime_literal, parse_datetime, select, string_literal

__all__ = ["CONTACTS", "LEADS", "PeopleSource", "check_key", "keyset_query"]

log = logging.getLogger("talkdesk_bridge.salesforce")

CONTACTS, LEADS = 0, 1
_OBJECTS = {
    CONTACTS: ("Contact", CONTACT_FIELDS, ""),
    LEADS: ("Lead", LEAD_FIELDS, "IsConverted = false"),
}


def check_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """A key read back from an offset: (object, stamp, 18-char id), else ValueError."""
    if len(key) != 3:
        raise ValueError("bad key")
    phase, stamp, rid = key
    if phase not in (CONTACTS, LEADS) or isinstance(phase, bool):
        raise ValueError("bad key")
    if not isinstance(stamp, int) or isinstance(stamp, bool) or not 0 <= stamp < 10**11:
        raise ValueError("bad key")
    if checked_id(rid, "lead" if phase == LEADS else "contact") is None:
        raise ValueError("bad key")
    return (phase, stamp, rid)


def keyset_query(
    phase: int, lower: int | None, upper: int, after: tuple[int, str] | None, limit: int
) -> str:
    """The SOQL of one keyset page of Contacts or unconverted Leads."""
    sobject, fields, extra = _OBJECTS[phase]
    conditions = [f"SystemModstamp <= {datetime_literal(upper)}"]
    if lower is not None:
        conditions.append(f"SystemModstamp >= {datetime_literal(lower)}")
    if after is not None:
        stamp, rid = datetime_literal(after[0]), string_literal(after[1])
        conditions.append(
            f"(SystemModstamp > {stamp} OR (SystemModstamp = {stamp} AND Id > {rid}))"
        )
    if extra:
        conditions.append(extra)
    return select(fields, sobject, conditions, order="SystemModstamp, Id", limit=limit)


class PeopleSource:
    def __init__(
        self,
        client: SalesforceClient,
        *,
        region: str,
        refresh_seconds: float,
        url: Callable[[Session, str, str], str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.region = region
        self.refresh = refresh_seconds
        self.url = url
        self.clock = clock

    async def watermark(self, session: Session, deadline: Deadline) -> int:
        now = await self.client.server_clock(session, deadline=deadline)
        if now is None:
            # Every origin server with a clock sends Date (RFC 9110); this one did not.
            log.warning("Salesforce answered without a Date header: using the bridge's clock")
            now = int(self.clock())
        return now

    def _refreshing(self, window: Window) -> bool:
        """Whether this run re-reads everything (company names are due for a refresh)."""
        if window.lower is None or self.refresh <= 0:
            return False
        return bool(window.lower // self.refresh != window.upper // self.refresh)

    async def fetch(
        self,
        session: Session,
        window: Window,
        after: tuple[Any, ...] | None,
        resume: JsonValue,
        limit: int,
        deadline: Deadline,
    ) -> Batch:
        lower = None if self._refreshing(window) else window.lower
        phase = CONTACTS if after is None else after[0]
        position = None if after is None else (after[1], after[2])
        found: list[Record[Contact]] = []
        while True:
            want = limit - len(found)
            soql = keyset_query(phase, lower, window.upper, position, want)
            body = await self.client.query(
                session, soql, deadline=deadline, batch_size=max(200, want)
            )
            rows = records(body)
            found.extend(self._record(session, phase, row) for row in rows)
            exhausted = body.get("done") is not False and len(rows) < want
            if not exhausted:
                return Batch(found, done=False)
            if phase == LEADS:
                return Batch(found, done=True)
            # Contacts are done: Leads follow in the same read, from their beginning.
            phase, position = LEADS, None

    def _record(self, session: Session, phase: int, row: dict[str, Any]) -> Record[Contact]:
        rid = checked_id(row.get("Id"), "lead" if phase == LEADS else "contact")
        stamp = parse_datetime(row.get("SystemModstamp"))
        if rid is None or stamp is None:
            raise UpstreamFailed("Salesforce answered a row without a usable Id or SystemModstamp")
        contact = to_contact(
            row, region=self.region, url=lambda kind, i: self.url(session, kind, i)
        )
        return Record((phase, stamp, rid), rid, contact)
