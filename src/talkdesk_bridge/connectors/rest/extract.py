"""Where values sit in a JSON answer: JSON pointers, a small JMESPath subset, and templates.

An *expression* is either a JSON pointer (RFC 6901: "" is the whole document, "/data/0/id")
or a JMESPath subset: dotted names with `[n]` indexes, `[*]` projections and `[]` flattens
(`data`, `company.name`, `emails[].address`, `phones[*].number`, `items[0].id`). After a
projection the rest applies to each element and missing values are dropped, as in JMESPath.

A *template* is text with `{expression}` placeholders (`"{first_name} {last_name}"`,
`"https://crm.example.com/contacts/{/id}"`); `{{` and `}}` are literal braces.

Everything is compiled when the mapping is loaded, so a bad expression stops start-up.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Expression",
    "Template",
    "compile_expression",
    "compile_template",
    "read_text",
    "text_of",
]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_STEP = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+|\*|)\]")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_MAX_EXPRESSION = 256


def _pointer(expression: str) -> Callable[[Any], Any]:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in expression.split("/")[1:]]

    def get(doc: Any) -> Any:
        for part in parts:
            if isinstance(doc, dict):
                doc = doc.get(part)
            elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
                doc = doc[int(part)]
            else:
                return None
        return doc

    return get


def _jmes(expression: str) -> Callable[[Any], Any]:
    steps: list[tuple[str, str]] = []  # ("name", key) | ("index", n) | ("project" | "flatten", "")
    at = 0
    while at < len(expression):
        match = _STEP.match(expression, at)
        if match is None or (match.group(0).startswith(".") and not steps):
            raise ValueError(f"cannot read {expression!r} at character {at + 1}")
        name, bracket = match.groups()
        if name is not None:
            if steps and not match.group(0).startswith("."):
                raise ValueError(f"cannot read {expression!r} at character {at + 1}")
            steps.append(("name", name))
        elif bracket == "*":
            steps.append(("project", ""))
        elif bracket == "":
            steps.append(("flatten", ""))
        else:
            steps.append(("index", bracket or "0"))
        at = match.end()

    def walk(doc: Any, rest: list[tuple[str, str]]) -> Any:
        for i, (kind, arg) in enumerate(rest):
            if doc is None:
                return None
            if kind == "name":
                doc = doc.get(arg) if isinstance(doc, dict) else None
            elif kind == "index":
                doc = doc[int(arg)] if isinstance(doc, list) and int(arg) < len(doc) else None
            else:
                if not isinstance(doc, list):
                    return None
                items = doc
                if kind == "flatten":
                    items = [
                        x for item in doc for x in (item if isinstance(item, list) else [item])
                    ]
                tail = rest[i + 1 :]
                # A later `[]` flattens what the projections below it collect, as in JMESPath.
                spread = any(k == "flatten" for k, _ in tail)
                out: list[Any] = []
                for item in items:
                    value = walk(item, tail)
                    if spread and isinstance(value, list):
                        out.extend(value)
                    elif value is not None:
                        out.append(value)
                return out
        return doc

    return lambda doc: walk(doc, steps)


@dataclass(frozen=True, slots=True)
class Expression:
    source: str
    get: Callable[[Any], Any]

    def __call__(self, doc: Any) -> Any:
        return self.get(doc)

    def values(self, doc: Any) -> list[Any]:
        """Every non-null value found (a list is spread out)."""
        found = self.get(doc)
        if found is None:
            return []
        return [v for v in found if v is not None] if isinstance(found, list) else [found]


def compile_expression(expression: str) -> Expression:
    """A JSON pointer or JMESPath-subset expression; ValueError saying what is wrong."""
    if len(expression) > _MAX_EXPRESSION:
        raise ValueError(f"an expression is at most {_MAX_EXPRESSION} characters")
    if expression == "" or expression.startswith("/"):
        return Expression(expression, _pointer(expression))
    if expression == "@":
        return Expression(expression, lambda doc: doc)
    return Expression(expression, _jmes(expression.strip()))


def text_of(value: Any) -> str | None:
    """A scalar as stripped text (None, containers and empty text: None)."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    return text or None


@dataclass(frozen=True, slots=True)
class Template:
    source: str
    parts: tuple[str | Expression, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.source for p in self.parts if isinstance(p, Expression))

    def render(self, doc: Any, *, join: str = " ") -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            out.append(join.join(t for v in part.values(doc) if (t := text_of(v))))
        return "".join(out)


def compile_template(template: str) -> Template:
    parts: list[str | Expression] = []
    at = 0
    for match in _PLACEHOLDER.finditer(template):
        parts.append(template[at : match.start()])
        at = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            parts.append(token[0])
        elif token in ("{", "}"):
            raise ValueError(f"unbalanced {token!r} in template {template!r} (write {token * 2})")
        else:
            inner = (match.group(1) or "").strip()
            if not inner:
                raise ValueError(f"empty placeholder {{}} in template {template!r}")
            parts.append(compile_expression(inner))
    parts.append(template[at:])
    return Template(template, tuple(p for p in parts if p != ""))


def read_text(reader: Expression | Template, doc: Any, join: str | None = None) -> str | None:
    """One text value: a template's rendering, or an expression's first value (all of them
    joined with `join` when given)."""
    if isinstance(reader, Template):
        return text_of(reader.render(doc, join=join or " "))
    texts = [t for v in reader.values(doc) if (t := text_of(v))]
    if not texts:
        return None
    return join.join(texts) if join is not None else texts[0]
