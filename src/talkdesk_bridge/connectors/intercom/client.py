"""The Intercom REST API (2.x) endpoints the connector uses, over the shared `Upstream` caller.

Every call carries `Intercom-Version`; the token travels only in the Authorization header of
one request. Ids that go into a path are checked against Intercom's id alphabets first and
URL-encoded anyway, so no request value can change the path or the host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from ..._errors import UpstreamFailed
from ..._upstream import Deadline, Upstream, account_key
from .._base import Auth, auth_choice, auth_value

__all__ = [
    "API_HOSTS",
    "REGIONS",
    "WEB_HOSTS",
    "IntercomClient",
    "SearchPage",
    "Session",
    "any_of",
    "checked_id",
    "region_of",
]

SERVICE = "Intercom"
REGIONS = ("us", "eu", "au")
API_HOSTS = {
    "us": "https://api.intercom.io",
    "eu": "https://api.eu.intercom.io",
    "au": "https://api.au.intercom.io",
}
WEB_HOSTS = {
    "us": "https://app.intercom.com",
    "eu": "https://app.eu.intercom.com",
    "au": "https://app.au.intercom.com",
}

IdKind = Literal["contact", "admin", "ticket_type"]
# Contacts have 24-hex ObjectId-style ids; admins and ticket types are numeric. `fullmatch`
# with ASCII classes: no "/", "%", "?", "#", "@", CR/LF or look-alike unicode can pass.
_ID_PATTERNS: dict[IdKind, re.Pattern[str]] = {
    "contact": re.compile(r"[0-9a-f]{1,64}", re.ASCII | re.IGNORECASE),
    "admin": re.compile(r"[0-9]{1,20}", re.ASCII),
    "ticket_type": re.compile(r"[0-9]{1,20}", re.ASCII),
}
SearchResource = Literal["contacts", "conversations", "tickets"]
_LIST_KEYS: dict[SearchResource, str] = {
    "contacts": "data",
    "conversations": "conversations",
    "tickets": "tickets",
}


def checked_id(kind: IdKind, value: object) -> str | None:
    """`value` when it is a well-formed Intercom id of `kind`, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and kind != "contact":
        value = str(value)
    if not isinstance(value, str) or not _ID_PATTERNS[kind].fullmatch(value):
        return None
    return value


def _segment(value: str) -> str:
    return quote(value, safe="")


def region_of(auth: Auth) -> str:
    """The auth's `region` (us/eu/au; absent or empty means us), else 401 naming the field.

    A region is part of the credentials Talkdesk stores: a bad one means asking the user again.
    """
    return auth_choice(auth, "region", REGIONS, default="us")


@dataclass(frozen=True, slots=True)
class Session:
    """One request's view of an Intercom account: where to call and with which token."""

    base_url: str
    region: str
    account: str
    token: str = field(repr=False)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True, slots=True)
class SearchPage:
    items: list[dict[str, Any]]
    next_cursor: str | None
    total_pages: int | None = None
    total: int | None = None  # matches of the whole query


class IntercomClient:
    def __init__(self, upstream: Upstream, *, base_url: str | None) -> None:
        self.upstream = upstream
        self._base_url = base_url

    def session(self, auth: Auth) -> Session:
        region = region_of(auth)
        token = auth_value(auth, "access_token")
        base = self._base_url or API_HOSTS[region]
        # The base URL is part of the account: the same token means nothing on another host.
        return Session(base, region, account_key("intercom", base, token), token)

    # --- plumbing -----------------------------------------------------------------------

    async def _call(
        self,
        session: Session,
        method: str,
        path: str,
        *,
        deadline: Deadline,
        idempotent: bool,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
    ) -> dict[str, Any]:
        body = await self.upstream.request(
            method,
            session.base_url + path,
            account=session.account,
            deadline=deadline,
            idempotent=idempotent,
            headers=session.headers,
            json=json,
            params=params,
            secrets=(session.token,),
        )
        if not isinstance(body, dict):
            raise UpstreamFailed(f"{SERVICE} answered {path} with an unexpected body")
        return body

    async def get(
        self,
        session: Session,
        path: str,
        *,
        deadline: Deadline,
        params: Mapping[str, str | int] | None = None,
    ) -> dict[str, Any]:
        return await self._call(
            session, "GET", path, deadline=deadline, idempotent=True, params=params
        )

    # --- reads --------------------------------------------------------------------------

    async def me(self, session: Session, *, deadline: Deadline) -> dict[str, Any]:
        return await self.get(session, "/me", deadline=deadline)

    async def admins(self, session: Session, *, deadline: Deadline) -> list[dict[str, Any]]:
        body = await self.get(session, "/admins", deadline=deadline)
        return _dicts(body.get("admins"))

    async def ticket_types(self, session: Session, *, deadline: Deadline) -> list[dict[str, Any]]:
        body = await self.get(session, "/ticket_types", deadline=deadline)
        return _dicts(body.get("data"))

    async def get_contact(
        self, session: Session, contact_id: str, *, deadline: Deadline
    ) -> dict[str, Any]:
        return await self.get(session, f"/contacts/{_segment(contact_id)}", deadline=deadline)

    async def search(
        self,
        session: Session,
        resource: SearchResource,
        query: Mapping[str, Any],
        *,
        deadline: Deadline,
        sort: tuple[str, Literal["ascending", "descending"]],
        per_page: int,
        cursor: str | None = None,
    ) -> SearchPage:
        pagination: dict[str, Any] = {"per_page": per_page}
        if cursor is not None:
            pagination["starting_after"] = cursor
        body = await self._call(
            session,
            "POST",
            f"/{resource}/search",
            deadline=deadline,
            idempotent=True,  # a search changes nothing
            json={
                "query": query,
                "pagination": pagination,
                "sort": {"field": sort[0], "order": sort[1]},
            },
        )
        return _page(body, _LIST_KEYS[resource])

    async def list_companies(
        self, session: Session, *, page: int, per_page: int, deadline: Deadline
    ) -> SearchPage:
        body = await self._call(
            session,
            "POST",
            "/companies/list",
            deadline=deadline,
            idempotent=True,  # a listing, despite the verb
            params={"page": page, "per_page": per_page},
        )
        return _page(body, "data")

    # --- writes (never retried unless provably not processed) ---------------------------

    async def create_note(
        self, session: Session, contact_id: str, body: str, admin_id: str, *, deadline: Deadline
    ) -> dict[str, Any]:
        return await self._call(
            session,
            "POST",
            f"/contacts/{_segment(contact_id)}/notes",
            deadline=deadline,
            idempotent=False,
            json={"body": body, "admin_id": admin_id},
        )

    async def create_ticket(
        self,
        session: Session,
        *,
        ticket_type_id: str,
        contact_id: str,
        title: str,
        description: str | None,
        deadline: Deadline,
    ) -> dict[str, Any]:
        attributes = {"_default_title_": title}
        if description:
            attributes["_default_description_"] = description
        return await self._call(
            session,
            "POST",
            "/tickets",
            deadline=deadline,
            idempotent=False,
            json={
                "ticket_type_id": ticket_type_id,
                "contacts": [{"id": contact_id}],
                "ticket_attributes": attributes,
            },
        )

    async def create_contact(
        self, session: Session, fields: Mapping[str, str], *, deadline: Deadline
    ) -> dict[str, Any]:
        return await self._call(
            session, "POST", "/contacts", deadline=deadline, idempotent=False, json=dict(fields)
        )


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _page(body: Mapping[str, Any], key: str) -> SearchPage:
    items = body.get(key)
    if not isinstance(items, list):
        raise UpstreamFailed(f"{SERVICE} answered a listing without its {key!r} list")
    pages = body.get("pages")
    cursor = None
    total_pages = None
    if isinstance(pages, dict):
        nxt = pages.get("next")
        if isinstance(nxt, dict) and isinstance(nxt.get("starting_after"), str):
            cursor = nxt["starting_after"] or None
        if isinstance(pages.get("total_pages"), int):
            total_pages = pages["total_pages"]
    total = body.get("total_count")
    return SearchPage(
        _dicts(items),
        cursor,
        total_pages,
        total if isinstance(total, int) and not isinstance(total, bool) else None,
    )


def any_of(field_name: str, values: Sequence[str]) -> dict[str, Any]:
    """A filter matching `field_name` equal to any of `values`."""
    if len(values) == 1:
        return {"field": field_name, "operator": "=", "value": values[0]}
    return {"field": field_name, "operator": "IN", "value": list(values)}
