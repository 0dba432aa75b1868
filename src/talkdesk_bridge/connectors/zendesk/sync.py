"""Contact sync from the cursor-based incremental user export, as a `FeedSource`.

The export walks changes in `updated_at` order; its cursor is a position in that order, so a
write that reaches the export late, under an earlier `updated_at`, lands behind a cursor that
already passed it. The engine runs with `late_writes`: checkpoints are cursors that trail a
run's start by the safety window (else that moment as `start_time`), so each run re-reads the
window. The export withholds its last minute and refuses a `start_time` under a minute old
(`StartTimeTooRecent`): a run that asks too early simply ends with nothing new.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import JsonValue

from ..._errors import UpstreamFailed, UpstreamRejected
from ..._models import Contact
from ..._upstream import Clock, Deadline
from ...sync import CursorExpired, FeedBatch, FeedStart, Record
from .client import Session, ZendeskClient, checked_id
from .mapping import epoch, is_contact, to_contact

__all__ = ["ExportSource"]

# The export withholds the last minute; ask no later than this behind our own clock.
_WITHHELD = 90

Organizations = Callable[[Session], Awaitable[Mapping[str, str]]]


class ExportSource:
    def __init__(
        self,
        client: ZendeskClient,
        organizations: Organizations,
        *,
        per_page: int,
        region: str,
        title_field: str | None,
        address_field: str | None,
        clock: Clock,
    ) -> None:
        self.client = client
        self.organizations = organizations
        self.per_page = per_page
        self.region = region
        self.title_field = title_field
        self.address_field = address_field
        self.clock = clock

    async def read(
        self,
        ctx: Session,
        start: FeedStart,
        position: JsonValue,
        limit: int,
        deadline: Deadline,
    ) -> FeedBatch:
        cursor = position if position is not None else start.cursor
        start_time = None
        if cursor is None:
            since = int(start.since or 0)
            start_time = max(0, min(since, int(self.clock()) - _WITHHELD))
        try:
            body = await self.client.export_users(
                ctx,
                cursor=cursor if isinstance(cursor, str) else None,
                start_time=start_time,
                per_page=min(self.per_page, max(1, limit)),
                deadline=deadline,
            )
        except UpstreamRejected as exc:
            if exc.upstream_status == 403:
                raise UpstreamRejected(
                    "Zendesk refused the incremental user export: it needs an admin's "
                    "credentials (reconnect with an admin)",
                    upstream_status=403,
                ) from None
            if cursor is None and "StartTimeTooRecent" in exc.message:
                return FeedBatch([], None, None)  # nothing the export will show yet
            if cursor is not None and exc.upstream_status in (400, 404, 422):
                raise CursorExpired from None
            raise
        users = body.get("users")
        if not isinstance(users, list):
            raise UpstreamFailed("Zendesk answered the user export without its users")
        records = await self._records(ctx, [u for u in users if isinstance(u, dict)], body)
        after = body.get("after_cursor")
        after = after if isinstance(after, str) and after else None
        if body.get("end_of_stream") is True:
            return FeedBatch(records, None, checkpoint=after)
        if after is None:
            raise UpstreamFailed("Zendesk's user export stopped without a cursor")
        return FeedBatch(records, after, checkpoint=after)

    async def _records(
        self, session: Session, users: list[dict[str, Any]], body: Mapping[str, Any]
    ) -> list[Record[Contact]]:
        identities: dict[str, list[dict[str, Any]]] = {}
        raw = body.get("identities")
        for identity in raw if isinstance(raw, list) else ():
            if isinstance(identity, dict) and (owner := checked_id(identity.get("user_id"))):
                identities.setdefault(owner, []).append(identity)
        organizations: Mapping[str, str] = {}
        if any(u.get("organization_id") and is_contact(u) for u in users):
            organizations = await self.organizations(session)
        records: list[Record[Contact]] = []
        for user in users:
            user_id = checked_id(user.get("id"))
            if user_id is None:
                continue
            modified = epoch(user.get("updated_at"))
            contact = to_contact(
                user,
                identities.get(user_id, ()),
                web=session.web,
                region=self.region,
                organizations=organizations,
                title_field=self.title_field,
                address_field=self.address_field,
            )
            records.append(Record((modified or 0.0, int(user_id)), user_id, contact, modified))
        return records
