"""``kill -9`` of the server under concurrent load: no acknowledged message is lost and
no message is half-visible after the restart."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from pathlib import Path

import aiosmtplib

from govmail.config import load_config
from tests.integration.mailserver import (
    AN,
    BINH,
    TTR,
    RunningServer,
    db_scalar,
    mailbox_messages,
    start_server,
)

RECIPIENTS = [AN, BINH, TTR]


async def _load(port: int, acked: dict[str, list[str]], stop: asyncio.Event, worker: int) -> None:
    """Send messages until the server dies; remember which ones got 250."""
    n = 0
    while not stop.is_set():
        n += 1
        token = f"w{worker}-m{n}-{random.randrange(10**9)}"
        rcpts = random.sample(RECIPIENTS, random.randint(1, 3))
        body = (
            f"Subject: {token}\r\nMessage-ID: <{token}@test>\r\n\r\n{token}\r\n"
            + "x" * random.choice((100, 5000, 60000))
        )
        try:
            _, reply = await aiosmtplib.send(
                body.encode() + b"\r\n",
                sender="load@example.org",
                recipients=rcpts,
                hostname="127.0.0.1",
                port=port,
                timeout=10,
                start_tls=False,
            )
        except (aiosmtplib.SMTPException, OSError):
            # Refused or cut off: not acknowledged, so the sender still has it.
            await asyncio.sleep(0.01)
            continue
        if reply.startswith("2.0.0 Ok"):
            acked[token] = rcpts


async def _run_until_killed(server: RunningServer, seconds: float) -> dict[str, list[str]]:
    acked: dict[str, list[str]] = {}
    stop = asyncio.Event()
    workers = [asyncio.create_task(_load(server.port("smtp"), acked, stop, w)) for w in range(16)]
    await asyncio.sleep(seconds)
    server.kill()  # SIGKILL: no shutdown code runs
    stop.set()
    for task in workers:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 15)
    return acked


def _check_store(data_dir: Path, acked: dict[str, list[str]]) -> int:
    """Every acknowledged message is in each of its recipients' INBOX, whole."""
    stored: dict[str, set[str]] = {}
    for address in RECIPIENTS:
        for message, raw in mailbox_messages(data_dir, address):
            found = re.search(rb"\r\nSubject: (\S+)\r\n", raw)
            assert found is not None and raw.endswith(b"\r\n")
            token = found.group(1).decode()
            assert raw.count(token.encode()) == 3  # Subject, Message-ID, body: all there
            assert message.size == len(raw)
            stored.setdefault(token, set()).add(address)
    missing = {t: r for t, r in acked.items() if not set(r) <= stored.get(t, set())}
    assert not missing, f"{len(missing)} acknowledged messages lost: {list(missing)[:5]}"
    # Counters agree with the rows: quotas, UIDs and modseqs never half-updated.
    assert (
        db_scalar(
            data_dir,
            "select count(*) from mailboxes m where used_bytes <> (select coalesce(sum(fm.size), 0)"
            " from folder_messages fm join folders f on f.id = fm.folder_id"
            " where f.mailbox_id = m.id)",
        )
        == 0
    )
    assert (
        db_scalar(
            data_dir,
            "select count(*) from folders f where uidnext <= (select coalesce(max(uid), 0)"
            " from folder_messages fm where fm.folder_id = f.id) or highest_modseq <"
            " (select coalesce(max(modseq), 0) from folder_messages fm where fm.folder_id = f.id)",
        )
        == 0
    )
    # Every message row points at a blob that exists.
    blobs = load_config(data_dir).blob_dir
    keys = mailbox_blob_keys(data_dir)
    assert all((blobs / k[:2] / k).is_file() for k in keys)
    return len(stored)


def mailbox_blob_keys(data_dir: Path) -> list[str]:
    joined = (
        db_scalar(data_dir, "select string_agg(blob, ',') from messages")
        if _is_pg()
        else (db_scalar(data_dir, "select group_concat(blob, ',') from messages"))
    )
    return str(joined).split(",") if joined else []


def _is_pg() -> bool:
    import os

    return "postgresql" in os.environ.get("GOVMAIL_DATABASE_URL", "")


def test_kill_9_under_load_loses_no_acknowledged_message(province: Path) -> None:
    total_acked = 0
    acked_all: dict[str, list[str]] = {}
    for seconds in (1.2, 2.0, 0.7):
        server = start_server(province)
        started = time.monotonic()
        acked = asyncio.run(_run_until_killed(server, seconds + random.random() * 0.3))
        assert time.monotonic() - started < 60
        acked_all.update(acked)
        total_acked += len(acked)
        _check_store(province, acked_all)
    assert total_acked > 20, "the load never got going; the test proves nothing"
    # The server restarts on the crashed store and goes on numbering UIDs.
    server = start_server(province)
    try:
        before = len(mailbox_messages(province, RECIPIENTS[0]))
        asyncio.run(
            aiosmtplib.send(
                b"Subject: after\r\n\r\nafter\r\n",
                sender="a@example.org",
                recipients=[RECIPIENTS[0]],
                hostname="127.0.0.1",
                port=server.port("smtp"),
                start_tls=False,
            )
        )
        after = mailbox_messages(province, RECIPIENTS[0])
        assert len(after) == before + 1
        assert after[-1][0].uid > max(m.uid for m, _ in after[:-1]) if before else True
    finally:
        server.stop()
