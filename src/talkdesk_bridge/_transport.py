"""An httpx transport over aiohttp's connection pool: the default for upstream calls.

httpx stays the API every connector codes against (and tests swap the transport for an ASGI
fake). Its own pool, httpcore, polls every pooled socket on each request; under 32 concurrent
interaction lookups that cost about two thirds of the bridge's CPU per request (`bench/`
measures both). aiohttp's pool does not.

Failures are mapped to httpx's exception tree by what they mean for a retry: only a connection
that was never made is "not sent" (`ConnectError`, `ConnectTimeout`); a connection lost after
the request went out is a `ReadError`, so a create is never repeated blindly.
"""

from __future__ import annotations

import ssl

import aiohttp
import httpx

__all__ = ["AiohttpTransport"]

_DROPPED_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        *,
        max_connections: int = 100,
        keepalive_seconds: float = 30.0,
        max_body_bytes: int = 64 * 1024 * 1024,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._max_connections = max_connections
        self._keepalive = keepalive_seconds
        self._max_body = max_body_bytes
        self._ssl = ssl_context or ssl.create_default_context()
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        # Made on first use: aiohttp binds its session to the running event loop.
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                keepalive_timeout=self._keepalive,
                ssl=self._ssl,
                ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(
                connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar()
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            sock_connect=timeouts.get("connect"), sock_read=timeouts.get("read")
        )
        session = self._get_session()
        try:
            async with session.request(
                request.method,
                str(request.url),
                headers=list(request.headers.multi_items()),
                data=request.content or None,
                allow_redirects=False,
                timeout=timeout,
            ) as response:
                body = await self._read(response)
                headers = [
                    (name, value)
                    for name, value in response.headers.items()
                    if name.lower() not in _DROPPED_HEADERS
                ]
                status = response.status
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc), request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except (TimeoutError, aiohttp.SocketTimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc) or "read timed out", request=request) from exc
        except aiohttp.ClientPayloadError as exc:
            raise httpx.ReadError(str(exc), request=request) from exc
        except aiohttp.ClientResponseError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        except (aiohttp.ClientError, OSError) as exc:
            # Anything else happened after the connection was made: the request may have
            # reached the service.
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
        # The body is already decompressed by aiohttp, hence the dropped encoding headers.
        return httpx.Response(
            status,
            headers=headers,
            content=body,
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(65_536):
            size += len(chunk)
            if size > self._max_body:
                raise aiohttp.ClientPayloadError("upstream body over the size limit")
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
