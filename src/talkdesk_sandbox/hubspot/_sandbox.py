"""``HubSpotSandbox``: HubSpot's CRM API v3 (one portal) on the kit.

What it reproduces of HubSpot's documented and reported behaviour (digest:
/work/shared/spec/hubspot.md, section 11):

- the contact list pages by id (``after`` is the id of the next record), live and stable while
  records change; GET by id is live too; new and merged records get higher ids;
- search answers from a lagging index (``lag``): ``after`` is an *offset* into the live result
  set (an edit while paging shifts records past the reader), ``total`` counts the matches, an
  offset at or past 10,000 is a 400 (``max_results``), more than 5 groups / 6 filters / 18 in
  all a 400, one sort, ``limit`` 1..200; archived records never appear;
- many records can share one ``lastmodifieddate`` millisecond (writes at one clock instant);
- logging a note or a call bumps the contact's ``lastmodifieddate``;
- merges make a new record with a new id (``hs_merged_object_ids`` lists the old ones, which
  GET resolves to the new record); archive (``DELETE``) hides records from GET, list and
  search;
- a duplicate email on create is a 409 ``CONFLICT`` whose only trace of the id is the message;
- search is limited to ``search_rate`` calls per second per portal, answered with a
  header-less 429 ("secondly limit"); other calls share the app's 10-second bucket and carry
  ``X-HubSpot-RateLimit-*`` headers; ``daily_limit`` adds the DAILY 429;
- 401 ``INVALID_AUTHENTICATION`` / ``EXPIRED_AUTHENTICATION`` (tokens with an expiry), 403
  ``MISSING_SCOPES`` naming the scope; engagement reads return almost no properties unless
  named; batch reads drop unknown ids and answer 207 with ``errors``.
"""

from __future__ import annotations

import copy
import math
import random
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from .._clock import Clock
from .._gateway import Call, Reply
from .._index import HIGH_ID, Key, SortedIndex, sort_key
from .._rate import RateLimiter, RateState
from .._sandbox import VendorSandbox, json_response, vendor_app
from .._seed import Faker, Person
from .._store import VersionedStore
from ._objects import (
    ASSOCIATION_TYPES,
    CONTACT_DEFAULTS,
    ENGAGEMENT_TYPES,
    MAX_RESULTS,
    OBJECT_DEFAULTS,
    ApiError,
    Search,
    calculated_phones,
    error_body,
    iso,
    parse_search,
    property_getter,
    render,
    validation,
)

__all__ = ["ALL_SCOPES", "HubSpotSandbox"]

ALL_SCOPES = frozenset({
    "crm.objects.contacts.read", "crm.objects.contacts.write", "tickets",
    "crm.objects.owners.read", "sales-email-read",
})  # fmt: skip
_OBJECT_TYPES = (*ENGAGEMENT_TYPES, "tickets")
_SCOPE_OF = {"tickets": "tickets", "emails": "crm.objects.contacts.read"}
_DAY = 86_400.0
_PIPELINES = [
    {
        "id": "0",
        "label": "Support Pipeline",
        "displayOrder": 0,
        "archived": False,
        "stages": [
            {"id": "1", "label": "New", "displayOrder": 0, "metadata": {"ticketState": "OPEN"}},
            {"id": "2", "label": "Waiting on contact", "displayOrder": 1,
             "metadata": {"ticketState": "OPEN"}},
            {"id": "3", "label": "Waiting on us", "displayOrder": 2,
             "metadata": {"ticketState": "OPEN"}},
            {"id": "4", "label": "Closed", "displayOrder": 3,
             "metadata": {"ticketState": "CLOSED"}},
        ],
    }
]  # fmt: skip
_UNAUTHORIZED = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
    "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


@dataclass(slots=True)
class _Token:
    scopes: frozenset[str]
    expires_at: float | None = None


class _Index(SortedIndex[dict[str, Any]]):
    """The search index: sorts by any property (stamps and ids as numbers)."""

    def __init__(self) -> None:
        super().__init__(property_getter)

    def matching(self, search: Search) -> list[Key]:
        if search.query is None:
            return self.sorted_keys(search.sort)
        return self._match_keys(search.query, search.sort)


class HubSpotSandbox(VendorSandbox):
    """A fake HubSpot portal for the bridge's ``hubspot`` connector.

    ``token`` is a private app token with every scope (more with ``add_token``); ``lag`` the
    search index's delay; ``rate_limit`` the app's calls per 10 seconds (an int) or
    ``(calls, seconds)``; ``search_rate`` searches per second; ``daily_limit`` calls per day;
    ``region`` ``"na1"`` or ``"eu1"`` (the UI host of links)."""

    connector = "hubspot"
    title = "HubSpot CRM API sandbox"

    def __init__(
        self,
        *,
        token: str = "pat-na1-00000000-sandbox-token",
        latency: float = 0.0,
        clock: Clock | None = None,
        lag: float | None = None,
        rate_limit: int | tuple[int, float] | None = 190,
        search_rate: int | None = 5,
        daily_limit: int | None = None,
        region: str = "na1",
        portal_id: int = 4_412_345,
        max_results: int = MAX_RESULTS,
        seed: int = 0,
    ) -> None:
        window = (rate_limit, 10.0) if isinstance(rate_limit, int) else rate_limit
        super().__init__(clock=clock, latency=latency, rate_limit=window)
        self.token = token
        self.tokens: dict[str, _Token] = {token: _Token(ALL_SCOPES)}
        self.index = _Index()
        self.store: VersionedStore[dict[str, Any]] = VersionedStore(
            self.clock, lag=10.0 if lag is None else lag, modified="lastmodifieddate",
            index=self.index,
        )  # fmt: skip
        self.lock: threading.RLock = self.store.lock
        self.search_limiter = (
            None if search_rate is None else RateLimiter(search_rate, 1.0, self.clock)
        )
        self.daily_limit = daily_limit
        self._daily: dict[tuple[str, int], int] = {}
        self.region = region
        self.portal_id = portal_id
        self.max_results = max_results
        self.rng = random.Random(seed)
        self._next_id = 100
        self._ids: list[int] = []  # every contact id ever made, ascending
        self._by_email: dict[str, str] = {}
        self.merged_into: dict[str, str] = {}
        self.archived: dict[str, dict[str, Any]] = {}
        self.objects: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in _OBJECT_TYPES}
        self.associations: dict[str, dict[str, list[str]]] = {}
        self.owners: list[dict[str, Any]] = []
        self._next_object = 5_000_000
        self._seed_owners()

    # -- the kit's hooks ------------------------------------------------------------------

    def build_app(self) -> ASGIApp:
        def api_error(exc: Exception) -> Reply:
            assert isinstance(exc, ApiError)
            return Reply.json(exc.body(), exc.status)

        c = "/crm/v3/objects/contacts"
        routes = [
            Route("/account-info/v3/details", self._account, methods=["GET"]),
            Route(c, self._list_contacts, methods=["GET"]),
            Route(c, self._create_contact, methods=["POST"]),
            Route(c + "/search", self._search, methods=["POST"]),
            Route(c + "/merge", self._merge, methods=["POST"]),
            Route(c + "/{ref:str}", self._get_contact, methods=["GET"]),
            Route(c + "/{ref:str}", self._archive_contact, methods=["DELETE"]),
            Route("/crm/v3/objects/{kind:str}", self._list_objects, methods=["GET"]),
            Route("/crm/v3/objects/{kind:str}", self._create_object, methods=["POST"]),
            Route("/crm/v3/objects/{kind:str}/batch/read", self._batch_read, methods=["POST"]),
            Route("/crm/v3/pipelines/tickets", self._pipelines, methods=["GET"]),
            Route("/crm/v3/owners", self._owners, methods=["GET"]),
        ]
        return vendor_app(self, routes, errors={ApiError: api_error})

    def _token_of(self, headers: Mapping[str, str]) -> str:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return token if scheme.lower() == "bearer" else ""

    def authenticate(self, call: Call) -> str | None:
        known = self.tokens.get(self._token_of(call.headers))
        if known is None or (known.expires_at is not None and known.expires_at <= self.now):
            return None
        return f"portal-{self.portal_id}"

    def unauthorized(self, call: Call) -> Reply:
        known = self.tokens.get(self._token_of(call.headers))
        if known is not None and known.expires_at is not None:
            ago = max(1, int(self.now - known.expires_at))
            body = error_body(
                f"The OAuth token used to make this call expired {ago} second(s) ago.",
                "EXPIRED_AUTHENTICATION",
                context={"expire time": [iso(int(known.expires_at * 1000))]},
            )
        else:
            body = error_body(_UNAUTHORIZED, "INVALID_AUTHENTICATION")
        return Reply.json(body, 401)

    def error_reply(self, status: int, message: str | None = None) -> Reply:
        category = {400: "VALIDATION_ERROR", 401: "INVALID_AUTHENTICATION", 403: "MISSING_SCOPES",
                    404: "OBJECT_NOT_FOUND", 409: "CONFLICT", 429: "RATE_LIMITS"}.get(
            status, "INTERNAL_ERROR")  # fmt: skip
        if status == 429:
            return self.rate_limited(None)
        text = message or ("Resource not found" if status == 404 else "internal error")
        return Reply.json(error_body(text, category), status)

    def check_rate(self, account: str, call: Call) -> RateState | None:
        if call.path.endswith("/search"):
            # Search has its own per-portal limit and is exempt from the app's bucket.
            if self.search_limiter is None:
                return None
            return self.search_limiter.hit("search:" + account)
        if self.daily_limit is not None:
            day = int(self.now // _DAY)
            used = self._daily.get((account, day), 0)
            if used >= self.daily_limit:
                end = (day + 1) * _DAY
                return RateState(False, self.daily_limit, 0, math.ceil(end), _DAY,
                                 end - self.now, "daily:" + account)  # fmt: skip
            self._daily[(account, day)] = used + 1
        return super().check_rate(account, call)

    def rate_headers(self, state: RateState) -> list[tuple[str, str]]:
        if state.key.startswith(("search:", "daily:")):
            return []  # search answers carry no rate-limit headers
        headers = [
            ("X-HubSpot-RateLimit-Max", str(state.limit)),
            ("X-HubSpot-RateLimit-Remaining", str(state.remaining)),
            ("X-HubSpot-RateLimit-Interval-Milliseconds", str(int(state.window * 1000))),
        ]
        if self.daily_limit is not None:
            used = self._daily.get((state.key, int(self.now // _DAY)), 0)
            headers += [
                ("X-HubSpot-RateLimit-Daily", str(self.daily_limit)),
                ("X-HubSpot-RateLimit-Daily-Remaining", str(max(self.daily_limit - used, 0))),
            ]
        return headers

    def rate_limited(self, state: RateState | None) -> Reply:
        # HubSpot sends no Retry-After on any of its 429s.
        if state is not None and state.key.startswith("search:"):
            body = error_body("You have reached your secondly limit.", "RATE_LIMITS")
            return Reply.json(body, 429)
        if state is not None and state.key.startswith("daily:"):
            body = error_body(
                "You have reached your daily limit.", "RATE_LIMITS",
                errorType="RATE_LIMIT", policyName="DAILY",
            )  # fmt: skip
            return Reply.json(body, 429)
        body = error_body(
            "You have reached your ten_secondly_rolling limit.", "RATE_LIMITS",
            errorType="RATE_LIMIT", policyName="TEN_SECONDLY_ROLLING",
        )  # fmt: skip
        headers = self.rate_headers(state) if state is not None else []
        return Reply.json(body, 429, headers)

    # -- tokens and scopes ----------------------------------------------------------------

    def add_token(
        self, token: str, scopes: Iterable[str] = ALL_SCOPES, *, expires_in: float | None = None
    ) -> None:
        """Another token for this portal (an OAuth one expires ``expires_in`` seconds on)."""
        expires = None if expires_in is None else self.now + expires_in
        self.tokens[token] = _Token(frozenset(scopes), expires)

    def _require(self, request: Request, scope: str) -> None:
        known = self.tokens.get(self._token_of(request.headers))
        if known is None or scope not in known.scopes:
            raise ApiError(
                403,
                "This app hasn't been granted all required scopes to make this call. Read "
                "more about required scopes here: https://developers.hubspot.com/scopes.",
                "MISSING_SCOPES",
                errors=[{"message": "One or more of the following scopes are required.",
                         "context": {"requiredGranularScopes": [scope]}}],
            )  # fmt: skip

    # -- data -----------------------------------------------------------------------------

    @property
    def ui_domain(self) -> str:
        return "app.hubspot.com" if self.region == "na1" else f"app-{self.region}.hubspot.com"

    def _ms(self) -> int:
        return int(self.now * 1000)

    def _new_contact_id(self) -> str:
        self._next_id += 1
        self._ids.append(self._next_id)
        return str(self._next_id)

    def _index_emails(self, cid: str, props: Mapping[str, Any], add: bool) -> None:
        emails = [props.get("email") or "", *(props.get("hs_additional_emails") or "").split(";")]
        for email in emails:
            key = email.strip().lower()
            if not key:
                continue
            if add:
                self._by_email[key] = cid
            elif self._by_email.get(key) == cid:
                del self._by_email[key]

    def _contact(self, cid: str, props: Mapping[str, Any], created: int, modified: int,
                 previous: Mapping[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
        values = {k: (None if v is None else str(v)) for k, v in props.items()}
        for prefix in ("phone", "mobilephone"):
            kind = "phone_number" if prefix == "phone" else "mobile_number"
            for name in list(values):
                if name.startswith(
                    (
                        f"hs_calculated_{kind}",
                        f"hs_searchable_calculated_{kind}",
                        f"hs_searchable_calculated_international_{kind}",
                    )
                ):
                    del values[name]  # fmt: skip
            values.update(calculated_phones(values.get(prefix), prefix))
        values.update(hs_object_id=cid, createdate=iso(created), lastmodifieddate=iso(modified))
        return {
            "id": cid,
            "properties": values,
            "createdAt": iso(created),
            "updatedAt": iso(modified),
            "archived": False,
            "_created": created,
        }

    @staticmethod
    def _seed_props(person: Person, rng: random.Random) -> dict[str, Any]:
        props: dict[str, Any] = {"firstname": person.first_name, "lastname": person.last_name}
        emails = [e.address for e in person.emails]
        if emails:
            props["email"] = emails[0]
        if len(emails) > 1:
            props["hs_additional_emails"] = ";".join(emails[1:])
        phones = [p.number for p in person.phones]
        if phones:
            props["phone"] = phones[0]
        if len(phones) > 1:
            props["mobilephone"] = phones[1]
        if person.company is not None:
            props["company"] = person.company.name
            props["website"] = f"https://www.{person.company.domain}"
        if person.title:
            props["jobtitle"] = person.title
        place = person.place
        props.update(city=place.city, state=place.region, country=place.country)
        if rng.random() < 0.3:
            props["twitterhandle"] = person.handle
        return props

    def seed(self, *, contacts: int, seed: int = 0) -> None:
        """``contacts`` contacts created over two years (ids ascending with creation), some
        with calls, notes, emails, meetings and tickets. Same seed, same data."""
        faker = Faker(seed)
        self.rng.seed(seed)
        now = self._ms()
        stamps = sorted(now - int(faker.rng.uniform(60, 730 * _DAY) * 1000) for _ in
                        range(contacts))  # fmt: skip
        items = []
        with self.lock:
            for person, created in zip(faker.people(contacts), stamps, strict=True):
                cid = self._new_contact_id()
                modified = min(now, created + int(faker.rng.uniform(0, 30 * _DAY) * 1000))
                record = self._contact(cid, self._seed_props(person, faker.rng), created, modified)
                self._index_emails(cid, record["properties"], True)
                items.append((cid, record, modified / 1000))
            self.store.load(items)
            for cid, _, _ in items[: min(len(items), 200)]:
                self._seed_activity(cid, faker)

    def _seed_activity(self, cid: str, faker: Faker) -> None:
        rng = faker.rng
        now = self._ms()
        for _ in range(rng.randint(0, 2)):
            at = now - int(rng.uniform(3600, 90 * _DAY) * 1000)
            self.add_object("calls", cid, {
                "hs_call_title": "Call with customer", "hs_call_body": faker.subject(),
                "hs_call_status": rng.choice(["COMPLETED", "NO_ANSWER", "BUSY"]),
                "hs_call_direction": rng.choice(["INBOUND", "OUTBOUND"]),
                "hs_call_duration": str(rng.randint(10, 900) * 1000), "hs_timestamp": iso(at),
            }, at=at, touch=False)  # fmt: skip
        at = now - int(rng.uniform(3600, 90 * _DAY) * 1000)
        self.add_object("notes", cid, {"hs_note_body": f"<p>{faker.subject()}</p>",
                                       "hs_timestamp": iso(at)}, at=at, touch=False)  # fmt: skip
        if rng.random() < 0.5:
            at = now - int(rng.uniform(3600, 90 * _DAY) * 1000)
            self.add_object("emails", cid, {
                "hs_email_subject": faker.subject(), "hs_email_text": "Hello",
                "hs_email_direction": "INCOMING_EMAIL", "hs_email_status": "SENT",
                "hs_timestamp": iso(at)}, at=at, touch=False)  # fmt: skip
        if rng.random() < 0.3:
            at = now - int(rng.uniform(3600, 90 * _DAY) * 1000)
            self.add_object("meetings", cid, {
                "hs_meeting_title": "Onboarding", "hs_meeting_body": "Agenda",
                "hs_meeting_start_time": iso(at), "hs_meeting_outcome": "COMPLETED",
                "hs_timestamp": iso(at)}, at=at, touch=False)  # fmt: skip
        at = now - int(rng.uniform(3600, 90 * _DAY) * 1000)
        self.add_object("tickets", cid, {
            "subject": faker.subject(), "content": "Details", "hs_pipeline": "0",
            "hs_pipeline_stage": rng.choice(["1", "2", "4"]),
            "hs_ticket_priority": rng.choice(["LOW", "MEDIUM", "HIGH", "URGENT"]),
        }, at=at, touch=False)  # fmt: skip

    def _seed_owners(self) -> None:
        names = [("Ana", "Silva"), ("Ben", "Okafor"), ("Chen", "Li"), ("Dora", "Marx")]
        for n, (first, last) in enumerate(names):
            self.owners.append({
                "id": str(70_000 + n), "email": f"{first.lower()}@portal.example",
                "type": "PERSON", "firstName": first, "lastName": last, "userId": 9_000 + n,
                "userIdIncludingInactive": 9_000 + n, "createdAt": iso(1_600_000_000_000),
                "updatedAt": iso(1_600_000_000_000), "archived": False, "teams": [],
            })  # fmt: skip
        self.owners.append({"id": "70100", "email": "support@portal.example", "type": "QUEUE",
                            "firstName": "Support", "lastName": "Queue", "userId": None,
                            "archived": False, "createdAt": iso(1_600_000_000_000),
                            "updatedAt": iso(1_600_000_000_000), "teams": []})  # fmt: skip
        self.owners.append({"id": "70200", "email": "gone@portal.example", "type": "PERSON",
                            "firstName": "Former", "lastName": "User", "userId": None,
                            "archived": True, "createdAt": iso(1_600_000_000_000),
                            "updatedAt": iso(1_600_000_000_000), "teams": []})  # fmt: skip

    def add_owner(self, first: str, last: str, email: str) -> str:
        oid = str(71_000 + len(self.owners))
        self.owners.append({"id": oid, "email": email, "type": "PERSON", "firstName": first,
                            "lastName": last, "userId": int(oid), "archived": False,
                            "createdAt": iso(self._ms()), "updatedAt": iso(self._ms()),
                            "teams": []})  # fmt: skip
        return oid

    def create_contact(self, props: Mapping[str, Any] | None = None, **kw: Any) -> str:
        """A new contact written now (default: a made-up person); returns its id."""
        if props is None:
            faker = Faker(self.rng.randrange(10**9))
            props = self._seed_props(faker.person(self.rng.randrange(10**6)), faker.rng)
        values = {**props, **kw}
        with self.lock:
            email = str(values.get("email") or "").strip().lower()
            if email and email in self._by_email:
                raise ValueError(f"email taken by {self._by_email[email]}")
            cid = self._new_contact_id()
            ms = self._ms()
            record = self._contact(cid, values, ms, ms)
            self._index_emails(cid, record["properties"], True)
            self.store.create(cid, record)
            return cid

    def update_contact(self, cid: str, **changes: Any) -> dict[str, Any]:
        """A new version written now (default change: the last name gains a suffix)."""
        with self.lock:
            current = self.store.get(cid)
            if current is None:
                raise KeyError(cid)
            props = dict(current["properties"])
            if not changes:
                changes = {"lastname": f"{props.get('lastname') or ''}-{self.rng.randrange(1000)}"}
            self._index_emails(cid, props, False)
            props.update({k: (None if v is None else str(v)) for k, v in changes.items()})
            record = self._contact(cid, props, current["_created"], self._ms())
            self._index_emails(cid, record["properties"], True)
            self.store.update(cid, record)
            return record

    def touch_contact(self, cid: str) -> None:
        """A side effect (a logged note, a recalculated property) moves lastmodifieddate."""
        self.update_contact(cid, **{"hs_lastmodified_reason": str(self.rng.randrange(10**6))})

    def archive_contact(self, cid: str) -> None:
        with self.lock:
            current = self.store.get(cid)
            if current is None:
                raise KeyError(cid)
            self._index_emails(cid, current["properties"], False)
            self.archived[cid] = {**current, "archived": True, "archivedAt": iso(self._ms())}
            self.store.delete(cid)

    def merge_contacts(self, primary: str, other: str) -> str:
        """HubSpot's merge: a new record with a new id; both old ids resolve to it."""
        with self.lock:
            a, b = self.store.get(primary), self.store.get(other)
            if a is None or b is None or primary == other:
                raise KeyError(primary if a is None else other)
            props = {k: v for k, v in b["properties"].items() if v}
            props.update({k: v for k, v in a["properties"].items() if v})
            candidates = [
                *(a["properties"].get("hs_additional_emails") or "").split(";"),
                b["properties"].get("email") or "",
                *(b["properties"].get("hs_additional_emails") or "").split(";"),
            ]
            extra = [e for e in candidates if e and e != props.get("email")]
            props["hs_additional_emails"] = ";".join(dict.fromkeys(extra)) or None
            merged = [
                *(a["properties"].get("hs_merged_object_ids") or "").split(";"),
                *(b["properties"].get("hs_merged_object_ids") or "").split(";"),
                primary,
                other,
            ]
            props["hs_merged_object_ids"] = ";".join(m for m in merged if m)
            for old in (primary, other):
                old_record = self.store.get(old)
                if old_record is not None:
                    self._index_emails(old, old_record["properties"], False)
                self.store.delete(old)
            cid = self._new_contact_id()
            ms = self._ms()
            record = self._contact(cid, props, min(a["_created"], b["_created"]), ms)
            self._index_emails(cid, record["properties"], True)
            self.store.create(cid, record)
            for old in (primary, other):
                self.merged_into[old] = cid
                for target, ids in self.associations.pop(old, {}).items():
                    self.associations.setdefault(cid, {}).setdefault(target, []).extend(ids)
            for old, new in list(self.merged_into.items()):
                if new in (primary, other):
                    self.merged_into[old] = cid
            return str(cid)

    def add_object(self, kind: str, contact: str, props: Mapping[str, Any], *,
                   at: int | None = None, touch: bool = True) -> str:  # fmt: skip
        """An engagement or ticket associated to ``contact``; logging one bumps the contact's
        lastmodifieddate, as HubSpot does."""
        with self.lock:
            self._next_object += 1
            oid = str(self._next_object)
            ms = self._ms() if at is None else at
            values = {k: (None if v is None else str(v)) for k, v in props.items()}
            created_name = "createdate" if kind == "tickets" else "hs_createdate"
            values.update(hs_object_id=oid, hs_lastmodifieddate=iso(ms), hs_createdate=iso(ms))
            values.setdefault(created_name, iso(ms))
            self.objects[kind][oid] = {"id": oid, "properties": values, "createdAt": iso(ms),
                                       "updatedAt": iso(ms), "archived": False}  # fmt: skip
            self.associations.setdefault(contact, {}).setdefault(kind, []).append(oid)
            if touch and contact in self.store:
                self.touch_contact(contact)
            return oid

    def live(self) -> dict[str, dict[str, Any]]:
        """Every live contact, newest version (not lagged): id -> properties."""
        return {cid: dict(record["properties"]) for cid, record in self.store.live()}

    def resolve(self, ref: str) -> str:
        seen = 0
        while ref in self.merged_into and seen < 100:
            ref, seen = self.merged_into[ref], seen + 1
        return ref

    # -- routes ---------------------------------------------------------------------------

    async def _json(self, request: Request) -> Any:
        raw = await request.body()
        try:
            return orjson.loads(raw) if raw else {}
        except ValueError:
            raise validation("Invalid input JSON on line 1") from None

    async def _account(self, request: Request) -> Response:
        return json_response({
            "portalId": self.portal_id, "accountType": "STANDARD", "timeZone": "US/Eastern",
            "companyCurrency": "USD", "additionalCurrencies": [], "utcOffset": "-05:00",
            "utcOffsetMilliseconds": -18_000_000, "uiDomain": self.ui_domain,
            "dataHostingLocation": self.region,
        })  # fmt: skip

    @staticmethod
    def _properties(request: Request) -> list[str] | None:
        raw = request.query_params.getlist("properties")
        names = [n.strip() for value in raw for n in value.split(",") if n.strip()]
        return names or None

    @staticmethod
    def _limit(request: Request, default: int, cap: int) -> int:
        raw = request.query_params.get("limit")
        try:
            value = int(raw) if raw else default
        except ValueError:
            raise validation(f"limit must be an integer, got {raw!r}") from None
        return max(1, min(value, cap))

    async def _list_contacts(self, request: Request) -> Response:
        self._require(request, "crm.objects.contacts.read")
        limit = self._limit(request, 10, 100)
        props = self._properties(request)
        raw_after = request.query_params.get("after") or "0"
        if not raw_after.isdigit():
            raise validation("after must be the id of the next record")
        start = int(raw_after)
        if request.query_params.get("archived", "false").lower() == "true":
            found = sorted((r for r in self.archived.values() if int(r["id"]) >= start),
                           key=lambda r: int(r["id"]))  # fmt: skip
            page, more = found[:limit], found[limit : limit + 1]
            body: dict[str, Any] = {"results": [render(r, props, CONTACT_DEFAULTS) for r in page]}
            if more:
                body["paging"] = {"next": {"after": more[0]["id"]}}
            return json_response(body)
        out: list[dict[str, Any]] = []
        nxt: str | None = None
        with self.lock:
            ids = self._ids
            i = bisect_left(ids, start)
            while i < len(ids):
                record = self.store.get(str(ids[i]))
                i += 1
                if record is None:
                    continue  # archived or merged away
                if len(out) == limit:
                    nxt = record["id"]
                    break
                out.append(render(record, props, CONTACT_DEFAULTS))
        body = {"results": out}
        if nxt is not None:
            body["paging"] = {"next": {"after": nxt, "link": f"?after={nxt}"}}
        return json_response(body)

    async def _get_contact(self, request: Request) -> Response:
        self._require(request, "crm.objects.contacts.read")
        ref = request.path_params["ref"]
        params = request.query_params
        with self.lock:
            if params.get("idProperty") == "email":
                cid = self._by_email.get(ref.strip().lower())
                record = None
                if cid is not None:
                    found = self.store.get(cid)
                    # Only the primary email is a unique key.
                    if found and (found["properties"].get("email") or "").lower() == ref.lower():
                        record = found
            elif params.get("idProperty") in (None, "", "hs_object_id"):
                record = self.store.get(self.resolve(ref)) if ref.isdigit() else None
            else:
                raise validation(f"Unknown idProperty {params.get('idProperty')!r}")
            if record is None:
                raise ApiError(404, "Object not found.  objectId are usually numeric.",
                               "OBJECT_NOT_FOUND", context={"id": [ref]})  # fmt: skip
            associations = None
            wanted = [t.strip() for t in (params.get("associations") or "").split(",") if t.strip()]
            if wanted:
                linked = self.associations.get(record["id"], {})
                associations = {
                    t: {"results": [{"id": i, "type": f"contact_to_{t.rstrip('s')}"}
                                    for i in linked[t] if i in self.objects[t]]}
                    for t in wanted if t in self.objects and linked.get(t)
                }  # fmt: skip
            return json_response(
                render(record, self._properties(request), CONTACT_DEFAULTS,
                       associations=associations)
            )  # fmt: skip

    async def _search(self, request: Request) -> Response:
        self._require(request, "crm.objects.contacts.read")
        raw = await request.body()
        if len(raw) > 3000:
            raise validation("The request body is limited to 3000 characters")
        search = parse_search(await self._json(request), CONTACT_DEFAULTS,
                              max_results=self.max_results)  # fmt: skip
        with self.lock:
            self.store.sync()
            keys = self.index.matching(search)
            lo, hi = 0, len(keys)
            if search.id_above is not None:
                lo = bisect_right(keys, (sort_key(search.id_above), HIGH_ID))
            total = hi - lo
            if search.descending:
                picked = keys[max(lo, hi - search.offset - search.limit) : hi - search.offset]
                picked.reverse()
            else:
                picked = keys[lo + search.offset : lo + search.offset + search.limit]
            records = self.index.records
            results = [render(records[k[1]], search.properties, CONTACT_DEFAULTS)
                       for k in picked]  # fmt: skip
        body: dict[str, Any] = {"total": total, "results": results}
        end = search.offset + len(results)
        if end < total:
            body["paging"] = {"next": {"after": str(end), "link": ""}}
        return json_response(body)

    def _conflict(self, cid: str) -> ApiError:
        return ApiError(409, f"Contact already exists. Existing ID: {cid}", "CONFLICT")

    async def _create_contact(self, request: Request) -> Response:
        self._require(request, "crm.objects.contacts.write")
        body = await self._json(request)
        props = body.get("properties") if isinstance(body, dict) else None
        if not isinstance(props, dict):
            raise validation("Invalid input JSON: properties are required")
        email = str(props.get("email") or "").strip()
        if email and ("@" not in email or any(c.isspace() for c in email)):
            raise validation(f'Property values were not valid: [{{"isValid":false,"message":'
                             f'"Email address {email} is invalid","error":"INVALID_EMAIL",'
                             f'"name":"email"}}]')  # fmt: skip
        if not (email or props.get("firstname") or props.get("lastname")):
            raise validation("A contact needs an email, a firstname or a lastname")
        with self.lock:
            if email and (existing := self._by_email.get(email.lower())):
                raise self._conflict(existing)
            cid = self.create_contact(props)
            record = self.store.get(cid)
            assert record is not None
            return json_response(render(record, list(record["properties"]), ()), 201)

    async def _merge(self, request: Request) -> Response:
        self._require(request, "crm.objects.contacts.write")
        body = await self._json(request)
        try:
            primary, other = str(body["primaryObjectId"]), str(body["objectIdToMerge"])
            cid = self.merge_contacts(self.resolve(primary), self.resolve(other))
        except (KeyError, TypeError):
            raise validation("merge needs two live contacts") from None
        record = self.store.get(cid)
        assert record is not None
        return json_response(render(record, None, CONTACT_DEFAULTS))

    async def _archive_contact(self, request: Request) -> Response:
        self._require(request, "crm.objects.contacts.write")
        ref = request.path_params["ref"]
        with self.lock:
            if ref in self.store:
                self.archive_contact(ref)
        return Response(status_code=204)

    def _kind(self, request: Request) -> str:
        kind = str(request.path_params["kind"])
        if kind not in self.objects:
            raise ApiError(400, f"Unable to infer object type from: {kind}", "VALIDATION_ERROR")
        self._require(request, _SCOPE_OF.get(kind, "crm.objects.contacts.read"))
        return kind

    async def _list_objects(self, request: Request) -> Response:
        kind = self._kind(request)
        limit = self._limit(request, 10, 100)
        with self.lock:
            found = sorted(self.objects[kind].values(), key=lambda r: int(r["id"]))[:limit]
            results = [render(r, self._properties(request), OBJECT_DEFAULTS) for r in found]
        return json_response({"results": results})

    async def _create_object(self, request: Request) -> Response:
        kind = self._kind(request)
        if kind == "tickets":
            self._require(request, "tickets")
        else:
            self._require(request, "crm.objects.contacts.write")
        body = await self._json(request)
        props = body.get("properties") if isinstance(body, dict) else None
        if not isinstance(props, dict):
            raise validation("Invalid input JSON: properties are required")
        if kind != "tickets" and not props.get("hs_timestamp"):
            raise validation('Property values were not valid: [{"isValid":false,"message":'
                             '"hs_timestamp is required","error":"REQUIRED_FIELD"}]')  # fmt: skip
        if kind == "tickets" and not (props.get("subject") and props.get("hs_pipeline_stage")):
            raise validation("subject and hs_pipeline_stage are required")
        contacts: list[str] = []
        for link in body.get("associations") or []:
            try:
                target = str(link["to"]["id"])
                types = link["types"]
                type_ids = {t["associationTypeId"] for t in types}
            except (KeyError, TypeError):
                raise validation("Invalid input JSON: bad association") from None
            if type_ids != {ASSOCIATION_TYPES[kind]}:
                raise ApiError(400, f"{sorted(type_ids)} is not a valid association type "
                               f"between {kind} and contacts", "VALIDATION_ERROR")  # fmt: skip
            with self.lock:
                target = self.resolve(target)
                if target not in self.store:
                    raise ApiError(400, f"No contact with id {target}", "VALIDATION_ERROR")
            contacts.append(target)
        if not contacts:
            raise validation("This sandbox stores only records associated to a contact")
        with self.lock:
            oid = self.add_object(kind, contacts[0], props)
            for extra in contacts[1:]:
                self.associations.setdefault(extra, {}).setdefault(kind, []).append(oid)
            record = self.objects[kind][oid]
        return json_response(render(record, list(record["properties"]), ()), 201)

    async def _batch_read(self, request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind == "contacts":
            raise validation("use GET for contacts in this sandbox")
        kind = self._kind(request)
        body = await self._json(request)
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or len(inputs) > 100:
            raise validation("inputs: 1 to 100 ids")
        props = body.get("properties") or None
        ids = [str(i.get("id")) for i in inputs if isinstance(i, dict)]
        with self.lock:
            found = [self.objects[kind][i] for i in ids if i in self.objects[kind]]
            missing = [i for i in ids if i not in self.objects[kind]]
            results = [render(r, props, OBJECT_DEFAULTS) for r in found]
        out: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if missing:
            out["errors"] = [{"status": "error", "category": "OBJECT_NOT_FOUND",
                              "message": "Could not get some records", "context": {"ids":
                              missing}}]  # fmt: skip
            out["numErrors"] = 1
            return json_response(out, 207)
        return json_response(out)

    async def _pipelines(self, request: Request) -> Response:
        self._require(request, "tickets")
        return json_response({"results": copy.deepcopy(_PIPELINES)})

    async def _owners(self, request: Request) -> Response:
        self._require(request, "crm.objects.owners.read")
        limit = self._limit(request, 100, 500)
        archived = request.query_params.get("archived", "false").lower() == "true"
        raw = request.query_params.get("after") or "0"
        if not raw.isdigit():
            raise validation("after must be a paging cursor")
        listed = [o for o in self.owners if bool(o["archived"]) == archived]
        email = request.query_params.get("email")
        if email:
            listed = [o for o in listed if o["email"].lower() == email.lower()]
        start = int(raw)
        page = listed[start : start + limit]
        body: dict[str, Any] = {"results": copy.deepcopy(page)}
        if start + limit < len(listed):
            body["paging"] = {"next": {"after": str(start + limit)}}
        return json_response(body)

    # -- the Sandbox protocol ---------------------------------------------------------------

    def credentials(self) -> dict[str, str]:
        return {"access_token": self.token}

    def bad_credentials(self) -> dict[str, str]:
        return {"access_token": "pat-na1-revoked-" + self.token[-8:]}

    def bridge_env(self, base_url: str) -> dict[str, str]:
        return {"TALKDESK_BRIDGE_HUBSPOT_BASE_URL": base_url}
