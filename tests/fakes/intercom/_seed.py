"""Deterministic, realistic-looking contact data (names, emails, phones, places).

Variety is deliberate: missing names, accented names, several phone formats, leads without
email, and all three avatar shapes, so a connector's parsing meets what production sends.
All domains and numbers are fictitious (example domains, 555-01xx and similar ranges).
"""

from __future__ import annotations

import random
import unicodedata
from functools import lru_cache
from typing import Any

__all__ = ["ContactFaker"]

_FIRST = (
    "Ana", "João", "Maria", "Miguel", "Inês", "Tiago", "Sofia", "Rui", "Beatriz", "Duarte",
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Lucas", "Zoë", "Mateo", "Chloé", "Aarav",
    "Priya", "Wei", "Yuki", "Fatima", "Omar", "Søren", "Ingrid", "Kwame", "Amara", "Diego",
    "Lucía", "Hannah", "Jonas", "Élodie", "Mehmet", "Aisha", "Nikolai", "Siobhán", "Tomás", "Leila",
)  # fmt: skip
_LAST = (
    "Silva", "Santos", "Ferreira", "Pereira", "Oliveira", "Costa", "Rodrigues", "Martins",
    "Smith", "Johnson", "Williams", "Brown", "García", "Müller", "Schmidt", "Dubois", "Rossi",
    "Nakamura", "Chen", "Kowalski", "O'Brien", "Nguyen", "Haddad", "Okafor", "Van der Berg",
    "Andersen", "Novák", "Öztürk", "Patel", "Fernández",
)  # fmt: skip
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example", "acme.test")
_PLACES = (
    ("Portugal", "Lisbon", "Lisbon", "+351"),
    ("Portugal", "Porto", "Porto", "+351"),
    ("United States", "California", "San Francisco", "+1"),
    ("United States", "New York", "New York", "+1"),
    ("United Kingdom", "England", "London", "+44"),
    ("Ireland", "Dublin", "Dublin", "+353"),
    ("Germany", "Berlin", "Berlin", "+49"),
    ("Brazil", "São Paulo", "São Paulo", "+55"),
    ("Japan", "Tokyo", "Tokyo", "+81"),
    ("India", "Karnataka", "Bengaluru", "+91"),
)
_PLANS = ("free", "starter", "pro", "enterprise")


@lru_cache(maxsize=512)
def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


class ContactFaker:
    """Produces keyword arguments for ``FakeIntercom.add_contact`` from a seeded RNG."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)

    def phone(self, dial: str) -> str | None:
        rng = self.rng
        style = rng.randrange(10)
        if style == 0:
            return None
        if dial == "+1":
            line = f"555-01{rng.randrange(100):02d}"
            area = rng.choice(("415", "212", "646", "628"))
            return f"({area}) {line}" if style < 3 else f"+1{area}{line.replace('-', '')}"
        if dial == "+44":
            return f"+44 7700 900{rng.randrange(1000):03d}"
        digits = f"{rng.randrange(10**8):08d}"
        if dial == "+351":
            number = f"9{rng.choice('1236')}{digits[:7]}"
            return f"{dial} {number[:3]} {number[3:6]} {number[6:]}" if style < 5 else dial + number
        return f"{dial}{digits}"

    def contact(self, index: int) -> dict[str, Any]:
        rng = self.rng
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        country, region, city, dial = rng.choice(_PLACES)
        is_lead = index % 5 == 4
        named = not (is_lead and rng.random() < 0.5)
        email: str | None = f"{_ascii(first)}.{_ascii(last)}{index}@{rng.choice(_DOMAINS)}"
        if is_lead and rng.random() < 0.3:
            email = None
        handle = f"{_ascii(first)}{_ascii(last)}{index}"
        fields: dict[str, Any] = {
            "role": "lead" if is_lead else "user",
            "name": f"{first} {last}" if named else None,
            "email": email,
            "phone": self.phone(dial),
            "external_id": None if is_lead else f"cust-{index + 1:06d}",
            "avatar": f"https://static.example.com/avatars/{handle}.png",
            # The same data arrives in all three avatar shapes across contacts.
            "avatar_shape": ("object", "object", "string", "null")[index % 4],
            "location": {"country": country, "region": region, "city": city},
            "custom_attributes": {"plan": rng.choice(_PLANS), "seats": rng.randrange(1, 200)},
            "social_profiles": (
                [{"name": "Twitter", "url": f"https://twitter.com/{handle}"}]
                if rng.random() < 0.4
                else []
            ),
            "company_ids": [
                f"{rng.getrandbits(96):024x}" for _ in range(rng.choice((0, 1, 1, 12)))
            ],
            "browser": rng.choice(("chrome", "firefox", "safari", None)),
            "os": rng.choice(("Mac OS X", "Windows 10", "iOS 17", "Android 14", None)),
        }
        return fields
