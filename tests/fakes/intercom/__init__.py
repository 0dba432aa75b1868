"""In-process fake of the Intercom REST API 2.x for tests and benchmarks.

    fake = FakeIntercom(clock=ManualClock(1_700_000_000), search_lag=60)
    fake.add_contact(email="ana@example.com")
    transport = httpx.ASGITransport(app=fake.app)

Facts it follows: /work/shared/spec/intercom.md and the vendor's OpenAPI description 2.14.
"""

from ._app import ApiError, create_app, error_body
from ._fake import FakeIntercom
from ._faults import FaultRule, RateLimiter
from ._search import MAX_FILTERS_PER_GROUP, MAX_GROUP_DEPTH, DayCalendar, SearchError
from ._store import ManualClock

__all__ = [
    "MAX_FILTERS_PER_GROUP",
    "MAX_GROUP_DEPTH",
    "ApiError",
    "DayCalendar",
    "FakeIntercom",
    "FaultRule",
    "ManualClock",
    "RateLimiter",
    "SearchError",
    "create_app",
    "error_body",
]
