"""In-process fake of the Intercom REST API 2.x for tests and benchmarks, on the kit.

    fake = FakeIntercom(clock=ManualClock(1_700_000_000), search_lag=60)
    fake.add_contact(email="ana@example.com")
    transport = httpx.ASGITransport(app=fake.app)

``IntercomSandbox`` is the same fake behind the kit's ``Sandbox`` protocol (seeded data,
credentials, bridge settings). Intercom's own rules live here: the search query language with
day-granular dates in the workspace timezone (``_search``), the object shapes (``_objects``),
cursors, ``error.list`` bodies and ``X-RateLimit-*`` headers; the rest is the kit's.
Facts it follows: /work/shared/spec/intercom.md and the vendor's OpenAPI description 2.14.
"""

from .._clock import ManualClock
from .._faults import FaultRule
from .._rate import RateLimiter
from ._app import ApiError, create_app, error_body
from ._fake import FakeIntercom
from ._sandbox import IntercomSandbox
from ._search import MAX_FILTERS_PER_GROUP, MAX_GROUP_DEPTH, DayCalendar, SearchError

__all__ = [
    "MAX_FILTERS_PER_GROUP",
    "MAX_GROUP_DEPTH",
    "ApiError",
    "DayCalendar",
    "FakeIntercom",
    "FaultRule",
    "IntercomSandbox",
    "ManualClock",
    "RateLimiter",
    "SearchError",
    "create_app",
    "error_body",
]
