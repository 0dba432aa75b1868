"""The database as an upstream: one pooled engine, failures classified once.

Two backends behind one small API (`fetch`, `fetch_many`, `scalar`, `run_steps`):
- server databases (PostgreSQL via asyncpg, MariaDB/MySQL via aiomysql) use SQLAlchemy's async
  engine;
- SQLite (`sqlite://…`) runs the sync driver in a small thread pool, one hand-off per unit of
  work. aiosqlite (`sqlite+aiosqlite://…`, also accepted) hands every cursor call to its thread,
  several per query, which `bench/` shows costs several times the latency under load.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ..._errors import (
    ConfigurationError,
    UpstreamError,
    UpstreamFailed,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)

__all__ = ["Database", "Step", "async_url", "classify_db_error"]

T = TypeVar("T")
Query = tuple[sa.TextClause, dict[str, Any]]


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


def async_url(url: str) -> str:
    """`url` with an async driver, for tools that use SQLAlchemy's async engine directly."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.get_driver_name() in ("pysqlite", ""):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


@dataclass(frozen=True)
class Step:
    """One statement of a write; skipped when the parameter named by `when` is None."""

    statement: sa.TextClause
    names: frozenset[str]
    when: str | None = None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers page while writers commit; busy_timeout absorbs short write locks.
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "busy_timeout=30000", "foreign_keys=ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _bound_steps(
    steps: Sequence[Step], params: dict[str, Any]
) -> Iterator[tuple[Step, dict[str, Any]]]:
    """Each step to run, with its parameters, read from `params` as it grows."""
    for step in steps:
        if step.when is not None and params.get(step.when) is None:
            continue
        missing = step.names - params.keys()
        if missing:
            raise UpstreamFailed(f"no value for parameter(s) {sorted(missing)}")
        yield step, {k: params[k] for k in step.names}


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        try:
            self._url = sa.engine.make_url(url)
        except sa.exc.ArgumentError:
            raise ConfigurationError("TALKDESK_BRIDGE_SQL_URL is not a database URL") from None
        self._pool_size = pool_size
        self._threaded = self._url.get_backend_name() == "sqlite" and (
            self._url.get_driver_name() in ("pysqlite", "")
        )
        self._engine: AsyncEngine | None = None
        self._sync_engine: Engine | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def dialect(self) -> str:
        return self._url.get_backend_name()

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            if self._threaded:
                self._sync_engine = sa.create_engine(
                    self._url.set(drivername="sqlite+pysqlite"),
                    connect_args={"check_same_thread": False, "timeout": 30},
                    poolclass=sa.pool.QueuePool,
                    pool_size=4,
                    max_overflow=4,
                )
                event.listen(self._sync_engine, "connect", _sqlite_pragmas)
                self._executor = ThreadPoolExecutor(4, thread_name_prefix="sqlite")
                return
            options: dict[str, Any] = {"pool_pre_ping": True}
            if self.dialect == "sqlite":
                options = {"connect_args": {"timeout": 30}}
            else:
                options |= {"pool_size": self._pool_size, "max_overflow": self._pool_size}
            self._engine = create_async_engine(self._url, **options)
        except (sa.exc.ArgumentError, ImportError, sa.exc.NoSuchModuleError) as exc:
            raise ConfigurationError(f"cannot use TALKDESK_BRIDGE_SQL_URL: {exc}") from None
        if self.dialect == "sqlite":
            event.listen(self._engine.sync_engine, "connect", _sqlite_pragmas)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
        if self._sync_engine is not None:
            assert self._executor is not None
            self._executor.shutdown(wait=True)
            self._sync_engine.dispose()
            self._sync_engine = self._executor = None

    # --- running work ------------------------------------------------------------------------

    async def _in_thread(self, work: Callable[[Connection], T], *, write: bool) -> T:
        engine, executor = self._sync_engine, self._executor
        if engine is None or executor is None:
            raise RuntimeError("database used before start()")

        def job() -> T:
            with engine.begin() if write else engine.connect() as conn:
                return work(conn)

        try:
            return await asyncio.get_running_loop().run_in_executor(executor, job)
        except (sa.exc.SQLAlchemyError, OSError, TimeoutError) as exc:
            raise classify_db_error(exc) from exc

    @contextlib.asynccontextmanager
    async def _connect(self, *, write: bool) -> AsyncIterator[AsyncConnection]:
        if self._engine is None:
            raise RuntimeError("database used before start()")
        try:
            async with self._engine.begin() if write else self._engine.connect() as conn:
                yield conn
        except (sa.exc.SQLAlchemyError, OSError, TimeoutError) as exc:
            raise classify_db_error(exc) from exc

    async def fetch(
        self, statement: sa.TextClause, params: dict[str, Any] | None = None
    ) -> Sequence[RowMapping]:
        (rows,) = await self.fetch_many([(statement, params or {})])
        return rows

    async def fetch_many(self, queries: Sequence[Query]) -> list[Sequence[RowMapping]]:
        """Several independent reads: one thread hand-off for SQLite, concurrent otherwise."""
        if self._threaded:
            return await self._in_thread(
                lambda conn: [conn.execute(q, p).mappings().all() for q, p in queries],
                write=False,
            )

        async def one(query: Query) -> Sequence[RowMapping]:
            async with self._connect(write=False) as conn:
                return (await conn.execute(*query)).mappings().all()

        return list(await asyncio.gather(*(one(q) for q in queries)))

    async def scalar(self, statement: sa.TextClause, params: dict[str, Any] | None = None) -> Any:
        rows = await self.fetch(statement, params)
        return next(iter(rows[0].values())) if rows else None

    async def run_steps(self, steps: Sequence[Step], params: dict[str, Any]) -> dict[str, Any]:
        """Statements in one transaction; columns a RETURNING clause yields join `params`."""
        params = dict(params)

        def merge(result: sa.CursorResult[Any]) -> None:
            if result.returns_rows and (row := result.mappings().first()) is not None:
                params.update(row)

        if self._threaded:

            def work(conn: Connection) -> dict[str, Any]:
                for step, bound in _bound_steps(steps, params):
                    merge(conn.execute(step.statement, bound))
                return params

            return await self._in_thread(work, write=True)
        async with self._connect(write=True) as conn:
            for step, bound in _bound_steps(steps, params):
                merge(await conn.execute(step.statement, bound))
        return params
