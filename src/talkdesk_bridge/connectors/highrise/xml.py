"""Highrise's XML, read with a hardened parser and written with the standard library.

Reading goes through `defusedxml`: no DTDs, so no entity expansion (billion laughs) and no
external entities (a file or URL pulled into the answer). Conventions tolerated: `nil="true"`
is None, `type="array"` is a list (also when self-closing), `type="integer"`/`"boolean"` are
typed, and hyphens and underscores in names are one (`avatar-url` and `avatar_url`).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

__all__ = ["XmlValue", "clean_text", "decode", "dump", "many"]

XmlValue = Any
# What XML 1.0 cannot carry at all: control characters other than tab, newline, return.
_UNWRITABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_MAX_DEPTH = 32


def _name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].replace("-", "_")


def _value(element: ET.Element, depth: int) -> XmlValue:
    if depth > _MAX_DEPTH:
        raise ValueError("XML nested too deeply")
    kind = element.get("type")
    if element.get("nil") == "true":
        return None
    children = list(element)
    if kind == "array":
        return [_value(child, depth + 1) for child in children]
    if not children:
        text = element.text or ""
        if kind == "integer":
            try:
                return int(text.strip())
            except ValueError:
                return None
        if kind == "boolean":
            return text.strip() == "true"
        return text
    found: dict[str, list[XmlValue]] = {}
    for child in children:  # repeated elements without type="array" become a list
        found.setdefault(_name(child.tag), []).append(_value(child, depth + 1))
    return {k: v[0] if len(v) == 1 else v for k, v in found.items()}


def decode(body: bytes) -> XmlValue:
    """`{root: value}` of an XML body; None for an empty one. Hostile or broken XML is a
    ValueError (the caller's "garbled answer")."""
    if not body.strip():
        return None
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ValueError(f"refused XML ({type(exc).__name__})") from None
    except (ET.ParseError, SyntaxError, UnicodeError):
        raise ValueError("not well-formed XML") from None
    return {_name(root.tag): _value(root, 0)}


def many(value: XmlValue, item: str) -> list[dict[str, XmlValue]]:
    """The `item` elements of a container, whatever shape it arrived in (`type="array"`,
    repeated children, one child, empty, nil)."""
    if isinstance(value, Mapping):
        value = value.get(item)
        if isinstance(value, Mapping):
            value = [value]
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, Mapping)]  # type: ignore[misc]


def clean_text(text: str) -> str:
    return _UNWRITABLE.sub("", text)


def _build(parent: ET.Element, key: str, value: XmlValue) -> None:
    child = ET.SubElement(parent, key)
    if isinstance(value, bool):
        child.set("type", "boolean")
        child.text = "true" if value else "false"
    elif isinstance(value, int):
        child.set("type", "integer")
        child.text = str(value)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _build(child, k, v)
    elif isinstance(value, list):
        child.set("type", "array")
        for entry in value:
            name, inner = entry
            _build(child, name, inner)
    elif value is None:
        child.set("nil", "true")
    else:
        child.text = clean_text(str(value))


def dump(root: str, fields: Mapping[str, XmlValue]) -> bytes:
    """`<root>…</root>`: mappings nest, lists are `type="array"` of `(tag, value)` pairs."""
    element = ET.Element(root)
    for key, value in fields.items():
        _build(element, key, value)
    text = ET.tostring(element, encoding="unicode")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + text.encode()
