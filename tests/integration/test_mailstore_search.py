"""SEARCH in one folder (mailstore.search) on SQLite and PostgreSQL: every key, NOT/OR,
sequence and UID sets, Vietnamese folding, the text index and HEADER from the blobs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, select, update

from govmail.config import load_config
from govmail.core.mime import analyze_message
from govmail.directory.addresses import find_mailbox
from govmail.imap.proto.model import STAR, SearchKey, SequenceSet
from govmail.mailstore import search as search_module
from govmail.mailstore.delivery import Delivery, StoredMessage, deliver_batch
from govmail.mailstore.search import SearchResult, search_folder
from govmail.store.blobs import FileBlobStore
from govmail.store.database import Database
from govmail.store.schema import folder_messages, folders

# Each message: raw text, then what the test changes on its INBOX row (flags bits,
# keywords, internal date, modseq). UIDs are 1..N in this order.
MESSAGES: list[tuple[str, dict[str, Any]]] = [
    (
        # 1: Vietnamese subject and sender (RFC 2047), a Date whose day differs in UTC.
        "From: =?utf-8?b?Tmd1eeG7hW4gVsSDbiBBbg==?= <an@example.org>\r\n"
        "To: nvan@khanhhoa.gov.vn\r\n"
        "Subject: =?utf-8?q?B=C3=A1o_c=C3=A1o_tu=E1=BA=A7n_12?=\r\n"
        "Date: Tue, 03 Jan 2023 01:00:00 +0700\r\n"
        "X-Priority: 1 (Highest)\r\n"
        "\r\n"
        "Nội dung họp giao ban.\r\n",
        {"flags": 1, "keywords": "$Forwarded Work", "at": datetime(2023, 1, 2, 8, tzinfo=UTC)},
    ),
    (
        # 2: upper-case Đ in the subject, a Cc, no Date header, a short word "ab".
        'From: "Trần Thị Đào" <dao@example.org>\r\n'
        "To: nvan@khanhhoa.gov.vn\r\n"
        "Cc: =?utf-8?q?L=C3=AA_V=C4=83n_C=C6=B0=E1=BB=9Dng?= <cuong@example.org>\r\n"
        "Subject: ĐỀ NGHỊ cấp kinh phí\r\n"
        "\r\n"
        "Xin gửi ab kèm theo.\r\n",
        {"flags": 2 | 4, "keywords": None, "at": datetime(2023, 1, 5, 23, 59, tzinfo=UTC)},
    ),
    (
        # 3: ASCII, wildcard characters in the body, a Bcc, a folded header.
        "From: Alice <alice@example.net>\r\n"
        "To: nvan@khanhhoa.gov.vn\r\n"
        "Bcc: secret@example.net\r\n"
        "Subject: message 7\r\n"
        "Date: Fri, 06 Jan 2023 10:00:00 +0000\r\n"
        "X-Mailer: Long\r\n"
        " Folded Mailer\r\n"
        "\r\n"
        "progress 100%_done *really* [x]\r\n",
        {"flags": 8, "keywords": "work", "at": datetime(2023, 1, 6, 0, 0, tzinfo=UTC)},
    ),
    (
        # 4: "nguyen" only in the body; a long body (LARGER).
        "From: Bob <bob@example.net>\r\n"
        "To: nvan@khanhhoa.gov.vn\r\n"
        "Subject: Hello\r\n"
        "Date: Sat, 07 Jan 2023 12:00:00 +0000\r\n"
        "\r\n"
        "Anh Nguyễn sẽ gửi báo cáo tuần sau.\r\n" + "x" * 2000 + "\r\n",
        {"flags": 16, "keywords": None, "at": datetime(2023, 1, 7, 12, tzinfo=UTC)},
    ),
    (
        # 5: "nguyen" only in the From address; delivered to ltbinh as well.
        "From: nguyen.an@example.org\r\n"
        "To: nvan@khanhhoa.gov.vn, ltbinh@khanhhoa.gov.vn\r\n"
        "Subject: ok\r\n"
        "Date: Sun, 08 Jan 2023 12:00:00 +0000\r\n"
        "\r\n"
        "short\r\n",
        {"flags": 1 | 2, "keywords": None, "at": datetime(2023, 1, 8, 12, tzinfo=UTC)},
    ),
]
NOW = datetime(2023, 1, 8, 13, tzinfo=UTC)


@dataclass
class Folder:
    """nvan's INBOX holding MESSAGES (UIDs 1..5, modseq 10..14), ltbinh's INBOX holding
    only message 5 and then one message of its own ("chi o day")."""

    db: Database
    blobs: FileBlobStore
    folder_id: int
    other_folder_id: int

    async def search(self, key: SearchKey, uids: list[int] | None = None) -> SearchResult:
        return await search_folder(
            self.db,
            self.blobs,
            self.folder_id,
            [1, 2, 3, 4, 5] if uids is None else uids,
            key,
            now=NOW,
        )

    async def uids(self, key: SearchKey, uids: list[int] | None = None) -> list[int]:
        return (await self.search(key, uids)).uids


def _stored(blobs: FileBlobStore, text: str) -> StoredMessage:
    raw = text.encode()
    return StoredMessage(blob=blobs.put(raw), size=len(raw), summary=analyze_message(raw))


def _inbox(conn: Connection, box: int) -> int:
    return int(
        conn.execute(
            select(folders.c.id).where(folders.c.mailbox_id == box, folders.c.name == "INBOX")
        ).scalar_one()
    )


def _set_rows(conn: Connection, folder_id: int) -> None:
    for uid, (_, row) in enumerate(MESSAGES, 1):
        conn.execute(
            update(folder_messages)
            .where(folder_messages.c.folder_id == folder_id, folder_messages.c.uid == uid)
            .values(
                flags=row["flags"],
                keywords=row["keywords"],
                internal_date=row["at"],
                modseq=9 + uid,
            )
        )


@pytest.fixture
async def folder(province: Path) -> AsyncIterator[Folder]:
    cfg = load_config(province)
    blobs = FileBlobStore(cfg.blob_dir)
    db = Database(cfg.effective_database_url)
    try:
        async with db.read() as conn:
            nvan = (await find_mailbox(conn, cfg, "nvan")).mailbox_id
            ltbinh = (await find_mailbox(conn, cfg, "ltbinh")).mailbox_id
        batch = [
            Delivery(
                message=_stored(blobs, raw),
                sender="a@example.org",
                inbox=[nvan, ltbinh] if n == 5 else [nvan],
            )
            for n, (raw, _) in enumerate(MESSAGES, 1)
        ]
        own = "From: x@example.org\r\nSubject: chi o day\r\n\r\nnoi dung hop\r\n"
        batch.append(Delivery(message=_stored(blobs, own), sender="x@example.org", inbox=[ltbinh]))
        await db.run(partial(deliver_batch, batch=batch), write=True)

        def prepare(conn: Connection) -> tuple[int, int]:
            folder_id = _inbox(conn, nvan)
            _set_rows(conn, folder_id)
            return folder_id, _inbox(conn, ltbinh)

        folder_id, other = await db.run(prepare, write=True)
        yield Folder(db, blobs, folder_id, other)
    finally:
        await db.dispose()


def key(name: str, value: Any = None) -> SearchKey:
    return SearchKey(name, value)


def all_of(*keys: SearchKey) -> SearchKey:
    return SearchKey("AND", keys)


def not_(inner: SearchKey) -> SearchKey:
    return SearchKey("NOT", inner)


def or_(a: SearchKey, b: SearchKey) -> SearchKey:
    return SearchKey("OR", (a, b))


def seqs(*ranges: tuple[int, int]) -> SequenceSet:
    return SequenceSet(ranges)


@pytest.fixture(params=["rows", "index"])
def text_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """TEXT/BODY checked row by row (few candidates) or through the index (many)."""
    if request.param == "index":
        monkeypatch.setattr(search_module, "_DIRECT_LIMIT", 0)
    return str(request.param)


async def test_flags_keywords_and_recent(folder: Folder) -> None:
    assert await folder.uids(key("ALL")) == [1, 2, 3, 4, 5]
    assert await folder.uids(key("FLAG", "\\Seen")) == [1, 5]
    assert await folder.uids(key("FLAG", "\\SEEN")) == [1, 5]
    assert await folder.uids(not_(key("FLAG", "\\Seen"))) == [2, 3, 4]
    assert await folder.uids(key("FLAG", "\\Answered")) == [2, 5]
    assert await folder.uids(key("FLAG", "\\Flagged")) == [2]
    assert await folder.uids(key("FLAG", "\\Deleted")) == [3]
    assert await folder.uids(key("FLAG", "\\Draft")) == [4]
    assert await folder.uids(key("FLAG", "\\Recent")) == []
    # Keywords compare case-insensitively (Dovecot).
    assert await folder.uids(key("KEYWORD", "WORK")) == [1, 3]
    assert await folder.uids(key("KEYWORD", "$forwarded")) == [1]
    assert await folder.uids(key("KEYWORD", "Work2")) == []
    assert await folder.uids(not_(key("KEYWORD", "work"))) == [2, 4, 5]
    # \Recent is not kept: RECENT and NEW match nothing, OLD everything.
    assert await folder.uids(key("RECENT")) == []
    new = all_of(key("RECENT"), not_(key("FLAG", "\\Seen")))
    assert await folder.uids(new) == []
    assert await folder.uids(not_(key("RECENT"))) == [1, 2, 3, 4, 5]


async def test_sequence_and_uid_sets_use_the_sessions_view(folder: Folder) -> None:
    view = [1, 2, 4, 5]  # UID 3 expunged in this session's view: 5 is message 4
    assert await folder.uids(key("SEQUENCE", seqs((2, STAR))), view) == [2, 4, 5]
    assert await folder.uids(key("SEQUENCE", seqs((STAR, STAR))), view) == [5]
    assert await folder.uids(key("SEQUENCE", seqs((3, 3))), view) == [4]
    assert await folder.uids(key("UID", seqs((3, STAR))), view) == [4, 5]
    assert await folder.uids(key("UID", seqs((STAR, 4))), view) == [4, 5]
    assert await folder.uids(key("UID", seqs((1, 1), (3, 3))), view) == [1]
    # A UID outside the view is never returned, even if the folder holds it.
    assert await folder.uids(key("ALL"), [2, 3]) == [2, 3]
    assert await folder.uids(key("UID", seqs((1, STAR))), [2, 3]) == [2, 3]
    # A UID in the view that the folder no longer has (another session expunged it).
    assert await folder.uids(key("ALL"), [4, 5, 99]) == [4, 5]
    assert await folder.uids(key("SEQUENCE", seqs((3, 3))), [4, 5, 99]) == []
    assert await folder.uids(key("ALL"), []) == []


async def test_sizes_and_modseq(folder: Folder) -> None:
    assert await folder.uids(key("LARGER", 2000)) == [4]
    assert await folder.uids(key("SMALLER", 200)) == [5]
    assert (await folder.search(key("ALL"))).highest_modseq is None
    result = await folder.search(key("MODSEQ", 12))
    assert result == SearchResult([3, 4, 5], 14)
    # Only among the matches, and also when MODSEQ sits under NOT.
    result = await folder.search(not_(key("MODSEQ", 12)))
    assert result == SearchResult([1, 2], 11)
    assert await folder.search(key("MODSEQ", 99)) == SearchResult([], None)


async def test_internal_dates_by_utc_day_and_older_younger(folder: Folder) -> None:
    assert await folder.uids(key("ON", date(2023, 1, 5))) == [2]
    assert await folder.uids(key("ON", date(2023, 1, 6))) == [3]
    assert await folder.uids(key("BEFORE", date(2023, 1, 6))) == [1, 2]
    assert await folder.uids(key("SINCE", date(2023, 1, 6))) == [3, 4, 5]
    # NOW is 2023-01-08 13:00 UTC; message 5 arrived an hour before it, 4 a day and an hour.
    assert await folder.uids(key("YOUNGER", 3600)) == [5]
    assert await folder.uids(key("YOUNGER", 3599)) == []
    assert await folder.uids(key("OLDER", 3600)) == [1, 2, 3, 4]
    assert await folder.uids(key("OLDER", 3601)) == [1, 2, 3, 4]
    assert await folder.uids(key("OLDER", 25 * 3600)) == [1, 2, 3]


async def test_sent_dates_use_the_date_headers_own_day(folder: Folder) -> None:
    # Message 1 says 03 Jan 01:00 +0700 (2 Jan in UTC): it was sent on the 3rd.
    assert await folder.uids(key("SENTON", date(2023, 1, 3))) == [1]
    assert await folder.uids(key("SENTON", date(2023, 1, 2))) == []
    # Message 2 has no Date header: its internal date (5 Jan) stands in, as in Dovecot.
    assert await folder.uids(key("SENTON", date(2023, 1, 5))) == [2]
    assert await folder.uids(key("SENTBEFORE", date(2023, 1, 6))) == [1, 2]
    assert await folder.uids(key("SENTSINCE", date(2023, 1, 7))) == [4, 5]


async def test_subject_and_addresses_fold_vietnamese(folder: Folder) -> None:
    assert await folder.uids(key("SUBJECT", "bao cao tuan")) == [1]
    assert await folder.uids(key("SUBJECT", "BÁO CÁO")) == [1]
    assert await folder.uids(key("SUBJECT", "de nghi")) == [2]
    assert await folder.uids(key("SUBJECT", "đề nghị")) == [2]
    assert await folder.uids(key("SUBJECT", "ĐỀ")) == [2]
    assert await folder.uids(key("SUBJECT", "message 7")) == [3]
    assert await folder.uids(key("SUBJECT", "message  7")) == [3]  # white space folded
    assert await folder.uids(key("SUBJECT", "7")) == [3]
    assert await folder.uids(key("SUBJECT", "")) == [1, 2, 3, 4, 5]
    # Display names are decoded from RFC 2047 before folding.
    assert await folder.uids(key("FROM", "nguyen")) == [1, 5]
    assert await folder.uids(key("FROM", "Nguyễn Văn")) == [1]
    assert await folder.uids(key("FROM", "dao")) == [2]
    assert await folder.uids(key("FROM", "ĐÀO")) == [2]
    assert await folder.uids(key("FROM", "alice@example.net")) == [3]
    assert await folder.uids(key("FROM", "<alice@")) == [3]
    assert await folder.uids(key("TO", "ltbinh")) == [5]
    assert await folder.uids(key("TO", "nvan@khanhhoa")) == [1, 2, 3, 4, 5]
    assert await folder.uids(key("CC", "cuong")) == [2]
    assert await folder.uids(key("CC", "Lê Văn")) == [2]
    assert await folder.uids(key("BCC", "secret")) == [3]
    assert await folder.uids(key("BCC", "alice")) == []


async def test_text_and_body_through_the_index(folder: Folder, text_path: str) -> None:
    assert await folder.uids(key("TEXT", "bao cao tuan")) == [1, 4]
    assert await folder.uids(key("TEXT", "noi dung hop")) == [1]  # not ltbinh's own message
    assert await folder.uids(key("TEXT", "NGUYEN")) == [1, 4, 5]
    # BODY leaves out what only the subject or addresses hold.
    assert await folder.uids(key("BODY", "nguyen")) == [4]
    assert await folder.uids(key("BODY", "bao cao tuan")) == [4]
    assert await folder.uids(key("BODY", "hello")) == []
    assert await folder.uids(key("TEXT", "hello")) == [4]
    assert await folder.uids(key("BODY", "noi dung")) == [1]
    # LIKE and GLOB wildcards are searched for literally.
    assert await folder.uids(key("TEXT", "100%_done")) == [3]
    assert await folder.uids(key("TEXT", "100%")) == [3]
    assert await folder.uids(key("TEXT", "%_d")) == [3]
    assert await folder.uids(key("TEXT", "*really*")) == [3]
    assert await folder.uids(key("TEXT", "[x]")) == [3]
    assert await folder.uids(key("TEXT", "[y]")) == []
    assert await folder.uids(key("TEXT", "10_%")) == []
    # Shorter than a trigram: the folder's rows are read instead.
    assert await folder.uids(key("TEXT", "ab")) == [2]
    assert await folder.uids(key("BODY", "ok")) == []
    assert await folder.uids(key("TEXT", "ok")) == [5]
    assert await folder.uids(key("TEXT", "")) == [1, 2, 3, 4, 5]
    assert await folder.uids(key("TEXT", "zzz")) == []


async def test_header_reads_the_decoded_field(folder: Folder) -> None:
    assert await folder.uids(key("HEADER", ("X-Priority", "highest"))) == [1]
    assert await folder.uids(key("HEADER", ("x-priority", ""))) == [1]  # present at all
    assert await folder.uids(key("HEADER", ("Date", ""))) == [1, 3, 4, 5]
    assert await folder.uids(key("HEADER", ("Subject", "báo cáo"))) == [1]
    assert await folder.uids(key("HEADER", ("Subject", "bao cao"))) == [1]
    assert await folder.uids(key("HEADER", ("X-Mailer", "long folded"))) == [3]
    assert await folder.uids(key("HEADER", ("X-Missing", ""))) == []
    assert await folder.uids(key("HEADER", ("Bad Name", ""))) == []
    # Only the messages other criteria leave undecided are read.
    assert await folder.uids(key("HEADER", ("Date", "")), [2, 3]) == [3]


async def test_not_and_or_nest_with_index_and_header_keys(folder: Folder, text_path: str) -> None:
    text_nguyen = key("TEXT", "nguyen")  # 1, 4, 5
    header_date = key("HEADER", ("Date", ""))  # 1, 3, 4, 5
    seen = key("FLAG", "\\Seen")  # 1, 5
    assert await folder.uids(not_(text_nguyen)) == [2, 3]
    assert await folder.uids(or_(text_nguyen, key("FLAG", "\\Deleted"))) == [1, 3, 4, 5]
    assert await folder.uids(or_(header_date, seen)) == [1, 3, 4, 5]
    assert await folder.uids(not_(or_(header_date, text_nguyen))) == [2]
    assert await folder.uids(all_of(not_(seen), text_nguyen)) == [4]
    assert await folder.uids(all_of(not_(seen), not_(header_date))) == [2]
    nested = or_(all_of(seen, not_(header_date)), not_(or_(text_nguyen, key("SUBJECT", "7"))))
    assert await folder.uids(nested) == [2]
    nested = all_of(or_(key("BODY", "nguyen"), key("HEADER", ("Cc", "cuong"))), not_(seen))
    assert await folder.uids(nested) == [2, 4]
    nested = not_(all_of(or_(text_nguyen, header_date), not_(key("UID", seqs((4, STAR))))))
    assert await folder.uids(nested) == [2, 4, 5]
    # The same subtree twice, once under NOT.
    assert await folder.uids(all_of(text_nguyen, not_(text_nguyen))) == []
    assert await folder.uids(or_(header_date, not_(header_date))) == [1, 2, 3, 4, 5]
    assert await folder.uids(all_of()) == [1, 2, 3, 4, 5]


async def test_a_message_in_two_folders_is_found_in_each_by_its_own_uid(
    folder: Folder, text_path: str
) -> None:
    other = partial(search_folder, folder.db, folder.blobs, folder.other_folder_id, [1, 2])
    assert (await other(key("TEXT", "nguyen"))).uids == [1]
    assert (await other(key("TEXT", "noi dung hop"))).uids == [2]
    assert (await other(key("SUBJECT", "ok"))).uids == [1]
    assert (await other(key("HEADER", ("Subject", "chi o")))).uids == [2]
    assert await folder.uids(key("SUBJECT", "chi o day")) == []
    assert await folder.uids(key("TEXT", "chi o day")) == []
