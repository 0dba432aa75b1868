"""The `rest` connector: a company's own REST/JSON API, described by a mapping file.

The mapping (`TALKDESK_BRIDGE_REST_MAPPING`, see `mapping.py` and `example_mapping.toml`) says
where the API is, how to authenticate, and how each feature reads it. Contact sync runs on the
engine's `WindowSync` whatever the paging style (see `sync.py`); interactions look the caller
up by id, else by email, else by phone, then read each type's endpoint; actions send a JSON
body built from the mapping's template with every value placed as JSON, never as text.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import JsonValue

from ..._errors import (
    ActionFailed,
    ConfigurationError,
    UpstreamError,
    UpstreamFailed,
    UpstreamRejected,
)
from ..._models import (
    ActionMeta,
    ActionResult,
    Agent,
    AgentPage,
    AuthField,
    Contact,
    ContactPage,
    ContactSyncMeta,
    Interaction,
    InteractionData,
)
from ..._phones import normalize_phone, normalize_phones
from ..._settings import Settings
from ..._upstream import Clock, Deadline, RetryPolicy, Sleep, Upstream
from ...sync import EpochStamps, WindowSync
from .._base import ActionSpec, Auth, ConnectorInfo, action_specs
from .client import USER_AGENT, RestClient, Session, WindowBudget, refiner, segment
from .extract import (
    Expression,
    Template,
    compile_expression,
    compile_template,
    read_text,
    text_of,
)
from .mapping import (
    LIST_FIELDS,
    SCALAR_FIELDS,
    ActionMapping,
    Extract,
    InteractionSource,
    LookupEndpoint,
    check_base_url,
    load_mapping,
)
from .sync import ContactSource, check_key, record_id
from .times import parse_time, talkdesk_date

__all__ = ["RestConnector"]

_MAX_LOOKUP = 5
_AGENTS_PER_PAGE = 100
_WHOLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SLOT = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")

Reader = tuple[Expression | Template, str | None]


def _reader(spec: Extract | None) -> Reader | None:
    return None if spec is None else (spec.compiled(), spec.join)


def _read(reader: Reader | None, doc: Any) -> str | None:
    return None if reader is None else read_text(reader[0], doc, reader[1])


def _texts(readers: list[Reader], doc: Any) -> list[str]:
    """Every text the readers find (lists spread out), each once, in order."""
    out: list[str] = []
    for compiled, join in readers:
        if isinstance(compiled, Template) or join is not None:
            text = read_text(compiled, doc, join)
            out.extend([text] if text else [])
        else:
            out.extend(t for v in compiled.values(doc) if (t := text_of(v)))
    return list(dict.fromkeys(out))


def _twitter(value: str | None) -> str | None:
    if value is None:
        return None
    return value.rstrip("/").rsplit("/", 1)[-1].lstrip("@") or None


def _records(found: Any, where: str) -> list[Any]:
    if not isinstance(found, list):
        raise UpstreamFailed(f"the company API's answer has no list at {where!r}")
    return found


def _fill_body(value: Any, values: Mapping[str, JsonValue]) -> Any:
    """The body template with inputs placed: "{x}" alone becomes x's JSON value."""
    if isinstance(value, str):
        whole = _WHOLE.fullmatch(value)
        if whole:
            return values.get(whole.group(1))

        def text(match: re.Match[str]) -> str:
            token = match.group(0)
            if token in ("{{", "}}"):
                return token[0]
            found = values.get(match.group(1))
            return "" if found is None else str(found)

        return _SLOT.sub(text, value)
    if isinstance(value, dict):
        return {k: _fill_body(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_body(v, values) for v in value]
    return value


class RestConnector:
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
        del serving  # nothing to require: credentials come from Talkdesk with each request
        self.settings = settings
        self._monotonic = monotonic
        self.mapping = mapping = load_mapping(settings.rest_mapping)
        api = mapping.api
        base_url = settings.rest_base_url or api.base_url
        try:
            # The override is the operator's own choice, so it may be plain http.
            base_url = check_base_url(
                base_url, allow_http=bool(settings.rest_base_url) or api.allow_http
            )
        except ValueError as exc:
            raise ConfigurationError(f"TALKDESK_BRIDGE_REST_BASE_URL: {exc}") from None
        meta = mapping.integration
        spec = mapping.auth
        auth_fields = (
            (
                AuthField(key=spec.username_field, display="User name", help=spec.help),
                AuthField(key=spec.password_field, display="Password", help=spec.help),
            )
            if spec.type == "basic"
            else (AuthField(key=spec.field, display=spec.display, help=spec.help),)
        )
        features = {"auth_validation", "contact_sync"}
        if mapping.interactions:
            features.add("interaction_update")
        if mapping.agents:
            features.add("agent_sync")
        if mapping.actions:
            features.add("actions")
        self.info = ConnectorInfo(
            name="rest",
            display_name=meta.display_name,
            description=meta.description,
            integration_name=meta.name,
            authentication_type="custom",
            auth_fields=auth_fields,
            interaction_types=tuple(i.type for i in mapping.interactions),
            actions=action_specs(mapping.actions),
            logo_url=meta.logo_url,
            icon_url=meta.icon_url,
            features=frozenset(features),
        )
        limit = api.rate_limit
        self.upstream = Upstream(
            "Company API",
            timeout=api.timeout_seconds,
            policy=RetryPolicy(attempts=api.retry_attempts),
            budget=None if limit is None else WindowBudget(limit.requests, limit.per_seconds),
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": USER_AGENT, **api.headers},
            clock=clock,
            sleep=sleep,
            max_connections=api.max_connections,
            refine=refiner(api),
        )
        self.client = RestClient(self.upstream, api, spec, base_url)
        contacts = mapping.contacts
        self._contact_fields: dict[str, Reader | None] = {
            name: _reader(getattr(contacts.fields, name)) for name in SCALAR_FIELDS
        }
        self._contact_lists: dict[str, list[Reader]] = {
            name: [r for e in getattr(contacts.fields, name) if (r := _reader(e))]
            for name in LIST_FIELDS
        }
        self._contact_id = _reader(contacts.fields.id)
        self.sync = WindowSync(
            ContactSource(self.client, contacts, to_contact=self.to_contact, clock=clock),
            name="rest",
            page_size=settings.rest_sync_page_size,
            lag_seconds=contacts.lag_seconds,
            budget_seconds=settings.rest_sync_budget_seconds,
            read_ahead=settings.rest_read_ahead,
            stamps=EpochStamps(per_second=1000),
            check_key=check_key,
            monotonic=monotonic,
        )
        self._actions = {a.name: a for a in mapping.actions}

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await self.upstream.start()

    async def close(self) -> None:
        await self.sync.close()
        await self.upstream.close()

    async def ready(self) -> None:
        _ = self.upstream.client  # the API needs each user's credentials: nothing to probe

    def _deadline(self, seconds: float | None = None) -> Deadline:
        budget = self.settings.rest_request_budget_seconds if seconds is None else seconds
        return Deadline(budget, self._monotonic)

    # --- contacts ------------------------------------------------------------------------

    def to_contact(self, item: Any) -> Contact | None:
        cid = record_id(_read(self._contact_id, item))
        if cid is None:
            return None
        region = self.settings.default_region
        emails = _texts(self._contact_lists["emails"], item)
        phones = normalize_phones(_texts(self._contact_lists["phones"], item), region)
        websites = _texts(self._contact_lists["websites"], item)
        values = {name: _read(reader, item) for name, reader in self._contact_fields.items()}
        name = values.pop("name") or next(iter(emails + phones), None) or cid
        values["twitter"] = _twitter(values.get("twitter"))
        return Contact(
            id=cid, name=name, emails=emails, phones=phones, websites=websites or None, **values
        )

    async def validate_auth(self, auth: Auth) -> dict[str, JsonValue]:
        session = self.client.session(auth)
        contacts = self.mapping.contacts
        path = self.mapping.auth.check_path
        params: dict[str, str | int] = {}
        if path is None:
            path = contacts.path
            params = {**contacts.params, **contacts.sort.params}
            if contacts.paging.size_param:
                params[contacts.paging.size_param] = 1
        await self.client.get(
            session, self.client.url(path), params=params, deadline=self._deadline()
        )  # the answer is never logged or kept: it may echo account details
        return {}

    async def sync_contacts(self, auth: Auth, meta: ContactSyncMeta) -> ContactPage:
        session = self.client.session(auth)
        return await self.sync.page(session, meta, account=session.account)

    # --- interactions ------------------------------------------------------------------

    async def _lookup(
        self, session: Session, endpoint: LookupEndpoint, value: str, deadline: Deadline
    ) -> list[Contact]:
        values = {"value": value}
        params: dict[str, str | int] = dict(endpoint.params)
        if endpoint.param is not None:
            params[endpoint.param] = value
        try:
            answer = await self.client.get(
                session, self.client.url(endpoint.path, values), params=params, deadline=deadline
            )
        except UpstreamRejected as exc:
            if exc.upstream_status == 404:
                return []  # "no such email" as many APIs say it
            raise
        where = endpoint.records if endpoint.records is not None else self.mapping.contacts.records
        found = _records(compile_expression(where)(answer.body), where)
        return [c for item in found if (c := self.to_contact(item)) is not None]

    async def _find_contacts(
        self, session: Session, data: InteractionData, deadline: Deadline
    ) -> list[str]:
        if data.contact_external_id and data.contact_external_id.strip():
            segment(data.contact_external_id, "data.contact_external_id")
            return [data.contact_external_id.strip()]
        lookup = self.mapping.lookup
        emails = [e.strip().lower() for e in data.contact_emails if e.strip()]
        if emails and lookup.by_email is not None:
            segment(emails[0], "data.contact_emails")
            people = await self._lookup(session, lookup.by_email, emails[0], deadline)
            ids = [c.id for c in people if emails[0] in (e.lower() for e in c.emails)]
            if ids:
                return ids[:_MAX_LOOKUP]
        region = self.settings.default_region
        phones = [normalize_phone(p, region) for p in data.contact_phones if p.strip()]
        if phones and lookup.by_phone is not None:
            segment(phones[0], "data.contact_phones")
            people = await self._lookup(session, lookup.by_phone, phones[0], deadline)
            return [c.id for c in people if phones[0] in c.phones][:_MAX_LOOKUP]
        return []

    async def _interactions(
        self, session: Session, source: InteractionSource, contact: str, deadline: Deadline
    ) -> list[tuple[int, Interaction]]:
        params: dict[str, str | int] = dict(source.params)
        if source.contact_param is not None:
            params[source.contact_param] = contact
        url = self.client.url(source.path, {"contact_id": contact})
        answer = await self.client.get(session, url, params=params, deadline=deadline)
        found = _records(compile_expression(source.records)(answer.body), source.records)
        fields = source.fields
        readers = {
            name: _reader(getattr(fields, name))
            for name in ("id", "subject", "description", "date", "status", "priority", "url")
        }
        out: list[tuple[int, Interaction]] = []
        for item in found:
            iid = record_id(_read(readers["id"], item))
            when = parse_time(_read(readers["date"], item), source.date_format)
            if iid is None or when is None:
                continue
            status = source.status.get(_read(readers["status"], item) or "")
            priority = source.priority.get(_read(readers["priority"], item) or "")
            interaction = Interaction(
                id=f"{source.prefix}{iid}",
                subject=_read(readers["subject"], item) or source.type,
                description=_read(readers["description"], item),
                date=talkdesk_date(when),
                type=source.type,
                url=_read(readers["url"], item),
                status=status,
                priority=priority,
            )
            out.append((when, interaction))
        return out

    async def interactions(
        self, auth: Auth, types: tuple[str, ...], data: InteractionData
    ) -> list[Interaction]:
        session = self.client.session(auth)
        deadline = self._deadline(self.settings.rest_interactions_budget_seconds)
        contacts = await self._find_contacts(session, data, deadline)
        sources = [s for s in self.mapping.interactions if s.type in types]
        jobs = [self._interactions(session, s, c, deadline) for s in sources for c in contacts]
        found: dict[str, tuple[int, Interaction]] = {}
        failures: list[UpstreamError] = []
        for result in await asyncio.gather(*jobs, return_exceptions=True):
            if isinstance(result, BaseException):
                if not isinstance(result, UpstreamError):
                    raise result
                failures.append(result)
                continue
            for when, interaction in result:
                found[interaction.id] = (when, interaction)  # ids are unique per answer
        if failures and not found:
            if all(isinstance(f, UpstreamRejected) and f.upstream_status == 404 for f in failures):
                return []  # a contact deleted since Talkdesk synced it
            raise failures[0]
        ordered = sorted(found.values(), key=lambda pair: pair[0], reverse=True)
        return [i for _, i in ordered[: self.settings.rest_interactions_limit]]

    # --- agents --------------------------------------------------------------------------

    async def sync_agents(self, auth: Auth, offset: int | None) -> AgentPage:
        session = self.client.session(auth)
        spec = self.mapping.agents
        assert spec is not None
        answer = await self.client.get(
            session, self.client.url(spec.path), params=dict(spec.params), deadline=self._deadline()
        )
        found = _records(compile_expression(spec.records)(answer.body), spec.records)
        readers = {n: _reader(getattr(spec.fields, n)) for n in ("id", "name", "email")}
        agents = []
        for item in found:
            aid = record_id(_read(readers["id"], item))
            if aid is not None:
                name = _read(readers["name"], item) or aid
                agents.append(Agent(id=aid, name=name, email=_read(readers["email"], item) or ""))
        start = offset or 0
        page = agents[start : start + _AGENTS_PER_PAGE]
        more = len(agents) > start + _AGENTS_PER_PAGE
        return AgentPage(agents=page, next_offset=start + len(page) if more else None)

    # --- actions -----------------------------------------------------------------------

    def _inputs(self, action: ActionMapping, data: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
        values: dict[str, JsonValue] = {}
        missing: list[str] = []
        for spec in action.inputs:
            value = data.get(spec.key)
            if isinstance(value, str):
                value = value.strip() or None
            if spec.type == "phone":
                values[f"{spec.key}_e164"] = None
            if value is None:
                if spec.mandatory:
                    missing.append(spec.key)
                values[spec.key] = None
                continue
            if spec.type == "integer":
                try:
                    if isinstance(value, bool) or not isinstance(value, int | str):
                        raise ValueError
                    value = int(value)
                except ValueError:
                    raise ActionFailed(f"data.{spec.key} must be an integer") from None
            else:
                if isinstance(value, bool) or not isinstance(value, str | int | float):
                    raise ActionFailed(f"data.{spec.key} must be a string")
                value = str(value)
                if len(value) > spec.max_length:
                    raise ActionFailed(
                        f"data.{spec.key} is longer than {spec.max_length} characters"
                    )
                if spec.type == "email" and ("@" not in value or any(c.isspace() for c in value)):
                    raise ActionFailed(f"data.{spec.key} is not an email address")
                if spec.type == "phone":
                    e164 = normalize_phone(value, self.settings.default_region)
                    values[f"{spec.key}_e164"] = e164 if e164.startswith("+") else None
            values[spec.key] = value
        if missing:
            raise ActionFailed(f"missing mandatory input(s): {', '.join(missing)}")
        return values

    async def run_action(
        self, action: ActionSpec, auth: Auth, meta: ActionMeta, data: Mapping[str, JsonValue]
    ) -> ActionResult:
        session = self.client.session(auth)
        mapping = self._actions[action.name]
        values = self._inputs(mapping, data)
        contact = (meta.contact_external_id or "").strip() or None
        agent = (meta.agent_external_id or "").strip() or None
        if mapping.requires_contact and contact is None:
            raise ActionFailed("meta.contact_external_id is required for this action")
        for name, given in (("contact_external_id", contact), ("agent_external_id", agent)):
            if given is not None:
                segment(given, f"meta.{name}")  # 422 naming the field when it cannot be one
            values[name] = given
        values["now"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        slots: dict[str, str] = {}
        for name in _WHOLE.findall(mapping.path):
            slot = values.get(name)
            if slot is None:
                raise ActionFailed(f"{name} is required for this action")
            slots[name] = str(slot)
        url = self.client.url(mapping.path, slots)
        body = _fill_body(mapping.body, values) if mapping.body is not None else None
        answer = await self.client.send(
            session, mapping.method, url, body, deadline=self._deadline()
        )
        result = mapping.result
        message = read_text(compile_template(result.message), answer) if result.message else None
        return ActionResult(
            message=message or f"{mapping.display}: done",
            external_id=record_id(_read(_reader(result.external_id), answer)),
            contact_external_id=record_id(_read(_reader(result.contact_external_id), answer)),
            contact_external_type=result.contact_external_type,
            contact_external_url=_read(_reader(result.contact_external_url), answer),
        )
