"""Test helpers: real databases (SQLite, PostgreSQL, MariaDB), the app over httpx, every
registered connector in front of its fake."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import create_async_engine

from talkdesk_bridge import Settings, create_app
from talkdesk_bridge.connectors.sql.client import async_url
from talkdesk_bridge.connectors.sql.demo import seed_demo
from talkdesk_sandbox import ManualClock

TOKEN = "test-token-0123456789"
PG_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MARIADB = os.environ.get("TEST_MARIADB", "127.0.0.1:3306")

DATABASES = ["sqlite", "postgresql", "mariadb"]


@contextlib.asynccontextmanager
async def fresh_database(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """A new, empty database of `kind`; dropped afterwards."""
    name = f"tdb_{uuid.uuid4().hex[:12]}"
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / (name + '.db')}"
        return
    if kind == "postgresql":
        import asyncpg

        admin = await asyncpg.connect(PG_ADMIN)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
            try:
                base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
                yield f"{base}/{name}"
            finally:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
        return
    if kind == "mariadb":
        import aiomysql

        host, port = MARIADB.split(":")
        admin = await aiomysql.connect(host=host, port=int(port), user="root", password="")
        try:
            async with admin.cursor() as cur:
                await cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            try:
                yield f"mysql+aiomysql://root@{host}:{port}/{name}?charset=utf8mb4"
            finally:
                async with admin.cursor() as cur:
                    await cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            admin.close()
        return
    raise ValueError(kind)


async def seed(url: str, contacts: int = 120) -> None:
    engine = create_async_engine(async_url(url))
    try:
        await seed_demo(engine, contacts_count=contacts)
    finally:
        await engine.dispose()


def sql_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "sql_url": url,
        "sql_api_tokens": [SecretStr(TOKEN)],
        "connectors": ["sql"],
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def serve(settings: Settings, **kwargs: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, reached through httpx as Talkdesk would."""
    app = create_app(settings, **kwargs)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://bridge.test") as c:
            yield c


def advancing_sleep(clock: ManualClock, sleeps: list[float]) -> Callable[[float], Awaitable[None]]:
    """A connector's `sleep`: records the wait and advances the shared clock instead."""

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)
        await asyncio.sleep(0)

    return sleep


@dataclass
class ClockedBridge:
    """The app serving connector `name`, built on a shared ManualClock (its waits advance it)."""

    name: str
    client: httpx.AsyncClient
    connector: Any
    clock: ManualClock
    sleeps: list[float]

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(f"/{self.name}/{path}", json=body)


@contextlib.asynccontextmanager
async def clocked_bridge(
    name: str,
    factory: Callable[..., Any],
    settings: Settings,
    clock: ManualClock,
    transport: httpx.AsyncBaseTransport,
) -> AsyncIterator[ClockedBridge]:
    sleeps: list[float] = []
    connector = factory(
        settings,
        transport=transport,
        clock=clock,
        monotonic=clock,
        sleep=advancing_sleep(clock, sleeps),
    )
    async with serve(settings, connectors={name: connector}) as client:
        yield ClockedBridge(name, client, connector, clock, sleeps)


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"api_token": token}


# Vendor limits beyond the general rate window, lifted for the generic tests.
_UNLIMITED: dict[str, dict[str, Any]] = {
    "hubspot": {"search_rate": None},
    "zendesk": {"export_rate_limit": None},
    "highrise": {"email_search_limit": None},
}


@dataclass(frozen=True)
class ConnectorClient:
    """The app serving one connector that talks to its fake, and credentials it accepts."""

    name: str
    client: httpx.AsyncClient
    auth: dict[str, str]


@contextlib.asynccontextmanager
async def connector_client(name: str, **overrides: Any) -> AsyncIterator[ConnectorClient]:
    """`async with connector_client("sql") as c:` the app with connector `name` enabled in
    front of its fake (sql: a seeded SQLite demo database; others: their vendor sandbox from
    the sandbox registry), its lifespan running. A registered connector with neither fails
    the calling test."""
    if name == "sql":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'demo.db'}"
            await seed(url, contacts=30)
            async with serve(sql_settings(url, **overrides)) as client:
                yield ConnectorClient(name, client, auth())
        return
    from talkdesk_sandbox import SANDBOXES, load_sandbox

    if name in SANDBOXES:
        # Unlimited: the generic tests fuzz and page; each vendor's limits have their own tests.
        sandbox = load_sandbox(name, rate_limit=None, **_UNLIMITED.get(name, {}))
        sandbox.seed(contacts=5)
        env = sandbox.bridge_env(f"https://{name}.sandbox.test")
        values = {key.removeprefix("TALKDESK_BRIDGE_").lower(): v for key, v in env.items()}
        settings = Settings(**{"connectors": [name], **values, **overrides})
        transports = {name: httpx.ASGITransport(app=sandbox.app)}
        async with serve(settings, transports=transports) as client:
            yield ConnectorClient(name, client, sandbox.credentials())
        return
    if name == "rest":
        from talkdesk_sandbox._registry import load_sandbox

        sandbox = load_sandbox("rest", rate_limit=None)
        sandbox.seed(contacts=5)
        mapping = sandbox.bridge_env("http://unused")["TALKDESK_BRIDGE_REST_MAPPING"]
        settings = Settings(**{"connectors": ["rest"], "rest_mapping": mapping, **overrides})
        transports = {"rest": httpx.ASGITransport(app=sandbox.app)}
        async with serve(settings, transports=transports) as client:
            yield ConnectorClient(name, client, sandbox.credentials())
        return
    raise LookupError(
        f"no test setup for connector {name!r}: add one to connector_client in tests/_support.py"
    )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(
    client: httpx.Client, proc: subprocess.Popen[Any], seconds: float = 60
) -> httpx.Response:
    """Poll /healthz of a bridge started as `proc` until it answers; fail if it exits first."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return client.get("/healthz")
        except httpx.TransportError:
            assert proc.poll() is None, "the bridge exited"
            assert time.monotonic() < deadline, "the bridge did not start"
            time.sleep(0.1)
