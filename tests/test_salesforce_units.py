"""Pure parts of the Salesforce connector and sandbox: the instance URL rule, SOQL/SOSL
escaping, picklist mapping, agent offsets, and the sandbox's SOQL subset."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talkdesk_bridge.connectors.salesforce.hosts import lightning_host, valid_instance_url
from talkdesk_bridge.connectors.salesforce.mapping import format_address, priority_of, status_of
from talkdesk_bridge.connectors.salesforce.soql import (
    datetime_literal,
    parse_datetime,
    sosl_term,
    string_literal,
)
from talkdesk_sandbox.salesforce import ManualClock, SalesforceSandbox, SoqlError, parse_query
from talkdesk_sandbox.salesforce._soql import _sosl_terms, tokenize

GOOD = [
    "https://acme.my.salesforce.com",
    "https://acme.my.salesforce.com/",
    "https://ACME.My.Salesforce.com",
    "https://acme--uat.sandbox.my.salesforce.com",
    "https://acme-dev-ed.develop.my.salesforce.com",
    "https://na123.salesforce.com",
    "https://acme.lightning.force.com",
    "https://acme.my.salesforce.com:443",
]
HOSTILE = [
    "http://acme.my.salesforce.com",  # not https
    "https://evilsalesforce.com",  # a substring, not a suffix
    "https://salesforce.com.evil.example",
    "https://acme.my.salesforce.com.evil.example",
    "https://salesforce.com",  # the bare suffix is no instance
    "https://.salesforce.com",
    "https://evil.example/.salesforce.com",
    "https://evil.example?.salesforce.com",
    "https://evil.example#.salesforce.com",
    "https://user:pass@acme.my.salesforce.com",
    "https://acme.my.salesforce.com@evil.example",
    "https://evil.example\\@acme.my.salesforce.com",
    "https://acme.my.salesforce.com:8443",
    "https://acme.my.salesforce.com:0443x",
    "https://127.0.0.1",
    "https://[::1]",
    "https://169.254.169.254",
    "https://acme.my.salesforce.com/services/data",
    "https://acme.my.salesforce.com?x=1",
    "https://acme.my.salesforce.com\r\nX: y",
    "https://acme.my.salesforce.com\x00.evil",
    "https://acme .my.salesforce.com",
    "https://xn--ac-me.my.salesforce.com.evil",
    "https://ａcme.my.salesforce.com",  # noqa: RUF001 (full-width on purpose)
    "https://acme_.my.salesforce.com",
    "//acme.my.salesforce.com",
    "acme.my.salesforce.com",
    "",
    "x" * 400 + ".salesforce.com",
    None,
    42,
]


@pytest.mark.parametrize("url", GOOD)
def test_instance_urls_of_salesforce_hosts_are_accepted(url: str) -> None:
    assert valid_instance_url(url) == url.lower().removesuffix("/").removesuffix(":443")


@pytest.mark.parametrize("url", HOSTILE)
def test_hostile_instance_urls_are_refused(url: object) -> None:
    assert valid_instance_url(url) is None


def test_a_configured_base_url_is_the_only_instance_accepted() -> None:
    assert valid_instance_url("http://127.0.0.1:9000", fixed="http://127.0.0.1:9000") == (
        "http://127.0.0.1:9000"
    )
    assert (
        valid_instance_url("https://acme.my.salesforce.com", fixed="http://127.0.0.1:9000") is None
    )


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=80))
def test_no_instance_outside_the_suffixes_is_ever_accepted(host: str) -> None:
    accepted = valid_instance_url(f"https://{host}")
    if accepted is not None:
        name = accepted.removeprefix("https://")
        assert name.endswith(
            (".salesforce.com", ".force.com", ".cloudforce.com", ".salesforce.mil")
        )
        assert all(c.isalnum() or c in ".-" for c in name) and name.isascii()


def test_lightning_pages() -> None:
    assert lightning_host("https://acme.my.salesforce.com") == "https://acme.lightning.force.com"
    assert lightning_host("https://acme--uat.sandbox.my.salesforce.com") == (
        "https://acme--uat.sandbox.lightning.force.com"
    )
    assert lightning_host("https://na123.salesforce.com") == "https://na123.salesforce.com"


# --- literals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("plain", "'plain'"),
        ("O'Brien", "'O\\'Brien'"),
        ("back\\slash", "'back\\\\slash'"),
        ('say "hi"', "'say \\\"hi\\\"'"),
        ("line\nbreak\ttab\r", "'line\\nbreak\\ttab\\r'"),
        ("x' OR Id != '", "'x\\' OR Id != \\''"),
        ("bell\x07null\x00", "'bellnull'"),
        ("100%_", "'100%_'"),
    ],
)
def test_string_literals_are_escaped(value: str, literal: str) -> None:
    assert string_literal(value) == literal


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=60))
def test_string_literals_round_trip_through_the_sandbox_parser(value: str) -> None:
    """Whatever the text, the literal is one token and reads back as the text (less controls)."""
    q = parse_query(f"SELECT Id FROM Contact WHERE Email = {string_literal(value)}")
    assert q.where is not None and q.where.op == "="
    expected = "".join(c for c in value if (ord(c) >= 0x20 and ord(c) != 0x7F) or c in "\n\r\t\b\f")
    assert q.where.value == expected


def test_string_literals_have_a_length_limit() -> None:
    with pytest.raises(ValueError, match="4000"):
        string_literal("x" * 4001)


def test_datetimes_are_utc_z_and_parse_back() -> None:
    assert datetime_literal(1_760_000_000) == "2025-10-09T08:53:20Z"
    assert parse_datetime("2025-10-09T08:53:20.000+0000") == 1_760_000_000
    assert parse_datetime("2025-10-09T09:53:20.000+0100") == 1_760_000_000
    assert parse_datetime("2025-10-09T08:53:20Z") == 1_760_000_000
    assert parse_datetime("garbage") is None and parse_datetime(None) is None


@pytest.mark.parametrize(
    ("value", "term"),
    [
        ("4155550132", "4155550132"),
        ("+1 (415) 555-0132", "\\+1 \\(415\\) 555\\-0132"),
        ("a} OR {b", "a\\} OR \\{b"),
        ('x" OR "y', 'x\\" OR \\"y'),
        ("?&|!{}[]()^~*:\\\"'+-", "\\?\\&\\|\\!\\{\\}\\[\\]\\(\\)\\^\\~\\*\\:\\\\\\\"\\'\\+\\-"),
    ],
)
def test_sosl_terms_are_escaped(value: str, term: str) -> None:
    assert sosl_term(value) == term
    # The sandbox's SOSL reader takes it as one literal term.
    assert _sosl_terms(f'"{term}"') == [value]


# --- mapping -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "status"),
    [
        ({"Status": "Not Started", "IsClosed": False}, "new"),
        ({"Status": "New", "IsClosed": False}, "new"),
        ({"Status": "In Progress", "IsClosed": False}, "open"),
        ({"Status": "Working", "IsClosed": False}, "open"),
        ({"Status": "Waiting on someone else", "IsClosed": False}, "pending"),
        ({"Status": "Deferred", "IsClosed": False}, "pending"),
        ({"Status": "Escalated", "IsClosed": False}, "pending"),
        ({"Status": "On Hold", "IsClosed": False}, "pending"),
        ({"Status": "Completed", "IsClosed": True}, "closed"),
        ({"Status": "Shipped to customer", "IsClosed": True}, "closed"),  # a custom closed value
        ({"Status": None}, None),
    ],
)
def test_status_from_api_values(record: dict[str, object], status: str | None) -> None:
    assert status_of(record) == status


@pytest.mark.parametrize(
    ("value", "priority"),
    [("High", "high"), ("Normal", "normal"), ("Medium", "normal"), ("Low", "low"),
     ("Critical", "urgent"), (None, "none"), ("P2 custom", "normal")],
)  # fmt: skip
def test_priority_from_api_values(value: str | None, priority: str) -> None:
    assert priority_of({"Priority": value}) == priority


def test_compound_addresses_read_as_one_line() -> None:
    assert format_address(
        {"street": "1 Market St\nSuite 300", "city": "San Francisco", "state": "CA",
         "postalCode": "94105", "country": "United States"}
    ) == "1 Market St, Suite 300, San Francisco, CA 94105, United States"  # fmt: skip
    assert format_address(None) is None
    assert format_address({"city": None}) is None


# --- the sandbox's SOQL ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT Id FROM Contact WHERE",
        "SELECT Id FROM Contact WHERE Email = 'a' AND Phone = 'b' OR Title = 'c'",
        "SELECT Id FROM Contact WHERE Email = 'unterminated",
        "SELECT Id FROM Contact WHERE Email = 'bad \\q escape'",
        "SELECT Id FROM Contact WHERE SystemModstamp > 2025-10-09T08:53:20 00:00",  # raw "+"
        "SELECT Id FROM Contact GROUP BY Email",
        "SELECT Id FROM Contact; DELETE",
        "SELECT FROM Contact",
        "SELECT Id FROM Contact LIMIT -1",
    ],
)
def test_the_sandbox_refuses_what_it_does_not_know(soql: str) -> None:
    with pytest.raises(SoqlError) as caught:
        parse_query(soql)
    assert caught.value.code == "MALFORMED_QUERY"


def test_the_sandbox_reads_the_keyset_query() -> None:
    q = parse_query(
        "SELECT Id, Account.Name FROM Contact WHERE SystemModstamp <= 2025-10-09T08:53:20Z AND "
        "(SystemModstamp > 2025-10-09T08:53:15.000+0000 OR (SystemModstamp = 2025-10-09T08:53:15Z "
        "AND Id > '003x')) ORDER BY SystemModstamp, Id DESC NULLS LAST LIMIT 200 OFFSET 10"
    )
    assert q.fields == ["Id", "Account.Name"] and q.limit == 200 and q.offset == 10
    assert [o.descending for o in q.order] == [False, True]
    with pytest.raises(SoqlError) as caught:
        parse_query("SELECT Id FROM Contact OFFSET 2001")
    assert caught.value.code == "NUMBER_OUTSIDE_VALID_RANGE"
    assert [t.kind for t in tokenize("a = 'x' AND b IN (1, 2.5)")] == [
        "name", "op", "str", "kw", "name", "kw", "punct", "num", "punct", "num", "punct",
    ]  # fmt: skip


def test_sandbox_queries_second_stamps_locators_and_unknown_fields() -> None:
    clock = ManualClock(1_760_000_000.7)
    sandbox = SalesforceSandbox(clock=clock)
    ids = [sandbox.add_contact(LastName=f"P{n}") for n in range(450)]
    engine, user = sandbox.engine, sandbox.admin_id
    # Every row shares the second; fractions are ignored in comparisons.
    page = engine.query(
        "SELECT Id, SystemModstamp FROM Contact WHERE SystemModstamp = 2025-10-09T08:53:20Z "
        "ORDER BY SystemModstamp, Id",
        all_rows=False, user=user, batch=200, now=clock(),
    )  # fmt: skip
    assert page["totalSize"] == 450 and len(page["records"]) == 200 and not page["done"]
    assert page["records"][0]["SystemModstamp"] == "2025-10-09T08:53:20.000+0000"
    assert [r["Id"] for r in page["records"]] == sorted(ids)[:200]
    locator = page["nextRecordsUrl"].rsplit("/", 1)[1]
    second = engine.more(locator, user=user, now=clock())
    assert len(second["records"]) == 200
    with pytest.raises(SoqlError, match="invalid query locator"):
        engine.more(locator, user=user, now=clock())  # single use
    with pytest.raises(SoqlError) as caught:
        engine.query("SELECT Nope FROM Contact", all_rows=False, user=user, batch=None, now=0)
    assert caught.value.code == "INVALID_FIELD"
    sandbox.org.delete(ids[0])
    live = engine.query("SELECT COUNT() FROM Contact", all_rows=False, user=user, batch=None, now=0)
    every = engine.query("SELECT COUNT() FROM Contact", all_rows=True, user=user, batch=None, now=0)
    assert (live["totalSize"], every["totalSize"]) == (449, 450)


async def test_sandbox_get_updated_holds_at_an_open_transaction() -> None:
    import httpx

    clock = ManualClock(1_760_000_000)
    sandbox = SalesforceSandbox(clock=clock)
    early = sandbox.add_contact(LastName="Early")
    clock.advance(10)
    late = sandbox.add_contact(LastName="Late", delay=300)  # commits 5 minutes on
    clock.advance(10)
    after = sandbox.add_contact(LastName="After")
    clock.advance(10)
    headers = {"Authorization": f"Bearer {sandbox.token}"}
    path = "/services/data/v62.0/sobjects/Contact/updated/"
    params = {"start": "2025-10-09T08:00:00Z", "end": "2025-10-09T09:00:00Z"}
    transport = httpx.ASGITransport(app=sandbox.app)
    async with httpx.AsyncClient(transport=transport, base_url="https://sf.test") as c:
        body = (await c.get(path, params=params, headers=headers)).json()
        assert body["ids"] == [early]  # held at the open transaction's start
        assert body["latestDateCovered"] == "2025-10-09T08:53:30.000+0000"
        clock.advance(300)
        body = (await c.get(path, params=params, headers=headers)).json()
        assert body["ids"] == sorted([early, late, after])
        sandbox.org.delete(after)
        deleted = await c.get(path.replace("updated", "deleted"), params=params, headers=headers)
        assert [d["id"] for d in deleted.json()["deletedRecords"]] == [after]
        bad = await c.get(
            path, params={"start": params["end"], "end": params["start"]}, headers=headers
        )
        assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_REPLICATION_DATE"
