"""The outbound queue's workers inside ``govmail serve``: take due mail from the queue,
send it to the destination's servers (one session per destination reused while there
is work, limits per domain and in all), and record, retry, warn about or bounce it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import OrderedDict, deque
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Protocol

import aiosmtplib

from govmail.config import Config
from govmail.core.dsn import FailedRecipient
from govmail.delivery.client import Failure, Reply, Session, route
from govmail.delivery.dkim import Signer
from govmail.delivery.mta_sts import MtaSts
from govmail.delivery.queue import Job, Result, claim_due, next_due, record, release
from govmail.delivery.resolver import Resolver
from govmail.store.database import Database

if TYPE_CHECKING:
    from govmail.mailstore.service import MailStore

log = logging.getLogger(__name__)

# The longest the scheduler sleeps without looking at the queue: catches mail made due
# by another process (``govmail queue retry``, another node) and expired leases.
POLL_S = 5.0
_RECEIVED = re.compile(rb"^received:", re.IGNORECASE | re.MULTILINE)


class MessageSigner(Protocol):
    """Signs outgoing mail (delivery.dkim.Signer)."""

    def sign(self, message: bytes) -> bytes:
        """The header field(s) to prepend to ``message``; b"" when not ours to sign."""
        ...


class Outbound:
    """The queue's scheduler and its SMTP workers; one per ``govmail serve`` process.

    ``start`` begins working the queue, ``wake`` says mail was queued, ``stop`` stops
    taking work, lets transactions in flight finish (bounded) and hands back the rest.
    """

    def __init__(
        self, cfg: Config, db: Database, store: MailStore, signer: MessageSigner | None = None
    ) -> None:
        self.cfg = cfg
        self.db = db
        self.store = store
        self.settings = cfg.delivery
        self.resolver = Resolver(cfg.dns)
        self.sts = MtaSts(self.resolver, cfg.delivery) if cfg.delivery.mta_sts else None
        self.signer: MessageSigner = signer if signer is not None else Signer.from_config(cfg)
        # Rows taken per claim; the next claim comes when half of them are done.
        self.batch = max(100, 4 * self.settings.max_connections)
        # How long a claimed row stays ours: the longest a transaction can take, with
        # room for waiting its turn. A dead node's rows are free again after it.
        self.lease_s = self.settings.connect_timeout_s + 10 * self.settings.timeout_s
        self._wake = asyncio.Event()
        self._waiting: dict[str, deque[Job]] = {}  # destination domain → jobs claimed
        self._runners: dict[str, int] = {}  # destination domain → sessions working it
        self._active = 0
        self._backlog = 0  # rows claimed and not yet recorded
        self._tasks: set[asyncio.Task[None]] = set()
        self._scheduler: asyncio.Task[None] | None = None
        self._stopping = False
        self._signatures: OrderedDict[int, bytes] = OrderedDict()  # message id → header

    async def start(self) -> None:
        if self.db.is_sqlite:
            # One process works a SQLite queue: leases left are a dead predecessor's.
            await self.db.run(partial(release, rows=None), write=True)
        self._scheduler = asyncio.create_task(self._schedule())

    def wake(self) -> None:
        """Mail was queued: look at the queue now."""
        self._wake.set()

    async def stop(self, timeout: float = 15.0) -> None:
        self._stopping = True
        self._wake.set()
        if self._scheduler is not None:
            try:
                await asyncio.wait_for(self._scheduler, timeout)
            except (TimeoutError, asyncio.CancelledError):
                log.warning("outbound scheduler did not stop in time")
        left = [row for jobs in self._waiting.values() for job in jobs for row in job.rows]
        self._waiting.clear()
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in late:
                task.cancel()
            if late:
                log.warning("stopped %d outbound transactions in flight", len(late))
                await asyncio.gather(*late, return_exceptions=True)
        if left:
            await self.db.run(partial(release, rows=left), write=True)

    # --- scheduling --------------------------------------------------------------------

    async def _schedule(self) -> None:
        while not self._stopping:
            self._wake.clear()
            delay = POLL_S
            try:
                if self._backlog < self.batch // 2:
                    await self._claim()
                if self._backlog < self.batch // 2:
                    due = await self.db.run(next_due, write=False)
                    if due is not None:
                        delay = min(POLL_S, (due - datetime.now(UTC)).total_seconds())
            except Exception as exc:
                log.error("outbound queue: cannot read the queue", exc_info=exc)
            if delay > 0 and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    async def _claim(self) -> None:
        jobs = await self.db.run(
            partial(claim_due, now=datetime.now(UTC), lease_s=self.lease_s, limit=self.batch),
            write=True,
        )
        for job in jobs:
            self._waiting.setdefault(job.domain, deque()).append(job)
            self._backlog += len(job.rows)
        self._spawn()

    def _spawn(self) -> None:
        """Start sessions for waiting jobs, within the limits per domain and in all."""
        for domain, jobs in self._waiting.items():
            while (
                jobs
                and not self._stopping
                and self._runners.get(domain, 0) < self.settings.max_per_domain
                and self._active < self.settings.max_connections
            ):
                self._runners[domain] = self._runners.get(domain, 0) + 1
                self._active += 1
                task = asyncio.create_task(self._work(domain, jobs.popleft()))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def _next(self, domain: str) -> Job | None:
        jobs = self._waiting.get(domain)
        if self._stopping or not jobs:
            return None
        return jobs.popleft()

    # --- one destination session ------------------------------------------------------

    async def _work(self, domain: str, job: Job | None) -> None:
        """Send ``job`` and then the domain's next ones on the same session, until none
        is left; then close it."""
        session: Session | None = None
        try:
            while job is not None:
                try:
                    session = await self._attempt(job, session)
                except Exception as exc:
                    # The rows stay leased: they are tried again once the lease runs out.
                    log.error("outbound delivery to %s failed", domain, exc_info=exc)
                    if session is not None:
                        await session.close()
                        session = None
                job = self._next(domain)
        finally:
            if session is not None:
                await session.close()
            self._runners[domain] -= 1
            self._active -= 1
            if not self._runners[domain]:
                del self._runners[domain]
                if not self._waiting.get(domain):
                    self._waiting.pop(domain, None)
            self._spawn()

    async def _attempt(self, job: Job, session: Session | None) -> Session | None:
        """One transaction for ``job``; returns the session to reuse (None if closed)."""
        try:
            return await self._transaction(job, session)
        finally:
            self._done(job)

    def _done(self, job: Job) -> None:
        self._backlog -= len(job.rows)
        if self._backlog < self.batch // 2:
            self._wake.set()

    async def _transaction(self, job: Job, session: Session | None) -> Session | None:
        raw = await asyncio.to_thread(self.store.blobs.get, job.blob)
        if _hops(raw) > self.settings.max_hops:
            reply = Reply(554, f"5.4.6 Too many hops (over {self.settings.max_hops}): mail loop")
            await self._finish(job, raw, dict.fromkeys(job.rows.values(), reply))
            return session
        data = await self._signed(job, raw)
        if session is not None:
            try:
                await session.reset()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                await session.close()
                session = None
        if session is None:
            try:
                session = await self._open(job.domain)
            except Failure as failure:
                await self._finish(job, raw, dict.fromkeys(job.rows.values(), failure.reply))
                await self._fail_waiting(job.domain, failure.reply)
                return None
        recipients = list(dict.fromkeys(job.rows.values()))
        try:
            replies = await session.send(job.sender, recipients, data)
        except Failure as failure:
            replies = dict.fromkeys(recipients, failure.reply)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            relay = session.host.relay
            lost = Reply(451, f"4.4.2 {relay}: connection lost: {exc}", relay)
            replies = dict.fromkeys(recipients, lost)
            await session.close()
            session = None
        await self._finish(job, raw, replies)
        return session

    async def _open(self, domain: str) -> Session:
        hosts = await route(domain, self.cfg, self.resolver, self.sts)
        failure: Failure | None = None
        for host in hosts:
            try:
                return await Session.open(host, self.cfg)
            except Failure as exc:
                log.info("outbound: %s", exc)
                failure = exc
        if failure is None:  # route never returns no host
            raise Failure(Reply(451, f"4.4.4 No server for {domain}"))
        raise failure

    async def _fail_waiting(self, domain: str, reply: Reply) -> None:
        """The destination cannot be reached now (or ever): the jobs waiting for it get
        the same answer instead of each trying again at once, as Postfix does."""
        while (job := self._next(domain)) is not None:
            try:
                raw = await asyncio.to_thread(self.store.blobs.get, job.blob)
                await self._finish(job, raw, dict.fromkeys(job.rows.values(), reply))
            finally:
                self._done(job)

    async def _signed(self, job: Job, raw: bytes) -> bytes:
        """The message as it leaves: without the Return-Path of our store (the last MTA
        adds its own), with a DKIM signature made once per message."""
        data = _without_return_path(raw)
        signature = self._signatures.get(job.message_id)
        if signature is None:
            signature = await asyncio.to_thread(self.signer.sign, data)
            self._signatures[job.message_id] = signature
            if len(self._signatures) > 1000:
                self._signatures.popitem(last=False)
        else:
            self._signatures.move_to_end(job.message_id)
        return signature + data

    # --- results -----------------------------------------------------------------------

    async def _finish(self, job: Job, raw: bytes, replies: dict[str, Reply]) -> None:
        """Record each row's reply: sent, retried later (with a delay warning once it is
        late) or bounced, telling the sender once per event."""
        now = datetime.now(UTC)
        age = (now - job.created_at).total_seconds()
        settings = self.settings
        sent: list[Result] = []
        others: list[Result] = []
        failed: list[FailedRecipient] = []
        late: list[FailedRecipient] = []
        for row, recipient in job.rows.items():
            reply = replies.get(recipient) or Reply(451, "4.4.2 no reply")
            if 200 <= reply.code < 300:
                sent.append(Result(row, "sent", relay=reply.relay or None))
                log.info("to=<%s> relay=%s status=sent (%s)", recipient, reply.relay, reply)
            elif reply.permanent or age >= settings.bounce_after_s:
                failed.append(_failed(recipient, reply, expired=not reply.permanent))
                others.append(Result(row, "bounced", str(reply), reply.relay or None))
                log.warning("to=<%s> relay=%s status=bounced (%s)", recipient, reply.relay, reply)
            else:
                attempts = job.attempts[row] + 1
                wait = min(settings.retry_max_s, settings.retry_min_s * 2 ** (attempts - 1))
                warn = bool(job.sender) and not job.warned and age >= settings.delay_warning_s
                if warn:
                    late.append(_failed(recipient, reply, delayed=True))
                retry_at = now + timedelta(seconds=wait)
                others.append(
                    Result(row, "deferred", str(reply), reply.relay or None, retry_at, warn)
                )
                log.info("to=<%s> relay=%s status=deferred (%s)", recipient, reply.relay, reply)
        if sent:  # at once: a crash from here on must not send them again
            await self.db.run(partial(record, results=sent, now=now), write=True)
        if failed:
            await self._tell_sender(job, raw, failed, None)
        if late:
            until = job.created_at + timedelta(seconds=settings.bounce_after_s)
            await self._tell_sender(job, raw, late, until)
            job.warned = True
        if others:
            await self.db.run(partial(record, results=others, now=now), write=True)

    async def _tell_sender(
        self, job: Job, raw: bytes, about: list[FailedRecipient], delayed_until: datetime | None
    ) -> None:
        notice = await self.store.bounce(job.sender, about, raw, delayed_until=delayed_until)
        if notice is not None:
            await self.store.commits.deliver(notice)


def _hops(raw: bytes) -> int:
    end = raw.find(b"\r\n\r\n")
    return len(_RECEIVED.findall(raw[: end if end >= 0 else len(raw)]))


def _without_return_path(raw: bytes) -> bytes:
    if raw[:12].lower() == b"return-path:":
        return raw[raw.index(b"\n") + 1 :]
    return raw


def _failed(
    recipient: str, reply: Reply, *, expired: bool = False, delayed: bool = False
) -> FailedRecipient:
    """How a DSN names one recipient's failure (or delay), with the remote reply."""
    relay = reply.relay
    host = relay.partition("[")[0]
    diagnostic = f"smtp; {reply}" if relay else f"X-Govmail; {reply}"
    said_vi = f"máy chủ {host} trả lời: {reply}" if relay else str(reply)
    said_en = f"the server {host} said: {reply}" if relay else str(reply)
    if delayed:
        status = reply.status if reply.status.startswith("4.") else "4.4.1"
        return FailedRecipient(
            recipient,
            status,
            diagnostic,
            f"chưa gửi được, lần thử gần nhất: {said_vi}",
            f"not delivered yet, last attempt: {said_en}",
            host,
        )
    if expired:
        return FailedRecipient(
            recipient,
            "5.4.7",
            diagnostic,
            f"quá thời hạn gửi, đã ngừng thử; lần thử cuối: {said_vi}",
            f"delivery time expired, given up; last attempt: {said_en}",
            host,
        )
    status = reply.status if reply.status.startswith("5.") else "5.0.0"
    return FailedRecipient(
        recipient,
        status,
        diagnostic,
        f"bị từ chối, {said_vi}",
        f"refused, {said_en}",
        host,
    )
