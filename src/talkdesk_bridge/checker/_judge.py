"""Pure judgements of one bridge response against the Talkdesk contract.

Each function takes what the bridge answered (already decoded) and returns a `Verdict`: the
warnings and failures it found, each naming the field, and how many checks passed. Nothing here
does I/O, so every rule can be read (and tested) on its own.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson

__all__ = [
    "AUTH_FIELDS",
    "BODY",
    "CHECKPOINT",
    "CONTACT_POP",
    "CONTENT_TYPE",
    "DATES",
    "DUPLICATES",
    "E164",
    "ENUMS",
    "FIELDS",
    "FORMATS",
    "HTTPS",
    "NAMES",
    "NEXT_OFFSET",
    "NOT_OFFERED",
    "PAGING",
    "RUN",
    "STATUS",
    "TRANSPORT",
    "TYPES",
    "UNKNOWN",
    "AgentPageInfo",
    "ContactPageInfo",
    "DuplicateTracker",
    "Finding",
    "Level",
    "Reply",
    "Verdict",
    "canonical",
    "judge_action_result",
    "judge_agent_page",
    "judge_auth_body",
    "judge_contact_page",
    "judge_interactions",
    "judge_reply",
    "kind_of",
]

Level = Literal["pass", "warn", "fail", "skip"]

# Check names: the rows of the report.
STATUS = "HTTP status"
CONTENT_TYPE = "Content-Type"
BODY = "JSON body"
FIELDS = "fields and types"
NAMES = "non-empty names"
UNKNOWN = "unknown fields"
FORMATS = "value formats"
ENUMS = "enumerations"
NEXT_OFFSET = "next_offset"
CHECKPOINT = "checkpoint"
DUPLICATES = "duplicate ids"
E164 = "phones in E.164"
TYPES = "interaction types"
DATES = "interaction dates"
PAGING = "paging"
TRANSPORT = "transport"
AUTH_FIELDS = "auth fields"
CONTACT_POP = "contact pop url"
NOT_OFFERED = "offered"
RUN = "coverage"  # skips that are the checker's choice (nothing to run with), not the bridge's
HTTPS = "https"

PRIORITIES = ("none", "low", "normal", "high", "urgent")
STATUSES = ("new", "open", "pending", "solved", "closed")

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# Talkdesk's example is "2012-11-21 17:53:51 UTC"; an explicit numeric offset reads the same.
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} (UTC|[+-]\d{4})$")
_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)
_TWITTER = re.compile(r"^@?\w{1,50}$")

_CONTACT_STRINGS = ("company", "title", "photo_url", "address", "twitter", "url")
_CONTACT_LISTS = ("emails", "phones", "websites")
_CONTACT_KEYS = frozenset(("id", "name", *_CONTACT_STRINGS, *_CONTACT_LISTS))
_PAGE_KEYS = frozenset(("contacts", "next_offset", "synchronization_checkpoint", "context"))
_INTERACTION_KEYS = frozenset(
    ("id", "subject", "description", "date", "url", "type", "priority", "status")
)
_AGENT_KEYS = frozenset(("id", "name", "email"))
_ACTION_KEYS = (
    "message",
    "external_id",
    "contact_external_id",
    "contact_external_type",
    "contact_external_url",
)


@dataclass(frozen=True, slots=True)
class Finding:
    level: Level
    check: str
    call: str
    field: str | None
    message: str


@dataclass(slots=True)
class Verdict:
    """What one call's judgement found: problems in full, passes as counts per check."""

    call: str
    findings: list[Finding] = field(default_factory=list)
    passed: Counter[str] = field(default_factory=Counter)
    # Problems per check, so rules can ask "did this item add any?" in constant time.
    problems: Counter[str] = field(default_factory=Counter)

    def ok(self, check: str, count: int = 1) -> None:
        if count:
            self.passed[check] += count

    def add(self, level: Level, check: str, where: str | None, message: str) -> None:
        if level == "pass":
            self.ok(check)
            return
        self.findings.append(Finding(level, check, self.call, where, message))
        self.problems[check] += 1

    def warn(self, check: str, where: str | None, message: str) -> None:
        self.add("warn", check, where, message)

    def fail(self, check: str, where: str | None, message: str) -> None:
        self.add("fail", check, where, message)

    def count(self, check: str) -> int:
        return self.problems[check]


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer reduced to what the contract speaks about."""

    status: int
    content_type: str | None
    body: bytes


def kind_of(value: object) -> str:
    """The JSON type name of a decoded value, for messages like "expected a string, got integer"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _show(value: object, limit: int = 60) -> str:
    text = orjson.dumps(value).decode() if _is_json(value) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_json(value: object) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


def _got(value: object) -> str:
    return f"got {kind_of(value)} {_show(value)}" if value is not None else "got null"


def canonical(value: object) -> bytes:
    """Key-order-independent bytes of a JSON value (to compare contacts and contexts)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _error_excerpt(body: bytes) -> str:
    """The bridge's own error message, when it gave one, to say *why* a call failed."""
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = " ".join(body.decode("utf-8", "replace").split())
        return text[:120] + ("…" if len(text) > 120 else "")
    if isinstance(decoded, dict):
        error = decoded.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:200]
        if isinstance(decoded.get("message"), str):
            return str(decoded["message"])[:200]
    return _show(decoded, 120)


# --- the envelope: status, Content-Type, JSON ---------------------------------------------


def judge_reply(
    call: str,
    reply: Reply,
    expected: Collection[int],
    shape: Literal["object", "array"] | None,
    *,
    hint: str | None = None,
) -> tuple[Verdict, Any]:
    """Status, Content-Type and JSON shape. The decoded body, or None when unusable.

    `hint` says what an unexpected status means for this call (e.g. "bad credentials accepted").
    """
    v = Verdict(call)
    # No body, no type: a 204 is the only answer allowed to come without one.
    if reply.status != 204:
        media = (reply.content_type or "").split(";", 1)[0].strip().lower()
        if media == "application/json":
            v.ok(CONTENT_TYPE)
        else:
            shown = repr(reply.content_type) if reply.content_type else "none"
            v.fail(CONTENT_TYPE, "Content-Type", f"expected application/json, got {shown}")
    wanted = " or ".join(str(s) for s in expected)
    if reply.status not in expected:
        reason = " (server error)" if reply.status >= 500 else ""
        excerpt = _error_excerpt(reply.body) if reply.body.strip() else ""
        said = f": {excerpt}" if excerpt else ""
        meaning = f" ({hint})" if hint else ""
        v.fail(STATUS, None, f"expected {wanted}, got {reply.status}{reason}{meaning}{said}")
        return v, None
    v.ok(STATUS)
    if shape is None:
        return v, None
    try:
        decoded = orjson.loads(reply.body)
    except orjson.JSONDecodeError as exc:
        what = "empty" if not reply.body.strip() else f"not valid JSON ({exc.msg})"
        v.fail(BODY, None, f"body is {what}; expected a JSON {shape}")
        return v, None
    python_type = dict if shape == "object" else list
    if not isinstance(decoded, python_type):
        v.fail(BODY, None, f"expected a JSON {shape}, got {kind_of(decoded)}")
        return v, None
    v.ok(BODY)
    return v, decoded


# --- shared field rules --------------------------------------------------------------------


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _string(
    v: Verdict,
    obj: Mapping[str, Any],
    key: str,
    where: str,
    *,
    required: bool,
    check: str = FIELDS,
) -> bool:
    """Whether `obj[key]` satisfies "a string" (absent is fine unless required)."""
    if key not in obj:
        if required:
            v.fail(check, _at(where, key), "missing (mandatory)")
            return False
        return True
    value = obj[key]
    if isinstance(value, str):
        return True
    if value is None and not required:
        v.warn(check, _at(where, key), "null: omit an optional field instead")
        return True
    v.fail(check, _at(where, key), f"expected a string, {_got(value)}")
    return False


def _unknown(v: Verdict, obj: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    extra = sorted(k for k in obj if k not in known)
    for key in extra:
        v.warn(UNKNOWN, _at(where, key), "not in the contract; Talkdesk ignores it")
    if not extra:
        v.ok(UNKNOWN)


def _non_empty(v: Verdict, obj: Mapping[str, Any], key: str, where: str) -> None:
    value = obj.get(key)
    if not isinstance(value, str):
        return  # already a type failure
    if value.strip():
        v.ok(NAMES)
    else:
        v.fail(NAMES, _at(where, key), f"empty {key}: agents would see a blank")


# --- duplicates ----------------------------------------------------------------------------


@dataclass(slots=True)
class DuplicateTracker:
    """Ids seen in one run, with a digest of their content and where they first came."""

    seen: dict[bytes, tuple[bytes, str, str]] = field(default_factory=dict)

    def judge(self, v: Verdict, item_id: object, content: object, where: str) -> None:
        key = canonical(item_id)
        digest = hashlib.blake2b(canonical(content), digest_size=16).digest()
        first = self.seen.get(key)
        if first is None:
            self.seen[key] = (digest, v.call, where)
            v.ok(DUPLICATES)
            return
        old_digest, old_call, old_where = first
        earlier = f"{old_call} ({old_where})"
        if old_digest == digest:
            v.fail(
                DUPLICATES,
                f"{where}.id",
                f"id {_show(item_id)} was already sent, identical, in {earlier}",
            )
        else:
            v.warn(
                DUPLICATES,
                f"{where}.id",
                f"id {_show(item_id)} re-sent with newer data (first in {earlier})",
            )
        self.seen[key] = (digest, v.call, where)


# --- contact synchronization ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactPageInfo:
    """What the runner needs from a judged page to go on like Talkdesk would."""

    usable: bool
    received: int
    contacts: list[dict[str, Any]]  # the well-formed ones (string id), for sampling and storing
    checkpoint: str | None
    next_offset: str | None
    has_context: bool
    context: Any


def _judge_contact(v: Verdict, contact: object, where: str) -> bool:
    if not isinstance(contact, dict):
        v.fail(FIELDS, where, f"expected an object, {_got(contact)}")
        return False
    before = v.count(FIELDS)
    _string(v, contact, "id", where, required=True)
    if isinstance(contact.get("id"), str) and not contact["id"].strip():
        v.fail(FIELDS, f"{where}.id", "empty id")
    _string(v, contact, "name", where, required=True)
    _non_empty(v, contact, "name", where)
    for key in _CONTACT_STRINGS:
        _string(v, contact, key, where, required=False)
    for key in _CONTACT_LISTS:
        if key not in contact:
            continue
        values = contact[key]
        if values is None:
            v.warn(FIELDS, _at(where, key), "null: omit an optional field instead")
            continue
        if not isinstance(values, list):
            v.fail(FIELDS, _at(where, key), f"expected a list of strings, {_got(values)}")
            continue
        for i, item in enumerate(values):
            if not isinstance(item, str):
                v.fail(FIELDS, f"{where}.{key}[{i}]", f"expected a string, {_got(item)}")
    if v.count(FIELDS) == before:
        v.ok(FIELDS)
    _judge_contact_formats(v, contact, where)
    _unknown(v, contact, _CONTACT_KEYS, where)
    return isinstance(contact.get("id"), str) and bool(contact["id"].strip())


def _judge_contact_formats(v: Verdict, contact: Mapping[str, Any], where: str) -> None:
    phones = contact.get("phones")
    if isinstance(phones, list):
        for i, phone in enumerate(phones):
            if not isinstance(phone, str):
                continue
            if _E164.match(phone):
                v.ok(E164)
            else:
                v.warn(
                    E164,
                    f"{where}.phones[{i}]",
                    f"{_show(phone)} is not E.164: caller identification may miss it",
                )
    for key in ("url", "photo_url"):
        value = contact.get(key)
        if isinstance(value, str) and not _URL.match(value):
            v.warn(FORMATS, _at(where, key), f"{_show(value)} is not an http(s) URL")
    websites = contact.get("websites")
    if isinstance(websites, list):
        for i, site in enumerate(websites):
            if isinstance(site, str) and not _URL.match(site):
                v.warn(FORMATS, f"{where}.websites[{i}]", f"{_show(site)} is not an http(s) URL")
    emails = contact.get("emails")
    if isinstance(emails, list):
        for i, email in enumerate(emails):
            if isinstance(email, str) and "@" not in email:
                v.warn(FORMATS, f"{where}.emails[{i}]", f"{_show(email)} does not look like one")
    twitter = contact.get("twitter")
    if isinstance(twitter, str) and not _TWITTER.match(twitter):
        v.warn(FORMATS, f"{where}.twitter", f"{_show(twitter)} is not a username")


def judge_contact_page(
    call: str, body: Mapping[str, Any], duplicates: DuplicateTracker
) -> tuple[Verdict, ContactPageInfo]:
    v = Verdict(call)
    contacts = body.get("contacts")
    good: list[dict[str, Any]] = []
    if not isinstance(contacts, list):
        problem = (
            "missing (mandatory)"
            if "contacts" not in body
            else f"expected a list, {_got(contacts)}"
        )
        v.fail(FIELDS, "contacts", problem)
    else:
        for i, contact in enumerate(contacts):
            where = f"contacts[{i}]"
            if _judge_contact(v, contact, where):
                assert isinstance(contact, dict)
                good.append(contact)
            if isinstance(contact, dict) and "id" in contact:
                duplicates.judge(v, contact["id"], contact, where)

    checkpoint = body.get("synchronization_checkpoint")
    if "synchronization_checkpoint" not in body:
        v.fail(
            CHECKPOINT,
            "synchronization_checkpoint",
            "missing: mandatory on every page (Talkdesk sends it back on the next run)",
        )
        checkpoint = None
    elif not isinstance(checkpoint, str):
        v.fail(CHECKPOINT, "synchronization_checkpoint", f"expected a string, {_got(checkpoint)}")
        checkpoint = None
    elif not checkpoint:
        v.warn(
            CHECKPOINT, "synchronization_checkpoint", "empty string: the next run is a full sync"
        )
    else:
        v.ok(CHECKPOINT)

    next_offset: str | None = None
    usable = isinstance(contacts, list)
    if "next_offset" in body:
        raw = body["next_offset"]
        if isinstance(raw, str):
            next_offset = raw
            if raw:
                v.ok(NEXT_OFFSET)
            else:
                v.warn(NEXT_OFFSET, "next_offset", "empty string: Talkdesk still asks for a page")
        elif raw is None:
            v.warn(NEXT_OFFSET, "next_offset", "null: omit it on the last page")
        else:
            v.fail(NEXT_OFFSET, "next_offset", f"expected a string, {_got(raw)}")
            usable = False  # Talkdesk cannot send it back as an offset string
    else:
        v.ok(NEXT_OFFSET)

    _unknown(v, body, _PAGE_KEYS, "")
    context = body.get("context")
    info = ContactPageInfo(
        usable=usable,
        received=len(contacts) if isinstance(contacts, list) else 0,
        contacts=good,
        checkpoint=checkpoint,
        next_offset=next_offset,
        has_context=context is not None,
        context=context,
    )
    return v, info


# --- interaction retrieval -----------------------------------------------------------------


def _date_ok(value: str) -> bool:
    if not _DATE.match(value):
        return False
    try:
        # Only the calendar is in question here; the zone is the suffix matched above.
        datetime.strptime(value[:19], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return False
    return True


def judge_interactions(call: str, body: Sequence[Any], requested: Collection[str]) -> Verdict:
    v = Verdict(call)
    seen: set[tuple[str, str]] = set()
    for i, item in enumerate(body):
        where = f"[{i}]"
        if not isinstance(item, dict):
            v.fail(FIELDS, where, f"expected an object, {_got(item)}")
            continue
        before = v.count(FIELDS)
        for key in ("id", "subject", "date", "type"):
            _string(v, item, key, where, required=True)
        for key in ("description", "url"):
            _string(v, item, key, where, required=False)
        if v.count(FIELDS) == before:
            v.ok(FIELDS)
        subject = item.get("subject")
        if isinstance(subject, str) and not subject.strip():
            v.warn(NAMES, f"{where}.subject", "empty subject: agents would see a blank")
        date = item.get("date")
        if isinstance(date, str):
            if _date_ok(date):
                v.ok(DATES)
            else:
                v.warn(
                    DATES, f"{where}.date", f"{_show(date)} is not like '2012-11-21 17:53:51 UTC'"
                )
        kind = item.get("type")
        if isinstance(kind, str):
            if kind in requested:
                v.ok(TYPES)
            else:
                wanted = ", ".join(requested)
                v.fail(TYPES, f"{where}.type", f"{_show(kind)} was not requested ({wanted})")
        before = v.count(ENUMS)
        for key, allowed in (("priority", PRIORITIES), ("status", STATUSES)):
            if key in item and item[key] is not None and item[key] not in allowed:
                v.fail(
                    ENUMS, _at(where, key), f"{_show(item[key])} is not one of {'|'.join(allowed)}"
                )
            elif key in item and item[key] is None:
                v.warn(ENUMS, _at(where, key), "null: omit an optional field instead")
        if v.count(ENUMS) == before:
            v.ok(ENUMS)
        url = item.get("url")
        if isinstance(url, str) and not _URL.match(url):
            v.warn(FORMATS, f"{where}.url", f"{_show(url)} is not an http(s) URL")
        if isinstance(item.get("id"), str) and isinstance(kind, str):
            if (kind, item["id"]) in seen:
                v.warn(DUPLICATES, f"{where}.id", f"{kind} {_show(item['id'])} listed twice")
            else:
                seen.add((kind, item["id"]))
        _unknown(v, item, _INTERACTION_KEYS, where)
    return v


# --- agent synchronization -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentPageInfo:
    usable: bool
    agents: list[dict[str, Any]]
    next_offset: int | None


def judge_agent_page(
    call: str, body: Mapping[str, Any], duplicates: DuplicateTracker
) -> tuple[Verdict, AgentPageInfo]:
    v = Verdict(call)
    agents = body.get("agents")
    good: list[dict[str, Any]] = []
    if not isinstance(agents, list):
        problem = (
            "missing (mandatory)" if "agents" not in body else f"expected a list, {_got(agents)}"
        )
        v.fail(FIELDS, "agents", problem)
    else:
        for i, agent in enumerate(agents):
            where = f"agents[{i}]"
            if not isinstance(agent, dict):
                v.fail(FIELDS, where, f"expected an object, {_got(agent)}")
                continue
            before = v.count(FIELDS)
            for key in ("id", "name", "email"):
                _string(v, agent, key, where, required=True)
            if v.count(FIELDS) == before:
                v.ok(FIELDS)
                good.append(agent)
            _non_empty(v, agent, "name", where)
            email = agent.get("email")
            if isinstance(email, str) and "@" not in email:
                v.warn(FORMATS, f"{where}.email", f"{_show(email)} does not look like an email")
            if "id" in agent:
                duplicates.judge(v, agent["id"], agent, where)
            _unknown(v, agent, _AGENT_KEYS, where)

    next_offset: int | None = None
    usable = isinstance(agents, list)
    raw = body.get("next_offset")
    if "next_offset" not in body:
        v.ok(NEXT_OFFSET)
    elif raw is None:
        v.warn(NEXT_OFFSET, "next_offset", "null: omit it on the last page")
    elif isinstance(raw, int) and not isinstance(raw, bool):
        if raw >= 0:
            next_offset = raw
            v.ok(NEXT_OFFSET)
        else:
            v.fail(NEXT_OFFSET, "next_offset", f"negative offset {raw}")
            usable = False
    else:
        v.fail(NEXT_OFFSET, "next_offset", f"expected an integer, {_got(raw)}")
        usable = False
    _unknown(v, body, frozenset(("agents", "next_offset")), "")
    return v, AgentPageInfo(usable=usable, agents=good, next_offset=next_offset)


# --- actions and auth ----------------------------------------------------------------------


def judge_action_result(call: str, body: Mapping[str, Any]) -> Verdict:
    v = Verdict(call)
    before = v.count(FIELDS)
    for key in _ACTION_KEYS:
        _string(v, body, key, "", required=False)
    if v.count(FIELDS) == before:
        v.ok(FIELDS)
    if isinstance(body.get("contact_external_id"), str):
        url = body.get("contact_external_url")
        if isinstance(url, str) and _URL.match(url):
            v.ok(CONTACT_POP)
        else:
            v.warn(
                CONTACT_POP,
                "contact_external_url",
                "a created contact needs its http(s) URL for contact pop",
            )
    _unknown(v, body, frozenset(_ACTION_KEYS), "")
    return v


def judge_auth_body(
    call: str, body: Mapping[str, Any], allowed: Collection[str], *, declared: bool
) -> Verdict:
    """A 200 body carries auth fields for Talkdesk to store; other keys are not allowed.

    Without the integration's declared fields only the given ones are known, so a stranger key
    is then a warning rather than a failure.
    """
    v = Verdict(call)
    extra = sorted(k for k in body if k not in allowed)
    known = ", ".join(sorted(allowed)) or "none"
    for key in extra:
        message = f"not an auth field (known: {known}); Talkdesk would store it as one"
        if declared:
            v.fail(AUTH_FIELDS, key, message)
        else:
            v.warn(AUTH_FIELDS, key, message)
    if not extra:
        v.ok(AUTH_FIELDS)
    return v
