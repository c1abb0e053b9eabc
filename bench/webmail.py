"""Figures of the webmail issue: server time of the message list and the message view on a
10,000-message folder (p50/p95), and inbox page throughput under 50 concurrent users.

A fresh data directory (SQLite, or ``--database-url``) gets one official with
``--messages`` messages in INBOX and ``--users`` more officials with ``--per-user`` each
(filed with the store's APPEND service), then a real ``govmail serve`` is started.
Then, over HTTP on loopback:
1. the list page of the big folder, sorted by date, sender, subject and size, at the first,
   a middle and the last page; and the reading page plus its HTML frame of random
   messages: ``--samples`` sequential requests each, p50/p95 of the time to the full
   answer (loopback: this is the server's time plus well under a millisecond);
2. ``--users`` clients (httpx async, one session each) loading their inbox page in a loop
   for ``--seconds``: pages/s, p50/p95.
Usage: ``.venv/bin/python bench/webmail.py [--database-url URL]``; results are printed and
written to bench/results/webmail.json (``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection

from govmail.config import load_config
from govmail.core.mime import analyze_message
from govmail.core.sample import generate_officials
from govmail.directory.addresses import find_mailbox
from govmail.mailstore.delivery import StoredMessage
from govmail.mailstore.flags import Flags
from govmail.mailstore.folders import ensure_default_folders
from govmail.mailstore.messages import append_message, find_folder
from govmail.store.blobs import FileBlobStore
from govmail.store.database import Database

GOVMAIL = [sys.executable, "-m", "govmail"]
DOMAIN = "khanhhoa.gov.vn"
PASSWORD = "12345678"
SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Võ", "Đặng", "Bùi"]
SUBJECTS = [
    "Báo cáo tuần",
    "Giấy mời họp giao ban",
    "Kế hoạch công tác tháng",
    "Công văn về việc triển khai",
    "Thông báo lịch trực",
    "Tờ trình phê duyệt dự toán",
]


def cli(data: Path, *args: str) -> str:
    done = subprocess.run(
        [*GOVMAIL, *args, "--data", str(data)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"govmail {' '.join(args)} failed: {done.stderr or done.stdout}")
    return done.stdout


def make_message(number: int, rng: random.Random) -> bytes:
    message = EmailMessage()
    sender = f"{rng.choice(SURNAMES)} Văn {number % 97}"
    message["From"] = f"{sender} <nguoigui{number % 300}@example.org>"
    message["To"] = f"nvan@{DOMAIN}"
    message["Subject"] = f"{rng.choice(SUBJECTS)} số {number}"
    message["Date"] = format_datetime(time_from(1_700_000_000 + number * 600 + rng.randint(0, 500)))
    text = f"Nội dung thư số {number}. " + "Kính gửi các đồng chí. " * rng.randint(5, 200)
    message.set_content(text)
    if number % 3 == 0:
        message.add_alternative(f"<p>{text}</p><p><b>Trân trọng</b></p>", subtype="html")
    return message.as_bytes().replace(b"\n", b"\r\n")


def time_from(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def start(data: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    args = [*GOVMAIL, "serve", "--data", str(data), "--json"]
    for name in ("web", "smtp", "submission", "submissions", "imap", "imaps"):
        args += [f"--{name}", "127.0.0.1:0"]
    log = (data / "serve.log").open("ab")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith(b'{"listening"'):
        raise SystemExit(f"govmail serve did not start: {line!r}")
    listening: dict[str, str] = json.loads(line)["listening"]
    return proc, listening


def fill(data: Path, batches: list[tuple[str, list[bytes]]]) -> None:
    """File the messages in INBOX of each address through the store's own APPEND service,
    before the server starts (IMAP APPEND one by one costs an fsync'd commit each)."""
    cfg = load_config(data)
    blobs = FileBlobStore(cfg.blob_dir)

    def put(raw: bytes) -> StoredMessage:
        return StoredMessage(blobs.put(raw), len(raw), analyze_message(raw))

    async def run() -> None:
        db = Database(cfg.effective_database_url)
        try:
            for address, raws in batches:
                async with db.read() as conn:
                    box = (await find_mailbox(conn, cfg, address)).mailbox_id
                with ThreadPoolExecutor(16) as pool:
                    stored = list(pool.map(put, raws))

                def work(
                    conn: Connection, box: int = box, stored: list[StoredMessage] = stored
                ) -> None:
                    ensure_default_folders(conn, [box])
                    folder = find_folder(conn, box, "INBOX")
                    if folder is None:
                        raise SystemExit("no INBOX")
                    for message in stored:
                        append_message(conn, box, folder.id, message, Flags(), message.summary.date)

                await db.run(work, write=True)
        finally:
            await db.dispose()

    asyncio.run(run())


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 2),
        "n": len(ordered),
    }


def login(url: str, address: str) -> httpx.Client:
    client = httpx.Client(base_url=url, headers={"Origin": url}, timeout=60)
    reply = client.post("/login", data={"login": address, "password": PASSWORD})
    if reply.status_code != 303 or reply.headers["location"] != "/":
        raise SystemExit(f"login of {address} failed: {reply.status_code}")
    return client


def timed(client: httpx.Client, path: str, samples: int) -> dict[str, float]:
    spent = []
    for _ in range(samples):
        began = time.perf_counter()
        reply = client.get(path)
        spent.append(time.perf_counter() - began)
        if reply.status_code != 200:
            raise SystemExit(f"GET {path}: {reply.status_code}")
    return percentiles(spent)


async def throughput(url: str, addresses: list[str], seconds: float) -> dict[str, float]:
    clients = []
    for address in addresses:
        client = httpx.AsyncClient(base_url=url, headers={"Origin": url}, timeout=60)
        reply = await client.post("/login", data={"login": address, "password": PASSWORD})
        if reply.status_code != 303:
            raise SystemExit(f"login of {address} failed")
        clients.append(client)
    spent: list[float] = []
    deadline = time.perf_counter() + seconds

    async def user(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            reply = await client.get("/")
            spent.append(time.perf_counter() - began)
            if reply.status_code != 200:
                raise SystemExit(f"inbox: {reply.status_code}")

    began = time.perf_counter()
    await asyncio.gather(*(user(c) for c in clients))
    elapsed = time.perf_counter() - began
    for client in clients:
        await client.aclose()
    return {"pages_per_s": round(len(spent) / elapsed, 1), **percentiles(spent)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--per-user", type=int, default=100)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--out", type=Path, default=Path("bench/results/webmail.json"))
    options = parser.parse_args()
    if options.database_url:
        os.environ["GOVMAIL_DATABASE_URL"] = options.database_url
    rng = random.Random(2026)
    with tempfile.TemporaryDirectory(prefix="govmail-webmail-") as tmp:
        data = Path(tmp) / "data"
        subprocess.run(
            [*GOVMAIL, "init", "--data", str(data), "--domain", DOMAIN],
            check=True,
            capture_output=True,
        )
        cli(data, "agency", "add", "--name", "Văn phòng UBND tỉnh", "--abbr", "vp")
        names = ["Nguyễn Văn An"] + [o.full_name for o in generate_officials(options.users)]
        addresses = []
        for name in names:
            out = cli(
                data,
                "person",
                "add",
                "--agency",
                "vp",
                "--name",
                name,
                "--password",
                PASSWORD,
                "--json",
            )
            addresses.append(json.loads(out)["address"])
        began = time.perf_counter()
        small = [make_message(n, rng) for n in range(options.per_user)]
        fill(
            data,
            [(addresses[0], [make_message(n, rng) for n in range(options.messages)])]
            + [(address, small) for address in addresses[1:]],
        )
        print(f"filled in {time.perf_counter() - began:.0f} s", file=sys.stderr)
        proc, listening = start(data)
        try:
            url = listening["web"].rstrip("/")

            client = login(url, addresses[0])
            page = client.get("/").text
            folder = re.search(r'href="/folder/(\d+)" data-role="inbox"', page)
            if folder is None:
                raise SystemExit("no inbox link")
            inbox = folder.group(1)
            last = -(-options.messages // 50)
            results: dict[str, Any] = {"messages": options.messages, "list": {}, "view": {}}
            for sort in ("date", "from", "subject", "size"):
                for number in (1, last // 2, last):
                    path = f"/folder/{inbox}?sort={sort}&page={number}"
                    results["list"][f"{sort} page {number}"] = timed(client, path, options.samples)
            uids = [rng.randint(1, options.messages) for _ in range(options.samples)]
            view, frame = [], []
            for uid in uids:
                for target, path in (
                    (view, f"/folder/{inbox}/{uid}"),
                    (frame, f"/folder/{inbox}/{uid}/body"),
                ):
                    began = time.perf_counter()
                    reply = client.get(path)
                    target.append(time.perf_counter() - began)
                    if reply.status_code != 200:
                        raise SystemExit(f"GET {path}: {reply.status_code}")
            results["view"] = {"page": percentiles(view), "html frame": percentiles(frame)}
            results["search"] = timed(client, "/search?q=bao+cao+tuan+so+99", 10)
            client.close()
            results["throughput"] = asyncio.run(throughput(url, addresses[1:], options.seconds))
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    print(json.dumps(results, indent=2, ensure_ascii=False))
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
