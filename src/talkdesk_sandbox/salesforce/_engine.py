"""Running SOQL and SOSL against an `Org`: schema checks, the keyset planner, rendering, and
query locators (server-side cursors: single use, at most 10 open per user, 15 minutes idle).
"""

from __future__ import annotations

import itertools
import re
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._index import value_span
from ._org import OBJECTS, Org
from ._soql import (
    Query,
    SoqlError,
    evaluate,
    lower_bound,
    parse_query,
    parse_sosl,
    render_datetime,
)

__all__ = ["Engine"]

MAX_LOCATORS = 10
LOCATOR_IDLE = 900.0
DEFAULT_BATCH = 2000
WIDE_BATCH = 200
_WIDE_KINDS = ("text",)
_ADDRESS_PARTS = ("Street", "City", "State", "PostalCode", "Country")


@dataclass
class _Locator:
    user: str
    rows: list[dict[str, Any]]
    position: int
    batch: int
    total: int
    touched: float


class Engine:
    def __init__(self, org: Org, *, version: str) -> None:
        self.org = org
        self.version = version
        self._locators: OrderedDict[str, _Locator] = OrderedDict()
        self._locator_seq = itertools.count(1)

    # -- fields ---------------------------------------------------------------------------

    def _kind(self, sobject: str, path: str) -> str:
        """The type of a field path (`Account.Name`), or INVALID_FIELD."""
        schema = OBJECTS[sobject]
        head, _, rest = path.partition(".")
        match = next((f for f in schema if f.lower() == head.lower()), None)
        if match is None:
            raise SoqlError(
                "INVALID_FIELD",
                f"No such column '{head}' on entity '{sobject}'. If you are attempting to use "
                "a custom field, be sure to append the '__c' after the custom field name.",
            )
        kind = schema[match]
        if rest:
            if not kind.startswith("parent:"):
                raise SoqlError(
                    "INVALID_FIELD", f"Didn't understand relationship '{head}' in field path."
                )
            return self._kind(kind.split(":")[1], rest)
        if kind.startswith("parent:"):
            raise SoqlError("INVALID_FIELD", f"'{head}' is a relationship, not a field")
        return kind

    def _canonical(self, sobject: str, path: str) -> str:
        schema = OBJECTS[sobject]
        head, _, rest = path.partition(".")
        match = next(f for f in schema if f.lower() == head.lower())
        if not rest:
            return match
        return match + "." + self._canonical(schema[match].split(":")[1], rest)

    def _value(self, sobject: str, row: dict[str, Any], path: str) -> Any:
        head, _, rest = path.partition(".")
        kind = OBJECTS[sobject][head]
        if not rest:
            return row.get(head)
        _, parent, ref = kind.split(":")
        parent_id = row.get(ref)
        parent_row = self.org.get(parent_id) if isinstance(parent_id, str) else None
        return None if parent_row is None else self._value(parent, parent_row, rest)

    def _reader(self, sobject: str, row: dict[str, Any]) -> Callable[[str], Any]:
        return lambda path: self._value(sobject, row, path)

    # -- rendering ------------------------------------------------------------------------

    def _attributes(self, sobject: str, rid: str) -> dict[str, str]:
        return {
            "type": sobject,
            "url": f"/services/data/{self.version}/sobjects/{sobject}/{rid}",
        }

    def render(self, sobject: str, row: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"attributes": self._attributes(sobject, row["Id"])}
        for path in fields:
            self._put(out, sobject, row, path)
        return out

    def _put(self, out: dict[str, Any], sobject: str, row: dict[str, Any], path: str) -> None:
        head, _, rest = path.partition(".")
        kind = OBJECTS[sobject][head]
        if rest:
            _, parent, ref = kind.split(":")
            parent_id = row.get(ref)
            parent_row = self.org.get(parent_id) if isinstance(parent_id, str) else None
            if parent_row is None:
                out[head] = None
                return
            nested = out.get(head) or {"attributes": self._attributes(parent, parent_row["Id"])}
            self._put(nested, parent, parent_row, rest)
            out[head] = nested
            return
        out[head] = self._render_value(kind, row, head)

    @staticmethod
    def _render_value(kind: str, row: dict[str, Any], name: str) -> Any:
        if kind == "dt":
            return render_datetime(row.get(name))
        if kind.startswith("address:"):
            prefix = kind.split(":")[1]
            parts = {p: row.get(prefix + p) for p in _ADDRESS_PARTS}
            if not any(parts.values()):
                return None
            return {
                "street": parts["Street"],
                "city": parts["City"],
                "state": parts["State"],
                "postalCode": parts["PostalCode"],
                "country": parts["Country"],
                "stateCode": None,
                "countryCode": None,
                "latitude": None,
                "longitude": None,
                "geocodeAccuracy": None,
            }
        return row.get(name)

    # -- SOQL -----------------------------------------------------------------------------

    def _validate(self, q: Query) -> Query:
        match = next((o for o in OBJECTS if o.lower() == q.sobject.lower()), None)
        if match is None:
            raise SoqlError(
                "INVALID_TYPE",
                f"sObject type '{q.sobject}' is not supported. If you are attempting to use a "
                "custom object, be sure to append the '__c' after the entity name.",
            )
        q.sobject = match
        q.fields = [self._canonical(match, f) for f in q.fields if self._kind(match, f)]
        for order in q.order:
            self._kind(match, order.field)
        self._check_cond(match, q.where)
        return q

    def _check_cond(self, sobject: str, cond: Any) -> None:
        if cond is None:
            return
        for part in cond.parts:
            self._check_cond(sobject, part)
        if cond.field:
            kind = self._kind(sobject, cond.field)
            if kind.startswith("address:"):
                raise SoqlError(
                    "INVALID_FIELD", f"field '{cond.field}' can not be filtered in a query call"
                )

    def _matches(self, q: Query, all_rows: bool) -> list[dict[str, Any]]:
        sobject = q.sobject
        rows = self.org.rows(sobject)
        canonical_where = q.where

        def keep(row: dict[str, Any]) -> bool:
            if not all_rows and (row.get("IsDeleted") or row.get("IsArchived")):
                return False
            if canonical_where is None:
                return True
            return evaluate(
                canonical_where, self._reader_ci(sobject, row), exact=self._is_id(sobject)
            )

        wanted = None if q.limit is None else q.offset + q.limit
        keyset = [(o.field.lower(), o.descending) for o in q.order] == [
            ("systemmodstamp", False),
            ("id", False),
        ]
        if keyset and wanted is not None:
            # The index is sorted by (SystemModstamp, Id): start at the query's lower bound.
            keys = self.org.stores[sobject].index.sorted_keys("SystemModstamp")
            bound = lower_bound(q.where, "SystemModstamp")
            start = 0 if bound is None else bisect_left(keys, ((1, bound), ""))
            found = []
            for _, rid in itertools.islice(keys, start, None):
                row = rows[rid]
                if keep(row):
                    found.append(row)
                    if len(found) >= wanted:
                        break
            return found[q.offset :]
        candidates = self._lookup(q)
        pool = rows.values() if candidates is None else (rows[i] for i in candidates if i in rows)
        found = [row for row in pool if keep(row)]
        for order in reversed(q.order):
            nulls_last = order.nulls_last if order.nulls_last is not None else order.descending

            def key(row: dict[str, Any], field: str = order.field, nl: bool = nulls_last) -> Any:
                value = self._value_ci(sobject, row, field)
                if isinstance(value, str) and field.lower() != "id":
                    value = value.lower()
                return (value is None) != nl, value if value is not None else 0

            present = [r for r in found if self._value_ci(sobject, r, order.field) is not None]
            absent = [r for r in found if self._value_ci(sobject, r, order.field) is None]
            present.sort(key=key, reverse=order.descending)
            found = absent + present if not nulls_last else present + absent
        if wanted is not None:
            found = found[:wanted]
        return found[q.offset :]

    def _lookup(self, q: Query) -> set[str] | None:
        """Ids that can match, from an indexed `field = 'x'` or `field IN (...)` that the
        whole condition requires; None: scan every row."""
        cond = q.where
        parts = cond.parts if cond is not None and cond.op == "AND" else (cond,)
        index = self.org.stores[q.sobject].index
        for part in parts:
            if part is None or part.op not in ("=", "IN"):
                continue
            name = self._canonical(q.sobject, part.field)
            values = part.value if part.op == "IN" else (part.value,)
            if "." in name or not all(isinstance(v, str) for v in values):
                continue
            try:
                keys = index.sorted_keys(name)
            except KeyError:
                continue  # not an indexed field
            found: set[str] = set()
            for value in values:
                wanted = value.lower() if name == "Email" else value
                if name != "Email" and len(wanted) == 15:
                    return None  # a 15-character id: compared by prefix, so scan
                low, high = value_span(wanted)
                found.update(
                    rid for _, rid in keys[bisect_left(keys, low) : bisect_left(keys, high)]
                )
            return found
        return None

    def _is_id(self, sobject: str) -> Callable[[str], bool]:
        def exact(path: str) -> bool:
            try:
                kind = self._kind(sobject, path)
            except SoqlError:
                return False
            return kind == "id" or kind.startswith("ref:")

        return exact

    def _value_ci(self, sobject: str, row: dict[str, Any], path: str) -> Any:
        return self._value(sobject, row, self._canonical(sobject, path))

    def _reader_ci(self, sobject: str, row: dict[str, Any]) -> Callable[[str], Any]:
        return lambda path: self._value_ci(sobject, row, path)

    def query(
        self, text: str, *, all_rows: bool, user: str, batch: int | None, now: float
    ) -> dict[str, Any]:
        q = self._validate(parse_query(text))
        matches = self._matches(q, all_rows)
        if q.count:
            return {"totalSize": len(matches), "done": True, "records": []}
        rendered = [self.render(q.sobject, row, q.fields) for row in matches]
        size = DEFAULT_BATCH if batch is None else min(max(batch, 200), DEFAULT_BATCH)
        wide = sum(1 for f in q.fields if OBJECTS[q.sobject].get(f) in _WIDE_KINDS)
        if wide >= 2:
            size = min(size, WIDE_BATCH)  # wide rows come in short pages
        return self._page(_Locator(user, rendered, 0, size, len(rendered), now), now)

    def _page(self, loc: _Locator, now: float) -> dict[str, Any]:
        chunk = loc.rows[loc.position : loc.position + loc.batch]
        loc.position += len(chunk)
        body: dict[str, Any] = {"totalSize": loc.total, "done": True, "records": chunk}
        if loc.position < len(loc.rows):
            body["done"] = False
            name = f"01gHs{next(self._locator_seq):010d}AAA"
            loc.touched = now
            self._locators[name] = loc
            # Oldest locators of this user are released past 10 open ones.
            mine = [k for k, v in self._locators.items() if v.user == loc.user]
            for old in mine[:-MAX_LOCATORS]:
                del self._locators[old]
            body["nextRecordsUrl"] = f"/services/data/{self.version}/query/{name}-{loc.position}"
        return body

    def more(self, locator: str, *, user: str, now: float) -> dict[str, Any]:
        name, _, position = locator.rpartition("-")
        loc = self._locators.pop(name, None)
        if (
            loc is None
            or loc.user != user
            or now - loc.touched > LOCATOR_IDLE
            or not position.isdigit()
            or int(position) != loc.position
        ):
            raise SoqlError("INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(loc, now)

    # -- SOSL -----------------------------------------------------------------------------

    def search(self, text: str, *, now: float, index_lag: float) -> dict[str, Any]:
        s = parse_sosl(text)
        out: list[dict[str, Any]] = []
        scopes = {
            "PHONE": ("phone",),
            "EMAIL": ("Email",),
            "NAME": ("Name",),
            "ALL": ("phone", "Email", "Name"),
        }[s.scope]
        for sobject, fields, where, limit in s.returning:
            q = self._validate(Query(fields, sobject, where))
            matched = 0
            for row in self.org.rows(q.sobject).values():
                if row.get("IsDeleted") or (row.get("SystemModstamp") or 0) + index_lag > now:
                    continue  # the search index has not caught up with this row yet
                if not self._hit(q.sobject, row, s.terms, scopes):
                    continue
                if q.where is not None and not evaluate(
                    q.where, self._reader_ci(q.sobject, row), exact=self._is_id(q.sobject)
                ):
                    continue
                out.append(self.render(q.sobject, row, q.fields))
                matched += 1
                if (limit is not None and matched >= limit) or len(out) >= s.limit:
                    break
        return {"searchRecords": out[: s.limit]}

    @staticmethod
    def _hit(sobject: str, row: dict[str, Any], terms: list[str], scopes: tuple[str, ...]) -> bool:
        schema = OBJECTS[sobject]
        for term in terms:
            digits = re.sub(r"\D", "", term)
            for name, kind in schema.items():
                value = row.get(name)
                if not isinstance(value, str):
                    continue
                if kind == "phone" and "phone" in scopes and len(digits) >= 7:
                    stored = re.sub(r"\D", "", value)
                    if len(stored) >= 7 and (stored.endswith(digits) or digits.endswith(stored)):
                        return True
                elif name in scopes and term.lower() in value.lower():
                    return True
        return False
