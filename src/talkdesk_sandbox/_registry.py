"""The registry of vendor sandboxes and the protocol every one of them implements."""

from __future__ import annotations

import contextlib
import importlib
from typing import Any, Protocol, runtime_checkable

from starlette.types import ASGIApp

__all__ = ["SANDBOXES", "Sandbox", "UnknownSandboxError", "load_sandbox"]

SANDBOXES: dict[str, str] = {
    "intercom": "talkdesk_sandbox.intercom:IntercomSandbox",
    "salesforce": "talkdesk_sandbox.salesforce:SalesforceSandbox",
    "zendesk": "talkdesk_sandbox.zendesk:ZendeskSandbox",
    "google": "talkdesk_sandbox.google:GoogleSandbox",
    "highrise": "talkdesk_sandbox.highrise:HighriseSandbox",
    "hubspot": "talkdesk_sandbox.hubspot:HubSpotSandbox",
    "rest": "talkdesk_sandbox.rest:RestSandbox",
}
"""Bridge connector name -> ``"module:factory"`` of the sandbox standing in for its vendor.
Modules are imported only when a sandbox is loaded."""


@runtime_checkable
class Sandbox(Protocol):
    """A fake vendor API that a bridge connector can be pointed at."""

    connector: str  # the bridge connector it stands in for, e.g. "intercom"

    @property
    def app(self) -> ASGIApp:
        """The vendor API as an ASGI app (tests use ``httpx.ASGITransport`` on it)."""
        ...

    def seed(self, *, contacts: int, seed: int = 0) -> None:
        """Realistic data: contacts with several emails and phones in mixed formats,
        interactions (conversations, tickets...) and agents."""
        ...

    def credentials(self) -> dict[str, str]:
        """A valid ``auth`` object a Talkdesk user would enter for the bridge connector."""
        ...

    def bad_credentials(self) -> dict[str, str]:
        """A well-formed ``auth`` object the vendor rejects (401)."""
        ...

    def bridge_env(self, base_url: str) -> dict[str, str]:
        """``TALKDESK_BRIDGE_*`` variables pointing the connector at this sandbox served at
        ``base_url``."""
        ...

    def serve(
        self, host: str = "127.0.0.1", port: int = 0
    ) -> contextlib.AbstractContextManager[str]:
        """uvicorn in a thread; yields the base URL."""
        ...


class UnknownSandboxError(ValueError):
    """``load_sandbox`` was asked for a name that is not in ``SANDBOXES``."""


def load_sandbox(name: str, **options: Any) -> Sandbox:
    """A new sandbox for connector ``name``. Every factory takes the keyword options
    ``token`` (the credential it accepts), ``latency`` (seconds added to each call),
    ``clock`` (e.g. a ``ManualClock``), ``lag`` (seconds before writes reach list/search
    reads) and ``rate_limit`` (calls per the vendor's window; None: unlimited), plus its
    vendor's own."""
    target = SANDBOXES.get(name)
    if target is None:
        known = ", ".join(sorted(SANDBOXES)) or "none"
        raise UnknownSandboxError(f"no sandbox for connector {name!r}; known: {known}")
    module_name, _, attribute = target.partition(":")
    factory = getattr(importlib.import_module(module_name), attribute)
    sandbox: Sandbox = factory(**options)
    return sandbox
