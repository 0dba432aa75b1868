"""What both sync shapes share: records, tokens bound to one connector, page assembly."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .._errors import InvalidRequest
from .._models import Contact, ContactPage
from .._observability import record_sync
from .._tokens import decode_token, encode_token

__all__ = ["Collector", "Record", "bad_token", "read_token", "write_token"]

T = TypeVar("T")

OFFSET = "meta.offset"
CHECKPOINT = "meta.synchronization_checkpoint"


@dataclass(frozen=True, slots=True)
class Record(Generic[T]):
    """One upstream record as the engine sees it.

    `key` is the source's sort order (strictly increasing along a walk), `id` Talkdesk's contact
    id, `item` the mapped contact (None when the record is not to be sent: deleted, an agent...;
    it still counts as progress). `modified`, when given, is checked against the run's window:
    for sources whose filters are coarser than the window (day-granular dates).
    """

    key: tuple[Any, ...]
    id: str
    item: T | None
    modified: Any = None


def bad_token(field: str) -> InvalidRequest:
    return InvalidRequest(f"{field} is not a value this bridge issued")


def write_token(engine: str, payload: dict[str, Any]) -> str:
    return encode_token({"e": engine, **payload})


def read_token(token: str, field: str, engine: str) -> dict[str, Any]:
    """The payload of a token this connector issued. Tokens from before tokens named their
    connector (no "e") are read too, so deployed checkpoints keep working."""
    payload = decode_token(token, field)
    if payload.get("e", engine) != engine:
        raise bad_token(field)
    return payload


class Collector:
    """The contacts of one page: each id once, in its latest version, in arrival order."""

    __slots__ = ("_contacts", "records")

    def __init__(self) -> None:
        self._contacts: dict[str, Contact] = {}
        self.records = 0

    def add(self, records: Iterable[Record[Contact]]) -> None:
        for record in records:
            self.records += 1
            if record.item is None:
                continue
            self._contacts.pop(record.id, None)
            self._contacts[record.id] = record.item

    def __len__(self) -> int:
        return len(self._contacts)

    def page(
        self, connector: str, checkpoint: str, next_offset: str | None, kind: str
    ) -> ContactPage:
        record_sync(connector, kind, len(self._contacts))
        return ContactPage(
            contacts=list(self._contacts.values()),
            synchronization_checkpoint=checkpoint,
            next_offset=next_offset,
        )
