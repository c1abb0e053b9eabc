"""The metadata database: engine set-up for SQLite and PostgreSQL, transactions, migrations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"
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
        self.engine: AsyncEngine = create_async_engine(self.url, **engine_options)
        if self.is_sqlite:
            _configure_sqlite(self.engine)

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

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        async with self.write() as conn:
            await conn.run_sync(_upgrade)

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


def _upgrade(conn: Connection) -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
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

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def is_unique_violation(exc: IntegrityError) -> bool:
    """True if the database refused a row because a unique constraint already holds it."""
    text = str(exc.orig).lower()
    return "unique" in text or "duplicate key" in text
