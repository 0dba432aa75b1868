"""In-process fake of HubSpot's CRM API v3 (one portal) for tests and benchmarks, on the kit.

    sandbox = HubSpotSandbox(clock=ManualClock(1_700_000_000), lag=30)
    sandbox.seed(contacts=500)
    transport = httpx.ASGITransport(app=sandbox.app)

HubSpot's rules live here: the id-keyset contact list, offset search over a lagging index with
its 10,000-result cap and filter limits, merges to new ids, the 409 whose id is only in the
message, the header-less search 429 next to the 10-second bucket (``_sandbox``), objects,
the error envelope and the search language (``_objects``). Facts it follows:
/work/shared/spec/hubspot.md.
"""

from ._objects import ApiError, error_body
from ._sandbox import ALL_SCOPES, HubSpotSandbox

__all__ = ["ALL_SCOPES", "ApiError", "HubSpotSandbox", "error_body"]
