"""A small, real SOQL (and SOSL) subset: tokenizer, parser, evaluator.

Supported: `SELECT` fields (parent paths such as `Account.Name`, compound addresses) `FROM` one
object, `WHERE` with `AND`/`OR`/`NOT`/parentheses (mixing AND and OR needs parentheses, as in
Salesforce), `= != <> < <= > >= IN NOT IN LIKE`, `null`, `true`/`false`, numbers, string
literals with Salesforce's escapes, date and datetime literals; multi-key `ORDER BY` with
`ASC`/`DESC`/`NULLS FIRST|LAST`; `LIMIT`; `OFFSET` up to 2,000. Anything else is a
`MALFORMED_QUERY`, as Salesforce answers. Datetimes compare in whole seconds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

__all__ = [
    "Cond",
    "Order",
    "Query",
    "SoqlError",
    "Sosl",
    "parse_datetime_literal",
    "parse_query",
    "parse_sosl",
]

MAX_OFFSET = 2000
MAX_SOQL = 100_000


class SoqlError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def malformed(message: str) -> SoqlError:
    return SoqlError("MALFORMED_QUERY", message)


_TOKEN = re.compile(
    r"""\s*(?:
    (?P<str>'(?:[^'\\]|\\.)*')
  | (?P<dt>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})(?![\dT])
  | (?P<num>-?\d+(?:\.\d+)?)(?![\w.])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
    )""",
    re.VERBOSE,
)
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}
_KEYWORDS = frozenset(
    [
        "SELECT",
        "FROM",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "IN",
        "LIKE",
        "ORDER",
        "BY",
        "ASC",
        "DESC",
        "NULLS",
        "FIRST",
        "LAST",
        "LIMIT",
        "OFFSET",
        "NULL",
        "TRUE",
        "FALSE",
    ]
)


@dataclass(frozen=True, slots=True)
class Tok:
    kind: str
    text: str
    value: Any = None


def _unescape(body: str, *, like: bool = False) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1 : i + 2]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6]):
            out.append(chr(int(body[i + 2 : i + 6], 16)))
            i += 6
        elif nxt in ("%", "_"):
            out.append("\\" + nxt)  # meaningful to LIKE only; kept escaped
            i += 2
        else:
            raise malformed(f"Invalid string literal: bad escape \\{nxt}")
    return "".join(out)


def parse_datetime_literal(text: str) -> int:
    t = text.replace("Z", "+00:00")
    if len(t) > 5 and t[-5] in "+-" and t[-3] != ":":
        t = t[:-2] + ":" + t[-2:]
    try:
        return int(datetime.fromisoformat(t).timestamp())
    except ValueError:
        raise malformed(f"invalid datetime literal {text}") from None


def tokenize(text: str) -> list[Tok]:
    if len(text) > MAX_SOQL:
        raise SoqlError("MALFORMED_QUERY", "query is longer than 100,000 characters")
    tokens: list[Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            near = text[pos : pos + 20].strip()
            raise malformed(f"unexpected token: '{near}'")
        pos = m.end()
        kind = m.lastgroup or ""
        raw = m.group(kind)
        if kind == "str":
            tokens.append(Tok("str", raw, _unescape(raw[1:-1])))
        elif kind == "dt":
            tokens.append(Tok("dt", raw, parse_datetime_literal(raw)))
        elif kind == "date":
            try:
                tokens.append(Tok("date", raw, date.fromisoformat(raw)))
            except ValueError:
                raise malformed(f"invalid date literal {raw}") from None
        elif kind == "num":
            tokens.append(Tok("num", raw, float(raw) if "." in raw else int(raw)))
        elif kind == "name" and raw.upper() in _KEYWORDS:
            tokens.append(Tok("kw", raw.upper()))
        else:
            tokens.append(Tok(kind, raw))
    return tokens


# --- the tree -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cond:
    """A boolean node: `op` is AND/OR/NOT or a comparison on `field`."""

    op: str
    field: str = ""
    value: Any = None
    parts: tuple[Cond, ...] = ()


@dataclass(frozen=True, slots=True)
class Order:
    field: str
    descending: bool = False
    nulls_last: bool | None = None


@dataclass(slots=True)
class Query:
    fields: list[str]
    sobject: str
    where: Cond | None = None
    order: list[Order] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0
    count: bool = False


class _Parser:
    def __init__(self, tokens: Sequence[Tok]) -> None:
        self.t = list(tokens)
        self.i = 0

    def peek(self, kind: str | None = None, text: str | None = None) -> bool:
        if self.i >= len(self.t):
            return False
        tok = self.t[self.i]
        return (kind is None or tok.kind == kind) and (text is None or tok.text == text)

    def kw(self, word: str) -> bool:
        return self.peek("kw", word)

    def take(self, kind: str | None = None, text: str | None = None, what: str = "") -> Tok:
        if not self.peek(kind, text):
            got = self.t[self.i].text if self.i < len(self.t) else "end of query"
            raise malformed(f"expecting {what or text or kind}, found '{got}'")
        tok = self.t[self.i]
        self.i += 1
        return tok

    def name(self, what: str) -> str:
        return self.take("name", what=what).text

    def query(self) -> Query:
        self.take("kw", "SELECT")
        fields: list[str] = []
        count = False
        if self.peek("name", "COUNT") or self.peek("name", "count"):
            self.i += 1
            self.take("punct", "(")
            self.take("punct", ")")
            count = True
        else:
            fields.append(self.name("field"))
            while self.peek("punct", ","):
                self.i += 1
                fields.append(self.name("field"))
        self.take("kw", "FROM")
        q = Query(fields, self.name("object"), count=count)
        if self.kw("WHERE"):
            self.i += 1
            q.where = self.condition()
        if self.kw("ORDER"):
            self.i += 1
            self.take("kw", "BY")
            q.order.append(self.order())
            while self.peek("punct", ","):
                self.i += 1
                q.order.append(self.order())
        if self.kw("LIMIT"):
            self.i += 1
            q.limit = self.integer("LIMIT")
        if self.kw("OFFSET"):
            self.i += 1
            q.offset = self.integer("OFFSET")
            if q.offset > MAX_OFFSET:
                raise SoqlError(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    f"Maximum SOQL offset allowed is {MAX_OFFSET}",
                )
        if self.i != len(self.t):
            raise malformed(f"unexpected token: '{self.t[self.i].text}'")
        return q

    def integer(self, what: str) -> int:
        tok = self.take("num", what=f"a number after {what}")
        if not isinstance(tok.value, int) or tok.value < 0:
            raise malformed(f"{what} needs a non-negative integer")
        return tok.value

    def order(self) -> Order:
        name = self.name("field")
        descending = False
        if self.kw("ASC") or self.kw("DESC"):
            descending = self.t[self.i].text == "DESC"
            self.i += 1
        nulls_last = None
        if self.kw("NULLS"):
            self.i += 1
            if self.kw("FIRST") or self.kw("LAST"):
                nulls_last = self.t[self.i].text == "LAST"
                self.i += 1
            else:
                raise malformed("expecting FIRST or LAST after NULLS")
        return Order(name, descending, nulls_last)

    def condition(self) -> Cond:
        parts = [self.unary()]
        joiner = None
        while self.kw("AND") or self.kw("OR"):
            word = self.t[self.i].text
            if joiner is not None and word != joiner:
                raise malformed("unexpected token: AND and OR mixed without parentheses")
            joiner = word
            self.i += 1
            parts.append(self.unary())
        return parts[0] if joiner is None else Cond(joiner, parts=tuple(parts))

    def unary(self) -> Cond:
        if self.kw("NOT"):
            self.i += 1
            return Cond("NOT", parts=(self.unary(),))
        if self.peek("punct", "("):
            self.i += 1
            inner = self.condition()
            self.take("punct", ")")
            return inner
        name = self.name("field")
        if self.kw("NOT"):
            self.i += 1
            self.take("kw", "IN")
            return Cond("NOT IN", name, self.values())
        if self.kw("IN"):
            self.i += 1
            return Cond("IN", name, self.values())
        if self.kw("LIKE"):
            self.i += 1
            return Cond("LIKE", name, self.take("str", what="a string after LIKE").value)
        op = self.take("op", what="an operator").text
        return Cond("!=" if op == "<>" else op, name, self.literal())

    def values(self) -> tuple[Any, ...]:
        self.take("punct", "(")
        items = [self.literal()]
        while self.peek("punct", ","):
            self.i += 1
            items.append(self.literal())
        self.take("punct", ")")
        return tuple(items)

    def literal(self) -> Any:
        if self.i >= len(self.t):
            raise malformed("expecting a value, found end of query")
        tok = self.t[self.i]
        self.i += 1
        if tok.kind in ("str", "num", "date"):
            return tok.value
        if tok.kind == "dt":
            return _Stamp(tok.value)
        if tok.kind == "kw" and tok.text in ("NULL", "TRUE", "FALSE"):
            return {"NULL": None, "TRUE": True, "FALSE": False}[tok.text]
        raise malformed(f"unexpected token: '{tok.text}'")


@dataclass(frozen=True, slots=True)
class _Stamp:
    """A datetime literal (unix seconds)."""

    seconds: int


def parse_query(text: str) -> Query:
    return _Parser(tokenize(text)).query()


# --- evaluation -----------------------------------------------------------------------------


def _like(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def _norm(value: Any, literal: Any) -> tuple[Any, Any]:
    """Comparable forms: datetimes by whole second, text ignoring case."""
    if isinstance(literal, _Stamp):
        return (None if value is None else int(value)), literal.seconds
    if isinstance(literal, date) and isinstance(value, str):
        return value, literal.isoformat()
    if isinstance(literal, str) and isinstance(value, str):
        return value.lower(), literal.lower()
    return value, literal


def evaluate(cond: Cond, get: Callable[[str], Any], *, exact: Callable[[str], bool]) -> bool:
    """Whether a record (its field reader `get`) matches `cond`. `exact(field)`: compare
    case-sensitively (Ids)."""
    op = cond.op
    if op == "AND":
        return all(evaluate(p, get, exact=exact) for p in cond.parts)
    if op == "OR":
        return any(evaluate(p, get, exact=exact) for p in cond.parts)
    if op == "NOT":
        return not evaluate(cond.parts[0], get, exact=exact)
    value = get(cond.field)
    sensitive = exact(cond.field)
    if op in ("IN", "NOT IN"):
        hit = any(_compare("=", value, v, sensitive) for v in cond.value)
        return hit if op == "IN" else not hit
    if op == "LIKE":
        return isinstance(value, str) and _like(cond.value).fullmatch(value) is not None
    return _compare(op, value, cond.value, sensitive)


def _compare(op: str, value: Any, literal: Any, sensitive: bool) -> bool:
    if literal is None or value is None:
        if op == "=":
            return value is None and literal is None
        if op == "!=":
            return (value is None) != (literal is None)
        return False
    if sensitive and isinstance(value, str) and isinstance(literal, str):
        a, b = value, literal
        if len(b) == 15 and len(a) == 18:
            a = a[:15]
    else:
        a, b = _norm(value, literal)
    try:
        if op == "=":
            return bool(a == b)
        if op == "!=":
            return bool(a != b)
        if op == "<":
            return bool(a < b)
        if op == "<=":
            return bool(a <= b)
        if op == ">":
            return bool(a > b)
        if op == ">=":
            return bool(a >= b)
    except TypeError:
        raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", f"invalid operator on {op}") from None
    raise malformed(f"unknown operator {op}")


def lower_bound(cond: Cond | None, field_name: str) -> int | None:
    """The smallest value of `field_name` (a datetime) any match can have, when `cond` says
    (a planner shortcut: keyset queries start at it instead of scanning everything)."""
    if cond is None:
        return None
    if cond.op in (">", ">=", "=") and cond.field == field_name:
        return cond.value.seconds if isinstance(cond.value, _Stamp) else None
    if cond.op == "AND":
        found = [b for p in cond.parts if (b := lower_bound(p, field_name)) is not None]
        return max(found) if found else None
    if cond.op == "OR":
        bounds = [lower_bound(p, field_name) for p in cond.parts]
        known = [b for b in bounds if b is not None]
        return min(known) if known and len(known) == len(bounds) else None
    return None


def render_datetime(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


# --- SOSL -----------------------------------------------------------------------------------

_SOSL = re.compile(
    r"\s*FIND\s+\{(?P<term>(?:[^\\}]|\\.)*)\}\s+IN\s+(?P<scope>ALL|NAME|EMAIL|PHONE)\s+FIELDS"
    r"\s+RETURNING\s+(?P<returning>.+?)(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_RETURNING = re.compile(
    r"\s*(?P<obj>[A-Za-z_]\w*)\s*(?:\((?P<body>[^()]*(?:\([^()]*\)[^()]*)*)\))?\s*(?:,|$)"
)
_SOSL_RESERVED = set("?&|!{}[]()^~*:\\\"'+-")


@dataclass(slots=True)
class Sosl:
    terms: list[str]  # alternatives (OR)
    scope: str
    returning: list[tuple[str, list[str], Cond | None, int | None]]
    limit: int


def _sosl_terms(raw: str) -> list[str]:
    """The alternatives of a FIND term: quoted phrases and words, split by a bare OR."""
    alternatives: list[list[str]] = [[]]
    word: list[str] = []
    quoted = False
    i = 0

    def close_word() -> None:
        if word:
            text = "".join(word)
            word.clear()
            if text == "OR" and not quoted_word[0]:
                alternatives.append([])
            else:
                alternatives[-1].append(text)
        quoted_word[0] = False

    quoted_word = [False]
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw):
            word.append(raw[i + 1])
            i += 2
            continue
        if c == '"':
            quoted = not quoted
            quoted_word[0] = True
            if not quoted:
                alternatives[-1].append("".join(word))
                word.clear()
                quoted_word[0] = False
        elif c.isspace() and not quoted:
            close_word()
        elif c in _SOSL_RESERVED and not quoted:
            raise malformed(f"unescaped reserved character {c!r} in FIND term")
        else:
            word.append(c)
        i += 1
    close_word()
    terms = [" ".join(a) for a in alternatives]
    if quoted or not all(terms):
        raise malformed("invalid FIND term")
    return terms


def parse_sosl(text: str) -> Sosl:
    m = _SOSL.fullmatch(text)
    if m is None:
        raise malformed("malformed search: expecting FIND {term} IN ... FIELDS RETURNING ...")
    returning = []
    pos = 0
    spec = m["returning"]
    while pos < len(spec):
        r = _RETURNING.match(spec, pos)
        if r is None or r.end() == pos:
            raise malformed("malformed RETURNING clause")
        pos = r.end()
        body = (r["body"] or "Id").strip()
        head, where, limit = body, None, None
        lim = re.search(r"\s+LIMIT\s+(\d+)\s*$", head, re.IGNORECASE)
        if lim:
            limit, head = int(lim[1]), head[: lim.start()]
        parts = re.split(r"\s+WHERE\s+", head, maxsplit=1, flags=re.IGNORECASE)
        fields = [f.strip() for f in parts[0].split(",") if f.strip()]
        if len(parts) == 2:
            where = _Parser(tokenize(parts[1])).condition()
        returning.append((r["obj"], fields, where, limit))
    return Sosl(_sosl_terms(m["term"]), m["scope"].upper(), returning, int(m["limit"] or 2000))
