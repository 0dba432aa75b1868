"""Contact sync from Salesforce: Contacts then unconverted Leads on the window engine, and the
zero-loss guarantee against the sandbox's awkward parts (second stamps with ties, late commits,
system-only stamp bumps, conversions, deletes, merges, faults and a limit burst).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from talkdesk_bridge._tokens import decode_token, encode_token
from talkdesk_bridge.connectors.salesforce.soql import datetime_literal
from talkdesk_bridge.connectors.salesforce.sync import keyset_query
from talkdesk_sandbox.salesforce import ManualClock, SalesforceSandbox
from tests.test_salesforce_support import (
    BASE,
    T0,
    bridge,
    differences,
    expected_people,
    run_sync,
)

LAG = 300


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def tied_org(clock: ManualClock, contacts: int = 450, leads: int = 250) -> SalesforceSandbox:
    """An org whose rows pile up on a few seconds (bulk loads), Contacts and Leads."""
    sandbox = SalesforceSandbox(clock=clock)
    org = sandbox.org
    account = sandbox.add("Account", Name="Northwind Traders")
    seconds = [T0 - 86_400 * d for d in (30, 20, 10)]
    for n in range(contacts):
        org.create(
            "Contact",
            {"FirstName": "C", "LastName": f"Person{n}", "Email": f"c{n}@example.com",
             "Phone": f"(415) 555-{n % 10000:04d}", "AccountId": account if n % 2 else None},
            checked=False,
            at=seconds[n % 3],
        )  # fmt: skip
    for n in range(leads):
        org.create(
            "Lead",
            {"FirstName": "L", "LastName": f"Lead{n}", "Email": f"l{n}@example.com",
             "Company": f"Lead Co {n}", "MobilePhone": f"+44 7700 900{n % 1000:03d}"},
            checked=False,
            at=seconds[n % 3],
        )  # fmt: skip
    return sandbox


# --- the scenario, for the bridge and for a naive client --------------------------------------


class Churn:
    """Writes between pages: creates, updates (user and system), conversions, deletes,
    merges and late commits (stamped now, visible minutes later: older than rows read since)."""

    def __init__(self, sandbox: SalesforceSandbox, clock: ManualClock, seed: int = 7) -> None:
        self.sandbox, self.clock = sandbox, clock
        self.rng = random.Random(seed)
        self.n = 0

    def _pick(self, sobject: str) -> str | None:
        rows = [
            r["Id"]
            for r in self.sandbox.org.live(sobject)
            if not r.get("IsConverted") and self.sandbox.org.visible(sobject, r["Id"])
        ]
        return self.rng.choice(rows) if rows else None

    def __call__(self, page: int) -> None:
        org, rng = self.sandbox.org, self.rng
        for _ in range(4):
            self.n += 1
            n = self.n
            org.create(
                "Contact", {"LastName": f"New{n}", "Email": f"new{n}@example.com"}, checked=False
            )
            org.create("Lead", {"LastName": f"NewLead{n}", "Company": "Fresh"}, checked=False)
        if cid := self._pick("Contact"):
            org.update(cid, {"Title": f"Title {self.n}"}, checked=False)
        if cid := self._pick("Contact"):
            org.touch(cid)  # a trigger: only SystemModstamp moves
        if lid := self._pick("Lead"):
            org.update(lid, {"Company": f"Renamed {self.n}"}, checked=False)
        if page % 2 == 0 and (lid := self._pick("Lead")):
            org.convert(lid)
        if page % 3 == 0 and (cid := self._pick("Contact")):
            org.delete(cid)
        if page % 4 == 0:
            master, loser = self._pick("Contact"), self._pick("Contact")
            if master and loser and master != loser:
                org.merge(master, loser)
        # Late commits well inside the lag window: stamped now, seen 2-4 minutes on.
        if cid := self._pick("Contact"):
            org.update(cid, {"Phone": f"+1 415 555 {self.n % 10000:04d}"}, checked=False,
                       delay=rng.uniform(120, 240))  # fmt: skip
        self.sandbox.add_contact(LastName=f"Late{self.n}", Email=f"late{self.n}@example.com",
                                 delay=rng.uniform(120, 240))  # fmt: skip
        self.clock.advance(rng.choice([0, 1, 1, 2]))  # many writes share a second


async def scenario(
    sandbox: SalesforceSandbox,
    clock: ManualClock,
    sync: Callable[..., Any],
) -> None:
    """The initial run during churn, faults and a limit burst, then incremental runs while
    late commits land across run boundaries, then runs after writes stop."""
    churn = Churn(sandbox, clock)
    sandbox.fail_next(1, 503, "/services/data/v62.0/query")
    sandbox.limit_burst(1, concurrent=True)

    def between(page: int) -> None:
        churn(page)
        if page == 2:
            sandbox.random_failures(
                0.15, statuses=(500, 503), seed=3, path_prefix="/services/data/v62.0/query"
            )
        if page == 3:
            sandbox.limit_burst(2)  # the daily allowance: 503 + Retry-After to Talkdesk
        if page == 5:
            sandbox.random_failures(0)

    await sync(between)
    for step in range(3):  # Talkdesk's next runs, with writes (and late commits) in between
        clock.advance(90)
        churn(step)
        await sync(None)
    clock.advance(LAG * 2)  # writes stopped; every late commit has landed
    await sync(None)
    await sync(None)


@pytest.mark.parametrize("read_ahead", [False, True])
async def test_zero_loss_contacts_and_leads(clock: ManualClock, read_ahead: bool) -> None:
    sandbox = tied_org(clock)
    view: dict[str, dict[str, Any]] = {}
    async with bridge(
        sandbox,
        clock,
        salesforce_sync_page_size=200,
        salesforce_lag_seconds=LAG,
        salesforce_read_ahead=read_ahead,
    ) as b:
        state: dict[str, str | None] = {"cp": None}

        async def sync(between: Callable[[int], None] | None) -> None:
            state["cp"] = await run_sync(b, view, state["cp"], between=between)

        await scenario(sandbox, clock, sync)
        assert b.sleeps, "the limit burst and the 5xx were retried with backoff"
    missing, stale = differences(sandbox, view)
    assert not missing, f"{len(missing)} live people never reached Talkdesk: {missing[:5]}"
    assert not stale, f"{len(stale)} people hold outdated data: {stale[:5]}"
    people = expected_people(sandbox)
    assert sum(1 for i in people if i.startswith("00Q")) > 200
    assert sum(1 for i in people if i.startswith("003")) > 400
    # Nothing of a query locator or SOQL OFFSET ever reached Talkdesk.
    paths = [r.url.path for r in b.transport.requests]
    assert not any("/query/" in p for p in paths)
    assert not any("OFFSET" in r.url.params.get("q", "") for r in b.transport.requests)


async def test_without_the_lag_window_late_commits_are_lost(clock: ManualClock) -> None:
    sandbox = tied_org(clock)
    view: dict[str, dict[str, Any]] = {}
    async with bridge(sandbox, clock, salesforce_sync_page_size=200, salesforce_lag_seconds=0) as b:
        state: dict[str, str | None] = {"cp": None}

        async def sync(between: Callable[[int], None] | None) -> None:
            state["cp"] = await run_sync(b, view, state["cp"], between=between)

        await scenario(sandbox, clock, sync)
    missing, stale = differences(sandbox, view)
    assert missing and stale  # rows that committed behind a run's upper bound


class NaiveClient:
    """`WHERE SystemModstamp > :newest_seen ORDER BY SystemModstamp LIMIT n` with the newest
    stamp seen as checkpoint: what the issue says loses records."""

    def __init__(self, sandbox: SalesforceSandbox, view: dict[str, dict[str, Any]]) -> None:
        self.sandbox, self.view = sandbox, view
        self.newest: int | None = None

    async def run(self, between: Callable[[int], None] | None) -> None:
        headers = {"Authorization": f"Bearer {self.sandbox.token}"}
        transport = httpx.ASGITransport(app=self.sandbox.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            page = 0
            while True:
                for sobject, extra in (("Contact", ""), ("Lead", " AND IsConverted = false")):
                    where = "Id != null" + extra
                    if self.newest is not None:
                        where += f" AND SystemModstamp > {datetime_literal(self.newest)}"
                    q = (f"SELECT Id, FirstName, LastName, SystemModstamp FROM {sobject} "
                         f"WHERE {where} ORDER BY SystemModstamp, Id LIMIT 200")  # fmt: skip
                    r = await client.get(
                        "/services/data/v62.0/query?" + urlencode({"q": q}), headers=headers
                    )
                    if r.status_code != 200:
                        continue  # a fault: ask again on the next round
                    for row in r.json()["records"]:
                        self.view[row["Id"]] = row
                        stamp = int(datetime_from(row["SystemModstamp"]))
                        self.newest = stamp if self.newest is None else max(self.newest, stamp)
                page += 1
                if between is None or page > 6:
                    return
                between(page)


def datetime_from(text: str) -> float:
    from talkdesk_bridge.connectors.salesforce.soql import parse_datetime

    value = parse_datetime(text)
    assert value is not None
    return value


async def test_newest_stamp_seen_loses_records(clock: ManualClock) -> None:
    sandbox = tied_org(clock)
    view: dict[str, dict[str, Any]] = {}
    naive = NaiveClient(sandbox, view)
    await scenario(sandbox, clock, naive.run)
    missing = sorted(set(expected_people(sandbox)) - set(view))
    # Ties cut at a page boundary, and late commits older than the newest stamp seen.
    assert len(missing) > 50, missing


# --- paging, offsets, checkpoints ---------------------------------------------------------


async def test_contacts_then_leads_in_one_run_with_ties(clock: ManualClock) -> None:
    sandbox = tied_org(clock, contacts=410, leads=390)
    view: dict[str, dict[str, Any]] = {}
    async with bridge(sandbox, clock, salesforce_sync_page_size=200) as b:
        seen: list[str] = []
        meta: dict[str, Any] = {}
        while True:
            r = await b.post("contact_sync", {"auth": b.auth, "meta": meta})
            assert r.status_code == 200, r.text
            body = r.json()
            seen.extend(c["id"] for c in body["contacts"])
            if not body.get("next_offset"):
                break
            # Talkdesk's retry of the same offset answers the same page.
            again = await b.post(
                "contact_sync", {"auth": b.auth, "meta": {"offset": body["next_offset"]}}
            )
            meta = {"offset": body["next_offset"]}
            assert again.status_code == 200
            first = (await b.post("contact_sync", {"auth": b.auth, "meta": meta})).json()
            assert [c["id"] for c in first["contacts"]] == [
                c["id"] for c in again.json()["contacts"]
            ]
        view = {i: {} for i in seen}
    assert len(seen) == len(set(seen)) == 800
    # Contacts come first, then Leads; the switch happens inside one page.
    kinds = [i[:3] for i in seen]
    assert kinds == sorted(kinds, key=lambda k: k != "003")
    assert set(view) == set(expected_people(sandbox))


async def test_window_upper_bound_is_the_server_clock(clock: ManualClock) -> None:
    sandbox = tied_org(clock, contacts=5, leads=5)
    async with bridge(sandbox, clock) as b:
        cp = await run_sync(b, {})
        stamp = decode_token(cp, "checkpoint")["w"]
        assert stamp == T0  # the sandbox's Date, not the bridge's wall clock
        clock.advance(3600)
        sandbox.add_contact(LastName="After")
        view: dict[str, dict[str, Any]] = {}
        cp2 = await run_sync(b, view, cp)
        assert [c["name"] for c in view.values()] == ["After"]
        assert decode_token(cp2, "checkpoint")["w"] == T0 + 3600
        queries = [r.url.params["q"] for r in b.transport.requests if r.url.path.endswith("/query")]
        assert f"SystemModstamp >= {datetime_literal(T0 - 300)}" in queries[-1]


async def test_company_names_refresh_with_a_periodic_full_read(clock: ManualClock) -> None:
    sandbox = SalesforceSandbox(clock=clock)
    account = sandbox.add("Account", Name="Old Name Inc")
    contact = sandbox.org.create(
        "Contact", {"LastName": "Kept", "AccountId": account}, checked=False, at=T0 - 5000
    )
    assert T0 % 3600 == 3200  # runs at T0 and T0 + 160 stay inside one refresh hour
    view: dict[str, dict[str, Any]] = {}
    async with bridge(sandbox, clock, salesforce_company_refresh_hours=1) as b:
        cp = await run_sync(b, view)
        assert view[contact]["company"] == "Old Name Inc"
        clock.advance(60)
        sandbox.org.update(account, {"Name": "New Name Inc"}, checked=False)  # Contact untouched
        clock.advance(100)
        cp = await run_sync(b, view, cp)
        assert view[contact]["company"] == "Old Name Inc"  # no stamp moved: not re-read yet
        clock.advance(3600)  # the window now crosses an hour boundary: a full read
        await run_sync(b, view, cp)
        assert view[contact]["company"] == "New Name Inc"


@pytest.mark.parametrize("field", ["offset", "synchronization_checkpoint"])
async def test_forged_tokens_are_422(clock: ManualClock, field: str) -> None:
    sandbox = tied_org(clock, contacts=3, leads=3)
    forged = [
        encode_token(
            {
                "e": "salesforce",
                "c": None,
                "l": None,
                "u": T0,
                "k": [0, T0, "x' OR Id != '"],
                "r": None,
            }
        ),
        encode_token({"e": "sql", "w": T0}),
        encode_token({"e": "salesforce", "w": "2024-01-01"}),
        "not-a-token",
    ]
    async with bridge(sandbox, clock) as b:
        for token in forged:
            r = await b.post("contact_sync", {"auth": b.auth, "meta": {field: token}})
            assert r.status_code == 422, (token, r.text)
            assert f"meta.{field}" in r.json()["error"]["message"]


def test_keyset_query_escapes_the_id_and_uses_z_datetimes() -> None:
    q = keyset_query(1, T0 - 300, T0, (T0 - 5, "00QHs0000000001AAA"), 200)
    assert q == (
        "SELECT Id, Name, Email, Phone, MobilePhone, Title, Company, Address, SystemModstamp "
        "FROM Lead WHERE SystemModstamp <= 2025-10-09T08:53:20Z AND SystemModstamp >= "
        "2025-10-09T08:48:20Z AND (SystemModstamp > 2025-10-09T08:53:15Z OR (SystemModstamp = "
        "2025-10-09T08:53:15Z AND Id > '00QHs0000000001AAA')) AND IsConverted = false "
        "ORDER BY SystemModstamp, Id LIMIT 200"
    )
    assert "+" not in q
