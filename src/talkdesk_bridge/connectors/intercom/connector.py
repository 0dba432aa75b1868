"""The `intercom` connector: contacts, conversations and tickets of an Intercom workspace.

One pooled HTTP client per process (made in `start`); every endpoint has a time budget, reads
are retried within it, creates never blindly. Per-account facts (the app id and the token's
own admin from /me, the default ticket type, company names) are cached under a hash of the
token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import time as time_of_day
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
from ..._phones import lookup_variants, normalize_phone
from ..._redis import rate_budget
from ..._settings import Settings
from ..._upstream import Clock, Deadline, RetryPolicy, Sleep, Upstream
from .._base import ActionSpec, Auth, ConnectorInfo
from .._cache import AccountCache
from .._values import text_input
from .client import (
    REGIONS,
    WEB_HOSTS,
    IntercomClient,
    Session,
    any_of,
    checked_id,
)
from .mapping import (
    contact_url,
    conversation_interaction,
    inbox_url,
    ticket_interaction,
    to_contact,
    updated_at,
)
from .sync import ContactSync, Item, RawPage, since_query

__all__ = ["IntercomConnector"]

log = logging.getLogger("talkdesk_bridge.intercom")

T = TypeVar("T")

_MAX_LOOKUP_CONTACTS = 5
# Seconds a phone match waits for a slower email lookup, and ready results for a slow /me.
_EMAIL_GRACE = 0.25
_MAX_LOOKUP_VALUES = 20
_MAX_TEXT = 65_535
_COMPANY_PAGE = 50
_COMPANY_PAGES = 200  # the listing stops at 10,000 companies
_COMPANY_CONCURRENCY = 8
_RETRY_FAILED_LOAD = 300.0
_SPLIT_PROBES = 24
_EXISTING_ID = re.compile(r"\bid=([0-9a-fA-F]{1,64})\b", re.ASCII)

ACTIONS = (
    ActionSpec(
        name="create_note",
        display="create a note",
        description="adds a note to the contact in intercom",
        inputs=(ActionInput(key="body", name="Note", mandatory=True),),
    ),
    ActionSpec(
        name="create_ticket",
        display="create a ticket",
        description="creates a ticket for the contact in intercom",
        inputs=(
            ActionInput(key="title", name="Title", mandatory=True),
            ActionInput(key="description", name="Description"),
            ActionInput(key="ticket_type_id", name="Ticket type id"),
        ),
    ),
    ActionSpec(
        name="create_contact",
        display="create a contact",
        description="creates a lead in intercom",
        inputs=(
            ActionInput(key="name", name="Name"),
            ActionInput(key="email", name="Email"),
            ActionInput(key="phone", name="Phone"),
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class AppInfo:
    """What /me says about the token: its workspace (app id) and its own admin."""

    app_id: str | None
    admin_id: str | None
    web_host: str
    timezone: tzinfo = UTC  # the workspace's: date filters work in its days


def _auth_fields(kind: Literal["custom", "oauth2"]) -> tuple[AuthField, ...]:
    token = (
        AuthField(key="access_token", display="Intercom account", type="oauth")
        if kind == "oauth2"
        else AuthField(
            key="access_token",
            display="Access token",
            help="The access token of an Intercom app (Developer Hub > your app > Authentication)",
        )
    )
    region = AuthField(
        key="region",
        display="Region",
        mandatory=False,
        help="Where the workspace is hosted: us (default), eu or au",
    )
    return token, region


_text_input = partial(text_input, limit=_MAX_TEXT)


def phone_spellings(raw: str, region: str) -> list[str]:
    """Ways a number may be stored in Intercom (it keeps phones as typed)."""
    variants = dict.fromkeys([raw.strip(), *lookup_variants(raw, region)])
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None:
        for style in (
            phonenumbers.PhoneNumberFormat.E164,
            phonenumbers.PhoneNumberFormat.INTERNATIONAL,
            phonenumbers.PhoneNumberFormat.NATIONAL,
        ):
            variants.setdefault(phonenumbers.format_number(parsed, style), None)
    return [v for v in variants if v]


class IntercomConnector:
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
        self._settings = settings
        self._monotonic = monotonic
        self.info = ConnectorInfo(
            name="intercom",
            display_name="Intercom",
            description="Contacts, conversations and tickets from an Intercom workspace.",
            authentication_type=settings.intercom_auth_type,
            auth_fields=_auth_fields(settings.intercom_auth_type),
            interaction_types=("conversation", "ticket"),
            actions=ACTIONS,
        )
        self.upstream = Upstream(
            "Intercom",
            timeout=settings.intercom_timeout_seconds,
            policy=RetryPolicy(attempts=settings.intercom_retry_attempts),
            budget=rate_budget(settings),  # shared through Redis when one is configured
            transport=transport,
            headers={"Intercom-Version": settings.intercom_version, "Accept": "application/json"},
            clock=clock,
            sleep=sleep,
            max_connections=settings.intercom_max_connections,
        )
        self.client = IntercomClient(self.upstream, base_url=settings.intercom_base_url)
        ttl = settings.intercom_cache_seconds
        self._apps: AccountCache[AppInfo] = AccountCache(ttl, clock=monotonic)
        self._ticket_types: AccountCache[str | None] = AccountCache(ttl, clock=monotonic)
        self._companies: AccountCache[dict[str, str]] = AccountCache(
            ttl, max_entries=256, clock=monotonic
        )
        self.sync = ContactSync(
            self._search_contacts,
            self._convert_contacts,
            split=self._split_run,
            chains=settings.intercom_sync_chains,
            search_page_size=settings.intercom_search_page_size,
            page_size=settings.intercom_sync_page_size,
            safety_window=settings.intercom_safety_window_seconds,
            budget=settings.intercom_sync_budget_seconds,
            prefetch_pages=settings.intercom_prefetch_pages,
            clock=clock,
            monotonic=monotonic,
        )

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await self.upstream.start()

    async def close(self) -> None:
        await self.sync.close()
        loads = [*self._apps.cancel(), *self._ticket_types.cancel(), *self._companies.cancel()]
        await asyncio.gather(*loads, return_exceptions=True)
        await self.upstream.close()
        closer = getattr(self.upstream.budget, "close", None)
        if closer is not None:
            await closer()

    async def ready(self) -> None:
        # Nothing to probe without a customer's token; the client must exist, though.
        _ = self.upstream.client

    def _deadline(self, seconds: float | None = None) -> Deadline:
        budget = self._settings.intercom_request_budget_seconds if seconds is None else seconds
        return Deadline(budget, self._monotonic)

    # --- per-account facts -------------------------------------------------------------

    def _app_info(self, session: Session, me: Mapping[str, Any]) -> AppInfo:
        app = me.get("app")
        if not isinstance(app, dict):
            app = {}
        region = str(app.get("region") or "").lower()
        web = WEB_HOSTS[region if region in REGIONS else session.region]
        app_id = app.get("id_code")
        admin_id = checked_id("admin", me.get("id"))
        zone: tzinfo = UTC
        with contextlib.suppress(ValueError, ZoneInfoNotFoundError):
            zone = ZoneInfo(str(app.get("timezone") or "UTC"))
        return AppInfo(str(app_id) if app_id else None, admin_id, web, zone)

    async def _app(self, session: Session, deadline: Deadline) -> AppInfo:
        async def load() -> tuple[AppInfo, float | None]:
            me = await self.client.me(session, deadline=deadline)
            return self._app_info(session, me), None

        return await self._apps.get(session.account, load)

    async def _default_ticket_type(self, session: Session, deadline: Deadline) -> str | None:
        async def load() -> tuple[str | None, float | None]:
            for ticket_type in await self.client.ticket_types(session, deadline=deadline):
                if ticket_type.get("category") == "Customer" and not ticket_type.get("archived"):
                    return checked_id("ticket_type", ticket_type.get("id")), None
            return None, _RETRY_FAILED_LOAD

        return await self._ticket_types.get(session.account, load)

    async def _company_names(self, session: Session) -> dict[str, str]:
        """Company id -> name for the whole workspace, a few listing calls an hour."""

        async def page(number: int, deadline: Deadline) -> tuple[dict[str, str], int | None]:
            listed = await self.client.list_companies(
                session, page=number, per_page=_COMPANY_PAGE, deadline=deadline
            )
            names = {
                str(c["id"]): c["name"].strip()
                for c in listed.items
                if c.get("id") and isinstance(c.get("name"), str) and c["name"].strip()
            }
            return names, listed.total_pages

        async def load() -> tuple[dict[str, str], float | None]:
            deadline = self._deadline(self._settings.intercom_sync_budget_seconds)
            try:
                names, total = await page(1, deadline)
                gate = asyncio.Semaphore(_COMPANY_CONCURRENCY)

                async def more(number: int) -> dict[str, str]:
                    async with gate:
                        return (await page(number, deadline))[0]

                rest = range(2, min(total or 1, _COMPANY_PAGES) + 1)
                for found in await asyncio.gather(*(more(n) for n in rest)):
                    names.update(found)
            except UpstreamUnauthorized:
                raise
            except UpstreamError as exc:
                # Optional data: sync goes on without company names and asks again later.
                log.warning("Intercom company names unavailable: %s", exc.message)
                return {}, _RETRY_FAILED_LOAD
            return names, None

        return await self._companies.get(session.account, load)

    # --- auth --------------------------------------------------------------------------

    async def validate_auth(self, auth: Auth) -> dict[str, JsonValue]:
        session = self.client.session(auth)
        me = await self.client.me(session, deadline=self._deadline())
        self._apps.put(session.account, self._app_info(session, me))
        # Stored by Talkdesk and sent back: later calls need not guess the host.
        return {"region": session.region}

    # --- contacts ----------------------------------------------------------------------

    async def sync_contacts(self, auth: Auth, meta: ContactSyncMeta) -> ContactPage:
        return await self.sync.page(self.client.session(auth), meta)

    async def _search_contacts(
        self, session: Session, since: int, cursor: str | None, deadline: Deadline
    ) -> RawPage:
        search = self.client.search(
            session,
            "contacts",
            since_query(since),
            deadline=deadline,
            sort=("updated_at", "ascending"),
            per_page=self._settings.intercom_search_page_size,
            cursor=cursor,
        )
        if self._apps.has(session.account):
            found = await search  # the hot path: no extra task between two pages
        else:
            # The app id (for contact links) is needed to convert; ask for it alongside.
            found, _ = await asyncio.gather(search, self._app(session, deadline))
        first = updated_at(found.items[0]) if found.items else None
        last = updated_at(found.items[-1]) if found.items else None
        return RawPage(found.items, found.next_cursor, last, first, found.total)

    async def _split_run(
        self,
        session: Session,
        lower: int,
        first: int,
        until: int,
        total: int,
        lanes: int,
        deadline: Deadline,
    ) -> tuple[int, ...]:
        """Day boundaries cutting [first, until] into `lanes` parts of about equal size.

        Counts come from one round of searches (`updated_at` before each candidate day, one
        result each); days are the workspace's, so each lane's query starts on its own day.
        """
        zone = (await self._app(session, deadline)).timezone
        day = datetime.fromtimestamp(first, zone).date() + timedelta(days=1)
        last = datetime.fromtimestamp(until, zone).date()
        span = (last - day).days
        if span < 1:
            return ()
        # Evenly spread days, plus days doubling back from the end: recent days hold most.
        offsets = {n * span // _SPLIT_PROBES for n in range(_SPLIT_PROBES + 1)}
        offsets |= {span - 2**n for n in range(_SPLIT_PROBES) if 2**n <= span}
        candidates = [
            int(datetime.combine(day + timedelta(days=n), time_of_day.min, zone).timestamp())
            for n in sorted(offsets)
        ]

        async def before(boundary: int) -> int:
            query = {
                "operator": "AND",
                "value": [
                    since_query(lower),
                    {"field": "updated_at", "operator": "<", "value": boundary},
                ],
            }
            found = await self.client.search(
                session,
                "contacts",
                query,
                deadline=deadline,
                sort=("updated_at", "ascending"),
                per_page=1,
            )
            return found.total or 0

        counts = await asyncio.gather(*(before(c) for c in candidates))
        bounds: list[int] = []
        for n in range(1, lanes):
            share = total * n / lanes
            chosen = next((c for c, k in zip(candidates, counts, strict=True) if k >= share), None)
            if chosen is not None and (not bounds or chosen > bounds[-1]):
                bounds.append(chosen)
        return tuple(bounds)

    async def _convert_contacts(
        self, session: Session, records: list[dict[str, Any]], deadline: Deadline
    ) -> tuple[Item, ...]:
        app = await self._app(session, deadline)
        companies: dict[str, str] = {}
        if self._settings.intercom_company_names and any(
            isinstance(c.get("companies"), dict) and c["companies"].get("data") for c in records
        ):
            companies = await self._company_names(session)
        region = self._settings.default_region
        app_id = app.app_id

        def link(cid: str) -> str:
            assert app_id is not None
            return contact_url(app.web_host, app_id, cid)

        items: list[Item] = []
        for raw in records:
            contact = to_contact(
                raw, phone_region=region, url=link if app_id else None, companies=companies
            )
            if contact is not None:
                items.append((updated_at(raw), contact.id, contact))
        return tuple(items)

    # --- interactions ------------------------------------------------------------------

    async def _find_contacts(
        self, session: Session, data: InteractionData, deadline: Deadline
    ) -> list[str]:
        if data.contact_external_id and data.contact_external_id.strip():
            cid = checked_id("contact", data.contact_external_id.strip())
            if cid is None:
                raise InvalidRequest("data.contact_external_id is not an Intercom contact id")
            return [cid]
        emails = list(
            dict.fromkeys(
                v for e in data.contact_emails if (s := e.strip()) for v in (s, s.lower())
            )
        )[:_MAX_LOOKUP_VALUES]
        region = self._settings.default_region
        phones = list(
            dict.fromkeys(
                v for p in data.contact_phones if p.strip() for v in phone_spellings(p, region)
            )
        )[:_MAX_LOOKUP_VALUES]

        async def lookup(field: str, values: list[str]) -> list[str]:
            if not values:
                return []
            page = await self.client.search(
                session,
                "contacts",
                any_of(field, values),
                deadline=deadline,
                sort=("updated_at", "descending"),
                per_page=_MAX_LOOKUP_CONTACTS,
            )
            return [cid for c in page.items if (cid := checked_id("contact", c.get("id")))]

        # Both at once: when the email misses, the phone answer is already there. Emails win,
        # but a hung email lookup may hold a phone match for only a short grace period.
        by_email = asyncio.ensure_future(lookup("email", emails))
        by_phone = asyncio.ensure_future(lookup("phone", phones))
        try:
            await asyncio.wait([by_email, by_phone], return_when=asyncio.FIRST_COMPLETED)
            if not by_email.done():
                phone_found = by_phone.exception() is None and by_phone.result()
                grace = min(_EMAIL_GRACE, deadline.remaining()) if phone_found else None
                await asyncio.wait([by_email], timeout=grace)
            elif by_email.exception() is None and by_email.result():
                return by_email.result()
            elif not by_phone.done():
                await asyncio.wait([by_phone])
            outcomes: list[list[str] | BaseException] = []
            for task in (by_email, by_phone):
                if task.done():
                    outcomes.append(task.exception() or task.result())
            errors = [o for o in outcomes if isinstance(o, BaseException)]
            if unauthorized := next(
                (e for e in errors if isinstance(e, UpstreamUnauthorized)), None
            ):
                raise unauthorized
            for found in outcomes:
                if isinstance(found, list) and found:
                    return found
            if errors:
                raise errors[0]  # nothing found, and one lookup could not tell
            if not by_email.done():
                raise UpstreamTimeout("Intercom did not find the contact within the time budget")
            return []
        finally:
            for task in (by_email, by_phone):
                task.cancel()  # no-op when done; a lookup still hanging is given up
            await asyncio.gather(by_email, by_phone, return_exceptions=True)

    async def interactions(
        self, auth: Auth, types: tuple[str, ...], data: InteractionData
    ) -> list[Interaction]:
        session = self.client.session(auth)
        deadline = self._deadline(self._settings.intercom_interactions_budget_seconds)
        try:
            async with asyncio.timeout(deadline.remaining()):
                contact_ids = await self._find_contacts(session, data, deadline)
        except TimeoutError:
            raise UpstreamTimeout(
                "Intercom did not find the contact within the time budget"
            ) from None
        if not contact_ids:
            return []
        limit = self._settings.intercom_interactions_limit
        app = asyncio.ensure_future(self._app(session, deadline))
        searches = {
            kind: asyncio.ensure_future(
                self.client.search(
                    session,
                    "conversations" if kind == "conversation" else "tickets",
                    any_of("contact_ids", contact_ids),
                    deadline=deadline,
                    sort=("created_at", "descending"),
                    per_page=limit,
                )
            )
            for kind in types
        }
        await asyncio.wait(searches.values(), timeout=deadline.remaining())
        if not app.done():
            # The app id only adds links: a slow /me may not hold answers that are ready.
            await asyncio.wait([app], timeout=min(_EMAIL_GRACE, deadline.remaining()))
        results = {kind: _outcome(search) for kind, search in searches.items()}
        info = _outcome(app)
        for future in [app, *searches.values()]:
            future.cancel()  # no-op when done; a call still hanging is given up
        await asyncio.gather(app, *searches.values(), return_exceptions=True)

        errors = [r for r in [*results.values(), info] if isinstance(r, BaseException)]
        if unauthorized := next((e for e in errors if isinstance(e, UpstreamUnauthorized)), None):
            raise unauthorized
        if all(isinstance(r, BaseException) for r in results.values()):
            raise next(iter(errors))
        for kind, result in results.items():
            if isinstance(result, BaseException):
                log.warning("Intercom %s search failed, answering without it: %s", kind, result)
        link = None
        if isinstance(info, AppInfo) and info.app_id:
            web, app_id = info.web_host, info.app_id

            def link(item_id: str) -> str:
                return inbox_url(web, app_id, item_id)

        found: list[tuple[int, Interaction]] = []
        for kind, result in results.items():
            if isinstance(result, BaseException):
                continue
            convert = conversation_interaction if kind == "conversation" else ticket_interaction
            found.extend(m for item in result.items if (m := convert(item, link=link)))
        found.sort(key=lambda pair: pair[0], reverse=True)
        return [interaction for _, interaction in found[:limit]]

    # --- agents ------------------------------------------------------------------------

    async def sync_agents(self, auth: Auth, offset: int | None) -> AgentPage:
        session = self.client.session(auth)
        if offset:  # /admins is one list: nothing after the first page
            return AgentPage(agents=[])
        admins = await self.client.admins(session, deadline=self._deadline())
        agents = []
        for admin in admins:
            aid = admin.get("id")
            if aid is None or isinstance(aid, bool):
                continue
            email = _str(admin.get("email"))
            name = _str(admin.get("name")) or email or str(aid)
            agents.append(Agent(id=str(aid), name=name, email=email))
        return AgentPage(agents=agents)

    # --- actions -----------------------------------------------------------------------

    async def run_action(
        self, action: ActionSpec, auth: Auth, meta: ActionMeta, data: Mapping[str, JsonValue]
    ) -> ActionResult:
        session = self.client.session(auth)
        deadline = self._deadline()
        if action.name == "create_note":
            return await self._create_note(session, meta, data, deadline)
        if action.name == "create_ticket":
            return await self._create_ticket(session, meta, data, deadline)
        if action.name == "create_contact":
            return await self._create_contact(session, data, deadline)
        raise ActionFailed(f"unknown action {action.name!r}")

    @staticmethod
    def _contact_of(meta: ActionMeta) -> str:
        if not meta.contact_external_id or not meta.contact_external_id.strip():
            raise ActionFailed("meta.contact_external_id is required for this action")
        cid = checked_id("contact", meta.contact_external_id.strip())
        if cid is None:
            raise ActionFailed("meta.contact_external_id is not an Intercom contact id")
        return cid

    async def _create_note(
        self, session: Session, meta: ActionMeta, data: Mapping[str, JsonValue], deadline: Deadline
    ) -> ActionResult:
        body = _text_input(data, "body", required=True)
        assert body is not None
        contact_id = self._contact_of(meta)
        if meta.agent_external_id and meta.agent_external_id.strip():
            admin_id = checked_id("admin", meta.agent_external_id.strip())
            if admin_id is None:
                raise ActionFailed("meta.agent_external_id is not an Intercom admin id")
        else:
            admin_id = (await self._app(session, deadline)).admin_id
            if admin_id is None:
                raise ActionFailed("give meta.agent_external_id: the token has no admin of its own")
        note = await self.client.create_note(session, contact_id, body, admin_id, deadline=deadline)
        return ActionResult(message="Note successfully created", external_id=_id(note))

    async def _create_ticket(
        self, session: Session, meta: ActionMeta, data: Mapping[str, JsonValue], deadline: Deadline
    ) -> ActionResult:
        title = _text_input(data, "title", required=True)
        assert title is not None
        description = _text_input(data, "description")
        contact_id = self._contact_of(meta)
        given = _text_input(data, "ticket_type_id")
        if given is not None:
            type_id = checked_id("ticket_type", given)
            if type_id is None:
                raise ActionFailed("data.ticket_type_id is not an Intercom ticket type id")
        else:
            type_id = await self._default_ticket_type(session, deadline)
            if type_id is None:
                raise ActionFailed(
                    "the workspace has no Customer ticket type; give data.ticket_type_id"
                )
        ticket = await self.client.create_ticket(
            session,
            ticket_type_id=type_id,
            contact_id=contact_id,
            title=title,
            description=description,
            deadline=deadline,
        )
        return ActionResult(message="Ticket successfully created", external_id=_id(ticket))

    async def _create_contact(
        self, session: Session, data: Mapping[str, JsonValue], deadline: Deadline
    ) -> ActionResult:
        name = _text_input(data, "name")
        email = _text_input(data, "email")
        phone = _text_input(data, "phone")
        if not (name or email or phone):
            raise ActionFailed("give at least one of data.name, data.email, data.phone")
        if email is not None and ("@" not in email or any(c.isspace() for c in email)):
            raise ActionFailed("data.email is not an email address")
        fields = {"role": "lead"}
        if name:
            fields["name"] = name
        if email:
            fields["email"] = email
        if phone:
            fields["phone"] = normalize_phone(phone, self._settings.default_region)
        app = asyncio.ensure_future(self._app(session, deadline))
        try:
            created = await self.client.create_contact(session, fields, deadline=deadline)
            contact_id, kind = _id(created), created.get("role")
            message = "Contact successfully created"
        except UpstreamRejected as exc:
            match = _EXISTING_ID.search(exc.message) if exc.upstream_status == 409 else None
            if match is None:
                await _discard(app)
                raise
            contact_id, kind, message = match[1], None, "Contact already exists"
        except BaseException:
            await _discard(app)
            raise
        if contact_id is None or checked_id("contact", contact_id) is None:
            await _discard(app)
            raise ActionFailed("Intercom answered without a usable contact id")
        url = None
        try:
            info = await app
        except UpstreamUnauthorized:
            raise
        except UpstreamError as exc:  # the contact exists now: answer without its link
            log.warning("Intercom /me failed after creating a contact: %s", exc.message)
        else:
            url = contact_url(info.web_host, info.app_id, contact_id) if info.app_id else None
        return ActionResult(
            message=message,
            contact_external_id=contact_id,
            contact_external_type=kind if isinstance(kind, str) and kind else "contact",
            contact_external_url=url,
        )


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _id(body: Mapping[str, Any]) -> str | None:
    value = body.get("id")
    return None if value is None or isinstance(value, bool) else str(value)


def _outcome(task: asyncio.Task[T]) -> T | BaseException:
    """A finished task's result or error; an unfinished one counts as timed out."""
    if not task.done() or task.cancelled():
        return UpstreamTimeout("Intercom did not answer within the time budget")
    error = task.exception()
    return error if error is not None else task.result()


async def _discard(task: Awaitable[Any]) -> None:
    future = asyncio.ensure_future(task)
    future.cancel()
    await asyncio.gather(future, return_exceptions=True)
