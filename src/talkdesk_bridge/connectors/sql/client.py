"""The database as an upstream: one pooled engine, failures classified once.

Two backends behind one small API (`fetch`, `fetch_many`, `scalar`, `run_steps`):
- server databases (PostgreSQL via asyncpg, MariaDB/MySQL via aiomysql), and SQLite through
  aiosqlite (`sqlite+aiosqlite://…`), use SQLAlchemy's async engine;
- plain SQLite (`sqlite://…`, the embedded default) runs the stdlib driver in a small thread
  pool, one hand-off per unit of work. aiosqlite hands every cursor call to its thread, several
  per query, and SQLAlchemy's row machinery costs more than the query itself: `bench/` measures
  both backends in the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ..._errors import (
    ConfigurationError,
    UpstreamError,
    UpstreamFailed,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from ..._observability import record_upstream

__all__ = ["Database", "Row", "Step", "async_url", "classify_db_error"]

T = TypeVar("T")
Row = Mapping[str, Any]
Query = tuple[sa.TextClause, dict[str, Any]]


_TRANSIENT_SQLITE = ("locked", "busy", "unable to open", "disk i/o")


def classify_db_error(exc: BaseException) -> UpstreamError:
    """The one mapping from driver failures to the bridge's upstream errors (no SQL, no values)."""
    orig = getattr(exc, "orig", None) or exc
    kind = type(orig).__name__
    if isinstance(exc, sa.exc.TimeoutError | TimeoutError):
        return UpstreamTimeout("the database did not answer in time", retry_after=5)
    if isinstance(exc, sa.exc.DataError | sa.exc.IntegrityError | sqlite3.IntegrityError):
        return UpstreamRejected(f"the database rejected the values ({kind})", upstream_status=422)
    if isinstance(orig, sqlite3.OperationalError):
        # SQLite reports a missing table and a locked file alike: only the latter is transient.
        if any(word in str(orig).lower() for word in _TRANSIENT_SQLITE):
            return UpstreamUnavailable(f"the database is busy ({kind})", retry_after=2)
        return UpstreamFailed(f"the database query failed ({kind})")
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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any = None) -> None:
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


_BIND = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def _sqlite_value(value: Any) -> Any:
    # Spelled as SQLAlchemy stores them, so text comparisons in the database stay ordered.
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _sqlite_query(sql: str, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Expand list parameters (`IN :ids`) into one placeholder per value, like SQLAlchemy."""
    lists = {k: v for k, v in params.items() if isinstance(v, list | tuple)}
    bound = {k: _sqlite_value(v) for k, v in params.items() if k not in lists}
    if not lists:
        return sql, bound

    def expand(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in lists:
            return match.group(0)
        names = [f"{name}__{i}" for i in range(len(lists[name]))]
        return "(" + ", ".join(f":{n}" for n in names) + ")" if names else "(NULL)"

    for name, values in lists.items():
        bound.update({f"{name}__{i}": _sqlite_value(v) for i, v in enumerate(values)})
    return _BIND.sub(expand, sql), bound


def _rows(cursor: sqlite3.Cursor) -> list[Row]:
    if cursor.description is None:
        return []
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


class _SqliteThreads:
    """SQLite through the stdlib driver, one connection per worker thread."""

    def __init__(self, path: str, threads: int = 4) -> None:
        memory = path in ("", ":memory:")
        self._path = path or ":memory:"
        self._threads = 1 if memory else threads
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="sqlite")

    async def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        with self._lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # Autocommit: reads see the latest commit; writes open their own transaction.
            conn = sqlite3.connect(
                self._path, timeout=30, isolation_level=None, check_same_thread=False
            )
            _sqlite_pragmas(conn)
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._executor is None:
            raise RuntimeError("database used before start()")
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, lambda: work(self._connection())
            )
        except (sqlite3.Error, OSError) as exc:
            raise classify_db_error(exc) from exc

    async def fetch_many(self, queries: Sequence[Query]) -> list[list[Row]]:
        def work(conn: sqlite3.Connection) -> list[list[Row]]:
            return [_rows(conn.execute(*_sqlite_query(q.text, p))) for q, p in queries]

        return await self._run(work)

    async def run_steps(self, steps: Sequence[Step], params: dict[str, Any]) -> dict[str, Any]:
        def work(conn: sqlite3.Connection) -> dict[str, Any]:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for step, bound in _bound_steps(steps, params):
                    rows = _rows(conn.execute(*_sqlite_query(step.statement.text, bound)))
                    if rows:
                        params.update(rows[0])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return params

        return await self._run(work)


class _AsyncEngine:
    """SQLAlchemy's async engine: asyncpg, aiomysql, aiosqlite."""

    def __init__(self, url: sa.URL, pool_size: int) -> None:
        self._url = url
        self._pool_size = pool_size
        self._engine: AsyncEngine | None = None

    async def start(self) -> None:
        options: dict[str, Any] = {"pool_pre_ping": True}
        if self._url.get_backend_name() == "sqlite":
            options = {"connect_args": {"timeout": 30}}
        else:
            options |= {"pool_size": self._pool_size, "max_overflow": self._pool_size}
        try:
            self._engine = create_async_engine(self._url, **options)
        except (sa.exc.ArgumentError, ImportError, sa.exc.NoSuchModuleError) as exc:
            raise ConfigurationError(f"cannot use TALKDESK_BRIDGE_SQL_URL: {exc}") from None
        if self._url.get_backend_name() == "sqlite":
            event.listen(self._engine.sync_engine, "connect", _sqlite_pragmas)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    @contextlib.asynccontextmanager
    async def _connect(self, *, write: bool) -> AsyncIterator[AsyncConnection]:
        if self._engine is None:
            raise RuntimeError("database used before start()")
        try:
            async with self._engine.begin() if write else self._engine.connect() as conn:
                yield conn
        except (sa.exc.SQLAlchemyError, OSError, TimeoutError) as exc:
            raise classify_db_error(exc) from exc

    async def fetch_many(self, queries: Sequence[Query]) -> list[list[Row]]:
        async def one(query: Query) -> list[Row]:
            async with self._connect(write=False) as conn:
                rows = (await conn.execute(*query)).mappings().all()
                return cast(list[Row], list(rows))

        return list(await asyncio.gather(*(one(q) for q in queries)))

    async def run_steps(self, steps: Sequence[Step], params: dict[str, Any]) -> dict[str, Any]:
        async with self._connect(write=True) as conn:
            for step, bound in _bound_steps(steps, params):
                result = await conn.execute(step.statement, bound)
                if result.returns_rows and (row := result.mappings().first()) is not None:
                    params.update(row)
        return params


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        try:
            parsed = sa.engine.make_url(url)
        except sa.exc.ArgumentError:
            raise ConfigurationError("TALKDESK_BRIDGE_SQL_URL is not a database URL") from None
        self.dialect = parsed.get_backend_name()
        self._backend: _SqliteThreads | _AsyncEngine
        if self.dialect == "sqlite" and parsed.get_driver_name() in ("pysqlite", ""):
            self._backend = _SqliteThreads(parsed.database or "")
        else:
            self._backend = _AsyncEngine(parsed, pool_size)

    async def start(self) -> None:
        await self._backend.start()

    async def close(self) -> None:
        await self._backend.close()

    async def fetch(
        self, statement: sa.TextClause, params: dict[str, Any] | None = None
    ) -> list[Row]:
        (rows,) = await self.fetch_many([(statement, params or {})])
        return rows

    async def _observed(self, work: Awaitable[T], calls: int) -> T:
        try:
            result = await work
        except UpstreamError as exc:
            record_upstream("sql", outcome=exc.code, error=type(exc).__name__)
            raise
        for _ in range(calls):
            record_upstream("sql", outcome="ok")
        return result

    async def fetch_many(self, queries: Sequence[Query]) -> list[list[Row]]:
        """Independent reads: one thread hand-off for SQLite, concurrent otherwise."""
        return await self._observed(self._backend.fetch_many(queries), len(queries))

    async def scalar(self, statement: sa.TextClause, params: dict[str, Any] | None = None) -> Any:
        rows = await self.fetch(statement, params)
        return next(iter(rows[0].values())) if rows else None

    async def run_steps(self, steps: Sequence[Step], params: dict[str, Any]) -> dict[str, Any]:
        """Statements in one transaction; columns a RETURNING clause yields join `params`."""
        return await self._observed(self._backend.run_steps(steps, dict(params)), 1)
