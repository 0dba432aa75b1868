"""Google People API objects: Person records as the People API renders them, field masks,
resource names and the error envelope."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from .._seed import Person

__all__ = [
    "CONTACT_FIELDS",
    "ApiError",
    "error_body",
    "fields_of",
    "new_number",
    "person_from_body",
    "person_from_seed",
    "render",
    "rfc3339",
    "stub",
]

# Person fields a `personFields` mask may name (the subset this sandbox stores, plus the
# valid ones it has no data for: they are accepted and render nothing).
CONTACT_FIELDS = frozenset(
    {
        "addresses", "ageRanges", "biographies", "birthdays", "calendarUrls", "clientData",
        "coverPhotos", "emailAddresses", "events", "externalIds", "genders", "imClients",
        "interests", "locales", "locations", "memberships", "metadata", "miscKeywords",
        "names", "nicknames", "occupations", "organizations", "phoneNumbers", "photos",
        "relations", "sipAddresses", "skills", "urls", "userDefined",
    }
)  # fmt: skip
_DOCS = "https://developers.google.com/people/api/rest/v1/people.connections/list"
_PLACEHOLDER = "https://lh3.googleusercontent.com/cm/ABxY0default{}=s100"
_PHOTO = "https://lh3.googleusercontent.com/a/ABcd{}=s100"


class ApiError(Exception):
    """An answer in Google's error envelope."""

    def __init__(
        self, status: int, message: str, rpc: str, reason: str | None = None, domain: str = ""
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.rpc, self.reason = status, message, rpc, reason
        self.domain = domain or "googleapis.com"

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.message, self.rpc, self.reason, self.domain)


def error_body(
    status: int, message: str, rpc: str, reason: str | None = None, domain: str = "googleapis.com"
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": status, "message": message, "status": rpc}
    if reason:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": domain,
                "metadata": {"service": "people.googleapis.com"},
            }
        ]
    return {"error": error}


def invalid(message: str = "Request contains an invalid argument.") -> ApiError:
    return ApiError(400, message, "INVALID_ARGUMENT")


def fields_of(mask: str | None, name: str = "personFields") -> frozenset[str]:
    """The parsed mask, or the 400s Google answers for a missing or unknown path."""
    if mask is None or not mask.strip():
        raise invalid(f"{name} mask is required. Please specify one or more valid paths. "
                      f"Valid paths are documented at {_DOCS}.")  # fmt: skip
    paths = [p.strip() for p in mask.split(",") if p.strip()]
    for path in paths:
        # "person." prefixes are accepted, as Google does.
        bare = path.removeprefix("person.")
        if bare not in CONTACT_FIELDS:
            raise invalid(f'Invalid {name} mask path: "{path}". Valid paths are documented at '
                          f"{_DOCS}.")  # fmt: skip
    return frozenset(p.removeprefix("person.") for p in paths)


def rfc3339(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{int(stamp * 1000) % 1000:03d}Z"
    )


def new_number(rng: random.Random) -> int:
    return rng.getrandbits(63) | (1 << 62)


def _etag(prefix: str, *parts: object) -> str:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:24]
    return prefix + digest


def _meta(source: str, primary: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {"source": {"type": "CONTACT", "id": source}}
    if primary:
        meta["primary"] = True
    return meta


def stamp_person(person: dict[str, Any], number: int, stamp: float, version: int) -> None:
    """Resource name, etags and source metadata for a write at `stamp` (in place)."""
    source = f"{number:x}"
    person["resourceName"] = f"people/c{number}"
    person["etag"] = _etag("%", number, version, stamp)
    metadata = person.setdefault("metadata", {})
    metadata["sources"] = [
        {
            "type": "CONTACT",
            "id": source,
            "etag": _etag("#", number, version),
            "updateTime": rfc3339(stamp),
        }
    ]
    metadata["objectType"] = "PERSON"
    for key in ("names", "emailAddresses", "phoneNumbers", "organizations", "photos",
                "addresses", "urls", "biographies"):  # fmt: skip
        for n, item in enumerate(person.get(key, ())):
            item["metadata"] = _meta(source, n == 0)
    person["_updated"] = stamp


def _names(given: str, family: str) -> list[dict[str, Any]]:
    display = f"{given} {family}".strip()
    return [
        {
            "displayName": display,
            "familyName": family,
            "givenName": given,
            "displayNameLastFirst": f"{family}, {given}" if family and given else display,
            "unstructuredName": display,
        }
    ]


def person_from_seed(person: Person, rng: random.Random) -> dict[str, Any]:
    """A Google contact as a user keeps it: some phones Google cannot parse (no
    `canonicalForm`), mostly the placeholder photo, an address, now and then a website."""
    record: dict[str, Any] = {"names": _names(person.first_name, person.last_name)}
    record["emailAddresses"] = [
        {"value": e.address, "type": {"personal": "home"}.get(e.kind, e.kind),
         "formattedType": e.kind.title()}
        for e in person.emails
    ]  # fmt: skip
    phones = []
    for phone in person.phones:
        item: dict[str, Any] = {"value": phone.number, "type": phone.kind}
        if phone.extension is None:
            item["canonicalForm"] = phone.e164
        phones.append(item)
    if rng.random() < 0.05:
        phones.append({"value": "ask reception for " + person.first_name, "type": "other"})
    if phones:
        record["phoneNumbers"] = phones
    if person.company is not None:
        org: dict[str, Any] = {"name": person.company.name, "type": "work"}
        if person.title:
            org["title"] = person.title
        record["organizations"] = [org]
    seed = f"{person.index}{rng.randrange(10**6)}"
    if rng.random() < 0.25:
        record["photos"] = [{"url": _PHOTO.format(seed)}]
    else:
        record["photos"] = [{"url": _PLACEHOLDER.format(seed), "default": True}]
    place = person.place
    record["addresses"] = [
        {
            "formattedValue": f"{place.city}, {place.region}, {place.country}",
            "city": place.city,
            "region": place.region,
            "country": place.country,
            "countryCode": place.region_code,
            "type": "work" if person.company else "home",
        }
    ]
    if rng.random() < 0.2:
        record["urls"] = [{"value": f"https://{person.handle}.example.com", "type": "homePage"}]
    return record


def person_from_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """A new contact from a createContact body; `ApiError` for what Google refuses."""
    record: dict[str, Any] = {}
    names = body.get("names")
    if names is not None:
        if not isinstance(names, list) or len(names) > 1:
            raise invalid("Only one name may be set on a contact.")
        if names:
            name = names[0] if isinstance(names[0], dict) else {}
            given = str(name.get("givenName") or name.get("unstructuredName") or "").strip()
            family = str(name.get("familyName") or "").strip()
            if given or family:
                record["names"] = _names(given, family)
    for key in ("emailAddresses", "phoneNumbers", "organizations", "urls", "addresses"):
        items = body.get(key)
        if items is None:
            continue
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise invalid()
        kept = [{k: v for k, v in i.items() if k != "metadata"} for i in items]
        if key == "phoneNumbers":
            for phone in kept:
                value = str(phone.get("value") or "")
                digits = value.replace(" ", "").replace("-", "")
                if digits.startswith("+") and digits[1:].isdigit() and 8 <= len(digits) <= 16:
                    phone["canonicalForm"] = digits
        if kept:
            record[key] = kept
    if not record:
        raise invalid("A contact must have at least one field set.")
    return record


def render(person: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """The person as `personFields` asks: resourceName and etag always, empty fields never."""
    out: dict[str, Any] = {"resourceName": person["resourceName"], "etag": person["etag"]}
    for name in fields:
        value = person.get(name)
        if value:
            out[name] = value
    return out


def stub(resource: str, number: int, fields: Iterable[str]) -> dict[str, Any]:
    """A deleted contact in a sync response; the flag needs `metadata` in the mask."""
    out: dict[str, Any] = {"resourceName": resource, "etag": _etag("%", resource, "deleted")}
    if "metadata" in fields:
        out["metadata"] = {
            "sources": [{"type": "CONTACT", "id": f"{number:x}"}],
            "deleted": True,
            "objectType": "PERSON",
        }
    return out
