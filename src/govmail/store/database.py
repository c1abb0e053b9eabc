"""The metadata database: engine set-up for SQLite and PostgreSQL, transactions, migrations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from govmail.core.errors import GovmailError

MIGRATIONS = Path(__file__).parent / "migrations"
T = TypeVar("T")
_WRITE = "govmail_write"


class Database:
    """One engine and the two kinds of transaction the services use.

    ``read()`` gives a snapshot for queries; ``write()`` gives a transaction that holds
    the write lock from its first statement on SQLite (``BEGIN IMMEDIATE``), so two
    writers never deadlock upgrading a read lock, and that commits on success and rolls
    back on any exception, so a use case never leaves half its rows behind.
    """

    def __init__(self, url: str, **engine_options: Any) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            engine_options.setdefault("connect_args", {"timeout": 30})
        else:
            engine_options.setdefault("pool_pre_ping", True)
            # Fifty SMTP sessions each looking up recipients: a pool smaller than that
            # opened and closed a connection per lookup (2,258 for 5,000 messages).
            engine_options.setdefault("pool_size", 20)
            engine_options.setdefault("max_overflow", 20)
        self.engine: AsyncEngine = create_async_engine(self.url, **engine_options)
        self._sync_engine: Engine | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._writer: ThreadPoolExecutor | None = None
        if self.is_sqlite:
            _configure_sqlite(self.engine.sync_engine)

    async def run(self, work: Callable[[Connection], T], *, write: bool, brief: bool = False) -> T:
        """Run ``work`` (synchronous SQLAlchemy Core on the Connection it is given) as one
        transaction, committed when it returns, rolled back if it raises.

        For the hot paths (RCPT lookups, delivery). On SQLite the whole transaction runs
        on a worker thread in one hop, instead of one thread hop per statement through
        aiosqlite (a delivery's ten statements cost 8 ms that way, 1 ms this way); writes
        go to a single writer thread, as SQLite has one writer anyway. On PostgreSQL it
        runs on the async engine (``run_sync``), each statement a round trip.

        ``brief``: a read known to be short (indexed lookups, one folder's rows, as IMAP
        does all day). On SQLite it runs on the calling thread: the hop to a worker costs
        more than such a read, and a worker fetching rows takes the GIL back once per row,
        waiting for the event loop each time (IMAP FETCH went from 23,000 to 30,000
        messages/s without it). Long reads (search) keep their worker.
        """
        if not self.is_sqlite:
            async with self.write() if write else self.read() as conn:
                return await conn.run_sync(work)
        if self._sync_engine is None:
            self._start_sqlite_threads()
        if brief and not write:
            return self._sqlite_transaction(work, False)
        executor = self._writer if write else self._readers
        return await asyncio.get_running_loop().run_in_executor(
            executor, self._sqlite_transaction, work, write
        )

    def _start_sqlite_threads(self) -> None:
        url = self.url.set(drivername="sqlite")
        self._sync_engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, pool_size=8
        )
        _configure_sqlite(self._sync_engine)
        self._readers = ThreadPoolExecutor(4, thread_name_prefix="sqlite-read")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-write")

    def _sqlite_transaction(self, work: Callable[[Connection], T], write: bool) -> T:
        engine = self._sync_engine
        if engine is None:
            raise RuntimeError("the SQLite worker threads are not started")
        with engine.connect() as conn:
            conn = conn.execution_options(**{_WRITE: write})
            with conn.begin():
                return work(conn)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(**{_WRITE: True})
            async with conn.begin():
                yield conn

    async def serialize(self, conn: AsyncConnection, what: str) -> None:
        """Hold a lock named ``what`` until ``conn``'s transaction ends.

        SQLite's write transactions are serial already (BEGIN IMMEDIATE); on PostgreSQL
        this is a transaction-level advisory lock, for checks that span several rows
        (no cycle in the agency tree, one migration when several nodes start at once).
        """
        if not self.is_sqlite:
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:what))"), {"what": what}
            )

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent, safe to run concurrently)."""
        async with self.write() as conn:
            await self.serialize(conn, "govmail.migrate")
            await conn.run_sync(_upgrade)

    async def require_current_schema(self) -> None:
        """Raise SchemaNotReady unless the database exists at the newest migration.

        Commands other than init/serve never create or migrate a database by accident.
        """
        database = self.url.database or ""
        if self.is_sqlite and database and not Path(database).exists():
            raise SchemaNotReady("missing")
        async with self.read() as conn:
            current = await conn.run_sync(_current_revision)
        if current != _head_revision():
            raise SchemaNotReady(current or "empty")

    async def refresh_statistics(self) -> None:
        """Update the planner's statistics; call after a bulk load.

        Without them PostgreSQL plans a 50-row lookup of fresh rows as a walk over
        every address (100 ms instead of 1 ms) until autovacuum gets round to it.
        """
        async with self.engine.connect() as conn:
            if self.is_sqlite:
                await conn.exec_driver_sql("ANALYZE")
                await conn.commit()
            else:
                # VACUUM also sets the visibility map, which index-only scans need.
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.exec_driver_sql(
                    "VACUUM (ANALYZE) people, mailboxes, addresses, agencies"
                )

    async def dispose(self) -> None:
        await self.engine.dispose()
        for executor in (self._readers, self._writer):
            if executor is not None:
                # Off the event loop: a transaction still running finishes first.
                await asyncio.to_thread(executor.shutdown, wait=True)
        if self._sync_engine is not None:
            self._sync_engine.dispose()


class SchemaNotReady(GovmailError):
    code = "schema_not_ready"

    def __init__(self, found: str) -> None:
        super().__init__(
            "Cơ sở dữ liệu chưa được khởi tạo hoặc chưa được nâng cấp. Hãy chạy"
            " 'govmail init' (thư mục mới) hoặc 'govmail serve' (tự nâng cấp).",
            f"The database is not initialised or not up to date ({found}). Run"
            " 'govmail init' (new directory) or 'govmail serve' (upgrades it).",
            found=found,
        )


class DatabaseUnavailable(GovmailError):
    code = "database_unavailable"

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"Không kết nối được cơ sở dữ liệu (xem [database] url trong govmail.toml"
            f" hoặc GOVMAIL_DATABASE_URL): {reason}",
            f"Cannot reach the database (see [database] url in govmail.toml or"
            f" GOVMAIL_DATABASE_URL): {reason}",
        )


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def _current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _upgrade(conn: Connection) -> None:
    cfg = _alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN is ours (see Database).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode = WAL")
        # FULL: a committed transaction survives power loss, not only a process crash.
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA busy_timeout = 30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def is_unique_violation(exc: IntegrityError) -> bool:
    """True if the database refused a row because a unique constraint already holds it."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)  # asyncpg, through SQLAlchemy's adapter
    if sqlstate is not None:
        return bool(sqlstate == "23505")
    # sqlite3 (Python 3.11+) names the extended result code.
    return getattr(orig, "sqlite_errorname", "") in (
        "SQLITE_CONSTRAINT_UNIQUE",
        "SQLITE_CONSTRAINT_PRIMARYKEY",
    )
