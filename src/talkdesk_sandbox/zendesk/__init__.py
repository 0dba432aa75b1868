"""A fake of the Zendesk Support API v2 on the sandbox core (facts: shared/spec/zendesk.md).

sandbox = ZendeskSandbox(clock=ManualClock(1_700_000_000), lag=30)
sandbox.seed(contacts=1000)
transport = httpx.ASGITransport(app=sandbox.app)
"""

from ._sandbox import ZendeskSandbox

__all__ = ["ZendeskSandbox"]
