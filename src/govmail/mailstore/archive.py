"""Export of a whole mailbox to one ZIP file the centre keeps before the mailbox goes (R9).

When the centre deletes a personal mailbox (Mẫu 03) or an agency is merged or dissolved,
its mail is first written to ``<local>@<domain>-<YYYYmmdd-HHMMSS>.zip`` (time in Vietnam):
one directory per folder, each message as ``<uid>.eml`` with the bytes exactly as stored,
a ``manifest.json`` (flags, dates, sizes, blob keys) and a Vietnamese ``README.txt``.

Two steps keep it consistent and light:
1. In one read-only snapshot transaction (WAL snapshot on SQLite, REPEATABLE READ on
   PostgreSQL) the mailbox, its folders and its message rows are read page by page
   and spooled to an anonymous temporary file: the database sees a short read, and a
   delivery or expunge meanwhile cannot make the archive half old, half new.
2. Outside any transaction, on a worker thread, each message's blob is read and written
   to the ZIP one at a time, so memory holds one message and one page of rows, however
   large the mailbox. Message blobs are never deleted (only quarantined ones are), so
   a row read in step 1 still has its blob in step 2; one that does not is recorded as
   missing in the manifest and counted, never a reason to give up.

The ZIP is written to a hidden temporary name in ``dest_dir``, fsynced, then linked to
its final name (never replacing an older archive) and the directory fsynced: a crash
never leaves a half archive under a final name.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import tempfile
import time
import unicodedata
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from govmail.config import Config
from govmail.directory.addresses import aliases_by_mailbox, find_mailbox, full_address
from govmail.mailstore.flags import Flags
from govmail.mailstore.folders import DEFAULT_FOLDERS
from govmail.store.blobs import BlobStore, fsync_dir
from govmail.store.database import Database
from govmail.store.schema import agencies, folder_messages, folders, messages, people

VIETNAM = timezone(timedelta(hours=7), "ICT")  # file names and README times: no DST
FORMAT = "govmail-mailbox-archive"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
README = "README.txt"
PAGE = 2000  # message rows per query in the snapshot
PARTIAL_SUFFIX = ".partial"
# A temporary archive older than this was left by a crash, not by an export still running.
STALE_PARTIAL_S = 24 * 3600.0
# Bytes per path component: ext4/NTFS allow 255; Vietnamese is 2-3 bytes a letter.
MAX_COMPONENT_BYTES = 150

# Vietnamese names of the default folders for the README (as the webmail shows them).
_FOLDER_LABELS = {
    "INBOX": "Hộp thư đến",
    "Sent": "Đã gửi",
    "Drafts": "Thư nháp",
    "Trash": "Thùng rác",
    "Junk": "Thư rác",
}


@dataclass(frozen=True)
class MailboxArchive:
    """One archive written: where, for which address, what it holds.

    ``messages`` counts every message the manifest lists, ``missing`` those of them whose
    bytes could not be read (listed, no ``.eml``); ``size`` is the file's size in bytes.
    """

    path: Path
    address: str
    folders: int
    messages: int
    size: int
    missing: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "address": self.address,
            "folders": self.folders,
            "messages": self.messages,
            "missing": self.missing,
            "size": self.size,
        }


@dataclass(frozen=True)
class _Folder:
    name: str  # the IMAP name, "/" between levels
    path: str  # its directory in the ZIP, made safe
    special_use: str | None
    uidvalidity: int
    uidnext: int
    subscribed: bool


@dataclass
class _Snapshot:
    """What step 1 read: the mailbox and its folders; message rows are in ``rows``."""

    address: str
    mailbox: dict[str, Any]
    folders: list[_Folder]
    rows: IO[bytes]
    counts: list[int] = field(default_factory=list)  # messages per folder


async def export_mailbox(
    db: Database, cfg: Config, blobs: BlobStore, mailbox_ref: str, dest_dir: Path
) -> MailboxArchive:
    """Write the mailbox that ``mailbox_ref`` (an address or local part, of a mailbox in
    any status: a deleted one can be exported again) names to a new ZIP in ``dest_dir``
    (created with mode 0700 if missing); returns what was written. Raises NotFound for
    an unknown address. The file has mode 0600."""
    _make_private_dir(dest_dir)
    _sweep_partials(dest_dir)
    with tempfile.TemporaryFile(dir=dest_dir) as rows:
        snap = await _read_snapshot(db, cfg, mailbox_ref, rows)
        exported_at = datetime.now(UTC)
        return await asyncio.to_thread(_write_archive, snap, blobs, dest_dir, exported_at)


# --- Step 1: the snapshot ------------------------------------------------------------------

_PAGE_QUERY = (
    select(
        folder_messages.c.uid,
        folder_messages.c.flags,
        folder_messages.c.keywords,
        folder_messages.c.internal_date,
        folder_messages.c.size,
        messages.c.blob,
    )
    .join(messages, messages.c.id == folder_messages.c.message_id)
    .order_by(folder_messages.c.uid)
    .limit(PAGE)
)


async def _read_snapshot(db: Database, cfg: Config, mailbox_ref: str, rows: IO[bytes]) -> _Snapshot:
    async with db.engine.connect() as conn:
        if not db.is_sqlite:
            # READ COMMITTED would give each page its own view; SQLite's deferred BEGIN
            # already reads one WAL snapshot from the first SELECT to the end.
            conn = await conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        async with conn.begin():
            box = await find_mailbox(conn, cfg, mailbox_ref)
            address = full_address(box.local_part, cfg)
            aliases = (await aliases_by_mailbox(conn, cfg, [box.mailbox_id])).get(
                box.mailbox_id, ()
            )
            owner = await _owner_name(conn, box.person_id, box.agency_id)
            found = (
                await conn.execute(
                    select(
                        folders.c.id,
                        folders.c.name,
                        folders.c.special_use,
                        folders.c.uidvalidity,
                        folders.c.uidnext,
                        folders.c.subscribed,
                    ).where(folders.c.mailbox_id == box.mailbox_id)
                )
            ).all()
            ordered = sorted(found, key=lambda r: _folder_rank(r.name))
            paths = _zip_paths([r.name for r in ordered])
            snap = _Snapshot(
                address=address,
                mailbox={
                    "kind": box.kind,
                    "status": box.status,
                    "owner": owner,
                    "aliases": list(aliases),
                },
                folders=[
                    _Folder(
                        r.name,
                        paths[r.name],
                        r.special_use,
                        int(r.uidvalidity),
                        int(r.uidnext),
                        bool(r.subscribed),
                    )
                    for r in ordered
                ],
                rows=rows,
            )
            for index, folder in enumerate(ordered):
                snap.counts.append(await _spool_folder(conn, folder.id, index, rows))
    rows.flush()
    rows.seek(0)
    return snap


async def _spool_folder(conn: AsyncConnection, folder_id: int, index: int, out: IO[bytes]) -> int:
    """Append one folder's message rows to ``out`` (one JSON array a line), a page at a
    time by UID; returns how many."""
    count, last = 0, 0
    while True:
        page = (
            await conn.execute(
                _PAGE_QUERY.where(
                    folder_messages.c.folder_id == folder_id, folder_messages.c.uid > last
                )
            )
        ).all()
        for r in page:
            line = [
                index,
                r.uid,
                r.flags,
                r.keywords,
                _utc(r.internal_date).isoformat(),
                r.size,
                r.blob,
            ]
            out.write(json.dumps(line, ensure_ascii=False).encode() + b"\n")
        count += len(page)
        if len(page) < PAGE:
            return count
        last = page[-1].uid


async def _owner_name(conn: AsyncConnection, person_id: int | None, agency_id: int | None) -> str:
    if person_id is not None:
        name = await conn.scalar(select(people.c.full_name).where(people.c.id == person_id))
    else:
        name = await conn.scalar(select(agencies.c.name).where(agencies.c.id == agency_id))
    return str(name or "")


def _folder_rank(name: str) -> tuple[int, tuple[str, ...]]:
    """Default folders first (INBOX, Sent, …), then the others by level: a parent comes
    before its children."""
    order = list(DEFAULT_FOLDERS)
    return (order.index(name) if name in order else len(order), tuple(name.split("/")))


def _utc(value: datetime) -> datetime:
    # SQLite gives back naive datetimes; the store writes them in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- Folder names as ZIP paths ----------------------------------------------------------------

# Characters Windows refuses in file names, control characters, and the backslash that
# some extractors take for a separator.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"\\|?*]')
_WINDOWS_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{n}" for n in range(1, 10)]
    + [f"LPT{n}" for n in range(1, 10)]
)
_MESSAGE_FILE = re.compile(r"\d+\.eml", re.IGNORECASE)


def _safe_component(part: str) -> str:
    """One level of a folder name as a file name every system extracts: no separator,
    no ``.``/``..``, nothing Windows refuses, no clash with a message's ``<uid>.eml``."""
    text = _UNSAFE.sub("_", unicodedata.normalize("NFC", part))
    text = text.strip().rstrip(". ")  # Windows drops trailing dots and spaces
    if not text.strip("."):
        text = "_"
    if text.split(".")[0].upper() in _WINDOWS_DEVICES or _MESSAGE_FILE.fullmatch(text):
        text = "_" + text
    encoded = text.encode()
    if len(encoded) > MAX_COMPONENT_BYTES:
        text = encoded[:MAX_COMPONENT_BYTES].decode(errors="ignore").rstrip(". ")
    return text


def _zip_paths(names: list[str]) -> dict[str, str]:
    """IMAP folder name → its directory in the ZIP, for ``names`` in the order given
    (the first of two names that make the same path keeps it, the second gets " (2)").
    Levels stay levels; names differing only in case count as the same (Windows, macOS)."""
    taken: dict[str, set[str]] = {"": {MANIFEST.casefold(), README.casefold()}}
    paths: dict[str, str] = {}

    def path_of(name: str) -> str:
        if name in paths:
            return paths[name]
        parent, _, leaf = name.rpartition("/")
        base = path_of(parent) if parent else ""
        siblings = taken.setdefault(base, set())
        wanted = _safe_component(leaf)
        candidate, n = wanted, 1
        while candidate.casefold() in siblings:
            n += 1
            candidate = f"{wanted} ({n})"
        siblings.add(candidate.casefold())
        paths[name] = f"{base}/{candidate}" if base else candidate
        return paths[name]

    for name in names:
        path_of(name)
    return paths


# --- Step 2: the ZIP ----------------------------------------------------------------------------


def _write_archive(
    snap: _Snapshot, blobs: BlobStore, dest_dir: Path, exported_at: datetime
) -> MailboxArchive:
    stamp = exported_at.astimezone(VIETNAM).strftime("%Y%m%d-%H%M%S")
    final_name = f"{snap.address}-{stamp}.zip"
    tmp = dest_dir / f".{final_name}.{uuid.uuid4().hex}{PARTIAL_SUFFIX}"
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w+b") as out, tempfile.TemporaryFile(dir=dest_dir) as manifest:
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
                total, missing = _write_messages(archive, snap, blobs, manifest, exported_at)
                _write_readme(archive, snap, exported_at, total, missing)
                _add_spooled(archive, MANIFEST, manifest, exported_at)
            out.flush()
            os.fsync(out.fileno())
            size = os.fstat(out.fileno()).st_size
        final = _publish(tmp, dest_dir, final_name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return MailboxArchive(final, snap.address, len(snap.folders), total, size, missing)


def _write_messages(
    archive: zipfile.ZipFile,
    snap: _Snapshot,
    blobs: BlobStore,
    manifest: IO[bytes],
    exported_at: datetime,
) -> tuple[int, int]:
    """Each folder's directory and messages into ``archive``, the manifest into its spool
    as we go (streamed JSON: the whole of it never sits in memory). Returns (messages,
    missing)."""

    def emit(text: str) -> None:
        manifest.write(text.encode())

    head = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "address": snap.address,
        "exported_at": exported_at.isoformat(),
        "mailbox": snap.mailbox,
    }
    emit(_open_object(head) + ', "folders": [')
    rows = _spooled_rows(snap.rows)
    pending = next(rows, None)
    total = missing = 0
    for index, folder in enumerate(snap.folders):
        directory = zipfile.ZipInfo(folder.path + "/", _zip_time(exported_at))
        directory.external_attr = (0o40700 << 16) | 0x10  # a directory, owner only
        directory.CRC = directory.compress_size = directory.file_size = 0  # 3.11's mkdir
        archive.mkdir(directory)
        entry = {
            "name": folder.name,
            "path": folder.path,
            "special_use": folder.special_use,
            "uidvalidity": folder.uidvalidity,
            "uidnext": folder.uidnext,
            "subscribed": folder.subscribed,
            "count": snap.counts[index],
        }
        emit(("," if index else "") + "\n" + _open_object(entry) + ', "messages": [')
        first = True
        while pending is not None and pending[0] == index:
            _, uid, bits, keywords, internal_date, size, blob = pending
            flags = Flags.from_row(bits, keywords)
            record: dict[str, Any] = {
                "uid": uid,
                "file": f"{folder.path}/{uid}.eml",
                "flags": [n for n in flags.names() if n.startswith("\\")],
                "keywords": list(flags.keywords),
                "internal_date": internal_date,
                "size": size,
                "blob": blob,
            }
            try:
                data = blobs.get(blob)
            except OSError as exc:
                # Listed without bytes: an archive of the rest beats no archive at all.
                record.update(file=None, missing=True, error=type(exc).__name__)
                missing += 1
            else:
                info = zipfile.ZipInfo(
                    record["file"], _zip_time(datetime.fromisoformat(internal_date))
                )
                info.external_attr = 0o600 << 16
                archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
                del data
            emit(("," if not first else "") + "\n" + json.dumps(record, ensure_ascii=False))
            first = False
            total += 1
            pending = next(rows, None)
        emit("]}")
    emit('\n], "totals": ')
    emit(json.dumps({"folders": len(snap.folders), "messages": total, "missing": missing}))
    emit("}\n")
    return total, missing


def _open_object(value: dict[str, Any]) -> str:
    """``value`` as JSON without its closing brace, for more keys to follow."""
    return json.dumps(value, ensure_ascii=False)[:-1]


def _spooled_rows(rows: IO[bytes]) -> Iterator[list[Any]]:
    for line in rows:
        yield json.loads(line)


def _write_readme(
    archive: zipfile.ZipFile, snap: _Snapshot, exported_at: datetime, total: int, missing: int
) -> None:
    local = exported_at.astimezone(VIETNAM)
    owner = snap.mailbox["owner"]
    lines = [
        f"TỆP LƯU TRỮ HỘP THƯ {snap.address}" + (f" ({owner})" if owner else ""),
        "",
        f"Xuất lúc: {local:%H:%M:%S ngày %d/%m/%Y} (giờ Việt Nam).",
        f"Số thư mục: {len(snap.folders)}. Số thư: {total}.",
        "",
        "Tệp này chứa toàn bộ thư của hộp thư trên, được hệ thống thư điện tử công vụ xuất",
        "ra trước khi hộp thư bị xóa hoặc khi cơ quan bị sáp nhập, giải thể. Trung tâm quản",
        "lý hệ thống giữ tệp này để tra cứu khi cần.",
        "",
        "Mỗi thư mục trong tệp nén là một thư mục của hộp thư. Mỗi thư là một tệp .eml giữ",
        "nguyên nội dung gốc, kể cả tệp đính kèm; mọi chương trình đọc thư điện tử",
        "(Thunderbird, Outlook, Thư của Windows, Mail của macOS...) đều mở được tệp .eml.",
        "Tên tệp là số thứ tự (UID) của thư trong thư mục.",
        "",
        "Tên các thư mục mặc định:",
        *(f"  {name}: {label}" for name, label in _FOLDER_LABELS.items()),
        "",
        "Tệp manifest.json liệt kê từng thư: thư mục, cờ (\\Seen: đã đọc, \\Flagged: gắn",
        "dấu, \\Answered: đã trả lời...), ngày nhận, kích thước và mã SHA-256 của nội dung.",
    ]
    if missing:
        lines += [
            "",
            f"Lưu ý: {missing} thư không đọc được nội dung khi xuất; manifest.json ghi các",
            'thư này với "missing": true và không có tệp .eml.',
        ]
    info = zipfile.ZipInfo(README, _zip_time(exported_at))
    info.external_attr = 0o600 << 16
    # CRLF and a BOM: Notepad on older Windows shows the Vietnamese correctly then.
    text = "\r\n".join(lines) + "\r\n"
    archive.writestr(info, text.encode("utf-8-sig"), compress_type=zipfile.ZIP_DEFLATED)


def _add_spooled(archive: zipfile.ZipFile, name: str, spool: IO[bytes], when: datetime) -> None:
    size = spool.tell()
    spool.seek(0)
    info = zipfile.ZipInfo(name, _zip_time(when))
    info.external_attr = 0o600 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    info.file_size = size  # lets zipfile choose ZIP64 fields up front for a huge manifest
    with archive.open(info, "w") as member:
        while chunk := spool.read(1 << 20):
            member.write(chunk)


def _zip_time(when: datetime) -> tuple[int, int, int, int, int, int]:
    """A ZIP timestamp (local time, no zone, 1980–2107) in Vietnam's time."""
    local = when.astimezone(VIETNAM)
    year = min(max(local.year, 1980), 2107)
    if year != local.year:
        return (year, 1, 1, 0, 0, 0)
    return (local.year, local.month, local.day, local.hour, local.minute, local.second)


# --- Files ---------------------------------------------------------------------------------------


def _make_private_dir(dest_dir: Path) -> None:
    if dest_dir.is_dir():
        return
    dest_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(dest_dir, 0o700)  # whatever the umask: archives are the officials' mail
    fsync_dir(dest_dir.parent)


def _publish(tmp: Path, dest_dir: Path, final_name: str) -> Path:
    """Give the finished ``tmp`` its final name, never over an existing archive (two
    exports in the same second get ``-2``, ``-3``…), durably."""
    stem = final_name.removesuffix(".zip")
    n = 1
    while True:
        final = dest_dir / (final_name if n == 1 else f"{stem}-{n}.zip")
        try:
            os.link(tmp, final)  # fails if the name exists, unlike rename
        except FileExistsError:
            n += 1
            continue
        break
    tmp.unlink()
    fsync_dir(dest_dir)
    return final


def _sweep_partials(dest_dir: Path) -> None:
    """Remove temporary archives a crash left (old ones only: another export may be
    writing its own right now)."""
    horizon = time.time() - STALE_PARTIAL_S
    for leftover in dest_dir.glob(f".*{PARTIAL_SUFFIX}"):
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < horizon:
                leftover.unlink()
