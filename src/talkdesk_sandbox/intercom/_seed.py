"""Intercom-shaped contact data on the kit's ``Faker``.

Intercom has one email and one phone per contact: the person's primary ones (phones in every
format the kit writes). On top: leads without a name or an email, all three avatar shapes, up to
12 companies, social profiles and custom attributes, so a connector meets what production sends.
"""

from __future__ import annotations

from typing import Any

from .._seed import Faker

__all__ = ["ContactFaker"]

_PLANS = ("free", "starter", "pro", "enterprise")


class ContactFaker:
    """Produces keyword arguments for ``FakeIntercom.add_contact`` from a seeded RNG."""

    def __init__(self, seed: int = 0) -> None:
        self.people = Faker(seed)
        self.rng = self.people.rng

    def contact(self, index: int) -> dict[str, Any]:
        rng = self.rng
        person = self.people.person(index)
        place = person.place
        is_lead = index % 5 == 4
        named = not (is_lead and rng.random() < 0.5)
        email = None if is_lead and rng.random() < 0.3 else person.email
        handle = person.handle
        custom: dict[str, Any] = {"plan": rng.choice(_PLANS), "seats": rng.randrange(1, 200)}
        if person.title:
            custom["job_title"] = person.title
        return {
            "role": "lead" if is_lead else "user",
            "name": person.name if named else None,
            "email": email,
            "phone": person.phone,
            "external_id": None if is_lead else f"cust-{index + 1:06d}",
            "avatar": f"https://static.example.com/avatars/{handle}.png",
            # The same data arrives in all three avatar shapes across contacts.
            "avatar_shape": ("object", "object", "string", "null")[index % 4],
            "location": {"country": place.country, "region": place.region, "city": place.city},
            "custom_attributes": custom,
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
