"""Fixtures: a fresh database of each kind, the demo app over httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests._support import DATABASES, fresh_database, seed, serve, sql_settings


@pytest.fixture(params=DATABASES)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database("sqlite", tmp_path) as url:
        yield url


@pytest.fixture
async def demo_client(sqlite_url: str) -> AsyncIterator[httpx.AsyncClient]:
    await seed(sqlite_url)
    async with serve(sql_settings(sqlite_url)) as client:
        yield client
