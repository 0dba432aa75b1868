"""The mapping file: a company's own REST API described in TOML, validated at start-up.

Every key is checked when the bridge starts, and a mapping under which the contact sync could
lose a record is refused there, with the reason (see `ContactsMapping._zero_loss`). See
`example_mapping.toml` for a complete, commented example.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

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
from .extract import Expression, Template, compile_expression, compile_template

__all__ = [
    "EXAMPLE_MAPPING",
    "ActionMapping",
    "ContactsMapping",
    "Extract",
    "InteractionSource",
    "Mapping",
    "TimeFormat",
    "load_mapping",
    "path_names",
]

EXAMPLE_MAPPING = Path(__file__).with_name("example_mapping.toml")

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
Identifier = Annotated[str, Field(pattern=rf"^{_IDENT}$", max_length=64)]
# Query parameter names as APIs spell them (`per_page`, `filter[updated_since]`, `page.size`).
ParamName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\[\]-]{1,64}$")]
HeaderName = Annotated[str, Field(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")]
HeaderValue = Annotated[str, Field(pattern=r"^[\x20-\x7e]{0,1024}$")]
HttpUrlText = Annotated[str, Field(pattern=r"^https?://\S+$", max_length=2048)]
TimeFormat = Literal["epoch_seconds", "epoch_millis", "iso8601", "strftime"]

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
SCALAR_FIELDS = ("name", "company", "title", "photo_url", "address", "twitter", "url")
LIST_FIELDS = ("emails", "phones", "websites")


def path_names(path: str) -> set[str]:
    return set(_PLACEHOLDER.findall(path))


def _path(value: str) -> str:
    """A path under the base URL: values reach it only through `{name}` slots."""
    if not value.startswith("/") or value.startswith("//"):
        raise ValueError("must start with a single '/' (a path under api.base_url)")
    if any(c in value for c in "?#\\") or any(ord(c) <= 0x20 or ord(c) > 0x7E for c in value):
        raise ValueError("must be a plain path (query parameters go in 'params')")
    if any(seg in (".", "..") for seg in value.split("/")):
        raise ValueError("must not hold '.' or '..' segments")
    for name in path_names(value):
        if not re.fullmatch(_IDENT, name):
            raise ValueError(f"placeholder {{{name}}} must be a plain name")
    stripped = _PLACEHOLDER.sub("", value)
    if "{" in stripped or "}" in stripped:
        raise ValueError("has an unbalanced brace")
    return value


PathTemplate = Annotated[str, Field(max_length=512), AfterValidator(_path)]


def _expression(value: str) -> str:
    compile_expression(value)
    return value


ExpressionText = Annotated[str, AfterValidator(_expression)]


def _extract(value: Any) -> Any:
    return {"path": value} if isinstance(value, str) else value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Extract(_Strict):
    """How one value is read: an expression (`path`), or a `template` of expressions; a list
    found where one value is wanted is joined with `join` (default: its first item)."""

    path: ExpressionText | None = None
    template: str | None = Field(default=None, max_length=1024)
    join: str | None = Field(default=None, max_length=16)

    @model_validator(mode="after")
    def _check(self) -> Extract:
        if (self.path is None) == (self.template is None):
            raise ValueError("give exactly one of 'path' or 'template'")
        if self.template is not None:
            compile_template(self.template)
        return self

    def compiled(self) -> Expression | Template:
        if self.path is not None:
            return compile_expression(self.path)
        assert self.template is not None
        return compile_template(self.template)


Field_ = Annotated[Extract, BeforeValidator(_extract)]


def _extracts(value: Any) -> Any:
    if isinstance(value, str | dict):
        return [value]
    return value


ListField = Annotated[list[Field_], BeforeValidator(_extracts)]


class RateLimit(_Strict):
    requests: int = Field(ge=1, le=1_000_000)
    per_seconds: float = Field(gt=0, le=86_400)


class ApiMapping(_Strict):
    base_url: Annotated[str, Field(max_length=2048)]
    # Plain HTTP only when the mapping says so (a test double, a sidecar on localhost).
    allow_http: bool = False
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    retry_attempts: int = Field(default=4, ge=1, le=10)
    # Statuses that mean "retry later" (with Retry-After when the API sends it).
    retry_statuses: list[Annotated[int, Field(ge=400, le=599)]] = Field(
        default_factory=lambda: [429, 502, 503, 504]
    )
    rate_limit: RateLimit | None = None
    max_connections: int = Field(default=32, ge=1, le=1000)

    @model_validator(mode="after")
    def _check(self) -> ApiMapping:
        check_base_url(self.base_url, allow_http=self.allow_http)
        return self


def check_base_url(url: str, *, allow_http: bool) -> str:
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        raise ValueError(
            "base_url must be https (set allow_http = true for a local test double)"
            if parts.scheme == "http"
            else "base_url must be an https URL"
        )
    if not parts.hostname or parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("base_url must be scheme://host[:port][/path], no credentials or query")
    if any(ord(c) <= 0x20 or ord(c) > 0x7E for c in url):
        raise ValueError("base_url must be plain ASCII without spaces")
    return url.rstrip("/")


class AuthMapping(_Strict):
    """Credentials come from Talkdesk auth fields, never from the mapping file."""

    type: Literal["bearer", "header", "basic"] = "bearer"
    field: Identifier = "api_token"  # bearer / header: the auth field with the token
    header: HeaderName | None = None  # header: where the token goes (X-Api-Key...)
    username_field: Identifier = "username"  # basic
    password_field: Identifier = "password"  # noqa: S105 (basic: the field's name, not a secret)
    display: str = Field(default="API token", min_length=1, max_length=100)
    help: str | None = Field(default=None, max_length=300)
    # GET this path to validate credentials (default: the contacts list, one page).
    check_path: PathTemplate | None = None

    @model_validator(mode="after")
    def _check(self) -> AuthMapping:
        if self.type == "header" and self.header is None:
            raise ValueError("type = 'header' needs 'header' (the header's name)")
        if self.check_path is not None and path_names(self.check_path):
            raise ValueError("check_path takes no placeholders")
        return self

    @property
    def fields(self) -> tuple[str, ...]:
        if self.type == "basic":
            return (self.username_field, self.password_field)
        return (self.field,)


class TimeSpec(_Strict):
    format: TimeFormat = "iso8601"
    strftime: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _check_format(self) -> TimeSpec:
        if (self.format == "strftime") != (self.strftime is not None):
            raise ValueError("'strftime' is required with format = 'strftime', and only then")
        return self


class Modified(TimeSpec):
    path: ExpressionText


class Filter(TimeSpec):
    """The list's modification-time filter. Inclusive or exclusive does not matter: the
    bridge always asks from one granule before the first stamp it needs."""

    param: ParamName


class Sort(_Strict):
    by: Literal["modified", "id", "none"] = "none"
    params: dict[ParamName, str] = Field(default_factory=dict)


class Paging(_Strict):
    style: Literal["page", "offset", "cursor", "link", "keyset"]
    page_size: int = Field(default=100, ge=1, le=10_000)
    size_param: ParamName | None = None
    page_param: ParamName = "page"
    first_page: int = Field(default=1, ge=0)
    offset_param: ParamName = "offset"
    cursor_param: ParamName = "cursor"
    cursor: ExpressionText = "/next_cursor"  # where the next cursor sits in the body
    after_id_param: ParamName | None = None  # keyset: the tie-breaker after the stamp
    # The API's cursor or next link stays valid while data changes (a keyset cursor): the
    # bridge then skips re-reading the previous page to detect a shifted listing.
    stable: bool = False


class ContactFields(_Strict):
    id: Field_
    name: Field_ | None = None
    company: Field_ | None = None
    title: Field_ | None = None
    photo_url: Field_ | None = None
    address: Field_ | None = None
    twitter: Field_ | None = None
    url: Field_ | None = None
    emails: ListField = Field(default_factory=list)
    phones: ListField = Field(default_factory=list)
    websites: ListField = Field(default_factory=list)


class ContactsMapping(_Strict):
    path: PathTemplate
    params: dict[ParamName, str] = Field(default_factory=dict)
    records: ExpressionText = ""
    modified: Modified
    filter: Filter | None = None
    sort: Sort = Field(default_factory=Sort)
    paging: Paging
    # The smallest step of the API's modification times (1: whole seconds).
    granularity_seconds: float = Field(default=1.0, gt=0, le=86_400)
    # How far each run re-reads behind the previous one: late commits, index lag, skew.
    lag_seconds: float = Field(default=300.0, ge=0, le=7 * 86_400)
    fields: ContactFields

    @model_validator(mode="after")
    def _zero_loss(self) -> ContactsMapping:
        if path_names(self.path):
            raise ValueError("path takes no placeholders")
        if self.filter is None:
            raise ValueError(
                "filter is required: without a modification-time filter every run re-reads "
                "the whole list, and page/offset walks over a list that changes skip records"
            )
        if self.sort.by != "modified":
            raise ValueError(
                "sort.by must be 'modified' (with the params that make the API sort by "
                "modification time, oldest first): only then does a page's last time bound "
                "what has been read completely; zero loss cannot be guaranteed otherwise"
            )
        if self.lag_seconds < self.granularity_seconds:
            raise ValueError("lag_seconds must be at least granularity_seconds")
        paging = self.paging
        names = [paging.size_param, paging.after_id_param, self.filter.param]
        names.append(
            {
                "page": paging.page_param,
                "offset": paging.offset_param,
                "cursor": paging.cursor_param,
            }.get(paging.style)
        )
        taken = [n for n in names if n is not None]
        if len(taken) != len(set(taken)) or set(taken) & set(self.params | self.sort.params):
            raise ValueError("paging, filter and params use one query parameter twice")
        if paging.after_id_param is not None and paging.style != "keyset":
            raise ValueError("paging.after_id_param goes with style = 'keyset'")
        return self


class LookupEndpoint(_Strict):
    """Contacts by one email or phone: `{value}` in the path, or the query parameter `param`."""

    path: PathTemplate
    param: ParamName | None = None
    params: dict[ParamName, str] = Field(default_factory=dict)
    records: ExpressionText | None = None  # default: contacts.records

    @model_validator(mode="after")
    def _check(self) -> LookupEndpoint:
        names = path_names(self.path)
        if names - {"value"}:
            raise ValueError("path may use only {value}")
        if bool(names) == (self.param is not None):
            raise ValueError("give the value either as {value} in path or as 'param'")
        return self


class LookupMapping(_Strict):
    by_email: LookupEndpoint | None = None
    by_phone: LookupEndpoint | None = None


class InteractionFields(_Strict):
    id: Field_
    subject: Field_ | None = None
    description: Field_ | None = None
    date: Field_
    status: Field_ | None = None
    priority: Field_ | None = None
    url: Field_ | None = None


class InteractionSource(_Strict):
    type: Identifier
    path: PathTemplate
    contact_param: ParamName | None = None  # else {contact_id} in the path
    params: dict[ParamName, str] = Field(default_factory=dict)
    records: ExpressionText = ""
    fields: InteractionFields
    date_format: TimeSpec = Field(default_factory=TimeSpec)
    status: dict[str, Status] = Field(default_factory=dict)
    priority: dict[str, Priority] = Field(default_factory=dict)
    # Put before each record's id so ids stay unique across types. None: "<type>-".
    id_prefix: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _check(self) -> InteractionSource:
        names = path_names(self.path)
        if names - {"contact_id"}:
            raise ValueError("path may use only {contact_id}")
        if bool(names) == (self.contact_param is not None):
            raise ValueError("give the contact either as {contact_id} in path or contact_param")
        return self

    @property
    def prefix(self) -> str:
        return f"{self.type}-" if self.id_prefix is None else self.id_prefix


class AgentFields(_Strict):
    id: Field_
    name: Field_ | None = None
    email: Field_ | None = None


class AgentsMapping(_Strict):
    path: PathTemplate
    params: dict[ParamName, str] = Field(default_factory=dict)
    records: ExpressionText = ""
    fields: AgentFields

    @model_validator(mode="after")
    def _check(self) -> AgentsMapping:
        if path_names(self.path):
            raise ValueError("path takes no placeholders")
        return self


class ActionInputMapping(_Strict):
    key: Identifier
    name: str = Field(min_length=1, max_length=100)
    mandatory: bool = False
    type: Literal["string", "phone", "email", "integer"] = "string"
    max_length: int = Field(default=10_000, ge=1, le=100_000)


class ActionResultMapping(_Strict):
    message: str | None = Field(default=None, max_length=300)  # a template on the answer
    external_id: Field_ | None = None
    contact_external_id: Field_ | None = None
    contact_external_type: str | None = Field(default=None, max_length=64)
    contact_external_url: Field_ | None = None

    @model_validator(mode="after")
    def _check(self) -> ActionResultMapping:
        if self.message is not None:
            compile_template(self.message)
        return self


_BUILTIN_NAMES = {"contact_external_id", "agent_external_id", "now"}


class ActionMapping(_Strict):
    name: Identifier
    display: str = Field(min_length=1, max_length=100)
    description: str = Field(min_length=1, max_length=300)
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    path: PathTemplate
    # The JSON body: a string that is exactly "{input}" becomes the input's JSON value (null
    # when not given); other "{input}" placeholders are replaced inside the text. Values are
    # always placed into the parsed structure and encoded as JSON, never spliced as text.
    body: dict[str, Any] | None = None
    requires_contact: bool = False
    inputs: list[ActionInputMapping] = Field(default_factory=list)
    result: ActionResultMapping = Field(default_factory=ActionResultMapping)

    @property
    def names(self) -> set[str]:
        names = _BUILTIN_NAMES | {i.key for i in self.inputs}
        return names | {f"{i.key}_e164" for i in self.inputs if i.type == "phone"}

    @model_validator(mode="after")
    def _check(self) -> ActionMapping:
        keys = [i.key for i in self.inputs]
        if len(keys) != len(set(keys)):
            raise ValueError("inputs: duplicate key")
        unknown = path_names(self.path) - self.names
        if unknown:
            raise ValueError(f"path: unknown placeholder(s) {sorted(unknown)}")
        unknown = _body_names(self.body) - self.names
        if unknown:
            raise ValueError(f"body: unknown placeholder(s) {sorted(unknown)}")
        return self


def _body_names(value: Any) -> set[str]:
    if isinstance(value, str):
        names = set(_PLACEHOLDER.findall(value.replace("{{", "").replace("}}", "")))
        for name in names:
            if not re.fullmatch(_IDENT, name):
                raise ValueError(f"body: placeholder {{{name}}} must be a plain name")
        return names
    if isinstance(value, dict):
        return set().union(*(_body_names(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_body_names(v) for v in value)) if value else set()
    return set()


class IntegrationMeta(_Strict):
    name: Identifier = "rest"
    display_name: str = Field(default="Company API", min_length=1, max_length=100)
    description: str = Field(
        default="Contacts, interactions and actions from the company's own REST API.",
        min_length=1,
        max_length=300,
    )
    logo_url: HttpUrlText | None = None
    icon_url: HttpUrlText | None = None


class Mapping(_Strict):
    integration: IntegrationMeta = Field(default_factory=IntegrationMeta)
    api: ApiMapping
    auth: AuthMapping = Field(default_factory=AuthMapping)
    contacts: ContactsMapping
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
        return self


def load_mapping(path: Path | None) -> Mapping:
    path = path or EXAMPLE_MAPPING
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read mapping file {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"mapping file {path} is not valid TOML: {exc}") from None
    return parse_mapping(raw, str(path))


def parse_mapping(raw: dict[str, Any], where: str = "mapping") -> Mapping:
    try:
        return Mapping.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
            problems.append(f"{loc or '(top level)'}: {err['msg']}")
        raise ConfigurationError(
            f"invalid mapping file {where}: " + "; ".join(problems[:5])
        ) from None
