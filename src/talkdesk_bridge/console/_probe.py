"""Trying a connector the way Talkdesk uses it: HTTP calls to this very app, in process.

Calls go through the whole ASGI application (middleware, routing, error shaping), so the
console shows exactly the status and body Talkdesk would receive, and they count in the
metrics like any request. Credentials typed into the console live in these objects for one
console request only; every text shown is passed through a `Masker` first.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from starlette.types import ASGIApp

from .._phones import normalize_phone

__all__ = [
    "Call",
    "InProcess",
    "LookupResult",
    "Masker",
    "TryResult",
    "lookup_caller",
    "try_connection",
]

SHOWN_CONTACTS = 25  # rows of the first contact page shown
INTERACTION_CONTACTS = 3  # contacts whose interactions are retrieved
LOOKUP_PAGES = 20  # contact pages scanned to recognize a caller, at most
LOOKUP_SECONDS = 10.0
_BODY_CHARS = 4000  # an error body shown, at most


class Masker:
    """Replaces typed credential values (and their JSON-escaped forms) in shown text."""

    def __init__(self, values: Sequence[str]) -> None:
        forms: set[str] = set()
        for value in values:
            for form in (value, orjson.dumps(value).decode()[1:-1]):
                if len(form) >= 4:  # shorter values are not secrets; masking them garbles text
                    forms.add(form)
        self._forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            text = text.replace(form, "***")
        return text

    def data(self, value: Any) -> Any:
        """A JSON value with every string masked."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, list):
            return [self.data(v) for v in value]
        if isinstance(value, dict):
            return {self(str(k)): self.data(v) for k, v in value.items()}
        return value


class _KeyedTransport(httpx.AsyncBaseTransport):
    """Adds the inbound secret to every in-process call, as the configured URLs carry it."""

    def __init__(self, inner: httpx.AsyncBaseTransport, key: str | None) -> None:
        self._inner = inner
        self._key = key

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._key is not None:
            request.url = request.url.copy_merge_params({"key": self._key})
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class InProcess:
    """Where and how to reach this app from inside itself."""

    def __init__(self, app: ASGIApp, base_url: str, key: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        self._app = app
        self._key = key

    def transport(self) -> httpx.AsyncBaseTransport:
        return _KeyedTransport(httpx.ASGITransport(app=self._app), self._key)

    def client(self, timeout: float = 60.0) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self.transport(),
            base_url=self.base_url,
            timeout=timeout,
            headers={"User-Agent": "talkdesk-bridge-console"},
        )


@dataclass(slots=True)
class Call:
    """One call as Talkdesk would make it, and what it received."""

    label: str
    path: str
    status: int | None = None
    latency_ms: float = 0.0
    body: Any = None  # the parsed JSON answer (masked)
    error: str | None = None  # the answer's body when it is an error, as received (masked)
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def items(self) -> list[dict[str, Any]]:
        """The answer's objects, when it is a list (interactions)."""
        body = self.body
        return [i for i in body if isinstance(i, dict)] if isinstance(body, list) else []


async def _post(
    client: httpx.AsyncClient, mask: Masker, label: str, path: str, payload: Mapping[str, Any]
) -> Call:
    call = Call(label, path)
    started = time.perf_counter()
    try:
        response = await client.post(path, content=orjson.dumps(payload))
    except httpx.HTTPError as exc:
        call.latency_ms = round((time.perf_counter() - started) * 1000, 1)
        call.error = f"no answer: {type(exc).__name__}"
        return call
    call.latency_ms = round((time.perf_counter() - started) * 1000, 1)
    call.status = response.status_code
    text = mask(response.content.decode("utf-8", "replace"))
    if call.ok:
        try:
            call.body = mask.data(orjson.loads(response.content))
        except orjson.JSONDecodeError:
            call.error = f"not JSON: {text[:_BODY_CHARS]}"
    else:
        call.error = text[:_BODY_CHARS] or "(empty body)"
    return call


def _contacts(call: Call) -> list[dict[str, Any]]:
    body = call.body
    if not isinstance(body, dict) or not isinstance(body.get("contacts"), list):
        return []
    return [c for c in body["contacts"] if isinstance(c, dict)]


def _interaction_data(contact: Mapping[str, Any]) -> dict[str, Any]:
    def strings(key: str) -> list[str]:
        values = contact.get(key)
        return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []

    data: dict[str, Any] = {
        "contact_external_id": str(contact.get("id", "")),
        "contact_emails": strings("emails")[:100],
        "contact_phones": strings("phones")[:100],
    }
    if isinstance(contact.get("name"), str):
        data["contact_name"] = contact["name"][:1024]
    return data


@dataclass(slots=True)
class TryResult:
    auth: Call
    contacts: Call | None = None
    interactions: list[tuple[dict[str, Any], Call]] = field(default_factory=list)
    stored_fields: list[str] = field(default_factory=list)

    @property
    def contact_rows(self) -> list[dict[str, Any]]:
        return _contacts(self.contacts)[:SHOWN_CONTACTS] if self.contacts else []

    @property
    def contact_count(self) -> int:
        return len(_contacts(self.contacts)) if self.contacts else 0

    @property
    def ok(self) -> bool:
        calls = [self.auth, self.contacts, *(c for _, c in self.interactions)]
        return all(c.ok for c in calls if c is not None and c.skipped is None)


async def try_connection(
    where: InProcess,
    name: str,
    auth: Mapping[str, str],
    features: Sequence[str],
    interaction_types: Sequence[str],
    mask: Masker,
) -> TryResult:
    """Auth validation; then (when it passed) the first contact-sync page and the
    interactions of its first contacts, as Talkdesk does after a user connects."""
    credentials: dict[str, Any] = dict(auth)
    async with where.client() as client:
        if "auth_validation" in features:
            validation = await _post(
                client, mask, "auth validation", f"/{name}/auth_validation", {"auth": credentials}
            )
        else:
            validation = Call("auth validation", "-", skipped="not offered by this connector")
        result = TryResult(validation)
        if validation.skipped is None and not validation.ok:
            return result
        if isinstance(validation.body, dict):
            # Talkdesk stores what auth validation returns and sends it on every later call.
            # Only the names are shown: a value could be a credential the connector derived.
            result.stored_fields = sorted(validation.body)
            credentials = {**credentials, **validation.body}
        if "contact_sync" not in features:
            return result
        result.contacts = await _post(
            client,
            mask,
            "contact sync (first page)",
            f"/{name}/contact_sync",
            {"auth": credentials, "meta": {}},
        )
        if "interaction_update" not in features or not result.contacts.ok:
            return result
        for contact in _contacts(result.contacts)[:INTERACTION_CONTACTS]:
            call = await _post(
                client,
                mask,
                "interaction retrieval",
                f"/{name}/interaction_update",
                {
                    "auth": credentials,
                    "meta": {"interaction_types": list(interaction_types)},
                    "data": _interaction_data(contact),
                },
            )
            result.interactions.append((contact, call))
    return result


@dataclass(slots=True)
class LookupResult:
    caller: str
    phone: str | None
    email: str | None
    matches: list[dict[str, Any]] = field(default_factory=list)
    scanned_contacts: int = 0
    scanned_pages: int = 0
    scan_complete: bool = False
    scan_error: Call | None = None
    interactions: Call | None = None


def _matches(contact: Mapping[str, Any], phone: str | None, email: str | None) -> bool:
    if phone and phone in (contact.get("phones") or ()):
        return True
    emails = contact.get("emails") or ()
    return bool(email) and any(isinstance(e, str) and e.lower() == email for e in emails)


async def lookup_caller(
    where: InProcess,
    name: str,
    auth: Mapping[str, str],
    caller: str,
    region: str,
    features: Sequence[str],
    interaction_types: Sequence[str],
    mask: Masker,
) -> LookupResult:
    """Who the caller is (Talkdesk matches callers against its synced contacts: a bounded
    scan of the contact sync stands in for that), and the interactions the connector's own
    lookup path finds for the number or address (`interaction_update` with
    `contact_phones` / `contact_emails`, no contact id)."""
    text = caller.strip()
    email = text.lower() if "@" in text else None
    phone = None if email else normalize_phone(text, region) or None
    result = LookupResult(text, phone, email)
    credentials: dict[str, Any] = dict(auth)
    async with where.client() as client:
        if "contact_sync" in features:
            deadline = time.monotonic() + LOOKUP_SECONDS
            meta: dict[str, Any] = {}
            while result.scanned_pages < LOOKUP_PAGES and time.monotonic() < deadline:
                page = await _post(
                    client,
                    mask,
                    "contact sync",
                    f"/{name}/contact_sync",
                    {"auth": credentials, "meta": meta},
                )
                if not page.ok:
                    result.scan_error = page
                    break
                result.scanned_pages += 1
                contacts = _contacts(page)
                result.scanned_contacts += len(contacts)
                result.matches += [c for c in contacts if _matches(c, phone, email)]
                offset = page.body.get("next_offset") if isinstance(page.body, dict) else None
                if offset is None:
                    result.scan_complete = True
                    break
                meta = {"offset": offset}
        if "interaction_update" in features:
            data = {
                "contact_phones": [phone] if phone else [],
                "contact_emails": [email] if email else [],
            }
            result.interactions = await _post(
                client,
                mask,
                "interaction retrieval",
                f"/{name}/interaction_update",
                {
                    "auth": credentials,
                    "meta": {"interaction_types": list(interaction_types)},
                    "data": data,
                },
            )
    return result
