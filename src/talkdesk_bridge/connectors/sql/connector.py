"""The `sql` connector: a company's own database, described by a mapping file.

Contact sync runs on the window engine (`talkdesk_bridge.sync`) keyset-paged on
(updated_at, id): a run's upper bound is the largest `updated_at` when it starts, and the next
run re-reads from there minus `SQL_LAG_SECONDS`, which covers transactions that commit late.
"""

from __future__ import annotations

import hmac
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import httpx
import sqlalchemy as sa
from pydantic import JsonValue

from ..._errors import (
    ActionFailed,
    ConfigurationError,
    Unauthorized,
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
from ..._phones import lookup_variants, normalize_phone, normalize_phones
from ..._settings import Settings
from ..._upstream import Deadline
from ...sync import Batch, Record, Window, WindowSync
from .._base import ActionSpec, Auth, ConnectorInfo, action_specs, auth_value, credential_ok
from .client import Database, Row, Step
from .mapping import (
    LIST_FIELDS,
    SCALAR_FIELDS,
    ActionMapping,
    ListSource,
    bind_names,
    load_mapping,
    render,
)

__all__ = ["SqlConnector", "format_date"]

_MAX_LOOKUP_IDS = 50


def format_date(value: Any) -> tuple[str, datetime | None]:
    """Talkdesk's date text (`YYYY-MM-DD HH:MM:SS UTC`) and the moment, for sorting."""
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return value, None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        moment = datetime.fromtimestamp(value, UTC)
    if moment is None:
        return str(value), None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC"), moment


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _twitter(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    return text.rstrip("/").rsplit("/", 1)[-1].lstrip("@") or None


def _typed_id(value: str, id_type: str) -> int | str | None:
    if id_type == "integer":
        text = value.strip()
        if not text.lstrip("-").isdigit() or len(text) > 19:
            return None
        return int(text)
    return value


class _ContactSource:
    """The contacts query as the window engine's source: keyset reads on (updated_at, id)."""

    def __init__(self, connector: SqlConnector) -> None:
        self._c = connector

    async def watermark(self, ctx: None, deadline: Deadline) -> Any:
        return await self._c.db.scalar(self._c._q_watermark)

    async def fetch(
        self,
        ctx: None,
        window: Window,
        after: tuple[Any, ...] | None,
        resume: JsonValue,
        limit: int,
        deadline: Deadline,
    ) -> Batch:
        c = self._c
        params: dict[str, Any] = {"limit": limit + 1, "until": window.upper}
        if after is not None:
            statement = c._q_after
            params |= {"ts": after[0], "id": after[1]}
        elif window.lower is None:
            statement = c._q_first
        else:
            statement = c._q_since
            params["since"] = window.lower
        rows = await c.db.fetch(statement, params)
        more = len(rows) > limit
        rows = rows[:limit]
        contacts = await c._contacts(rows)
        records = [
            Record((row["updated_at"], row["id"]), contact.id, contact)
            for row, contact in zip(rows, contacts, strict=True)
        ]
        return Batch(records, done=not more)


class SqlConnector:
    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        serving: bool = True,
    ) -> None:
        self._settings = settings
        self._region = settings.default_region
        tokens = [t.get_secret_value() for t in settings.sql_api_tokens]
        if serving and not tokens:
            raise ConfigurationError(
                "no API token configured: set TALKDESK_BRIDGE_SQL_API_TOKENS "
                "(comma-separated), or run `talkdesk-bridge demo`, which makes one"
            )
        # A token no user could send (auth_value accepts only these) is a typo to report.
        if not all(credential_ok(t) for t in tokens):
            raise ConfigurationError(
                "every token in TALKDESK_BRIDGE_SQL_API_TOKENS must be 1 to 4096 visible ASCII "
                "characters"
            )
        self._tokens = [t.encode() for t in tokens]
        self.mapping = mapping = load_mapping(settings.sql_mapping)
        self.db = Database(settings.sql_url)
        meta = mapping.integration
        features = {"auth_validation"}
        if mapping.contacts:
            features.add("contact_sync")
        if mapping.interactions:
            features.add("interaction_update")
        if mapping.agents:
            features.add("agent_sync")
        if mapping.actions:
            features.add("actions")
        self.info = ConnectorInfo(
            name="sql",
            display_name=meta.display_name,
            description=meta.description,
            integration_name=meta.name,
            authentication_type="custom",
            auth_fields=(
                AuthField(
                    key="api_token",
                    display="API token",
                    help="A token from TALKDESK_BRIDGE_SQL_API_TOKENS on the bridge",
                ),
            ),
            interaction_types=tuple(i.type for i in mapping.interactions),
            actions=action_specs(mapping.actions),
            logo_url=meta.logo_url,
            icon_url=meta.icon_url,
            features=frozenset(features),
        )
        self._actions = {a.name: a for a in mapping.actions}
        self._compile()
        self._sync = WindowSync(
            _ContactSource(self),
            name="sql",
            page_size=settings.sql_page_size,
            lag_seconds=settings.sql_lag_seconds,
            read_ahead=settings.sql_read_ahead,
        )

    # --- statements, compiled once -------------------------------------------------------

    def _compile(self) -> None:
        m = self.mapping
        if m.contacts:
            base = m.contacts.select()
            order = "AND src.updated_at <= :until ORDER BY src.updated_at, src.id LIMIT :limit"
            self._q_first = sa.text(f"SELECT * FROM ({base}) src WHERE 1 = 1 {order}")
            self._q_since = sa.text(
                f"SELECT * FROM ({base}) src WHERE src.updated_at >= :since {order}"
            )
            self._q_after = sa.text(
                f"SELECT * FROM ({base}) src WHERE (src.updated_at > :ts "
                f"OR (src.updated_at = :ts AND src.id > :id)) {order}"
            )
            self._q_watermark = sa.text(f"SELECT MAX(src.updated_at) FROM ({base}) src")
            self._q_exists = sa.text(f"SELECT src.id FROM ({base}) src WHERE src.id = :id")
            self._q_lists = {
                name: sa.text(source.query).bindparams(sa.bindparam("ids", expanding=True))
                for name in LIST_FIELDS
                if isinstance(source := getattr(m.contacts, name), ListSource)
            }
        self._q_by_email = (
            sa.text(m.lookup.by_email).bindparams(sa.bindparam("emails", expanding=True))
            if m.lookup.by_email
            else None
        )
        self._q_by_phone = (
            sa.text(m.lookup.by_phone).bindparams(sa.bindparam("phones", expanding=True))
            if m.lookup.by_phone
            else None
        )
        self._q_interactions = {
            s.type: sa.text(s.query).bindparams(sa.bindparam("contact_ids", expanding=True))
            for s in m.interactions
        }
        self._action_steps = {
            a.name: [
                Step(sa.text(st.sql), frozenset(bind_names(st.sql)), st.when) for st in a.statements
            ]
            for a in m.actions
        }
        if m.agents:
            self._q_agents = sa.text(
                f"SELECT * FROM ({m.agents.query}) a ORDER BY a.id LIMIT :limit OFFSET :offset"
            )

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        await self.db.start()

    async def close(self) -> None:
        await self._sync.close()
        await self.db.close()

    async def ready(self) -> None:
        await self.db.scalar(sa.text("SELECT 1"))

    # --- auth ----------------------------------------------------------------------------

    def _authorize(self, auth: Auth) -> None:
        given = auth_value(auth, "api_token").encode()
        # Compare with every token, without stopping early, so timing says nothing.
        matched = False
        for token in self._tokens:
            matched |= hmac.compare_digest(given, token)
        if not matched:
            raise Unauthorized("the api_token is not valid")

    async def validate_auth(self, auth: Auth) -> dict[str, JsonValue]:
        self._authorize(auth)
        return {}

    # --- contacts ------------------------------------------------------------------------

    async def sync_contacts(self, auth: Auth, meta: ContactSyncMeta) -> ContactPage:
        self._authorize(auth)
        return await self._sync.page(None, meta)

    async def _contacts(self, rows: Sequence[Row]) -> list[Contact]:
        if not rows:
            return []
        assert self.mapping.contacts is not None
        spec = self.mapping.contacts
        ids = [row["id"] for row in rows]
        lists: dict[str, dict[Any, list[Any]]] = {}
        if self._q_lists:
            names = list(self._q_lists)
            results = await self.db.fetch_many([(self._q_lists[n], {"ids": ids}) for n in names])
            for name, found in zip(names, results, strict=True):
                grouped: dict[Any, list[Any]] = defaultdict(list)
                for child in found:
                    key, value = tuple(child.values())[:2]
                    grouped[key].append(value)
                lists[name] = grouped
        contacts = []
        for row in rows:
            values: dict[str, list[Any]] = {}
            for name in LIST_FIELDS:
                source = getattr(spec, name)
                if isinstance(source, ListSource):
                    values[name] = lists[name].get(row["id"], [])
                else:
                    values[name] = [row[col] for col in source]
            emails = list(dict.fromkeys(e for v in values["emails"] if (e := _text(v))))
            phones = normalize_phones((_text(v) for v in values["phones"]), self._region)
            websites = list(dict.fromkeys(w for v in values["websites"] if (w := _text(v))))
            fields = {f: _text(row.get(f)) for f in SCALAR_FIELDS if f in row}
            if spec.url_template:
                fields["url"] = render(spec.url_template, dict(row))
            fields["twitter"] = _twitter(fields.get("twitter"))
            name = _text(row["name"]) or next(iter(emails + phones), None) or str(row["id"])
            contacts.append(
                Contact(
                    id=str(row["id"]),
                    name=name,
                    emails=emails,
                    phones=phones,
                    websites=websites or None,
                    **fields,
                )
            )
        return contacts

    # --- interactions --------------------------------------------------------------------

    async def _find_contacts(self, data: InteractionData) -> list[Any]:
        id_type = self.mapping.contacts.id_type if self.mapping.contacts else "string"
        if data.contact_external_id:
            typed = _typed_id(data.contact_external_id, id_type)
            return [] if typed is None else [typed]
        emails = sorted({e.strip().lower() for e in data.contact_emails if e.strip()})
        if emails and self._q_by_email is not None:
            rows = await self.db.fetch(self._q_by_email, {"emails": emails})
            if rows:
                return [next(iter(r.values())) for r in rows[:_MAX_LOOKUP_IDS]]
        phones = sorted({v for p in data.contact_phones for v in lookup_variants(p, self._region)})
        if phones and self._q_by_phone is not None:
            rows = await self.db.fetch(self._q_by_phone, {"phones": phones})
            return [next(iter(r.values())) for r in rows[:_MAX_LOOKUP_IDS]]
        return []

    async def interactions(
        self, auth: Auth, types: tuple[str, ...], data: InteractionData
    ) -> list[Interaction]:
        self._authorize(auth)
        contact_ids = await self._find_contacts(data)
        if not contact_ids:
            return []
        limit = self._settings.sql_interactions_limit
        sources = [s for s in self.mapping.interactions if s.type in types]
        results = await self.db.fetch_many(
            [
                (self._q_interactions[s.type], {"contact_ids": contact_ids, "limit": limit})
                for s in sources
            ]
        )
        found: list[tuple[datetime, Interaction]] = []
        oldest = datetime.min.replace(tzinfo=UTC)
        for source, rows in zip(sources, results, strict=True):
            for row in rows:
                when, moment = format_date(row["date"])
                status = source.status.get(str(row.get("status")))
                priority = source.priority.get(str(row.get("priority")))
                url = render(source.url_template, dict(row)) if source.url_template else None
                interaction = Interaction(
                    id=f"{source.prefix}{row['id']}",
                    subject=_text(row["subject"]) or source.type,
                    description=_text(row.get("description")),
                    date=when,
                    type=source.type,
                    url=url or _text(row.get("url")),
                    status=status,
                    priority=priority,
                )
                found.append((moment or oldest, interaction))
        found.sort(key=lambda item: item[0], reverse=True)
        return [interaction for _, interaction in found[:limit]]

    # --- agents --------------------------------------------------------------------------

    async def sync_agents(self, auth: Auth, offset: int | None) -> AgentPage:
        self._authorize(auth)
        size = self._settings.sql_agents_page_size
        start = offset or 0
        rows = await self.db.fetch(self._q_agents, {"limit": size + 1, "offset": start})
        agents = [
            Agent(
                id=str(r["id"]),
                name=_text(r["name"]) or str(r["id"]),
                email=_text(r["email"]) or "",
            )
            for r in rows[:size]
        ]
        return AgentPage(agents=agents, next_offset=start + size if len(rows) > size else None)

    # --- actions -------------------------------------------------------------------------

    def _action_params(
        self, action: ActionMapping, data: Mapping[str, JsonValue]
    ) -> dict[str, Any]:
        params: dict[str, Any] = {}
        missing: list[str] = []
        for spec in action.inputs:
            value = data.get(spec.key)
            if isinstance(value, str):
                value = value.strip() or None
            if value is None:
                if spec.mandatory:
                    missing.append(spec.key)
                params[spec.key] = None
                if spec.type == "phone":
                    params[f"{spec.key}_e164"] = None
                continue
            if spec.type == "integer":
                if isinstance(value, bool) or not isinstance(value, int | str):
                    raise ActionFailed(f"data.{spec.key} must be an integer")
                try:
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
                if spec.type == "email" and ("@" not in value or " " in value):
                    raise ActionFailed(f"data.{spec.key} is not an email address")
                if spec.type == "phone":
                    e164 = normalize_phone(value, self._region)
                    params[f"{spec.key}_e164"] = e164 if e164.startswith("+") else None
            params[spec.key] = value
        if missing:
            raise ActionFailed(f"missing mandatory input(s): {', '.join(missing)}")
        return params

    async def run_action(
        self, action: ActionSpec, auth: Auth, meta: ActionMeta, data: Mapping[str, JsonValue]
    ) -> ActionResult:
        self._authorize(auth)
        mapping = self._actions[action.name]
        params = self._action_params(mapping, data)
        contact_id: Any = None
        if meta.contact_external_id:
            id_type = self.mapping.contacts.id_type if self.mapping.contacts else "string"
            contact_id = _typed_id(meta.contact_external_id, id_type)
        if mapping.requires_contact:
            if not meta.contact_external_id:
                raise ActionFailed("meta.contact_external_id is required for this action")
            if contact_id is None or (
                self.mapping.contacts
                and not await self.db.fetch(self._q_exists, {"id": contact_id})
            ):
                raise ActionFailed(f"contact {meta.contact_external_id!r} was not found")
        agent_id: Any = None
        if meta.agent_external_id and self.mapping.agents:
            agent_id = _typed_id(meta.agent_external_id, self.mapping.agents.id_type)
        now = datetime.now(UTC).replace(tzinfo=None)
        params |= {
            "contact_external_id": contact_id,
            "agent_external_id": agent_id,
            # SQLite keeps timestamps as text: spell them like SQLAlchemy does.
            "now": now.strftime("%Y-%m-%d %H:%M:%S.%f") if self.db.dialect == "sqlite" else now,
        }
        params = await self.db.run_steps(self._action_steps[action.name], params)
        rendered = {key: render(template, params) for key, template in mapping.result.items()}
        return ActionResult(**rendered)
