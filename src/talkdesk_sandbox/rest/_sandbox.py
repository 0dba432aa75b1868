"""``RestSandbox``: a small company's customer API in three paging styles (see the package)."""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import threading
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from .._clock import Clock
from .._gateway import Call, Reply
from .._index import HIGH_ID, LOW_ID, SortedIndex, sort_key
from .._sandbox import VendorSandbox, json_response, vendor_app
from .._seed import Faker, Person
from .._store import VersionedStore

__all__ = ["MAPPINGS", "STYLES", "ApiError", "RestSandbox"]

STYLES = ("pages", "cursor", "keyset")
MAPPINGS = {style: Path(__file__).with_name("mappings") / f"{style}.toml" for style in STYLES}
_DAY = 86_400.0
_BASIC_USER = "acme"
_MAX_PAGE = {"pages": 100, "cursor": 200, "keyset": 500}
_CRM = "https://crm.acme.example"


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms // 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int(raw: str | None, name: str, default: int | None = None) -> int:
    if raw is None or raw == "":
        if default is None:
            raise ApiError(400, f"{name} is required")
        return default
    if not raw.isdigit() or len(raw) > 16:
        raise ApiError(400, f"{name} must be a non-negative integer")
    return int(raw)


def _tie(rid: str) -> float:
    return (zlib.crc32(rid.encode()) % 1_000_000) / 1_000_000


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


class RestSandbox(VendorSandbox):
    """One company's API for the ``rest`` connector. ``style`` picks the contacts listing
    (``pages``, ``cursor`` or ``keyset``); ``token`` the credential; ``lag`` the delay of
    list reads; ``rate_limit`` calls per 10 s (None: unlimited)."""

    connector = "rest"
    title = "company API sandbox"

    def __init__(
        self,
        *,
        style: str = "pages",
        token: str = "acme-sandbox-token-0123456789",
        latency: float = 0.0,
        clock: Clock | None = None,
        lag: float | None = None,
        rate_limit: int | tuple[int, float] | None = 100,
        seed: int = 0,
    ) -> None:
        if style not in STYLES:
            raise ValueError(f"style must be one of {', '.join(STYLES)}")
        window = (rate_limit, 10.0) if isinstance(rate_limit, int) else rate_limit
        super().__init__(clock=clock, latency=latency, rate_limit=window)
        self.style = style
        self.token = token
        self.index: SortedIndex[dict[str, Any]] = SortedIndex(
            {
                "updated_ms": lambda r: r["updated_ms"],
                "updated_s": lambda r: r["updated_ms"] // 1000,
                "id": lambda r: r["id"],
                # The pages API's order: by time, ties in a stable order that is not the id's.
                "_order": lambda r: r["updated_ms"] + _tie(r["id"]),
            }
        )
        self.store: VersionedStore[dict[str, Any]] = VersionedStore(
            self.clock, lag=lag or 0.0, modified="updated_ms", index=self.index
        )
        self.lock: threading.RLock = self.store.lock
        self._faker = Faker(seed)
        self._next_id = 100_000  # six digits: text order is number order
        self._next_item = 0
        self.tickets: dict[str, list[dict[str, Any]]] = {}
        self.calls_log: dict[str, list[dict[str, Any]]] = {}
        self.notes: dict[str, list[dict[str, Any]]] = {}
        self.agents = [
            {"id": 7, "full_name": "Alex Owner", "email": "alex@acme.example"},
            {"id": 8, "full_name": "Sam Support", "email": "sam@acme.example"},
            {"id": 9, "full_name": "Kim Sales", "email": "kim@acme.example"},
        ]

    # -- the kit's hooks ------------------------------------------------------------------

    def build_app(self) -> ASGIApp:
        def api_error(exc: Exception) -> Reply:
            assert isinstance(exc, ApiError)
            return self.error_reply(exc.status, exc.message)

        listing = {"pages": "/contacts", "cursor": "/customers", "keyset": "/people"}[self.style]
        p = "/api/v1"
        routes = [
            Route(p + listing, self._list, methods=["GET"]),
            Route(p + "/contacts/search", self._search, methods=["GET"]),
            Route(p + "/people/lookup/{value}", self._lookup_path, methods=["GET"]),
            Route(p + "/contacts/{cid}", self._contact, methods=["GET"]),
            Route(p + "/contacts/{cid}/tickets", self._tickets, methods=["GET"]),
            Route(p + "/calls", self._calls, methods=["GET"]),
            Route(p + "/agents", self._agents, methods=["GET"]),
            Route(p + "/me", self._me, methods=["GET"]),
            Route(p + "/contacts", self._create_contact, methods=["POST"]),
            Route(p + "/contacts/{cid}/notes", self._create_note, methods=["POST"]),
            Route(p + "/tickets", self._create_ticket, methods=["POST"]),
        ]
        return vendor_app(self, routes, errors={ApiError: api_error})

    def authenticate(self, call: Call) -> str | None:
        header = call.headers.get("authorization", "")
        if self.style == "cursor":
            given = call.headers.get("x-api-key", "")
        elif self.style == "keyset":
            scheme, _, value = header.partition(" ")
            try:
                decoded = base64.b64decode(value, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            user, _, given = decoded.partition(":")
            if scheme.lower() != "basic" or user != _BASIC_USER:
                return None
        else:
            scheme, _, given = header.partition(" ")
            if scheme.lower() != "bearer":
                return None
        return "acme" if given == self.token else None

    def error_reply(self, status: int, message: str | None = None) -> Reply:
        text = {401: "invalid credentials", 404: "not found", 429: "too many requests"}.get(
            status, message or "something went wrong"
        )
        return Reply.json({"error": {"status": status, "message": message or text}}, status)

    # -- ids and rendering ------------------------------------------------------------------

    def public_id(self, rid: str) -> str:
        return f"cus_{rid}" if self.style == "cursor" else rid

    def _rid(self, public: str) -> str:
        if self.style == "cursor":
            return public.removeprefix("cus_") if public.startswith("cus_") else ""
        return public

    def render(self, r: Mapping[str, Any]) -> dict[str, Any]:
        """A contact as this style's API spells it."""
        emails: list[str] = r["emails"]
        phones: list[dict[str, str]] = r["phones"]
        if self.style == "pages":
            return {
                "id": int(r["id"]),
                "first_name": r["first_name"],
                "last_name": r["last_name"],
                "job_title": r["title"],
                "company": {"name": r["company"]} if r["company"] else None,
                "emails": [
                    {"address": e, "type": "work" if i else "main"} for i, e in enumerate(emails)
                ],
                "phones": [{"number": p["number"], "type": p["kind"]} for p in phones],
                "city": r["city"],
                "created_at": _iso(r["created_ms"]),
                "updated_at": _iso(r["updated_ms"]),
            }
        if self.style == "cursor":
            return {
                "customer_id": self.public_id(r["id"]),
                "display_name": f"{r['first_name']} {r['last_name']}".strip(),
                "org": r["company"],
                "role": r["title"],
                "contact": {
                    "emails": list(emails),
                    "phone_numbers": [{"value": p["number"], "label": p["kind"]} for p in phones],
                },
                "modified_ms": r["updated_ms"],
            }
        return {
            "id": int(r["id"]),
            "name": f"{r['first_name']} {r['last_name']}".strip(),
            "work_email": emails[0] if emails else None,
            "other_emails": emails[1:],
            "phone": phones[0]["number"] if phones else None,
            "mobile": phones[1]["number"] if len(phones) > 1 else None,
            "organisation": r["company"],
            "updated": r["updated_ms"] // 1000,
        }

    # -- data -----------------------------------------------------------------------------

    def _new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def _from_person(self, person: Person, rid: str, ms: int) -> dict[str, Any]:
        return {
            "id": rid,
            "first_name": person.first_name,
            "last_name": person.last_name,
            "title": person.title,
            "company": person.company.name if person.company else None,
            "city": person.place.city,
            "emails": [e.address for e in person.emails],
            "phones": [{"number": p.number, "kind": p.kind, "e164": p.e164} for p in person.phones],
            "created_ms": ms,
            "updated_ms": ms,
        }

    def _item_id(self) -> int:
        self._next_item += 1
        return self._next_item

    def add_ticket(self, rid: str, subject: str, *, at: float | None = None, **extra: Any) -> int:
        with self.lock:
            tid = self._item_id()
            ms = int((self.now if at is None else at) * 1000)
            ticket = {
                "id": tid,
                "subject": subject,
                "body": extra.get("body"),
                "state": extra.get("state", "open"),
                "urgency": extra.get("urgency", "P3"),
                "opened_at": _iso(ms),
            }
            self.tickets.setdefault(rid, []).append(ticket)
            return tid

    def add_call(self, rid: str, summary: str, *, at: float | None = None) -> int:
        with self.lock:
            cid = len(self.calls_log.get(rid, ())) + 1
            # Calls are numbered per contact: ids that collide with tickets' on purpose.
            ms = int((self.now if at is None else at) * 1000)
            call = {"call_id": cid, "summary": summary, "outcome": "answered", "at": ms}
            self.calls_log.setdefault(rid, []).append(call)
            return cid

    def seed(self, *, contacts: int, seed: int = 0) -> None:
        """``contacts`` people written over two years, some in bulk imports that share one
        second; tickets and calls on most; same seed, same data."""
        faker = Faker(seed)
        self._faker = faker
        now = self.now
        items = []
        stamp = now
        batch = 0
        with self.lock:
            for person in faker.people(contacts):
                if batch <= 0:
                    stamp = now - faker.rng.uniform(600, 730 * _DAY)
                    batch = faker.rng.randint(20, 80) if faker.rng.random() < 0.02 else 1
                batch -= 1
                rid = self._new_id()
                ms = int(stamp * 1000) + (faker.rng.randrange(1000) if batch == 0 else 0)
                items.append((rid, self._from_person(person, rid, ms), ms / 1000))
                for _ in range(faker.rng.choice((0, 1, 1, 2))):
                    self.add_ticket(rid, faker.subject(), at=stamp, body="Details from the form")
                for _ in range(faker.rng.choice((0, 1, 2))):
                    self.add_call(rid, f"Call about {faker.subject().lower()}", at=stamp)
            items.sort(key=lambda item: item[2])
            self.store.load(items)

    def create_contact(self, **fields: Any) -> str:
        """A new contact written now (default: a made-up one); returns the internal id."""
        with self.lock:
            rid = self._new_id()
            person = Faker(self._faker.rng.randrange(10**9)).person(int(rid))
            record = self._from_person(person, rid, int(self.now * 1000))
            record.update(fields)
            self.store.create(rid, record)
            return rid

    def update_contact(self, rid: str, *, delay: float = 0.0, **changes: Any) -> dict[str, Any]:
        """A new version stamped now (default change: a title); ``delay``: a late commit."""
        with self.lock:
            current = self.store.get(rid)
            if current is None:
                raise KeyError(rid)
            record = copy.deepcopy(current)
            record.update(changes or {"title": f"Title {self._faker.rng.randrange(10**6)}"})
            record["updated_ms"] = int(self.now * 1000)
            self.store.update(rid, record, delay=delay)
            return record

    def delete_contact(self, rid: str) -> None:
        with self.lock:
            self.store.delete(rid)

    def live(self) -> dict[str, dict[str, Any]]:
        """Every live contact by internal id, newest version (not lagged)."""
        return dict(self.store.live())

    # -- routes ---------------------------------------------------------------------------

    def _size(self, raw: str | None) -> int:
        return max(1, min(_int(raw, "page size", 25), _MAX_PAGE[self.style]))

    async def _list(self, request: Request) -> Response:
        if self.style == "pages":
            return self._pages(request)
        if self.style == "cursor":
            return self._cursor(request)
        return self._keyset(request)

    def _pages(self, request: Request) -> Response:
        q = request.query_params
        page = max(1, _int(q.get("page"), "page", 1))
        size = self._size(q.get("per_page"))
        with self.lock:
            self.store.sync()
            records = self.index.records
            raw = q.get("updated_since")
            bound = 0
            if raw is not None:
                try:
                    since = dt.datetime.fromisoformat(raw)
                except ValueError:
                    raise ApiError(400, "updated_since must be an ISO 8601 time") from None
                if since.tzinfo is None:
                    since = since.replace(tzinfo=dt.UTC)
                bound = int(since.timestamp()) * 1000  # inclusive, whole seconds
            if q.get("sort") == "updated_at":
                keys = self.index.sorted_keys("_order")
                at = bisect_left(keys, (sort_key(bound), LOW_ID))
                ids = [rid for _, rid in keys[at + (page - 1) * size : at + page * size]]
                total = len(keys) - at
            else:  # the documented default order: by id
                every = [rid for _, rid in self.index.sorted_keys("id")]
                every = [i for i in every if records[i]["updated_ms"] >= bound]
                ids, total = every[(page - 1) * size : page * size], len(every)
            data = [self.render(records[i]) for i in ids]
            meta = {"page": page, "per_page": size, "total": total}
        return json_response({"data": data, "meta": meta})

    def _cursor(self, request: Request) -> Response:
        q = request.query_params
        size = self._size(q.get("limit"))
        with self.lock:
            self.store.sync()
            records = self.index.records
            cursor = q.get("cursor")
            if cursor:
                try:
                    ms, rid = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
                    start: tuple[Any, str] = (sort_key(int(ms)), str(rid))
                except (ValueError, TypeError, binascii.Error):
                    raise ApiError(400, "cursor is not valid") from None
            else:
                after = (
                    _int(q.get("modified_after"), "modified_after", -1)
                    if q.get("modified_after")
                    else -1
                )
                start = (sort_key(after), HIGH_ID)  # exclusive
            keys = self.index.sorted_keys("updated_ms")
            at = bisect_right(keys, start)
            chunk = [rid for _, rid in keys[at : at + size]]
            data = [self.render(records[i]) for i in chunk]
            more = at + size < len(keys)
            nxt = None
            if more and chunk:
                last = records[chunk[-1]]
                raw = orjson.dumps([last["updated_ms"], last["id"]])
                nxt = base64.urlsafe_b64encode(raw).decode()
        return json_response({"results": data, "next_cursor": nxt})

    def _keyset(self, request: Request) -> Response:
        q = request.query_params
        size = self._size(q.get("limit"))
        after_id = q.get("after_id")
        with self.lock:
            self.store.sync()
            records = self.index.records
            since = _int(q.get("updated_after"), "updated_after", 0)
            if after_id is not None and not after_id.isdigit():
                raise ApiError(400, "after_id must be a contact id")
            # (updated, id) after (updated_after, after_id); without after_id: updated > since.
            start = (sort_key(since), after_id if after_id is not None else HIGH_ID)
            keys = self.index.sorted_keys("updated_s")
            at = bisect_right(keys, start)
            chunk = [rid for _, rid in keys[at : at + size]]
            data = [self.render(records[i]) for i in chunk]
            headers = {}
            if len(chunk) == size and at + size < len(keys):
                last = records[chunk[-1]]
                query = urlencode(
                    {
                        "updated_after": last["updated_ms"] // 1000,
                        "after_id": last["id"],
                        "limit": size,
                    }
                )
                base = str(request.base_url).rstrip("/")
                headers["Link"] = f'<{base}/api/v1/people?{query}>; rel="next"'
        response = json_response(data)
        response.headers.update(headers)
        return response

    def _matching(self, email: str | None, phone: str | None) -> list[dict[str, Any]]:
        with self.lock:
            found = []
            for _, r in self.store.live():
                if (email and email.lower() in (e.lower() for e in r["emails"])) or (
                    phone
                    and _digits(phone)
                    and any(_digits(p["e164"]) == _digits(phone) for p in r["phones"])
                ):
                    found.append(r)
            return found[:10]

    async def _search(self, request: Request) -> Response:
        q = request.query_params
        found = [self.render(r) for r in self._matching(q.get("email"), q.get("phone"))]
        key = "results" if self.style == "cursor" else "data"
        return json_response(found if self.style == "keyset" else {key: found})

    async def _lookup_path(self, request: Request) -> Response:
        value = request.path_params["value"]
        email, phone = (value, None) if "@" in value else (None, value)
        return json_response([self.render(r) for r in self._matching(email, phone)])

    def _live(self, public: str) -> str:
        rid = self._rid(public)
        if not rid or self.store.get(rid) is None:
            raise ApiError(404, "no such contact")
        return rid

    async def _contact(self, request: Request) -> Response:
        rid = self._live(request.path_params["cid"])
        record = self.store.get(rid)
        assert record is not None
        return json_response(self.render(record))

    async def _tickets(self, request: Request) -> Response:
        rid = self._live(request.path_params["cid"])
        with self.lock:
            found = sorted(self.tickets.get(rid, ()), key=lambda t: t["opened_at"], reverse=True)
        return json_response(
            {"data": found[: _int(request.query_params.get("limit"), "limit", 20)]}
        )

    async def _calls(self, request: Request) -> Response:
        rid = self._live(request.query_params.get("contact_id") or "")
        with self.lock:
            found = sorted(self.calls_log.get(rid, ()), key=lambda c: c["at"], reverse=True)
        return json_response({"calls": found})

    async def _agents(self, request: Request) -> Response:
        return json_response({"data": self.agents})

    async def _me(self, request: Request) -> Response:
        return json_response({"account": "acme", "plan": "standard"})

    async def _body(self, request: Request) -> dict[str, Any]:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise ApiError(400, "the body is not JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be an object")
        return body

    async def _create_contact(self, request: Request) -> Response:
        body = await self._body(request)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(422, "name is required")
        email, phone = body.get("email"), body.get("phone")
        first, _, last = name.strip().partition(" ")
        fields: dict[str, Any] = {"first_name": first, "last_name": last, "title": None}
        fields["emails"] = [email] if isinstance(email, str) and email else []
        fields["phones"] = (
            [{"number": phone, "kind": "work", "e164": phone}]
            if isinstance(phone, str) and phone
            else []
        )
        rid = self.create_contact(**fields)
        public = self.public_id(rid)
        return json_response({"id": public, "url": f"{_CRM}/contacts/{public}"}, 201)

    async def _create_note(self, request: Request) -> Response:
        rid = self._live(request.path_params["cid"])
        body = await self._body(request)
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(422, "text is required")
        with self.lock:
            note = {"id": self._item_id(), "text": text, "author_id": body.get("author_id")}
            self.notes.setdefault(rid, []).append(note)
        return json_response({"note": {**note, "contact_id": self.public_id(rid)}}, 201)

    async def _create_ticket(self, request: Request) -> Response:
        body = await self._body(request)
        rid = self._live(str(body.get("contact_id") or ""))
        subject = body.get("subject")
        if not isinstance(subject, str) or not subject.strip():
            raise ApiError(422, "subject is required")
        urgency = {"low": "P4", "normal": "P3", "high": "P2", "urgent": "P1"}.get(
            str(body.get("priority") or "normal"), "P3"
        )
        tid = self.add_ticket(rid, subject, body=body.get("body"), urgency=urgency, state="new")
        return json_response({"ticket": {"id": tid, "contact_id": self.public_id(rid)}}, 201)

    # -- the Sandbox protocol ---------------------------------------------------------------

    @property
    def mapping(self) -> Path:
        return MAPPINGS[self.style]

    def credentials(self) -> dict[str, str]:
        if self.style == "keyset":
            return {"username": _BASIC_USER, "password": self.token}
        return {"api_key" if self.style == "cursor" else "api_token": self.token}

    def bad_credentials(self) -> dict[str, str]:
        bad = "revoked-" + self.token[-8:]
        if self.style == "keyset":
            return {"username": _BASIC_USER, "password": bad}
        return {"api_key" if self.style == "cursor" else "api_token": bad}

    def bridge_env(self, base_url: str) -> dict[str, str]:
        return {
            "TALKDESK_BRIDGE_REST_MAPPING": str(self.mapping),
            "TALKDESK_BRIDGE_REST_BASE_URL": base_url.rstrip("/") + "/api/v1",
        }
