"""IMAP as real clients use it: imapclient, mbsync (isync) and offlineimap against a real
``govmail serve``, with mail delivered by SMTP."""

from __future__ import annotations

import base64
import os
import pty
import quopri
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import SMTP
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from imapclient import IMAPClient

from tests.conftest import IN_CI
from tests.integration.clihelp import cli
from tests.integration.mailserver import AN, PASSWORD, TTR, RunningServer, imap, mx

# The author of the mail these tests receive through the MX: from outside the province,
# since the MX refuses mail written as one of its own addresses.
AUTHOR = "ltbinh@phutho.gov.vn"

# --- the message of the structure test --------------------------------------------------

TEXT_BODY = "Kính gửi đồng chí,\r\nBáo cáo tuần đính kèm.\r\n".encode()
HTML_BODY = b"<p>B=C3=A1o c=C3=A1o tu=E1=BA=A7n</p>\r\n"  # quoted-printable
HTML_DECODED = "<p>Báo cáo tuần</p>\r\n".encode()
PDF = b"%PDF-1.4\n%\xc3\xa4\xc3\xbc\n1 0 obj\n<<>>\nendobj\n"
DOCX = b"PK\x03\x04\x14\x00\x00\x00\x08\x00fake docx"
PDF_NAME = "Báo cáo tuần.pdf"
DOCX_NAME = "Giấy mời họp.docx"
DOCX_TYPE = "vnd.openxmlformats-officedocument.wordprocessingml.document"


def _b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _inner_message() -> bytes:
    """The forwarded giấy mời (invitation) carried as message/rfc822."""
    inner = EmailMessage()
    inner["From"] = TTR
    inner["To"] = AN
    inner["Subject"] = "Giấy mời họp giao ban"
    inner["Date"] = "Mon, 06 May 2024 08:00:00 +0700"
    inner["Message-ID"] = "<giay-moi@khanhhoa.gov.vn>"
    inner.set_content("Kính mời đồng chí dự họp giao ban.\n", cte="quoted-printable")
    return inner.as_bytes(policy=SMTP)


def _encoded_word(text: str) -> bytes:
    return b"=?UTF-8?B?" + base64.b64encode(text.encode()) + b"?="


def _weekly_report() -> bytes:
    """multipart/mixed: (text/plain | text/html), a PDF named in RFC 2231, a DOCX named
    in RFC 2047, and a forwarded message."""
    return b"".join(
        [
            b"From: " + _encoded_word("Lê Thị Bình") + b" <" + AUTHOR.encode() + b">\r\n",
            b"To: " + AN.encode() + b"\r\n",
            b"Subject: " + _encoded_word("Báo cáo tuần") + b"\r\n",
            b"Date: Mon, 06 May 2024 09:00:00 +0700\r\n",
            b"Message-ID: <bao-cao-tuan@khanhhoa.gov.vn>\r\n",
            b"MIME-Version: 1.0\r\n",
            b'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n',
            b"--outer\r\n",
            b'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n',
            b"--alt\r\n",
            b"Content-Type: text/plain; charset=utf-8\r\n",
            b"Content-Transfer-Encoding: 8bit\r\n\r\n",
            TEXT_BODY + b"\r\n",
            b"--alt\r\n",
            b"Content-Type: text/html; charset=utf-8\r\n",
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
            HTML_BODY + b"\r\n",
            b"--alt--\r\n\r\n",
            b"--outer\r\n",
            b"Content-Type: application/pdf\r\n",
            b"Content-Disposition: attachment;"
            b" filename*=utf-8''B%C3%A1o%20c%C3%A1o%20tu%E1%BA%A7n.pdf\r\n",
            b"Content-Transfer-Encoding: base64\r\n\r\n",
            _b64(PDF) + b"\r\n",
            b"--outer\r\n",
            b"Content-Type: application/" + DOCX_TYPE.encode(),
            b'; name="' + _encoded_word(DOCX_NAME) + b'"\r\n',
            b"Content-Disposition: attachment\r\n",
            b"Content-Transfer-Encoding: base64\r\n\r\n",
            _b64(DOCX) + b"\r\n",
            b"--outer\r\n",
            b"Content-Type: message/rfc822\r\n",
            b"Content-Disposition: attachment\r\n\r\n",
            _inner_message() + b"\r\n",
            b"--outer--\r\n",
        ]
    )


# --- helpers ----------------------------------------------------------------------------


def _require_tool(binary: str, package: str) -> str:
    """The path of ``binary``; skips locally when it is missing, fails under CI=true (as
    the swaks tests do)."""
    found = shutil.which(binary)
    if found is None:
        reason = f"{binary} is not installed (Debian/Ubuntu: apt-get install {package})"
        if IN_CI:
            pytest.fail(f"{reason}; CI=true: the {binary} tests must run")
        pytest.skip(reason)
    return found


def _deliver(server: RunningServer, raw: bytes, to: str = AN) -> None:
    with mx(server) as client:
        client.sendmail("sender@example.org", [to], raw)


def _simple(subject: str, message_id: str, body: str = "Nội dung.") -> bytes:
    msg = EmailMessage()
    msg["From"] = AUTHOR
    msg["To"] = AN
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{message_id}@khanhhoa.gov.vn>"
    msg["Date"] = "Tue, 07 May 2024 10:00:00 +0700"
    msg.set_content(body + "\n", cte="quoted-printable")
    return msg.as_bytes(policy=SMTP)


@contextmanager
def _imapclient(server: RunningServer, login: str = AN) -> Iterator[IMAPClient]:
    """imapclient over plain loopback (treated as secure), logged in as ``login``."""
    client = IMAPClient("127.0.0.1", port=server.port("imap"), ssl=False, timeout=30)
    client.login(login, PASSWORD)
    try:
        yield client
    finally:
        client.logout()


def _text(value: bytes | None) -> str:
    """An ENVELOPE or parameter string as the user reads it (RFC 2047 words decoded)."""
    assert value is not None
    return str(make_header(decode_header(value.decode("ascii"))))


def _param(params: Sequence[bytes] | None, name: str) -> str | None:
    """A body or disposition parameter, decoded: RFC 2231 (``name*``) or RFC 2047."""
    pairs = dict(zip(params[::2], params[1::2], strict=True)) if params else {}
    for key, value in pairs.items():
        key_text = key.decode("ascii").lower()
        if key_text == name + "*":
            charset, _language, text = value.decode("ascii").split("'", 2)
            return unquote(text, encoding=charset or "us-ascii", errors="strict")
        if key_text == name:
            return _text(value)
    return None


def _fetch_one(client: IMAPClient, uid: int, items: Sequence[str]) -> dict[bytes, Any]:
    found: dict[int, dict[bytes, Any]] = client.fetch([uid], list(items))
    assert uid in found, found
    return found[uid]


# --- imapclient ---------------------------------------------------------------------------


def test_imapclient_sees_the_part_tree_and_fetches_sections(server: RunningServer) -> None:
    raw = _weekly_report()
    _deliver(server, raw)
    inner = _inner_message()
    with _imapclient(server) as client:
        client.select_folder("INBOX")
        [uid] = client.search(["HEADER", "Message-ID", "bao-cao-tuan@khanhhoa.gov.vn"])
        got = _fetch_one(client, uid, ["BODYSTRUCTURE", "ENVELOPE", "RFC822.SIZE"])
        assert got[b"RFC822.SIZE"] > len(raw)  # the server adds its trace headers

        # The part tree: mixed(alternative(plain, html), pdf, docx, message/rfc822).
        body = got[b"BODYSTRUCTURE"]
        assert body.is_multipart and body[1] == b"mixed"
        alternative, pdf, docx, forwarded = body[0]
        assert alternative.is_multipart and alternative[1] == b"alternative"
        plain, html = alternative[0]
        assert plain[:2] == (b"text", b"plain") and html[:2] == (b"text", b"html")
        assert _param(plain[2], "charset") == "utf-8"
        assert (plain[5], plain[6], plain[7]) == (b"8bit", len(TEXT_BODY), 2)
        assert (html[5], html[6], html[7]) == (b"quoted-printable", len(HTML_BODY), 1)

        # Attachments: type, encoded size, disposition and the Vietnamese file names.
        assert pdf[:2] == (b"application", b"pdf")
        assert (pdf[5], pdf[6]) == (b"base64", len(_b64(PDF)))
        assert pdf[8][0].lower() == b"attachment"
        assert _param(pdf[8][1], "filename") == PDF_NAME
        assert docx[:2] == (b"application", DOCX_TYPE.encode())
        assert (docx[5], docx[6]) == (b"base64", len(_b64(DOCX)))
        assert docx[8][0].lower() == b"attachment"
        assert _param(docx[2], "name") == DOCX_NAME

        # The forwarded message: its own envelope and structure, and its size in lines.
        assert forwarded[:2] == (b"message", b"rfc822")
        assert forwarded[6] == len(inner)
        inner_envelope, inner_body, inner_lines = forwarded[7], forwarded[8], forwarded[9]
        assert _text(inner_envelope[1]) == "Giấy mời họp giao ban"
        assert inner_envelope[9] == b"<giay-moi@khanhhoa.gov.vn>"
        assert inner_body[:2] == (b"text", b"plain")
        assert inner_lines == inner.count(b"\n")

        # ENVELOPE: subject and sender decode to what Bình wrote.
        envelope = got[b"ENVELOPE"]
        assert _text(envelope.subject) == "Báo cáo tuần"
        [sender] = envelope.from_
        assert _text(sender.name) == "Lê Thị Bình"
        assert (sender.mailbox, sender.host) == (b"ltbinh", b"phutho.gov.vn")
        assert envelope.message_id == b"<bao-cao-tuan@khanhhoa.gov.vn>"

        # Sections: the encoded part, its MIME header, the nested message's text.
        got = _fetch_one(
            client, uid, ["BODY.PEEK[2]", "BODY.PEEK[2.MIME]", "BODY.PEEK[1.1]", "BODY.PEEK[4.1]"]
        )
        assert got[b"BODY[2]"] == _b64(PDF)
        mime = got[b"BODY[2.MIME]"]
        assert mime.startswith(b"Content-Type: application/pdf\r\n") and mime.endswith(b"\r\n\r\n")
        assert b"filename*=utf-8''B%C3%A1o%20c%C3%A1o%20tu%E1%BA%A7n.pdf" in mime
        assert got[b"BODY[1.1]"] == TEXT_BODY
        assert "dự họp giao ban" in quopri.decodestring(got[b"BODY[4.1]"]).decode()
        assert client.get_flags([uid])[uid] == ()  # PEEK left it unread
        _fetch_one(client, uid, ["BODY[1.1]"])
        assert b"\\Seen" in client.get_flags([uid])[uid]


def test_binary_sections_are_decoded(server: RunningServer) -> None:
    """BINARY[] gives the part with its Content-Transfer-Encoding undone. Read with the
    stdlib client: a decoded part comes as a literal8 (``~{n}``), as Dovecot sends it, and
    imapclient's parser only knows ``{n}`` literals."""
    _deliver(server, _weekly_report())
    with imap(server) as client:
        client.select("INBOX")
        typ, data = client.fetch("1", "(BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[1.2])")
        assert typ == "OK", data
        assert isinstance(data[0], tuple) and isinstance(data[1], tuple)
        assert data[0][1] == PDF and b"BINARY.SIZE[2] %d" % len(PDF) in data[1][0]
        assert data[1][1] == HTML_DECODED


def test_imapclient_idle_gets_exists_within_a_second_of_smtp_delivery(
    server: RunningServer, record_property: Callable[[str, object], None]
) -> None:
    with _imapclient(server) as client:
        client.select_folder("INBOX")
        client.idle()
        latencies = []
        for n in range(1, 4):
            started = time.monotonic()
            _deliver(server, _simple(f"Công văn số {n}", f"idle-{n}"))
            responses: list[Any] = []
            while (n, b"EXISTS") not in responses and time.monotonic() - started < 1.0:
                responses += client.idle_check(timeout=1.0 - (time.monotonic() - started))
            latencies.append(time.monotonic() - started)
            assert (n, b"EXISTS") in responses, responses
        client.idle_done()
    record_property("idle_push_seconds", [round(s, 4) for s in latencies])
    print(f"IDLE push latency (SMTP connect → * EXISTS read), seconds: {latencies}")
    assert max(latencies) < 1.0, latencies


def test_imapclient_flags_keywords_copy_and_move(server: RunningServer) -> None:
    for n in range(1, 4):
        _deliver(server, _simple(f"Tờ trình {n}", f"to-trinh-{n}"))
    with _imapclient(server) as client:
        client.select_folder("INBOX")
        uids = client.search()
        assert uids == [1, 2, 3]
        flags = client.add_flags([1], [b"\\Flagged", b"$Important", b"KhanCap"])
        assert set(flags[1]) == {b"\\Flagged", b"$Important", b"KhanCap"}
        flags = client.remove_flags([1], [b"$Important"])
        assert set(flags[1]) == {b"\\Flagged", b"KhanCap"}
        assert b"KhanCap" in client.select_folder("INBOX")[b"PERMANENTFLAGS"]
        assert client.search(["KEYWORD", "KhanCap"]) == [1]
        assert client.search(["UNKEYWORD", "KhanCap"]) == [2, 3]

        client.create_folder("Lưu trữ")
        client.copy([1], "Lưu trữ")
        client.move([2], "Lưu trữ")
        assert client.search() == [1, 3]
        client.select_folder("Lưu trữ")
        copied = client.fetch(client.search(), ["FLAGS", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
        assert [_subject(copied[uid]) for uid in sorted(copied)] == ["Tờ trình 1", "Tờ trình 2"]
        assert set(copied[min(copied)][b"FLAGS"]) == {b"\\Flagged", b"KhanCap"}


def _subject(fetched: dict[bytes, Any]) -> str:
    header = fetched[b"BODY[HEADER.FIELDS (SUBJECT)]"]
    return str(BytesHeaderParser(policy=SMTP).parsebytes(header)["Subject"])


def test_copy_move_and_append_answer_with_uidplus_codes(server: RunningServer) -> None:
    """imapclient drops COPYUID, so the codes are read with the stdlib client."""
    for n in range(1, 4):
        _deliver(server, _simple(f"Quyết định {n}", f"quyet-dinh-{n}"))
    with imap(server) as client:
        assert client.create("Archive")[0] == "OK"
        typ, data = client.status("Archive", "(UIDVALIDITY)")
        archive_validity = re.search(rb"UIDVALIDITY (\d+)", data[0] or b"")
        assert archive_validity is not None
        client.select("INBOX")
        typ, data = client.uid("COPY", "1", "Archive")
        assert typ == "OK", data
        assert client.response("COPYUID")[1] == [archive_validity[1] + b" 1 1"]
        typ, data = client.uid("MOVE", "2:3", "Archive")
        assert typ == "OK", data
        assert client.response("COPYUID")[1] == [archive_validity[1] + b" 2:3 2:3"]
        # Two EXPUNGEs, each numbered after the one before it (3 then 2, or 2 then 2).
        assert client.response("EXPUNGE")[1] in ([b"3", b"2"], [b"2", b"2"])
        assert client.search(None, "ALL")[1] == [b"1"]
        typ, data = client.append("Archive", "(\\Seen)", None, _simple("Phụ lục", "phu-luc"))
        assert typ == "OK", data
        assert (data[0] or b"").startswith(b"[APPENDUID " + archive_validity[1] + b" 4] ")


def test_imapclient_searches_vietnamese_without_diacritics(server: RunningServer) -> None:
    _deliver(server, _simple("Báo cáo tuần", "tuan", "Tình hình thực hiện nhiệm vụ."))
    _deliver(server, _simple("Báo cáo tháng", "thang", "Tổng hợp số liệu."))
    _deliver(server, _simple("Giấy mời họp", "hop", "Đề nghị nộp báo cáo tuần trước."))
    with _imapclient(server) as client:
        client.select_folder("INBOX")
        assert client.search(["SUBJECT", "bao cao tuan"]) == [1]
        assert client.search(["SUBJECT", "Báo cáo tuần"], charset="UTF-8") == [1]
        assert client.search(["SUBJECT", "bao cao"]) == [1, 2]
        assert client.search(["BODY", "nop bao cao tuan"]) == [3]
        assert client.search(["TEXT", "bao cao tuan"]) == [1, 3]
        assert client.search(["TEXT", "so lieu"]) == [2]
        assert client.search(["SUBJECT", "cong van"]) == []


def test_imapclient_condstore_changedsince_and_uid_expunge(server: RunningServer) -> None:
    for n in range(1, 5):
        _deliver(server, _simple(f"Kế hoạch {n}", f"ke-hoach-{n}"))
    with _imapclient(server) as client:
        assert client.enable("CONDSTORE") == [b"CONDSTORE"]
        selected = client.select_folder("INBOX")
        before = selected[b"HIGHESTMODSEQ"]
        uids = client.search()
        assert client.fetch(uids, ["MODSEQ"], modifiers=[f"CHANGEDSINCE {before}"]) == {}

        client.add_flags([2], [b"\\Answered"])
        changed = client.fetch(uids, ["FLAGS"], modifiers=[f"CHANGEDSINCE {before}"])
        assert list(changed) == [2]
        (modseq,) = changed[2][b"MODSEQ"]
        assert modseq > before
        assert client.search(["MODSEQ", str(before + 1)]) == [2]
        assert client.folder_status("INBOX", [b"HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"] == modseq

        # UID EXPUNGE removes only the named UID, even when others are \Deleted.
        client.add_flags([1, 3], [b"\\Deleted"])
        client.uid_expunge([3])
        assert client.search() == [1, 2, 4]
        status = client.folder_status("INBOX", [b"MESSAGES", b"HIGHESTMODSEQ"])
        assert status[b"MESSAGES"] == 3 and status[b"HIGHESTMODSEQ"] > modseq


def test_imapclient_append_keeps_flags_and_internal_date(server: RunningServer) -> None:
    when = datetime(2024, 5, 6, 9, 30, 15, tzinfo=timezone(timedelta(hours=7)))
    with _imapclient(server) as client:
        client.normalise_times = False  # keep the zone the server gives
        answer = client.append(
            "Drafts", _simple("Dự thảo công văn", "du-thao"), [b"\\Draft", b"$Soan"], when
        )
        assert re.fullmatch(rb"\[APPENDUID \d+ 1\] .*", answer), answer
        client.select_folder("Drafts")
        got = _fetch_one(client, 1, ["FLAGS", "INTERNALDATE", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
        assert set(got[b"FLAGS"]) == {b"\\Draft", b"$Soan"}
        assert got[b"INTERNALDATE"] == when  # the same instant
        assert _subject(got) == "Dự thảo công văn"


def test_imapclient_quota_list_special_use_and_namespace(server: RunningServer) -> None:
    assert cli(server.data_dir, "delegation", "grant", "ttr", AN).exit_code == 0
    with _imapclient(server) as client:
        # A fresh account: plain LIST marks the special-use folders.
        listed = {name: set(flags) for flags, _, name in client.list_folders()}
        assert {"INBOX", "Sent", "Drafts", "Trash", "Junk"} <= set(listed)
        assert b"\\Sent" in listed["Sent"] and b"\\Drafts" in listed["Drafts"]
        assert b"\\Trash" in listed["Trash"] and b"\\Junk" in listed["Junk"]
        assert client.find_special_folder(b"\\Sent") == "Sent"

        # The agency mailbox delegated to An shows under the shared namespace.
        personal, other, shared = client.namespace()
        assert personal == (("", "/"),) and other is None
        assert shared == (("Shared/", "/"),)
        assert b"\\Noselect" in listed["Shared/ttr"]
        assert "Shared/ttr/INBOX" in listed

        roots, quotas = client.get_quota_root("INBOX")
        assert roots.mailbox == "INBOX" and roots.quota_roots
        [storage] = [q for q in quotas if q.resource == "STORAGE"]
        assert storage.limit > 0 and storage.usage == 0

    _deliver(server, _weekly_report())
    with _imapclient(server) as client:
        _, quotas = client.get_quota_root("INBOX")
        [storage] = [q for q in quotas if q.resource == "STORAGE"]
        assert storage.usage >= 1  # KiB


def test_a_folder_created_again_gets_a_new_uidvalidity(server: RunningServer) -> None:
    with _imapclient(server) as client:
        client.create_folder("Tạm")
        first = client.folder_status("Tạm", [b"UIDVALIDITY"])[b"UIDVALIDITY"]
        client.append("Tạm", _simple("Cũ", "cu"))
        client.delete_folder("Tạm")
        client.create_folder("Tạm")
        second = client.folder_status("Tạm", [b"UIDVALIDITY", b"UIDNEXT"])
        # RFC 9051 §2.3.1.1: a new UIDVALIDITY, or UIDs that keep growing.
        assert second[b"UIDVALIDITY"] != first or second[b"UIDNEXT"] > 1, (first, second)


# --- mbsync and offlineimap -------------------------------------------------------------


def _message_files(folder: Path) -> dict[str, Path]:
    """The Maildir files of ``folder`` by Message-ID."""
    found = {}
    for sub in ("new", "cur"):
        for path in sorted((folder / sub).glob("*")) if (folder / sub).is_dir() else []:
            headers = BytesHeaderParser(policy=SMTP).parsebytes(path.read_bytes())
            found[str(headers["Message-ID"]).strip("<>")] = path
    return found


def _maildir_flags(path: Path) -> str:
    return path.name.rsplit(":2,", 1)[1] if ":2," in path.name else ""


def _set_maildir_flags(path: Path, flags: str) -> Path:
    """Change a message's flags as a mail reader does: rename it into cur/ with a new
    info suffix (flags in ASCII order)."""
    base = path.name.rsplit(":2,", 1)[0]
    target = path.parent.parent / "cur" / f"{base}:2,{''.join(sorted(flags))}"
    path.rename(target)
    return target


def _new_maildir(path: Path) -> Path:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


ServerState = dict[str, tuple[dict[bytes, int], dict[int, frozenset[bytes]]]]


def _server_state(server: RunningServer) -> ServerState:
    """Every selectable folder's status and each message's flags, by UID."""
    state: ServerState = {}
    with _imapclient(server) as client:
        for flags, _, name in client.list_folders():
            if b"\\Noselect" in flags:
                continue
            status = client.folder_status(
                name, [b"UIDVALIDITY", b"UIDNEXT", b"MESSAGES", b"HIGHESTMODSEQ"]
            )
            client.select_folder(name, readonly=True)
            uids = client.search()
            fetched = client.fetch(uids, ["FLAGS"]) if uids else {}
            state[name] = (
                dict(status),
                {uid: frozenset(data[b"FLAGS"]) for uid, data in fetched.items()},
            )
    return state


def _flags_of(server: RunningServer, folder: str, message_id: str) -> set[bytes] | None:
    """The flags of a message on the server; None when it is not there."""
    with _imapclient(server) as client:
        client.select_folder(folder, readonly=True)
        uids = client.search(["HEADER", "Message-ID", message_id])
        if not uids:
            return None
        return set(client.get_flags(uids)[uids[0]])


def _run_tty(args: Sequence[str], timeout: float = 120) -> tuple[int, str, str]:
    """Run a command with its stdout on a terminal (mbsync prints its counters only
    there); returns (exit status, stdout, stderr)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        args, stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, close_fds=True
    )
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        status = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    return status, out.decode(errors="replace"), err


def _mbsync_config(tmp_path: Path, server: RunningServer, maildir: Path) -> Path:
    rc = tmp_path / "mbsyncrc"
    rc.write_text(
        f"""IMAPAccount govmail
Host 127.0.0.1
Port {server.port("imap")}
User {AN}
Pass {PASSWORD}
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account govmail

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel govmail
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
""",
        encoding="utf-8",
    )
    return rc


def _mbsync(rc: Path) -> tuple[int, str, str]:
    return _run_tty([_require_tool("mbsync", "isync"), "-c", str(rc), "-a"])


_COUNTERS = re.compile(r"C: (\d+)/(\d+)\s+B: (\d+)/(\d+)\s+F: (.*?)\s+N: (.*?)\s*$")


def _final_counters(out: str) -> tuple[str, str]:
    """mbsync's last progress line: what it did on the far (server) and near side, as
    ``+added *flagged #trashed`` counts."""
    lines = [part for part in re.split(r"[\r\n]+", out) if part.startswith("C: ")]
    assert lines, out
    match = _COUNTERS.match(lines[-1])
    assert match is not None, lines[-1]
    return match[5], match[6]


def test_mbsync_two_way_sync_of_several_folders(tmp_path: Path, server: RunningServer) -> None:
    _require_tool("mbsync", "isync")
    for n in range(1, 4):
        _deliver(server, _simple(f"Công văn {n}", f"cv-{n}"))
    with _imapclient(server) as client:
        client.create_folder("Lưu trữ")
        client.append("Lưu trữ", _simple("Hồ sơ cũ", "ho-so"), [b"\\Seen"])
    assert cli(server.data_dir, "delegation", "grant", "ttr", AN).exit_code == 0
    _deliver(server, _simple("Gửi Thanh tra tỉnh", "gui-ttr"), to=TTR)
    maildir = tmp_path / "Mail"
    # A folder that exists only on this computer, with a message read there. (mbsync 1.4
    # sends local folder names as they are, not in modified UTF-7: an ASCII name.)
    local = _new_maildir(maildir / "Du an")
    (local / "cur" / "1715000000.1.laptop:2,S").write_bytes(_simple("Ghi chú", "ghi-chu"))
    rc = _mbsync_config(tmp_path, server, maildir)

    # First run: the server's mail comes down, the local folder goes up.
    status, out, err = _mbsync(rc)
    assert status == 0, (out, err)
    inbox = _message_files(maildir / "INBOX")
    assert set(inbox) == {"cv-1@khanhhoa.gov.vn", "cv-2@khanhhoa.gov.vn", "cv-3@khanhhoa.gov.vn"}
    assert all(_maildir_flags(path) == "" for path in inbox.values())
    # mbsync 1.4 names Maildir folders by their modified-UTF-7 wire names.
    archived = _message_files(maildir / "L&AbA-u tr&Hu8-")
    assert list(archived) == ["ho-so@khanhhoa.gov.vn"]
    assert _maildir_flags(archived["ho-so@khanhhoa.gov.vn"]) == "S"
    assert list(_message_files(maildir / "Shared" / "ttr" / "INBOX")) == ["gui-ttr@khanhhoa.gov.vn"]
    assert _flags_of(server, "Du an", "ghi-chu@khanhhoa.gov.vn") == {b"\\Seen"}

    # Both sides change: flags here and there, and a message deleted here.
    _set_maildir_flags(inbox["cv-1@khanhhoa.gov.vn"], "FS")
    with _imapclient(server) as client:
        client.select_folder("INBOX")
        [uid] = client.search(["HEADER", "Message-ID", "cv-2@khanhhoa.gov.vn"])
    with imap(server) as stdlib:  # the stdlib client, as a second real client
        stdlib.select("INBOX")
        assert stdlib.uid("STORE", str(uid), "+FLAGS", "(\\Answered \\Seen)")[0] == "OK"
    inbox["cv-3@khanhhoa.gov.vn"].unlink()
    _deliver(server, _simple("Công văn 4", "cv-4"))
    with _imapclient(server) as client:
        client.select_folder("Lưu trữ")
        client.delete_messages(client.search())
        client.expunge()
        client.create_folder("Mật")
        client.append("Mật", _simple("Tài liệu mật", "mat"), [b"\\Flagged"])

    status, out, err = _mbsync(rc)
    assert status == 0, (out, err)
    assert _flags_of(server, "INBOX", "cv-1@khanhhoa.gov.vn") == {b"\\Flagged", b"\\Seen"}
    inbox = _message_files(maildir / "INBOX")
    assert _maildir_flags(inbox["cv-2@khanhhoa.gov.vn"]) == "RS"
    assert "cv-3@khanhhoa.gov.vn" not in inbox
    assert _flags_of(server, "INBOX", "cv-3@khanhhoa.gov.vn") is None  # expunged there
    assert _maildir_flags(inbox["cv-4@khanhhoa.gov.vn"]) == ""
    assert _message_files(maildir / "L&AbA-u tr&Hu8-") == {}  # expunged on the server
    [secret] = _message_files(maildir / "M&Hq0-t").values()
    assert _maildir_flags(secret) == "F"

    # Nothing changed since: a third run does nothing, and the server stays as it was.
    before, files_before = _server_state(server), sorted(maildir.rglob("*"))
    status, out, err = _mbsync(rc)
    assert status == 0, (out, err)
    assert _final_counters(out) == ("+0/0 *0/0 #0/0", "+0/0 *0/0 #0/0"), out
    assert _server_state(server) == before
    assert sorted(maildir.rglob("*")) == files_before


def _offlineimap_config(tmp_path: Path, server: RunningServer, maildir: Path) -> Path:
    rc = tmp_path / "offlineimaprc"
    rc.write_text(
        f"""[general]
accounts = govmail
metadata = {tmp_path / "offlineimap-state"}

[Account govmail]
localrepository = local
remoterepository = remote
utf8foldernames = yes

[Repository local]
type = Maildir
localfolders = {maildir}

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {server.port("imap")}
remoteuser = {AN}
remotepass = {PASSWORD}
ssl = no
starttls = no
""",
        encoding="utf-8",
    )
    return rc


def _offlineimap(rc: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_require_tool("offlineimap", "offlineimap3"), "-c", str(rc), "-o", "-u", "quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_offlineimap_syncs_mail_and_flags_both_ways(tmp_path: Path, server: RunningServer) -> None:
    _require_tool("offlineimap", "offlineimap3")
    for n in range(1, 4):
        _deliver(server, _simple(f"Thông báo {n}", f"tb-{n}"))
    with _imapclient(server) as client:
        client.select_folder("INBOX")
        client.add_flags([1], [b"\\Flagged"])
        client.add_flags([2], [b"\\Seen", b"\\Answered"])
        client.create_folder("Lưu trữ")
        client.append("Lưu trữ", _simple("Hồ sơ cũ", "ho-so"), [b"\\Seen"])
    maildir = tmp_path / "Mail"
    # A Vietnamese-named folder made on this computer (offlineimap sends it in mUTF-7).
    local = _new_maildir(maildir / "Hồ sơ")
    (local / "cur" / "1715000000.1.laptop:2,S").write_bytes(_simple("Ghi chú", "ghi-chu"))
    rc = _offlineimap_config(tmp_path, server, maildir)

    done = _offlineimap(rc)
    assert done.returncode == 0, (done.stdout, done.stderr)
    inbox = _message_files(maildir / "INBOX")
    assert {k: _maildir_flags(v) for k, v in inbox.items()} == {
        "tb-1@khanhhoa.gov.vn": "F",
        "tb-2@khanhhoa.gov.vn": "RS",
        "tb-3@khanhhoa.gov.vn": "",
    }
    assert {"Sent", "Drafts", "Trash", "Junk"} <= {p.name for p in maildir.iterdir()}
    archived = _message_files(maildir / "Lưu trữ")
    assert {k: _maildir_flags(v) for k, v in archived.items()} == {"ho-so@khanhhoa.gov.vn": "S"}
    assert _flags_of(server, "Hồ sơ", "ghi-chu@khanhhoa.gov.vn") == {b"\\Seen"}

    _set_maildir_flags(inbox["tb-3@khanhhoa.gov.vn"], "FS")
    _set_maildir_flags(inbox["tb-1@khanhhoa.gov.vn"], "")
    done = _offlineimap(rc)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert _flags_of(server, "INBOX", "tb-3@khanhhoa.gov.vn") == {b"\\Flagged", b"\\Seen"}
    assert _flags_of(server, "INBOX", "tb-1@khanhhoa.gov.vn") == set()
