"""Figures of the IMAP issue: govmail against Dovecot, side by side, and 10,000 IDLE clients.

1. Throughput, in one run and with the same load generator
   (/work/shared/reference/imap_load.py: each client LOGIN, SELECT INBOX,
   FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE), FETCH 1:* (BODY.PEEK[]), SEARCH SUBJECT
   "message 7", LOGOUT), for 10 and 50 clients on mailboxes of 1,000 messages (the same
   ~4 KB messages on both sides, APPENDed over IMAP): full bodies/s and commands/s of
   govmail (``govmail serve``, a fresh data directory) and of the reference Dovecot
   (127.0.0.1:11143, user1..user50@ref.test emptied and refilled first), medians of
   ``--runs`` runs, the ratio, the server CPU seconds (govmail's process, plus the whole
   PostgreSQL server on PostgreSQL; Dovecot's process tree with its reaped children) and
   the peak RSS (govmail's process; the sum over Dovecot's processes, and their PSS).
2. ``--idle N`` IDLE connections to govmail (a second fresh data directory, the
   connections spread over ``--idle-users`` users): the setup time, the server's RSS
   before and after (and per connection), its CPU while they idle, and how long a
   message delivered by SMTP to an idling user takes until its ``* n EXISTS`` reaches
   every connection of that user (p50 and max over ``--idle-samples`` deliveries).
``--profile`` records one more, unmeasured govmail load run under py-spy and prints
where the samples were (all of them, and those of FETCH).
Usage: ``.venv/bin/python bench/imap_load.py [--database-url URL] [--git-rev REV]
[--profile]`` as root (``--help`` for the rest). Results are printed and written to
bench/results/imap_load.json (``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import math
import os
import quopri
import random
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
from base64 import b64encode
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import asyncpg

from govmail.core.sample import generate_officials
from govmail.core.vietnamese import ascii_vietnamese
from smtp_delivery import (
    IDLE_LEAVES,
    REF_PIDFILES,
    BenchError,
    _asyncpg_dsn,
    _frame_name,
    _proc_stat,
    fresh_pg_database,
    git,
    machine_ticks,
    memory_kb,
    quiet_machine,
    summarise_stacks,
    tree_cpu_s,
    use_revision,
)

GOVMAIL = [sys.executable, "-m", "govmail"]
LOADGEN = Path("/work/shared/reference/imap_load.py")
REF_PORT = 11143
REF_DOMAIN = "ref.test"
REF_PASSWORD = "secret"
BENCH_DOMAIN = "bench.test"
BENCH_PASSWORD = "bench-secret-1"  # govmail wants at least 8 characters
SENDER = "loadgen@client.test"
REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
CRLF = b"\r\n"


# --- the messages ----------------------------------------------------------------------

_FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô"]
_MIDDLE = ["Văn", "Thị", "Minh", "Quốc", "Thanh", "Ngọc", "Hữu", "Đức", "Thu"]
_GIVEN = ["An", "Bình", "Châu", "Dũng", "Giang", "Hà", "Hùng", "Lan", "Long", "Mai", "Nam"]
_AGENCIES = [
    ("sotttt", "Sở Thông tin và Truyền thông"),
    ("sotc", "Sở Tài chính"),
    ("sokhdt", "Sở Kế hoạch và Đầu tư"),
    ("ubnd", "Ủy ban nhân dân tỉnh"),
    ("sonv", "Sở Nội vụ"),
]
_SENTENCES = [
    "Thực hiện Kế hoạch số 125/KH-UBND ngày 12 tháng 3 năm 2024 của Ủy ban nhân dân tỉnh"
    " về chuyển đổi số, Sở đề nghị các cơ quan, đơn vị báo cáo kết quả triển khai.",
    "Đề nghị các phòng chuyên môn rà soát, tổng hợp số liệu và gửi về Văn phòng Sở"
    " trước ngày 25 hằng tháng để tổng hợp báo cáo Ủy ban nhân dân tỉnh.",
    "Kính gửi anh chị văn bản hướng dẫn thực hiện chế độ báo cáo thống kê định kỳ,"
    " kèm theo biểu mẫu số liệu đã được cập nhật theo Thông tư mới.",
    "Cuộc họp giao ban được tổ chức vào lúc 8 giờ 00 sáng thứ Hai tại phòng họp số 2,"
    " thành phần gồm lãnh đạo các phòng và chuyên viên phụ trách.",
    "Văn phòng xin thông báo lịch trực cơ quan trong dịp nghỉ lễ; đề nghị cán bộ trực"
    " đảm bảo thông tin liên lạc thông suốt và báo cáo kịp thời khi có sự cố.",
    "Please find attached the revised schedule; the data exchange with the national"
    " platform will be tested again next week.",
    "Trân trọng đề nghị quý cơ quan phối hợp cung cấp thông tin về tình hình ứng dụng"
    " công nghệ thông tin, an toàn thông tin mạng trong năm.",
    "Số liệu giải ngân vốn đầu tư công đến hết quý II đạt 48,6% kế hoạch vốn được giao,"
    " thấp hơn cùng kỳ năm trước; cần đẩy nhanh tiến độ các dự án trọng điểm.",
]


def _person(rng: random.Random) -> tuple[str, str]:
    name = f"{rng.choice(_FAMILY)} {rng.choice(_MIDDLE)} {rng.choice(_GIVEN)}"
    agency, _ = rng.choice(_AGENCIES)
    given = name.split()
    local = ascii_vietnamese(given[-1] + "".join(w[0] for w in given[:-1])).lower()
    local += str(rng.randrange(1, 99))
    return name, f"{local}.{agency}@khanhhoa.gov.vn"


def _addr(name: str, address: str) -> str:
    return f"{Header(name, 'utf-8').encode()} <{address}>"


def _qp(text: str) -> str:
    return quopri.encodestring(text.encode("utf-8")).decode("ascii")


def _paragraphs(rng: random.Random, size: int) -> str:
    out: list[str] = []
    while sum(map(len, out)) < size:
        out.append(" ".join(rng.choice(_SENTENCES) for _ in range(rng.randint(1, 3))))
    return "\n\n".join(out)


def make_message(n: int, rng: random.Random, when: datetime) -> bytes:
    """One realistic mail of about 4 KB: relay Received lines, encoded names, Vietnamese
    text (8bit or quoted-printable); a fifth multipart/alternative with HTML, a tenth
    with a small PDF attachment. Subject "message N"."""
    name, sender = _person(rng)
    to_name, to_addr = "Phòng Tổng hợp", "tonghop.sotttt@khanhhoa.gov.vn"
    date = format_datetime(when)
    head = [
        f"Return-Path: <{sender}>",
        f"Received: from mail.khanhhoa.gov.vn (mail.khanhhoa.gov.vn [10.10.1.25])\n"
        f"\tby mx.bench.test with ESMTPS id {rng.getrandbits(48):012X}\n\tfor <{to_addr}>; {date}",
        f"Received: from [10.20.{rng.randrange(256)}.{rng.randrange(256)}]\n"
        f"\tby mail.khanhhoa.gov.vn with ESMTPSA id {rng.getrandbits(40):010x}; {date}",
        f"Message-ID: <{n}.{rng.getrandbits(64):016x}@khanhhoa.gov.vn>",
        f"Date: {date}",
        f"From: {_addr(name, sender)}",
        f"To: {_addr(to_name, to_addr)}",
    ]
    if rng.random() < 0.3:
        cc_name, cc_addr = _person(rng)
        head.append(f"Cc: {_addr(cc_name, cc_addr)}")
    head += [
        f"Subject: message {n}",
        "MIME-Version: 1.0",
        "User-Agent: Mozilla/5.0 Thunderbird/115.6.0",
        "Content-Language: vi",
    ]
    kind = rng.random()
    text = _paragraphs(rng, rng.randint(700, 1700)) + f"\n\n--\n{name}\n"
    if kind < 0.35:
        head += [
            'Content-Type: text/plain; charset="UTF-8"; format=flowed',
            "Content-Transfer-Encoding: 8bit",
        ]
        body = text
    elif kind < 0.7:
        head += [
            'Content-Type: text/plain; charset="UTF-8"; format=flowed',
            "Content-Transfer-Encoding: quoted-printable",
        ]
        body = _qp(text)
    else:
        boundary = f"------------{rng.getrandbits(80):020x}"
        plain = (
            'Content-Type: text/plain; charset="UTF-8"\n'
            "Content-Transfer-Encoding: quoted-printable\n\n" + _qp(text)
        )
        if kind < 0.9:
            html = (
                "<html><body>"
                + "".join(f"<p>{p}</p>" for p in text[: len(text) // 3].split("\n\n"))
                + "</body></html>"
            )
            second = (
                'Content-Type: text/html; charset="UTF-8"\n'
                "Content-Transfer-Encoding: quoted-printable\n\n" + _qp(html)
            )
            subtype = "alternative"
        else:
            pdf = b64encode(rng.randbytes(900)).decode()
            pdf = "\n".join(pdf[i : i + 76] for i in range(0, len(pdf), 76))
            second = (
                'Content-Type: application/pdf; name="bao-cao.pdf"\n'
                'Content-Disposition: attachment; filename="bao-cao.pdf"\n'
                "Content-Transfer-Encoding: base64\n\n" + pdf
            )
            subtype = "mixed"
        head.append(f'Content-Type: multipart/{subtype}; boundary="{boundary}"')
        body = (
            f"This is a multi-part message in MIME format.\n--{boundary}\n{plain}\n"
            f"--{boundary}\n{second}\n--{boundary}--\n"
        )
    raw = "\n".join(head) + "\n\n" + body
    return raw.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def make_messages(count: int, seed: int = 2024) -> list[bytes]:
    """The message set both servers get (deterministic)."""
    rng = random.Random(seed)
    start = datetime(2024, 3, 1, 7, 30, tzinfo=UTC)
    return [make_message(n, rng, start + timedelta(minutes=41 * n)) for n in range(1, count + 1)]


# --- a small IMAP client (filling, emptying, IDLE) -------------------------------------


class ImapError(Exception):
    """A tagged NO/BAD, an unexpected response or a closed connection."""


class Imap:
    """Tagged commands over asyncio streams; keeps the last exchange for error reports."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.r, self.w = reader, writer
        self.seq = 0
        self.capabilities = b""
        self.transcript: list[bytes] = []

    @classmethod
    async def connect(cls, port: int, timeout: float = 60) -> Imap:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
            client = cls(reader, writer)
            greeting = await client.response()
        if not greeting.startswith(b"* OK"):
            client.close()
            raise ImapError(f"greeting {greeting[:200]!r}")
        client.capabilities = greeting
        return client

    async def response(self) -> bytes:
        """One response with its literals (read whole)."""
        parts = []
        while True:
            line = await self.r.readuntil(CRLF)
            parts.append(line)
            m = re.search(rb"\{(\d+)\+?\}\r\n$", line)
            if not m:
                break
            parts.append(await self.r.readexactly(int(m.group(1))))
        data = b"".join(parts)
        self.transcript = [*self.transcript, b"S: " + data[:300]][-6:]
        return data

    async def command(self, text: bytes, timeout: float = 300) -> tuple[list[bytes], bytes]:
        """Send ``text`` (literals inline, LITERAL+), return (untagged, tagged line)."""
        self.seq += 1
        tag = b"b%d" % self.seq
        self.transcript = [*self.transcript, b"C: " + (tag + b" " + text)[:200]][-6:]
        self.w.write(tag + b" " + text + CRLF)
        untagged: list[bytes] = []
        async with asyncio.timeout(timeout):
            await self.w.drain()
            while True:
                line = await self.response()
                if line.startswith(tag + b" "):
                    if line[len(tag) + 1 : len(tag) + 3] != b"OK":
                        raise ImapError(self.exchange())
                    return untagged, line
                untagged.append(line)

    def exchange(self) -> str:
        return " | ".join(x.decode("utf-8", "replace").strip() for x in self.transcript)

    async def login(self, user: str, password: str) -> None:
        _, line = await self.command(b'LOGIN "%s" "%s"' % (user.encode(), password.encode()))
        self.capabilities = line

    async def select(self, mailbox: bytes = b"INBOX") -> int:
        untagged, _ = await self.command(b"SELECT " + mailbox)
        for line in untagged:
            m = re.match(rb"\* (\d+) EXISTS", line)
            if m:
                return int(m.group(1))
        raise ImapError(f"no EXISTS in SELECT: {self.exchange()}")

    async def append(self, messages: list[bytes]) -> None:
        """One MULTIAPPEND of ``messages`` with non-synchronising literals."""
        parts = [b"APPEND INBOX"]
        for raw in messages:
            parts.append(b" {%d+}\r\n" % len(raw) + raw)
        await self.command(b"".join(parts))

    async def logout(self) -> None:
        with contextlib.suppress(Exception):
            await self.command(b"LOGOUT", timeout=10)
        self.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.w.close()


async def fill_mailboxes(
    port: int,
    users: list[str],
    password: str,
    messages: list[bytes],
    *,
    empty_first: bool,
    parallel: int = 6,
    batch: int = 100,
) -> dict[str, Any]:
    """Give each user's INBOX exactly ``messages`` (emptied first if asked), ``parallel``
    users at a time, MULTIAPPEND in batches; checks the count with a new SELECT. The
    n-th user's copies start with ``X-Bench-Copy: n`` (the same on both servers): real
    mailboxes do not share byte-identical mail, and govmail would store identical
    messages once (and, on PostgreSQL, concurrent APPENDs of one new message fail)."""
    gate = asyncio.Semaphore(parallel)
    started = time.perf_counter()

    async def one(n: int, user: str) -> None:
        mine = [b"X-Bench-Copy: %d\r\n" % n + raw for raw in messages]
        async with gate:
            client = await Imap.connect(port)
            try:
                await client.login(user, password)
                caps, _ = await client.command(b"CAPABILITY")
                if b"LITERAL+" not in b"".join(caps).upper():
                    raise ImapError(f"{user}: server without LITERAL+")
                exists = await client.select()
                if exists and empty_first:
                    await client.command(b"STORE 1:* +FLAGS.SILENT (\\Deleted)")
                    await client.command(b"EXPUNGE")
                    exists = 0
                if exists:
                    raise ImapError(f"{user}: INBOX not empty ({exists})")
                for i in range(0, len(mine), batch):
                    await client.append(mine[i : i + batch])
                got = await client.select()  # a new SELECT counts again
                if got != len(messages):
                    raise ImapError(f"{user}: {got} messages after filling, not {len(messages)}")
            except (ImapError, OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                raise BenchError(
                    f"filling {user} on port {port}: {exc!r}; last exchange: {client.exchange()}"
                ) from None
            finally:
                await client.logout()

    await asyncio.gather(*(one(n, u) for n, u in enumerate(users, 1)))
    took = time.perf_counter() - started
    total = len(users) * len(messages)
    return {"messages": total, "seconds": round(took, 1), "append_per_s": round(total / took, 1)}


# --- govmail ---------------------------------------------------------------------------


def set_toml(text: str, section: str, key: str, value: int) -> str:
    """``key = value`` inside ``[section]`` of govmail.toml."""
    head = f"[{section}]"
    start = text.index(head)
    end = text.find("\n[", start + len(head))
    end = len(text) if end < 0 else end
    body, n = re.subn(rf"(?m)^{key} = \d+$", f"{key} = {value}", text[start:end])
    if n != 1:
        raise BenchError(f"cannot set [{section}] {key} in govmail.toml")
    return text[:start] + body + text[end:]


class Govmail:
    """``govmail serve`` with IMAP and SMTP on a fresh data directory, user1..userN having
    password BENCH_PASSWORD (set with the CLI for user1, its hash copied to the others)."""

    def __init__(self, work: Path, users: int, database_url: str | None) -> None:
        self.data = Path(tempfile.mkdtemp(prefix="data-", dir=work))
        self.users = users
        self.database_url = database_url
        self.env = {k: v for k, v in os.environ.items() if k != "GOVMAIL_DATABASE_URL"}
        if database_url:
            self.env["GOVMAIL_DATABASE_URL"] = database_url
        self.process: subprocess.Popen[bytes] | None = None
        self.imap_port = self.smtp_port = 0
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

    async def prepare(self, per_user: int, per_ip: int) -> None:
        self._cli("init", "--domain", BENCH_DOMAIN)
        self._cli("agency", "add", "--name", "Cơ quan đo hiệu năng", "--abbr", "bench")
        staff = self.data / "staff.csv"
        with staff.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["Họ và tên", "Chức vụ", "Bộ phận công tác", "Địa chỉ hộp thư"])
            for i, o in enumerate(generate_officials(self.users), 1):
                writer.writerow([o.full_name, o.position, o.department, f"user{i}"])
        report = json.loads(self._cli("import", "officials", str(staff), "--agency", "bench"))
        if len(report["created"]) != self.users:
            raise BenchError(f"import created {len(report['created'])} of {self.users}")
        self._cli(
            "mailbox", "reset-password", f"user1@{BENCH_DOMAIN}", "--password", BENCH_PASSWORD
        )
        await self._copy_password()
        config = self.data / "govmail.toml"
        text = config.read_text(encoding="utf-8")
        text = set_toml(text, "imap", "max_connections_per_user", per_user)
        text = set_toml(text, "imap", "max_connections_per_ip", per_ip)
        config.write_text(text, encoding="utf-8")

    async def _copy_password(self) -> None:
        """user1's hash (and must_change_password false) for every personal mailbox: one
        argon2 hash instead of N CLI runs."""
        sql = (
            "UPDATE mailboxes SET password_hash = (SELECT m.password_hash FROM mailboxes m"
            " JOIN addresses a ON a.mailbox_id = m.id WHERE a.local_part = 'user1'"
            " AND a.kind = 'primary'), must_change_password = {false} WHERE kind = 'personal'"
        )
        if self.database_url:
            conn = await asyncpg.connect(_asyncpg_dsn(self.database_url))
            try:
                await conn.execute(sql.format(false="false"))
            finally:
                await conn.close()
        else:
            with contextlib.closing(sqlite3.connect(self.data / "govmail.db")) as db:
                db.execute(sql.format(false="0"))
                db.commit()

    async def start(self, nofile: int = 0) -> None:
        listen = ("--imap", "--smtp", "--web", "--submission", "--submissions", "--imaps")
        cmd = [*GOVMAIL, "serve", "--data", str(self.data), "--json"]
        cmd += [arg for flag in listen for arg in (flag, "127.0.0.1:0")]
        if nofile:
            # prlimit execs the server: same pid, with the raised descriptor limit.
            cmd = ["prlimit", f"--nofile={nofile}:{nofile}", "--", *cmd]
        self.process = subprocess.Popen(
            cmd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=(self.data / "serve.log").open("wb"),
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.process.stdout.readline), 60)
        if not line:
            raise BenchError(f"govmail serve did not start:\n{self.log_tail()}")
        listening = json.loads(line)["listening"]
        self.imap_port = int(listening["imap"].rpartition(":")[2])
        self.smtp_port = int(listening["smtp"].rpartition(":")[2])
        if self.database_url:
            conn = await asyncpg.connect(_asyncpg_dsn(self.database_url))
            try:
                backend = await conn.fetchval("SELECT pg_backend_pid()")
                self._postmaster = _proc_stat(backend)[0]  # a local server, seen from /proc
            finally:
                await conn.close()

    async def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, 60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log_tail(self, lines: int = 40) -> str:
        log = self.data / "serve.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    @contextlib.asynccontextmanager
    async def diagnosed(self) -> AsyncIterator[None]:
        """A failure inside comes with the end of the server's log."""
        try:
            yield
        except BenchError as exc:
            raise BenchError(f"{exc}\n--- govmail serve.log (end):\n{self.log_tail()}") from None

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            raise BenchError(f"govmail serve exited:\n{self.log_tail()}")

    def cpu_roots(self) -> dict[str, list[int]]:
        roots = {"govmail": [self.pid]}
        if self._postmaster:
            roots["postgres"] = [self._postmaster]  # another database's work counts too
        return roots

    def rss_pids(self) -> list[int]:
        return [self.pid]


@contextlib.asynccontextmanager
async def govmail_server(
    args: argparse.Namespace,
    work: Path,
    users: int,
    *,
    per_user: int = 100,
    per_ip: int = 2000,
    nofile: int = 0,
) -> AsyncIterator[Govmail]:
    if args.database_url:
        await fresh_pg_database(args.database_url)
    server = Govmail(work, users, args.database_url)
    try:
        started = time.perf_counter()
        await server.prepare(per_user, per_ip)
        await server.start(nofile)
        print(
            f"  govmail ready in {time.perf_counter() - started:.1f} s ({users} users)", flush=True
        )
        yield server
    finally:
        await server.stop()
        shutil.rmtree(server.data, ignore_errors=True)


class Dovecot:
    """The reference Dovecot (already started by reference-stack.sh)."""

    name = "dovecot"
    imap_port = REF_PORT

    @staticmethod
    def master() -> int:
        pidfile = REF_PIDFILES[1]
        try:
            return int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            raise BenchError(f"reference Dovecot not running ({pidfile} unreadable)") from None

    def cpu_roots(self) -> dict[str, list[int]]:
        return {"dovecot": [self.master()]}

    def rss_pids(self) -> list[int]:
        return tree_pids(self.master())


async def drop_pg_database(url: str) -> None:
    """Drop the benchmark's database (recreated by each govmail server)."""
    head, _, name = _asyncpg_dsn(url).rpartition("/")
    conn = await asyncpg.connect(f"{head}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name.split("?")[0]}" WITH (FORCE)')
    finally:
        await conn.close()


def tree_pids(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError, ValueError):
                parents.setdefault(_proc_stat(int(name))[0], []).append(int(name))
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(parents.get(pid, []))
    return out


def pss_kb(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


async def sample_memory(target: Any, peak: dict[str, int], every: float = 0.2) -> None:
    """Highest sum of VmRSS (and of PSS) over the target's processes, until cancelled."""
    while True:
        pids = await asyncio.to_thread(target.rss_pids)
        rss = sum(memory_kb(p, "VmRSS") for p in pids)
        pss = sum(pss_kb(p) for p in pids) if len(pids) > 1 else rss
        peak["rss_kb"] = max(peak.get("rss_kb", 0), rss)
        peak["pss_kb"] = max(peak.get("pss_kb", 0), pss)
        peak["processes"] = max(peak.get("processes", 0), len(pids))
        await asyncio.sleep(every)


# --- the load ----------------------------------------------------------------------------


@dataclass
class LoadRun:
    system: str
    clients: int
    rep: int
    bodies_per_s: float
    ops_per_s: float
    wall_s: float
    bodies: int
    commands: int
    search_hits: int
    errors: dict[str, int]
    server_cpu_s: float
    cpu: dict[str, float]
    cpu_us_per_body: float
    peak_rss_mb: float
    peak_pss_mb: float
    processes: int
    loadgen_cpu_s: float
    machine_busy_pct: float
    busy_before_pct: float | None
    latency_ms: dict[str, dict[str, float | None]] = field(default_factory=dict)
    first_errors: list[str] = field(default_factory=list)


def rounds_for(args: argparse.Namespace, clients: int) -> int:
    """Sessions per client so that a run fetches about ``--bodies`` bodies (Dovecot needs
    a few seconds, not a fraction of one: CPU ticks and RSS samples need time)."""
    if args.rounds:
        return int(args.rounds)
    return max(1, round(args.bodies / (clients * args.messages)))


def cpu_of(roots: dict[str, list[int]]) -> dict[str, float]:
    return {part: sum(tree_cpu_s(pids).values()) for part, pids in roots.items()}


async def run_loadgen(
    args: argparse.Namespace,
    port: int,
    domain: str,
    password: str,
    clients: int,
    rounds: int,
    out: Path,
) -> tuple[dict[str, Any], list[str]]:
    cmd = [
        sys.executable,
        str(LOADGEN),
        "--port",
        str(port),
        "--clients",
        str(clients),
        "--users",
        str(clients),
        "--rounds",
        str(rounds),
        "--domain",
        domain,
        "--password",
        password,
        "--timeout",
        str(args.command_timeout),
        "--json",
        str(out),
        "-v",
    ]
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await proc.communicate()
    if not out.exists():
        raise BenchError(f"imap_load.py failed ({proc.returncode}): {stderr.decode()[-2000:]}")
    result = json.loads(out.read_text())
    out.unlink()
    errors = [line for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    return result, errors[:10]


async def measure_load(
    target: Any,
    name: str,
    clients: int,
    rep: int,
    args: argparse.Namespace,
    work: Path,
    domain: str,
    password: str,
) -> LoadRun:
    busy_before = await quiet_machine(args.quiet_below, args.quiet_wait)
    roots = target.cpu_roots()
    peak: dict[str, int] = {}
    sampler = asyncio.create_task(sample_memory(target, peak))
    cpu0, m0 = cpu_of(roots), machine_ticks()
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        res, errors = await run_loadgen(
            args,
            target.imap_port,
            domain,
            password,
            clients,
            rounds_for(args, clients),
            work / f"load-{name}-{clients}-{rep}.json",
        )
    finally:
        sampler.cancel()
    m1 = machine_ticks()
    # Dovecot's imap processes are reaped when their client leaves, shortly after.
    await asyncio.sleep(0.3)
    cpu1 = cpu_of(target.cpu_roots())
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    parts = {f"{p}_cpu_s": round(cpu1[p] - cpu0.get(p, 0.0), 3) for p in cpu1}
    server_cpu = round(sum(parts.values()), 3)
    bodies = int(res["body_msgs"])
    latency = {
        op: {k: (round(v * 1000, 2) if v is not None else None) for k, v in lat.items()}
        for op, lat in res["latency_s"].items()
    }
    run = LoadRun(
        system=name,
        clients=clients,
        rep=rep,
        bodies_per_s=round(res["imap_fetch_msgs_per_s"], 1),
        ops_per_s=round(res["imap_ops_per_s"], 1),
        wall_s=round(res["wall_s"], 3),
        bodies=bodies,
        commands=int(res["commands"]),
        search_hits=int(res["search_hits"]),
        errors=res["errors"],
        server_cpu_s=server_cpu,
        cpu=parts,
        cpu_us_per_body=round(1e6 * server_cpu / bodies, 1) if bodies else 0.0,
        peak_rss_mb=round(peak.get("rss_kb", 0) / 1024, 1),
        peak_pss_mb=round(peak.get("pss_kb", 0) / 1024, 1),
        processes=peak.get("processes", 0),
        loadgen_cpu_s=round(kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime, 2),
        machine_busy_pct=round(100.0 * (1 - (m1[1] - m0[1]) / max(1, m1[0] - m0[0])), 1),
        busy_before_pct=busy_before,
        latency_ms=latency,
        first_errors=errors,
    )
    expected = clients * rounds_for(args, clients) * args.messages
    err = f", ERRORS {run.errors}" if run.errors else ""
    if bodies != expected and not run.errors:
        err += f", {bodies} bodies of {expected}"
    print(
        f"  {name:8} C={clients:2d} rep {rep}: {run.bodies_per_s:8.0f} bodies/s"
        f" {run.ops_per_s:6.1f} ops/s in {run.wall_s:.1f} s; server CPU {server_cpu:.1f} s"
        f" ({run.cpu_us_per_body:.0f} µs/body), RSS {run.peak_rss_mb:.0f} MB"
        f" ({run.processes} proc), loadgen CPU {run.loadgen_cpu_s:.1f} s,"
        f" machine {run.machine_busy_pct:.0f}% busy (before {busy_before:.0f}%){err}",
        flush=True,
    )
    for line in errors[:3]:
        print(f"    {line[:300]}", flush=True)
    return run


async def throughput(
    args: argparse.Namespace, work: Path, messages: list[bytes]
) -> tuple[list[LoadRun], dict[str, Any], dict[str, Any] | None]:
    users = max(args.clients)
    setup: dict[str, Any] = {}
    runs: list[LoadRun] = []
    profile = None
    dovecot = None if args.skip_reference else Dovecot()
    if dovecot is not None:
        dovecot.master()  # fails early if it is down
        print(f"filling Dovecot user1..user{users} ({args.messages} messages each)", flush=True)
        setup["dovecot_fill"] = await fill_mailboxes(
            REF_PORT,
            [f"user{i}@{REF_DOMAIN}" for i in range(1, users + 1)],
            REF_PASSWORD,
            messages,
            empty_first=True,
        )
        print(f"  {setup['dovecot_fill']}", flush=True)
    print(f"govmail: {users} users, filling their INBOXes", flush=True)
    async with govmail_server(args, work, users) as server, server.diagnosed():
        setup["govmail_fill"] = await fill_mailboxes(
            server.imap_port,
            [f"user{i}@{BENCH_DOMAIN}" for i in range(1, users + 1)],
            BENCH_PASSWORD,
            messages,
            empty_first=False,
        )
        print(f"  {setup['govmail_fill']}", flush=True)
        setup["govmail_rss_after_fill_mb"] = round(memory_kb(server.pid, "VmRSS") / 1024, 1)
        server.check_alive()
        if args.warmup:
            print(f"warm-up (not counted): {users} clients, 1 round each side", flush=True)
            await run_loadgen(
                args, server.imap_port, BENCH_DOMAIN, BENCH_PASSWORD, users, 1, work / "warm-g.json"
            )
            if dovecot is not None:
                await run_loadgen(
                    args, REF_PORT, REF_DOMAIN, REF_PASSWORD, users, 1, work / "warm-d.json"
                )
        for rep in range(1, args.runs + 1):
            for clients in args.clients:
                runs.append(
                    await measure_load(
                        server, "govmail", clients, rep, args, work, BENCH_DOMAIN, BENCH_PASSWORD
                    )
                )
                server.check_alive()
                if dovecot is not None:
                    runs.append(
                        await measure_load(
                            dovecot, "dovecot", clients, rep, args, work, REF_DOMAIN, REF_PASSWORD
                        )
                    )
        setup["govmail_rss_end_mb"] = round(memory_kb(server.pid, "VmRSS") / 1024, 1)
        setup["govmail_hwm_mb"] = round(memory_kb(server.pid, "VmHWM") / 1024, 1)
        if args.profile:
            profile = await profile_govmail(args, work, server, users)
        server.check_alive()
        errors = [
            line
            for line in server.log_tail(200).splitlines()
            if "ERROR" in line or "Traceback" in line
        ]
        setup["govmail_log_errors"] = errors[:20]
    return runs, setup, profile


# --- profile -----------------------------------------------------------------------------


def classify(frames: list[str]) -> str:
    """Which IMAP command a py-spy stack works for (threads included, by their callee)."""
    text = ";".join(frames)
    if "commands/fetch.py" in text or "fetch_rows" in text:
        return "FETCH"
    if "cmd_search" in text or "mailstore/search" in text:
        return "SEARCH"
    if "cmd_select" in text or "snapshot" in text:
        return "SELECT"
    if "cmd_login" in text or "verify_password" in text or "argon2" in text:
        return "LOGIN"
    if "data_received" in text or "receiver.py" in text:
        return "reading commands"
    return "other"


async def profile_govmail(
    args: argparse.Namespace, work: Path, server: Govmail, clients: int
) -> dict[str, Any]:
    """One more load run (``clients`` clients, unmeasured) under py-spy record."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise BenchError("py-spy missing: .venv/bin/pip install py-spy")
    raw = args.out.with_name(f"{args.out.stem}-profile-{args.profile}.txt")
    mode = ["--gil"] if args.profile == "gil" else []
    print(f"profile (not counted): govmail under py-spy --{args.profile}, C={clients}", flush=True)
    record = await asyncio.create_subprocess_exec(
        spy,
        "record",
        "--pid",
        str(server.pid),
        "--rate",
        "200",
        "--format",
        "raw",
        "-o",
        str(raw),
        *mode,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    await asyncio.sleep(1.0)
    result, _ = await run_loadgen(
        args,
        server.imap_port,
        BENCH_DOMAIN,
        BENCH_PASSWORD,
        clients,
        rounds_for(args, clients),
        work / "profile-load.json",
    )
    record.send_signal(signal.SIGINT)  # py-spy writes what it has on Ctrl-C
    _, err = await record.communicate()
    if not raw.exists():
        raise BenchError(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
    lines = raw.read_text().splitlines()
    summary = summarise_stacks(lines)
    by_command: Counter[str] = Counter()
    fetch_lines = []
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_frame_name(f) for f in stack.split(";")]
        if frames[-1] in IDLE_LEAVES:
            continue
        kind = classify(frames)
        by_command[kind] += int(count)
        if kind == "FETCH":
            fetch_lines.append(line)
    total = max(1, sum(by_command.values()))
    summary["by_command_pct"] = [
        (k, round(100 * v / total, 1)) for k, v in by_command.most_common()
    ]
    summary["fetch"] = summarise_stacks(fetch_lines, top=25)
    summary["raw"] = str(raw)
    summary["load"] = {k: result[k] for k in ("imap_fetch_msgs_per_s", "imap_ops_per_s", "wall_s")}
    top = args.out.with_name(f"{args.out.stem}-profile-{args.profile}-top.txt")
    top.write_text(format_profile(summary), encoding="utf-8")
    summary["top"] = str(top)
    return summary


def format_profile(p: dict[str, Any]) -> str:
    out = [
        f"py-spy: {p['busy_samples']} busy samples (idle pool threads left out)",
        "by IMAP command:",
    ]
    out += [f"  {pct:5.1f}%  {name}" for name, pct in p["by_command_pct"]]
    out.append("where the samples were (leaf <- caller <- caller):")
    out += [f"  {pct:5.1f}%  {name}" for name, pct in p["leaf_pct"]]
    out.append("govmail functions (inclusive):")
    out += [f"  {pct:5.1f}%  {name}" for name, pct in p["govmail_inclusive_pct"]]
    f = p["fetch"]
    out.append(f"FETCH only ({f['busy_samples']} samples), leaves:")
    out += [f"  {pct:5.1f}%  {name}" for name, pct in f["leaf_pct"]]
    out.append("FETCH only, govmail functions (inclusive):")
    out += [f"  {pct:5.1f}%  {name}" for name, pct in f["govmail_inclusive_pct"]]
    return "\n".join(out) + "\n"


# --- IDLE ------------------------------------------------------------------------------


def raise_nofile(wanted: int) -> int:
    """Our own descriptor limit, as high as allowed (root may raise the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        if hard != resource.RLIM_INFINITY and hard < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


class Idler:
    """One connection sitting in IDLE; notes when an EXISTS arrives."""

    def __init__(self, user: int, client: Imap, board: dict[int, Any]) -> None:
        self.user = user
        self.client = client
        self.board = board
        self.closed: str | None = None
        self.task: asyncio.Task[None] | None = None

    async def listen(self) -> None:
        try:
            while True:
                line = await self.client.r.readuntil(CRLF)
                now = time.perf_counter()
                if line.endswith(b"EXISTS\r\n"):
                    waiting = self.board.get(self.user)
                    if waiting is not None:
                        waiting["times"].append(now)
                        if len(waiting["times"]) >= waiting["needed"]:
                            waiting["done"].set()
                elif line.startswith(b"* BYE"):
                    self.closed = line.decode(errors="replace").strip()
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self.closed = self.closed or f"closed: {exc!r}"
        except asyncio.CancelledError:
            pass


async def open_idler(port: int, user: int, board: dict[int, Any]) -> Idler:
    client = await Imap.connect(port, timeout=120)
    try:
        await client.login(f"user{user}@{BENCH_DOMAIN}", BENCH_PASSWORD)
        await client.select()
        client.seq += 1
        tag = b"i%d" % client.seq
        client.w.write(tag + b" IDLE\r\n")
        async with asyncio.timeout(120):
            await client.w.drain()
            line = await client.response()
            if not line.startswith(b"+"):
                raise ImapError(f"IDLE answered {line[:200]!r}")
    except BaseException:
        client.close()
        raise
    idler = Idler(user, client, board)
    idler.task = asyncio.create_task(idler.listen())
    return idler


def delivery(port: int, user: int, raw: bytes) -> tuple[float, float]:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="loadgen.client.test", timeout=60) as s:
        started = time.perf_counter()
        s.sendmail(SENDER, [f"user{user}@{BENCH_DOMAIN}"], raw)
        return started, time.perf_counter()


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return v[max(0, min(len(v) - 1, math.ceil(p / 100 * len(v)) - 1))]


async def idle_test(args: argparse.Namespace, work: Path, messages: list[bytes]) -> dict[str, Any]:
    n, users = args.idle, min(args.idle_users, args.idle)
    per_user = math.ceil(n / users)
    limit = raise_nofile(n + 1000)
    print(
        f"IDLE: {n} connections over {users} users ({per_user} each), "
        f"{args.idle_messages} messages per INBOX; our RLIMIT_NOFILE {limit}",
        flush=True,
    )
    result: dict[str, Any] = {
        "connections": n,
        "users": users,
        "messages_per_inbox": args.idle_messages,
        "client_nofile": limit,
    }
    idlers: list[Idler] = []
    board: dict[int, Any] = {}
    async with (
        govmail_server(
            args, work, users, per_user=per_user + 5, per_ip=n + 100, nofile=n + 2000
        ) as server,
        server.diagnosed(),
    ):
        if args.idle_messages:
            result["fill"] = await fill_mailboxes(
                server.imap_port,
                [f"user{i}@{BENCH_DOMAIN}" for i in range(1, users + 1)],
                BENCH_PASSWORD,
                messages[: args.idle_messages],
                empty_first=False,
            )
            print(f"  filled: {result['fill']}", flush=True)
        await asyncio.sleep(2)
        result["rss_before_mb"] = round(memory_kb(server.pid, "VmRSS") / 1024, 1)
        failures: Counter[str] = Counter()
        first_failures: list[str] = []

        async def opener(users_: Iterable[int], parallel: int) -> None:
            gate = asyncio.Semaphore(parallel)

            async def one(u: int) -> None:
                async with gate:
                    try:
                        idlers.append(await open_idler(server.imap_port, u, board))
                    except (ImapError, OSError, TimeoutError, asyncio.IncompleteReadError) as e:
                        failures[type(e).__name__] += 1
                        if len(first_failures) < 5:
                            first_failures.append(f"user{u}: {e!r}")

            await asyncio.gather(*(one(u) for u in users_))

        cpu0 = cpu_of(server.cpu_roots())
        t0 = time.perf_counter()
        # First one connection per user: each costs an argon2 check (the server runs two
        # at a time); then the rest, whose logins hit the server's success cache.
        await opener(range(1, users + 1), 8)
        t1 = time.perf_counter()
        rest = [1 + i % users for i in range(users, n)]
        await opener(rest, 200)
        t2 = time.perf_counter()
        cpu1 = cpu_of(server.cpu_roots())
        result["setup"] = {
            "first_logins_s": round(t1 - t0, 1),
            "other_connections_s": round(t2 - t1, 1),
            "total_s": round(t2 - t0, 1),
            "server_cpu_s": round(sum(cpu1.values()) - sum(cpu0.values()), 1),
            "failures": dict(failures),
            "first_failures": first_failures,
        }
        result["idling"] = len(idlers)
        print(
            f"  {len(idlers)} idling after {t2 - t0:.1f} s (first logins {t1 - t0:.1f} s);"
            f" failures {dict(failures)} {first_failures[:2]}",
            flush=True,
        )
        server.check_alive()
        await asyncio.sleep(5)
        rss = memory_kb(server.pid, "VmRSS")
        result["rss_idle_mb"] = round(rss / 1024, 1)
        result["rss_per_connection_kb"] = round(
            (rss - result["rss_before_mb"] * 1024) / max(1, len(idlers)), 1
        )
        # What the idle connections cost while nothing happens.
        c0 = cpu_of(server.cpu_roots())
        await asyncio.sleep(args.idle_quiet_s)
        c1 = cpu_of(server.cpu_roots())
        result["idle_cpu_pct"] = round(
            100 * (sum(c1.values()) - sum(c0.values())) / args.idle_quiet_s, 2
        )
        print(
            f"  server RSS {result['rss_before_mb']} MB before, {result['rss_idle_mb']} MB"
            f" with {len(idlers)} idling ({result['rss_per_connection_kb']} KB each);"
            f" idle CPU {result['idle_cpu_pct']}%",
            flush=True,
        )
        # Deliveries: one message to one idling user at a time; when does every one of
        # its connections hear the EXISTS?
        by_user = Counter(i.user for i in idlers if i.closed is None)
        candidates = sorted(by_user)
        rng = random.Random(7)
        samples = []
        for k in range(args.idle_samples):
            user = candidates[rng.randrange(len(candidates))]
            needed = sum(1 for i in idlers if i.user == user and i.closed is None)
            times: list[float] = []
            done = asyncio.Event()
            waiting: dict[str, Any] = {"needed": needed, "times": times, "done": done}
            board[user] = waiting
            raw = messages[k % len(messages)]
            started, accepted = await asyncio.to_thread(delivery, server.smtp_port, user, raw)
            try:
                async with asyncio.timeout(args.idle_push_timeout):
                    await done.wait()
            except TimeoutError:
                pass
            del board[user]
            sample: dict[str, Any] = {
                "user": user,
                "connections": needed,
                "heard": len(times),
                "smtp_s": round(accepted - started, 4),
                "first_after_250_s": round(min(times) - accepted, 4) if times else None,
                "last_after_250_s": round(max(times) - accepted, 4) if times else None,
                "last_after_send_s": round(max(times) - started, 4) if times else None,
            }
            samples.append(sample)
            print(
                f"  push {k + 1}: user{user}, {len(times)}/{needed} connections heard EXISTS;"
                f" first {sample['first_after_250_s']} s, last {sample['last_after_250_s']} s"
                f" after the SMTP 250 (SMTP took {sample['smtp_s']} s)",
                flush=True,
            )
            await asyncio.sleep(args.idle_gap_s)
        result["rss_after_pushes_mb"] = round(memory_kb(server.pid, "VmRSS") / 1024, 1)
        result["hwm_mb"] = round(memory_kb(server.pid, "VmHWM") / 1024, 1)
        last = [s["last_after_250_s"] for s in samples if s["last_after_250_s"] is not None]
        first = [s["first_after_250_s"] for s in samples if s["first_after_250_s"] is not None]
        whole = [s["last_after_send_s"] for s in samples if s["last_after_send_s"] is not None]
        result["push"] = {
            "samples": samples,
            "missed": sum(s["connections"] - s["heard"] for s in samples),
            "first_p50_s": pct(first, 50),
            "first_max_s": max(first, default=None),
            "last_p50_s": pct(last, 50),
            "last_max_s": max(last, default=None),
            "from_send_p50_s": pct(whole, 50),
            "from_send_max_s": max(whole, default=None),
        }
        result["dropped_while_idle"] = sum(1 for i in idlers if i.closed is not None)
        result["dropped_examples"] = [i.closed for i in idlers if i.closed][:5]
        server.check_alive()
        for idler in idlers:
            if idler.task:
                idler.task.cancel()
            idler.client.close()
        await asyncio.sleep(1)
    return result


# --- report ------------------------------------------------------------------------------


def median(values: Iterable[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return statistics.median(found) if found else None


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "—" if value is None else format(value, spec)


def summarise(runs: list[LoadRun], clients: list[int]) -> list[dict[str, Any]]:
    cells = []
    for c in clients:
        cell: dict[str, Any] = {"clients": c}
        for system in ("govmail", "dovecot"):
            mine = [r for r in runs if r.system == system and r.clients == c]
            for attr in (
                "bodies_per_s",
                "ops_per_s",
                "server_cpu_s",
                "cpu_us_per_body",
                "peak_rss_mb",
                "peak_pss_mb",
                "wall_s",
            ):
                cell[f"{system}_{attr}"] = median(getattr(r, attr) for r in mine)
            cell[f"{system}_bodies_runs"] = [r.bodies_per_s for r in mine]
            cell[f"{system}_errors"] = sum(sum(r.errors.values()) for r in mine)
        for attr in ("bodies_per_s", "ops_per_s"):
            g, d = cell[f"govmail_{attr}"], cell[f"dovecot_{attr}"]
            cell[f"ratio_{attr}"] = round(g / d, 3) if g and d else None
        g, d = cell["govmail_cpu_us_per_body"], cell["dovecot_cpu_us_per_body"]
        cell["cpu_ratio"] = round(g / d, 2) if g and d else None
        cells.append(cell)
    return cells


def print_report(
    cells: list[dict[str, Any]], idle: dict[str, Any] | None, profile: dict[str, Any] | None
) -> None:
    if any(c["govmail_bodies_runs"] or c["dovecot_bodies_runs"] for c in cells):
        print_cells(cells)
    if idle:
        print_idle(idle)
    if profile:
        print("\n" + format_profile(profile), end="")
        print(f"raw stacks: {profile['raw']} (speedscope.app opens them); top: {profile['top']}")


def print_cells(cells: list[dict[str, Any]]) -> None:
    print(
        "\n| C | govmail bodies/s (runs) | Dovecot bodies/s (runs) | ratio bodies | ops/s g / d"
        " | ratio ops | server CPU s g / d | CPU µs/body g / d | peak RSS MB g / d (d PSS)"
        " | errors g / d |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in cells:

        def runs(s: str, c: dict[str, Any] = c) -> str:
            return ", ".join(f"{v:.0f}" for v in c[f"{s}_bodies_runs"])

        print(
            f"| {c['clients']} | {fmt(c['govmail_bodies_per_s'], '.0f')} ({runs('govmail')})"
            f" | {fmt(c['dovecot_bodies_per_s'], '.0f')} ({runs('dovecot')})"
            f" | {fmt(c['ratio_bodies_per_s'], '.2f')}"
            f" | {fmt(c['govmail_ops_per_s'])} / {fmt(c['dovecot_ops_per_s'])}"
            f" | {fmt(c['ratio_ops_per_s'], '.2f')}"
            f" | {fmt(c['govmail_server_cpu_s'])} / {fmt(c['dovecot_server_cpu_s'])}"
            f" | {fmt(c['govmail_cpu_us_per_body'], '.0f')} / "
            f"{fmt(c['dovecot_cpu_us_per_body'], '.0f')}"
            f" | {fmt(c['govmail_peak_rss_mb'], '.0f')} / {fmt(c['dovecot_peak_rss_mb'], '.0f')}"
            f" ({fmt(c['dovecot_peak_pss_mb'], '.0f')})"
            f" | {c['govmail_errors']} / {c['dovecot_errors']} |"
        )


def print_idle(idle: dict[str, Any]) -> None:
    p = idle.get("push", {})
    s = idle.get("setup", {})
    print(
        f"\nIDLE: {idle.get('idling')} of {idle['connections']} connections idling over"
        f" {idle['users']} users ({idle['messages_per_inbox']} messages per INBOX), set up in"
        f" {s.get('total_s')} s (first logins {s.get('first_logins_s')} s); server RSS"
        f" {idle.get('rss_before_mb')} MB before, {idle.get('rss_idle_mb')} MB idling"
        f" ({idle.get('rss_per_connection_kb')} KB/connection), HWM {idle.get('hwm_mb')} MB;"
        f" idle CPU {idle.get('idle_cpu_pct')}%\n"
        f"  EXISTS after the SMTP 250, to the user's last connection: p50"
        f" {fmt(p.get('last_p50_s'), '.3f')} s, max {fmt(p.get('last_max_s'), '.3f')} s"
        f" (first connection p50 {fmt(p.get('first_p50_s'), '.3f')} s; from the SMTP"
        f" connect p50 {fmt(p.get('from_send_p50_s'), '.3f')} s, max"
        f" {fmt(p.get('from_send_max_s'), '.3f')} s); missed {p.get('missed')},"
        f" dropped {idle.get('dropped_while_idle')}"
    )


# --- main ----------------------------------------------------------------------------------


def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def describe(args: argparse.Namespace, source: str, messages: list[bytes]) -> dict[str, Any]:
    return {
        "command": " ".join(sys.argv),
        "govmail_source": source,
        "database": args.database_url or "sqlite",
        "cpus": os.cpu_count(),
        "load_generator": f"{LOADGEN} --users C --rounds R",
        "rounds": {c: rounds_for(args, c) for c in args.clients},
        "messages_per_mailbox": args.messages,
        "message_bytes_mean": round(statistics.mean(map(len, messages))),
        "message_bytes_total": sum(map(len, messages)),
        "search": 'SUBJECT "message 7"',
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


async def run_all(args: argparse.Namespace, work: Path, messages: list[bytes]) -> dict[str, Any]:
    runs: list[LoadRun] = []
    setup: dict[str, Any] = {}
    profile = None
    if args.runs or args.profile:
        runs, setup, profile = await throughput(args, work, messages)
    cells = summarise(runs, args.clients)
    idle = await idle_test(args, work, messages) if args.idle else None
    if args.database_url:
        await drop_pg_database(args.database_url)
    print_report(cells, idle, profile)
    return {
        "cells": cells,
        "runs": [asdict(r) for r in runs],
        "setup": setup,
        "idle": idle,
        "profile": profile,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int_list, default=[10, 50])
    parser.add_argument("--messages", type=int, default=1000, help="per mailbox")
    parser.add_argument("--runs", type=int, default=3, help="per cell; medians (0: none)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="sessions per client in one run (imap_load.py --rounds); 0: from --bodies",
    )
    parser.add_argument(
        "--bodies",
        type=int,
        default=100_000,
        help="bodies fetched per run when --rounds is 0 (C=10: 10 rounds, C=50: 2)",
    )
    parser.add_argument("--warmup", type=int, default=1, help="0: no unmeasured first run")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument(
        "--database-url", help="postgresql+asyncpg://…/DB (dropped and recreated per server)"
    )
    parser.add_argument("--idle", type=int, default=10000, help="IDLE connections (0: none)")
    parser.add_argument("--idle-users", type=int, default=500)
    parser.add_argument("--idle-messages", type=int, default=100, help="per idle user's INBOX")
    parser.add_argument("--idle-samples", type=int, default=10, help="deliveries timed")
    parser.add_argument("--idle-gap-s", type=float, default=1.0)
    parser.add_argument("--idle-quiet-s", type=float, default=10.0)
    parser.add_argument("--idle-push-timeout", type=float, default=10.0)
    parser.add_argument(
        "--profile",
        nargs="?",
        const="wall",
        choices=("wall", "gil"),
        help="one more govmail load run under py-spy (wall: busy threads;"
        " gil: the GIL holder only)",
    )
    parser.add_argument("--command-timeout", type=float, default=300.0)
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=25.0,
        help="before each run, wait until the machine is less busy (%%)",
    )
    parser.add_argument("--quiet-wait", type=float, default=60.0, help="at most (s)")
    parser.add_argument("--git-rev", help="serve this commit's src/ (git archive)")
    parser.add_argument("--out", type=Path, default=RESULTS / "imap_load.json")
    args = parser.parse_args()
    if max(args.clients) > 100:
        parser.error("the reference has user1..user100: at most 100 clients")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    messages = make_messages(args.messages)
    with tempfile.TemporaryDirectory(prefix="govmail-imap-bench-") as tmp:
        try:
            if args.git_rev:
                source = f"git {use_revision(args.git_rev, Path(tmp))}"
            else:
                source = "working tree " + str(git("describe", "--always", "--dirty")).strip()
            meta = describe(args, source, messages)
            print(json.dumps(meta), flush=True)
            results = asyncio.run(run_all(args, Path(tmp), messages))
        except BenchError as exc:
            sys.exit(f"FAILED: {exc}")
    args.out.write_text(json.dumps({"meta": meta, **results}, indent=2), encoding="utf-8")
    print(f"\nresults -> {args.out}")


if __name__ == "__main__":
    main()
