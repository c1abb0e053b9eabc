"""The outbound queue's workers inside ``govmail serve``: take due mail from the queue,
send it to the destination's servers (one session per destination reused while there
is work, limits per domain and in all), and record, retry, warn about or bounce it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Protocol

import aiosmtplib
from sqlalchemy import Connection

from govmail.config import Config
from govmail.core.dsn import FailedRecipient
from govmail.delivery.client import Failure, Reply, Session, connect, downgrade_8bit, route
from govmail.delivery.dkim import Signer
from govmail.delivery.mta_sts import MtaSts
from govmail.delivery.queue import (
    Job,
    Result,
    claim_due,
    held,
    next_due,
    record,
    release,
    renew,
    warned_before,
)
from govmail.delivery.resolver import Resolver
from govmail.mailstore.delivery import Delivery, deliver_batch
from govmail.store.database import Database

if TYPE_CHECKING:
    from govmail.mailstore.service import MailStore

log = logging.getLogger(__name__)

# The longest the scheduler sleeps without looking at the queue: catches mail made due
# by another process (``govmail queue retry``, another node) and expired leases.
POLL_S = 5.0
# The shortest: rows another node is claiming right now look due already.
MIN_SLEEP_S = 0.2
# How long a domain gets fewer sessions after its server turned an extra one away while
# others were working (Postfix's concurrency feedback, simplified).
THROTTLE_S = 60.0
# A result that could not be written is tried again after this long (doubling to max).
RECORD_RETRY_S = (0.2, 5.0)
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

    Rows are claimed just in time: a few more than there are sessions, a cap per
    domain, and the leases of rows in hand renewed while this process lives, so a row
    waiting its turn behind a slow domain is never taken and sent by another worker.
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
        # Rows in hand at most (in all, and per destination); the next claim comes when
        # half of them are done, so sessions find their next job waiting.
        self.prefetch = 2 * self.settings.max_connections
        self.per_domain = 2 * self.settings.max_per_domain
        # How long a claim holds its rows without being renewed: the longest a
        # transaction can take. A dead node's rows are free again after it.
        self.lease_s = self.settings.connect_timeout_s + 10 * self.settings.timeout_s
        self._wake = asyncio.Event()
        self._waiting: dict[str, deque[Job]] = {}  # destination domain → jobs claimed
        self._runners: dict[str, int] = {}  # destination domain → sessions working it
        self._connected: dict[str, int] = {}  # destination domain → sessions open
        self._throttled: dict[str, tuple[int, float]] = {}  # domain → (limit, until)
        self._active = 0
        # Rows claimed and not yet recorded or released: all, per domain, per claim.
        self._in_hand: set[int] = set()
        self._per_domain: dict[str, int] = {}
        self._claims: dict[str, int] = {}
        self._renewed = time.monotonic()
        self._recorder = _Recorder(db, store)
        self._tasks: set[asyncio.Task[None]] = set()
        self._scheduler: asyncio.Task[None] | None = None
        self._stopping = False
        # (message id, made 7-bit) → its DKIM-Signature field
        self._signatures: OrderedDict[tuple[int, bool], bytes] = OrderedDict()

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
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in late:
                task.cancel()  # each records its rows deferred ("interrupted")
            if late:
                log.warning("stopped %d outbound transactions in flight", len(late))
                await asyncio.gather(*late, return_exceptions=True)
        # Counted after the sessions ended: one may have put its job back meanwhile.
        left = {
            row: job.token for jobs in self._waiting.values() for job in jobs for row in job.rows
        }
        for jobs in self._waiting.values():
            for job in jobs:
                self._done(job)
        self._waiting.clear()
        try:
            if left:
                await self.db.run(partial(release, rows=left), write=True)
            await asyncio.wait_for(self._recorder.close(), timeout)
        except Exception as exc:
            log.error("outbound queue: results not written at stop", exc_info=exc)

    # --- scheduling --------------------------------------------------------------------

    async def _schedule(self) -> None:
        while not self._stopping:
            self._wake.clear()
            delay = POLL_S
            try:
                if time.monotonic() - self._renewed >= self.lease_s / 3:
                    await self._renew()
                if self._backlog < self.prefetch // 2:
                    await self._claim()
                if self._backlog < self.prefetch // 2:
                    due = await self.db.run(next_due, write=False)
                    if due is not None:
                        delay = min(POLL_S, (due - datetime.now(UTC)).total_seconds())
            except Exception as exc:
                log.error("outbound queue: cannot read the queue", exc_info=exc)
            # At least a moment: rows another node is claiming, or of a domain with
            # enough in hand already, look due now.
            delay = max(delay, MIN_SLEEP_S)
            renew_in = self._renewed + self.lease_s / 3 - time.monotonic()
            delay = min(delay, max(renew_in, MIN_SLEEP_S))
            if not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    @property
    def _backlog(self) -> int:
        return len(self._in_hand)

    async def _claim(self) -> None:
        full = [domain for domain, n in self._per_domain.items() if n >= self.per_domain]
        jobs = await self.db.run(
            partial(
                claim_due,
                now=datetime.now(UTC),
                lease_s=self.lease_s,
                limit=self.prefetch - self._backlog,
                per_domain=self.per_domain,
                skip_domains=full,
                skip_rows=set(self._in_hand),
            ),
            write=True,
        )
        for job in jobs:
            self._waiting.setdefault(job.domain, deque()).append(job)
            self._in_hand.update(job.rows)
            self._per_domain[job.domain] = self._per_domain.get(job.domain, 0) + len(job.rows)
            self._claims[job.token] = self._claims.get(job.token, 0) + len(job.rows)
        self._spawn()

    def _done(self, job: Job) -> None:
        """``job``'s rows are recorded or released: no longer in hand."""
        self._let_go(job, list(job.rows))

    def _let_go(self, job: Job, rows: list[int]) -> None:
        self._in_hand.difference_update(rows)
        for counts, key in ((self._per_domain, job.domain), (self._claims, job.token)):
            counts[key] -= len(rows)
            if counts[key] <= 0:
                del counts[key]
        if self._backlog < self.prefetch // 2:
            self._wake.set()

    async def _renew(self) -> None:
        """Extend the leases of the rows in hand; forget waiting rows that were lost
        (their lease ran out while this process could not renew it)."""
        kept = await self.db.run(
            partial(renew, tokens=list(self._claims), now=datetime.now(UTC), lease_s=self.lease_s),
            write=True,
        )
        self._renewed = time.monotonic()
        for jobs in self._waiting.values():
            for job in list(jobs):
                lost = [row for row in job.rows if row not in kept]
                if lost:
                    log.warning("outbound: lease of rows %s lost; another worker has them", lost)
                    self._let_go(job, lost)
                    for row in lost:
                        del job.rows[row]
                    if not job.rows:
                        jobs.remove(job)

    def _limit(self, domain: str) -> int:
        """Sessions allowed to ``domain`` now: fewer for a while after one of its servers
        turned an extra session away while others were working."""
        throttled = self._throttled.get(domain)
        if throttled is not None:
            if throttled[1] > time.monotonic():
                return min(throttled[0], self.settings.max_per_domain)
            del self._throttled[domain]
        return self.settings.max_per_domain

    def _spawn(self) -> None:
        """Start sessions for waiting jobs, within the limits per domain and in all."""
        for domain, jobs in self._waiting.items():
            while (
                jobs
                and not self._stopping
                and self._runners.get(domain, 0) < self._limit(domain)
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
        is left (or the domain takes no more sessions); then close it."""
        line = _Line(domain)
        try:
            while job is not None:
                if not await self._attempt(job, line):
                    break
                job = self._next(domain)
        finally:
            await self._close(line)
            self._runners[domain] -= 1
            self._active -= 1
            if not self._runners[domain]:
                del self._runners[domain]
                if not self._waiting.get(domain):
                    self._waiting.pop(domain, None)
            self._spawn()

    async def _attempt(self, job: Job, line: _Line) -> bool:
        """One transaction for ``job``, whatever goes wrong: each row ends recorded
        (sent, deferred with the error, bounced) or, if ``job`` was put back to wait for
        a session, still in hand; returns False in that case (this session ends)."""
        go_on = True
        raw = b""
        try:
            try:
                raw = await asyncio.to_thread(self.store.blobs.get, job.blob)
            except FileNotFoundError:
                # Nothing can ever send it: tell the sender now rather than retry for days.
                log.error("outbound: message %d has no blob %s: bounced", job.message_id, job.blob)
                lost = Reply(554, "5.3.0 The message was lost from the mail store; not sent")
                await self._finish(job, b"", dict.fromkeys(job.rows.values(), lost))
                return True
            go_on = await self._transaction(job, raw, line)
        except asyncio.CancelledError:
            if not job.recorded:  # stopping: handed back, to be tried again soon
                stopped = Reply(451, "4.4.2 Interrupted: the mail server was stopping")
                await self._finish(job, raw, dict.fromkeys(job.rows.values(), stopped))
            raise
        except Exception as exc:
            log.error("outbound delivery to %s failed", job.domain, exc_info=exc)
            await self._close(line)
            if not job.recorded:
                error = Reply(451, f"4.3.0 Internal error: {type(exc).__name__}: {exc}")
                await self._finish(job, raw, dict.fromkeys(job.rows.values(), error))
        finally:
            if go_on:
                self._done(job)
        return go_on

    async def _transaction(self, job: Job, raw: bytes, line: _Line) -> bool:
        """Send ``job`` on ``line``'s session (opened if needed) and record the replies;
        False if it was put back because the domain takes no more sessions now."""
        if _hops(raw) > self.settings.max_hops:
            reply = Reply(554, f"5.4.6 Too many hops (over {self.settings.max_hops}): mail loop")
            await self._finish(job, raw, dict.fromkeys(job.rows.values(), reply))
            return True
        if line.session is not None:
            try:
                await line.session.reset()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                await self._close(line)
        if line.session is None:
            try:
                line.session = await self._open(job.domain)
            except Failure as failure:
                if not failure.reply.permanent and self._connected.get(job.domain, 0):
                    # Other sessions deliver fine: this server caps connections (a 421 to
                    # the extra ones). Wait for a free session, and open fewer a while.
                    log.info("outbound: %s takes fewer sessions: %s", job.domain, failure)
                    self._throttle(job.domain)
                    self._waiting.setdefault(job.domain, deque()).appendleft(job)
                    return False
                await self._finish(job, raw, dict.fromkeys(job.rows.values(), failure.reply))
                await self._fail_waiting(job.domain, failure.reply)
                return True
            self._connected[job.domain] = self._connected.get(job.domain, 0) + 1
        session = line.session
        recipients = list(dict.fromkeys(job.rows.values()))
        # Signed as it is sent: 7-bit for a server without 8BITMIME (when the message
        # cannot be made 7-bit, send() refuses it with 5.6.3).
        data = await self._signed(job, raw, seven_bit=not session.eight_bit_ok)
        try:
            replies = await session.send(job.sender, recipients, data)
        except Failure as failure:
            replies = dict.fromkeys(recipients, failure.reply)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # Recipients without a reply are undecided: deferred below (4.4.2).
            relay = session.host.relay
            lost = Reply(451, f"4.4.2 {relay}: connection lost: {exc}", relay)
            replies = dict.fromkeys(recipients, lost)
            await self._close(line)
        await self._finish(job, raw, replies)
        return True

    async def _open(self, domain: str) -> Session:
        return await connect(await route(domain, self.cfg, self.resolver, self.sts), self.cfg)

    async def _close(self, line: _Line) -> None:
        if line.session is None:
            return
        session, line.session = line.session, None
        self._connected[line.domain] -= 1
        if not self._connected[line.domain]:
            del self._connected[line.domain]
        await session.close()

    def _throttle(self, domain: str) -> None:
        limit = max(1, self._connected.get(domain, 0))
        self._throttled[domain] = (limit, time.monotonic() + THROTTLE_S)

    async def _fail_waiting(self, domain: str, reply: Reply) -> None:
        """The destination cannot be reached now (or ever), and no session to it works:
        the jobs waiting for it get the same answer instead of each trying again at
        once, as Postfix does."""
        while (job := self._next(domain)) is not None:
            try:
                try:
                    raw = await asyncio.to_thread(self.store.blobs.get, job.blob)
                except OSError:
                    raw = b""  # found missing at its own attempt next time
                await self._finish(job, raw, dict.fromkeys(job.rows.values(), reply))
            finally:
                self._done(job)

    async def _signed(self, job: Job, raw: bytes, *, seven_bit: bool) -> bytes:
        """The message as it leaves: without the Return-Path of our store (the last MTA
        adds its own), made 7-bit if asked and possible, with a DKIM signature made once
        per message (and form)."""
        data = _without_return_path(raw)
        downgrade = seven_bit and not data.isascii()
        if downgrade:
            seven = await asyncio.to_thread(downgrade_8bit, data)
            data = seven if seven is not None else data
        key = (job.message_id, downgrade)
        signature = self._signatures.get(key)
        if signature is None:
            signature = await asyncio.to_thread(self.signer.sign, data)
            self._signatures[key] = signature
            if len(self._signatures) > 1000:
                self._signatures.popitem(last=False)
        else:
            self._signatures.move_to_end(key)
        return signature + data

    # --- results -----------------------------------------------------------------------

    async def _finish(self, job: Job, raw: bytes, replies: dict[str, Reply]) -> None:
        """Record each row's reply: sent, retried later (with a delay warning once it is
        late) or bounced, telling the sender in the same transaction. Returns once that
        is committed; cancelling the caller does not stop it."""
        now = datetime.now(UTC)
        age = (now - job.created_at).total_seconds()
        settings = self.settings
        results: list[Result] = []
        failed: list[FailedRecipient] = []
        late: list[FailedRecipient] = []
        for row, recipient in job.rows.items():
            reply = replies.get(recipient) or Reply(451, "4.4.2 no reply")
            if 200 <= reply.code < 300:
                results.append(Result(row, job.token, "sent", relay=reply.relay or None))
                log.info("to=<%s> relay=%s status=sent (%s)", recipient, reply.relay, reply)
            elif reply.permanent or age >= settings.bounce_after_s:
                failed.append(_failed(recipient, reply, expired=not reply.permanent))
                results.append(Result(row, job.token, "bounced", str(reply), reply.relay or None))
                log.warning("to=<%s> relay=%s status=bounced (%s)", recipient, reply.relay, reply)
            else:
                attempts = job.attempts[row] + 1
                wait = min(settings.retry_max_s, settings.retry_min_s * 2 ** (attempts - 1))
                warn = bool(job.sender) and not job.warned and age >= settings.delay_warning_s
                if warn:
                    late.append(_failed(recipient, reply, delayed=True))
                retry_at = now + timedelta(seconds=wait)
                results.append(
                    Result(
                        row, job.token, "deferred", str(reply), reply.relay or None, retry_at, warn
                    )
                )
                log.info("to=<%s> relay=%s status=deferred (%s)", recipient, reply.relay, reply)
        item = _Results(job, results)
        try:
            if failed:
                item.bounce = await self.store.bounce(
                    job.sender, failed, raw, arrived=job.created_at, last_attempt=now
                )
            if late:
                until = job.created_at + timedelta(seconds=settings.bounce_after_s)
                item.warning = await self.store.bounce(
                    job.sender,
                    late,
                    raw,
                    delayed_until=until,
                    arrived=job.created_at,
                    last_attempt=now,
                )
        except Exception as exc:
            # The sender cannot be told now: nothing is final until they can be.
            log.error("outbound: cannot make the notice to <%s>", job.sender, exc_info=exc)
            retry_at = now + timedelta(seconds=settings.retry_min_s)
            item = _Results(job, [_untold(r, retry_at) for r in results])
        job.recorded = True
        await self._recorder.write(item)
        job.warned = job.warned or item.warning is not None


@dataclass
class _Line:
    """One worker's session to a destination (None between sessions)."""

    domain: str
    session: Session | None = None


def _untold(result: Result, retry_at: datetime) -> Result:
    if result.status == "sent":
        return result
    return replace(result, status="deferred", next_attempt_at=retry_at, warned=False)


@dataclass
class _Results:
    """One attempt's results, with the notices they cause (to commit together)."""

    job: Job
    results: list[Result]
    bounce: Delivery | None = None
    warning: Delivery | None = None
    failures: int = 0
    done: asyncio.Future[None] | None = None


class _Recorder:
    """Writes the workers' results in shared transactions, each result with the bounce
    or delay notice it causes (a crash between them would repeat the notice). Results
    that finish while one transaction commits go together in the next, so a burst of N
    deliveries costs a few commits (and fsyncs), not N.

    ``write`` returns once its results are committed. A failed write is tried again
    until it commits (a remote 250 must be recorded, or the mail would go twice), and
    cancelling the caller does not stop it; ``close`` waits for what was handed over.
    """

    def __init__(self, db: Database, store: MailStore, max_rows: int = 200) -> None:
        self.db = db
        self.store = store
        self.max_rows = max_rows
        self._pending: list[_Results] = []
        self._task: asyncio.Task[None] | None = None

    async def write(self, item: _Results) -> None:
        item.done = asyncio.get_running_loop().create_future()
        self._pending.append(item)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        await asyncio.shield(item.done)

    async def close(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _drain(self) -> None:
        pause = RECORD_RETRY_S[0]
        while self._pending:
            batch: list[_Results] = []
            rows = 0
            while self._pending and (
                not batch or rows + len(self._pending[0].results) <= self.max_rows
            ):
                batch.append(self._pending.pop(0))
                rows += len(batch[-1].results)
            failed: list[_Results] = []
            try:
                await self._commit(batch)
            except Exception as exc:
                log.error("outbound queue: cannot record results", exc_info=exc)
                for item in batch if len(batch) > 1 else ():
                    try:  # alone: one bad notice must not hold back the others
                        await self._commit([item])
                    except Exception:
                        failed.append(item)
                failed = failed if len(batch) > 1 else batch
            for item in failed:
                item.failures += 1
                if item.failures >= 3 and (item.bounce or item.warning):
                    log.error(
                        "outbound: notice to <%s> dropped: it cannot be stored", item.job.sender
                    )
                    item.bounce = item.warning = None
            if failed:
                self._pending[:0] = failed
                await asyncio.sleep(pause)
                pause = min(2 * pause, RECORD_RETRY_S[1])
            else:
                pause = RECORD_RETRY_S[0]

    async def _commit(self, batch: list[_Results]) -> None:
        told = await self.db.run(
            partial(_write_results, batch=batch, now=datetime.now(UTC)), write=True
        )
        for item in batch:
            if item.done is not None and not item.done.done():
                item.done.set_result(None)
        # Announced as GroupCommit does: IMAP IDLE sessions, and the outbound workers
        # for a notice to a remote sender.
        self.store.changes.publish({box for d in told for box in d.inbox})
        if any(d.outbound for d in told) and self.store.commits.on_queued is not None:
            self.store.commits.on_queued()


def _write_results(conn: Connection, batch: list[_Results], now: datetime) -> list[Delivery]:
    """Record ``batch`` in the caller's transaction with the notices it causes, for rows
    still held by the claim that tried them; returns the notices delivered."""
    results = [r for item in batch for r in item.results]
    mine = held(conn, {r.row: r.token for r in results})
    if len(mine) < len(results):
        log.warning(
            "outbound: %d results ignored: their claim no longer holds the rows",
            len(results) - len(mine),
        )
    notices: list[tuple[Delivery, _Results, bool]] = []  # notice, its item, a warning?
    # One delay notice per message, in this batch too: the items of a message whose
    # notice goes out are told or not with it.
    warned: dict[tuple[int, str], list[_Results]] = {}
    for item in batch:
        if not any(r.row in mine for r in item.results):
            continue
        if item.bounce is not None:
            notices.append((item.bounce, item, False))
        about = (item.job.message_id, item.job.sender)
        if item.warning is not None:
            if about in warned:
                warned[about].append(item)
            elif not warned_before(conn, *about, item.job.rows):
                warned[about] = [item]
                notices.append((item.warning, item, True))
    untold: set[int] = set()
    told: list[Delivery] = []
    outcomes = deliver_batch(conn, [d for d, _, _ in notices]) if notices else []
    for (notice, item, warning), outcome in zip(notices, outcomes, strict=True):
        if outcome.refused:  # the local sender's mailbox is full or disabled
            why = ", ".join(r.value for r in outcome.refused.values())
            log.warning(
                "outbound: notice to <%s> refused by their mailbox (%s)", item.job.sender, why
            )
            if warning:  # not told: warned at a later attempt
                about = (item.job.message_id, item.job.sender)
                untold.update(r.row for same in warned[about] for r in same.results)
        else:
            told.append(notice)
    record(
        conn,
        [replace(r, warned=False) if r.row in untold else r for r in results if r.row in mine],
        now=now,
    )
    return told


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
