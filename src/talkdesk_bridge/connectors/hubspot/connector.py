"""The `hubspot` connector: a HubSpot portal's contacts, engagements, tickets and owners.

Contact sync runs on the engine's `WindowSync`, keyed by contact id alone:

- the full copy (`window.lower is None`) walks the contact list, whose `after` is an id
  keyset: stable while records change, no 10,000 cap; a record edited behind the cursor is
  the next run's (its `lastmodifieddate` is past this run's fixed `upper`);
- incremental runs walk the window `[lower, upper]` of `lastmodifieddate` by
  `hs_object_id > last`, sorted by id, re-querying instead of paging with `after` (an offset
  into a live index that skips records when one is edited, and stops at 10,000): one
  millisecond shared by thousands of contacts and edits made mid-walk cannot lose a record;
  the engine's lag window re-reads what search's index had not shown yet.

Merges give a contact a new, higher id (its `hs_merged_object_ids` lists the old ones): the
survivor reaches Talkdesk as a new contact in the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import phonenumbers
from pydantic import JsonValue

from ..._errors import (
    ActionFailed,
    InvalidRequest,
    UpstreamError,
    UpstreamFailed,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnauthorized,
)
from ..._models import (
    ActionInput,
    ActionMeta,
    ActionResult,
    Agent,
    AgentPage,
    AuthField,
    ContactPage,
    ContactSyncMeta,
    Interaction,
    InteractionData,
)
from ..._phones import normalize_phone
from ..._redis import rate_budget
from ..._settings import Settings
from ..._upstream import Clock, Deadline, RetryPolicy, Sleep, Upstream
from ...sync import Batch, EpochStamps, Record, Window, WindowSync
from .._base import ActionSpec, Auth, ConnectorInfo
from .._cache import AccountCache
from .._values import text_input
from .client import (
    HubSpotClient,
    SearchGate,
    Session,
    checked_email,
    checked_id,
    opaque_cursor,
    rate_headers,
    refine,
)
from .mapping import (
    CONTACT_PROPERTIES,
    INTERACTION_PROPERTIES,
    KINDS,
    contact_url,
    ms_of,
    record_url,
    to_contact,
    to_interaction,
)

__all__ = ["HubSpotConnector"]

log = logging.getLogger("talkdesk_bridge.hubspot")

T = TypeVar("T")

_LIST_LIMIT = 100
_SEARCH_LIMIT = 200
_MAX_ID = 10**19
_PROPERTIES = ",".join(CONTACT_PROPERTIES)
_ASSOCIATIONS = ",".join(KINDS.values())
_LOOKUP_PROPERTIES = "hs_object_id,email,lastmodifieddate"
_MAX_LOOKUP_VALUES = 4
_MAX_TEXT = 65_536
_BATCH = 100
_EXISTING_ID = re.compile(r"Existing ID:\s*([0-9]{1,19})")
_TYPE_IDS = {"notes": 202, "calls": 194, "tickets": 16}
_RETRY_FAILED_LOAD = 300.0

ACTIONS = (
    ActionSpec(
        name="create_note",
        display="create a note",
        description="adds a note to the contact in hubspot",
        inputs=(ActionInput(key="body", name="Note", mandatory=True),),
    ),
    ActionSpec(
        name="log_call",
        display="log a call",
        description="logs the call on the contact's timeline in hubspot",
        inputs=(
            ActionInput(key="title", name="Title", mandatory=True),
            ActionInput(key="body", name="Notes"),
            ActionInput(key="duration_seconds", name="Duration (seconds)"),
            ActionInput(key="direction", name="Direction (inbound or outbound)"),
            ActionInput(key="from_number", name="From number"),
            ActionInput(key="to_number", name="To number"),
            ActionInput(key="recording_url", name="Recording URL"),
        ),
    ),
    ActionSpec(
        name="create_ticket",
        display="create a ticket",
        description="creates a ticket for the contact in hubspot",
        inputs=(
            ActionInput(key="subject", name="Subject", mandatory=True),
            ActionInput(key="content", name="Description"),
            ActionInput(key="priority", name="Priority (low, medium, high, urgent)"),
        ),
    ),
    ActionSpec(
        name="create_contact",
        display="create a contact",
        description="creates a contact in hubspot, unless the email is already one",
        inputs=(
            ActionInput(key="name", name="Name", mandatory=True),
            ActionInput(key="email", name="Email"),
            ActionInput(key="phone", name="Phone"),
        ),
    ),
)
_PRIORITY = {
    "low": "LOW",
    "medium": "MEDIUM",
    "normal": "MEDIUM",
    "high": "HIGH",
    "urgent": "URGENT",
}


@dataclass(frozen=True, slots=True)
class Portal:
    """What account info says: the portal id and UI host of web links, and its time zone."""

    portal_id: str | None
    ui_domain: str

    def contact_link(self, cid: str) -> str | None:
        return contact_url(self.ui_domain, self.portal_id, cid) if self.portal_id else None


@dataclass(frozen=True, slots=True)
class Pipelines:
    stages: dict[str, str]  # stage id -> ticketState
    default: tuple[str, str] | None  # (pipeline, first stage) for new tickets


def _auth_fields(kind: Literal["custom", "oauth2"]) -> tuple[AuthField, ...]:
    if kind == "oauth2":
        return (AuthField(key="access_token", display="HubSpot account", type="oauth"),)
    return (
        AuthField(
            key="access_token",
            display="Access token",
            help="A HubSpot private app's access token (Settings > Integrations > Private Apps)",
        ),
    )


_text_input = partial(text_input, limit=_MAX_TEXT)


def _check_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    if len(key) != 1 or isinstance(key[0], bool) or not isinstance(key[0], int):
        raise ValueError("not a contact id key")
    if not 0 < key[0] < _MAX_ID:
        raise ValueError("contact id out of range")
    return key


def _check_resume(raw: JsonValue) -> JsonValue:
    if raw is not None and opaque_cursor(raw) is None:
        raise ValueError("not a list cursor")
    return raw


def _records(results: object, convert: Any) -> list[Record[Any]]:
    records: list[Record[Any]] = []
    for raw in results if isinstance(results, list) else ():
        if not isinstance(raw, dict):
            continue
        cid = checked_id(raw.get("id"))
        if cid is None:
            continue
        props = raw.get("properties")
        modified = ms_of(props.get("lastmodifieddate")) if isinstance(props, dict) else None
        records.append(Record((int(cid),), cid, convert(raw), modified))
    return records


class _ContactSource:
    """The window engine's source: the id-keyset list (full copy) or the id walk of one
    `lastmodifieddate` window (incremental runs)."""

    def __init__(self, connector: HubSpotConnector) -> None:
        self._c = connector

    async def watermark(self, ctx: Session, deadline: Deadline) -> Any:
        # The run's fixed upper bound: now; what search has not indexed yet by then is
        # re-read by the next run's lag window.
        return int(self._c.clock() * 1000)

    async def fetch(
        self,
        ctx: Session,
        window: Window,
        after: tuple[Any, ...] | None,
        resume: JsonValue,
        limit: int,
        deadline: Deadline,
    ) -> Batch:
        c = self._c
        portal, body = await asyncio.gather(
            c.portal(ctx, deadline), self._read(ctx, window, after, resume, limit, deadline)
        )
        region = c.settings.default_region

        def convert(raw: Mapping[str, Any]) -> Any:
            return to_contact(raw, phone_region=region, link=portal.contact_link)

        records = _records(body.get("results"), convert)
        if window.lower is None:
            paging = body.get("paging")
            nxt = paging.get("next") if isinstance(paging, dict) else None
            cursor = nxt.get("after") if isinstance(nxt, dict) else None
            if cursor is None:
                return Batch(records, done=True)
            if opaque_cursor(cursor) is None:
                raise UpstreamFailed("HubSpot answered a list cursor this bridge cannot carry")
            return Batch(records, done=False, resume=cursor)
        total = body.get("total")
        returned = len(body.get("results") or ())
        done = not isinstance(total, int) or total <= returned or returned == 0
        return Batch(records, done=done)

    async def _read(
        self,
        ctx: Session,
        window: Window,
        after: tuple[Any, ...] | None,
        resume: JsonValue,
        limit: int,
        deadline: Deadline,
    ) -> dict[str, Any]:
        client = self._c.client
        if window.lower is None:
            cursor = resume if isinstance(resume, str) else None
            if cursor is None and after is not None:
                cursor = str(after[0] + 1)  # `after` names the next record's id
            return await client.list_contacts(
                ctx,
                after=cursor,
                limit=min(limit, _LIST_LIMIT),
                properties=_PROPERTIES,
                deadline=deadline,
            )
        filters: list[dict[str, Any]] = [
            {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(window.lower)},
            {"propertyName": "lastmodifieddate", "operator": "LTE", "value": str(window.upper)},
        ]
        if after is not None:
            filters.append(
                {"propertyName": "hs_object_id", "operator": "GT", "value": str(after[0])}
            )
        body = {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            "properties": list(CONTACT_PROPERTIES),
            "limit": min(limit, _SEARCH_LIMIT),
            # Never `after`: the next read starts past the last id instead.
        }
        return await client.search_contacts(ctx, body, deadline=deadline)


class HubSpotConnector:
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
        self.clock = clock
        self._monotonic = monotonic
        self.info = ConnectorInfo(
            name="hubspot",
            display_name="HubSpot",
            description="Contacts, calls, notes, emails, meetings and tickets from HubSpot CRM.",
            authentication_type=settings.hubspot_auth_type,
            auth_fields=_auth_fields(settings.hubspot_auth_type),
            interaction_types=tuple(KINDS),
            actions=ACTIONS,
        )
        self.upstream = Upstream(
            "HubSpot",
            timeout=settings.hubspot_timeout_seconds,
            policy=RetryPolicy(attempts=settings.hubspot_retry_attempts),
            budget=rate_budget(settings),
            transport=transport,
            headers={"Accept": "application/json"},
            clock=clock,
            sleep=sleep,
            max_connections=settings.hubspot_max_connections,
            refine=lambda response, error: refine(response, error, clock()),
            rate_headers=rate_headers,
        )
        gate = SearchGate(settings.hubspot_search_per_second, clock, sleep)
        self.client = HubSpotClient(self.upstream, gate, base_url=settings.hubspot_base_url)
        ttl = settings.hubspot_cache_seconds
        self._portals: AccountCache[Portal] = AccountCache(ttl, clock=monotonic)
        self._pipelines: AccountCache[Pipelines] = AccountCache(ttl, clock=monotonic)
        self.sync = WindowSync(
            _ContactSource(self),
            name="hubspot",
            page_size=settings.hubspot_sync_page_size,
            lag_seconds=settings.hubspot_lag_seconds,
            budget_seconds=settings.hubspot_sync_budget_seconds,
            stamps=EpochStamps(1000),
            check_key=_check_key,
            check_resume=_check_resume,
            monotonic=monotonic,
        )

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await self.upstream.start()

    async def close(self) -> None:
        await self.sync.close()
        loads = [*self._portals.cancel(), *self._pipelines.cancel()]
        await asyncio.gather(*loads, return_exceptions=True)
        await self.upstream.close()
        closer = getattr(self.upstream.budget, "close", None)
        if closer is not None:
            await closer()

    async def ready(self) -> None:
        _ = self.upstream.client  # nothing to probe without a portal's token

    def _deadline(self, seconds: float | None = None) -> Deadline:
        budget = self.settings.hubspot_request_budget_seconds if seconds is None else seconds
        return Deadline(budget, self._monotonic)

    # --- per-portal facts --------------------------------------------------------------

    def _portal_of(self, session: Session, info: Mapping[str, Any]) -> Portal:
        portal = checked_id(info.get("portalId"))
        domain = info.get("uiDomain")
        if not isinstance(domain, str) or not re.fullmatch(
            r"app(-[a-z0-9]{1,10})?\.hubspot\.com", domain
        ):
            domain = "app.hubspot.com"
        zone = info.get("timeZone")
        if isinstance(zone, str):
            with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
                self.client.zones[session.account] = ZoneInfo(zone)
        return Portal(portal, domain)

    async def portal(self, session: Session, deadline: Deadline) -> Portal:
        async def load() -> tuple[Portal, float | None]:
            info = await self.client.account_info(session, deadline=deadline)
            return self._portal_of(session, info), None

        return await self._portals.get(session.account, load)

    async def _ticket_pipelines(self, session: Session, deadline: Deadline) -> Pipelines:
        async def load() -> tuple[Pipelines, float | None]:
            listed = await self.client.ticket_pipelines(session, deadline=deadline)
            stages: dict[str, str] = {}
            default: tuple[str, str] | None = None
            ordered = sorted(
                (p for p in listed if isinstance(p, dict) and not p.get("archived")),
                key=lambda p: (p.get("id") != "0", _order(p)),
            )
            for pipeline in ordered:
                pid = pipeline.get("id")
                raw = pipeline.get("stages")
                steps = (
                    sorted((s for s in raw if isinstance(s, dict)), key=_order)
                    if isinstance(raw, list)
                    else []
                )
                for stage in steps:
                    meta = stage.get("metadata")
                    state = meta.get("ticketState") if isinstance(meta, dict) else None
                    if stage.get("id") is not None:
                        stages[str(stage["id"])] = str(state or "")
                if default is None and pid is not None and steps and steps[0].get("id"):
                    default = (str(pid), str(steps[0]["id"]))
            return Pipelines(stages, default), None if default else _RETRY_FAILED_LOAD

        return await self._pipelines.get(session.account, load)

    # --- auth --------------------------------------------------------------------------

    async def validate_auth(self, auth: Auth) -> dict[str, JsonValue]:
        session = self.client.session(auth)
        deadline = self._deadline()
        info = await self.client.account_info(session, deadline=deadline)
        self._portals.put(session.account, self._portal_of(session, info))
        # One cheap read per scope the features need: a 403 names the missing one.
        await asyncio.gather(
            *(
                self.client.probe(session, path, deadline=deadline)
                for path in (
                    "/crm/v3/objects/contacts",
                    "/crm/v3/objects/tickets",
                    "/crm/v3/owners",
                )
            )
        )
        return {}

    # --- contacts ----------------------------------------------------------------------

    async def sync_contacts(self, auth: Auth, meta: ContactSyncMeta) -> ContactPage:
        session = self.client.session(auth)
        return await self.sync.page(session, meta, account=session.account)

    # --- interactions ------------------------------------------------------------------

    async def _find_contact(
        self, session: Session, data: InteractionData, deadline: Deadline
    ) -> dict[str, Any] | None:
        """The contact (with its associations) by id, else primary email, else additional
        emails, else phone."""
        get = self.client.get_contact

        async def by_id(cid: str) -> dict[str, Any] | None:
            return await get(
                session,
                cid,
                properties=_LOOKUP_PROPERTIES,
                associations=_ASSOCIATIONS,
                deadline=deadline,
            )

        if data.contact_external_id and data.contact_external_id.strip():
            cid = checked_id(data.contact_external_id.strip())
            if cid is None:
                raise InvalidRequest("data.contact_external_id is not a HubSpot contact id")
            return await by_id(cid)
        emails = list(dict.fromkeys(e for raw in data.contact_emails if (e := checked_email(raw))))[
            :_MAX_LOOKUP_VALUES
        ]
        for email in emails:
            found = await get(
                session,
                email,
                properties=_LOOKUP_PROPERTIES,
                associations=_ASSOCIATIONS,
                by_email=True,
                deadline=deadline,
            )
            if found is not None:
                return found
        groups: list[dict[str, Any]] = [
            {
                "filters": [
                    {
                        "propertyName": "hs_additional_emails",
                        "operator": "CONTAINS_TOKEN",
                        "value": email,
                    }
                ]
            }
            for email in emails[:2]
        ]
        if groups:
            hit = await self._search_one(session, groups, deadline)
            if hit is not None:
                return await by_id(hit)
        nationals = _nationals(data.contact_phones, self.settings.default_region)
        if nationals:
            groups = [
                {"filters": [{"propertyName": prop, "operator": "IN", "values": nationals}]}
                for prop in (
                    "hs_searchable_calculated_phone_number",
                    "hs_searchable_calculated_mobile_number",
                )
            ]
            hit = await self._search_one(session, groups, deadline)
            if hit is not None:
                return await by_id(hit)
        return None

    async def _search_one(
        self, session: Session, groups: list[dict[str, Any]], deadline: Deadline
    ) -> str | None:
        body = {
            "filterGroups": groups,
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}],
            "properties": ["hs_object_id"],
            "limit": 1,
        }
        found = await self.client.search_contacts(session, body, deadline=deadline)
        results = found.get("results")
        for raw in results if isinstance(results, list) else ():
            if isinstance(raw, dict) and (cid := checked_id(raw.get("id"))):
                return cid
        return None

    async def interactions(
        self, auth: Auth, types: tuple[str, ...], data: InteractionData
    ) -> list[Interaction]:
        session = self.client.session(auth)
        deadline = self._deadline(self.settings.hubspot_interactions_budget_seconds)
        try:
            async with asyncio.timeout(deadline.remaining()):
                contact = await self._find_contact(session, data, deadline)
        except TimeoutError:
            raise UpstreamTimeout(
                "HubSpot did not find the contact within the time budget"
            ) from None
        if contact is None:
            return []
        linked = contact.get("associations")
        linked = linked if isinstance(linked, dict) else {}
        wanted: dict[str, list[str]] = {}
        for kind in types:
            object_type = KINDS[kind]
            block = linked.get(object_type)
            results = block.get("results") if isinstance(block, dict) else None
            ids = {
                int(rid)
                for r in (results if isinstance(results, list) else ())
                if isinstance(r, dict) and (rid := checked_id(r.get("id") or r.get("toObjectId")))
            }
            if ids:
                # Ids grow with creation: the highest are the newest.
                wanted[object_type] = [str(i) for i in sorted(ids)[-_BATCH:]]
        if not wanted:
            return []
        reads = {
            kind: asyncio.ensure_future(
                self.client.batch_read(
                    session, kind, ids, INTERACTION_PROPERTIES[kind], deadline=deadline
                )
            )
            for kind, ids in wanted.items()
        }
        extras: list[asyncio.Future[Any]] = [asyncio.ensure_future(self.portal(session, deadline))]
        if "tickets" in wanted:
            extras.append(asyncio.ensure_future(self._ticket_pipelines(session, deadline)))
        everything = [*reads.values(), *extras]
        await asyncio.wait(everything, timeout=deadline.remaining())
        results = {kind: _outcome(task) for kind, task in reads.items()}
        portal = _outcome(extras[0])
        pipelines = _outcome(extras[1]) if len(extras) > 1 else None
        for task in everything:
            task.cancel()
        await asyncio.gather(*everything, return_exceptions=True)
        errors = [r for r in [*results.values(), portal, pipelines] if isinstance(r, BaseException)]
        if unauthorized := next((e for e in errors if isinstance(e, UpstreamUnauthorized)), None):
            raise unauthorized
        if all(isinstance(r, BaseException) for r in results.values()):
            raise next(iter(errors))
        for kind, result in results.items():
            if isinstance(result, BaseException):
                log.warning("HubSpot %s read failed, answering without them: %s", kind, result)
        stages = pipelines.stages if isinstance(pipelines, Pipelines) else {}
        link = None
        if isinstance(portal, Portal) and portal.portal_id:
            domain, pid = portal.ui_domain, portal.portal_id

            def link(type_id: str, rid: str) -> str:
                return record_url(domain, pid, type_id, rid)

        found: list[tuple[int, int, Interaction]] = []
        for kind, result in results.items():
            if isinstance(result, BaseException):
                continue
            for record in result:
                mapped = to_interaction(kind, record, stages=stages, link=link)
                if mapped is not None:
                    found.append((mapped[0], int(mapped[1].id), mapped[1]))
        found.sort(key=lambda item: (item[0], item[1]), reverse=True)
        contact_link = (
            portal.contact_link(str(contact.get("id"))) if isinstance(portal, Portal) else None
        )
        out = []
        for _, _, interaction in found[: self.settings.hubspot_interactions_limit]:
            if interaction.url is None and contact_link:
                interaction = interaction.model_copy(update={"url": contact_link})
            out.append(interaction)
        return out

    # --- agents ------------------------------------------------------------------------

    async def sync_agents(self, auth: Auth, offset: int | None) -> AgentPage:
        """Owners of type PERSON, not archived. `offset` counts owners of the listing already
        passed (HubSpot's cursors are opaque, so a page walks to its position)."""
        session = self.client.session(auth)
        deadline = self._deadline()
        position, target = 0, offset or 0
        cursor: str | None = None
        while True:
            body = await self.client.owners(session, after=cursor, limit=100, deadline=deadline)
            results = body.get("results")
            owners = (
                [o for o in results if isinstance(o, dict)] if isinstance(results, list) else []
            )
            paging = body.get("paging")
            nxt = paging.get("next") if isinstance(paging, dict) else None
            cursor = opaque_cursor(nxt.get("after")) if isinstance(nxt, dict) else None
            if position + len(owners) > target or cursor is None:
                break
            position += len(owners)
        page = owners[target - position :] if target >= position else []
        agents = []
        for owner in page:
            oid = checked_id(owner.get("id"))
            if oid is None or owner.get("type") != "PERSON" or owner.get("archived"):
                continue
            email = _str(owner.get("email"))
            name = " ".join(
                filter(None, (_str(owner.get("firstName")), _str(owner.get("lastName"))))
            )
            agents.append(Agent(id=oid, name=name or email or oid, email=email))
        ended = position + len(owners)
        return AgentPage(agents=agents, next_offset=ended if cursor is not None else None)

    # --- actions -----------------------------------------------------------------------

    async def run_action(
        self, action: ActionSpec, auth: Auth, meta: ActionMeta, data: Mapping[str, JsonValue]
    ) -> ActionResult:
        session = self.client.session(auth)
        deadline = self._deadline()
        if action.name == "create_note":
            return await self._create_note(session, meta, data, deadline)
        if action.name == "log_call":
            return await self._log_call(session, meta, data, deadline)
        if action.name == "create_ticket":
            return await self._create_ticket(session, meta, data, deadline)
        if action.name == "create_contact":
            return await self._create_contact(session, data, deadline)
        raise ActionFailed(f"unknown action {action.name!r}")

    @staticmethod
    def _contact_of(meta: ActionMeta) -> str:
        if not meta.contact_external_id or not meta.contact_external_id.strip():
            raise ActionFailed("meta.contact_external_id is required for this action")
        cid = checked_id(meta.contact_external_id.strip())
        if cid is None:
            raise ActionFailed("meta.contact_external_id is not a HubSpot contact id")
        return cid

    @staticmethod
    def _owner_of(meta: ActionMeta) -> str | None:
        if not meta.agent_external_id or not meta.agent_external_id.strip():
            return None
        oid = checked_id(meta.agent_external_id.strip())
        if oid is None:
            raise ActionFailed("meta.agent_external_id is not a HubSpot owner id")
        return oid

    async def _create_linked(
        self,
        session: Session,
        kind: str,
        contact: str,
        properties: dict[str, str],
        deadline: Deadline,
    ) -> str | None:
        """Created and associated to the contact in one request."""
        body = {
            "properties": properties,
            "associations": [
                {
                    "to": {"id": contact},
                    "types": [
                        {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": _TYPE_IDS[kind],
                        }
                    ],
                }
            ],
        }
        created = await self.client.create(session, kind, body, deadline=deadline)
        return checked_id(created.get("id"))

    def _now_ms(self) -> str:
        return str(int(self.clock() * 1000))

    async def _create_note(
        self, session: Session, meta: ActionMeta, data: Mapping[str, JsonValue], deadline: Deadline
    ) -> ActionResult:
        body = _text_input(data, "body", required=True)
        assert body is not None
        contact = self._contact_of(meta)
        props = {"hs_timestamp": self._now_ms(), "hs_note_body": body}
        if owner := self._owner_of(meta):
            props["hubspot_owner_id"] = owner
        note = await self._create_linked(session, "notes", contact, props, deadline)
        return ActionResult(message="Note successfully created", external_id=note)

    async def _log_call(
        self, session: Session, meta: ActionMeta, data: Mapping[str, JsonValue], deadline: Deadline
    ) -> ActionResult:
        title = _text_input(data, "title", required=True)
        assert title is not None
        contact = self._contact_of(meta)
        props = {
            "hs_timestamp": self._now_ms(),
            "hs_call_title": title,
            "hs_call_status": "COMPLETED",
        }
        if body := _text_input(data, "body"):
            props["hs_call_body"] = body
        if (duration := _text_input(data, "duration_seconds")) is not None:
            try:
                seconds = float(duration)
            except ValueError:
                raise ActionFailed("data.duration_seconds must be a number of seconds") from None
            if not 0 <= seconds <= 86_400 * 7:
                raise ActionFailed("data.duration_seconds must be between 0 and 604800")
            props["hs_call_duration"] = str(int(seconds * 1000))
        if (direction := _text_input(data, "direction")) is not None:
            if direction.lower() not in ("inbound", "outbound"):
                raise ActionFailed("data.direction must be inbound or outbound")
            props["hs_call_direction"] = direction.upper()
        region = self.settings.default_region
        for key, prop in (
            ("from_number", "hs_call_from_number"),
            ("to_number", "hs_call_to_number"),
        ):
            if (number := _text_input(data, key)) is not None:
                props[prop] = normalize_phone(number, region)[:64]
        if (recording := _text_input(data, "recording_url")) is not None:
            if not re.fullmatch(r"https://[\x21-\x7e]{1,2040}", recording):
                raise ActionFailed("data.recording_url must be an https URL")
            props["hs_call_recording_url"] = recording
        if owner := self._owner_of(meta):
            props["hubspot_owner_id"] = owner
        call = await self._create_linked(session, "calls", contact, props, deadline)
        return ActionResult(message="Call successfully logged", external_id=call)

    async def _create_ticket(
        self, session: Session, meta: ActionMeta, data: Mapping[str, JsonValue], deadline: Deadline
    ) -> ActionResult:
        subject = _text_input(data, "subject", required=True)
        assert subject is not None
        contact = self._contact_of(meta)
        props = {"subject": subject}
        if content := _text_input(data, "content"):
            props["content"] = content
        if (priority := _text_input(data, "priority")) is not None:
            mapped = _PRIORITY.get(priority.lower())
            if mapped is None:
                raise ActionFailed("data.priority must be one of: low, medium, high, urgent")
            props["hs_ticket_priority"] = mapped
        pipelines = await self._ticket_pipelines(session, deadline)
        if pipelines.default is None:
            raise ActionFailed("the portal has no ticket pipeline with a stage")
        props["hs_pipeline"], props["hs_pipeline_stage"] = pipelines.default
        if owner := self._owner_of(meta):
            props["hubspot_owner_id"] = owner
        ticket = await self._create_linked(session, "tickets", contact, props, deadline)
        return ActionResult(message="Ticket successfully created", external_id=ticket)

    async def _create_contact(
        self, session: Session, data: Mapping[str, JsonValue], deadline: Deadline
    ) -> ActionResult:
        name = _text_input(data, "name", required=True)
        assert name is not None
        email = _text_input(data, "email")
        phone = _text_input(data, "phone")
        if email is not None and checked_email(email) is None:
            raise ActionFailed("data.email is not an email address")
        first, _, last = name.partition(" ")
        props = {"firstname": first[:255]}
        if last.strip():
            props["lastname"] = last.strip()[:255]
        if email:
            props["email"] = email
        if phone:
            props["phone"] = normalize_phone(phone, self.settings.default_region)[:64]
        portal = asyncio.ensure_future(self.portal(session, deadline))
        try:
            try:
                created = await self.client.create(
                    session, "contacts", {"properties": props}, deadline=deadline
                )
                cid, message = checked_id(created.get("id")), "Contact successfully created"
            except UpstreamRejected as exc:
                if exc.upstream_status != 409:
                    raise
                match = _EXISTING_ID.search(exc.message)
                cid = match[1] if match else None
                if cid is None and email:
                    found = await self.client.get_contact(
                        session,
                        email,
                        properties="hs_object_id",
                        associations=None,
                        by_email=True,
                        deadline=deadline,
                    )
                    cid = checked_id(found.get("id")) if found else None
                if cid is None:
                    raise
                message = "Contact already exists"
            if cid is None:
                raise ActionFailed("HubSpot answered without a usable contact id")
            url = None
            try:
                url = (await portal).contact_link(cid)
            except UpstreamUnauthorized:
                raise
            except UpstreamError as exc:  # the contact exists: answer without its link
                log.warning("HubSpot account info failed after creating a contact: %s", exc)
        finally:
            portal.cancel()
            await asyncio.gather(portal, return_exceptions=True)
        return ActionResult(
            message=message,
            contact_external_id=cid,
            contact_external_type="contact",
            contact_external_url=url,
        )


def _order(item: Mapping[str, Any]) -> int:
    value = item.get("displayOrder")
    return value if isinstance(value, int) and not isinstance(value, bool) else 1_000_000


def _nationals(phones: Sequence[str], region: str) -> list[str]:
    """National significant numbers (what HubSpot's searchable phone properties hold)."""
    out: dict[str, None] = {}
    for raw in phones[:20]:
        try:
            parsed = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(parsed):
            out.setdefault(str(parsed.national_number), None)
    return list(out)[:_MAX_LOOKUP_VALUES]


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _outcome(task: asyncio.Future[T]) -> T | BaseException:
    if not task.done() or task.cancelled():
        return UpstreamTimeout("HubSpot did not answer within the time budget")
    error = task.exception()
    return error if error is not None else task.result()
