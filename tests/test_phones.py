"""Phones leave the bridge in E.164; what cannot be parsed passes through unchanged."""

from __future__ import annotations

import pytest

from talkdesk_bridge._phones import lookup_variants, normalize_phone, normalize_phones


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(415) 555-0132", "US", "+14155550132"),
        ("415.555.0132", "US", "+14155550132"),
        ("+1 415 555 0132", "PT", "+14155550132"),
        ("+44 (0)20 7946 0958", "US", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("912 345 678", "PT", "+351912345678"),
        ("0049 30 1234567", "US", "+49301234567"),
        ("  +351 912 345 678 ", "US", "+351912345678"),
        ("ext. unknown", "US", "ext. unknown"),
        ("12", "US", "12"),
        ("", "US", ""),
    ],
)
def test_normalize(raw: str, region: str, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


def test_normalize_many_keeps_order_drops_empties_and_duplicates() -> None:
    got = normalize_phones(["(415) 555-0132", None, "", "+14155550132", "n/a"], "US")
    assert got == ["+14155550132", "n/a"]


def test_lookup_variants_cover_common_spellings() -> None:
    variants = lookup_variants("+1 415 555 0132", "US")
    assert {"+14155550132", "4155550132", "14155550132"} <= set(variants)
    assert lookup_variants("garbage", "US") == ["garbage"]


@pytest.mark.parametrize(
    "raw",
    [
        "(415) 555-0132",
        "415-555-0132",
        "1 415 555 0132",
        "+1 415 555 0132",
        "+351 912 345 678",
        "+44 20 7946 0958",
        "+44 (0)20 7946 0958",
        "0049 30 1234567",
        "+49-30-1234567",
        "555-0132",
        "+0 123 4567",
        "(800) FLOWERS",
    ],
)
def test_fast_path_agrees_with_the_full_parser(raw: str) -> None:
    import phonenumbers

    from talkdesk_bridge._phones import _fast_e164

    fast = _fast_e164(raw.strip(), "US")
    if fast is not None:
        # "00" is read as the international prefix on purpose (see normalize_phone).
        parsed = phonenumbers.parse("+" + raw[2:] if raw.startswith("00") else raw, "US")
        assert fast == phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
