"""Deterministic, realistic-looking people and companies for seeding any vendor sandbox.

Variety is deliberate, so a connector's parsing meets what production sends: accented names,
one to three emails and zero to three phones per person, phones written every way people write
them (E.164, international with spaces, national with punctuation, with an extension, with the
00 international prefix). National spellings (no country code) are only used for people in the
``home_region`` (default US, the bridge's default region), as a US company's CRM would hold
them. Every domain is reserved for examples and every number is in a fictional range where one
exists (US 555-01xx, UK 07700 900xxx, London 020 7946 0xxx). Same seed, same data.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "FIRST_NAMES",
    "LAST_NAMES",
    "PLACES",
    "SUBJECTS",
    "Company",
    "Email",
    "Faker",
    "Person",
    "Phone",
    "Place",
    "ascii_slug",
]

FIRST_NAMES = (
    "Ana", "João", "Maria", "Miguel", "Inês", "Tiago", "Sofia", "Rui", "Beatriz", "Duarte",
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Lucas", "Zoë", "Mateo", "Chloé", "Aarav",
    "Priya", "Wei", "Yuki", "Fatima", "Omar", "Søren", "Ingrid", "Kwame", "Amara", "Diego",
    "Lucía", "Hannah", "Jonas", "Élodie", "Mehmet", "Aisha", "Nikolai", "Siobhán", "Tomás", "Leila",
)  # fmt: skip
LAST_NAMES = (
    "Silva", "Santos", "Ferreira", "Pereira", "Oliveira", "Costa", "Rodrigues", "Martins",
    "Smith", "Johnson", "Williams", "Brown", "García", "Müller", "Schmidt", "Dubois", "Rossi",
    "Nakamura", "Chen", "Kowalski", "O'Brien", "Nguyen", "Haddad", "Okafor", "Van der Berg",
    "Andersen", "Novák", "Öztürk", "Patel", "Fernández",
)  # fmt: skip
SUBJECTS = (
    "I can't log in to my account",
    "Question about my last invoice",
    "How do I export my data?",
    "The mobile app crashes on start",
    "Can I change my plan?",
    "Refund request",
    "Delivery is late",
    "Please update my billing address",
)
_TITLES = (
    "Account Manager", "Head of Operations", "Software Engineer", "CFO", "Office Manager",
    "Customer Success Lead", "Procurement Specialist", "Founder", "IT Administrator", None,
)  # fmt: skip
_COMPANY_WORDS = (
    "Northwind", "Contoso", "Fabrikam", "Globex", "Initech", "Umbrella", "Tailspin", "Litware",
    "Proseware", "Wingtip", "Adatum", "Lucerne", "Fourth Coffee", "Alpine", "Blue Yonder",
    "Coho", "Woodgrove", "Trey", "Margie", "Wide World",
)  # fmt: skip
_COMPANY_SUFFIXES = ("Traders", "Labs", "Logistics", "Health", "Foods", "Systems", "Travel", "Bank")
_INDUSTRIES = ("Retail", "Software", "Logistics", "Healthcare", "Food", "Finance", "Travel")
_PERSONAL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example")
_EXTENSIONS = (" ext. {}", " x{}", " ext {}", ";ext={}")


@dataclass(frozen=True, slots=True)
class Place:
    country: str
    region_code: str  # ISO 3166 alpha-2, as phone libraries take it
    region: str
    city: str
    calling_code: str  # digits, without "+"
    trunk: str  # dialled before a national number ("0"), "" where there is none
    groups: tuple[int, ...]  # digit groups of the national number
    prefixes: tuple[str, ...]  # how national numbers start (fictional ranges where known)


PLACES = (
    Place("United States", "US", "California", "San Francisco", "1", "", (3, 3, 4),
          ("415555", "628555")),
    Place("United States", "US", "New York", "New York", "1", "", (3, 3, 4),
          ("212555", "646555", "917555")),
    Place("United Kingdom", "GB", "England", "London", "44", "0", (4, 6), ("7700900",)),
    Place("United Kingdom", "GB", "England", "London", "44", "0", (2, 4, 4), ("2079460",)),
    Place("Portugal", "PT", "Lisbon", "Lisbon", "351", "", (3, 3, 3), ("91", "92", "93", "96")),
    Place("Portugal", "PT", "Porto", "Porto", "351", "", (3, 3, 3), ("22", "91")),
    Place("Ireland", "IE", "Dublin", "Dublin", "353", "0", (2, 3, 4), ("85", "87")),
    Place("Germany", "DE", "Berlin", "Berlin", "49", "0", (2, 8), ("30",)),
    Place("France", "FR", "Île-de-France", "Paris", "33", "0", (1, 2, 2, 2, 2), ("1", "6")),
    Place("Brazil", "BR", "São Paulo", "São Paulo", "55", "0", (2, 5, 4), ("119",)),
    Place("Japan", "JP", "Tokyo", "Tokyo", "81", "0", (1, 4, 4), ("3",)),
    Place("India", "IN", "Karnataka", "Bengaluru", "91", "0", (2, 4, 4), ("80",)),
)  # fmt: skip
_US_FICTIONAL_LINE = "01"  # 555-0100 to 555-0199 are reserved for fiction


@lru_cache(maxsize=1024)
def ascii_slug(text: str) -> str:
    """Lower-case ASCII letters and digits of ``text`` ("Zoë O'Brien" -> "zoeobrien")."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


@dataclass(frozen=True, slots=True)
class Phone:
    number: str  # as the person wrote it
    e164: str  # the same number in E.164, extension dropped
    kind: str  # "mobile" | "work" | "home"
    style: str  # "e164" | "international" | "national" | "extension" | "idd"
    extension: str | None = None


@dataclass(frozen=True, slots=True)
class Email:
    address: str
    kind: str  # "personal" | "work" | "other"


@dataclass(frozen=True, slots=True)
class Company:
    name: str
    domain: str
    industry: str


@dataclass(frozen=True, slots=True)
class Person:
    index: int
    first_name: str
    last_name: str
    emails: tuple[Email, ...]
    phones: tuple[Phone, ...]
    place: Place
    company: Company | None
    title: str | None

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def email(self) -> str | None:
        """The primary email."""
        return self.emails[0].address if self.emails else None

    @property
    def phone(self) -> str | None:
        """The primary phone, as written."""
        return self.phones[0].number if self.phones else None

    @property
    def handle(self) -> str:
        """A unique ASCII handle (``anasilva12``) for usernames and URLs."""
        return f"{ascii_slug(self.first_name)}{ascii_slug(self.last_name)}{self.index}"


class Faker:
    """People, companies, phones and subjects from one seeded RNG (``rng`` is public, for a
    vendor's own choices: drawing from it keeps everything reproducible from the seed).

    ``person(i)`` gives emails unique to index ``i``; ``companies`` is the pool people work
    for (``company(i)`` is the same company for the same ``i`` whatever the seed)."""

    def __init__(self, seed: int = 0, *, home_region: str = "US", companies: int = 40) -> None:
        self.rng = random.Random(seed)
        self.home_region = home_region.upper()
        self.company_pool = max(1, companies)
        self._pool = [self.company(i) for i in range(self.company_pool)]

    # -- companies -------------------------------------------------------------------------

    def company(self, index: int) -> Company:
        words, suffixes = _COMPANY_WORDS, _COMPANY_SUFFIXES
        word = words[index % len(words)]
        suffix = suffixes[(index // len(words)) % len(suffixes)]
        cycle = index // (len(words) * len(suffixes))
        name = f"{word} {suffix}" + (f" {cycle + 1}" if cycle else "")
        slug = "-".join(ascii_slug(part) for part in name.split())
        return Company(name, f"{slug}.example", _INDUSTRIES[index % len(_INDUSTRIES)])

    def companies(self, n: int | None = None) -> list[Company]:
        return [self.company(i) for i in range(self.company_pool if n is None else n)]

    # -- phones ----------------------------------------------------------------------------

    def phone(self, place: Place | None = None, kind: str = "mobile") -> Phone:
        rng = self.rng
        place = place or rng.choice(PLACES)
        prefix = rng.choice(place.prefixes)
        width = sum(place.groups)
        if place.region_code in ("US", "CA"):
            digits = prefix + _US_FICTIONAL_LINE + f"{rng.randrange(100):02d}"
        else:
            free = width - len(prefix)
            digits = prefix + f"{rng.randrange(10**free):0{free}d}"
        parts, at = [], 0
        for size in place.groups:
            parts.append(digits[at : at + size])
            at += size
        code = place.calling_code
        e164 = f"+{code}{digits}"
        home = place.region_code == self.home_region
        roll = rng.random()
        style = (
            "e164" if roll < 0.3
            else "international" if roll < 0.55 or (roll < 0.75 and not home)
            else "national" if roll < 0.75
            else "extension" if roll < 0.85
            else "idd"
        )  # fmt: skip
        extension = None
        if style == "e164":
            number = e164
        elif style == "idd":
            number = f"00{code} {' '.join(parts)}"
        else:
            if code == "1":
                international = f"+1 {parts[0]}-{parts[1]}-{parts[2]}"
                national = rng.choice(
                    (f"({parts[0]}) {parts[1]}-{parts[2]}", f"{parts[0]}.{parts[1]}.{parts[2]}")
                )
            else:
                international = f"+{code} {' '.join(parts)}"
                national = place.trunk + " ".join(parts)
            if style == "international":
                number = international
            elif style == "national":
                number = national
            else:
                extension = str(rng.randrange(2, 999))
                base = national if home and rng.random() < 0.5 else international
                number = base + rng.choice(_EXTENSIONS).format(extension)
        return Phone(number, e164, kind, style, extension)

    # -- people ----------------------------------------------------------------------------

    def person(self, index: int) -> Person:
        rng = self.rng
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        place = rng.choice(PLACES)
        company = rng.choice(self._pool) if rng.random() < 0.8 else None
        a, b = ascii_slug(first), ascii_slug(last)
        personal = Email(f"{a}.{b}{index}@{rng.choice(_PERSONAL_DOMAINS)}", "personal")
        work = Email(f"{a[:1]}{b}{index}@{company.domain if company else 'work.example'}", "work")
        other = Email(f"{b}.{a}.{index}@{rng.choice(_PERSONAL_DOMAINS)}", "other")
        roll = rng.random()
        count = 1 if roll < 0.5 else 2 if roll < 0.85 else 3
        emails = (
            (work, personal, other) if company and rng.random() < 0.5 else (personal, work, other)
        )
        roll = rng.random()
        phone_count = 0 if roll < 0.08 else 1 if roll < 0.45 else 2 if roll < 0.8 else 3
        phones = tuple(
            # Mostly local numbers; now and then one from abroad.
            self.phone(place if n == 0 or rng.random() < 0.8 else None, kind)
            for n, kind in enumerate(("mobile", "work", "home")[:phone_count])
        )
        return Person(
            index=index,
            first_name=first,
            last_name=last,
            emails=emails[:count],
            phones=phones,
            place=place,
            company=company,
            title=rng.choice(_TITLES) if company else None,
        )

    def people(self, n: int, start: int = 0) -> list[Person]:
        return [self.person(i) for i in range(start, start + n)]

    def subject(self) -> str:
        """A support request's subject line."""
        return self.rng.choice(SUBJECTS)

    def timestamp(self, start: float, end: float) -> int:
        """A whole second in ``[start, end]``."""
        return self.rng.randint(int(start), max(int(start), int(end)))
