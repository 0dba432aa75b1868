"""The `zendesk` connector: end-users, their tickets, ticket and note actions, agents.

OAuth is the default: Zendesk stops issuing API tokens on 2026-10-27 and switches them all off
on 2027-04-30 (`TALKDESK_BRIDGE_ZENDESK_AUTH_TYPE=api_token` keeps the legacy form until
then). `/users/me` answers 200 even to anonymous callers, so a credential counts only with a
real user id and an admin role (the export behind contact sync is for admins only).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from functools import partial
from typing import Any

import httpx
from pydantic import JsonValue

from ..._errors import (
    ActionFailed,
    InvalidRequest,
    UpstreamError,
    UpstreamRejected,
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
from ...sync import FeedSync
from .._base import ActionSpec, Auth, ConnectorInfo
from .._cache import AccountCache
from .._values import text_input
from .client import (
    Session,
    ZendeskClient,
    checked_id,
    export_rate_headers,
    general_rate_headers,
    refine,
)
from .mapping import ticket_interaction, user_url
from .sync import ExportSource

__all__ = ["ZendeskConnector"]

log = logging.getLogger("talkdesk_bridge.zendesk")

_MAX_TEXT = 65_535
_LOOKUP_VALUES = 3  # emails and phones looked up per call, all at once
_LOOKUP_USERS = 3
_ORG_PAGES = 100
_AGENTS_PER_PAGE = 1000
_MAX_AGENTS = 1_000_000
_UNSOLVED = ("new", "open", "pending", "hold")
_PRIORITIES = ("low", "normal", "high", "urgent")
_RETRY_FAILED_LOAD = 300.0
_FORMAT = "https://{{subdomain}}.zendesk.com"

ACTIONS = (
    ActionSpec(
        name="create_ticket",
        display="create a ticket",
        description="creates a ticket in zendesk for the caller",
        inputs=(
            ActionInput(key="subject", name="Subject", mandatory=True),
            ActionInput(key="description", name="Description"),
            ActionInput(key="priority", name="Priority (low, normal, high, urgent)"),
            ActionInput(key="name", name="Caller name"),
            ActionInput(key="email", name="Caller email"),
            ActionInput(key="phone", name="Caller phone"),
        ),
    ),
    ActionSpec(
        name="add_note",
        display="add an internal note",
        description="adds an internal note to the contact's open ticket in zendesk",
        inputs=(ActionInput(key="body", name="Note", mandatory=True),),
    ),
    ActionSpec(
        name="create_contact",
        display="create a contact",
        description="creates (or finds) the caller as an end-user in zendesk",
        inputs=(
            ActionInput(key="name", name="Name", mandatory=True),
            ActionInput(key="email", name="Email"),
            ActionInput(key="phone", name="Phone"),
        ),
    ),
)


def _auth_fields(kind: str) -> tuple[AuthField, ...]:
    subdomain = AuthField(
        key="subdomain",
        display="Zendesk subdomain",
        help="The name before .zendesk.com in your Zendesk address",
        format=_FORMAT,
    )
    if kind == "oauth2":
        return subdomain, AuthField(key="access_token", display="Zendesk account", type="oauth")
    return (
        subdomain,
        AuthField(key="email", display="Admin email", help="The email of a Zendesk admin"),
        AuthField(
            key="api_token",
            display="API token",
            help="Deprecated: Zendesk creates no API tokens after 2026-10-27 and switches them "
            "all off on 2027-04-30; use OAuth",
        ),
    )


_text = partial(text_input, limit=_MAX_TEXT)


def _email(data: Mapping[str, JsonValue]) -> str | None:
    email = _text(data, "email")
    if email is not None and ("@" not in email or any(c.isspace() for c in email)):
        raise ActionFailed("data.email is not an email address")
    return email


def _next_cursor(body: Mapping[str, Any]) -> str | None:
    """The `page[after]` of a cursor-paginated listing, None on its last page."""
    meta = body.get("meta")
    if not isinstance(meta, dict) or not meta.get("has_more"):
        return None
    after = meta.get("after_cursor")
    return after if isinstance(after, str) and after else None


class ZendeskConnector:
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
        kind = settings.zendesk_auth_type
        self.info = ConnectorInfo(
            name="zendesk",
            display_name="Zendesk",
            description="End-users, tickets and agents from a Zendesk Support account.",
            authentication_type="oauth2" if kind == "oauth2" else "custom",
            auth_fields=_auth_fields(kind),
            interaction_types=("ticket",),
            actions=ACTIONS,
        )
        budget = rate_budget(settings)  # shared through Redis when one is configured

        def upstream(rate_headers: Any) -> Upstream:
            return Upstream(
                "Zendesk",
                timeout=settings.zendesk_timeout_seconds,
                policy=RetryPolicy(attempts=settings.zendesk_retry_attempts),
                budget=budget,
                transport=transport,
                headers={"Accept": "application/json"},
                clock=clock,
                sleep=sleep,
                max_connections=settings.zendesk_max_connections,
                refine=refine,
                rate_headers=rate_headers,
            )

        # Same pool settings, separate pacing: the export's bucket is not the account's.
        self.upstream = upstream(general_rate_headers)
        self.export = upstream(export_rate_headers)
        self.client = ZendeskClient(
            self.upstream, self.export, base_url=settings.zendesk_base_url, auth_type=kind
        )
        self._organizations: AccountCache[dict[str, str]] = AccountCache(
            settings.zendesk_cache_seconds, max_entries=256, clock=monotonic
        )
        self.sync = FeedSync(
            ExportSource(
                self.client,
                self._organization_names,
                per_page=settings.zendesk_export_page_size,
                region=settings.default_region,
                title_field=settings.zendesk_title_field,
                address_field=settings.zendesk_address_field,
                clock=clock,
            ),
            name="zendesk",
            page_size=settings.zendesk_sync_page_size,
            safety_window=settings.zendesk_safety_window_seconds,
            budget_seconds=settings.zendesk_sync_budget_seconds,
            late_writes=True,
            read_ahead=settings.zendesk_read_ahead,
            clock=clock,
            monotonic=monotonic,
        )

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await self.upstream.start()
        await self.export.start()

    async def close(self) -> None:
        await asyncio.gather(*self._organizations.cancel(), return_exceptions=True)
        await self.sync.close()
        await self.upstream.close()
        await self.export.close()
        closer = getattr(self.upstream.budget, "close", None)
        if closer is not None:
            await closer()

    async def ready(self) -> None:
        _ = self.upstream.client, self.export.client

    def _deadline(self, seconds: float | None = None) -> Deadline:
        budget = self._settings.zendesk_request_budget_seconds if seconds is None else seconds
        return Deadline(budget, self._monotonic)

    # --- per-account facts -------------------------------------------------------------

    async def _organization_names(self, session: Session) -> Mapping[str, str]:
        """Organization id -> name for the whole account: one listing per cache period."""

        async def load() -> tuple[dict[str, str], float | None]:
            deadline = self._deadline()
            names: dict[str, str] = {}
            after: str | None = None
            try:
                for _ in range(_ORG_PAGES):
                    body = await self.client.organizations(session, after=after, deadline=deadline)
                    for org in body.get("organizations") or ():
                        oid = checked_id(org.get("id")) if isinstance(org, dict) else None
                        name = org.get("name") if oid else None
                        if oid and isinstance(name, str) and name.strip():
                            names[oid] = name.strip()
                    after = _next_cursor(body)
                    if after is None:
                        break
            except UpstreamUnauthorized:
                raise
            except UpstreamError as exc:
                # Optional data: contacts go without company names and we ask again later.
                log.warning("Zendesk organizations unavailable: %s", exc.message)
                return names, _RETRY_FAILED_LOAD
            return names, None

        return await self._organizations.get(session.account, load)

    # --- auth --------------------------------------------------------------------------

    async def validate_auth(self, auth: Auth) -> dict[str, JsonValue]:
        session = self.client.session(auth)
        try:
            me = await self.client.me(session, deadline=self._deadline())
        except UpstreamRejected as exc:
            if exc.upstream_status == 403:  # a token granted no usable scope
                raise UpstreamUnauthorized(
                    "Zendesk accepted the token but it may read nothing (check its scopes: "
                    "read and write)",
                    upstream_status=403,
                ) from None
            raise
        # Anonymous callers get 200 and a user without an id: only a real user counts.
        if checked_id(me.get("id")) is None or me.get("role") not in ("agent", "admin"):
            raise UpstreamUnauthorized(
                "Zendesk did not recognize these credentials as an agent's", upstream_status=200
            )
        if me.get("role") != "admin":
            raise UpstreamRejected(
                "this Zendesk user is an agent, not an admin: contact sync reads Zendesk's "
                "incremental user export, which only admins may use; connect with an admin",
                upstream_status=403,
            )
        return {}

    # --- contacts ----------------------------------------------------------------------

    async def sync_contacts(self, auth: Auth, meta: ContactSyncMeta) -> ContactPage:
        session = self.client.session(auth)
        return await self.sync.page(session, meta, account=session.account)

    # --- interactions ------------------------------------------------------------------

    async def _find_users(
        self, session: Session, data: InteractionData, deadline: Deadline
    ) -> list[str]:
        if data.contact_external_id and data.contact_external_id.strip():
            user_id = checked_id(data.contact_external_id)
            if user_id is None:
                raise InvalidRequest("data.contact_external_id is not a Zendesk user id")
            return [user_id]
        emails = list(dict.fromkeys(e.strip().lower() for e in data.contact_emails if e.strip()))
        region = self._settings.default_region
        phones = list(
            dict.fromkeys(normalize_phone(p, region) for p in data.contact_phones if p.strip())
        )
        # The search syntax wants the + percent-encoded; httpx's params do that.
        queries = [f"email:{e}" for e in emails[:_LOOKUP_VALUES]] + [
            f"phone:{p}" for p in phones[:_LOOKUP_VALUES]
        ]
        if not queries:
            return []
        found = await asyncio.gather(
            *(self.client.search_users(session, {"query": q}, deadline=deadline) for q in queries),
            return_exceptions=True,
        )
        ids: dict[str, None] = {}
        errors: list[BaseException] = []
        for result in found:  # emails first: they name one person more surely
            if isinstance(result, BaseException):
                errors.append(result)
                continue
            for user in result:
                if (uid := checked_id(user.get("id"))) and user.get("active") is not False:
                    ids.setdefault(uid, None)
        if unauthorized := next((e for e in errors if isinstance(e, UpstreamUnauthorized)), None):
            raise unauthorized
        if not ids and errors:
            raise errors[0]
        return list(ids)[:_LOOKUP_USERS]

    async def _tickets(
        self, session: Session, user_ids: list[str], limit: int, deadline: Deadline
    ) -> list[dict[str, Any]]:
        async def requested(user_id: str) -> list[dict[str, Any]]:
            try:
                return await self.client.requested_tickets(
                    session, user_id, per_page=limit, deadline=deadline
                )
            except UpstreamRejected as exc:
                if exc.upstream_status == 404:  # no such user (anymore)
                    return []
                raise

        results = await asyncio.gather(*(requested(u) for u in user_ids), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if unauthorized := next((e for e in errors if isinstance(e, UpstreamUnauthorized)), None):
            raise unauthorized
        if errors and len(errors) == len(results):
            raise errors[0]
        return [t for r in results if not isinstance(r, BaseException) for t in r]

    async def interactions(
        self, auth: Auth, types: tuple[str, ...], data: InteractionData
    ) -> list[Interaction]:
        session = self.client.session(auth)
        if "ticket" not in types:
            return []
        deadline = self._deadline(self._settings.zendesk_interactions_budget_seconds)
        user_ids = await self._find_users(session, data, deadline)
        if not user_ids:
            return []
        limit = self._settings.zendesk_interactions_limit
        found = [
            m
            for t in await self._tickets(session, user_ids, limit, deadline)
            if (m := ticket_interaction(t, web=session.web))
        ]
        found.sort(key=lambda pair: pair[0], reverse=True)
        unique: dict[str, Interaction] = {}
        for _, interaction in found:  # newest first; each ticket once
            unique.setdefault(interaction.id, interaction)
        return list(unique.values())[:limit]

    # --- agents ------------------------------------------------------------------------

    async def sync_agents(self, auth: Auth, offset: int | None) -> AgentPage:
        session = self.client.session(auth)
        start = offset or 0
        if start >= _MAX_AGENTS:  # no account has that many: nothing to walk for
            return AgentPage(agents=[])
        want = start + _AGENTS_PER_PAGE + 1  # one more says whether a next page exists
        deadline = self._deadline()
        agents: list[Agent] = []
        after: str | None = None
        while len(agents) < want:
            body = await self.client.agents(session, after=after, deadline=deadline)
            for user in body.get("users") or ():
                uid = checked_id(user.get("id")) if isinstance(user, dict) else None
                if uid is None or user.get("role") not in ("agent", "admin"):
                    continue
                if user.get("active") is False:
                    continue
                email = user.get("email") if isinstance(user.get("email"), str) else ""
                name = user.get("name") if isinstance(user.get("name"), str) else ""
                agents.append(Agent(id=uid, name=name.strip() or email or uid, email=email))
            after = _next_cursor(body)
            if after is None:
                break
        page = agents[start : start + _AGENTS_PER_PAGE]
        more = len(agents) > start + _AGENTS_PER_PAGE
        return AgentPage(agents=page, next_offset=start + len(page) if more else None)

    # --- actions -----------------------------------------------------------------------

    async def run_action(
        self, action: ActionSpec, auth: Auth, meta: ActionMeta, data: Mapping[str, JsonValue]
    ) -> ActionResult:
        session = self.client.session(auth)
        deadline = self._deadline()
        if action.name == "create_ticket":
            return await self._create_ticket(session, meta, data, deadline)
        if action.name == "add_note":
            return await self._add_note(session, meta, data, deadline)
        if action.name == "create_contact":
            return await self._create_contact(session, data, deadline)
        raise ActionFailed(f"unknown action {action.name!r}")

    @staticmethod
    def _user_of(meta: ActionMeta, *, required: bool) -> str | None:
        raw = meta.contact_external_id
        if not raw or not raw.strip():
            if required:
                raise ActionFailed("meta.contact_external_id is required for this action")
            return None
        user_id = checked_id(raw)
        if user_id is None:
            raise ActionFailed("meta.contact_external_id is not a Zendesk user id")
        return user_id

    async def _assignee(self, session: Session, meta: ActionMeta, deadline: Deadline) -> str | None:
        raw = meta.agent_external_id
        agent_id = checked_id(raw) if raw and raw.strip() else None
        if agent_id is None:
            return None
        try:
            user = await self.client.user(session, agent_id, deadline=deadline)
        except UpstreamRejected:
            return None  # not a user of this account: leave the ticket unassigned
        return agent_id if user.get("role") in ("agent", "admin") else None

    async def _create_ticket(
        self, session: Session, meta: ActionMeta, data: Mapping[str, JsonValue], deadline: Deadline
    ) -> ActionResult:
        subject = _text(data, "subject", required=True)
        description = _text(data, "description")
        priority = _text(data, "priority")
        if priority is not None and priority.lower() not in _PRIORITIES:
            raise ActionFailed("data.priority must be one of: " + ", ".join(_PRIORITIES))
        ticket: dict[str, Any] = {
            "subject": subject,
            "comment": {"body": description or subject, "public": False},
        }
        if priority:
            ticket["priority"] = priority.lower()
        requester_id = self._user_of(meta, required=False)
        if requester_id is not None:
            ticket["requester_id"] = int(requester_id)
        else:
            name, email, phone = _text(data, "name"), _email(data), _text(data, "phone")
            if not (email or phone):
                raise ActionFailed("give meta.contact_external_id, data.email or data.phone")
            requester: dict[str, Any] = {"name": name or email or phone}
            if email:
                requester["email"] = email
            if phone:
                requester["phone"] = normalize_phone(phone, self._settings.default_region)
            ticket["requester"] = requester
        assignee = await self._assignee(session, meta, deadline)
        if assignee is not None:
            ticket["assignee_id"] = int(assignee)
        # One key per action run: the bridge's own retries replay, never duplicate.
        created = await self.client.create_ticket(
            session, ticket, key=str(uuid.uuid4()), deadline=deadline
        )
        ticket_id = checked_id(created.get("id"))
        if ticket_id is None:
            raise ActionFailed("Zendesk answered without a ticket id")
        return ActionResult(message="Ticket successfully created", external_id=ticket_id)

    async def _add_note(
        self, session: Session, meta: ActionMeta, data: Mapping[str, JsonValue], deadline: Deadline
    ) -> ActionResult:
        body = _text(data, "body", required=True)
        assert body is not None
        user_id = self._user_of(meta, required=True)
        assert user_id is not None
        tickets = await self.client.requested_tickets(
            session, user_id, per_page=100, deadline=deadline
        )
        unsolved = [t for t in tickets if t.get("status") in _UNSOLVED and checked_id(t.get("id"))]
        unsolved.sort(key=lambda t: str(t.get("updated_at") or ""), reverse=True)
        if unsolved:
            ticket_id = checked_id(unsolved[0].get("id"))
            assert ticket_id is not None
            await self.client.add_comment(session, ticket_id, body, deadline=deadline)
            return ActionResult(message="Note added to the open ticket", external_id=ticket_id)
        first_line = body.splitlines()[0] if body.splitlines() else body
        created = await self.client.create_ticket(
            session,
            {
                "subject": first_line[:120],
                "comment": {"body": body, "public": False},
                "requester_id": int(user_id),
            },
            key=str(uuid.uuid4()),
            deadline=deadline,
        )
        new_id = checked_id(created.get("id"))
        if new_id is None:
            raise ActionFailed("Zendesk answered without a ticket id")
        return ActionResult(message="Note added to a new ticket", external_id=new_id)

    async def _create_contact(
        self, session: Session, data: Mapping[str, JsonValue], deadline: Deadline
    ) -> ActionResult:
        name = _text(data, "name", required=True)
        email, phone = _email(data), _text(data, "phone")
        user: dict[str, Any] = {"name": name, "role": "end-user", "skip_verify_email": True}
        if email:
            user["email"] = email
        if phone:
            user["phone"] = normalize_phone(phone, self._settings.default_region)
        created = await self.client.create_or_update_user(session, user, deadline=deadline)
        user_id = checked_id(created.get("id"))
        if user_id is None:
            raise ActionFailed("Zendesk answered without a user id")
        return ActionResult(
            message="Contact saved",
            contact_external_id=user_id,
            contact_external_type="end-user",
            contact_external_url=user_url(session.web, user_id),
        )
