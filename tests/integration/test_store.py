"""The schema and its invariants, on SQLite and PostgreSQL: what the database itself enforces."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from govmail.config import load_config
from govmail.core.errors import AddressTaken
from govmail.directory.agencies import add_agency
from govmail.directory.people import add_person
from govmail.store.audit import now
from govmail.store.database import Database
from govmail.store.schema import addresses, audit_log, mailboxes, metadata


def _db(data_dir: Path) -> Database:
    return Database(load_config(data_dir).effective_database_url)


def test_migrations_produce_exactly_the_declared_schema(data_dir: Path) -> None:
    def diff(conn: Connection) -> list[object]:
        def include(obj: object, name: str | None, kind: str, *_: object) -> bool:
            # The trigram index exists on PostgreSQL only (ddl_if in the schema),
            # and SQLite's FTS5 search index (with its shadow tables) on SQLite only.
            if name in ("ix_people_search_trgm", "ix_messages_search_trgm"):
                return conn.dialect.name == "postgresql"
            return not (
                kind == "table" and (name or "").startswith(("people_search", "messages_search"))
            )

        context = MigrationContext.configure(conn, opts={"include_object": include})
        return list(compare_metadata(context, metadata))

    async def check() -> list[object]:
        db = _db(data_dir)
        try:
            async with db.read() as conn:
                return await conn.run_sync(diff)
        finally:
            await db.dispose()

    assert asyncio.run(check()) == []


def test_migrate_is_idempotent(data_dir: Path) -> None:
    async def twice() -> None:
        db = _db(data_dir)
        try:
            await db.migrate()
            await db.migrate()
        finally:
            await db.dispose()

    asyncio.run(twice())


def test_database_refuses_duplicate_address_and_second_agency_mailbox(data_dir: Path) -> None:
    cfg = load_config(data_dir)

    async def attempt() -> None:
        db = _db(data_dir)
        try:
            agency = await add_agency(db, cfg, name="Sở Tài chính")
            async with db.read() as conn:
                box = await conn.scalar(select(mailboxes.c.id))
                dom = await conn.scalar(select(addresses.c.domain_id))
            # Bypassing the services: the constraints alone must refuse these rows.
            with pytest.raises(IntegrityError):
                async with db.write() as conn:
                    await conn.execute(
                        insert(addresses).values(
                            domain_id=dom,
                            local_part="stc",
                            mailbox_id=box,
                            kind="alias",
                            created_at=now(),
                        )
                    )
            with pytest.raises(IntegrityError):
                async with db.write() as conn:
                    await conn.execute(
                        insert(addresses).values(
                            domain_id=dom,
                            local_part="postmaster",
                            mailbox_id=box,
                            kind="alias",
                            created_at=now(),
                        )
                    )
            with pytest.raises(IntegrityError):
                async with db.write() as conn:
                    await conn.execute(
                        insert(mailboxes).values(
                            kind="agency",
                            agency_id=agency.id,
                            status="active",
                            quota_bytes=1,
                            created_at=now(),
                        )
                    )
        finally:
            await db.dispose()

    asyncio.run(attempt())


def test_concurrent_creation_of_one_address_gives_exactly_one_mailbox(data_dir: Path) -> None:
    cfg = load_config(data_dir)
    agencies = ["stc", "snv", "syt", "sxd", "stp", "sct", "sgt", "sdt"]

    async def race() -> tuple[list[object], int]:
        db = _db(data_dir)
        try:
            for abbr in agencies:
                await add_agency(db, cfg, name=f"Sở {abbr.upper()}", abbr=abbr)
            # Different agencies, so no agency lock orders them: only the address's
            # unique constraint can stop the second mailbox.
            results = await asyncio.gather(
                *[
                    add_person(db, cfg, agency=a, name="Lê Đức Phương", password="12345678")
                    for a in agencies
                ],
                return_exceptions=True,
            )
            async with db.read() as conn:
                boxes = await conn.scalar(
                    select(func.count())
                    .select_from(mailboxes)
                    .where(mailboxes.c.kind == "personal")
                )
            return list(results), int(boxes or 0)
        finally:
            await db.dispose()

    results, boxes = asyncio.run(race())
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1 and boxes == 1
    assert all(isinstance(r, AddressTaken) for r in losers), losers
    assert all(r.proposals and "ldphuong" not in r.proposals for r in losers)  # type: ignore[attr-defined]


def test_every_action_is_audited_in_the_same_transaction(data_dir: Path) -> None:
    cfg = load_config(data_dir)

    async def act() -> list[tuple[str, str]]:
        db = _db(data_dir)
        try:
            await add_agency(db, cfg, name="Sở Tài chính")
            await add_person(db, cfg, agency="stc", name="Lê Đức Phương", password="12345678")
            with pytest.raises(AddressTaken):
                await add_person(db, cfg, agency="stc", name="Lê Đức Phương")
            async with db.read() as conn:
                rows = await conn.execute(select(audit_log.c.action, audit_log.c.target))
                return [(r[0], r[1]) for r in rows]
        finally:
            await db.dispose()

    assert asyncio.run(act()) == [
        ("agency.add", "stc@khanhhoa.gov.vn"),
        ("person.add", "ldphuong@khanhhoa.gov.vn"),
    ]


def test_a_use_case_that_fails_after_its_inserts_leaves_nothing(data_dir: Path) -> None:
    from govmail.directory.agencies import create_agency
    from govmail.store.schema import agencies

    cfg = load_config(data_dir)

    async def crash_then_count() -> tuple[int, int, int]:
        db = _db(data_dir)
        try:
            with pytest.raises(RuntimeError):
                async with db.write() as conn:
                    await create_agency(
                        conn,
                        cfg,
                        name="Sở Tài chính",
                        abbr=None,
                        parent=None,
                        external=False,
                        address=None,
                        actor="test",
                    )
                    raise RuntimeError("the process dies after the inserts")
            async with db.read() as conn:
                counts = [
                    await conn.scalar(select(func.count()).select_from(t))
                    for t in (agencies, mailboxes, audit_log)
                ]
            return (int(counts[0] or 0), int(counts[1] or 0), int(counts[2] or 0))
        finally:
            await db.dispose()

    assert asyncio.run(crash_then_count()) == (0, 0, 0)
