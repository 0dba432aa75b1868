"""Values connectors read from requests and upstream answers, and write for Talkdesk."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

from pydantic import JsonValue

from .._errors import ActionFailed

__all__ = [
    "PREVIEW_CHARS",
    "plain_text",
    "shorten",
    "talkdesk_date",
    "text",
    "text_input",
    "text_preview",
]

PREVIEW_CHARS = 240


def text(value: object) -> str | None:
    """A string with its surrounding white space removed; None when empty or not a string."""
    if isinstance(value, str) and (stripped := value.strip()):
        return stripped
    return None


def text_input(
    data: Mapping[str, JsonValue], key: str, *, limit: int, required: bool = False
) -> str | None:
    """An action's text input (numbers are read as text); the contract's 400 naming it when
    it is missing but `required`, not text, or longer than `limit`."""
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ActionFailed(f"data.{key} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ActionFailed(f"data.{key} must be a string")
    stripped = str(value).strip()
    if len(stripped) > limit:
        raise ActionFailed(f"data.{key} is longer than {limit} characters")
    return stripped


def talkdesk_date(seconds: float) -> str:
    """Talkdesk's date text, `YYYY-MM-DD HH:MM:SS UTC`, of unix seconds."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- previews of HTML bodies ----------------------------------------------------------------

_BLOCKS = frozenset({"p", "br", "div", "li", "ul", "ol", "tr", "h1", "h2", "h3", "h4", "h5", "h6"})
_BLOCKS |= {"blockquote", "pre", "table", "hr"}
_HIDDEN = frozenset({"script", "style", "head", "title", "template"})
_SPACES = re.compile(r"\s+")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # entities unescaped by the stdlib
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
        elif tag in _BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def plain_text(value: Any) -> str:
    """HTML as one line of plain text: tags dropped, entities unescaped, spaces collapsed."""
    if not isinstance(value, str) or not value:
        return ""
    if "<" not in value and "&" not in value:
        return _SPACES.sub(" ", value).strip()
    parser = _TextExtractor()
    parser.feed(value)
    parser.close()
    return _SPACES.sub(" ", "".join(parser.parts)).strip()


def shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0] or text[: limit - 1]
    return cut.rstrip(" ,.;:") + "…"


def text_preview(value: Any, limit: int = PREVIEW_CHARS) -> str | None:
    return shorten(plain_text(value), limit) or None
