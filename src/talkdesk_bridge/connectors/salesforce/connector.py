"""The `salesforce` connector: Contacts and Leads, Tasks, Events and Cases of a Salesforce org.

Talkdesk's OAuth gives an access token; auth validation finds the org's instance from the
token's userinfo and returns it as `instance_url` for Talkdesk to store and send back. Every
instance URL is checked (`hosts.valid_instance_url`) before it receives the token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import httpx
import phonenumbers
from pydantic import JsonValue

from ..._errors import (
    ActionFailed,
    InvalidRequest,
    Unauthorized,
    UpstreamError,
    UpstreamFailed,
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
from ..._upstream import Clock, Deadline, RetryPolicy, Sleep, Upstream, account_key
from ...sync import EpochStamps, WindowSync
from .._base import ActionSpec, Auth, ConnectorInfo, auth_value
from .._values import text_input
from .client import (
    SalesforceClient,
    Session,
    checked_id,
    first_match,
    rate_headers,
    records,
    refine,
    validation_message,
)
from .hosts import lightning_host, valid_instance_url
from .mapping import interaction_of
from .soql import in_list, select, sosl_term, string_literal
from .sync import PeopleSource, check_key

__all__ = ["ACTIONS", "SalesforceConnector"]

log = logging.getLogger("talkdesk_bridge.salesforce")

_MAX_LOOKUP_VALUES = 20
_MAX_PEOPLE = 10
_MAX_TEXT = 32_000  # Description fields hold 32,000 characters
_MAX_SUBJECT = 255
_CACHE_ENTRIES = 10_000
_USERS_READ = 2000  # Users per keyset read (SOQL's largest page)
_DIRECTIONS = {"inbound": "Inbound", "outbound": "Outbound", "internal": "Internal"}
_CASE_PRIORITIES = {"high": "High", "medium": "Medium", "normal": "Medium", "low": "Low"}

ACTIONS = (
    ActionSpec(
        name="log_call",
        display="log a call",
        description="logs the call as a completed Task on the contact or lead in salesforce",
        inputs=(
            ActionInput(key="subject", name="Subject", mandatory=True),
            ActionInput(key="description", name="Comments"),
            ActionInput(key="duration_seconds", name="Duration (seconds)"),
            ActionInput(key="direction", name="Direction (inbound, outbound, internal)"),
            ActionInput(key="call_id", name="Call id"),
        ),
    ),
    ActionSpec(
        name="create_case",
        display="create a case",
        description="creates a case for the contact in salesforce",
        inputs=(
            ActionInput(key="subject", name="Subject", mandatory=True),
            ActionInput(key="description", name="Description"),
            ActionInput(key="priority", name="Priority (high, medium, low)"),
        ),
    ),
    ActionSpec(
        name="create_contact",
        display="create a contact",
        description="creates a contact in salesforce",
        inputs=(
            ActionInput(key="name", name="Name", mandatory=True),
            ActionInput(key="email", name="Email"),
            ActionInput(key="phone", name="Phone"),
        ),
    ),
)


_text_input = partial(text_input, limit=_MAX_TEXT)


def phone_terms(raw: str, region: str) -> list[str]:
    """Digit strings a stored number may be found by (SOSL's phone search compares digits)."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        digits = "".join(c for c in raw if c.isdigit())
        return [digits] if len(digits) >= 7 else []
    national = str(parsed.national_number)
    full = f"{parsed.country_code}{national}"
    return list(dict.fromkeys([full, national])) if len(national) >= 7 else []


class SalesforceConnector:
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
        self._base = settings.salesforce_base_url
        self._login = (self._base or settings.salesforce_login_url).rstrip("/")
        self.info = ConnectorInfo(
            name="salesforce",
            display_name="Salesforce",
            description="Contacts and leads, tasks, events and cases from a Salesforce org.",
            authentication_type="oauth2",
            auth_fields=(
                AuthField(key="access_token", display="Salesforce account", type="oauth"),
                AuthField(
                    key="instance_url",
                    display="Instance URL",
                    source="auth_validation",
                    mandatory=False,
                ),
            ),
            interaction_types=("task", "event", "case"),
            actions=ACTIONS,
        )
        self.upstream = Upstream(
            "Salesforce",
            timeout=settings.salesforce_timeout_seconds,
            policy=RetryPolicy(attempts=settings.salesforce_retry_attempts),
            budget=rate_budget(settings),
            transport=transport,
            headers={"Accept": "application/json"},
            clock=clock,
            sleep=sleep,
            max_connections=settings.salesforce_max_connections,
            refine=refine,
            rate_headers=rate_headers,
        )
        self.client = SalesforceClient(self.upstream, version=settings.salesforce_api_version)
        self._instances: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self.sync = WindowSync(
            PeopleSource(
                self.client,
                region=settings.default_region,
                refresh_seconds=settings.salesforce_company_refresh_hours * 3600,
                url=self.record_url,
                clock=clock,
            ),
            name="salesforce",
            page_size=settings.salesforce_sync_page_size,
            lag_seconds=settings.salesforce_lag_seconds,
            budget_seconds=settings.salesforce_sync_budget_seconds,
            stamps=EpochStamps(),
            read_ahead=settings.salesforce_read_ahead,
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
        _ = self.upstream.client

    def _deadline(self, seconds: float | None = None) -> Deadline:
        budget = self._settings.salesforce_request_budget_seconds if seconds is None else seconds
        return Deadline(budget, self._monotonic)

    # --- sessions ----------------------------------------------------------------------

    def record_url(self, session: Session, sobject: str, record_id: str) -> str:
        """The record's Lightning page (its `{instance}/{Id}` when the org has no My Domain)."""
        ui = lightning_host(session.instance_url)
        if ui == session.instance_url:
            return f"{session.instance_url}/{record_id}"
        return f"{ui}/lightning/r/{sobject}/{record_id}/view"

    async def _instance_of(self, token: str, deadline: Deadline) -> str:
        """The token's instance from userinfo (`urls.rest`), validated."""
        key = account_key("salesforce-login", self._login, token)
        try:
            info = await self.client.userinfo(self._login, token, key, deadline=deadline)
        except UpstreamRejected as exc:
            if exc.upstream_status in (400, 403):
                # userinfo answers an invalid or expired token with 403 Bad_OAuth_Token.
                raise UpstreamUnauthorized(
                    "Salesforce rejected the access token", upstream_status=exc.upstream_status
                ) from None
            raise
        urls = info.get("urls")
        rest = urls.get("rest") if isinstance(urls, dict) else None
        origin = None
        if isinstance(rest, str):
            try:
                parts = urlsplit(rest)
                origin = f"{parts.scheme}://{parts.netloc}"
            except ValueError:
                origin = None
        instance = valid_instance_url(origin, fixed=self._base)
        if instance is None:
            raise UpstreamFailed("Salesforce userinfo named an instance this bridge does not call")
        return instance

    async def _resolve(self, token: str, deadline: Deadline) -> str:
        key = account_key("salesforce-instance", self._login, token)
        now = self._monotonic()
        cached = self._instances.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        instance = await self._instance_of(token, deadline)
        ttl = self._settings.salesforce_instance_cache_seconds
        if ttl > 0:
            self._instances[key] = (now + ttl, instance)
            self._instances.move_to_end(key)
            while len(self._instances) > _CACHE_ENTRIES:
                self._instances.popitem(last=False)
        return instance

    def credentials(self, auth: Auth) -> tuple[str, str | None]:
        """(token, checked instance URL or None to resolve), or 401 naming the field: no
        upstream call is made for credentials that cannot be right."""
        token = auth_value(auth, "access_token")
        raw = auth.get("instance_url")
        if raw is None or raw == "":
            return token, None
        checked = valid_instance_url(raw, fixed=self._base)
        if checked is None:
            expected = (
                "the configured Salesforce base URL"
                if self._base
                else "an https Salesforce host (…salesforce.com or …force.com, no path)"
            )
            raise Unauthorized(f"auth.instance_url must be {expected}")
        return token, checked

    async def session(self, auth: Auth, deadline: Deadline) -> Session:
        token, instance = self.credentials(auth)
        if instance is None:
            instance = await self._resolve(token, deadline)
        # The instance is part of the account: the same token means nothing elsewhere.
        return Session(instance, account_key("salesforce", instance, token), token)

    # --- auth --------------------------------------------------------------------------

    async def validate_auth(self, auth: Auth) -> dict[str, JsonValue]:
        token, _ = self.credentials(auth)  # a stored instance_url must be acceptable too
        deadline = self._deadline()
        instance = await self._instance_of(token, deadline)
        session = Session(instance, account_key("salesforce", instance, token), token)
        await self.client.server_clock(session, deadline=deadline)  # the session works there too
        return {"instance_url": instance}

    # --- contacts ----------------------------------------------------------------------

    async def sync_contacts(self, auth: Auth, meta: ContactSyncMeta) -> ContactPage:
        session = await self.session(auth, self._deadline())
        return await self.sync.page(session, meta, account=session.account)

    # --- interactions ------------------------------------------------------------------

    async def _find_people(
        self, session: Session, data: InteractionData, deadline: Deadline
    ) -> list[str]:
        if data.contact_external_id and data.contact_external_id.strip():
            rid = checked_id(data.contact_external_id.strip(), "contact", "lead")
            if rid is None:
                raise InvalidRequest(
                    "data.contact_external_id is not a Salesforce Contact or Lead id"
                )
            return [rid]
        emails = list(
            dict.fromkeys(
                e.strip()
                for e in data.contact_emails
                if "@" in e and len(e.strip()) <= 254 and not any(c.isspace() for c in e.strip())
            )
        )[:_MAX_LOOKUP_VALUES]
        if emails:
            listed = in_list(emails)
            found = await self.client.composite_queries(
                session,
                {
                    "contacts": (
                        select(
                            "Id",
                            "Contact",
                            [f"Email IN {listed}"],
                            order="SystemModstamp DESC",
                            limit=_MAX_PEOPLE,
                        ),
                        False,
                    ),
                    "leads": (
                        select(
                            "Id",
                            "Lead",
                            [f"Email IN {listed}", "IsConverted = false"],
                            order="SystemModstamp DESC",
                            limit=_MAX_PEOPLE,
                        ),
                        False,
                    ),
                },
                deadline=deadline,
            )
            people = _ids_of(found)
            if people:
                return people
        region = self._settings.default_region
        terms = list(
            dict.fromkeys(
                t for p in data.contact_phones if p.strip() for t in phone_terms(p, region)
            )
        )[:_MAX_LOOKUP_VALUES]
        if not terms:
            return []
        # The search index lags writes by minutes: a person created seconds ago is found by
        # email or by the synced id, not here.
        find = " OR ".join(f'"{sosl_term(t)}"' for t in terms)
        sosl = (
            f"FIND {{{find}}} IN PHONE FIELDS RETURNING Contact(Id), "
            f"Lead(Id WHERE IsConverted = false) LIMIT {_MAX_PEOPLE}"
        )
        rows = await self.client.search(session, sosl, deadline=deadline)
        return [rid for r in rows if (rid := checked_id(r.get("Id"), "contact", "lead"))]

    async def interactions(
        self, auth: Auth, types: tuple[str, ...], data: InteractionData
    ) -> list[Interaction]:
        deadline = self._deadline(self._settings.salesforce_interactions_budget_seconds)
        session = await self.session(auth, deadline)
        people = await self._find_people(session, data, deadline)
        if not people:
            return []
        limit = self._settings.salesforce_interactions_limit
        who = in_list(people)
        contacts = [p for p in people if p.startswith("003")]
        queries: dict[str, tuple[str, bool]] = {}
        if "task" in types:
            queries["task"] = (
                select(
                    "Id, Subject, Description, Status, IsClosed, Priority, CreatedDate",
                    "Task",
                    [f"WhoId IN {who}", "IsDeleted = false"],
                    order="CreatedDate DESC",
                    limit=limit,
                ),
                True,  # queryAll: archived activities too
            )
        if "event" in types:
            queries["event"] = (
                select(
                    "Id, Subject, Description, StartDateTime, CreatedDate",
                    "Event",
                    [f"WhoId IN {who}", "IsDeleted = false"],
                    order="StartDateTime DESC",
                    limit=limit,
                ),
                True,
            )
        if "case" in types and contacts:
            queries["case"] = (
                select(
                    "Id, CaseNumber, Subject, Description, Status, IsClosed, Priority, CreatedDate",
                    "Case",
                    [f"ContactId IN {in_list(contacts)}"],
                    order="CreatedDate DESC",
                    limit=limit,
                ),
                False,
            )
        if not queries:
            return []
        results = await self.client.composite_queries(session, queries, deadline=deadline)
        errors = [r for r in results.values() if isinstance(r, UpstreamError)]
        if unauthorized := next((e for e in errors if isinstance(e, UpstreamUnauthorized)), None):
            raise unauthorized
        if len(errors) == len(results):
            raise errors[0]
        found: list[tuple[int, Interaction]] = []
        for kind, result in results.items():
            if isinstance(result, UpstreamError):
                log.warning("Salesforce %s query failed, answering without it: %s", kind, result)
                continue
            for row in records(result):
                item = interaction_of(
                    kind, row, url=lambda sobject, i: self.record_url(session, sobject, i)
                )
                if item is not None:
                    found.append(item)
        found.sort(key=lambda pair: pair[0], reverse=True)
        return [interaction for _, interaction in found[:limit]]

    # --- agents ------------------------------------------------------------------------

    async def sync_agents(self, auth: Auth, offset: int | None) -> AgentPage:
        """Active standard Users. Talkdesk's integer offset is a position in *all* standard
        Users by Id (active or not): Users are deactivated, never deleted, and new ones get
        higher Ids, so positions stay put while a sync pages. The position is reached by
        keyset reads on Id (`Id > last`), never by SOQL OFFSET."""
        deadline = self._deadline()
        session = await self.session(auth, deadline)
        size = self._settings.salesforce_agents_page_size
        start = offset or 0
        rows: list[dict[str, Any]] = []
        last: str | None = None
        while len(rows) <= start + size:
            where = ["UserType = 'Standard'"]
            if last is not None:
                where.append(f"Id > {string_literal(last)}")
            body = await self.client.query(
                session,
                select("Id, Name, Email, IsActive", "User", where, order="Id", limit=_USERS_READ),
                deadline=deadline,
            )
            chunk = [r for r in records(body) if checked_id(r.get("Id"), "user")]
            rows.extend(chunk)
            if len(chunk) < _USERS_READ:
                break
            last = chunk[-1]["Id"]
        agents = []
        for row in rows[start : start + size]:
            if row.get("IsActive") is not True:
                continue
            email = row["Email"].strip() if isinstance(row.get("Email"), str) else ""
            name = row["Name"].strip() if isinstance(row.get("Name"), str) else ""
            agents.append(Agent(id=row["Id"], name=name or email or row["Id"], email=email))
        more = len(rows) > start + size
        return AgentPage(agents=agents, next_offset=start + size if more else None)

    # --- actions -----------------------------------------------------------------------

    async def run_action(
        self, action: ActionSpec, auth: Auth, meta: ActionMeta, data: Mapping[str, JsonValue]
    ) -> ActionResult:
        deadline = self._deadline()
        self.credentials(auth)  # bad credentials are a 401 before any input is judged
        if action.name == "log_call":
            fields = self._call_fields(meta, data)
            session = await self.session(auth, deadline)
            return await self._log_call(session, fields, deadline)
        if action.name == "create_case":
            fields = self._case_fields(meta, data)
            session = await self.session(auth, deadline)
            case_id = await self._create(session, "Case", fields, deadline)
            return ActionResult(message="Case successfully created", external_id=case_id)
        if action.name == "create_contact":
            fields = self._contact_fields(data)
            session = await self.session(auth, deadline)
            return await self._create_contact(session, fields, deadline)
        raise ActionFailed(f"unknown action {action.name!r}")

    @staticmethod
    def _person_of(meta: ActionMeta) -> str:
        if not meta.contact_external_id or not meta.contact_external_id.strip():
            raise ActionFailed("meta.contact_external_id is required for this action")
        rid = checked_id(meta.contact_external_id.strip(), "contact", "lead")
        if rid is None:
            raise ActionFailed("meta.contact_external_id is not a Salesforce Contact or Lead id")
        return rid

    def _call_fields(self, meta: ActionMeta, data: Mapping[str, JsonValue]) -> dict[str, Any]:
        subject = _text_input(data, "subject", required=True, limit=_MAX_SUBJECT)
        fields: dict[str, Any] = {
            "Subject": subject,
            "WhoId": self._person_of(meta),
            "TaskSubtype": "Call",
            "Status": "Completed",
            "ActivityDate": datetime.now(UTC).date().isoformat(),
        }
        if description := _text_input(data, "description"):
            fields["Description"] = description
        duration = data.get("duration_seconds")
        if duration is not None and duration != "":
            if isinstance(duration, str) and duration.strip().isdigit():
                duration = int(duration.strip())
            if isinstance(duration, float) and duration.is_integer():
                duration = int(duration)
            if isinstance(duration, bool) or not isinstance(duration, int) or duration < 0:
                raise ActionFailed("data.duration_seconds must be a whole number of seconds")
            fields["CallDurationInSeconds"] = duration
        if direction := _text_input(data, "direction", limit=20):
            if direction.lower() not in _DIRECTIONS:
                raise ActionFailed("data.direction must be one of: inbound, outbound, internal")
            fields["CallType"] = _DIRECTIONS[direction.lower()]
        if call_id := _text_input(data, "call_id", limit=255):
            fields["CallObject"] = call_id
        agent = (meta.agent_external_id or "").strip()
        if owner := checked_id(agent, "user"):
            fields["OwnerId"] = owner
        return fields

    async def _log_call(
        self, session: Session, fields: dict[str, Any], deadline: Deadline
    ) -> ActionResult:
        call_id = fields.get("CallObject")
        if isinstance(call_id, str):
            # No idempotency keys in Salesforce: a retry after a lost answer finds its task.
            body = await self.client.query(
                session,
                select(
                    "Id",
                    "Task",
                    [
                        f"CallObject = {string_literal(call_id)}",
                        f"WhoId = {string_literal(fields['WhoId'])}",
                    ],
                    limit=1,
                ),
                deadline=deadline,
            )
            existing = [r for r in records(body) if checked_id(r.get("Id"))]
            if existing:
                return ActionResult(message="Call already logged", external_id=existing[0]["Id"])
        task_id = await self._create(session, "Task", fields, deadline)
        return ActionResult(message="Call successfully logged", external_id=task_id)

    def _case_fields(self, meta: ActionMeta, data: Mapping[str, JsonValue]) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "Subject": _text_input(data, "subject", required=True, limit=_MAX_SUBJECT),
            "Origin": "Phone",
        }
        if description := _text_input(data, "description"):
            fields["Description"] = description
        if priority := _text_input(data, "priority", limit=20):
            if priority.lower() not in _CASE_PRIORITIES:
                raise ActionFailed("data.priority must be one of: high, medium, low")
            fields["Priority"] = _CASE_PRIORITIES[priority.lower()]
        if meta.contact_external_id and meta.contact_external_id.strip():
            person = self._person_of(meta)
            if person.startswith("003"):  # a Case links Contacts only, never Leads
                fields["ContactId"] = person
        return fields

    def _contact_fields(self, data: Mapping[str, JsonValue]) -> dict[str, Any]:
        name = _text_input(data, "name", required=True, limit=200)
        assert name is not None
        first, _, last = name.rpartition(" ")
        fields: dict[str, Any] = {"LastName": last}
        if first.strip():
            fields["FirstName"] = first.strip()
        if email := _text_input(data, "email", limit=80):
            if "@" not in email or any(c.isspace() for c in email):
                raise ActionFailed("data.email is not an email address")
            fields["Email"] = email
        if phone := _text_input(data, "phone", limit=40):
            fields["Phone"] = normalize_phone(phone, self._settings.default_region)
        return fields

    async def _create(
        self, session: Session, sobject: str, fields: Mapping[str, Any], deadline: Deadline
    ) -> str:
        try:
            return await self.client.create(session, sobject, fields, deadline=deadline)
        except UpstreamRejected as exc:
            message = validation_message(exc)
            if message is not None and first_match(exc) is None:
                raise ActionFailed(f"Salesforce refused the {sobject}: {message}") from None
            raise

    async def _create_contact(
        self, session: Session, fields: Mapping[str, Any], deadline: Deadline
    ) -> ActionResult:
        try:
            contact_id = await self._create(session, "Contact", fields, deadline)
            message = "Contact successfully created"
        except UpstreamRejected as exc:
            existing = first_match(exc)
            if existing is None:
                raise
            contact_id, message = existing, "Contact already exists"
        sobject = "Lead" if contact_id.startswith("00Q") else "Contact"
        return ActionResult(
            message=message,
            contact_external_id=contact_id,
            contact_external_type=sobject,
            contact_external_url=self.record_url(session, sobject, contact_id),
        )


def _ids_of(found: Mapping[str, Any]) -> list[str]:
    errors = [r for r in found.values() if isinstance(r, UpstreamError)]
    people = [
        rid
        for result in found.values()
        if not isinstance(result, UpstreamError)
        for row in records(result)
        if (rid := checked_id(row.get("Id"), "contact", "lead"))
    ]
    if not people and errors:
        raise errors[0]
    return people
