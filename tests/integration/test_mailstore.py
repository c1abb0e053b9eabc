"""The mail store's delivery service in-process, on SQLite and PostgreSQL: group commit,
isolation of a bad delivery, UID and quota accounting."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from govmail.config import load_config
from govmail.core.mime import analyze_message
from govmail.directory.addresses import find_mailbox
from govmail.mailstore.delivery import (
    Delivery,
    DeliveryFailed,
    GroupCommit,
    StoredMessage,
    quota_allows,
)
from govmail.mailstore.reading import folder_contents
from govmail.store.blobs import FileBlobStore
from govmail.store.database import Database


def _stored(blobs: FileBlobStore, n: int) -> StoredMessage:
    raw = f"Subject: so {n}\r\n\r\nBáo cáo số {n}\r\n".encode()
    return StoredMessage(blob=blobs.put(raw), size=len(raw), summary=analyze_message(raw))


def test_quota_grace_lets_the_crossing_message_exceed_by_ten_percent() -> None:
    assert quota_allows(used=99, quota=100, size=11)
    assert not quota_allows(used=99, quota=100, size=12)
    assert not quota_allows(used=100, quota=100, size=1)
    assert quota_allows(used=0, quota=100, size=0)


def test_concurrent_deliveries_share_commits_and_number_uids_without_gaps(province: Path) -> None:
    cfg = load_config(province)
    blobs = FileBlobStore(cfg.blob_dir)
    transactions = 0

    async def run() -> tuple[list[Any], int]:
        nonlocal transactions
        db = Database(cfg.effective_database_url)
        real_run = db.run

        async def counting_run(work: Any, *, write: bool) -> Any:
            nonlocal transactions
            transactions += write
            return await real_run(work, write=write)

        db.run = counting_run  # type: ignore[method-assign]
        try:
            async with db.read() as conn:
                box = (await find_mailbox(conn, cfg, "nvan")).mailbox_id
            commits = GroupCommit(db)
            messages = [_stored(blobs, n) for n in range(60)]
            await asyncio.gather(
                *(
                    commits.deliver(Delivery(message=m, sender="a@example.org", inbox=[box]))
                    for m in messages
                )
            )
            return await folder_contents(db, box, "INBOX"), box
        finally:
            await db.dispose()

    found, _ = asyncio.run(run())
    assert [m.uid for m in found] == list(range(1, 61))
    assert [m.modseq for m in found] == list(range(2, 62))
    assert transactions < 60 / 2, f"{transactions} transactions for 60 deliveries"


def test_a_delivery_the_database_refuses_does_not_fail_the_others(province: Path) -> None:
    cfg = load_config(province)
    blobs = FileBlobStore(cfg.blob_dir)

    async def run() -> tuple[list[Any], int]:
        db = Database(cfg.effective_database_url)
        try:
            async with db.read() as conn:
                box = (await find_mailbox(conn, cfg, "nvan")).mailbox_id
            commits = GroupCommit(db)
            good = [
                Delivery(message=_stored(blobs, n), sender="a@b.c", inbox=[box]) for n in range(5)
            ]
            # Queued for a submitter that does not exist: the foreign key refuses the row.
            bad = Delivery(
                message=_stored(blobs, 99),
                sender="a@b.c",
                outbound=["x@example.com"],
                submitted_by=10**9,
            )
            results = await asyncio.gather(
                *(commits.deliver(d) for d in [*good[:2], bad, *good[2:]]), return_exceptions=True
            )
            return results, len(await folder_contents(db, box, "INBOX"))
        finally:
            await db.dispose()

    results, delivered = asyncio.run(run())
    assert isinstance(results[2], DeliveryFailed)
    assert sum(not isinstance(r, BaseException) for r in results) == 5
    assert delivered == 5
