"""HubSpot CRM v3 objects as the API renders them, the error envelope, and the search language
(filter groups compiled into the kit's ``Query``)."""

from __future__ import annotations

import fnmatch
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import phonenumbers

from .._index import Query

__all__ = [
    "ASSOCIATION_TYPES",
    "CONTACT_DEFAULTS",
    "ENGAGEMENT_TYPES",
    "NUMERIC",
    "ApiError",
    "Search",
    "calculated_phones",
    "error_body",
    "iso",
    "parse_search",
    "render",
    "stamp_of",
]

# Properties a search or a list returns when none are named.
CONTACT_DEFAULTS = ("firstname", "lastname", "email", "createdate", "lastmodifieddate",
                    "hs_object_id")  # fmt: skip
OBJECT_DEFAULTS = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")
ENGAGEMENT_TYPES = ("calls", "notes", "emails", "meetings")
# (object type) -> association type id from that object to a contact, and back.
ASSOCIATION_TYPES = {"notes": 202, "calls": 194, "emails": 198, "meetings": 200, "tickets": 16}
CONTACT_TO = {"notes": 201, "calls": 193, "emails": 197, "meetings": 199, "tickets": 15}
# Properties compared as numbers (epoch milliseconds, ids), whatever their text looks like.
NUMERIC = frozenset({"hs_object_id", "lastmodifieddate", "createdate", "hs_lastmodifieddate",
                     "hs_createdate", "hs_timestamp"})  # fmt: skip
MAX_GROUPS, MAX_FILTERS, MAX_TOTAL_FILTERS = 5, 6, 18
MAX_RESULTS = 10_000
_OPERATORS = frozenset({"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN",
                        "HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN",
                        "NOT_CONTAINS_TOKEN"})  # fmt: skip
_TOKENS = re.compile(r"[;,\s]+")


class ApiError(Exception):
    """An answer in HubSpot's error envelope."""

    def __init__(self, status: int, message: str, category: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.category, self.extra = status, message, category, extra

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.category, **self.extra)


def error_body(message: str, category: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }


def validation(message: str) -> ApiError:
    return ApiError(400, message, "VALIDATION_ERROR")


def iso(ms: int) -> str:
    """HubSpot's datetime text: ISO-8601 UTC with milliseconds."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{ms % 1000:03d}Z"
    )


def stamp_of(value: Any) -> int | None:
    """Epoch ms of a filter value or property: digits, or ISO-8601 text."""
    if value is None:
        return None
    text = str(value).strip()
    if re.fullmatch(r"-?[0-9]{1,19}", text):
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def calculated_phones(raw: str | None, prefix: str) -> dict[str, str]:
    """HubSpot's calculated forms of a phone property (`hs_calculated_phone_number`...):
    E.164, the region, and the searchable national and international digits."""
    if not raw:
        return {}
    try:
        parsed = phonenumbers.parse(raw, "US")
    except phonenumbers.NumberParseException:
        return {}
    if not phonenumbers.is_possible_number(parsed):
        return {}
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    national = str(parsed.national_number)
    kind = "phone_number" if prefix == "phone" else "mobile_number"
    region = phonenumbers.region_code_for_number(parsed) or ""
    return {
        f"hs_calculated_{kind}": e164,
        f"hs_calculated_{kind}_country_code": region,
        f"hs_searchable_calculated_{kind}": national,
        f"hs_searchable_calculated_international_{kind}": e164.lstrip("+"),
    }


def render(record: Mapping[str, Any], properties: Iterable[str] | None, defaults: Iterable[str],
           *, associations: Mapping[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """The API's view of a stored record: the named properties (unknown ones dropped, known
    but unset ones null), or the defaults."""
    names = list(properties) if properties else list(defaults)
    props = record["properties"]
    out: dict[str, Any] = {
        "id": record["id"],
        "properties": {n: props.get(n) for n in dict.fromkeys(names) if n in props or n in _ALWAYS},
        "createdAt": record["createdAt"],
        "updatedAt": record["updatedAt"],
        "archived": record.get("archived", False),
    }
    if record.get("archivedAt"):
        out["archivedAt"] = record["archivedAt"]
    if associations:
        out["associations"] = associations
    return out


# Rendered as null when unset (HubSpot shows the properties a portal defines).
_ALWAYS = frozenset({
    "firstname", "lastname", "email", "phone", "mobilephone", "company", "jobtitle", "address",
    "city", "state", "zip", "country", "website", "twitterhandle", "hs_additional_emails",
    "hs_merged_object_ids", "hubspot_owner_id", "hs_calculated_phone_number",
    "hs_calculated_mobile_number", "hs_searchable_calculated_phone_number",
    "hs_searchable_calculated_mobile_number", "subject", "content", "hs_pipeline",
    "hs_pipeline_stage", "hs_ticket_priority", "hs_call_title", "hs_call_body",
    "hs_call_status", "hs_call_direction", "hs_call_duration", "hs_note_body",
    "hs_email_subject", "hs_email_text", "hs_meeting_title", "hs_meeting_body",
    "hs_meeting_start_time", "hs_timestamp",
})  # fmt: skip


# -- search ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Filter:
    prop: str
    operator: str
    value: Any
    high: Any
    values: tuple[Any, ...]

    def canonical(self) -> str:
        return f"{self.prop}|{self.operator}|{self.value}|{self.high}|{self.values}"


def _comparable(prop: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    if prop in NUMERIC:
        return stamp_of(value)
    return str(value).lower()


def _test(f: _Filter, props: Mapping[str, Any]) -> bool:
    raw = props.get(f.prop)
    have = _comparable(f.prop, raw)
    op = f.operator
    if op == "HAS_PROPERTY":
        return have is not None
    if op == "NOT_HAS_PROPERTY":
        return have is None
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        tokens = _TOKENS.split(str(raw or "").lower())
        pattern = str(f.value or "").lower()
        found = any(fnmatch.fnmatchcase(t, pattern) for t in tokens if t)
        return found if op == "CONTAINS_TOKEN" else not found
    if op in ("IN", "NOT_IN"):
        wanted = {_comparable(f.prop, v) for v in f.values}
        return bool((have in wanted) == (op == "IN"))
    want = _comparable(f.prop, f.value)
    if op == "NEQ":
        return bool(have != want)
    if have is None or want is None:
        return False
    try:
        if op == "EQ":
            return bool(have == want)
        if op == "LT":
            return bool(have < want)
        if op == "LTE":
            return bool(have <= want)
        if op == "GT":
            return bool(have > want)
        if op == "GTE":
            return bool(have >= want)
        if op == "BETWEEN":
            high = _comparable(f.prop, f.high)
            return high is not None and bool(want <= have <= high)
    except TypeError:
        return False
    return False


@dataclass(slots=True)
class Search:
    """A parsed search body. ``query`` is the filter groups without the id lower bound that
    a keyset walk (sort ``hs_object_id`` ascending) adds; ``id_above`` is that bound."""

    query: Query | None
    sort: str
    descending: bool
    properties: list[str]
    limit: int
    offset: int
    id_above: int | None


def _filter(raw: Any) -> _Filter:
    if not isinstance(raw, dict) or not isinstance(raw.get("propertyName"), str):
        raise validation("Invalid input JSON on line 1: a filter needs a propertyName")
    op = raw.get("operator", "EQ")
    if op not in _OPERATORS:
        raise validation(f"Invalid input JSON: unknown operator {op!r}")
    values = raw.get("values") or ()
    if not isinstance(values, list | tuple):
        raise validation("Invalid input JSON: values must be a list")
    return _Filter(raw["propertyName"], op, raw.get("value"), raw.get("highValue"), tuple(values))


def parse_search(body: Any, defaults: Iterable[str], *, max_results: int = MAX_RESULTS) -> Search:
    """The search request, or HubSpot's 400s: filter limits, one sort, limit > 200, the
    offset cap."""
    if not isinstance(body, dict):
        raise validation("Invalid input JSON: the body must be an object")
    groups_raw = body.get("filterGroups") or []
    if not isinstance(groups_raw, list):
        raise validation("Invalid input JSON: filterGroups must be a list")
    groups: list[list[_Filter]] = []
    for group in groups_raw:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise validation("Invalid input JSON: a filter group needs filters")
        groups.append([_filter(f) for f in filters])
    total = sum(len(g) for g in groups)
    if (
        len(groups) > MAX_GROUPS
        or any(len(g) > MAX_FILTERS for g in groups)
        or (total > MAX_TOTAL_FILTERS)
    ):
        raise validation(
            f"Too many filters: at most {MAX_GROUPS} filterGroups, {MAX_FILTERS} filters in "
            f"each and {MAX_TOTAL_FILTERS} in all"
        )
    sorts = body.get("sorts") or []
    if not isinstance(sorts, list) or len(sorts) > 1:
        raise validation("Only one sort is allowed")
    sort, descending = "createdate", False
    if sorts:
        first = sorts[0]
        if isinstance(first, str):
            sort, descending = first.lstrip("-"), first.startswith("-")
        elif isinstance(first, dict) and isinstance(first.get("propertyName"), str):
            sort = first["propertyName"]
            descending = str(first.get("direction", "ASCENDING")).upper() == "DESCENDING"
        else:
            raise validation("Invalid input JSON: bad sort")
    limit = body.get("limit", 10)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= 200:
        raise validation("limit must be between 1 and 200")
    after = body.get("after")
    try:
        offset = int(after) if after not in (None, "") else 0
    except (TypeError, ValueError):
        raise validation("after must be an integer offset") from None
    if offset < 0:
        raise validation("after must be an integer offset")
    if offset >= max_results:
        raise validation(
            f"Cannot page past the {max_results} results of a search: narrow the query"
        )
    properties = body.get("properties") or []
    if not isinstance(properties, list) or not all(isinstance(p, str) for p in properties):
        raise validation("properties must be a list of strings")
    # The keyset walk: one group whose hs_object_id GT/GTE bound the index can bisect to.
    id_above = None
    if len(groups) == 1 and sort == "hs_object_id" and not descending:
        for f in groups[0]:
            bound = stamp_of(f.value) if f.prop == "hs_object_id" else None
            if bound is not None and f.operator in ("GT", "GTE"):
                id_above = bound if f.operator == "GT" else bound - 1
                groups = [[g for g in groups[0] if g is not f]]
                break
    query = _compile(groups)
    return Search(query, sort, descending, list(properties) or list(defaults), limit, offset,
                  id_above)  # fmt: skip


def _compile(groups: list[list[_Filter]]) -> Query | None:
    groups = [g for g in groups if g]
    if not groups:
        return None
    canonical = " OR ".join(sorted(" AND ".join(sorted(f.canonical() for f in g)) for g in groups))

    def predicate(record: Mapping[str, Any]) -> bool:
        props = record["properties"]
        return any(all(_test(f, props) for f in g) for g in groups)

    return Query(predicate, canonical)


def property_getter(name: str) -> Callable[[Any], Any] | None:
    """The sort value of a property (numbers for stamps and ids), for the kit's index."""

    def get(record: Mapping[str, Any]) -> Any:
        return _comparable(name, record["properties"].get(name))

    return get
