"""The aiohttp-backed httpx transport against real sockets: what each failure means."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from talkdesk_bridge._transport import AiohttpTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + (await reader.readexactly(length) if length else b"")


async def serve(handler: Handler) -> tuple[asyncio.Server, str]:
    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away: part of what these tests provoke
        finally:
            writer.close()

    server = await asyncio.start_server(guarded, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=AiohttpTransport(max_connections=4, max_body_bytes=10_000), timeout=1.0
    ) as c:
        yield c


async def test_json_gzip_headers_and_body(client: httpx.AsyncClient) -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while not reader.at_eof():
            try:
                seen.append(await _read_request(reader))
            except asyncio.IncompleteReadError:
                break
            body = gzip.compress(b'{"ok": true}')
            writer.write(
                b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                b"Content-Encoding: gzip\r\nX-RateLimit-Remaining: 7\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            await writer.drain()
        writer.close()

    server, base = await serve(handler)
    async with server:
        for _ in range(3):
            r = await client.post(
                f"{base}/x?a=1", json={"q": 1}, headers={"Authorization": "Bearer t"}
            )
            assert r.status_code == 201 and r.json() == {"ok": True}
            assert r.headers["x-ratelimit-remaining"] == "7"
    assert len(seen) == 3
    assert b"POST /x?a=1 HTTP/1.1" in seen[0] and b"authorization: bearer t" in seen[0].lower()
    assert seen[0].endswith(b'{"q":1}')


async def test_refused_connection_is_not_sent(client: httpx.AsyncClient) -> None:
    server, base = await serve(lambda r, w: asyncio.sleep(0))
    server.close()
    await server.wait_closed()
    with pytest.raises(httpx.ConnectError):
        await client.get(f"{base}/")


async def test_connection_lost_after_sending_is_a_read_error(client: httpx.AsyncClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.close()  # the request arrived, then the connection went away

    server, base = await serve(handler)
    async with server:
        with pytest.raises(httpx.ReadError) as info:
            await client.post(f"{base}/contacts", json={})
    assert not isinstance(info.value, httpx.ConnectError)


async def test_no_answer_is_a_read_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await asyncio.sleep(5)

    server, base = await serve(handler)
    async with server, httpx.AsyncClient(transport=AiohttpTransport(), timeout=0.2) as c:
        with pytest.raises(httpx.ReadTimeout):
            await c.get(f"{base}/slow")


async def test_oversized_body_is_refused(client: httpx.AsyncClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n" + b"x" * 20000)
        await writer.drain()
        writer.close()

    server, base = await serve(handler)
    async with server:
        with pytest.raises(httpx.ReadError):
            await client.get(f"{base}/big")


async def test_truncated_body_is_a_read_error(client: httpx.AsyncClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"half":')
        await writer.drain()
        writer.close()

    server, base = await serve(handler)
    async with server:
        with pytest.raises(httpx.ReadError):
            await client.get(f"{base}/cut")
