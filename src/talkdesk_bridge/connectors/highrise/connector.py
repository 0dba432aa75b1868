"""The `highrise` connector: Highrise (37signals' CRM) people, notes, emails, tasks and users.

Contact sync runs on the engine's `WindowSync` (see `sync.py` for how the `since=` listing is
read without skipping anyone). Interactions find the person by id, else by one email search
(Highrise allows 2 per 10 s: when it is spent the phone search is tried instead), else by one
phone search, then read notes and emails concurrently (25 per page, newest first). Writes are
never repeated blindly: Highrise has no idempotency key.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Mapping
from functools import partial
from typing import Any

import httpx
from pydantic import JsonValue

from ..._errors import ActionFailed, UpstreamError, UpstreamRejected, UpstreamUnavailable
from ..._models import (
    ActionInput,
    ActionMeta,
    ActionResult,
    AgentPage,
    AuthField,
    Contact,
    ContactPage,
    ContactSyncMeta,
    Interaction,
    InteractionData,
)
from ..._phones import normalize_phone
from ..._redis import rate_budget
from ..._settings import Settings
from ..._upstream import Clock, Deadline, RetryPolicy, Sleep, Upstream
from ...sync import EpochStamps, WindowSync
from .._base import ActionSpec, Auth, ConnectorInfo
from .._values import text_input
from .client import USER_AGENT, HighriseClient, Session, checked_id, rate_headers, refine
from .mapping import recording_interaction, task_interaction, to_agent, to_contact
from .sync import PeopleSource, check_key
from .xml import decode

__all__ = ["HighriseConnector"]

_MAX_TEXT = 10_000
_MAX_NAME = 255
_PER_PAGE = 25  # notes and emails
_AGENTS_PER_PAGE = 100

ACTIONS = (
    ActionSpec(
        name="create_note",
        display="create a note",
        description="adds a note to the caller's person in highrise",
        inputs=(ActionInput(key="body", name="Note", mandatory=True),),
    ),
    ActionSpec(
        name="create_task",
        display="create a task",
        description="creates a highrise task, about the caller when known, for the agent",
        inputs=(
            ActionInput(key="body", name="Task", mandatory=True),
            ActionInput(key="due", name="Due date (YYYY-MM-DD)"),
        ),
    ),
    ActionSpec(
        name="create_contact",
        display="create a contact",
        description="creates a person in highrise, unless one has the caller's email",
        inputs=(
            ActionInput(key="name", name="Name", mandatory=True),
            ActionInput(key="email", name="Email"),
            ActionInput(key="phone", name="Phone"),
        ),
    ),
)


_text = partial(text_input, limit=_MAX_TEXT)


def _due(text: str | None) -> str | None:
    """Highrise's `due-at` for an ISO date (noon UTC keeps the day in most time zones) or
    datetime."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return f"{day.isoformat()}T12:00:00Z"
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ActionFailed("data.due must be an ISO date (YYYY-MM-DD)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class HighriseConnector:
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
        self._monotonic = monotonic
        self.info = ConnectorInfo(
            name="highrise",
            display_name="Highrise",
            description="People, notes, emails and tasks of a Highrise (37signals) account.",
            authentication_type="custom",
            auth_fields=(
                AuthField(
                    key="account",
                    display="Highrise account",
                    help="The first part of your Highrise address: ACCOUNT.highrisehq.com",
                    format="https://{{account}}.highrisehq.com",
                ),
                AuthField(
                    key="api_token",
                    display="API token",
                    help="Highrise: My Info > API token",
                ),
            ),
            interaction_types=("note", "email", "task"),
            actions=ACTIONS,
        )
        self.upstream = Upstream(
            "Highrise",
            timeout=settings.highrise_timeout_seconds,
            policy=RetryPolicy(attempts=settings.highrise_retry_attempts),
            budget=rate_budget(settings),
            transport=transport,
            headers={"Accept": "application/xml", "User-Agent": USER_AGENT},
            clock=clock,
            sleep=sleep,
            max_connections=settings.highrise_max_connections,
            refine=refine,
            rate_headers=rate_headers,
            decode=decode,
        )
        self.client = HighriseClient(self.upstream, base_url=settings.highrise_base_url)
        self.sync = WindowSync(
            PeopleSource(self.client, to_contact=self._contact, clock=clock),
            name="highrise",
            page_size=settings.highrise_sync_page_size,
            lag_seconds=settings.highrise_lag_seconds,
            budget_seconds=settings.highrise_sync_budget_seconds,
            stamps=EpochStamps(),
            check_key=check_key,
            monotonic=monotonic,
        )

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
        _ = self.upstream.client  # every account has its own host: nothing shared to probe

    def _deadline(self, seconds: float | None = None) -> Deadline:
        budget = self.settings.highrise_request_budget_seconds if seconds is None else seconds
        return Deadline(budget, self._monotonic)

    def _contact(self, session: Session, person: dict[str, Any]) -> Contact | None:
        return to_contact(person, web=session.web, phone_region=self.settings.default_region)

    # --- auth and contacts ---------------------------------------------------------------

    async def validate_auth(self, auth: Auth) -> dict[str, JsonValue]:
        session = self.client.session(auth)
        await self.client.me(session, deadline=self._deadline())  # never logged: holds the token
        return {}

    async def sync_contacts(self, auth: Auth, meta: ContactSyncMeta) -> ContactPage:
        session = self.client.session(auth)
        return await self.sync.page(session, meta, account=session.key)

    # --- interactions ------------------------------------------------------------------

    async def interactions(
        self, auth: Auth, types: tuple[str, ...], data: InteractionData
    ) -> list[Interaction]:
        session = self.client.session(auth)
        deadline = self._deadline(self.settings.highrise_interactions_budget_seconds)
        person = await self._find_person(session, data, deadline)
        if person is None:
            return []
        limit = self.settings.highrise_interactions_limit
        jobs: list[Awaitable[list[tuple[int, Interaction]]]] = [
            self._recordings(session, person, kind, limit, deadline)
            for kind in ("note", "email")
            if kind in types
        ]
        if "task" in types:
            jobs.append(self._tasks(session, person, deadline))
        found: list[tuple[int, Interaction]] = []
        failures: list[BaseException] = []
        for result in await asyncio.gather(*jobs, return_exceptions=True):
            if isinstance(result, BaseException):
                if not isinstance(result, UpstreamError):
                    raise result
                failures.append(result)
            else:
                found.extend(result)
        if failures and not found:
            if all(isinstance(f, UpstreamRejected) and f.upstream_status == 404 for f in failures):
                return []  # a person deleted since Talkdesk synced it
            raise failures[0]
        found.sort(key=lambda pair: pair[0], reverse=True)
        return [interaction for _, interaction in found[:limit]]

    async def _find_person(
        self, session: Session, data: InteractionData, deadline: Deadline
    ) -> str | None:
        if (pid := checked_id(data.contact_external_id)) is not None:
            return pid
        region = self.settings.default_region
        emails = [e.strip().lower() for e in data.contact_emails if e.strip()]
        phones = [normalize_phone(p, region) for p in data.contact_phones if p.strip()]
        if emails:
            try:
                people = await self.client.search(session, "email", emails[0], deadline=deadline)
            except UpstreamUnavailable:
                people = []  # email search's own limit (2 per 10 s) is spent: try the phone
            for person in people:
                contact = self._contact(session, person)
                if contact and emails[0] in (e.lower() for e in contact.emails):
                    return contact.id
        if phones:
            people = await self.client.search(session, "phone", phones[0], deadline=deadline)
            for person in people:
                contact = self._contact(session, person)
                if contact and phones[0] in contact.phones:
                    return contact.id
        return None

    async def _recordings(
        self, session: Session, person: str, kind: str, limit: int, deadline: Deadline
    ) -> list[tuple[int, Interaction]]:
        found: list[tuple[int, Interaction]] = []
        offset = 0
        while len(found) < limit:
            page = await self.client.recordings(session, person, kind, offset, deadline=deadline)
            for item in page:
                if mapped := recording_interaction(item, kind, web=session.web, person=person):
                    found.append(mapped)
            if len(page) < _PER_PAGE:
                break
            offset += len(page)
        return found

    async def _tasks(
        self, session: Session, person: str, deadline: Deadline
    ) -> list[tuple[int, Interaction]]:
        tasks = await self.client.tasks(session, person, deadline=deadline)
        return [
            mapped
            for item in tasks
            if (mapped := task_interaction(item, web=session.web, person=person))
        ]

    # --- agents --------------------------------------------------------------------------

    async def sync_agents(self, auth: Auth, offset: int | None) -> AgentPage:
        session = self.client.session(auth)
        users = await self.client.users(session, deadline=self._deadline())
        agents = [agent for user in users if (agent := to_agent(user))]
        start = offset or 0
        page = agents[start : start + _AGENTS_PER_PAGE]
        more = len(agents) > start + _AGENTS_PER_PAGE
        return AgentPage(agents=page, next_offset=start + len(page) if more else None)

    # --- actions -----------------------------------------------------------------------

    async def run_action(
        self, action: ActionSpec, auth: Auth, meta: ActionMeta, data: Mapping[str, JsonValue]
    ) -> ActionResult:
        session = self.client.session(auth)
        deadline = self._deadline()
        if action.name == "create_note":
            return await self._create_note(session, meta, data, deadline)
        if action.name == "create_task":
            return await self._create_task(session, meta, data, deadline)
        if action.name == "create_contact":
            return await self._create_contact(session, data, deadline)
        raise ActionFailed(f"unknown action {action.name!r}")

    @staticmethod
    def _subject(meta: ActionMeta, *, required: bool) -> str | None:
        if meta.contact_external_id is None or not meta.contact_external_id.strip():
            if required:
                raise ActionFailed("meta.contact_external_id is required (the Highrise person)")
            return None
        pid = checked_id(meta.contact_external_id)
        if pid is None:
            raise ActionFailed("meta.contact_external_id is not a Highrise person id")
        return pid

    async def _create_note(
        self, session: Session, meta: ActionMeta, data: Mapping[str, JsonValue], deadline: Deadline
    ) -> ActionResult:
        body = _text(data, "body", required=True)
        person = self._subject(meta, required=True)
        fields = {"body": body, "subject-id": int(person or 0), "subject-type": "Party"}
        note = await self.client.create(session, "notes", "note", fields, deadline=deadline)
        return ActionResult(
            message="Note added in Highrise", external_id=checked_id(note.get("id"))
        )

    async def _create_task(
        self, session: Session, meta: ActionMeta, data: Mapping[str, JsonValue], deadline: Deadline
    ) -> ActionResult:
        body = _text(data, "body", required=True)
        due = _due(_text(data, "due", limit=40))
        fields: dict[str, Any] = {"body": body}
        if due is not None:
            fields |= {"frame": "specific", "due-at": due}
        else:
            fields["frame"] = "today"
        if (person := self._subject(meta, required=False)) is not None:
            fields |= {"subject-id": int(person), "subject-type": "Party"}
        agent = checked_id(meta.agent_external_id)
        if agent is not None:
            users = await self.client.users(session, deadline=deadline)
            if any(checked_id(u.get("id")) == agent for u in users):
                fields["owner-id"] = int(agent)  # else the token's user owns it
        task = await self.client.create(session, "tasks", "task", fields, deadline=deadline)
        return ActionResult(
            message="Task created in Highrise", external_id=checked_id(task.get("id"))
        )

    async def _create_contact(
        self, session: Session, data: Mapping[str, JsonValue], deadline: Deadline
    ) -> ActionResult:
        name = _text(data, "name", required=True, limit=_MAX_NAME)
        assert name is not None
        email = _text(data, "email", limit=_MAX_NAME)
        phone = _text(data, "phone", limit=64)
        if email is not None and ("@" not in email or any(c.isspace() for c in email)):
            raise ActionFailed("data.email is not an email address")
        if email is not None:
            try:
                people = await self.client.search(session, "email", email, deadline=deadline)
            except UpstreamUnavailable:
                # Email search's own limit (2 per 10 s) is spent: people of that name instead.
                people = await self.client.search(session, "term", name, deadline=deadline)
            for person in people:
                contact = self._contact(session, person)
                if contact and email.lower() in (e.lower() for e in contact.emails):
                    return self._result(session, contact.id, "Person already in Highrise")
        first, _, last = name.partition(" ")
        contact_data: dict[str, Any] = {}
        if email:
            contact_data["email-addresses"] = [
                ("email-address", {"address": email, "location": "Work"})
            ]
        if phone:
            number = normalize_phone(phone, self.settings.default_region)
            contact_data["phone-numbers"] = [
                ("phone-number", {"number": number, "location": "Work"})
            ]
        fields: dict[str, Any] = {"first-name": first, "last-name": last.strip()}
        if contact_data:
            fields["contact-data"] = contact_data
        created = await self.client.create(session, "people", "person", fields, deadline=deadline)
        pid = checked_id(created.get("id"))
        if pid is None:
            raise ActionFailed("Highrise answered without the new person's id")
        return self._result(session, pid, "Person created in Highrise")

    @staticmethod
    def _result(session: Session, pid: str, message: str) -> ActionResult:
        return ActionResult(
            message=message,
            contact_external_id=pid,
            contact_external_type="person",
            contact_external_url=f"{session.web}/people/{pid}",
        )
