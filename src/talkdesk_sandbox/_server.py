"""A real uvicorn server in a background thread, for tests and the CLI."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from starlette.types import ASGIApp

from ._gateway import Served

__all__ = ["serve_app"]


@contextmanager
def serve_app(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    name: str = "sandbox",
    startup_timeout: float = 10.0,
) -> Iterator[str]:
    """Serve ``app`` on ``host:port`` (0: any free port) until the block ends; yields the
    base URL, e.g. ``http://127.0.0.1:41233``. Socket faults (reset, cut) need this."""
    import uvicorn

    config = uvicorn.Config(
        Served(app), host=host, port=port, log_level="warning", lifespan="off", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"{name} server did not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    try:
        yield f"http://{shown}:{bound}"
    finally:
        server.should_exit = True
        thread.join(10)
