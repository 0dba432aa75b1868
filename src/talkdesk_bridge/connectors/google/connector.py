"""The `google` connector: a Google account's contacts (People API) for caller identification.

Contact sync runs on the engine's `FeedSync` with Google's sync tokens as the checkpoint:
the engine carries them; this module only reads one listing page at a time. Every page of a
run repeats the run's sync token and the first page's parameters (they travel in the offset),
as Google requires; an expired token is the engine's `CursorExpired` (a full resync within
the same Talkdesk run; Google has no "modified since", so there is nothing to re-base on).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from functools import partial
from typing import Any

import httpx
from pydantic import JsonValue

from ..._errors import ActionFailed, UpstreamFailed
from ..._models import (
    ActionInput,
    ActionMeta,
    ActionResult,
    AuthField,
    ContactPage,
    ContactSyncMeta,
)
from ..._phones import normalize_phone
from ..._redis import rate_budget
from ..._settings import Settings
from ..._upstream import Clock, Deadline, RetryPolicy, Sleep, Upstream
from ...sync import CursorExpired, FeedBatch, FeedStart, FeedSync, Record
from .._base import ActionSpec, Auth, ConnectorInfo
from .._values import text_input
from .client import GoogleClient, Session, SyncTokenExpired, opaque_token, rate_headers, refine
from .mapping import PERSON_FIELDS, contact_url, resource_name, to_contact

__all__ = ["GoogleConnector"]

log = logging.getLogger("talkdesk_bridge.google")

# Field masks by version: an offset names its run's mask, so a deploy that changes the mask
# cannot change the parameters of a run under way (Google refuses that).
_MASKS = {"1": PERSON_FIELDS}
_MASK = "1"
_SEARCH_MASK = "names,emailAddresses,phoneNumbers,metadata"
_SEARCH_SIZE = 30
_MAX_TEXT = 1024
_RECENT_SECONDS = 900.0  # creates remembered for retries, longer than search lag
_RECENT_MAX = 10_000

ACTIONS = (
    ActionSpec(
        name="create_contact",
        display="create a contact",
        description="creates a contact in google contacts, unless the caller is already one",
        inputs=(
            ActionInput(key="name", name="Name", mandatory=True),
            ActionInput(key="email", name="Email"),
            ActionInput(key="phone", name="Phone"),
        ),
    ),
)


def _check_cursor(raw: JsonValue) -> JsonValue:
    if raw is None:
        return None
    if opaque_token(raw) is None:
        raise ValueError("not a sync token")
    return raw


def _check_position(raw: JsonValue) -> JsonValue:
    """A run's place: Google's page token plus the parameters its first page used."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) != {"p", "z", "f"}:
        raise ValueError("not a position")
    size = raw["z"]
    if opaque_token(raw["p"]) is None or raw["f"] not in _MASKS:
        raise ValueError("not a position")
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 1000:
        raise ValueError("not a page size")
    return raw


_text = partial(text_input, limit=_MAX_TEXT)


class _ContactFeed:
    """One `people.connections.list` page per read (the engine's `FeedSource`)."""

    def __init__(self, connector: GoogleConnector) -> None:
        self._connector = connector

    async def read(
        self,
        ctx: Session,
        start: FeedStart,
        position: JsonValue,
        limit: int,
        deadline: Deadline,
    ) -> FeedBatch:
        settings = self._connector.settings
        if isinstance(position, dict):
            page_token, size, mask = position["p"], position["z"], position["f"]
        else:
            page_token, size, mask = None, settings.google_list_page_size, _MASK
        assert isinstance(size, int) and isinstance(mask, str)
        params: dict[str, str | int] = {
            "personFields": _MASKS[mask],
            "pageSize": size,
            "requestSyncToken": "true",
        }
        if isinstance(start.cursor, str):
            params["syncToken"] = start.cursor  # on every page of the run, as Google requires
        if isinstance(page_token, str):
            params["pageToken"] = page_token
        try:
            body = await self._connector.client.connections(ctx, params, deadline=deadline)
        except SyncTokenExpired:
            raise CursorExpired from None
        region = settings.default_region
        people = body.get("connections")
        records: list[Record[Any]] = []
        for n, person in enumerate(people if isinstance(people, list) else ()):
            if not isinstance(person, dict):
                continue
            resource = resource_name(person.get("resourceName"))
            if resource is None:
                continue
            # Deleted stubs become None (progress, never a contact); a renamed contact comes
            # under its new resource name (the old one stays with Talkdesk, see the README).
            records.append(Record((n,), resource, to_contact(person, phone_region=region)))
        next_page = body.get("nextPageToken")
        if next_page:
            if opaque_token(next_page) is None:
                raise UpstreamFailed("Google answered a page token this bridge cannot carry")
            return FeedBatch(records, {"p": next_page, "z": size, "f": mask})
        sync_token = body.get("nextSyncToken")
        if sync_token is not None and opaque_token(sync_token) is None:
            raise UpstreamFailed("Google answered a sync token this bridge cannot carry")
        if sync_token is None:
            log.warning("Google ended a listing without a sync token: the next run is a full one")
        return FeedBatch(records, None, checkpoint=sync_token)


class GoogleConnector:
    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        serving: bool = True,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._monotonic = monotonic
        self.info = ConnectorInfo(
            name="google",
            display_name="Google Contacts",
            description="Contacts of a Google account (Google Contacts) for caller identification.",
            authentication_type="oauth2",
            auth_fields=(AuthField(key="access_token", display="Google account", type="oauth"),),
            actions=ACTIONS if settings.google_create_contact else (),
        )
        self.upstream = Upstream(
            "Google",
            timeout=settings.google_timeout_seconds,
            policy=RetryPolicy(attempts=settings.google_retry_attempts),
            budget=rate_budget(settings),
            transport=transport,
            headers={"Accept": "application/json"},
            clock=clock,
            sleep=sleep,
            max_connections=settings.google_max_connections,
            refine=lambda response, error: refine(response, error, clock()),
            rate_headers=rate_headers,
        )
        self.client = GoogleClient(self.upstream, base_url=settings.google_base_url)
        self.sync = FeedSync(
            _ContactFeed(self),
            name="google",
            page_size=settings.google_sync_page_size,
            safety_window=0.0,
            budget_seconds=settings.google_sync_budget_seconds,
            rebase=False,  # no "modified since" in the People API: an expired token resyncs
            read_ahead=settings.google_read_ahead,
            check_cursor=_check_cursor,
            check_position=_check_position,
            clock=clock,
            monotonic=monotonic,
        )
        # Writes for one Google user must be sequential (Google's rule); per process.
        self._write_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._recent: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await self.upstream.start()

    async def close(self) -> None:
        await self.sync.close()
        await self.upstream.close()
        closer = getattr(self.upstream.budget, "close", None)
        if closer is not None:
            await closer()

    async def ready(self) -> None:
        _ = self.upstream.client  # nothing to probe without a user's token

    def _deadline(self, seconds: float | None = None) -> Deadline:
        budget = self.settings.google_request_budget_seconds if seconds is None else seconds
        return Deadline(budget, self._monotonic)

    # --- auth --------------------------------------------------------------------------

    async def validate_auth(self, auth: Auth) -> dict[str, JsonValue]:
        session = self.client.session(auth)
        # Proves the contacts grant; no requestSyncToken: a full-sync first page costs quota.
        await self.client.connections(
            session, {"personFields": "metadata", "pageSize": 1}, deadline=self._deadline()
        )
        return {}

    # --- contacts ----------------------------------------------------------------------

    async def sync_contacts(self, auth: Auth, meta: ContactSyncMeta) -> ContactPage:
        session = self.client.session(auth)
        return await self.sync.page(session, meta, account=session.account)

    # --- actions -----------------------------------------------------------------------

    async def run_action(
        self, action: ActionSpec, auth: Auth, meta: ActionMeta, data: Mapping[str, JsonValue]
    ) -> ActionResult:
        if action.name != "create_contact" or not self.settings.google_create_contact:
            raise ActionFailed(f"unknown action {action.name!r}")
        session = self.client.session(auth)
        name = _text(data, "name", required=True)
        assert name is not None
        email = _text(data, "email")
        phone_raw = _text(data, "phone")
        if email is not None and ("@" not in email or any(c.isspace() for c in email)):
            raise ActionFailed("data.email is not an email address")
        phone = normalize_phone(phone_raw, self.settings.default_region) if phone_raw else None
        keys = [f"e:{email.lower()}"] if email else []
        keys += [f"p:{phone}"] if phone else []
        keys.append(f"n:{name.lower()}|{(email or '').lower()}|{phone or ''}")
        deadline = self._deadline()
        lock = self._write_locks.get(session.account)
        if lock is None:
            lock = self._write_locks[session.account] = asyncio.Lock()
        async with lock:
            found = self._remembered(session, keys) or await self._lookup(
                session, email, phone, deadline
            )
            if found is not None:
                return self._result(found, "Contact already exists")
            person: dict[str, Any] = {"names": [{"unstructuredName": name}]}
            given, _, family = name.partition(" ")
            person["names"] = [{"givenName": given, "familyName": family.strip()}]
            if email:
                person["emailAddresses"] = [{"value": email}]
            if phone:
                person["phoneNumbers"] = [{"value": phone}]
            created = await self.client.create_contact(
                session, person, fields="names,emailAddresses,phoneNumbers,metadata",
                deadline=deadline,
            )  # fmt: skip
            resource = resource_name(created.get("resourceName"))
            if resource is None:
                raise ActionFailed("Google answered without a usable contact resource name")
            self._remember(session, keys, resource)
        return self._result(resource, "Contact successfully created")

    @staticmethod
    def _result(resource: str, message: str) -> ActionResult:
        return ActionResult(
            message=message,
            contact_external_id=resource,
            contact_external_type="contact",
            contact_external_url=contact_url(resource),
        )

    def _remembered(self, session: Session, keys: list[str]) -> str | None:
        now = self._monotonic()
        for key in keys:
            entry = self._recent.get((session.account, key))
            if entry is not None and entry[1] > now:
                return entry[0]
        return None

    def _remember(self, session: Session, keys: list[str], resource: str) -> None:
        expires = self._monotonic() + _RECENT_SECONDS
        for key in keys:
            self._recent[(session.account, key)] = (resource, expires)
            self._recent.move_to_end((session.account, key))
        while len(self._recent) > _RECENT_MAX:
            self._recent.popitem(last=False)

    async def _lookup(
        self, session: Session, email: str | None, phone: str | None, deadline: Deadline
    ) -> str | None:
        """An existing contact with this email or phone. Search answers from a cache that an
        empty query refreshes (Google's warm-up), so one goes first."""
        if not (email or phone):
            return None
        await self.client.search(
            session, "", read_mask=_SEARCH_MASK, size=_SEARCH_SIZE, deadline=deadline
        )
        region = self.settings.default_region
        for query in filter(None, (email, phone)):
            for person in await self.client.search(
                session, query, read_mask=_SEARCH_MASK, size=_SEARCH_SIZE, deadline=deadline
            ):
                contact = to_contact(person, phone_region=region)
                if contact is None:
                    continue
                if email and email.lower() in (e.lower() for e in contact.emails):
                    return contact.id
                if phone and phone in contact.phones:
                    return contact.id
        return None
