"""The optional inbound secret: Talkdesk calls the URLs exactly as configured, so the secret
travels as the query parameter `key` that the configuration JSON embeds."""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from ._errors import Unauthorized
from ._http import error_response

__all__ = ["OPEN_PATHS", "InboundSecretMiddleware"]

# Probes must work without the secret; nothing they return is sensitive. The app adds each
# connector's logo and icon: Talkdesk's UI loads those in a browser, as configured.
OPEN_PATHS = frozenset({"/healthz", "/readyz"})


class InboundSecretMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        secret: str,
        open_paths: frozenset[str] = OPEN_PATHS,
        open_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self._secret = secret.encode()
        self._open = open_paths
        # Trees with their own login (the console): a browser cannot carry `?key=` around.
        self._open_prefixes = open_prefixes

    def _open_path(self, path: str) -> bool:
        return path in self._open or any(
            path == prefix or path.startswith(prefix + "/") for prefix in self._open_prefixes
        )

    def _authorized(self, query_string: bytes) -> bool:
        try:
            pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        except ValueError:
            return False
        given = next((value for name, value in pairs if name == "key"), "")
        return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self._secret)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and not self._open_path(scope["path"])
            and not self._authorized(scope.get("query_string", b""))
        ):
            response = error_response(
                Unauthorized("this bridge needs its key: call the URLs from its configuration")
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
