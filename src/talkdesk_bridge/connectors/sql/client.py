"""The database as an upstream: one pooled async engine, failures classified once."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ..._errors import (
    ConfigurationError,
    UpstreamError,
    UpstreamFailed,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)

__all__ = ["Database", "classify_db_error"]


def classify_db_error(exc: BaseException) -> UpstreamError:
    """The one mapping from driver failures to the bridge's upstream errors (no SQL, no values)."""
    kind = type(getattr(exc, "orig", None) or exc).__name__
    if isinstance(exc, sa.exc.TimeoutError | TimeoutError):
        return UpstreamTimeout("the database did not answer in time", retry_after=5)
    if isinstance(exc, sa.exc.DataError | sa.exc.IntegrityError):
        return UpstreamRejected(f"the database rejected the values ({kind})", upstream_status=422)
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError | OSError):
        return UpstreamUnavailable(f"the database is unavailable ({kind})", retry_after=5)
    return UpstreamFailed(f"the database query failed ({kind})")


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        try:
            self._url = sa.engine.make_url(url)
        except sa.exc.ArgumentError:
            raise ConfigurationError("TALKDESK_BRIDGE_SQL_URL is not a database URL") from None
        self._pool_size = pool_size
        self._engine: AsyncEngine | None = None

    @property
    def dialect(self) -> str:
        return self._url.get_backend_name()

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("database used before start()")
        return self._engine

    async def start(self) -> None:
        options: dict[str, Any] = {"pool_pre_ping": True}
        if self.dialect == "sqlite":
            options["connect_args"] = {"timeout": 30}
        else:
            options |= {"pool_size": self._pool_size, "max_overflow": self._pool_size}
        try:
            engine = create_async_engine(self._url, **options)
        except (sa.exc.ArgumentError, ImportError, sa.exc.NoSuchModuleError) as exc:
            raise ConfigurationError(f"cannot use TALKDESK_BRIDGE_SQL_URL: {exc}") from None
        if self.dialect == "sqlite":
            # WAL lets readers page while writers commit; busy_timeout absorbs short locks.
            @event.listens_for(engine.sync_engine, "connect")
            def _pragmas(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                for pragma in ("journal_mode=WAL", "busy_timeout=30000", "foreign_keys=ON"):
                    cursor.execute(f"PRAGMA {pragma}")
                cursor.close()

        self._engine = engine

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    @contextlib.asynccontextmanager
    async def connect(self, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
        try:
            if write:
                async with self.engine.begin() as conn:
                    yield conn
            else:
                async with self.engine.connect() as conn:
                    yield conn
        except (sa.exc.SQLAlchemyError, OSError, TimeoutError) as exc:
            raise classify_db_error(exc) from exc

    async def fetch(
        self, statement: sa.TextClause, params: dict[str, Any] | None = None
    ) -> Sequence[RowMapping]:
        async with self.connect() as conn:
            result = await conn.execute(statement, params or {})
            return result.mappings().all()

    async def scalar(self, statement: sa.TextClause, params: dict[str, Any] | None = None) -> Any:
        async with self.connect() as conn:
            return (await conn.execute(statement, params or {})).scalar()
