"""Intercom's search query language: grammar, validation, day-granular dates, cursors.

Shared by contacts, conversations and tickets. A query compiles into the kit's ``Query``: a
predicate (a plain closure over the public object dict) and, when the query only constrains one
numeric or date field, a *plan* of key intervals that the ``SortedIndex`` answers with
``bisect`` alone, so paging 50k records costs O(log n + page).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .._index import (
    HIGH_ID,
    LOW_ID,
    NEG_INF,
    POS_INF,
    Interval,
    Key,
    Query,
    SortedIndex,
    intersect_intervals,
    merge_intervals,
    sort_key,
)

__all__ = [
    "BOOLEAN",
    "CUSTOM",
    "DATE",
    "INTEGER",
    "MAX_FILTERS_PER_GROUP",
    "MAX_GROUP_DEPTH",
    "STRING",
    "TAG",
    "DayCalendar",
    "Field",
    "Schema",
    "SearchError",
    "SearchIndex",
    "compile_query",
    "decode_cursor",
    "encode_cursor",
]

MAX_GROUP_DEPTH = 2
MAX_FILTERS_PER_GROUP = 15

STRING = "string"
INTEGER = "integer"
DATE = "date"
BOOLEAN = "boolean"
TAG = "tag"  # string-valued list where only = and != are allowed (contacts' tag_id)
CUSTOM = "custom"  # custom_attributes.*: type follows the value

_STRING_OPS = frozenset({"=", "!=", "IN", "NIN", "~", "!~", "^", "$"})
_INTEGER_OPS = frozenset({"=", "!=", "IN", "NIN", "<", ">", "<=", ">="})
_ALL_OPS = _STRING_OPS | _INTEGER_OPS
_OPS_BY_TYPE: dict[str, frozenset[str]] = {
    STRING: _STRING_OPS,
    INTEGER: _INTEGER_OPS,
    BOOLEAN: frozenset({"=", "!=", "IN", "NIN"}),
    TAG: frozenset({"=", "!="}),
    CUSTOM: _ALL_OPS,
}
# Contacts (2.7-2.16) only accept these on timestamps and match them by calendar day.
_DAY_DATE_OPS = frozenset({"=", "<", ">"})

Predicate = Callable[[Mapping[str, Any]], bool]


class SearchError(Exception):
    """A rejected query; the app turns it into a 400 error.list."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class Field:
    type: str
    get: Callable[[Mapping[str, Any]], Any]
    multi: bool = False  # the getter returns a list; a filter matches when any element does


class Schema:
    """Searchable fields of one resource and how its timestamps compare."""

    def __init__(
        self,
        fields: Mapping[str, Field],
        *,
        day_granular_dates: bool,
        custom_prefix: str | None = "custom_attributes.",
    ) -> None:
        self.fields = dict(fields)
        self.day_granular_dates = day_granular_dates
        self.custom_prefix = custom_prefix

    def field(self, name: str) -> Field | None:
        found = self.fields.get(name)
        if found is not None:
            return found
        prefix = self.custom_prefix
        if prefix and name.startswith(prefix) and len(name) > len(prefix):
            attr = name[len(prefix) :]
            found = Field(CUSTOM, lambda r: (r.get("custom_attributes") or {}).get(attr))
            self.fields[name] = found  # cached so sort indexes keyed by name stay stable
            return found
        return None

    def sort_value(self, field: Field, record: Mapping[str, Any]) -> Any:
        value = field.get(record)
        if field.multi:
            return value[0] if value else None
        return value


class DayCalendar:
    """Calendar-day boundaries in the workspace timezone (unix seconds)."""

    def __init__(self, timezone: str) -> None:
        self.tz = ZoneInfo(timezone)
        self._cache: dict[int, tuple[int, int]] = {}

    def bounds(self, ts: int) -> tuple[int, int]:
        """Start of ``ts``'s local day and start of the next local day."""
        hit = self._cache.get(ts)
        if hit is not None:
            return hit
        day = datetime.fromtimestamp(ts, self.tz).date()
        nxt = day + timedelta(days=1)
        start = datetime(day.year, day.month, day.day, tzinfo=self.tz).timestamp()
        end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=self.tz).timestamp()
        result = (math.floor(start), math.floor(end))
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[ts] = result
        return result


def _num_key(value: float) -> tuple[Any, ...]:
    return (1, value)


def _and(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]

    def match_all(record: Mapping[str, Any]) -> bool:
        return all(p(record) for p in preds)

    return match_all


def _or(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]

    def match_any(record: Mapping[str, Any]) -> bool:
        return any(p(record) for p in preds)

    return match_any


class _Compiler:
    def __init__(self, schema: Schema, calendar: DayCalendar) -> None:
        self.schema = schema
        self.calendar = calendar

    def node(
        self, q: Any, groups_above: int
    ) -> tuple[Predicate, tuple[str, list[Interval]] | None]:
        if not isinstance(q, dict):
            raise SearchError("bad_request", "Each query element must be an object")
        if "field" in q:
            return self.leaf(q)
        op = q.get("operator")
        if op not in ("AND", "OR"):
            raise SearchError(
                "bad_request", "A query group's operator must be AND or OR", "operator"
            )
        if groups_above + 1 > MAX_GROUP_DEPTH:
            raise SearchError(
                "bad_request", f"Queries can be nested at most {MAX_GROUP_DEPTH} levels deep"
            )
        children = q.get("value")
        if not isinstance(children, list) or not children:
            raise SearchError("bad_request", "A query group needs a non-empty list as value")
        if len(children) > MAX_FILTERS_PER_GROUP:
            raise SearchError(
                "bad_request",
                f"A query group can contain at most {MAX_FILTERS_PER_GROUP} filters",
            )
        compiled = [self.node(child, groups_above + 1) for child in children]
        preds = [c[0] for c in compiled]
        plans = [c[1] for c in compiled]
        plan: tuple[str, list[Interval]] | None = None
        if all(p is not None for p in plans):
            fields = {p[0] for p in plans if p is not None}
            if len(fields) == 1:
                name = fields.pop()
                spans = [p[1] for p in plans if p is not None]
                if op == "OR":
                    plan = (name, merge_intervals(i for s in spans for i in s))
                else:
                    acc = spans[0]
                    for s in spans[1:]:
                        acc = intersect_intervals(acc, s)
                    plan = (name, acc)
        return (_and(preds) if op == "AND" else _or(preds)), plan

    def leaf(self, q: dict[str, Any]) -> tuple[Predicate, tuple[str, list[Interval]] | None]:
        name = q.get("field")
        op = q.get("operator")
        if not isinstance(name, str) or not isinstance(op, str) or "value" not in q:
            raise SearchError("bad_request", "A filter needs field, operator and value")
        field = self.schema.field(name)
        if field is None:
            raise SearchError("parameter_invalid", f"{name} is not a searchable field", name)
        value = q["value"]
        if field.type == DATE:
            return self.date_leaf(name, field, op, value)
        allowed = _OPS_BY_TYPE[field.type]
        if op not in allowed:
            raise SearchError(
                "parameter_invalid", f"Operator {op} is not supported on field {name}", name
            )
        if field.type == INTEGER:
            return self.integer_leaf(name, field, op, value)
        if field.type == BOOLEAN:
            return self.boolean_leaf(name, field, op, value), None
        if field.type == CUSTOM:
            return self.custom_leaf(name, field, op, value), None
        return self.string_leaf(name, field, op, value), None

    # -- value coercion -------------------------------------------------------------------

    @staticmethod
    def _int(name: str, value: Any, *, nullable: bool) -> int | None:
        if value is None and nullable:
            return None
        if isinstance(value, bool):
            raise SearchError("parameter_invalid", f"{name} expects an integer value", name)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        raise SearchError("parameter_invalid", f"{name} expects an integer value", name)

    @staticmethod
    def _str(name: str, value: Any, *, nullable: bool) -> str | None:
        if value is None and nullable:
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # ids are often sent as numbers
        raise SearchError("parameter_invalid", f"{name} expects a string value", name)

    @staticmethod
    def _bool(name: str, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return bool(value == "true")
        raise SearchError("parameter_invalid", f"{name} expects a boolean value", name)

    @staticmethod
    def _list(name: str, op: str, value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise SearchError("parameter_invalid", f"{op} on {name} expects an array", name)
        return value

    # -- leaves ---------------------------------------------------------------------------

    def string_leaf(self, name: str, field: Field, op: str, value: Any) -> Predicate:
        get, multi = field.get, field.multi
        if op in ("IN", "NIN"):
            wanted = {self._str(name, v, nullable=True) for v in self._list(name, op, value)}
            if multi:

                def inside(r: Mapping[str, Any]) -> bool:
                    return any(x in wanted for x in get(r))

            else:

                def inside(r: Mapping[str, Any]) -> bool:
                    return get(r) in wanted

            return inside if op == "IN" else _negate(inside)
        if op in ("=", "!="):
            target = self._str(name, value, nullable=True)
            if multi:

                def equal(r: Mapping[str, Any]) -> bool:
                    return target in get(r)

            else:

                def equal(r: Mapping[str, Any]) -> bool:
                    return bool(get(r) == target)

            return equal if op == "=" else _negate(equal)
        needle = self._str(name, value, nullable=False)
        assert needle is not None
        # Text operators are case-insensitive, like the vendor's analysed string fields.
        needle = needle.lower()
        if op in ("~", "!~"):

            def test(s: str) -> bool:
                return needle in s

        elif op == "^":

            def test(s: str) -> bool:
                return s.startswith(needle)

        else:

            def test(s: str) -> bool:
                return s.endswith(needle)

        if multi:

            def text(r: Mapping[str, Any]) -> bool:
                return any(isinstance(x, str) and test(x.lower()) for x in get(r))

        else:

            def text(r: Mapping[str, Any]) -> bool:
                x = get(r)
                return isinstance(x, str) and test(x.lower())

        return _negate(text) if op == "!~" else text

    def integer_leaf(
        self, name: str, field: Field, op: str, value: Any, *, exact_date: bool = False
    ) -> tuple[Predicate, tuple[str, list[Interval]] | None]:
        get = field.get
        if op in ("IN", "NIN"):
            wanted = {self._int(name, v, nullable=True) for v in self._list(name, op, value)}

            def inside(r: Mapping[str, Any]) -> bool:
                return get(r) in wanted

            return (inside if op == "IN" else _negate(inside)), None
        target = self._int(name, value, nullable=op in ("=", "!=") and not exact_date)
        if target is None:

            def is_null(r: Mapping[str, Any]) -> bool:
                return get(r) is None

            return (is_null if op == "=" else _negate(is_null)), None
        t = target
        preds: dict[str, Predicate] = {
            "=": lambda r: get(r) == t,
            "!=": lambda r: get(r) != t,
            "<": lambda r: (x := get(r)) is not None and x < t,
            ">": lambda r: (x := get(r)) is not None and x > t,
            "<=": lambda r: (x := get(r)) is not None and x <= t,
            ">=": lambda r: (x := get(r)) is not None and x >= t,
        }
        at = (_num_key(t), LOW_ID)
        after = (_num_key(t), HIGH_ID)
        intervals: dict[str, Interval] = {
            "=": (at, after),
            "<": (NEG_INF, at),
            ">": (after, POS_INF),
            "<=": (NEG_INF, after),
            ">=": (at, POS_INF),
        }
        span = intervals.get(op)
        plan = None if span is None or field.multi else (name, [span])
        return preds[op], plan

    def date_leaf(
        self, name: str, field: Field, op: str, value: Any
    ) -> tuple[Predicate, tuple[str, list[Interval]] | None]:
        if not self.schema.day_granular_dates:
            if op not in _INTEGER_OPS:
                raise SearchError(
                    "parameter_invalid", f"Operator {op} is not supported on field {name}", name
                )
            return self.integer_leaf(name, field, op, value, exact_date=True)
        if op not in _DAY_DATE_OPS:
            raise SearchError(
                "parameter_invalid",
                f"Operator {op} is not supported on date field {name}; use =, < or >",
                name,
            )
        ts = self._int(name, value, nullable=False)
        assert ts is not None
        # Day granularity: the value is truncated to its local calendar day first.
        start, end = self.calendar.bounds(ts)
        get = field.get
        if op == "=":

            def pred(r: Mapping[str, Any]) -> bool:
                x = get(r)
                return x is not None and start <= x < end

            span: Interval = ((_num_key(start), LOW_ID), (_num_key(end), LOW_ID))
        elif op == ">":

            def pred(r: Mapping[str, Any]) -> bool:
                x = get(r)
                return x is not None and x >= end

            span = ((_num_key(end), LOW_ID), POS_INF)
        else:

            def pred(r: Mapping[str, Any]) -> bool:
                x = get(r)
                return x is not None and x < start

            span = (NEG_INF, (_num_key(start), LOW_ID))
        return pred, (None if field.multi else (name, [span]))

    def boolean_leaf(self, name: str, field: Field, op: str, value: Any) -> Predicate:
        get = field.get
        if op in ("IN", "NIN"):
            wanted = {self._bool(name, v) for v in self._list(name, op, value)}

            def inside(r: Mapping[str, Any]) -> bool:
                x = get(r)
                return x is not None and bool(x) in wanted

            return inside if op == "IN" else _negate(inside)
        target = self._bool(name, value)

        def equal(r: Mapping[str, Any]) -> bool:
            return bool(get(r) == target)

        return equal if op == "=" else _negate(equal)

    def custom_leaf(self, name: str, field: Field, op: str, value: Any) -> Predicate:
        get = field.get
        if op in ("IN", "NIN"):
            wanted = {str(v) for v in self._list(name, op, value)}

            def inside(r: Mapping[str, Any]) -> bool:
                x = get(r)
                return x is not None and str(x) in wanted

            return inside if op == "IN" else _negate(inside)
        if op in ("=", "!="):

            def equal(r: Mapping[str, Any]) -> bool:
                x = get(r)
                return x == value or (x is not None and value is not None and str(x) == str(value))

            return equal if op == "=" else _negate(equal)
        if op in ("<", ">", "<=", ">="):
            t = self._int(name, value, nullable=False) if not isinstance(value, float) else value
            assert t is not None
            cmp: Callable[[Any], bool] = {
                "<": lambda x: x < t,
                ">": lambda x: x > t,
                "<=": lambda x: x <= t,
                ">=": lambda x: x >= t,
            }[op]

            def numeric(r: Mapping[str, Any]) -> bool:
                x = get(r)
                return isinstance(x, int | float) and not isinstance(x, bool) and cmp(x)

            return numeric
        return self.string_leaf(name, Field(STRING, _stringify(get)), op, value)


def _stringify(get: Callable[[Mapping[str, Any]], Any]) -> Callable[[Mapping[str, Any]], Any]:
    def as_text(r: Mapping[str, Any]) -> Any:
        x = get(r)
        return x if x is None or isinstance(x, str) else str(x)

    return as_text


def _negate(pred: Predicate) -> Predicate:
    def negated(r: Mapping[str, Any]) -> bool:
        return not pred(r)

    return negated


def compile_query(query: Any, schema: Schema, calendar: DayCalendar) -> Query:
    """Validate and compile a search ``query`` object; raises SearchError when invalid."""
    if query is None:
        raise SearchError("parameter_invalid", "query is required", "query")
    predicate, plan = _Compiler(schema, calendar).node(query, 0)
    canonical = json.dumps(query, sort_keys=True, separators=(",", ":"), default=str)
    return Query(predicate=predicate, canonical=canonical, plan=plan)


# -- cursors --------------------------------------------------------------------------------


def encode_cursor(field: str, order: str, value: Any, record_id: str, page: int) -> str:
    """Stateless cursor: where the last page ended in the current sort (plus its page number)."""
    raw = json.dumps([field, order, value, record_id, page], separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def decode_cursor(cursor: Any, field: str, order: str) -> tuple[Key, int]:
    """Return the sort key after which the next page starts, and the previous page number."""
    try:
        if not isinstance(cursor, str) or not cursor:
            raise ValueError("cursor must be a non-empty string")
        decoded = json.loads(base64.b64decode(cursor.encode(), validate=True))
        c_field, c_order, value, record_id, page = decoded
        if not isinstance(record_id, str) or not isinstance(page, int) or page < 1:
            raise ValueError("bad cursor payload")
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise SearchError("client_error", "The starting_after cursor is invalid") from exc
    if c_field != field or c_order != order:
        # The cursor encodes a position in one particular sort; reusing it elsewhere is an error.
        raise SearchError("client_error", "The starting_after cursor does not match this sort")
    return (sort_key(value), record_id), page


# -- index ----------------------------------------------------------------------------------


class SearchIndex(SortedIndex[dict[str, Any]]):
    """The kit's ``SortedIndex`` over one resource's public objects, sorted by its schema's
    fields (a multi-valued field sorts by its first value)."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        super().__init__(self._sort_getter)

    def _sort_getter(self, name: str) -> Callable[[Any], Any] | None:
        field = self.schema.field(name)
        if field is None:
            return None
        value_of = self.schema.sort_value
        return lambda record: value_of(field, record)
