"""One Salesforce org: objects, ids, picklists, versioned rows and the writes tests make.

Every object's rows live in a kit `VersionedStore` sorted by `SystemModstamp` (whole seconds:
many rows share one). A write is stamped when it happens and seen by reads only when it
commits (`delay`: a late commit, older than rows already read). Deletes and merges keep the
row with `IsDeleted` (only `queryAll` shows it); converted leads stay, read-only.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from .._clock import Clock
from .._store import VersionedStore

__all__ = ["OBJECTS", "PREFIXES", "Org", "WriteError", "make_id"]

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
PREFIXES = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Task": "00T",
    "Event": "00U",
    "Lead": "00Q",
    "Case": "500",
}
_COMMON = {
    "Id": "id",
    "IsDeleted": "bool",
    "CreatedDate": "dt",
    "LastModifiedDate": "dt",
    "SystemModstamp": "dt",
    "OwnerId": "ref:User",
}
_PERSON = {
    "Name": "str",
    "FirstName": "str",
    "LastName": "str",
    "Email": "str",
    "Phone": "phone",
    "MobilePhone": "phone",
    "Title": "str",
}
OBJECTS: dict[str, dict[str, str]] = {
    "Account": {**_COMMON, "Name": "str", "Phone": "phone"},
    "Contact": {
        **_COMMON,
        **_PERSON,
        "HomePhone": "phone",
        "OtherPhone": "phone",
        "AccountId": "ref:Account",
        "Account": "parent:Account:AccountId",
        "MailingStreet": "str",
        "MailingCity": "str",
        "MailingState": "str",
        "MailingPostalCode": "str",
        "MailingCountry": "str",
        "MailingAddress": "address:Mailing",
        "MasterRecordId": "ref:Contact",
        "PhotoUrl": "str",
    },
    "Lead": {
        **_COMMON,
        **_PERSON,
        "Company": "str",
        "Status": "str",
        "Street": "str",
        "City": "str",
        "State": "str",
        "PostalCode": "str",
        "Country": "str",
        "Address": "address:",
        "IsConverted": "bool",
        "ConvertedContactId": "ref:Contact",
        "MasterRecordId": "ref:Lead",
    },
    "Task": {
        **_COMMON,
        "Subject": "str",
        "Description": "text",
        "Status": "str",
        "IsClosed": "bool",
        "Priority": "str",
        "WhoId": "ref:*",
        "WhatId": "ref:*",
        "TaskSubtype": "str",
        "CallType": "str",
        "CallDurationInSeconds": "int",
        "CallDisposition": "str",
        "CallObject": "str",
        "ActivityDate": "date",
        "IsArchived": "bool",
    },
    "Event": {
        **_COMMON,
        "Subject": "str",
        "Description": "text",
        "StartDateTime": "dt",
        "EndDateTime": "dt",
        "IsAllDayEvent": "bool",
        "Location": "str",
        "WhoId": "ref:*",
        "WhatId": "ref:*",
        "IsArchived": "bool",
    },
    "Case": {
        **_COMMON,
        "CaseNumber": "str",
        "Subject": "str",
        "Description": "text",
        "Status": "str",
        "IsClosed": "bool",
        "Priority": "str",
        "Origin": "str",
        "ContactId": "ref:Contact",
        "AccountId": "ref:Account",
    },
    "User": {
        **_COMMON,
        "Name": "str",
        "FirstName": "str",
        "LastName": "str",
        "Email": "str",
        "IsActive": "bool",
        "UserType": "str",
    },
}
# What a create may not set (computed or system fields).
_READ_ONLY = frozenset(
    {"Id", "Name", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp",
     "IsClosed", "CaseNumber", "IsConverted", "ConvertedContactId", "MasterRecordId",
     "IsArchived", "MailingAddress", "Address", "Account", "PhotoUrl"}
)  # fmt: skip
_REQUIRED = {"Contact": ("LastName",), "Lead": ("LastName", "Company"), "Account": ("Name",)}
_MAX_LENGTHS = {"Subject": 255, "LastName": 80, "FirstName": 40, "Email": 80, "Phone": 40}
TASK_SUBTYPES = ("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn")


def _lookup_fields(sobject: str) -> dict[str, Callable[[dict[str, Any]], Any]]:
    """Sort indexes the engine answers equality lookups from (an org's indexed fields):
    references, Email (case-insensitive) and CallObject."""

    def lowered(name: str) -> Callable[[dict[str, Any]], Any]:
        return lambda row: row[name].lower() if isinstance(row.get(name), str) else None

    fields: dict[str, Callable[[dict[str, Any]], Any]] = {
        "SystemModstamp": itemgetter("SystemModstamp")
    }
    for name, kind in OBJECTS[sobject].items():
        if kind.startswith("ref:") or name in ("Email", "CallObject"):
            fields[name] = lowered(name) if name == "Email" else itemgetter(name)
    return fields


class WriteError(Exception):
    """A refused write: Salesforce's 400 array body."""

    def __init__(
        self, code: str, message: str, fields: list[str] | None = None, extra: Any = None
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.fields, self.extra = code, message, fields or [], extra

    def body(self) -> list[dict[str, Any]]:
        error: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields:
            error["fields"] = self.fields
        if self.extra is not None:
            error["duplicateResult"] = self.extra
        return [error]


def make_id(prefix: str, n: int) -> str:
    """An 18-character id: prefix, pod, sequence in base 62, and the case checksum."""
    digits = []
    for _ in range(9):
        n, d = divmod(n, 62)
        digits.append(_ALPHABET[d])
    base = prefix + "Hs0" + "".join(reversed(digits))
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << j for j, c in enumerate(base[chunk * 5 : chunk * 5 + 5]) if c.isupper())
        suffix += _CHECKSUM[bits]
    return base + suffix


@dataclass
class Picklists:
    """Org-customisable picklists: value -> closed."""

    task_status: dict[str, bool]
    case_status: dict[str, bool]
    task_priority: tuple[str, ...] = ("High", "Normal", "Low")
    case_priority: tuple[str, ...] = ("High", "Medium", "Low")


class Org:
    def __init__(self, clock: Clock, *, org_id: str = "00DHs0000000001EAA") -> None:
        self.clock = clock
        self.org_id = org_id
        self.lock = threading.RLock()
        self.stores: dict[str, VersionedStore[dict[str, Any]]] = {
            name: VersionedStore(
                clock, modified="SystemModstamp", fields=_lookup_fields(name), lock=self.lock
            )
            for name in OBJECTS
        }
        self._seq = itertools.count(1)
        self._case_numbers = itertools.count(1001)
        self.picklists = Picklists(
            task_status={
                "Not Started": False,
                "In Progress": False,
                "Completed": True,
                "Waiting on someone else": False,
                "Deferred": False,
            },
            case_status={
                "New": False,
                "Working": False,
                "Escalated": False,
                "On Hold": False,  # a custom value
                "Closed": True,
            },
        )
        self.duplicate_rule = True  # Contacts with an existing Contact's email are refused
        # Writes that commit late: (stamp, commit time), for getUpdated's latestDateCovered.
        self.late: list[tuple[int, float]] = []

    # -- reading ------------------------------------------------------------------------------

    def now(self) -> int:
        return int(self.clock())

    def object_of(self, record_id: str) -> str | None:
        return next((o for o, p in PREFIXES.items() if record_id.startswith(p)), None)

    def visible(self, sobject: str, record_id: str) -> dict[str, Any] | None:
        return self.stores[sobject].visible(record_id)

    def rows(self, sobject: str) -> dict[str, dict[str, Any]]:
        store = self.stores[sobject]
        store.sync()
        return store.index.records

    def get(self, record_id: str) -> dict[str, Any] | None:
        """A visible row by id, of any object (for parent paths and references)."""
        sobject = self.object_of(record_id[:3] if len(record_id) >= 3 else "")
        if sobject is None or len(record_id) not in (15, 18):
            return None
        rows = self.rows(sobject)
        if len(record_id) == 15:
            return next((r for i, r in rows.items() if i[:15] == record_id), None)
        return rows.get(record_id)

    def live(self, sobject: str) -> list[dict[str, Any]]:
        """Every written row (committed or not), not deleted: what the org *holds*."""
        return [r for _, r in self.stores[sobject].live() if not r.get("IsDeleted")]

    # -- writing ------------------------------------------------------------------------------

    def _stamped(self, record: dict[str, Any], *, system: bool = False) -> dict[str, Any]:
        now = self.now()
        record["SystemModstamp"] = now
        if not system:
            record["LastModifiedDate"] = now
        return record

    def _derive(self, sobject: str, record: dict[str, Any]) -> dict[str, Any]:
        if sobject in ("Contact", "Lead", "User"):
            first, last = record.get("FirstName"), record.get("LastName")
            record["Name"] = " ".join(p for p in (first, last) if p) or None
        if sobject == "Task":
            record["IsClosed"] = self.picklists.task_status.get(record.get("Status") or "", False)
        if sobject == "Case":
            record["IsClosed"] = self.picklists.case_status.get(record.get("Status") or "", False)
        return record

    def _check(self, sobject: str, fields: Mapping[str, Any], *, creating: bool) -> None:
        schema = OBJECTS[sobject]
        for name, value in fields.items():
            if name not in schema or schema[name].startswith(("parent", "address")):
                raise WriteError(
                    "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}"
                )
            if name in _READ_ONLY:
                raise WriteError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {name}. Please check the security "
                    "settings of this field and verify that it is read/write for your profile "
                    "or permission set.",
                    [name],
                )
            if isinstance(value, str) and len(value) > _MAX_LENGTHS.get(name, 32_000):
                raise WriteError(
                    "STRING_TOO_LONG",
                    f"{name}: data value too large: {value[:20]}... "
                    f"(max length={_MAX_LENGTHS.get(name, 32_000)})",
                    [name],
                )
            kind = schema[name]
            if kind.startswith("ref:") and value is not None:
                target = kind[4:]
                row = self.get(value) if isinstance(value, str) else None
                if row is None or (target != "*" and self.object_of(value) != target):
                    raise WriteError(
                        "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [name]
                    )
            if (
                kind == "int"
                and value is not None
                and (isinstance(value, bool) or not isinstance(value, int))
            ):
                raise WriteError(
                    "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{name}: value not of required type", [name]
                )
        if sobject == "Task":
            subtype = fields.get("TaskSubtype")
            if subtype is not None and subtype not in TASK_SUBTYPES:
                raise WriteError(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"Task Subtype: bad value for restricted picklist field: {subtype}",
                    ["TaskSubtype"],
                )
        if creating:
            missing = [f for f in _REQUIRED.get(sobject, ()) if not fields.get(f)]
            if missing:
                raise WriteError(
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{', '.join(missing)}]",
                    missing,
                )

    def _duplicate(self, fields: Mapping[str, Any]) -> dict[str, Any] | None:
        email = fields.get("Email")
        if not self.duplicate_rule or not isinstance(email, str):
            return None
        for row in self.rows("Contact").values():
            if not row.get("IsDeleted") and (row.get("Email") or "").lower() == email.lower():
                return {
                    "allowSave": False,
                    "duplicateRule": "Standard_Contact_Duplicate_Rule",
                    "duplicateRuleEntityType": "Contact",
                    "errorMessage": "Use one of these records?",
                    "matchResults": [
                        {
                            "entityType": "Contact",
                            "errorMessage": None,
                            "matchEngine": "FuzzyMatchEngine",
                            "matchRecords": [
                                {
                                    "additionalInformation": [],
                                    "fieldDiffs": [],
                                    "matchConfidence": 100.0,
                                    "record": {
                                        "attributes": {
                                            "type": "Contact",
                                            "url": f"/sobjects/Contact/{row['Id']}",
                                        },
                                        "Id": row["Id"],
                                    },
                                }
                            ],
                            "rule": "Standard_Match_Rule_v1_0",
                            "size": 1,
                            "success": True,
                        }
                    ],
                }
        return None

    def create(
        self,
        sobject: str,
        fields: Mapping[str, Any],
        *,
        delay: float = 0.0,
        checked: bool = True,
        owner: str | None = None,
        at: float | None = None,
    ) -> str:
        """A new row; `checked` applies Salesforce's validation (API writes); `at`
        back-dates it (seed data)."""
        with self.lock:
            if checked:
                self._check(sobject, fields, creating=True)
                if sobject == "Contact" and (dup := self._duplicate(fields)):
                    raise WriteError(
                        "DUPLICATES_DETECTED",
                        "Use one of these records?",
                        extra=dup,
                    )
            record_id = make_id(PREFIXES[sobject], next(self._seq))
            now = self.now()
            record: dict[str, Any] = {
                f: None
                for f, k in OBJECTS[sobject].items()
                if not k.startswith(("parent", "address"))
            }
            record.update(
                {"Id": record_id, "IsDeleted": False, "CreatedDate": now, "OwnerId": owner}
            )
            if sobject in ("Lead",):
                record["IsConverted"] = False
                record["Status"] = "Open - Not Contacted"
            if sobject in ("Task", "Event"):
                record["IsArchived"] = False
            if sobject == "Task":
                record["Status"] = "Not Started"
                record["Priority"] = "Normal"
                record["TaskSubtype"] = "Task"
            if sobject == "Case":
                record["CaseNumber"] = f"{next(self._case_numbers):08d}"
                record["Status"] = "New"
            if sobject == "User":
                record["IsActive"] = True
                record["UserType"] = "Standard"
            record.update(fields)
            self._derive(sobject, self._stamped(record))
            if at is not None:
                record["SystemModstamp"] = record["LastModifiedDate"] = int(min(at, now))
                record["CreatedDate"] = record["SystemModstamp"]
            self.stores[sobject].create(record_id, record, delay=delay, stamp=at)
            self._note(record, delay)
            return record_id

    def _note(self, record: dict[str, Any], delay: float) -> None:
        if delay > 0:
            self.late.append((int(record["SystemModstamp"]), self.clock() + delay))

    def open_since(self) -> int | None:
        """The stamp of the oldest write still uncommitted (a long transaction), if any."""
        now = self.clock()
        self.late = [(stamp, due) for stamp, due in self.late if due > now]
        return min((stamp for stamp, _ in self.late), default=None)

    def _current(self, record_id: str) -> tuple[str, dict[str, Any]]:
        sobject = self.object_of(record_id)
        row = self.stores[sobject].get(record_id) if sobject else None
        if sobject is None or row is None or row.get("IsDeleted"):
            raise WriteError("ENTITY_IS_DELETED" if row else "NOT_FOUND", "entity is deleted")
        return sobject, row

    def update(
        self,
        record_id: str,
        fields: Mapping[str, Any],
        *,
        delay: float = 0.0,
        system: bool = False,
        checked: bool = True,
    ) -> None:
        """A new version; `system` bumps only SystemModstamp (a trigger, a roll-up...)."""
        with self.lock:
            sobject, row = self._current(record_id)
            if checked:
                self._check(sobject, fields, creating=False)
            if sobject == "Lead" and row.get("IsConverted"):
                raise WriteError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
            record = self._derive(sobject, self._stamped({**row, **fields}, system=system))
            self.stores[sobject].update(record_id, record, delay=delay)
            self._note(record, delay)

    def touch(self, record_id: str, *, delay: float = 0.0) -> None:
        """A system-only change: SystemModstamp moves, nothing a user sees does."""
        self.update(record_id, {}, system=True, delay=delay, checked=False)

    def delete(self, record_id: str, *, delay: float = 0.0) -> None:
        with self.lock:
            sobject, row = self._current(record_id)
            record = self._stamped({**row, "IsDeleted": True})
            self.stores[sobject].update(record_id, record, delay=delay)
            self._note(record, delay)

    def merge(self, master_id: str, loser_id: str) -> None:
        with self.lock:
            sobject, row = self._current(loser_id)
            record = self._stamped({**row, "IsDeleted": True, "MasterRecordId": master_id})
            self.stores[sobject].update(loser_id, record)
            self.touch(master_id)

    def convert(self, lead_id: str, *, account_id: str | None = None) -> str:
        """Convert a Lead: a new Contact, the Lead kept with IsConverted (read-only)."""
        with self.lock:
            _, lead = self._current(lead_id)
            contact_id = self.create(
                "Contact",
                {
                    k: lead.get(k)
                    for k in ("FirstName", "LastName", "Email", "Phone", "MobilePhone", "Title")
                }
                | {"AccountId": account_id},
                checked=False,
            )
            record = self._stamped(
                {
                    **lead,
                    "IsConverted": True,
                    "ConvertedContactId": contact_id,
                    "Status": "Closed - Converted",
                }
            )
            self.stores["Lead"].update(lead_id, record)
            return contact_id

    def archive(self, record_id: str) -> None:
        with self.lock:
            sobject, row = self._current(record_id)
            self.stores[sobject].update(
                record_id, self._stamped({**row, "IsArchived": True}, system=True)
            )
