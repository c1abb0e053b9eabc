"""A real ``govmail serve`` process on ephemeral loopback ports, and what its store holds."""

from __future__ import annotations

import asyncio
import imaplib
import json
import os
import re
import select
import signal
import smtplib
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from govmail.config import load_config
from govmail.directory.addresses import find_mailbox
from govmail.mailstore.folders import list_folders
from govmail.mailstore.reading import FolderMessage, folder_contents
from govmail.store.blobs import FileBlobStore
from govmail.store.database import Database

LISTENERS = ("web", "smtp", "submission", "submissions", "imap", "imaps")

# The province of the ``province`` fixture (tests/integration/conftest.py).
DOMAIN = "khanhhoa.gov.vn"
AN = f"nvan@{DOMAIN}"
BINH = f"ltbinh@{DOMAIN}"
TTR = f"ttr@{DOMAIN}"
PASSWORD = "12345678"


@dataclass
class RunningServer:
    proc: subprocess.Popen[bytes]
    data_dir: Path
    listening: dict[str, str]

    def port(self, name: str) -> int:
        return int(self.listening[name].rsplit(":", 1)[1].strip("/"))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            self._close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self._close()

    def log(self) -> str:
        """What the server wrote to stderr so far."""
        return (self.data_dir / "serve.log").read_text(encoding="utf-8", errors="replace")

    def _close(self) -> None:
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start_server(
    data_dir: Path,
    host: str = "127.0.0.1",
    *,
    smtp_port: int = 0,
    env: dict[str, str] | None = None,
) -> RunningServer:
    """Start ``govmail serve`` with every listener on ``host`` (an ephemeral port each,
    the MX on ``smtp_port`` if given) and wait until it prints where it listens."""
    args = [sys.executable, "-m", "govmail", "serve", "--data", str(data_dir), "--json"]
    for name in LISTENERS:
        args += [f"--{name}", f"{host}:{smtp_port if name == 'smtp' else 0}"]
    # stderr goes to a file: a pipe nobody reads would block a chatty server.
    with (data_dir / "serve.log").open("ab") as log:
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=log, env=env or os.environ.copy()
        )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    line = proc.stdout.readline() if ready else b""
    if not line:
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
        log_text = (data_dir / "serve.log").read_text(encoding="utf-8", errors="replace")
        raise RuntimeError(f"govmail serve did not start: {log_text}")
    if not line.startswith(b'{"listening"'):  # an error, printed as JSON: say which
        proc.wait(timeout=30)
        rest = proc.stdout.read()
        proc.stdout.close()
        raise RuntimeError(f"govmail serve did not start: {(line + rest).decode()}")
    listening = json.loads(line)["listening"]
    return RunningServer(
        proc, data_dir, {k: v.removeprefix("http://") for k, v in listening.items()}
    )


@contextmanager
def served(data_dir: Path, host: str = "127.0.0.1") -> Iterator[RunningServer]:
    server = start_server(data_dir, host)
    try:
        yield server
    finally:
        server.stop()


def set_option(data_dir: Path, key: str, value: object, section: str | None = None) -> None:
    """Change one ``key = value`` line of govmail.toml (in ``[section]`` when the key
    is not unique)."""
    path = data_dir / "govmail.toml"
    text = path.read_text(encoding="utf-8")
    start, end = 0, len(text)
    if section is not None:
        start = text.index(f"[{section}]\n")
        following = text.find("\n[", start + 1)
        end = following if following >= 0 else len(text)
    rendered = json.dumps(value)
    new, count = re.subn(rf"(?m)^{re.escape(key)} = .*$", f"{key} = {rendered}", text[start:end])
    if count != 1:
        raise KeyError(key)
    path.write_text(text[:start] + new + text[end:], encoding="utf-8")


def utf8_labelled(message: bytes) -> bytes:
    """``message`` (UTF-8 text without MIME fields) as govmail stores it: labelled with
    its charset at the end of its header (R12), every other byte as it came."""
    header, body = message.split(b"\r\n\r\n", 1)
    return (
        header + b"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8"
        b"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body
    )


def client_tls() -> ssl.SSLContext:
    """Trust the self-signed certificate of a test installation."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def mx(server: RunningServer) -> smtplib.SMTP:
    """An SMTP session with the MX, greeted as another mail server would."""
    client = smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30)
    client.ehlo("mta.example.org")
    return client


def submission(server: RunningServer, login: str = AN) -> smtplib.SMTP:
    """A submission session over STARTTLS, logged in as ``login``."""
    client = smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=30)
    client.starttls(context=client_tls())
    client.login(login, PASSWORD)
    return client


def mailbox_messages(
    data_dir: Path, address: str, folder: str = "INBOX"
) -> list[tuple[FolderMessage, bytes]]:
    """What the store holds in one folder of the mailbox at ``address``, with the bytes."""
    cfg = load_config(data_dir)
    blobs = FileBlobStore(cfg.blob_dir)

    async def read() -> list[tuple[FolderMessage, bytes]]:
        db = Database(cfg.effective_database_url)
        try:
            async with db.read() as conn:
                box = await find_mailbox(conn, cfg, address)
            found = await folder_contents(db, box.mailbox_id, folder)
            return [(m, blobs.get(m.blob)) for m in found]
        finally:
            await db.dispose()

    return asyncio.run(read())


def mailbox_folders(data_dir: Path, address: str) -> list[dict[str, object]]:
    """The folders of the mailbox at ``address`` (created on first use if missing)."""
    cfg = load_config(data_dir)

    async def read() -> list[dict[str, object]]:
        db = Database(cfg.effective_database_url)
        try:
            async with db.read() as conn:
                box = await find_mailbox(conn, cfg, address)
            return await db.run(partial(list_folders, mailbox_id=box.mailbox_id), write=True)
        finally:
            await db.dispose()

    return asyncio.run(read())


def db_execute(data_dir: Path, sql: str) -> None:
    """Change the installation's database behind the server's back (to set up a case)."""
    from sqlalchemy import text

    async def write() -> None:
        db = Database(load_config(data_dir).effective_database_url)
        try:
            async with db.write() as conn:
                await conn.execute(text(sql))
        finally:
            await db.dispose()

    asyncio.run(write())


def db_scalar(data_dir: Path, sql: str) -> object:
    """One value from the installation's database (for counts in assertions)."""
    from sqlalchemy import text

    async def read() -> object:
        db = Database(load_config(data_dir).effective_database_url)
        try:
            async with db.read() as conn:
                return await conn.scalar(text(sql))
        finally:
            await db.dispose()

    return asyncio.run(read())


def imap(server: RunningServer, login: str = AN) -> imaplib.IMAP4:
    """An IMAP session over plain loopback (treated as secure), logged in as ``login``."""
    client = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=30)
    client.login(login, PASSWORD)
    return client
