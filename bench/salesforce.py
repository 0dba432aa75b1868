"""Salesforce connector through the HTTP service, against the Salesforce sandbox in its own
process with 20 ms added to every upstream call.

- Full contact sync of N Contacts+Leads through the bridge, against a direct keyset client
  making the same SOQL reads (Contacts, then unconverted Leads, 2,000 a page) on the same
  sandbox in the same run (the ratio).
- Interaction retrieval (Tasks, Events, Cases of a contact id) at 32 concurrent, against the
  same composite call made directly; upstream round trips per answer from the bridge's
  metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import subprocess
import time
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from bench._client import RawClient
from bench._common import (
    bridge_sync,
    concurrent_latencies,
    describe,
    free_port,
    peak_rss_mb,
    percentile,
    process,
    server,
)

TOKEN = "00DHs0000000001!AQ4AQbenchSessionToken0123456789"
V = "/services/data/v62.0"
PAGE = 2000
FIELDS = {
    "Contact": "Id, Name, Email, Phone, MobilePhone, HomePhone, OtherPhone, Title, Account.Name, "
    "MailingAddress, SystemModstamp",
    "Lead": "Id, Name, Email, Phone, MobilePhone, Title, Company, Address, SystemModstamp",
}


def sandbox(contacts: int, port: int) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    args = ["-m", "talkdesk_sandbox", "salesforce", "--port", str(port), "--seed", "1"]
    args += ["--contacts", str(contacts), "--latency-ms", "20", "--token", TOKEN]
    return process(args, {}, f"http://127.0.0.1:{port}/services/data")


def upstream(port: int) -> RawClient:
    return RawClient("127.0.0.1", port, {"Authorization": f"Bearer {TOKEN}"})


def _literal(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


async def direct_sync(port: int) -> tuple[int, float, int]:
    """The floor: keyset pages on (SystemModstamp, Id), parsed, nothing else done."""
    async with upstream(port) as client:
        start = time.perf_counter()
        total = calls = 0
        for sobject, extra in (("Contact", ""), ("Lead", " AND IsConverted = false")):
            after: tuple[str, str] | None = None
            while True:
                where = "SystemModstamp <= 2100-01-01T00:00:00Z" + extra
                if after:
                    where += (
                        f" AND (SystemModstamp > {after[0]} OR (SystemModstamp = {after[0]} "
                        f"AND Id > '{after[1]}'))"
                    )
                soql = (
                    f"SELECT {FIELDS[sobject]} FROM {sobject} WHERE {where} "
                    f"ORDER BY SystemModstamp, Id LIMIT {PAGE}"
                )
                status, raw = await client.request("GET", f"{V}/query?q={quote(soql)}")
                assert status == 200, raw[:300]
                calls += 1
                rows = orjson.loads(raw)["records"]
                total += len(rows)
                if len(rows) < PAGE:
                    break
                stamp = int(
                    time.mktime(time.strptime(rows[-1]["SystemModstamp"][:19], "%Y-%m-%dT%H:%M:%S"))
                    - time.timezone
                )
                after = (_literal(stamp), rows[-1]["Id"])
        return total, time.perf_counter() - start, calls


async def contact_ids(port: int, n: int) -> list[str]:
    async with upstream(port) as client:
        soql = f"SELECT Id FROM Contact ORDER BY Id LIMIT {n}"
        status, raw = await client.request("GET", f"{V}/query?q={quote(soql)}")
        assert status == 200
        return [r["Id"] for r in orjson.loads(raw)["records"]]


def _composite(contact_id: str) -> dict[str, Any]:
    queries = {
        "task": ("queryAll", "SELECT Id, Subject, Description, Status, IsClosed, Priority, "
                 f"CreatedDate FROM Task WHERE WhoId IN ('{contact_id}') AND IsDeleted = false "
                 "ORDER BY CreatedDate DESC LIMIT 20"),
        "event": ("queryAll", "SELECT Id, Subject, Description, StartDateTime, CreatedDate FROM "
                  f"Event WHERE WhoId IN ('{contact_id}') AND IsDeleted = false "
                  "ORDER BY StartDateTime DESC LIMIT 20"),
        "case": ("query", "SELECT Id, CaseNumber, Subject, Description, Status, IsClosed, "
                 f"Priority, CreatedDate FROM Case WHERE ContactId IN ('{contact_id}') "
                 "ORDER BY CreatedDate DESC LIMIT 20"),
    }  # fmt: skip
    return {
        "allOrNone": False,
        "compositeRequest": [
            {"method": "GET", "url": f"{V}/{kind}?q={quote(q, safe='')}", "referenceId": ref}
            for ref, (kind, q) in queries.items()
        ],
    }


async def _measure(
    clients: list[RawClient], call: Any, requests: int, concurrency: int
) -> list[float]:
    pool: asyncio.Queue[RawClient] = asyncio.Queue()
    for client in clients:
        await client.__aenter__()
        pool.put_nowait(client)
    try:
        await concurrent_latencies(lambda i: call(pool), min(200, requests), concurrency)
        latencies, _ = await concurrent_latencies(lambda i: call(pool), requests, concurrency)
    finally:
        for client in clients:
            await client.__aexit__()
    return latencies


async def bridge_lookups(port: int, ids: list[str], requests: int, concurrency: int) -> list[float]:
    rng = random.Random(1)
    auth = {"access_token": TOKEN, "instance_url": f"http://127.0.0.1:{port_of_sandbox}"}

    async def lookup(pool: asyncio.Queue[RawClient]) -> None:
        body = {"auth": auth, "data": {"contact_external_id": rng.choice(ids)}}
        client = await pool.get()
        status, raw = await client.post("/salesforce/interaction_update", body)
        pool.put_nowait(client)
        assert status == 200, raw[:300]

    clients = [RawClient("127.0.0.1", port) for _ in range(concurrency)]
    return await _measure(clients, lookup, requests, concurrency)


async def direct_lookups(port: int, ids: list[str], requests: int, concurrency: int) -> list[float]:
    rng = random.Random(1)

    async def lookup(pool: asyncio.Queue[RawClient]) -> None:
        client = await pool.get()
        status, raw = await client.post(f"{V}/composite", _composite(rng.choice(ids)))
        pool.put_nowait(client)
        assert status == 200, raw[:300]
        orjson.loads(raw)

    clients = [upstream(port) for _ in range(concurrency)]
    return await _measure(clients, lookup, requests, concurrency)


def upstream_calls(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    pattern = re.compile(
        r"^talkdesk_bridge_upstream_calls_total\{[^}]*salesforce[^}]*\} (\S+)$", re.M
    )
    return sum(float(v) for v in pattern.findall(text))


port_of_sandbox = 0


def run(contacts: int = 50_000, requests: int = 2000, concurrency: int = 32) -> None:
    global port_of_sandbox
    fake_port, bridge_port = free_port(), free_port()
    port_of_sandbox = fake_port
    started = time.perf_counter()
    with sandbox(contacts, fake_port):
        print(
            f"Salesforce sandbox: {contacts} Contacts+Leads, +20 ms per call, up in "
            f"{time.perf_counter() - started:.1f} s"
        )
        env = {
            "TALKDESK_BRIDGE_CONNECTORS": "salesforce",
            "TALKDESK_BRIDGE_SALESFORCE_BASE_URL": f"http://127.0.0.1:{fake_port}",
        }
        with server(env, ["serve", "--port", str(bridge_port)], bridge_port) as proc:
            direct, direct_s, calls = asyncio.run(direct_sync(fake_port))
            total, elapsed, pages = asyncio.run(
                bridge_sync(bridge_port, "salesforce", {"access_token": TOKEN})
            )
            again, direct2_s, _ = asyncio.run(direct_sync(fake_port))
            rss = peak_rss_mb(proc.pid)
            best = min(direct_s, direct2_s)
            assert total == direct == again, (total, direct, again)
            print(
                f"full contact sync through the bridge: {total} contacts, {pages} pages, "
                f"{elapsed:.2f} s = {total / elapsed:,.0f} contacts/s"
            )
            print(
                f"  baseline, direct keyset client ({calls} queries of {PAGE}): {direct_s:.2f} s "
                f"and {direct2_s:.2f} s = {direct / best:,.0f} contacts/s; bridge / direct = "
                f"{elapsed / best:.2f}x"
            )
            print(f"  bridge peak RSS: {rss:.0f} MB")

            ids = asyncio.run(contact_ids(fake_port, 1000))
            alone_direct = asyncio.run(direct_lookups(fake_port, ids, 100, 1))
            alone = asyncio.run(bridge_lookups(bridge_port, ids, 100, 1))
            direct_lat = asyncio.run(direct_lookups(fake_port, ids, requests, concurrency))
            before = upstream_calls(bridge_port)
            found = asyncio.run(bridge_lookups(bridge_port, ids, requests, concurrency))
            trips = (upstream_calls(bridge_port) - before) / (requests + min(200, requests))
    print(
        f"interaction retrieval by contact id (tasks, events, cases), {requests} requests at "
        f"{concurrency} concurrent: {describe(found)}; {trips:.2f} upstream round trips per answer"
    )
    print(f"  baseline, the same composite call made directly: {describe(direct_lat)}")
    print(
        f"  bridge's share: p50 {percentile(found, 50) - percentile(direct_lat, 50):+.2f} ms, "
        f"p99 {percentile(found, 99) - percentile(direct_lat, 99):+.2f} ms"
    )
    print(
        f"  one at a time: bridge p50 {percentile(alone, 50):.2f} ms, direct p50 "
        f"{percentile(alone_direct, 50):.2f} ms"
    )
