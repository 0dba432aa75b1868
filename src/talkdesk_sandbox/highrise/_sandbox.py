"""``HighriseSandbox``: one Highrise account's XML API on the kit.

What it reproduces (digest: /work/shared/spec/highrise.md, section 8):

- HTTP Basic with the API token as user name (any password) or a Bearer token; 401 otherwise;
- ``.xml`` paths and XML bodies (``nil="true"``, ``type="array"``, empty self-closing lists,
  ``avatar_url`` on some people and ``avatar-url`` on others);
- ``GET /people.xml?since=yyyymmddhhmmss`` (UTC, second resolution): people by ascending
  ``updated_at`` with a stable tie order that is *not* by id, ``since`` exclusive by default
  (``since_inclusive=True`` for the other reading), offset ``n`` over the list as it is at
  each call, so a person updated mid-walk moves to the end and the rest shift back one; pages
  of ``page_size`` (500); without ``since`` the order is by name, not by id;
- list and search reads see writes ``lag`` seconds late (late commits: ``update_person(...,
  delay=...)``), reads by id are live;
- search (``criteria[email]``, ``criteria[phone]``, ``term``) in pages of 25; email search
  limited to 2 calls per 10 s, everything to 150 calls per 5 s per account, both answered
  ``503`` with ``Retry-After``;
- notes and emails per person, 25 per page, newest first; tasks: the token user's upcoming
  ones only;
- creates answer ``201`` with ``Location`` and the full XML; ``422`` with ``<errors>``
  (missing fields, read-only ``tags``/avatar on create), ``507`` past ``people_quota``;
  ``company-name`` finds or creates a company;
- ``302 Found`` to the other scheme when ``ssl_enabled`` disagrees with the call's scheme.
"""

from __future__ import annotations

import copy
import math
import random
import threading
import zlib
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .._clock import Clock
from .._gateway import Call, Reply
from .._index import SortedIndex
from .._rate import RateLimiter, RateState
from .._sandbox import VendorSandbox, vendor_app
from .._seed import Faker, Person
from .._store import VersionedStore
from ._xml import DECLARATION, errors_xml, render_list, render_one

__all__ = ["ApiError", "HighriseSandbox"]

_DAY = 86_400.0
_SEARCH_PAGE = 25
_RECORDINGS_PAGE = 25
_XML = "application/xml; charset=utf-8"
_LOCATIONS = {"mobile": "Mobile", "work": "Work", "home": "Home"}


class ApiError(Exception):
    def __init__(self, status: int, *messages: str) -> None:
        super().__init__(status, messages)
        self.status = status
        self.messages = messages


def _xml(
    body: bytes | str, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    content = body.encode() if isinstance(body, str) else body
    return Response(content, status_code=status, media_type=_XML, headers=dict(headers or {}))


def _since(raw: str) -> int:
    import datetime as dt

    try:
        if len(raw) != 14 or not raw.isdigit():
            raise ValueError
        moment = dt.datetime.strptime(raw, "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    except ValueError:
        raise ApiError(400, "since must be yyyymmddhhmmss") from None
    return int(moment.timestamp())


def _offset(raw: str | None) -> int:
    if raw is None or raw == "":
        return 0
    if not raw.isdigit():
        raise ApiError(400, "n must be a non-negative integer")
    return int(raw)


def _tie(person_id: int) -> float:
    # A stable order among people sharing one second, deliberately not their id order.
    return (zlib.crc32(str(person_id).encode()) % 1_000_000) / 1_000_000


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


class HighriseSandbox(VendorSandbox):
    """A fake Highrise account for the bridge's ``highrise`` connector.

    ``token`` the API token of the account's first user (``me``); ``account`` the subdomain;
    ``lag`` the delay of list/search reads; ``rate_limit`` calls per 5 s (150), with
    ``email_search_limit`` (2 per 10 s) on top; ``page_size`` of ``/people.xml`` (500)."""

    connector = "highrise"
    title = "Highrise API sandbox"

    def __init__(
        self,
        *,
        token: str = "hr-sandbox-token-0123456789abcdef",
        account: str = "acme",
        latency: float = 0.0,
        clock: Clock | None = None,
        lag: float | None = None,
        rate_limit: int | tuple[int, float] | None = 150,
        email_search_limit: tuple[int, float] | None = (2, 10.0),
        page_size: int = 500,
        since_inclusive: bool = False,
        people_quota: int | None = None,
        ssl_enabled: bool | None = None,
        seed: int = 0,
    ) -> None:
        window = (rate_limit, 5.0) if isinstance(rate_limit, int) else rate_limit
        super().__init__(clock=clock, latency=latency, rate_limit=window)
        self.token = token
        self.account = account
        self.page_size = page_size
        self.since_inclusive = since_inclusive
        self.people_quota = people_quota
        self.ssl_enabled = ssl_enabled
        self.email_limiter = (
            None
            if email_search_limit is None
            else RateLimiter(email_search_limit[0], email_search_limit[1], self.clock)
        )
        self.index: SortedIndex[dict[str, Any]] = SortedIndex(
            {
                "updated_at": lambda r: r["updated_at"],
                "_order": lambda r: r["updated_at"] + _tie(r["id"]),
            }
        )
        self.store: VersionedStore[dict[str, Any]] = VersionedStore(
            self.clock, lag=lag or 0.0, modified="updated_at", index=self.index
        )
        self.lock: threading.RLock = self.store.lock
        self.rng = random.Random(seed)
        self._next_party = 1000
        self._next_recording = 500_000
        self._next_task = 900_000
        self.companies: dict[str, int] = {}
        self.notes: dict[int, list[dict[str, Any]]] = {}
        self.emails: dict[int, list[dict[str, Any]]] = {}
        self.tasks: dict[int, list[dict[str, Any]]] = {}
        now = self.now
        self.users: list[dict[str, Any]] = [
            {
                "id": 101,
                "name": "Alex Owner",
                "email_address": "alex@acme.example",
                "token": token,
                "created_at": now - 900 * _DAY,
            },
            {
                "id": 102,
                "name": "Sam Seller",
                "email_address": "sam@acme.example",
                "token": "hr-second-user-token-00000000",
                "created_at": now - 400 * _DAY,
            },
            {
                "id": 103,
                "name": "Kim Support",
                "email_address": "kim@acme.example",
                "token": "hr-third-user-token-000000000",
                "created_at": now - 100 * _DAY,
            },
        ]

    # -- the kit's hooks ------------------------------------------------------------------

    def build_app(self) -> ASGIApp:
        def api_error(exc: Exception) -> Reply:
            assert isinstance(exc, ApiError)
            return self.error_reply(exc.status, "; ".join(exc.messages) or None)

        routes = [
            Route("/me.xml", self._me, methods=["GET"]),
            Route("/account.xml", self._account, methods=["GET"]),
            Route("/users.xml", self._users, methods=["GET"]),
            Route("/people.xml", self._people, methods=["GET"]),
            Route("/people.xml", self._create_person, methods=["POST"]),
            Route("/people/search.xml", self._search, methods=["GET"]),
            Route("/people/{pid:int}.xml", self._person, methods=["GET"]),
            Route("/people/{pid:int}/notes.xml", self._notes, methods=["GET"]),
            Route("/people/{pid:int}/emails.xml", self._emails, methods=["GET"]),
            Route("/people/{pid:int}/tasks.xml", self._tasks, methods=["GET"]),
            Route("/notes.xml", self._create_note, methods=["POST"]),
            Route("/tasks.xml", self._create_task, methods=["POST"]),
        ]
        app = vendor_app(self, routes, errors={ApiError: api_error})
        return _SchemeCheck(app, self)

    def _user_of(self, call: Call) -> dict[str, Any] | None:
        scheme, _, value = call.headers.get("authorization", "").partition(" ")
        token = None
        if scheme.lower() == "basic":
            import base64
            import binascii

            try:
                token = base64.b64decode(value, validate=True).decode().partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                return None
        elif scheme.lower() == "bearer":
            token = value
        return next((u for u in self.users if token and u["token"] == token), None)

    def authenticate(self, call: Call) -> str | None:
        return self.account if self._user_of(call) is not None else None

    def error_reply(self, status: int, message: str | None = None) -> Reply:
        if status == 422:
            return Reply(
                422, errors_xml(*(message.split("; ") if message else ())), content_type=_XML
            )
        text = {
            401: "HTTP Basic: Access denied.",
            404: "The record could not be found",
            503: "Service Unavailable",
            507: "Insufficient Storage",
        }.get(status, message or "Injected failure")
        return Reply(status, (message or text).encode() + b"\n", content_type="text/plain")

    def rate_limited(self, state: RateState | None) -> Reply:
        after = 1 if state is None else max(1, math.ceil(state.retry_after))
        reply = Reply(503, b"Rate limit exceeded\n", content_type="text/plain")
        return reply.with_headers([("Retry-After", str(after))])

    def check_rate(self, account: str, call: Call) -> RateState | None:
        email = call.path == "/people/search.xml" and any(
            k == "criteria[email]" for k, _ in parse_qsl(call.query)
        )
        if self.email_limiter is not None and email:
            state = self.email_limiter.hit(account)
            if not state.allowed:
                return state
        return super().check_rate(account, call)

    # -- data -----------------------------------------------------------------------------

    def _party_id(self) -> int:
        self._next_party += 1
        return self._next_party

    def _company(self, name: str | None) -> int | None:
        if not name:
            return None
        if name not in self.companies:
            self.companies[name] = self._party_id()
        return self.companies[name]

    def _from_seed(self, person: Person, pid: int, stamp: float) -> dict[str, Any]:
        rng = self.rng
        company = person.company.name if person.company else None
        return {
            "id": pid,
            "first_name": person.first_name,
            "last_name": person.last_name,
            "title": person.title,
            "company_name": company,
            "company_id": self._company(company),
            "background": None,
            "created_at": int(stamp),
            "updated_at": int(stamp),
            "visible_to": "Everyone",
            "author_id": 101,
            "emails": [
                {
                    "id": pid * 10 + i,
                    "address": e.address,
                    "location": "Work"
                    if e.kind == "work"
                    else "Home"
                    if e.kind == "personal"
                    else "Other",
                }
                for i, e in enumerate(person.emails)
            ],
            "phones": [
                {
                    "id": pid * 10 + i,
                    "number": p.number,
                    "location": _LOCATIONS.get(p.kind, "Other"),
                }
                for i, p in enumerate(person.phones)
            ],
            "addresses": [
                {
                    "id": pid,
                    "street": f"{rng.randrange(1, 999)} Main Street",
                    "city": person.place.city,
                    "state": person.place.region,
                    "zip": None,
                    "country": person.place.country,
                    "location": "Work",
                }
            ]
            if rng.random() < 0.6
            else [],
            "twitter": [{"id": pid, "username": person.handle, "location": "Personal"}]
            if rng.random() < 0.3
            else [],
            "web": [{"id": pid, "url": f"https://{person.handle}.example", "location": "Work"}]
            if rng.random() < 0.2
            else [],
            "avatar": f"https://secure.highrisehq.com/avatars/{pid}.png"
            if rng.random() < 0.5
            else None,
        }

    def seed(self, *, contacts: int, seed: int = 0) -> None:
        """``contacts`` people written over two years, a quarter of them in bulk imports that
        share one second; notes, emails and tasks on most; same seed, same data."""
        faker = Faker(seed)
        self.rng.seed(seed)
        now = self.now
        items = []
        stamp = now
        batch = 0
        with self.lock:
            for person in faker.people(contacts):
                if batch <= 0:
                    stamp = now - faker.rng.uniform(120, 730 * _DAY)
                    batch = faker.rng.randint(20, 80) if faker.rng.random() < 0.02 else 1
                batch -= 1
                pid = self._party_id()
                record = self._from_seed(person, pid, stamp)
                items.append((str(pid), record, float(int(stamp))))
                for _ in range(faker.rng.choice((0, 1, 1, 2, 3))):
                    self._add_recording(self.notes, pid, faker.subject(), stamp, faker)
                for _ in range(faker.rng.choice((0, 0, 1, 2))):
                    self._add_recording(self.emails, pid, faker.subject(), stamp, faker)
                if faker.rng.random() < 0.1:
                    self.add_task(pid, f"Call back about: {faker.subject()}", due=now + _DAY)
            items.sort(key=lambda item: item[2])
            self.store.load(items)

    def _add_recording(
        self,
        where: dict[int, list[dict[str, Any]]],
        pid: int,
        subject: str,
        after: float,
        faker: Faker,
    ) -> None:
        created = faker.timestamp(after, self.now)
        self._next_recording += 1
        item = {
            "id": self._next_recording,
            "title": subject,
            "body": f"{subject}\nDetails from the call, line two.",
            "author_id": 101,
            "subject_id": pid,
            "created_at": created,
        }
        where.setdefault(pid, []).append(item)

    def add_note(self, pid: int, body: str, *, created: float | None = None) -> int:
        with self.lock:
            self._next_recording += 1
            stamp = int(self.now if created is None else created)
            self.notes.setdefault(pid, []).append(
                {
                    "id": self._next_recording,
                    "body": body,
                    "author_id": 101,
                    "subject_id": pid,
                    "created_at": stamp,
                }
            )
            return self._next_recording

    def add_email(self, pid: int, title: str, body: str, *, created: float | None = None) -> int:
        with self.lock:
            self._next_recording += 1
            stamp = int(self.now if created is None else created)
            self.emails.setdefault(pid, []).append(
                {
                    "id": self._next_recording,
                    "title": title,
                    "body": body,
                    "author_id": 101,
                    "subject_id": pid,
                    "created_at": stamp,
                }
            )
            return self._next_recording

    def add_task(
        self,
        pid: int | None,
        body: str,
        *,
        due: float | None = None,
        owner: int = 101,
        done: bool = False,
    ) -> int:
        with self.lock:
            self._next_task += 1
            self.tasks.setdefault(pid or 0, []).append(
                {
                    "id": self._next_task,
                    "body": body,
                    "owner_id": owner,
                    "subject_id": pid,
                    "frame": "specific" if due else "today",
                    "due_at": due,
                    "done_at": self.now if done else None,
                    "created_at": int(self.now),
                }
            )
            return self._next_task

    def create_person(self, **fields: Any) -> str:
        """A new person written now (default: a made-up one); returns the id."""
        with self.lock:
            pid = self._party_id()
            faker = Faker(self.rng.randrange(10**9))
            record = self._from_seed(faker.person(pid), pid, self.now)
            record.update(fields)
            record["created_at"] = record["updated_at"] = int(self.now)
            self.store.create(str(pid), record)
            return str(pid)

    def update_person(self, pid: str, *, delay: float = 0.0, **changes: Any) -> dict[str, Any]:
        """A new version stamped now (default change: a title); ``delay`` makes it a late
        commit."""
        with self.lock:
            current = self.store.get(pid)
            if current is None:
                raise KeyError(pid)
            record = copy.deepcopy(current)
            record.update(changes or {"title": f"Title {self.rng.randrange(10**6)}"})
            record["updated_at"] = int(self.now)
            self.store.update(pid, record, delay=delay)
            return record

    def delete_person(self, pid: str) -> None:
        with self.lock:
            self.store.delete(pid)

    def live(self) -> dict[str, dict[str, Any]]:
        """Every live person, newest version (not lagged)."""
        return dict(self.store.live())

    # -- rendering ------------------------------------------------------------------------

    def _render_person(self, p: Mapping[str, Any]) -> str:
        def items(rows: list[dict[str, Any]], tag: str, keys: tuple[str, ...]) -> list[Any]:
            return [(tag, {k.replace("_", "-"): row.get(k) for k in keys}) for row in rows]

        avatar = "avatar_url" if p["id"] % 2 else "avatar-url"
        fields: dict[str, Any] = {
            "id": p["id"],
            "first-name": p["first_name"],
            "last-name": p["last_name"],
            "title": p["title"],
            "background": p["background"],
            "linkedin-url": None,
            avatar: p["avatar"],
            "company-id": p["company_id"],
            "company-name": p["company_name"],
            "created-at": _Stamp(p["created_at"]),
            "updated-at": _Stamp(p["updated_at"]),
            "visible-to": p["visible_to"],
            "owner-id": None,
            "group-id": None,
            "author-id": p["author_id"],
            "tags": [],
            "contact-data": {
                "email-addresses": items(
                    p["emails"], "email-address", ("id", "address", "location")
                ),
                "phone-numbers": items(p["phones"], "phone-number", ("id", "number", "location")),
                "addresses": items(
                    p["addresses"],
                    "address",
                    ("id", "street", "city", "state", "zip", "country", "location"),
                ),
                "instant-messengers": [],
                "twitter-accounts": items(
                    p["twitter"], "twitter-account", ("id", "username", "location")
                ),
                "web-addresses": items(p["web"], "web-address", ("id", "url", "location")),
            },
        }
        return _render("person", fields)

    def _people_xml(self, people: Sequence[Mapping[str, Any]]) -> Response:
        return _xml(render_list("people", "person", (self._render_person(p) for p in people)))

    # -- routes ---------------------------------------------------------------------------

    def _caller(self, request: Request) -> dict[str, Any]:
        user = self._user_of(Call.of(request.scope))
        assert user is not None  # the gateway authenticated the call
        return user

    async def _me(self, request: Request) -> Response:
        user = self._caller(request)
        return _xml(
            DECLARATION
            + _render(
                "user",
                {
                    **_user_fields(user),
                    "token": user["token"],
                    "dropbox": f"dropbox@{self.account}.example",
                },
            )
        )

    async def _account(self, request: Request) -> Response:
        fields = {
            "id": 1,
            "name": self.account.title(),
            "subdomain": self.account,
            "plan": "solo",
            "people-count": len(self.store),
            "ssl-enabled": self.ssl_enabled is not False,
        }
        return _xml(DECLARATION + _render("account", fields))

    async def _users(self, request: Request) -> Response:
        return _xml(
            render_list("users", "user", (_render("user", _user_fields(u)) for u in self.users))
        )

    async def _people(self, request: Request) -> Response:
        params = request.query_params
        offset = _offset(params.get("n"))
        raw = params.get("since")
        with self.lock:
            self.store.sync()
            records = self.index.records
            if raw is None:
                # Undocumented default order: by name, not by id.
                ordered = sorted(
                    records.values(), key=lambda r: (r["last_name"], r["first_name"], r["id"])
                )
                page = ordered[offset : offset + self.page_size]
            else:
                since = _since(raw)
                keys = self.index.sorted_keys("_order")
                bound = since if self.since_inclusive else since + 1
                start = bisect_left(keys, ((1, float(bound)), ""))
                page = [
                    records[rid]
                    for _, rid in keys[start + offset : start + offset + self.page_size]
                ]
            return self._people_xml(page)

    async def _person(self, request: Request) -> Response:
        person = self.store.get(str(request.path_params["pid"]))
        if person is None:
            raise ApiError(404)
        return _xml(DECLARATION + self._render_person(person))

    async def _search(self, request: Request) -> Response:
        params = request.query_params
        offset = _offset(params.get("n"))
        email = params.get("criteria[email]")
        phone = params.get("criteria[phone]")
        term = params.get("term")
        if not (email or phone or term):
            raise ApiError(400, "a search needs a term or criteria")
        with self.lock:
            self.store.sync()
            found = [p for p in self.index.records.values() if _matches(p, email, phone, term)]
        found.sort(key=lambda p: (p["last_name"], p["first_name"], p["id"]))
        return self._people_xml(found[offset : offset + _SEARCH_PAGE])

    def _live_person(self, request: Request) -> int:
        pid = int(request.path_params["pid"])
        if self.store.get(str(pid)) is None:
            raise ApiError(404)
        return pid

    def _recordings(
        self, request: Request, where: dict[int, list[dict[str, Any]]], kind: str
    ) -> Response:
        pid = self._live_person(request)
        offset = _offset(request.query_params.get("n"))
        with self.lock:
            items = sorted(
                where.get(pid, ()), key=lambda r: (r["created_at"], r["id"]), reverse=True
            )
        page = items[offset : offset + _RECORDINGS_PAGE]

        def fields(item: dict[str, Any]) -> dict[str, Any]:
            out: dict[str, Any] = {"id": item["id"]}
            if kind == "email":
                out["title"] = item.get("title")
            out |= {
                "body": item["body"],
                "author-id": item["author_id"],
                "subject-id": item["subject_id"],
                "subject-type": "Party",
                "subject-name": "",
                "collection-id": None,
                "collection-type": None,
                "visible-to": "Everyone",
                "created-at": _Stamp(item["created_at"]),
                "updated-at": _Stamp(item["created_at"]),
                "attachments": [],
            }
            return out

        return _xml(render_list(f"{kind}s", kind, (_render(kind, fields(i)) for i in page)))

    async def _notes(self, request: Request) -> Response:
        return self._recordings(request, self.notes, "note")

    async def _emails(self, request: Request) -> Response:
        return self._recordings(request, self.emails, "email")

    async def _tasks(self, request: Request) -> Response:
        pid = self._live_person(request)
        me = self._caller(request)["id"]
        with self.lock:
            # Only the token user's upcoming tasks; never completed ones, never others'.
            items = [t for t in self.tasks.get(pid, ()) if t["owner_id"] == me and not t["done_at"]]
        return _xml(render_list("tasks", "task", (_render("task", _task_fields(t)) for t in items)))

    async def _create_note(self, request: Request) -> Response:
        body = await _read(request, "note")
        text = body.get("body")
        subject_id = body.get("subject-id")
        if not text or not str(text).strip():
            raise ApiError(422, "Body can't be blank")
        if body.get("subject-type") != "Party" or not subject_id or not subject_id.isdigit():
            raise ApiError(422, "Subject must be a party")
        pid = int(subject_id)
        if self.store.get(str(pid)) is None:
            raise ApiError(404)
        note_id = self.add_note(pid, str(text))
        note = next(n for n in self.notes[pid] if n["id"] == note_id)
        fields = {
            "id": note_id,
            "body": note["body"],
            "author-id": self._caller(request)["id"],
            "subject-id": pid,
            "subject-type": "Party",
            "created-at": _Stamp(note["created_at"]),
            "updated-at": _Stamp(note["created_at"]),
        }
        return self._created("notes", note_id, _render("note", fields))

    async def _create_task(self, request: Request) -> Response:
        body = await _read(request, "task")
        text = (body.get("body") or "").strip()
        frame = body.get("frame") or ""
        if not text:
            raise ApiError(422, "Body can't be blank")
        if frame not in ("today", "tomorrow", "this_week", "next_week", "later", "specific"):
            raise ApiError(422, "Frame is not included in the list")
        due: float | None = None
        if frame == "specific":
            import datetime as dt

            try:
                due = dt.datetime.fromisoformat(
                    (body.get("due-at") or "").replace("Z", "+00:00")
                ).timestamp()
            except ValueError:
                raise ApiError(422, "Due at can't be blank when the frame is specific") from None
        subject = body.get("subject-id")
        pid = int(subject) if subject and subject.isdigit() else None
        if pid is not None and self.store.get(str(pid)) is None:
            raise ApiError(404)
        owner_raw = body.get("owner-id")
        owner = int(owner_raw) if owner_raw and owner_raw.isdigit() else self._caller(request)["id"]
        if owner not in {u["id"] for u in self.users}:
            raise ApiError(422, "Owner is not a user of this account")
        task_id = self.add_task(pid, text, due=due, owner=owner)
        task = next(t for t in self.tasks[pid or 0] if t["id"] == task_id)
        return self._created("tasks", task_id, _render("task", _task_fields(task)))

    async def _create_person(self, request: Request) -> Response:
        body = await _read(request, "person")
        if "tags" in body or any(k.startswith("avatar") for k in body):
            raise ApiError(422, "")  # Highrise's empty message for read-only fields
        first = (body.get("first-name") or "").strip()
        last = (body.get("last-name") or "").strip()
        if not first and not last:
            raise ApiError(422, "First name can't be blank")
        with self.lock:
            if self.people_quota is not None and len(self.store) >= self.people_quota:
                raise ApiError(507)
            pid = self._party_id()
            company = body.get("company-name") or None
            record = {
                "id": pid,
                "first_name": first,
                "last_name": last,
                "title": body.get("title"),
                "company_name": company,
                "company_id": self._company(company),
                "background": None,
                "created_at": int(self.now),
                "updated_at": int(self.now),
                "visible_to": "Everyone",
                "author_id": self._caller(request)["id"],
                "emails": [
                    {"id": pid * 10 + i, "address": a, "location": "Work"}
                    for i, a in enumerate(body.get("_emails", []))
                ],
                "phones": [
                    {"id": pid * 10 + i, "number": n, "location": "Work"}
                    for i, n in enumerate(body.get("_phones", []))
                ],
                "addresses": [],
                "twitter": [],
                "web": [],
                "avatar": None,
            }
            self.store.create(str(pid), record)
        return self._created("people", pid, self._render_person(record))

    def _created(self, things: str, rid: int, rendered: str) -> Response:
        location = f"https://{self.account}.highrisehq.com/{things}/{rid}.xml"
        return _xml(DECLARATION + rendered, 201, {"Location": location})

    # -- the Sandbox protocol ---------------------------------------------------------------

    def credentials(self) -> dict[str, str]:
        return {"account": self.account, "api_token": self.token}

    def bad_credentials(self) -> dict[str, str]:
        return {"account": self.account, "api_token": "hr-revoked-" + self.token[-8:]}

    def bridge_env(self, base_url: str) -> dict[str, str]:
        return {"TALKDESK_BRIDGE_HIGHRISE_BASE_URL": base_url}


class _Stamp(int):
    """An epoch second rendered as Highrise's `type="datetime"`."""


def _render(name: str, fields: Mapping[str, Any]) -> str:
    import datetime as dt

    converted = {
        k: dt.datetime.fromtimestamp(int(v), dt.UTC) if isinstance(v, _Stamp) else v
        for k, v in fields.items()
    }
    return render_one(name, converted)


def _user_fields(user: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": user["id"],
        "name": user["name"],
        "email-address": user["email_address"],
        "created-at": _Stamp(user["created_at"]),
        "updated-at": _Stamp(user["created_at"]),
    }


def _task_fields(task: Mapping[str, Any]) -> dict[str, Any]:
    due = task["due_at"]
    return {
        "id": task["id"],
        "body": task["body"],
        "frame": task["frame"],
        "due-at": None if due is None else _Stamp(due),
        "done-at": None if not task["done_at"] else _Stamp(task["done_at"]),
        "owner-id": task["owner_id"],
        "category-id": None,
        "subject-id": task["subject_id"],
        "subject-type": "Party" if task["subject_id"] else None,
        "public": False,
        "recurring-period": "none",
        "created-at": _Stamp(task["created_at"]),
    }


def _matches(p: Mapping[str, Any], email: str | None, phone: str | None, term: str | None) -> bool:
    if email and not any(e["address"].lower() == email.strip().lower() for e in p["emails"]):
        return False
    if phone:
        wanted = _digits(phone)[-10:]
        if len(wanted) < 7 or not any(_digits(n["number"]).endswith(wanted) for n in p["phones"]):
            return False
    if term:
        name = f"{p['first_name']} {p['last_name']}".lower()
        if term.strip().lower() not in name:
            return False
    return True


async def _read(request: Request, root: str) -> dict[str, Any]:
    """A POST's XML body as {field: text}; contact data as `_emails`/`_phones` lists."""
    if not request.headers.get("content-type", "").startswith(("application/xml", "text/xml")):
        raise ApiError(422, "Content-Type must be application/xml")
    raw = await request.body()
    try:
        element = fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, SyntaxError, ValueError):
        raise ApiError(400, "malformed XML") from None
    if element.tag != root:
        raise ApiError(422, f"expected <{root}>")
    fields: dict[str, Any] = {}
    for child in element:
        if child.tag == "contact-data":
            fields["_emails"] = [a.text or "" for a in child.iter("address")]
            fields["_phones"] = [n.text or "" for n in child.iter("number")]
        else:
            fields[child.tag] = child.text or ""
    return fields


class _SchemeCheck:
    """Highrise's answer to the wrong scheme for the account's SSL setting: 302 to the other."""

    def __init__(self, app: ASGIApp, sandbox: HighriseSandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wanted = self.sandbox.ssl_enabled
        if scope["type"] == "http" and wanted is not None:
            scheme = "https" if wanted else "http"
            if scope.get("scheme") != scheme:
                host = f"{self.sandbox.account}.highrisehq.com"
                await RedirectResponse(f"{scheme}://{host}{scope['path']}", 302)(
                    scope, receive, send
                )
                return
        await self.app(scope, receive, send)
