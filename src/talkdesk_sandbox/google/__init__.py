"""In-process fake of Google's People API (Google Contacts) for tests and benchmarks, on the kit.

    sandbox = GoogleSandbox(clock=ManualClock(1_700_000_000), lag=120)
    sandbox.seed(contacts=500)
    transport = httpx.ASGITransport(app=sandbox.app)

Google's rules live here: field masks, page tokens bound to their parameters, sync tokens over
a change log with deleted stubs, renames and expiry, the full-sync quota, search warm-up, the
error envelope (``_sandbox``, ``_people``); the rest is the kit's. Facts it follows:
/work/shared/spec/google-contacts.md.
"""

from ._people import ApiError, error_body
from ._sandbox import SCOPE, GoogleSandbox

__all__ = ["SCOPE", "ApiError", "GoogleSandbox", "error_body"]
