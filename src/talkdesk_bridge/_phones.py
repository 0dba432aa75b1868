"""Phone numbers leave the bridge in E.164 so Talkdesk can identify callers."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import phonenumbers

__all__ = ["lookup_variants", "normalize_phone", "normalize_phones"]


_SEPARATORS = str.maketrans("", "", " -.\u00a0")
_NANP = frozenset({"US", "CA", "PR", "VI", "GU", "AS", "MP"})


def _fast_e164(text: str, region: str) -> str | None:
    """The E.164 form of the commonest spellings, without a full parse (a sync's hot path).

    Only shapes whose answer is certain: "+" (or "00") and digits with separators, and
    10/11-digit North American numbers. Anything else goes to the full parser.
    """
    if text.startswith("00"):
        text = "+" + text[2:]
    if text.startswith("+"):
        # "+44 (0)20 …": the bracketed trunk 0 is not dialled from abroad.
        digits = text[1:].replace("(0)", "", 1).translate(_SEPARATORS)
        if digits.isascii() and digits.isdigit() and 7 <= len(digits) <= 15 and digits[0] != "0":
            return "+" + digits
        return None
    if region in _NANP:
        digits = text.translate(_SEPARATORS).replace("(", "").replace(")", "")
        if digits.isdigit() and digits.isascii():
            if len(digits) == 11 and digits[0] == "1":
                digits = digits[1:]
            if len(digits) == 10 and digits[0] in "23456789":
                return "+1" + digits
    return None


def _parse(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    candidates = [text]
    if text.startswith("00"):
        # "00" is the international prefix almost everywhere but North America.
        candidates.insert(0, "+" + text[2:])
    for candidate in candidates:
        try:
            parsed = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(parsed):
            return parsed
    return None


@lru_cache(maxsize=65_536)
def normalize_phone(raw: str, region: str = "US") -> str:
    """E.164 form of `raw`, or `raw` unchanged (stripped) when it is not a possible number.

    A number we cannot parse is still worth showing to an agent, so it is never dropped.
    """
    text = raw.strip()
    if not text:
        return text
    if fast := _fast_e164(text, region):
        return fast
    parsed = _parse(text, region)
    if parsed is None:
        return text
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_phones(values: Iterable[str | None], region: str = "US") -> list[str]:
    """Normalized, de-duplicated (first wins), empty values left out."""
    seen: dict[str, None] = {}
    for value in values:
        if value and (phone := normalize_phone(value, region)):
            seen.setdefault(phone, None)
    return list(seen)


def lookup_variants(raw: str, region: str = "US") -> list[str]:
    """Forms a stored number may take, for matching a caller against raw columns."""
    text = raw.strip()
    variants = {text} if text else set()
    parsed = _parse(text, region)
    if parsed is None:
        return sorted(variants)
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    variants |= {
        e164,
        e164.lstrip("+"),
        "00" + e164.lstrip("+"),
        "".join(ch for ch in national if ch.isdigit()),
        phonenumbers.national_significant_number(parsed),
    }
    return sorted(v for v in variants if v)
