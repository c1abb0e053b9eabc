"""Figures of the SMTP delivery issue: govmail against Postfix + Dovecot, side by side.

In one run, on the same machine and with the same load generator (Postfix's
``smtp-source``, which costs the client almost nothing), it measures for govmail
(``govmail serve``, a fresh data directory per run) and for the reference stack
(/work/shared/reference: Postfix on 127.0.0.1:12525 delivering by LMTP to Dovecot's
Maildirs under /var/tmp/refmail):
1. delivered messages per second end to end, from the first SMTP connect until every
   message is in its recipient's mailbox (govmail: rows of ``folder_messages`` in INBOX
   folders; reference: files in the Maildirs), for each message size and concurrency,
   with the server CPU seconds per delivered message (utime+stime from /proc; for
   Postfix + Dovecot summed over both process trees, reaped children included) and
   govmail's peak RSS;
2. one message to 1,000 local recipients (and to 100, the reference's user count):
   seconds from DATA to 250 and to all delivered, and what it stored (blob files and
   bytes, ``messages`` rows; Maildir files, bytes and distinct inodes).
Every run checks that each message sent was accepted and delivered exactly once.
Usage: ``.venv/bin/python bench/smtp_delivery.py [--git-rev REV] [--database-url URL]
[--profile]`` (as root, for ``reference-stack.sh reset``; ``--help`` for the rest).
Results are printed and written to bench/results/smtp_delivery.json (``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import re
import resource
import shutil
import signal
import smtplib
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from govmail.core.sample import generate_officials

GOVMAIL = [sys.executable, "-m", "govmail"]
REFERENCE = Path("/work/shared/reference")
REF_DOMAIN = "ref.test"
REF_SMTP_PORT = 12525
REF_MAILDIRS = Path("/var/tmp/refmail") / REF_DOMAIN
REF_USERS_TABLE = Path("/var/tmp/refstack/vmailbox")
REF_PIDFILES = (Path("/var/spool/postfix/pid/master.pid"), Path("/run/dovecot-ref/master.pid"))
BENCH_DOMAIN = "bench.test"
SENDER = "loadgen@client.test"
HELO = "loadgen.client.test"
TICK = os.sysconf("SC_CLK_TCK")
REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"


class BenchError(Exception):
    """A run that did not deliver what it sent, or a server that did not behave."""


# --- /proc ---------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[int, int]:
    """(ppid, CPU ticks of the process and of its reaped children)."""
    data = Path(f"/proc/{pid}/stat").read_bytes()
    fields = data[data.rindex(b")") + 2 :].split()
    return int(fields[1]), sum(int(x) for x in fields[11:15])


def tree_cpu_s(roots: Iterable[int]) -> dict[int, float]:
    """CPU seconds used so far by the process tree under each of ``roots`` (reaped
    children included, through their parents' cutime and cstime)."""
    procs: dict[int, tuple[int, int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError, ValueError):
                procs[int(name)] = _proc_stat(int(name))
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    found = {}
    for root in roots:
        stack, seen, ticks = [root] if root in procs else [], set(), 0
        while stack:
            pid = stack.pop()
            if pid not in seen:
                seen.add(pid)
                ticks += procs[pid][1]
                stack.extend(children.get(pid, []))
        found[root] = ticks / TICK
    return found


def machine_ticks() -> tuple[int, int]:
    """(all, idle) CPU ticks of the machine."""
    with open("/proc/stat") as fh:
        values = [int(x) for x in fh.readline().split()[1:]]
    return sum(values[:8]), values[3] + values[4]


def memory_kb(pid: int, key: str) -> int:
    """A /proc/PID/status memory figure (VmRSS, VmHWM) in kB; 0 once the process is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


async def quiet_machine(below_pct: float, patience_s: float) -> float:
    """Wait until the machine was less than ``below_pct`` busy over two seconds (others'
    work skews every figure on 2 cores), or ``patience_s`` passed; returns the last busy
    percentage seen."""
    deadline = time.perf_counter() + patience_s
    while True:
        a = machine_ticks()
        await asyncio.sleep(2)
        b = machine_ticks()
        busy = round(100.0 * (1 - (b[1] - a[1]) / max(1, b[0] - a[0])), 1)
        if busy < below_pct or time.perf_counter() > deadline:
            if busy >= below_pct:
                print(f"  (machine still {busy:.0f}% busy before this run)", flush=True)
            return busy
        await asyncio.sleep(3)


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds so far of each part of a server, of the machine and of our children."""

    at: float
    parts: dict[str, dict[int, float]]  # part → root pid → seconds
    machine: tuple[int, int]
    loadgen_s: float

    @classmethod
    async def take(cls, target: Target) -> CpuSnapshot:
        roots = await target.cpu_roots()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(
            time.perf_counter(),
            {part: tree_cpu_s(pids) for part, pids in roots.items()},
            machine_ticks(),
            usage.ru_utime + usage.ru_stime,
        )


def cpu_window(a: CpuSnapshot, b: CpuSnapshot) -> dict[str, float]:
    """Server CPU seconds (in total and by part), load generator's, machine busy %."""
    total, idle = b.machine[0] - a.machine[0], b.machine[1] - a.machine[1]
    # Per root: a tree that exited during the window is lost, one that started counts whole.
    parts = {
        f"{part}_cpu_s": round(
            sum(s - a.parts.get(part, {}).get(root, 0.0) for root, s in roots.items()), 3
        )
        for part, roots in b.parts.items()
    }
    return {
        "server_cpu_s": round(sum(parts.values()), 3),
        **parts,
        "loadgen_cpu_s": round(b.loadgen_s - a.loadgen_s, 3),
        "machine_busy_pct": round(100.0 * (1 - idle / max(1, total)), 1),
    }


# --- the two systems -----------------------------------------------------------------


@dataclass(frozen=True)
class Storage:
    """What a mail store holds: message files and bytes, and (govmail) metadata rows."""

    files: int
    bytes: int
    distinct_bytes: int  # counting each inode once (Maildir hard links)
    message_rows: int | None = None


class Target(Protocol):
    """A mail server under test, as the runs see it."""

    name: str
    port: int
    domain: str

    async def cpu_roots(self) -> dict[str, list[int]]:
        """The process trees whose CPU is the server's, by part."""
        ...

    def rss_pid(self) -> int | None: ...

    async def delivered(self, users: int) -> int:
        """Messages in the mailboxes user1..user<users> (all of them where the store is
        private to the run)."""
        ...

    async def storage(self, users: int) -> Storage:
        """What the store holds for those mailboxes."""
        ...


def file_storage(paths: Iterable[Path]) -> tuple[int, int, int]:
    """(files, bytes, bytes counting each inode once) of the regular files in ``paths``."""
    files = size = 0
    inodes: dict[tuple[int, int], int] = {}
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            st = path.stat()
            files += 1
            size += st.st_size
            inodes[(st.st_dev, st.st_ino)] = st.st_size
    return files, size, sum(inodes.values())


class ReferenceStack:
    """Postfix + Dovecot as reference-stack.sh runs them (already started)."""

    name = "reference"
    port = REF_SMTP_PORT
    domain = REF_DOMAIN

    @staticmethod
    def users() -> int:
        """How many userN@ref.test the stack knows (REF_USERS when it was configured)."""
        try:
            return sum(1 for line in REF_USERS_TABLE.read_text().splitlines() if line.strip())
        except OSError:
            return 100

    def reset(self) -> None:
        """Empty the queue and every mailbox."""
        subprocess.run(
            ["bash", str(REFERENCE / "reference-stack.sh"), "reset"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def cpu_roots(self) -> dict[str, list[int]]:
        roots = {}
        for part, pidfile in zip(("postfix", "dovecot"), REF_PIDFILES, strict=True):
            try:
                roots[part] = [int(pidfile.read_text().split()[0])]
            except (OSError, ValueError, IndexError):
                raise BenchError(f"reference stack not running ({pidfile} unreadable)") from None
        return roots

    def rss_pid(self) -> int | None:
        return None

    def _message_files(self, users: int) -> Iterable[Path]:
        # Only our recipients' Maildirs: other sessions may use the stack's other users.
        for i in range(1, users + 1):
            for sub in ("new", "cur"):
                with contextlib.suppress(FileNotFoundError):
                    maildir = REF_MAILDIRS / f"user{i}" / "Maildir" / sub
                    yield from (Path(e.path) for e in os.scandir(maildir))

    async def delivered(self, users: int) -> int:
        return sum(1 for _ in self._message_files(users))

    async def storage(self, users: int) -> Storage:
        return Storage(*file_storage(self._message_files(users)))


class GovmailServer:
    """``govmail serve`` on a fresh data directory with mailboxes user1..userN."""

    name = "govmail"
    domain = BENCH_DOMAIN

    def __init__(self, work: Path, mailboxes: int, database_url: str | None) -> None:
        self.data = Path(tempfile.mkdtemp(prefix="data-", dir=work))
        self.mailboxes = mailboxes
        self.database_url = database_url
        self.env = {k: v for k, v in os.environ.items() if k != "GOVMAIL_DATABASE_URL"}
        if database_url:
            self.env["GOVMAIL_DATABASE_URL"] = database_url
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._sqlite: sqlite3.Connection | None = None
        self._pg: Any = None
        self._postmaster = 0

    def _cli(self, *args: str) -> str:
        done = subprocess.run(
            [*GOVMAIL, *args, "--data", str(self.data), "--json"],
            env=self.env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise BenchError(f"govmail {' '.join(args)} failed: {done.stderr or done.stdout}")
        return done.stdout

    def prepare(self, max_connections: int, max_recipients: int) -> None:
        """init, one agency, import the officials, and lift the [smtp] limits we need."""
        self._cli("init", "--domain", BENCH_DOMAIN)
        self._cli("agency", "add", "--name", "Cơ quan đo hiệu năng", "--abbr", "bench")
        staff = self.data / "staff.csv"
        with staff.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["Họ và tên", "Chức vụ", "Bộ phận công tác", "Địa chỉ hộp thư"])
            for i, o in enumerate(generate_officials(self.mailboxes), 1):
                writer.writerow([o.full_name, o.position, o.department, f"user{i}"])
        report = json.loads(self._cli("import", "officials", str(staff), "--agency", "bench"))
        if len(report["created"]) != self.mailboxes:
            raise BenchError(f"import created {len(report['created'])} of {self.mailboxes}")
        config = self.data / "govmail.toml"
        text = config.read_text(encoding="utf-8")
        for key, value in (
            ("max_connections_per_ip", max(100, 2 * max_connections)),
            ("max_recipients", max(500, max_recipients)),
        ):
            text, n = re.subn(rf"(?m)^{key} = \d+$", f"{key} = {value}", text)
            if n != 1:
                raise BenchError(f"cannot set [smtp] {key} in {config}")
        config.write_text(text, encoding="utf-8")

    async def start(self) -> None:
        listen = ("--web", "--smtp", "--submission", "--submissions")
        self.process = subprocess.Popen(
            [*GOVMAIL, "serve", "--data", str(self.data), "--json"]
            + [arg for flag in listen for arg in (flag, "127.0.0.1:0")],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=(self.data / "serve.log").open("wb"),
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.process.stdout.readline), 60)
        if not line:
            raise BenchError(f"govmail serve did not start:\n{self.log_tail()}")
        self.port = int(json.loads(line)["listening"]["smtp"].rpartition(":")[2])
        if self.database_url:
            self._pg = await asyncpg.connect(_asyncpg_dsn(self.database_url))
            backend = await self._pg.fetchval("SELECT pg_backend_pid()")
            self._postmaster = _proc_stat(backend)[0]  # a local server, seen from /proc
        else:
            self._sqlite = sqlite3.connect(f"file:{self.data / 'govmail.db'}?mode=ro", uri=True)

    async def stop(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            await self._pg.close()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, 30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        log = self.data / "serve.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            raise BenchError(f"govmail serve exited:\n{self.log_tail()}")

    async def cpu_roots(self) -> dict[str, list[int]]:
        """The server process; on PostgreSQL also the whole PostgreSQL server (its
        postmaster's tree: govmail's pool opens and closes backends under load, so they
        cannot be followed one by one; another database's work there counts too)."""
        roots = {"govmail": [self.pid]}
        if self._postmaster:
            roots["postgres"] = [self._postmaster]
        return roots

    def rss_pid(self) -> int | None:
        return self.pid

    @property
    def pid(self) -> int:
        if self.process is None:
            raise BenchError("govmail serve not started")
        return self.process.pid

    async def _scalar(self, sql: str) -> int:
        if self._pg is not None:
            return int(await self._pg.fetchval(sql))
        assert self._sqlite is not None
        return int(self._sqlite.execute(sql).fetchone()[0])

    async def delivered(self, users: int) -> int:
        return await self._scalar(
            "SELECT count(*) FROM folder_messages fm JOIN folders f ON f.id = fm.folder_id"
            " WHERE f.name = 'INBOX'"
        )

    async def storage(self, users: int) -> Storage:
        blobs = self.data / "blobs"
        paths = (
            Path(root, name)
            for root, dirs, names in os.walk(blobs)
            if Path(root) != blobs / "tmp"
            for name in names
        )
        rows = await self._scalar("SELECT count(*) FROM messages")
        return Storage(*file_storage(paths), message_rows=rows)


def _asyncpg_dsn(url: str) -> str:
    return re.sub(r"^postgresql\+asyncpg://", "postgresql://", url)


async def fresh_pg_database(url: str) -> None:
    """Drop and recreate the database named in ``url`` (admin connection to 'postgres')."""
    dsn = _asyncpg_dsn(url)
    head, _, name = dsn.rpartition("/")
    name = name.split("?")[0]
    conn = await asyncpg.connect(f"{head}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def govmail_server(
    args: argparse.Namespace, work: Path, mailboxes: int, max_recipients: int = 500
) -> AsyncIterator[GovmailServer]:
    """A prepared, started govmail; stopped (and its data removed) afterwards."""
    if args.database_url:
        await fresh_pg_database(args.database_url)
    server = GovmailServer(work, mailboxes, args.database_url)
    try:
        await asyncio.to_thread(server.prepare, max(args.concurrency), max_recipients)
        await server.start()
        yield server
    finally:
        await server.stop()
        shutil.rmtree(server.data, ignore_errors=True)


# --- load ----------------------------------------------------------------------------


def split(total: int, parts: int) -> list[int]:
    """``total`` in ``parts`` near-equal whole shares."""
    return [total // parts + (i < total % parts) for i in range(parts)]


async def smtp_source(target: Target, messages: int, size: int, sessions: int, spread: int) -> None:
    """Send ``messages`` of ``size`` payload bytes over ``sessions`` connections with
    smtp-source, one process per recipient user1..user<spread>; raises unless every
    process exits 0 (smtp-source aborts on any reply other than the expected one)."""
    exe = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    procs = []
    for i, (n_sessions, n_messages) in enumerate(
        zip(split(sessions, spread), split(messages, spread), strict=True), 1
    ):
        if n_messages == 0:
            continue
        cmd = [exe, "-4", "-d", "-s", str(n_sessions), "-m", str(n_messages), "-l", str(size)]
        cmd += ["-f", SENDER, "-M", HELO, "-t", f"user{i}@{target.domain}"]
        procs.append(
            await asyncio.create_subprocess_exec(
                *cmd,
                f"127.0.0.1:{target.port}",
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        )
    failures = []
    for proc in procs:
        _, err = await proc.communicate()
        if proc.returncode != 0:
            failures.append(err.decode(errors="replace").strip()[-500:])
    if failures:
        raise BenchError(f"{target.name}: smtp-source failed: {failures[0]}")


async def wait_delivered(target: Target, users: int, expected: int, stall_s: float) -> CpuSnapshot:
    """Poll until ``expected`` messages are delivered; returns the CPU snapshot taken when
    that was seen. Raises if the count stops moving for ``stall_s`` seconds short of it,
    or stays above it (a message delivered twice) for a second, then or half a second
    later (another session's message, appended and expunged, passes)."""
    last, last_change = -1, time.perf_counter()
    reached: CpuSnapshot | None = None
    over_since: float | None = None
    while True:
        n = await target.delivered(users)
        now = time.perf_counter()
        if n == expected:
            over_since = None
            if reached:
                return reached
            reached = await CpuSnapshot.take(target)
            await asyncio.sleep(0.5)  # then count again: nothing more may arrive
            continue
        if n > expected:
            over_since = over_since or now
            if now - over_since > 1.0:
                raise BenchError(f"{target.name}: {n} delivered, {expected} sent (duplicates?)")
        else:
            over_since = None
            reached = None  # fewer than a moment ago: someone else's message went away
        if n != last:
            last, last_change = n, now
        elif now - last_change > stall_s:
            raise BenchError(f"{target.name}: stuck at {n} of {expected} delivered")
        await asyncio.sleep(0.05)


async def sample_rss(pid: int | None, peak: list[int]) -> None:
    """Keep the highest VmRSS of ``pid`` in ``peak[0]`` until cancelled."""
    while pid is not None:
        peak[0] = max(peak[0], memory_kb(pid, "VmRSS"))
        await asyncio.sleep(0.1)


@dataclass
class Run:
    """One measured cell run on one system."""

    system: str
    size: int
    concurrency: int
    rep: int
    messages: int
    accept_s: float
    delivered_s: float
    delivered_per_s: float
    accepted_per_s: float
    cpu_ms_per_msg: float
    cpu: dict[str, float]
    peak_rss_mb: float | None = None
    hwm_rss_mb: float | None = None
    busy_before_pct: float | None = None  # the machine, just before the run


async def measure(target: Target, size: int, conc: int, rep: int, args: argparse.Namespace) -> Run:
    """Warm up, then send the cell's messages and wait until all are delivered."""
    spread = min(args.recipients, conc)
    if args.warmup:
        base = await target.delivered(spread)
        await smtp_source(target, args.warmup, size, conc, spread)
        await wait_delivered(target, spread, base + args.warmup, args.stall_timeout)
    n = args.messages or default_messages(size)
    busy_before = await quiet_machine(args.quiet_below, args.quiet_wait)
    base = await target.delivered(spread)
    peak = [0]
    sampler = asyncio.create_task(sample_rss(target.rss_pid(), peak))
    before = await CpuSnapshot.take(target)
    try:
        await smtp_source(target, n, size, conc, spread)
        accepted = time.perf_counter()
        after = await wait_delivered(target, spread, base + n, args.stall_timeout)
    finally:
        sampler.cancel()
    window = cpu_window(before, after)
    pid = target.rss_pid()
    run = Run(
        system=target.name,
        size=size,
        concurrency=conc,
        rep=rep,
        messages=n,
        accept_s=round(accepted - before.at, 3),
        delivered_s=round(after.at - before.at, 3),
        delivered_per_s=round(n / (after.at - before.at), 1),
        accepted_per_s=round(n / (accepted - before.at), 1),
        cpu_ms_per_msg=round(1000 * window["server_cpu_s"] / n, 3),
        cpu=window,
        peak_rss_mb=round(peak[0] / 1024, 1) if pid else None,
        hwm_rss_mb=round(memory_kb(pid, "VmHWM") / 1024, 1) if pid else None,
        busy_before_pct=busy_before,
    )
    rss = f", peak RSS {run.peak_rss_mb} MB" if pid else ""
    print(
        f"  {run.system:9} {size:6d} B C={conc:2d} rep {rep}: {run.delivered_per_s:7.1f}"
        f" delivered/s (accepted {run.accepted_per_s:.1f}/s), server CPU"
        f" {run.cpu_ms_per_msg:.2f} ms/msg, machine {window['machine_busy_pct']:.0f}% busy{rss}",
        flush=True,
    )
    return run


def default_messages(size: int) -> int:
    """Enough for ~10-30 s per cell on a 2-core machine."""
    return 5000 if size <= 16384 else 4000


# --- fan-out -------------------------------------------------------------------------


@dataclass
class Fanout:
    """One message to many local recipients."""

    system: str
    recipients: int
    size: int
    rep: int
    data_to_250_s: float
    data_to_delivered_s: float
    files: int
    bytes: int
    distinct_bytes: int
    message_rows: int | None
    cpu_s: float


def fanout_message(domain: str, size: int) -> bytes:
    head = (
        f"From: <{SENDER}>\r\nTo: <everyone@{domain}>\r\nSubject: fan-out\r\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
        f"Message-ID: <fanout.{time.time_ns()}@{HELO}>\r\n\r\n"
    ).encode()
    line = b"x" * 76 + b"\r\n"
    return head + line * max(1, (size - len(head)) // len(line))


def send_fanout(port: int, recipients: list[str], raw: bytes) -> tuple[float, float]:
    """One SMTP transaction; returns (perf_counter at DATA, at its 250)."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname=HELO, timeout=300) as smtp:
        smtp.ehlo()
        code, text = smtp.mail(SENDER)
        if code != 250:
            raise BenchError(f"MAIL FROM refused: {code} {text!r}")
        for rcpt in recipients:
            code, text = smtp.rcpt(rcpt)
            if code != 250:
                raise BenchError(f"RCPT TO {rcpt} refused: {code} {text!r}")
        started = time.perf_counter()
        code, text = smtp.data(raw)
        if code != 250:
            raise BenchError(f"DATA refused: {code} {text!r}")
        return started, time.perf_counter()


async def measure_fanout(
    target: Target, recipients: int, size: int, rep: int, args: argparse.Namespace
) -> Fanout:
    rcpts = [f"user{i}@{target.domain}" for i in range(1, recipients + 1)]
    await quiet_machine(args.quiet_below, args.quiet_wait)
    base, before = await target.delivered(recipients), await target.storage(recipients)
    cpu0 = await CpuSnapshot.take(target)
    started, accepted = await asyncio.to_thread(
        send_fanout, target.port, rcpts, fanout_message(target.domain, size)
    )
    reached = await wait_delivered(target, recipients, base + recipients, args.stall_timeout)
    done = reached.at
    cpu = cpu_window(cpu0, reached)["server_cpu_s"]
    after = await target.storage(recipients)
    rows = (
        after.message_rows - before.message_rows
        if after.message_rows is not None and before.message_rows is not None
        else None
    )
    result = Fanout(
        system=target.name,
        recipients=recipients,
        size=size,
        rep=rep,
        data_to_250_s=round(accepted - started, 4),
        data_to_delivered_s=round(done - started, 4),
        files=after.files - before.files,
        bytes=after.bytes - before.bytes,
        distinct_bytes=after.distinct_bytes - before.distinct_bytes,
        message_rows=rows,
        cpu_s=round(cpu, 3),
    )
    print(
        f"  {target.name:9} 1 message x {recipients} recipients rep {rep}: DATA->250"
        f" {result.data_to_250_s:.3f} s, all delivered {result.data_to_delivered_s:.3f} s,"
        f" {result.files} files, {result.distinct_bytes / 1e6:.2f} MB stored",
        flush=True,
    )
    return result


# --- profile -------------------------------------------------------------------------


async def profile_govmail(
    args: argparse.Namespace, work: Path, size: int, conc: int
) -> dict[str, Any]:
    """An extra, unrecorded govmail run under py-spy; where its samples were. ``wall``
    samples every thread that is not idle (time, waits in fsync included); ``gil`` only
    the thread holding the GIL (where the Python CPU goes)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    raw = args.out.with_name(f"{args.out.stem}-profile-{args.profile}.txt")
    mode = ["--gil"] if args.profile == "gil" else []
    async with govmail_server(args, work, 100) as server:
        n = args.messages or default_messages(size)
        record = await asyncio.create_subprocess_exec(
            *(spy, "record", "--pid", str(server.pid)),
            *("--duration", str(args.profile_seconds), "--rate", "200"),
            *("--format", "raw", "-o", str(raw), *mode),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        spread = min(args.recipients, conc)
        base = await server.delivered(spread)
        await smtp_source(server, n, size, conc, spread)
        await wait_delivered(server, spread, base + n, args.stall_timeout)
        _, err = await record.communicate()
        if record.returncode != 0:
            raise BenchError(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
    summary = summarise_stacks(raw.read_text().splitlines())
    summary["raw"] = str(raw)
    return summary


# Leaf frames of pool threads waiting for work (blocked in C, so py-spy counts them).
IDLE_LEAVES = (
    "_worker (concurrent/futures/thread.py)",
    "_connection_worker_thread (aiosqlite/core.py)",
)


def summarise_stacks(lines: list[str], top: int = 20) -> dict[str, Any]:
    """Shares of py-spy's collapsed stacks ('a;b;c count') among the busy samples (idle
    pool threads left out): by leaf with its two callers, and inclusive per govmail
    function."""
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = idle = 0
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_frame_name(f) for f in stack.split(";")]
        if frames[-1] in IDLE_LEAVES:
            idle += int(count)
            continue
        total += int(count)
        leaves[" <- ".join(frames[-1:-4:-1])] += int(count)
        for frame in set(frames):
            if "(govmail/" in frame and not re.search(r"govmail/(cli/|serve\.py|__main__)", frame):
                inclusive[frame] += int(count)

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(f, round(100 * c / max(1, total), 1)) for f, c in counter.most_common(top)]

    return {
        "busy_samples": total,
        "idle_samples": idle,
        "leaf_pct": shares(leaves),
        "govmail_inclusive_pct": shares(inclusive),
    }


def _frame_name(frame: str) -> str:
    """'handle_DATA (govmail/smtp/handler.py:270)' → 'handle_DATA (govmail/smtp/handler.py)'."""
    frame = re.sub(r":\d+\)$", ")", frame.strip())
    return re.sub(r"\(.*?/(site-packages|src|lib/python3\.\d+)/", "(", frame)


# --- report --------------------------------------------------------------------------


def median(values: Iterable[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return statistics.median(found) if found else None


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "—" if value is None else format(value, spec)


def cell_summary(runs: list[Run], sizes: list[int], concs: list[int]) -> list[dict[str, Any]]:
    cells = []
    for size in sizes:
        for conc in concs:

            def pick(system: str, attr: str, size: int = size, conc: int = conc) -> list[Any]:
                return [
                    getattr(r, attr)
                    for r in runs
                    if (r.system, r.size, r.concurrency) == (system, size, conc)
                ]

            cell: dict[str, Any] = {"size": size, "concurrency": conc}
            for system in ("govmail", "reference"):
                for attr in ("delivered_per_s", "accepted_per_s", "cpu_ms_per_msg"):
                    cell[f"{system}_{attr}"] = median(pick(system, attr))
                cell[f"{system}_delivered_runs"] = pick(system, "delivered_per_s")
            cell["govmail_peak_rss_mb"] = max(pick("govmail", "peak_rss_mb"), default=None)
            cell["govmail_hwm_rss_mb"] = max(pick("govmail", "hwm_rss_mb"), default=None)
            g, r = cell["govmail_delivered_per_s"], cell["reference_delivered_per_s"]
            cell["ratio"] = round(g / r, 2) if g and r else None
            gc, rc = cell["govmail_cpu_ms_per_msg"], cell["reference_cpu_ms_per_msg"]
            cell["cpu_ratio"] = round(gc / rc, 2) if gc and rc else None
            cells.append(cell)
    return cells


def print_tables(cells: list[dict[str, Any]], fanouts: list[Fanout]) -> None:
    print(
        "\n| size | C | govmail delivered/s (runs) | reference delivered/s (runs) | ratio "
        "| accepted/s g / r | CPU ms/msg g / r | CPU ratio | govmail RSS peak / HWM MB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in cells:

        def runs(system: str, c: dict[str, Any] = c) -> str:
            return ", ".join(f"{v:.0f}" for v in c[f"{system}_delivered_runs"])

        print(
            f"| {c['size']} | {c['concurrency']} "
            f"| {fmt(c['govmail_delivered_per_s'])} ({runs('govmail')}) "
            f"| {fmt(c['reference_delivered_per_s'])} ({runs('reference')}) "
            f"| {fmt(c['ratio'], '.2f')} "
            f"| {fmt(c['govmail_accepted_per_s'], '.0f')} / "
            f"{fmt(c['reference_accepted_per_s'], '.0f')} "
            f"| {fmt(c['govmail_cpu_ms_per_msg'], '.2f')} / "
            f"{fmt(c['reference_cpu_ms_per_msg'], '.2f')} "
            f"| {fmt(c['cpu_ratio'], '.2f')} "
            f"| {fmt(c['govmail_peak_rss_mb'])} / {fmt(c['govmail_hwm_rss_mb'])} |"
        )
    if not fanouts:
        return
    print(
        "\n| system | recipients | size | DATA→250 s | DATA→all delivered s | files "
        "| bytes (distinct) | messages rows | server CPU s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    keys = dict.fromkeys((f.system, f.recipients, f.size) for f in fanouts)
    for system, recipients, size in keys:
        fs = [f for f in fanouts if (f.system, f.recipients, f.size) == (system, recipients, size)]

        def med(attr: str, fs: list[Fanout] = fs) -> float | None:
            return median(getattr(f, attr) for f in fs)

        print(
            f"| {system} | {recipients} | {size} | {fmt(med('data_to_250_s'), '.3f')} "
            f"| {fmt(med('data_to_delivered_s'), '.3f')} | {fmt(med('files'), '.0f')} "
            f"| {fmt(med('bytes'), '.0f')} ({fmt(med('distinct_bytes'), '.0f')}) "
            f"| {fmt(med('message_rows'), '.0f')} | {fmt(med('cpu_s'), '.3f')} |"
        )


# --- main ----------------------------------------------------------------------------


def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


async def run_matrix(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    reference = None if args.skip_reference else ReferenceStack()
    if reference is not None:
        await reference.cpu_roots()  # fails early if the stack is down
    runs: list[Run] = []
    for size in args.sizes:
        for conc in args.concurrency:
            print(f"{size} B, {conc} connections:", flush=True)
            for rep in range(1, args.repeat + 1):
                async with govmail_server(args, work, args.mailboxes) as server:
                    runs.append(await measure(server, size, conc, rep, args))
                    server.check_alive()
                if reference is not None:
                    reference.reset()
                    runs.append(await measure(reference, size, conc, rep, args))
    fanouts: list[Fanout] = []
    if args.fanout:
        print(f"fan-out, {args.fanout_size} B:", flush=True)
        most = max(args.fanout)
        async with govmail_server(args, work, most, max_recipients=most) as server:
            for rep in range(1, args.repeat + 1):
                for n in args.fanout:
                    fanouts.append(await measure_fanout(server, n, args.fanout_size, rep, args))
        if reference is not None:
            users = reference.users()
            for rep in range(1, args.repeat + 1):
                for n in sorted({min(n, users) for n in args.fanout}):
                    reference.reset()
                    fanouts.append(await measure_fanout(reference, n, args.fanout_size, rep, args))
    profile = None
    if args.profile:
        conc = max(args.concurrency)
        print(f"profile (not counted): govmail under py-spy --{args.profile}, 4096 B, C={conc}")
        profile = await profile_govmail(args, work, 4096, conc)
    cells = cell_summary(runs, args.sizes, args.concurrency)
    print_tables(cells, fanouts)
    if profile:
        print(f"\npy-spy: {profile['busy_samples']} busy samples; where they were:")
        for name, pct in profile["leaf_pct"][:15]:
            print(f"  {pct:5.1f}%  {name}")
        print("govmail functions (inclusive):")
        for name, pct in profile["govmail_inclusive_pct"][:12]:
            print(f"  {pct:5.1f}%  {name}")
    return {
        "cells": cells,
        "runs": [asdict(r) for r in runs],
        "fanout": [asdict(f) for f in fanouts],
        "profile": profile,
    }


def git(*args: str, text: bool = True) -> Any:
    """The output of a git command in this repository."""
    return subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=text, check=True
    ).stdout


def use_revision(rev: str, work: Path) -> str:
    """Serve the govmail sources of git revision ``rev`` (exported into ``work``) instead
    of the working tree, which may change during a long run; returns its full hash."""
    commit = str(git("rev-parse", "--verify", f"{rev}^{{commit}}")).strip()
    tar = ["tar", "-x", "-C", str(work)]
    subprocess.run(tar, input=git("archive", commit, "src", text=False), check=True)
    if not (work / "src" / "govmail").is_dir():
        raise BenchError(f"git archive {commit} src gave no src/govmail")
    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(work / "src") + (f":{path}" if path else "")
    return commit


def describe(args: argparse.Namespace, source: str) -> dict[str, Any]:
    """What was measured, with what, where."""
    return {
        "command": " ".join(sys.argv),
        "govmail_source": source,
        "database": args.database_url or "sqlite",
        "cpus": os.cpu_count(),
        "filesystems": {
            str(path): subprocess.run(
                ["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True
            ).stdout.strip()
            for path in (Path(tempfile.gettempdir()), REF_MAILDIRS.parent, Path("/var/spool"))
        },
        "load_generator": "smtp-source -4 -d (one process per recipient user1..userK)",
        "recipients_per_cell": args.recipients,
        "messages": args.messages or {s: default_messages(s) for s in args.sizes},
        "warmup": args.warmup,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--messages", type=int, default=0, help="per cell run (default 5000; 4000 over 16 KB)"
    )
    parser.add_argument("--sizes", type=int_list, default=[4096, 102400], help="payload bytes")
    parser.add_argument("--concurrency", type=int_list, default=[10, 50])
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per cell, medians reported (0: none)"
    )
    parser.add_argument(
        "--recipients",
        type=int,
        default=10,
        help="mailboxes each cell's load is spread over (one smtp-source process each)",
    )
    parser.add_argument("--mailboxes", type=int, default=100, help="govmail mailboxes per run")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured messages per run")
    parser.add_argument("--fanout", type=int_list, default=[1000, 100], help="recipient counts")
    parser.add_argument("--fanout-size", type=int, default=102400)
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--database-url", help="postgresql+asyncpg://… (recreated per run)")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="wall",
        choices=("wall", "gil"),
        help="one more govmail run (4 KB) under py-spy: busy threads, or GIL holder only",
    )
    parser.add_argument("--profile-seconds", type=int, default=15)
    parser.add_argument("--stall-timeout", type=float, default=60.0)
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=25.0,
        help="before each run, wait until the machine is less busy than this (%%)",
    )
    parser.add_argument("--quiet-wait", type=float, default=300.0, help="at most (s)")
    parser.add_argument(
        "--git-rev", help="serve this commit's src/ (git archive), not the working tree"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "smtp_delivery.json")
    args = parser.parse_args()
    if args.recipients < 1 or args.recipients > min(args.mailboxes, ReferenceStack.users()):
        parser.error("--recipients must be between 1 and the number of mailboxes")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="govmail-smtp-bench-") as tmp:
        try:
            if args.git_rev:
                source = f"git {use_revision(args.git_rev, Path(tmp))}"
            else:
                source = "working tree " + str(git("describe", "--always", "--dirty")).strip()
            meta = describe(args, source)
            print(json.dumps(meta), flush=True)
            results = asyncio.run(run_matrix(args, Path(tmp)))
        except BenchError as exc:
            sys.exit(f"FAILED: {exc}")
    args.out.write_text(json.dumps({"meta": meta, **results}, indent=2), encoding="utf-8")
    print(f"\nresults -> {args.out}")


if __name__ == "__main__":
    main()
