"""The outbound queue under crashes, slow domains and several nodes: claims and their
leases, results that come too late, a message whose file is gone, an internal error,
the operator's delete and retry, and two nodes on one PostgreSQL queue."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from govmail.config import Config, load_config
from govmail.delivery.queue import Result, claim_due, record, renew
from govmail.delivery.worker import Outbound
from govmail.mailstore.service import Incoming, MailStore
from govmail.store.blobs import FileBlobStore
from govmail.store.database import Database
from tests.integration.clihelp import cli
from tests.integration.mailserver import AN, db_execute, db_scalar, mailbox_messages
from tests.integration.twoprovinces import REMOTE, REMOTE2, two_provinces

SLOW = [f"cb{i}@slow.test" for i in range(12)]


def letter(subject: str, to: str) -> bytes:
    return (
        f"From: Nguyễn Văn An <{AN}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@khanhhoa.gov.vn>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nGiấy mời họp.\r\n"
    ).encode()


async def queued(store: MailStore, subject: str, recipients: list[str]) -> None:
    """A message from AN to ``recipients`` in the outbound queue, as SMTP would put it."""
    receipt = await store.receive(
        Incoming(letter(subject, recipients[0]), AN, local={}, remote=recipients)
    )
    assert receipt.refusal is None


def with_store(
    data_dir: Path, scenario: Callable[[Config, Database, MailStore], Awaitable[Any]]
) -> Any:
    async def go() -> Any:
        cfg = load_config(data_dir)
        db = Database(cfg.effective_database_url)
        store = MailStore(db, cfg, FileBlobStore(cfg.blob_dir))
        try:
            return await scenario(cfg, db, store)
        finally:
            await store.close()
            await db.dispose()

    return asyncio.run(go())


def rows(data_dir: Path) -> list[dict[str, Any]]:
    result = cli(data_dir, "queue", "list", "--all", "--json")
    assert result.exit_code == 0, result.output
    found: list[dict[str, Any]] = json.loads(result.stdout)
    return found


def wait_for(what: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := what()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what.__name__}")
        time.sleep(0.1)
    return found


def test_a_result_after_the_lease_ran_out_does_not_overwrite_the_new_owner(
    province: Path,
) -> None:
    async def scenario(cfg: Config, db: Database, store: MailStore) -> None:
        await queued(store, "Thư một", [REMOTE, REMOTE2])
        now = datetime.now(UTC)
        claim = {"lease_s": 0.5, "limit": 10, "per_domain": 10}
        (first,) = await db.run(lambda c: claim_due(c, now=now, **claim), write=True)
        assert len(first.rows) == 2
        # Leased: a second worker (or node) finds nothing to take.
        assert await db.run(lambda c: claim_due(c, now=now, **claim), write=True) == []
        await asyncio.sleep(1.0)
        later = datetime.now(UTC)
        (second,) = await db.run(lambda c: claim_due(c, now=later, **claim), write=True)
        assert set(second.rows) == set(first.rows) and second.token != first.token
        # The first worker comes back late with its results: they are ignored ...
        stale = [Result(row, first.token, "deferred", "451 4.4.1 late") for row in first.rows]
        assert await db.run(lambda c: record(c, stale, now=later), write=True) == set()
        assert (
            await db.run(lambda c: renew(c, [first.token], now=later, lease_s=60), write=True)
            == set()
        )
        # ... and the new owner's count.
        sent = [Result(row, second.token, "sent", relay="mx") for row in second.rows]
        assert await db.run(lambda c: record(c, sent, now=later), write=True) == set(second.rows)

    with_store(province, scenario)
    assert [(r["status"], r["attempts"], r["last_error"]) for r in rows(province)] == [
        ("sent", 1, None),
        ("sent", 1, None),
    ]
    assert db_scalar(province, "SELECT count(*) FROM outbound_queue WHERE lease_until IS NULL") == 2


def test_one_slow_domain_cannot_fill_a_claim(province: Path) -> None:
    async def scenario(cfg: Config, db: Database, store: MailStore) -> list[list[str]]:
        await queued(store, "Nhiều người nhận", SLOW)
        await queued(store, "Một người nhận", [REMOTE])
        now = datetime.now(UTC)
        jobs = await db.run(
            lambda c: claim_due(c, now=now, lease_s=60, limit=10, per_domain=4), write=True
        )
        return [sorted(job.rows.values()) for job in jobs]

    jobs = with_store(province, scenario)
    assert [len(recipients) for recipients in jobs] == [4, 1]
    assert jobs[1] == [REMOTE]  # queued later, still in the same claim


def test_delete_takes_only_waiting_mail_and_both_commands_are_audited(province: Path) -> None:
    with_store(
        province,
        lambda cfg, db, store: queued(store, "Ba người", [REMOTE, REMOTE2, "c@tinh-b.test"]),
    )
    sent, leased, waiting = (r["id"] for r in rows(province))
    db_execute(province, f"UPDATE outbound_queue SET status = 'sent' WHERE id = {sent}")
    soon = (datetime.now(UTC) + timedelta(minutes=10)).isoformat(sep=" ")
    db_execute(
        province,
        f"UPDATE outbound_queue SET lease_until = '{soon}', lease_token = 'x' WHERE id = {leased}",
    )
    refused = cli(province, "queue", "delete", str(sent))
    assert refused.exit_code == 1 and "đã gửi đi" in refused.stderr
    busy = cli(province, "queue", "delete", str(waiting), str(leased))
    assert busy.exit_code == 1 and "đang được gửi đi lúc này" in busy.stderr
    assert len(rows(province)) == 3  # all or none
    assert cli(province, "queue", "delete", str(waiting)).exit_code == 0
    assert [r["id"] for r in rows(province)] == [sent, leased]

    # A lease that ran out (its worker died) is freed by retry.
    past = (datetime.now(UTC) - timedelta(minutes=10)).isoformat(sep=" ")
    db_execute(province, f"UPDATE outbound_queue SET lease_until = '{past}' WHERE id = {leased}")
    assert cli(province, "queue", "retry", str(leased)).exit_code == 0
    assert (
        db_scalar(province, f"SELECT lease_token FROM outbound_queue WHERE id = {leased}") is None
    )

    audit = with_store(province, _audit_entries)
    assert [(a, t, d["rows"]) for a, t, d in audit] == [
        ("queue.delete", "outbound_queue", [waiting]),
        ("queue.retry", "outbound_queue", [leased]),
    ]
    actors = db_scalar(province, "SELECT min(actor) FROM audit_log WHERE action LIKE 'queue.%'")
    assert str(actors).startswith("cli:")


async def _audit_entries(cfg: Config, db: Database, store: MailStore) -> list[Any]:
    async with db.read() as conn:
        found = await conn.execute(
            text("SELECT action, target, details FROM audit_log WHERE action LIKE 'queue.%'")
        )
        return [(a, t, d if isinstance(d, dict) else json.loads(d)) for a, t, d in found.all()]


def run_outbound(
    data_dir: Path,
    until: Callable[[], bool],
    signer: Any = None,
    setup: Callable[[MailStore], Awaitable[None]] | None = None,
) -> None:
    """A node's outbound workers (as ``govmail serve`` runs them) until ``until()``."""

    async def scenario(cfg: Config, db: Database, store: MailStore) -> None:
        if setup is not None:
            await setup(store)
        outbound = Outbound(cfg, db, store, signer)
        store.commits.on_queued = outbound.wake
        await outbound.start()
        try:
            deadline = time.monotonic() + 30
            while not await asyncio.to_thread(until):
                assert time.monotonic() < deadline, "the workers did not finish in time"
                await asyncio.sleep(0.2)
        finally:
            await outbound.stop()

    with_store(data_dir, scenario)


def test_a_message_whose_file_is_gone_bounces_at_once(province: Path) -> None:
    cfg = load_config(province)

    async def lose_it(store: MailStore) -> None:
        await queued(store, "Mất tệp", [REMOTE])
        async with store.db.read() as conn:
            blob = (await conn.execute(text("SELECT blob FROM messages"))).scalar_one()
        FileBlobStore(cfg.blob_dir).path(blob).unlink()

    run_outbound(province, lambda: bool(mailbox_messages(province, AN)), setup=lose_it)
    (row,) = rows(province)
    assert row["status"] == "bounced" and "5.3.0" in row["last_error"]
    ((_, bounce),) = mailbox_messages(province, AN)
    report = message_from_bytes(bounce, policy=policy.default).as_string()
    assert f"Final-Recipient: rfc822; {REMOTE}" in report and "Status: 5.3.0" in report


class BrokenSigner:
    def sign(self, message: bytes) -> bytes:
        raise RuntimeError("the DKIM key cannot be read")


def test_an_unexpected_error_defers_the_mail_with_the_error(province: Path) -> None:
    set_cfg = load_config(province)
    assert set_cfg.delivery.retry_min_s > 60  # not retried during the test

    def deferred() -> bool:
        return [r["status"] for r in rows(province)] == ["deferred"]

    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    from tests.integration.mailserver import set_option
    from tests.integration.twoprovinces import free_port

    # A server that would take the mail: the failure is ours, after connecting (the
    # message is signed as it is sent to this session).
    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        set_option(province, "smarthost", f"127.0.0.1:{port}")
        set_option(province, "smarthost_tls", "opportunistic")
        run_outbound(
            province,
            deferred,
            signer=BrokenSigner(),
            setup=lambda store: queued(store, "Lỗi nội bộ", [REMOTE]),
        )
    finally:
        controller.stop()
    (row,) = rows(province)
    assert row["attempts"] == 1 and "the DKIM key cannot be read" in row["last_error"]
    assert db_scalar(province, "SELECT count(*) FROM outbound_queue WHERE lease_until IS NULL") == 1


# Several nodes share a queue on PostgreSQL only (SQLite is one process).
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_two_nodes_on_one_queue_send_each_recipient_one_copy(
    province: Path, tmp_path: Path
) -> None:
    count = 30
    with two_provinces(province, tmp_path) as two:
        two.start_receiver()

        async def scenario(cfg: Config, db: Database, store: MailStore) -> None:
            for i in range(count):
                await queued(store, f"Thư số {i}", [REMOTE, REMOTE2])
            # Few sessions each, so both nodes claim again and again; short leases, so
            # renewing them is what keeps rows in hand from being taken by the other.
            small = dataclasses.replace(cfg.delivery, max_connections=2, max_per_domain=2)
            nodes = []
            for _ in range(2):
                node_db = Database(cfg.effective_database_url)
                node = Outbound(dataclasses.replace(cfg, delivery=small), node_db, store)
                node.lease_s = 1.0
                nodes.append((node, node_db))
            for node, _ in nodes:
                await node.start()
            try:
                deadline = time.monotonic() + 60
                while True:
                    async with db.read() as conn:
                        left = await conn.scalar(
                            text("SELECT count(*) FROM outbound_queue WHERE status <> 'sent'")
                        )
                    if not left:
                        break
                    assert time.monotonic() < deadline, f"{left} rows not sent in time"
                    await asyncio.sleep(0.2)
            finally:
                for node, node_db in nodes:
                    await node.stop()
                    await node_db.dispose()

        with_store(province, scenario)
        for address in (REMOTE, REMOTE2):
            subjects = [
                str(message_from_bytes(m, policy=policy.default)["Subject"])
                for m in two.receiver_inbox(address)
            ]
            assert sorted(subjects) == sorted(f"Thư số {i}" for i in range(count))
    assert {r["attempts"] for r in rows(province)} == {1}


def test_one_delay_notice_per_message_and_none_counted_that_the_sender_did_not_get(
    province: Path,
) -> None:
    from tests.integration.mailserver import set_option

    set_option(province, "delay_warning_s", 0.001)  # late at the first failure
    set_option(province, "nameservers", ["127.0.0.1:9"], section="dns")  # no answer: later
    db_execute(province, "UPDATE mailboxes SET used_bytes = quota_bytes")  # AN's too

    def deferred() -> bool:
        return {r["status"] for r in rows(province)} == {"deferred"}

    # Two destinations (two jobs) of one message, both failing for now.
    run_outbound(
        province, deferred, setup=lambda store: queued(store, "Chậm", [REMOTE, "ai@tinh-c.test"])
    )
    # AN's mailbox was full: the warning did not reach them, so it does not count.
    assert mailbox_messages(province, AN) == []
    assert db_scalar(province, "SELECT count(warned_at) FROM outbound_queue") == 0

    db_execute(province, "UPDATE mailboxes SET used_bytes = 0")
    assert cli(province, "queue", "retry", "--all").exit_code == 0

    def warned() -> bool:
        return db_scalar(province, "SELECT count(warned_at) FROM outbound_queue") == 2

    run_outbound(province, warned)
    (notice,) = mailbox_messages(province, AN)  # one for the message, not one per domain
    report = message_from_bytes(notice[1], policy=policy.default).as_string()
    assert report.count("Action: delayed") == 1


class OneSessionAtATime:
    """An SMTP server that takes one session per client address, as many do: an extra
    session is told 421 at EHLO (after a moment, as a busy server answers)."""

    def __init__(self) -> None:
        self.active = 0
        self.refused = 0
        self.received: list[str] = []

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        if self.active:
            self.refused += 1
            await asyncio.sleep(0.3)
            return ["421 4.7.0 Too many connections from your address"]
        self.active += 1
        session.host_name = hostname
        session.counted = True
        return responses

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        if getattr(session, "counted", False):
            self.active -= 1
        return "221 Bye"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.5)  # a slow server: the first session is still at work
        self.received.extend(envelope.rcpt_tos)
        return "250 2.0.0 Ok"


def test_a_server_taking_fewer_sessions_gets_fewer_and_no_mail_waits_for_it(
    province: Path,
) -> None:
    from aiosmtpd.controller import Controller

    from tests.integration.mailserver import set_option
    from tests.integration.twoprovinces import free_port

    server = OneSessionAtATime()
    port = free_port()
    controller = Controller(server, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        set_option(province, "smarthost", f"127.0.0.1:{port}")
        set_option(province, "smarthost_tls", "opportunistic")  # it offers no STARTTLS
        set_option(province, "max_per_domain", 3)

        async def six(store: MailStore) -> None:
            for i in range(6):
                await queued(store, f"Thư {i}", [REMOTE])

        def all_sent() -> bool:
            return {r["status"] for r in rows(province)} == {"sent"}

        run_outbound(province, all_sent, setup=six)
    finally:
        controller.stop()
    assert server.refused >= 1  # the extra sessions were tried, and turned away
    assert server.received == [REMOTE] * 6
    # None was deferred because of the sessions turned away: each went on the first try.
    assert [r["attempts"] for r in rows(province)] == [1] * 6
