"""``GoogleSandbox``: Google's People API (contacts of one Google account) on the kit.

What it reproduces of Google's documented and observed behaviour (digest:
/work/shared/spec/google-contacts.md):

- ``personFields``/``readMask`` required, unknown paths refused with Google's 400s; empty
  fields omitted; ``pageSize`` clamped (0 or absent: 100, at most 1000);
- opaque page tokens bound to the first call's parameters: any other parameter changed on a
  later page (``syncToken`` dropped, ``pageSize`` or fields changed) is a 400;
- ``nextSyncToken`` only on the last page and only with ``requestSyncToken=true``;
- a change log behind sync tokens, in the order writes become visible (the store's ``lag`` is
  the propagation delay): updated people in full, ``deleted: true`` stubs (visible only with
  ``metadata`` in the mask), renames with ``metadata.previousResourceNames`` (the old name is
  not reported deleted unless ``rename_stubs``);
- a run reads the snapshot its first page saw; writes landing mid-paging come with the next
  incremental (the token marks the first page's position in the log);
- sync tokens expire ``token_ttl`` seconds (7 days) after the full sync their chain started
  from (incrementals do not extend it unless ``ttl_extends``): 400 ``EXPIRED_SYNC_TOKEN``
  (``expired_status=410`` for the old documents' answer);
- a full-sync quota (first pages with ``requestSyncToken`` and no ``syncToken``) and
  per-minute 429s (``RESOURCE_EXHAUSTED``, no ``Retry-After``);
- ``searchContacts``: prefix-phrase matching, 30 results at most, answered from a cache that
  only an empty-query warm-up refreshes;
- writes for one user must be sequential: a create overlapping another is a 409 ``ABORTED``;
- scopes per method (403 ``ACCESS_TOKEN_SCOPE_INSUFFICIENT``), 401 with ``WWW-Authenticate``.
"""

from __future__ import annotations

import copy
import random
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from .._clock import Clock
from .._gateway import Call, Reply
from .._index import SortedIndex
from .._rate import RateLimiter, RateState
from .._sandbox import VendorSandbox, json_response, vendor_app
from .._seed import Faker
from .._store import VersionedStore
from ._people import (
    ApiError,
    error_body,
    fields_of,
    invalid,
    new_number,
    person_from_body,
    person_from_seed,
    render,
    stamp_person,
    stub,
)

__all__ = ["SCOPE", "GoogleSandbox"]

SCOPE = "https://www.googleapis.com/auth/"
READ_SCOPES = frozenset({"contacts", "contacts.readonly"})
_RPC = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
    404: "NOT_FOUND", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
    503: "UNAVAILABLE",
}  # fmt: skip
_MESSAGES = {
    404: "Requested entity was not found.",
    409: "The operation was aborted.",
    500: "Internal error encountered.",
    503: "The service is currently unavailable.",
}
_EXPIRED = "Sync token is expired. Clear local cache and retry call without the sync token."
_SORTS = ("LAST_MODIFIED_ASCENDING", "LAST_MODIFIED_DESCENDING", "FIRST_NAME_ASCENDING",
          "LAST_NAME_ASCENDING")  # fmt: skip
_SOURCES = ("READ_SOURCE_TYPE_CONTACT", "READ_SOURCE_TYPE_PROFILE")
_DAY = 86_400.0


class _Journal(SortedIndex[dict[str, Any]]):
    """The visible view that also logs, in order, every id whose visible version changed:
    the change log sync tokens point into."""

    def __init__(self) -> None:
        super().__init__({"_updated": lambda r: r["_updated"], "_name": _first_name})
        self.log: list[str] = []

    def apply_many(self, items: Iterable[tuple[str, dict[str, Any] | None]]) -> None:
        items = list(items)
        self.log.extend(rid for rid, _ in items)
        super().apply_many(items)


def _first_name(record: Mapping[str, Any]) -> str:
    names = record.get("names") or [{}]
    return str(names[0].get("givenName") or names[0].get("displayName") or "").lower()


@dataclass(frozen=True, slots=True)
class _Run:
    """What a listing's first call fixed: its parameters, its snapshot, its log position."""

    bound: tuple[tuple[str, str], ...]
    items: list[tuple[str, dict[str, Any] | None]]  # (resource, person or None: deleted)
    position: int  # the change log's length when the first page was read
    origin: float  # when the token chain's full sync ran (expiry counts from it)
    fields: frozenset[str]
    size: int
    tokens: bool  # requestSyncToken


@dataclass(frozen=True, slots=True)
class _SyncToken:
    position: int
    origin: float
    issued: float


class GoogleSandbox(VendorSandbox):
    """A fake Google account's contacts for the bridge's ``google`` connector.

    ``token`` is an access token with the ``contacts`` scope (more with ``add_token``);
    ``lag`` the propagation delay of writes into list/sync/search reads; ``rate_limit`` the
    critical reads (and writes) per minute per user; ``full_syncs`` the full-sync quota
    (first pages per ``full_sync_window`` seconds)."""

    connector = "google"
    title = "Google People API sandbox"

    def __init__(
        self,
        *,
        token: str = "ya29.sandbox-token",
        latency: float = 0.0,
        clock: Clock | None = None,
        lag: float | None = None,
        rate_limit: int | tuple[int, float] | None = 90,
        full_syncs: int = 20,
        full_sync_window: float = 3600.0,
        token_ttl: float = 7 * _DAY,
        ttl_extends: bool = False,
        expired_status: int = 400,
        rename_stubs: bool = False,
        write_seconds: float = 0.0,
        seed: int = 0,
    ) -> None:
        window = (rate_limit, 60.0) if isinstance(rate_limit, int) else rate_limit
        super().__init__(clock=clock, latency=latency, rate_limit=window)
        self.token = token
        self.tokens: dict[str, frozenset[str]] = {
            token: frozenset({"contacts", "contacts.other.readonly"})
        }
        self.index = _Journal()
        self.store: VersionedStore[dict[str, Any]] = VersionedStore(
            self.clock, lag=lag or 0.0, modified="_updated", index=self.index
        )
        self.lock: threading.RLock = self.store.lock
        self.rng = random.Random(seed)
        self.numbers: dict[str, int] = {}
        self.renamed_away: set[str] = set()
        self.token_ttl = token_ttl
        self.ttl_extends = ttl_extends
        self.expired_status = expired_status
        self.rename_stubs = rename_stubs
        self.write_seconds = write_seconds
        self.full_sync_quota = RateLimiter(full_syncs, full_sync_window, self.clock, aligned=False)
        self._pages: dict[str, tuple[_Run, int]] = {}
        self._sync_tokens: dict[str, _SyncToken] = {}
        self._search_cache: dict[str, dict[str, Any]] = {}
        self._writing = False
        self.account = "people/100000000000000000001"

    # -- the kit's hooks ------------------------------------------------------------------

    def build_app(self) -> ASGIApp:
        def api_error(exc: Exception) -> Reply:
            assert isinstance(exc, ApiError)
            return Reply.json(exc.body(), exc.status)

        routes = [
            Route("/v1/people/me/connections", self._connections, methods=["GET"]),
            Route("/v1/people/me", self._me, methods=["GET"]),
            Route("/v1/people:searchContacts", self._search, methods=["GET"]),
            Route("/v1/people:createContact", self._create, methods=["POST"]),
            Route("/v1/people/{number:str}", self._get, methods=["GET"]),
        ]
        return vendor_app(self, routes, errors={ApiError: api_error})

    def authenticate(self, call: Call) -> str | None:
        scheme, _, token = call.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token not in self.tokens:
            return None
        return self.account

    def unauthorized(self, call: Call) -> Reply:
        if "authorization" not in call.headers:
            message = (
                "Request is missing required authentication credential. Expected OAuth 2 "
                "access token, login cookie or other valid authentication credential."
            )
            challenge = 'Bearer realm="https://accounts.google.com/"'
        else:
            message = (
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential."
            )
            challenge = 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
        reply = Reply.json(error_body(401, message, "UNAUTHENTICATED"), 401)
        return reply.with_headers([("WWW-Authenticate", challenge)])

    def error_reply(self, status: int, message: str | None = None) -> Reply:
        rpc = _RPC.get(status, "UNKNOWN")
        text = message or _MESSAGES.get(status) or "Injected failure."
        return Reply.json(error_body(status, text, rpc), status)

    def rate_limited(self, state: RateState | None) -> Reply:
        # Google sends no Retry-After and no rate-limit headers.
        message = (
            "Quota exceeded for quota metric 'Critical read requests (Contact and Profile Reads)' "
            "and limit 'Critical read requests (Contact and Profile Reads) per minute per user' "
            "of service 'people.googleapis.com' for consumer 'project_number:123456789012'."
        )
        return Reply.json(
            error_body(429, message, "RESOURCE_EXHAUSTED", "RATE_LIMIT_EXCEEDED"), 429
        )

    # -- tokens and scopes ----------------------------------------------------------------

    def add_token(self, token: str, scopes: Iterable[str]) -> None:
        """Another access token for the same user, granted ``scopes`` (``contacts.readonly``,
        ``contacts``, ``userinfo.email``...: without the prefix)."""
        self.tokens[token] = frozenset(scopes)

    def _require(self, request: Request, allowed: Iterable[str], method: str) -> None:
        token = request.headers.get("authorization", "").partition(" ")[2]
        if not self.tokens.get(token, frozenset()) & frozenset(allowed):
            raise ApiError(
                403,
                "Request had insufficient authentication scopes.",
                "PERMISSION_DENIED",
                "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
            )

    # -- data -----------------------------------------------------------------------------

    def seed(self, *, contacts: int, seed: int = 0) -> None:
        """``contacts`` contacts written over the last two years (mixed phone spellings, some
        Google cannot parse, mostly placeholder photos). Same seed, same data."""
        faker = Faker(seed)
        self.rng.seed(seed)
        now = self.now
        items = []
        for person in faker.people(contacts):
            record = person_from_seed(person, faker.rng)
            stamp = now - faker.rng.uniform(60, 730 * _DAY)
            number = new_number(self.rng)
            stamp_person(record, number, stamp, 1)
            resource = record["resourceName"]
            self.numbers[resource] = number
            items.append((resource, record, stamp))
        items.sort(key=lambda item: item[2])
        self.store.load(items)

    def create_person(self, fields: Mapping[str, Any] | None = None, **kw: Any) -> str:
        """A new contact (``fields`` in People shape; default: a made-up person), written
        now; returns its resource name."""
        if fields is None:
            faker = Faker(self.rng.randrange(10**9))
            record = person_from_seed(faker.person(self.rng.randrange(10**6)), faker.rng)
        else:
            record = copy.deepcopy(dict(fields))
        record.update(kw)
        with self.lock:
            number = new_number(self.rng)
            stamp_person(record, number, self.now, 1)
            self.numbers[record["resourceName"]] = number
            self.store.create(record["resourceName"], record)
            return str(record["resourceName"])

    def update_person(self, resource: str, **changes: Any) -> dict[str, Any]:
        """A new version (default change: the family name gains a suffix)."""
        with self.lock:
            current = self.store.get(resource)
            if current is None:
                raise KeyError(resource)
            record = copy.deepcopy(current)
            if not changes:
                name = record.get("names", [{}])[0]
                family = f"{name.get('familyName', '')}-{self.rng.randrange(1000)}"
                changes = {
                    "names": [
                        {
                            **name,
                            "familyName": family,
                            "displayName": f"{name.get('givenName', '')} {family}",
                        }
                    ]
                }
            record.update(copy.deepcopy(changes))
            version = len(self.store.history(resource)) + 1
            stamp_person(record, self.numbers[resource], self.now, version)
            self.store.update(resource, record)
            return record

    def delete_person(self, resource: str) -> None:
        with self.lock:
            self.store.delete(resource)

    def rename_person(self, resource: str) -> str:
        """The contact gets linked to a profile: a new resource name, the old one listed in
        ``metadata.previousResourceNames``; returns the new name."""
        with self.lock:
            current = self.store.get(resource)
            if current is None:
                raise KeyError(resource)
            record = copy.deepcopy(current)
            number = new_number(self.rng)
            previous = [*record.get("metadata", {}).get("previousResourceNames", []), resource]
            record.setdefault("metadata", {})["previousResourceNames"] = previous
            stamp_person(record, number, self.now, 1)
            self.numbers[record["resourceName"]] = number
            self.renamed_away.add(resource)
            self.store.delete(resource)
            self.store.create(record["resourceName"], record)
            return str(record["resourceName"])

    def live(self) -> dict[str, dict[str, Any]]:
        """Every live contact, newest version (not lagged), as the API renders all fields."""
        fields = ("names", "emailAddresses", "phoneNumbers", "organizations", "photos",
                  "addresses", "urls", "metadata")  # fmt: skip
        return {rid: render(person, fields) for rid, person in self.store.live()}

    # -- routes ---------------------------------------------------------------------------

    async def _me(self, request: Request) -> Response:
        fields_of(request.query_params.get("personFields"))
        return json_response(
            {
                "resourceName": self.account,
                "etag": "%EgUBAi43PRoEAQIFByIMd2VzdGVyd2luZA==",
                "metadata": {
                    "sources": [{"type": "PROFILE", "id": self.account.split("/")[1]}],
                    "objectType": "PERSON",
                },
            }
        )

    async def _get(self, request: Request) -> Response:
        self._require(request, READ_SCOPES, "GetPerson")
        fields = fields_of(request.query_params.get("personFields"))
        person = self.store.get("people/" + request.path_params["number"])
        if person is None:
            raise ApiError(404, _MESSAGES[404], "NOT_FOUND")
        return json_response(render(person, fields))

    async def _connections(self, request: Request) -> Response:
        self._require(request, READ_SCOPES, "ListConnections")
        params = request.query_params
        fields = fields_of(params.get("personFields"))
        size = _page_size(params.get("pageSize"), default=100, cap=1000)
        if (order := params.get("sortOrder")) is not None and order not in _SORTS:
            raise invalid(f"Invalid value at 'sort_order', \"{order}\"")
        if any(s not in _SOURCES for s in params.getlist("sources")):
            raise invalid()
        tokens = params.get("requestSyncToken", "false").lower() == "true"
        sync_token = params.get("syncToken")
        page_token = params.get("pageToken")
        bound = tuple(sorted((k, v) for k, v in params.multi_items() if k != "pageToken"))
        with self.lock:
            if sync_token is not None:
                self._check_sync_token(sync_token)
            if page_token:
                found = self._pages.get(page_token)
                if found is None or found[0].bound != bound:
                    raise invalid()
                run, offset = found
            else:
                run, offset = self._start(bound, fields, size, tokens, sync_token, order), 0
            items = run.items[offset : offset + run.size]
            end = offset + len(items)
            body: dict[str, Any] = {}
            rendered = [
                render(person, fields)
                if person is not None
                else stub(rid, self.numbers.get(rid, 0), fields)
                for rid, person in items
            ]
            if rendered:
                body["connections"] = rendered
            if end < len(run.items):
                nxt = secrets.token_urlsafe(24)
                self._pages[nxt] = (run, end)
                body["nextPageToken"] = nxt
            elif run.tokens:
                issued = secrets.token_urlsafe(36)
                self._sync_tokens[issued] = _SyncToken(run.position, run.origin, self.now)
                body["nextSyncToken"] = issued
            if run.items and sync_token is None:
                body["totalItems"] = body["totalPeople"] = len(run.items)
        return json_response(body)

    def _check_sync_token(self, token: str) -> _SyncToken:
        known = self._sync_tokens.get(token)
        if known is None:
            raise invalid("Sync token is invalid.")
        since = known.issued if self.ttl_extends else known.origin
        if self.now - since > self.token_ttl:
            if self.expired_status == 410:
                raise ApiError(410, _EXPIRED, "GONE", "EXPIRED_SYNC_TOKEN", "people.googleapis.com")
            raise ApiError(400, _EXPIRED, "FAILED_PRECONDITION", "EXPIRED_SYNC_TOKEN",
                           "people.googleapis.com")  # fmt: skip
        return known

    def _start(
        self,
        bound: tuple[tuple[str, str], ...],
        fields: frozenset[str],
        size: int,
        tokens: bool,
        sync_token: str | None,
        order: str | None,
    ) -> _Run:
        self.store.sync()
        position = len(self.index.log)
        records = self.index.records
        if sync_token is not None:
            known = self._sync_tokens[sync_token]
            latest: dict[str, None] = {}
            for rid in self.index.log[known.position : position]:
                latest.pop(rid, None)
                latest[rid] = None
            items = [
                (rid, records.get(rid))
                for rid in latest
                if rid in records or self.rename_stubs or rid not in self.renamed_away
            ]
            origin = known.origin
        else:
            if tokens:
                state = self.full_sync_quota.hit(self.account)
                if not state.allowed:
                    raise ApiError(
                        429,
                        "Quota exceeded for quota metric 'Full sync requests' and limit "
                        "'Full sync requests per hour per user' of service "
                        "'people.googleapis.com'.",
                        "RESOURCE_EXHAUSTED",
                        "RATE_LIMIT_EXCEEDED",
                    )
            field = (
                "_name" if order in ("FIRST_NAME_ASCENDING", "LAST_NAME_ASCENDING") else "_updated"
            )
            keys = self.index.sorted_keys(field)
            if order == "LAST_MODIFIED_DESCENDING":
                keys = keys[::-1]
            items = [(rid, records[rid]) for _, rid in keys]
            origin = self.now
        return _Run(bound, items, position, origin, fields, size, tokens)

    async def _search(self, request: Request) -> Response:
        self._require(request, READ_SCOPES, "SearchContacts")
        params = request.query_params
        fields = fields_of(params.get("readMask"), "readMask")
        size = _page_size(params.get("pageSize"), default=10, cap=30)
        query = params.get("query")
        if query is None:
            raise invalid("query is required.")
        with self.lock:
            if not query.strip():
                # The warm-up: refresh the cache; answers nothing.
                self.store.sync()
                self._search_cache = dict(self.index.records)
                return json_response({})
            found = [p for p in self._search_cache.values() if _matches(p, query)]
        found.sort(key=lambda p: (_first_name(p), p["resourceName"]))
        results = [{"person": render(p, fields)} for p in found[:size]]
        return json_response({"results": results} if results else {})

    async def _create(self, request: Request) -> Response:
        self._require(request, {"contacts"}, "CreateContact")
        fields = fields_of(request.query_params.get("personFields") or "names,metadata")
        try:
            body = await request.json()
        except ValueError:
            raise invalid("Invalid JSON payload received.") from None
        if not isinstance(body, dict):
            raise invalid("Invalid JSON payload received.")
        record = person_from_body(body)
        if self._writing:
            raise ApiError(409, _MESSAGES[409], "ABORTED")
        self._writing = True
        try:
            if self.write_seconds:
                await anyio.sleep(self.write_seconds)
            resource = self.create_person(record)
        finally:
            self._writing = False
        person = self.store.get(resource)
        assert person is not None
        person = {
            **person,
            "memberships": [
                {
                    "contactGroupMembership": {
                        "contactGroupId": "myContacts",
                        "contactGroupResourceName": "contactGroups/myContacts",
                    }
                }
            ],
        }
        return json_response(render(person, fields | {"memberships"}))

    # -- the Sandbox protocol ---------------------------------------------------------------

    def credentials(self) -> dict[str, str]:
        return {"access_token": self.token}

    def bad_credentials(self) -> dict[str, str]:
        return {"access_token": "ya29.revoked-" + self.token[-8:]}

    def bridge_env(self, base_url: str) -> dict[str, str]:
        return {"TALKDESK_BRIDGE_GOOGLE_BASE_URL": base_url}


def _page_size(raw: str | None, *, default: int, cap: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        size = int(raw)
    except ValueError:
        raise invalid(f"Invalid value at 'page_size' (TYPE_INT32), \"{raw}\"") from None
    if size < 0:
        raise invalid("pageSize must not be negative.")
    return default if size == 0 else min(size, cap)


def _texts(person: Mapping[str, Any]) -> Iterable[str]:
    for name in person.get("names", ()):
        yield from (str(name.get(k) or "") for k in ("displayName", "givenName", "familyName"))
    for key in ("nicknames", "emailAddresses", "organizations"):
        for item in person.get(key, ()):
            yield str(item.get("value") or item.get("name") or "")


def _matches(person: Mapping[str, Any], query: str) -> bool:
    """Google's prefix-phrase match: the query starts a word of a field ("foo n" matches
    "foo name", "nam" does; "oo n" does not). Phones match on their digits."""
    q = query.strip().lower()
    for text in _texts(person):
        text = text.lower()
        if any(
            text.startswith(q, i) for i in range(len(text)) if i == 0 or not text[i - 1].isalnum()
        ):
            return True
    digits = "".join(c for c in q if c.isdigit())
    if len(digits) >= 3 and len(digits) == len(
        q.replace("+", "").replace(" ", "").replace("-", "")
    ):
        for phone in person.get("phoneNumbers", ()):
            for value in (phone.get("canonicalForm"), phone.get("value")):
                if value and "".join(c for c in str(value) if c.isdigit()).startswith(digits):
                    return True
    return False
