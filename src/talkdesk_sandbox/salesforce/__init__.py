"""A fake Salesforce org (REST API) for tests and benchmarks, on the sandbox kit.

    sandbox = SalesforceSandbox(clock=ManualClock(1_700_000_000))
    contact = sandbox.add_contact(FirstName="Ana", LastName="Silva", Email="ana@example.com")
    sandbox.org.update(contact, {"Title": "CFO"}, delay=600)  # commits 10 minutes late
    transport = httpx.ASGITransport(app=sandbox.app)

Salesforce's own rules live here: a real SOQL subset (`_soql`: parser, escapes, whole-second
datetimes, `MALFORMED_QUERY` for anything else) run by `_engine` (keyset planner, query
locators, SOSL with index lag), the org's objects, ids and writes (`_org`: second stamps with
ties, late commits, system-only stamp bumps, deletes and merges seen only by `queryAll`,
converted leads, archived activities, custom picklists, duplicate rules), and the routes
(`_app`: OAuth token and userinfo, query/queryAll, search, sObjects, composite). The gateway,
store, clock, faults and rate limits are the kit's. Facts it follows:
/work/shared/spec/salesforce.md.
"""

from .._clock import ManualClock
from ._org import Org, WriteError, make_id
from ._sandbox import DEFAULT_TOKEN, SalesforceSandbox
from ._soql import SoqlError, parse_query, parse_sosl

__all__ = [
    "DEFAULT_TOKEN",
    "ManualClock",
    "Org",
    "SalesforceSandbox",
    "SoqlError",
    "WriteError",
    "make_id",
    "parse_query",
    "parse_sosl",
]
