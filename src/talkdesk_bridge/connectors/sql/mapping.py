"""The mapping file: how a company's own schema becomes Talkdesk contacts, interactions, agents
and actions, without writing Python.

Queries name their output columns after Talkdesk's fields (`id`, `name`, `updated_at`, …); values
always travel as bound parameters (`:name`). See `demo_mapping.toml` for a complete example.
"""

from __future__ import annotations

import re
import string
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from ..._errors import ConfigurationError
from ..._models import Priority, Status

__all__ = [
    "DEMO_MAPPING",
    "ActionInputMapping",
    "ActionMapping",
    "AgentsMapping",
    "ContactsMapping",
    "InteractionSource",
    "ListSource",
    "LookupMapping",
    "Mapping",
    "Statement",
    "bind_names",
    "load_mapping",
    "render",
]

DEMO_MAPPING = Path(__file__).with_name("demo_mapping.toml")

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_BIND = re.compile(r"(?<![:\w]):(" + _IDENT + r")")
Identifier = Annotated[str, Field(pattern=rf"^{_IDENT}$", max_length=64)]
Column = Annotated[str, Field(pattern=rf"^{_IDENT}(\.{_IDENT})?$", max_length=128)]
HttpUrlText = Annotated[str, Field(pattern=r"^https?://\S+$", max_length=2048)]

SCALAR_FIELDS = ("company", "title", "photo_url", "address", "twitter", "url")
LIST_FIELDS = ("emails", "phones", "websites")
_RESULT_FIELDS = (
    "message",
    "external_id",
    "contact_external_id",
    "contact_external_type",
    "contact_external_url",
)


def bind_names(sql: str) -> set[str]:
    return set(_BIND.findall(sql))


def template_fields(template: str) -> set[str]:
    names: set[str] = set()
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if not re.fullmatch(_IDENT, name) or spec or conversion:
            raise ValueError(f"template placeholder {{{name}}} must be a plain column name")
        names.add(name)
    return names


def _template(value: str) -> str:
    template_fields(value)
    return value


# A display template such as "https://crm.example.com/contacts/{id}".
Template = Annotated[str, AfterValidator(_template)]


def render(template: str, values: dict[str, Any]) -> str:
    return template.format_map({k: "" if v is None else v for k, v in values.items()})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _require_binds(sql: str, required: set[str], where: str) -> None:
    missing = required - bind_names(sql)
    if missing:
        names = ", ".join(f":{n}" for n in sorted(missing))
        raise ValueError(f"{where} must use the bound parameter(s) {names}")


class ListSource(_Strict):
    """A child query returning (contact id, value) rows for a page of contact ids."""

    query: str

    @model_validator(mode="after")
    def _check(self) -> ListSource:
        _require_binds(self.query, {"ids"}, "query")
        return self


ListField = list[Column] | ListSource


class ContactsMapping(_Strict):
    query: str | None = None
    table: Column | None = None
    columns: dict[str, Column] = Field(default_factory=dict)
    id_type: Literal["integer", "string"] = "string"
    url_template: Template | None = None
    emails: ListField = Field(default_factory=list)
    phones: ListField = Field(default_factory=list)
    websites: ListField = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> ContactsMapping:
        if (self.query is None) == (self.table is None):
            raise ValueError("give exactly one of 'query' or 'table'")
        if self.table is not None:
            allowed = {"id", "name", "updated_at", *SCALAR_FIELDS}
            unknown = set(self.columns) - allowed
            if unknown:
                raise ValueError(f"columns: unknown field(s) {sorted(unknown)}")
            missing = {"id", "name", "updated_at"} - set(self.columns)
            if missing:
                raise ValueError(f"columns: missing {sorted(missing)}")
        elif self.columns:
            raise ValueError("'columns' goes with 'table'; a query names its columns itself")
        return self

    def select(self) -> str:
        if self.query is not None:
            return self.query
        parts = [f"{col} AS {field}" for field, col in self.columns.items()]
        for value in (self.emails, self.phones, self.websites):
            if isinstance(value, list):
                parts.extend(value)
        return f"SELECT {', '.join(parts)} FROM {self.table}"


class LookupMapping(_Strict):
    """Queries returning contact ids (first column) for a caller's emails or phones."""

    by_email: str | None = None
    by_phone: str | None = None

    @model_validator(mode="after")
    def _check(self) -> LookupMapping:
        if self.by_email:
            _require_binds(self.by_email, {"emails"}, "by_email")
        if self.by_phone:
            _require_binds(self.by_phone, {"phones"}, "by_phone")
        return self


class InteractionSource(_Strict):
    type: Identifier
    query: str
    # Put before each row's id, so ids stay unique across types (tables number their rows
    # alike). None: "<type>-"; "" keeps the raw ids.
    id_prefix: str | None = Field(default=None, max_length=64)
    url_template: Template | None = None
    status: dict[str, Status] = Field(default_factory=dict)
    priority: dict[str, Priority] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> InteractionSource:
        _require_binds(self.query, {"contact_ids"}, "query")
        return self

    @property
    def prefix(self) -> str:
        return f"{self.type}-" if self.id_prefix is None else self.id_prefix


class AgentsMapping(_Strict):
    query: str
    id_type: Literal["integer", "string"] = "string"


class ActionInputMapping(_Strict):
    key: Identifier
    name: str = Field(min_length=1)
    mandatory: bool = False
    type: Literal["string", "phone", "email", "integer"] = "string"
    max_length: int = Field(default=10_000, ge=1)


class Statement(_Strict):
    sql: str = Field(min_length=1)
    when: Identifier | None = None


def _statement(value: Any) -> Any:
    return {"sql": value} if isinstance(value, str) else value


class ActionMapping(_Strict):
    name: Identifier
    display: str = Field(min_length=1)
    description: str = Field(min_length=1)
    requires_contact: bool = False
    statements: list[Annotated[Statement, BeforeValidator(_statement)]] = Field(min_length=1)
    result: dict[str, Template] = Field(default_factory=dict)
    inputs: list[ActionInputMapping] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> ActionMapping:
        unknown = set(self.result) - set(_RESULT_FIELDS)
        if unknown:
            raise ValueError(f"result: unknown field(s) {sorted(unknown)}")
        keys = [i.key for i in self.inputs]
        if len(keys) != len(set(keys)):
            raise ValueError("inputs: duplicate key")
        known = {"contact_external_id", "agent_external_id", "now", *keys}
        known |= {f"{i.key}_e164" for i in self.inputs if i.type == "phone"}
        unknown_binds = bind_names(self.statements[0].sql) - known
        if unknown_binds:
            raise ValueError(f"statements[0]: unknown bound parameter(s) {sorted(unknown_binds)}")
        return self


class IntegrationMeta(_Strict):
    name: Identifier = "sql"
    display_name: str = "SQL database"
    description: str = "Contacts, interactions and actions from your own database."
    # Absolute URLs announced instead of the bundled images (Talkdesk's UI loads them).
    logo_url: HttpUrlText | None = None
    icon_url: HttpUrlText | None = None


class Mapping(_Strict):
    integration: IntegrationMeta = Field(default_factory=IntegrationMeta)
    contacts: ContactsMapping | None = None
    lookup: LookupMapping = Field(default_factory=LookupMapping)
    interactions: list[InteractionSource] = Field(default_factory=list)
    agents: AgentsMapping | None = None
    actions: list[ActionMapping] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Mapping:
        types = [i.type for i in self.interactions]
        if len(types) != len(set(types)):
            raise ValueError("interactions: duplicate type")
        names = [a.name for a in self.actions]
        if len(names) != len(set(names)):
            raise ValueError("actions: duplicate name")
        if (
            self.interactions
            and self.contacts is None
            and not (self.lookup.by_email or self.lookup.by_phone)
        ):
            raise ValueError("interactions need 'contacts' or a 'lookup' query")
        return self


def load_mapping(path: Path | None) -> Mapping:
    path = path or DEMO_MAPPING
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read mapping file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"mapping file {path} is not valid TOML: {exc}") from None
    try:
        return Mapping.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
            problems.append(f"{where or '(top level)'}: {err['msg']}")
        raise ConfigurationError(
            f"invalid mapping file {path}: " + "; ".join(problems[:5])
        ) from None
