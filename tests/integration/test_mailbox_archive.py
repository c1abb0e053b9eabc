"""Exporting a mailbox to the ZIP the centre keeps before deleting it (R9), on SQLite and
PostgreSQL: mail delivered by SMTP, folders and flags set with imapclient, then the
archive opened with zipfile as the centre would."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient

from govmail.config import load_config
from govmail.core.errors import NotFound
from govmail.directory.people import remove_person
from govmail.mailstore.archive import MailboxArchive, export_mailbox
from govmail.store.blobs import FileBlobStore
from govmail.store.database import Database
from tests.integration.mailserver import (
    AN,
    BINH,
    DOMAIN,
    PASSWORD,
    RunningServer,
    mailbox_messages,
    mx,
)

VIETNAMESE = (
    b"From: Van phong <vp@example.org>\r\nTo: nvan@khanhhoa.gov.vn\r\n"
    b"Subject: =?utf-8?b?R2nhuqV5IG3hu51p?=\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    + "Kính gửi đồng chí Nguyễn Văn An,\r\nMời dự họp lúc 8 giờ sáng thứ Hai.\r\n".encode()
)


def _plain(subject: str) -> bytes:
    return f"From: a@example.org\r\nTo: {AN}\r\nSubject: {subject}\r\n\r\nNoi dung.\r\n".encode()


def _with_attachment() -> bytes:
    msg = EmailMessage()
    msg["From"] = "vp@example.org"
    msg["To"] = AN
    msg["Subject"] = "Ho so du an"
    msg.set_content("Gui kem ho so.\n")
    pdf = b"%PDF-1.4\n" + os.urandom(3 * 1024 * 1024) + b"\n%%EOF\n"
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="ho-so.pdf")
    return msg.as_bytes(policy=SMTP)


def _export(data_dir: Path, ref: str, dest: Path) -> MailboxArchive:
    cfg = load_config(data_dir)

    async def run() -> MailboxArchive:
        db = Database(cfg.effective_database_url)
        try:
            return await export_mailbox(db, cfg, FileBlobStore(cfg.blob_dir), ref, dest)
        finally:
            await db.dispose()

    return asyncio.run(run())


def _remove(data_dir: Path, ref: str) -> None:
    cfg = load_config(data_dir)

    async def run() -> None:
        db = Database(cfg.effective_database_url)
        try:
            await remove_person(db, cfg, ref, actor="test")
        finally:
            await db.dispose()

    asyncio.run(run())


@contextmanager
def _imapclient(server: RunningServer, login: str = AN) -> Iterator[IMAPClient]:
    client = IMAPClient("127.0.0.1", port=server.port("imap"), ssl=False, timeout=30)
    client.login(login, PASSWORD)
    try:
        yield client
    finally:
        client.logout()


def _open(archive: MailboxArchive) -> tuple[zipfile.ZipFile, dict[str, Any]]:
    zf = zipfile.ZipFile(archive.path)
    assert zf.testzip() is None  # every member's CRC checks out
    return zf, json.loads(zf.read("manifest.json"))


def _messages(manifest: dict[str, Any], folder: str) -> dict[int, dict[str, Any]]:
    (entry,) = [f for f in manifest["folders"] if f["name"] == folder]
    return {m["uid"]: m for m in entry["messages"]}


def _assert_private_and_alone(archive: MailboxArchive, dest: Path) -> None:
    """Owner-only file in an owner-only directory, and no temporary file left beside it."""
    assert stat.S_IMODE(archive.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    assert archive.size == archive.path.stat().st_size
    assert [p.name for p in dest.iterdir() if p.name.startswith(".")] == []


def test_export_keeps_folders_bytes_and_flags(server: RunningServer, tmp_path: Path) -> None:
    attached = _with_attachment()
    with mx(server) as client:
        for raw in (_plain("Thong bao"), VIETNAMESE, attached):
            assert client.sendmail("vp@example.org", [AN], raw) == {}
    with _imapclient(server) as client:
        client.create_folder("Dự án/2024")
        client.select_folder("INBOX")
        client.copy([2], "Dự án/2024")
        client.add_flags([1], [b"\\Seen"])
        client.add_flags([2], [b"\\Flagged", b"$Important"])

    dest = tmp_path / "archives"
    archive = _export(server.data_dir, AN, dest)

    assert archive.address == AN
    assert archive.path.parent == dest
    assert archive.path.name.startswith(f"{AN}-") and archive.path.suffix == ".zip"
    assert (archive.messages, archive.missing) == (4, 0)
    _assert_private_and_alone(archive, dest)
    zf, manifest = _open(archive)
    names = set(zf.namelist())
    # The five default folders, the new one and its parent, each a directory.
    for folder in ("INBOX", "Sent", "Drafts", "Trash", "Junk", "Dự án", "Dự án/2024"):
        assert folder + "/" in names
    assert {"README.txt", "manifest.json"} <= names
    assert {n for n in names if n.endswith(".eml")} == {
        "INBOX/1.eml",
        "INBOX/2.eml",
        "INBOX/3.eml",
        "Dự án/2024/1.eml",
    }
    # Exactly the stored bytes, which end with exactly what was sent (8-bit and 3 MB alike).
    stored = {m.uid: raw for m, raw in mailbox_messages(server.data_dir, AN)}
    for uid, sent in ((1, _plain("Thong bao")), (2, VIETNAMESE), (3, attached)):
        assert zf.read(f"INBOX/{uid}.eml") == stored[uid]
        assert stored[uid].endswith(sent)
    assert zf.read("Dự án/2024/1.eml") == stored[2]
    assert zf.getinfo("INBOX/3.eml").compress_type == zipfile.ZIP_DEFLATED

    assert manifest["address"] == AN and manifest["exported_at"]
    assert manifest["totals"] == {"folders": 7, "messages": 4, "missing": 0}
    inbox = _messages(manifest, "INBOX")
    assert inbox[1]["flags"] == ["\\Seen"] and inbox[1]["keywords"] == []
    assert inbox[2]["flags"] == ["\\Flagged"] and inbox[2]["keywords"] == ["$Important"]
    assert inbox[3]["flags"] == [] and inbox[3]["size"] == len(stored[3])
    assert inbox[3]["blob"] == {m.uid: m.blob for m, _ in mailbox_messages(server.data_dir, AN)}[3]
    assert inbox[1]["internal_date"].endswith("+00:00")
    (project,) = [f for f in manifest["folders"] if f["name"] == "Dự án/2024"]
    assert project["uidvalidity"] > 0 and [m["file"] for m in project["messages"]] == [
        "Dự án/2024/1.eml"
    ]
    readme = zf.read("README.txt").decode("utf-8-sig")
    assert AN in readme and ".eml" in readme and "Hộp thư đến" in readme


def test_awkward_folder_names_become_safe_distinct_paths(
    server: RunningServer, tmp_path: Path
) -> None:
    awkward = ["..", "Báo cáo: Q1", "Báo cáo_ Q1", "manifest.json", "CON", "a\\b", "7.eml"]
    with _imapclient(server) as client:
        for name in awkward:
            client.create_folder(name)
    archive = _export(server.data_dir, AN, tmp_path / "out")
    zf, manifest = _open(archive)
    paths = {f["name"]: f["path"] for f in manifest["folders"]}
    assert set(awkward) <= set(paths)
    # Every folder has its own directory, none escapes the archive or clashes with a file.
    assert len(set(paths.values())) == len(paths)
    for path in paths.values():
        parts = path.split("/")
        assert ".." not in parts and "." not in parts and "" not in parts
        assert not any(c in path for c in ':*?"<>|\\')
        assert path + "/" in zf.namelist()
    assert paths["manifest.json"] != "manifest.json"
    assert paths["Báo cáo: Q1"] == "Báo cáo_ Q1" and paths["Báo cáo_ Q1"] == "Báo cáo_ Q1 (2)"


def test_empty_mailbox_exports_a_valid_archive(server: RunningServer, tmp_path: Path) -> None:
    archive = _export(server.data_dir, BINH, tmp_path / "out")
    assert (archive.address, archive.messages, archive.missing) == (BINH, 0, 0)
    zf, manifest = _open(archive)
    assert not [n for n in zf.namelist() if n.endswith(".eml")]
    assert manifest["totals"]["messages"] == 0
    assert all(f["messages"] == [] for f in manifest["folders"])
    assert "README.txt" in zf.namelist()
    _assert_private_and_alone(archive, tmp_path / "out")


def test_a_deleted_mailbox_can_still_be_exported(server: RunningServer, tmp_path: Path) -> None:
    with mx(server) as client:
        assert client.sendmail("a@example.org", [BINH], _plain("Truoc khi xoa")) == {}
    dest = tmp_path / "out"
    first = _export(server.data_dir, "ltbinh", dest)
    _remove(server.data_dir, BINH)

    again = _export(server.data_dir, BINH, dest)
    _, manifest = _open(again)
    assert manifest["mailbox"]["status"] == "deleted"
    assert again.messages == 1 and again.path != first.path and first.path.exists()
    assert zipfile.ZipFile(again.path).read("INBOX/1.eml").endswith(_plain("Truoc khi xoa"))
    with pytest.raises(NotFound):
        _export(server.data_dir, f"nobody@{DOMAIN}", dest)


def test_a_lost_blob_is_listed_as_missing_not_fatal(server: RunningServer, tmp_path: Path) -> None:
    with mx(server) as client:
        for subject in ("Mot", "Hai"):
            assert client.sendmail("a@example.org", [AN], _plain(subject)) == {}
    (lost, _), (kept, raw) = mailbox_messages(server.data_dir, AN)
    FileBlobStore(load_config(server.data_dir).blob_dir).delete(lost.blob)

    archive = _export(server.data_dir, AN, tmp_path / "out")
    assert (archive.messages, archive.missing) == (2, 1)
    zf, manifest = _open(archive)
    inbox = _messages(manifest, "INBOX")
    assert inbox[lost.uid]["missing"] is True and inbox[lost.uid]["file"] is None
    assert f"INBOX/{lost.uid}.eml" not in zf.namelist()
    assert zf.read(f"INBOX/{kept.uid}.eml") == raw
    assert manifest["totals"]["missing"] == 1
    assert "1 thư không đọc được" in zf.read("README.txt").decode("utf-8-sig")
