"""SOQL and SOSL literals: every value the bridge puts into a query goes through here.

Salesforce reads `'…'` string literals with backslash escapes and unquoted UTC datetimes; SOSL's
`FIND {…}` term has its own reserved characters. One tested function per kind of value, so no
caller ever formats a value into query text by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

__all__ = [
    "datetime_literal",
    "in_list",
    "parse_datetime",
    "select",
    "sosl_term",
    "string_literal",
]

_STRING_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
# SOSL reserved characters inside FIND {…}: each is escaped with a backslash.
_SOSL_RESERVED = frozenset("?&|!{}[]()^~*:\\\"'+-")
_MAX_LITERAL = 4000  # SOQL's limit for one string literal


def string_literal(value: str) -> str:
    """`value` as a quoted SOQL string literal. Control characters other than the escaped
    ones cannot appear in a literal, so they are dropped (they never match stored text)."""
    if len(value) > _MAX_LITERAL:
        raise ValueError(f"a SOQL string literal holds at most {_MAX_LITERAL} characters")
    out = []
    for char in value:
        escaped = _STRING_ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            continue
        else:
            out.append(char)
    return "'" + "".join(out) + "'"


def in_list(values: Iterable[str]) -> str:
    """`('a', 'b')` for an IN condition (at least one value)."""
    items = [string_literal(v) for v in values]
    if not items:
        raise ValueError("IN needs at least one value")
    return "(" + ", ".join(items) + ")"


def datetime_literal(epoch_seconds: int) -> str:
    """A SOQL datetime literal (UTC, `Z`: a `+` offset would need URL care)."""
    return datetime.fromtimestamp(int(epoch_seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(value: object) -> int | None:
    """Unix seconds of a Salesforce datetime (`2023-05-28T21:10:08.000+0000`), else None."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def sosl_term(value: str) -> str:
    """`value` escaped for SOSL's `FIND {…}`; whitespace collapses to single spaces."""
    words = " ".join(value.split())
    if not words:
        raise ValueError("a SOSL search term must not be empty")
    return "".join("\\" + c if c in _SOSL_RESERVED else c for c in words if c.isprintable())


def select(
    fields: str, sobject: str, where: Sequence[str] = (), *, order: str = "", limit: int
) -> str:
    """A SOQL query. `where` holds conditions built from this module's literals only; field
    and object names are the connector's own constants."""
    text = f"SELECT {fields} FROM {sobject}"  # noqa: S608 (SOQL of constants and literals)
    if where:
        text += " WHERE " + " AND ".join(where)
    if order:
        text += f" ORDER BY {order}"
    return f"{text} LIMIT {int(limit)}"
