"""In-process fake of Highrise's XML API (one account) for tests and benchmarks, on the kit.

    sandbox = HighriseSandbox(clock=ManualClock(1_700_000_000), lag=60)
    sandbox.seed(contacts=500)
    transport = httpx.ASGITransport(app=sandbox.app)

Highrise's rules live here: XML conventions, `since=` listings by ascending `updated_at` with
offsets that really shift when data changes, 25-per-page notes, emails and searches, the
email-search limit, 503 + `Retry-After`, 422 `<errors>`, 507, 302 on the wrong scheme; the
rest is the kit's. Facts it follows: /work/shared/spec/highrise.md.
"""

from ._sandbox import ApiError, HighriseSandbox

__all__ = ["ApiError", "HighriseSandbox"]
