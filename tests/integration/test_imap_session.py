"""IMAP sessions against the real server with the stdlib client and raw sockets: login
rules, folders, several sessions on one folder, IDLE, the shared namespace, access events."""

from __future__ import annotations

import base64
import imaplib
import re
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.clihelp import cli
from tests.integration.mailserver import (
    AN,
    BINH,
    PASSWORD,
    TTR,
    RunningServer,
    client_tls,
    db_execute,
    db_scalar,
    imap,
    mx,
    served,
)


def deliver(server: RunningServer, subject: str = "Báo cáo tuần", to: str = AN) -> None:
    encoded = base64.b64encode(subject.encode()).decode()
    body = (
        f"From: Lê Thị Bình <binh@example.org>\r\nTo: {to}\r\nSubject: =?utf-8?b?{encoded}?=\r\n"
        "Message-ID: <x@example.org>\r\n\r\nNội dung.\r\n"
    )
    with mx(server) as client:
        client.sendmail("sender@example.org", [to], body.encode())


class Raw:
    """A line-level IMAP client for what imaplib hides (untagged timing, IDLE)."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.greeting = self.file.readline()
        self.n = 0

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def command(self, text: str) -> list[bytes]:
        """Send a tagged command; every line up to and including the tagged answer."""
        self.n += 1
        tag = f"t{self.n}"
        self.send(f"{tag} {text}")
        lines = []
        while True:
            line = self.file.readline()
            assert line, "connection closed"
            lines.append(line)
            if line.startswith(tag.encode() + b" "):
                return lines

    def login(self, user: str = AN) -> None:
        assert self.command(f'LOGIN "{user}" "{PASSWORD}"')[-1].split()[1] == b"OK"

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def raw(server: RunningServer) -> Iterator[Callable[[], Raw]]:
    """Opens raw IMAP connections to the server; all are closed after the test."""
    opened: list[Raw] = []

    def connect() -> Raw:
        opened.append(Raw(server.port("imap")))
        return opened[-1]

    yield connect
    for client in opened:
        client.close()


def test_login_select_fetch_search_store(server: RunningServer) -> None:
    deliver(server)
    client = imap(server)
    typ, data = client.select("INBOX")
    assert (typ, data) == ("OK", [b"1"])
    typ, data = client.fetch("1", "(FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK"
    assert b"=?utf-8?b?" in data[0][1]  # type: ignore[index]
    typ, data = client.uid("SEARCH", None, "SUBJECT", '"bao cao tuan"')
    assert (typ, data) == ("OK", [b"1"])
    typ, data = client.search(None, "UNSEEN")
    assert data == [b"1"]
    client.store("1", "+FLAGS", "(\\Seen $Important)")
    typ, data = client.fetch("1", "(FLAGS)")
    assert b"\\Seen" in data[0] and b"$Important" in data[0]  # type: ignore[operator]
    client.logout()


def test_capabilities_and_special_use_on_plain_list(server: RunningServer) -> None:
    client = imaplib.IMAP4("127.0.0.1", server.port("imap"))
    assert "STARTTLS" in client.capabilities and "AUTH=PLAIN" in client.capabilities
    client.login(AN, PASSWORD)
    typ, data = client.capability()
    for word in (b"IDLE", b"UIDPLUS", b"MOVE", b"CONDSTORE", b"SPECIAL-USE", b"QUOTA", b"ESEARCH"):
        assert word in data[0]  # type: ignore[operator]
    typ, listed = client.list()
    lines = {line.split(b' "/" ', 1)[1]: line for line in listed}  # type: ignore[union-attr]
    assert b"\\Sent" in lines[b"Sent"] and b"\\Trash" in lines[b"Trash"]
    assert b"\\Junk" in lines[b"Junk"] and b"\\Drafts" in lines[b"Drafts"]
    typ, data = client.getquotaroot("INBOX")
    assert typ == "OK" and b"STORAGE" in data[1][0]  # type: ignore[index,operator]
    client.logout()


def test_plaintext_login_is_refused_off_loopback(province: Path) -> None:
    """LOGINDISABLED without TLS except from loopback; after STARTTLS it works."""
    address = _non_loopback_address()
    with served(province, host=address) as server:
        client = imaplib.IMAP4(address, server.port("imap"))
        assert "LOGINDISABLED" in client.capabilities
        with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
            client.login(AN, PASSWORD)
        client.starttls(ssl_context=client_tls())
        assert "LOGINDISABLED" not in client.capabilities
        assert client.login(AN, PASSWORD)[0] == "OK"
        client.logout()
        secure = imaplib.IMAP4_SSL(address, server.port("imaps"), ssl_context=client_tls())
        assert secure.login(AN, PASSWORD)[0] == "OK"
        secure.logout()


def _non_loopback_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
            address = str(probe.getsockname()[0])
        except OSError:
            address = ""
    if not address or address.startswith("127."):
        pytest.skip("this machine has no non-loopback IPv4 address")
    return address


def test_password_to_change_gets_an_alert_and_disabled_is_refused(
    server: RunningServer, raw: Callable[[], Raw]
) -> None:
    db_execute(
        server.data_dir,
        "UPDATE mailboxes SET must_change_password = true WHERE id = "
        "(SELECT mailbox_id FROM addresses WHERE local_part = 'nvan')",
    )
    client = raw()
    answer = client.command(f'LOGIN "{AN}" "{PASSWORD}"')[-1]
    assert b"NO [ALERT]" in answer and b"webmail" in answer
    db_execute(
        server.data_dir,
        "UPDATE mailboxes SET status = 'disabled', must_change_password = false WHERE id = "
        "(SELECT mailbox_id FROM addresses WHERE local_part = 'ltbinh')",
    )
    answer = client.command(f'LOGIN "{BINH}" "{PASSWORD}"')[-1]
    assert b"NO [AUTHENTICATIONFAILED]" in answer
    answer = client.command(f'LOGIN "{BINH}" "wrong"')[-1]
    assert b"NO [AUTHENTICATIONFAILED]" in answer


def test_other_sessions_see_flags_expunges_and_new_mail(
    server: RunningServer, raw: Callable[[], Raw]
) -> None:
    for subject in ("một", "hai", "ba"):
        deliver(server, subject)
    watcher, actor = raw(), raw()
    for client in (watcher, actor):
        client.login()
        client.command("SELECT INBOX")
    actor.command("STORE 2 +FLAGS.SILENT (\\Flagged)")
    noop = watcher.command("NOOP")
    assert any(re.match(rb"\* 2 FETCH \(UID 2 FLAGS \(\\Flagged\)\)", line) for line in noop)
    actor.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
    actor.command("EXPUNGE")
    # Never an EXPUNGE while answering FETCH, STORE or SEARCH: numbers must stay put.
    fetched = watcher.command("FETCH 1:3 (UID)")
    assert not any(line.endswith(b" EXPUNGE\r\n") for line in fetched), fetched
    # Message 1 is gone from the store: the others are answered, and the client told.
    assert fetched[0].startswith(b"* 2 FETCH (UID 2)")
    assert b"OK [EXPUNGEISSUED]" in fetched[-1]
    searched = watcher.command("SEARCH ALL")
    assert not any(line.endswith(b" EXPUNGE\r\n") for line in searched)
    noop = watcher.command("NOOP")
    assert b"* 1 EXPUNGE\r\n" in noop
    deliver(server, "bốn")
    noop = watcher.command("NOOP")
    assert b"* 3 EXISTS\r\n" in noop
    fetched = watcher.command("FETCH 3 (UID)")
    assert fetched[0].startswith(b"* 3 FETCH (UID 4)")


def test_idle_pushes_new_mail_within_a_second(
    server: RunningServer, raw: Callable[[], Raw]
) -> None:
    client = raw()
    client.login()
    client.command("SELECT INBOX")
    client.send("i1 IDLE")
    assert client.file.readline().startswith(b"+")
    started = time.monotonic()
    deliver(server)
    line = client.file.readline()
    elapsed = time.monotonic() - started
    assert line == b"* 1 EXISTS\r\n"
    assert elapsed < 1.0, elapsed
    client.send("DONE")
    assert client.file.readline().startswith(b"i1 OK")


def test_uids_grow_and_survive_a_restart(province: Path) -> None:
    with served(province) as server:
        deliver(server, "1")
        deliver(server, "2")
        client = imap(server)
        client.select("INBOX")
        client.store("2", "+FLAGS", "(\\Deleted \\Answered)")
        client.expunge()
        client.store("1", "+FLAGS", "(\\Flagged)")
        validity = client.response("UIDVALIDITY")
        client.logout()
    with served(province) as server:
        deliver(server, "3")
        client = imap(server)
        _, data = client.select("INBOX")
        assert data == [b"2"]
        _, data = client.uid("FETCH", "1:*", "(UID FLAGS)")
        assert b"UID 1 FLAGS (\\Flagged)" in data[0]  # type: ignore[operator]
        assert b"UID 3 " in data[1]  # type: ignore[operator]  # 2 is never given again
        assert client.response("UIDVALIDITY") == validity
        client.logout()


def test_copy_move_append_report_uids(server: RunningServer) -> None:
    deliver(server)
    client = imap(server)
    client.select("INBOX")
    typ, data = client.copy("1", "Trash")
    assert typ == "OK"
    assert re.search(rb"\[COPYUID \d+ 1 1\]", data[0])  # type: ignore[arg-type]
    typ, data = client.uid("MOVE", "1", "Junk")
    assert typ == "OK"
    typ, data = client.select("INBOX")
    assert data == [b"0"]
    message = b"From: nvan@khanhhoa.gov.vn\r\nSubject: Nhap\r\n\r\nBan nhap.\r\n"
    typ, data = client.append("Drafts", "(\\Draft)", None, message)
    assert typ == "OK" and re.search(rb"\[APPENDUID \d+ 1\]", data[0])  # type: ignore[arg-type]
    typ, data = client.append('"Khong co"', None, None, message)
    assert typ == "NO" and b"TRYCREATE" in data[0]  # type: ignore[operator]
    client.logout()


def test_folders_create_rename_delete(server: RunningServer) -> None:
    # imaplib sends names as given: these are "Công văn/2026", "Lưu trữ"... in modified UTF-7.
    client = imap(server)
    assert client.create('"C&APQ-ng v&AQM-n/2026"')[0] == "OK"
    names = [line.split(b' "/" ', 1)[1] for line in client.list()[1]]  # type: ignore[union-attr]
    assert b'"C&APQ-ng v&AQM-n/2026"' in names and b'"C&APQ-ng v&AQM-n"' in names
    assert client.rename('"C&APQ-ng v&AQM-n"', '"L&AbA-u tr&Hu8-"')[0] == "OK"
    assert client.delete('"L&AbA-u tr&Hu8-"')[0] == "NO"  # it has a sub-folder
    assert client.delete('"L&AbA-u tr&Hu8-/2026"')[0] == "OK"
    assert client.delete("INBOX")[0] == "NO"
    client.logout()


def test_delegated_agency_mailbox_in_the_shared_namespace(province: Path) -> None:
    assert cli(province, "delegation", "grant", "ttr", AN).exit_code == 0
    with served(province) as server:
        deliver(server, "Giấy mời họp", to=TTR)
        client = imap(server)
        typ, data = client.namespace()
        assert b'(("Shared/" "/"))' in data[0]  # type: ignore[operator]
        names = [line.split(b' "/" ', 1)[1] for line in client.list()[1]]  # type: ignore[union-attr]
        assert b"Shared/ttr/INBOX" in names and b"Shared/ttr/Sent" in names
        typ, data = client.select("Shared/ttr/INBOX")
        assert (typ, data) == ("OK", [b"1"])
        client.logout()
        other = imap(server, BINH)
        assert other.select("Shared/ttr/INBOX")[0] == "NO"  # not delegated to Bình
        other.logout()
    audited = db_scalar(
        province,
        "SELECT count(*) FROM audit_log WHERE action = 'imap.select'"
        f" AND actor = '{AN}' AND target = '{TTR}'",
    )
    assert audited == 1
    events = db_scalar(
        province,
        "SELECT count(*) FROM access_events e JOIN addresses a ON a.mailbox_id = e.mailbox_id"
        " WHERE a.local_part = 'ttr' AND e.kind = 'select' AND e.actor_mailbox_id IS NOT NULL",
    )
    assert events == 1


def test_access_events_record_logins_and_inbox_checks(server: RunningServer) -> None:
    client = imap(server)
    client.select("INBOX")
    client.status("INBOX", "(MESSAGES)")
    client.select("Sent")  # not INBOX: not a check of new mail
    client.logout()
    deadline = time.monotonic() + 5
    kinds: object = None
    while time.monotonic() < deadline:
        kinds = db_scalar(
            server.data_dir,
            "SELECT count(*) FROM access_events WHERE protocol = 'imap'"
            " AND client_address = '127.0.0.1'",
        )
        if kinds == 3:
            break
        time.sleep(0.1)
    assert kinds == 3  # login, SELECT INBOX, STATUS INBOX


def test_a_revoked_delegation_ends_access_at_once(province: Path) -> None:
    assert cli(province, "delegation", "grant", "ttr", AN).exit_code == 0
    with served(province) as server:
        client = Raw(server.port("imap"))
        try:
            client.login()
            assert client.command("SELECT Shared/ttr/INBOX")[-1].split()[1] == b"OK"
            assert cli(province, "delegation", "revoke", "ttr", AN).exit_code == 0
            client.send("t9 STATUS Shared/ttr/Sent (MESSAGES)")
            answer = client.file.readline()
            assert answer.startswith(b"* BYE") and b"revoked" in answer
            assert client.file.readline() == b""
        finally:
            client.close()


def test_folder_edge_cases(server: RunningServer, raw: Callable[[], Raw]) -> None:
    client, other = raw(), raw()
    client.login()
    other.login()
    # INBOX's children are under INBOX whatever the case the client writes.
    assert client.command("CREATE inbox/foo")[-1].split()[1] == b"OK"
    listed = b"".join(client.command('LIST "" *'))
    assert b'"/" INBOX/foo' in listed and b'"/" inbox' not in listed
    assert b'(\\HasChildren) "/" INBOX' in listed
    # A rename whose result would be too long is refused, not a crash.
    client.command("CREATE p/child")
    assert b"NO [CANNOT]" in client.command("RENAME p " + "q" * 250)[-1]
    # EXPUNGE in a folder another session deleted: NO, then the session is told.
    client.command("CREATE Gone")
    client.command("SELECT Gone")
    assert other.command("DELETE Gone")[-1].split()[1] == b"OK"
    assert b"NO [NONEXISTENT]" in client.command("EXPUNGE")[-1]
    assert client.file.readline().startswith(b"* BYE")


def test_condstore_reports_the_modseq_of_an_implicit_seen(server: RunningServer) -> None:
    deliver(server)
    client = Raw(server.port("imap"))
    try:
        client.login()
        client.command("ENABLE CONDSTORE")
        client.command("SELECT INBOX")
        fetched = client.command("FETCH 1 (BODY[HEADER.FIELDS (X-NONE)])")
        assert re.search(rb"FLAGS \(\\Seen\) MODSEQ \(\d+\)", b"".join(fetched)), fetched
    finally:
        client.close()


def test_the_same_message_appended_at_once_by_many(server: RunningServer) -> None:
    """Two transactions inserting one new blob: neither fails (PostgreSQL's unique
    index made the second one a session crash)."""
    message = b"From: a@example.org\r\nSubject: Giong nhau\r\n\r\nCung noi dung.\r\n"

    def append_many(login: str) -> list[str]:
        client = imap(server, login)
        try:
            return [
                client.append("INBOX", None, None, message + b"%d\r\n" % n)[0] for n in range(30)
            ]
        finally:
            client.logout()

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(append_many, [AN, BINH]))
    assert results == [["OK"] * 30, ["OK"] * 30]


def test_a_full_mailbox_refuses_append_and_copy(server: RunningServer) -> None:
    deliver(server)
    client = imap(server)
    client.select("INBOX")
    db_execute(
        server.data_dir,
        "UPDATE mailboxes SET quota_bytes = 1000, used_bytes = 1000 WHERE id = "
        "(SELECT mailbox_id FROM addresses WHERE local_part = 'nvan')",
    )
    typ, data = client.append("INBOX", None, None, b"Subject: x\r\n\r\nbody\r\n")
    assert typ == "NO" and b"OVERQUOTA" in data[0]  # type: ignore[operator]
    typ, data = client.copy("1", "Trash")
    assert typ == "NO" and b"OVERQUOTA" in data[0]  # type: ignore[operator]
    typ, data = client.getquotaroot("INBOX")
    assert b"(STORAGE 1 0)" in data[1][0]  # type: ignore[index,operator]
    client.logout()


def test_a_new_keyword_is_announced_with_flags(
    server: RunningServer, raw: Callable[[], Raw]
) -> None:
    deliver(server)
    watcher, actor = raw(), raw()
    for client in (watcher, actor):
        client.login()
        client.command("SELECT INBOX")
    stored = actor.command("STORE 1 +FLAGS ($DaXuLy)")
    assert any(line.startswith(b"* FLAGS (") and b"$DaXuLy" in line for line in stored)
    noop = watcher.command("NOOP")
    assert any(line.startswith(b"* FLAGS (") and b"$DaXuLy" in line for line in noop)
    assert any(b"PERMANENTFLAGS" in line and b"$DaXuLy" in line for line in noop)
    assert any(b"FETCH (UID 1 FLAGS ($DaXuLy))" in line for line in noop)
