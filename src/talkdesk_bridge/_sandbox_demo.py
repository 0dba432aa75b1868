"""`talkdesk-bridge demo --connector NAME`: a vendor sandbox and the bridge pointed at it.

The sandbox (from the `talkdesk_sandbox` package, the one the tests use) is seeded with
realistic data and served on a local port in a thread; the bridge then runs in the foreground
with that connector's settings aimed at it, and the banner says how to check it.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ._errors import ConfigurationError

__all__ = ["check_command", "sandbox_demo"]


def check_command(bridge: str, auth: Mapping[str, str]) -> str:
    words = ["talkdesk-bridge", "check", bridge]
    for key, value in auth.items():
        words += ["--auth", f"{key}={value}"]
    return shlex.join([*words, "--actions"])


def _load(name: str, latency: float) -> Any:
    try:
        from talkdesk_sandbox import SANDBOXES, load_sandbox
    except ImportError:  # installed without the sandbox package
        raise ConfigurationError(
            "the vendor sandboxes are not installed (pip install 'talkdesk-bridge[sandbox]')"
        ) from None
    if name not in SANDBOXES:
        known = ", ".join(sorted(SANDBOXES)) or "none"
        raise ConfigurationError(f"no sandbox for connector {name!r} (sandboxes: {known})")
    return load_sandbox(name, latency=latency)


@contextmanager
def sandbox_demo(
    name: str,
    *,
    host: str,
    port: int,
    contacts: int,
    latency: float = 0.0,
    echo: Callable[[str], None] = print,
) -> Iterator[None]:
    """Inside the block the sandbox serves and the environment points connector `name` at it;
    the caller then runs the bridge on `host:port`."""
    sandbox = _load(name, latency)
    sandbox.seed(contacts=contacts)
    with sandbox.serve("127.0.0.1", 0) as upstream:
        os.environ.update(sandbox.bridge_env(upstream))
        os.environ["TALKDESK_BRIDGE_CONNECTORS"] = name
        bridge = f"http://{host}:{port}/{name}"
        auth = sandbox.credentials()
        credentials = " ".join(f"{k}={v}" for k, v in auth.items())
        echo(
            f"Sandbox:       {upstream}   ({name} API sandbox, {contacts} contacts, "
            "made for this demo)\n"
            f"Bridge:        {bridge}/   (configuration: {bridge}/configuration)\n"
            f"Credentials:   {credentials}   (the sandbox's own, made for this demo)\n"
            f"Check it:      {check_command(bridge, auth)}"
        )
        yield
