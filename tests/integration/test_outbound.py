"""Mail out through real peers: an official of khanhhoa.gov.vn writes to tinh-b.test (a
second govmail on loopback, found through the loopback DNS), and the queue's workers
deliver, retry, warn, bounce and survive restarts; the operator's queue commands."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from govmail.core.dsn import DELAYED_SUBJECT, SUBJECT
from govmail.ops.tls import write_self_signed
from tests.integration.clihelp import cli
from tests.integration.mailserver import AN, BINH, db_execute, mailbox_messages, submission
from tests.integration.twoprovinces import (
    REMOTE,
    REMOTE2,
    TwoProvinces,
    own_database,
    two_provinces,
)


@pytest.fixture
def two(province: Path, tmp_path: Path) -> Iterator[TwoProvinces]:
    with two_provinces(province, tmp_path) as pair:
        pair.set_sender("retry_min_s", 1)
        pair.set_sender("retry_max_s", 2)
        yield pair


def letter(subject: str, to: str = REMOTE) -> bytes:
    return (
        f"From: Nguyễn Văn An <{AN}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Kính gửi Văn phòng tỉnh B: giấy mời họp ngày 5/12.\r\n"
    ).encode()


def send(two: TwoProvinces, recipients: list[str], subject: str) -> None:
    assert two.sender is not None
    with submission(two.sender) as client:
        assert client.sendmail(AN, recipients, letter(subject, recipients[0])) == {}


def wait_for(what: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = what()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what.__name__}")
        time.sleep(0.1)


def queue(two: TwoProvinces) -> list[dict[str, Any]]:
    result = cli(two.sender_dir, "queue", "list", "--all", "--json")
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def notices(data_dir: Path, subject: str = SUBJECT) -> list[str]:
    """The delivery notices in AN's INBOX with ``subject``, as text (parts decoded)."""
    found = []
    for _, raw in mailbox_messages(data_dir, AN):
        message = message_from_bytes(raw, policy=policy.default)
        if str(message["Subject"]) == subject:
            parts = [
                part.get_payload(decode=True) or part.as_bytes()
                for part in message.walk()
                if not part.is_multipart()
            ]
            found.append("\n".join(p.decode("utf-8", "replace") for p in parts))
    return found


def test_official_mail_reaches_the_other_province_signed(two: TwoProvinces) -> None:
    two.start_receiver()
    two.start_sender()
    send(two, [REMOTE], "Giấy mời họp")
    (received,) = wait_for(lambda: two.receiver_inbox())
    message = message_from_bytes(received, policy=policy.default)
    assert str(message["Subject"]) == "Giấy mời họp"
    assert message["DKIM-Signature"] is not None and "d=khanhhoa.gov.vn" in str(
        message["DKIM-Signature"]
    )
    # What the receiving province concluded: signed by us, sent from our address, aligned.
    verdict = str(message["Authentication-Results"])
    assert "spf=pass smtp.mailfrom=nvan@khanhhoa.gov.vn" in verdict
    assert "dkim=pass header.d=khanhhoa.gov.vn" in verdict
    assert "dmarc=pass" in verdict and "header.from=khanhhoa.gov.vn" in verdict
    # One Return-Path, the receiver's: ours is not passed on.
    assert received.count(b"Return-Path:") == 1
    assert b"Return-Path: <nvan@khanhhoa.gov.vn>" in received
    # Opportunistic STARTTLS was used (the receiver's trace says ESMTPS).
    assert b"with ESMTPS" in received
    (row,) = wait_for(lambda: [r for r in queue(two) if r["status"] == "sent"])
    assert row["recipient"] == REMOTE and row["attempts"] == 1


def test_mail_from_the_other_province_passes_spf_dkim_and_dmarc_here(
    two: TwoProvinces,
) -> None:
    two.start_receiver()
    two.start_sender()
    assert two.receiver is not None
    reply = (
        f"From: Trần Thị Cúc <{REMOTE}>\r\nTo: <{AN}>\r\nSubject: Xác nhận đã tiếp nhận\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nVăn phòng tỉnh B đã nhận giấy mời.\r\n"
    ).encode()
    with submission(two.receiver, REMOTE) as client:
        assert client.sendmail(REMOTE, [AN], reply) == {}
    (raw,) = wait_for(lambda: [r for _, r in mailbox_messages(two.sender_dir, AN)])
    verdict = str(message_from_bytes(raw, policy=policy.default)["Authentication-Results"])
    assert verdict.startswith("mail.khanhhoa.gov.vn;")
    assert "spf=pass smtp.mailfrom=ttcuc@tinh-b.test" in verdict
    assert "dkim=pass header.d=tinh-b.test" in verdict
    assert "dmarc=pass" in verdict and "header.from=tinh-b.test" in verdict


def test_several_recipients_of_one_domain_share_one_transaction(two: TwoProvinces) -> None:
    two.start_receiver()
    two.start_sender()
    unknown = "khongco@tinh-b.test"
    send(two, [REMOTE, REMOTE2, unknown], "Ba người nhận")
    (first,) = wait_for(lambda: two.receiver_inbox(REMOTE))
    (second,) = wait_for(lambda: two.receiver_inbox(REMOTE2))
    # One transaction at the receiver: one queue id in its trace, one stored copy.
    assert first == second
    (bounce,) = wait_for(lambda: notices(two.sender_dir))
    assert unknown in bounce and "550 5.1.1" in bounce and "mx.tinh-b.test" in bounce
    # Those who got it are not named (the original's headers at the end still are).
    assert f"rfc822; {REMOTE}" not in bounce and f"rfc822; {REMOTE2}" not in bounce
    assert f"<{REMOTE}>:" not in bounce and f"<{REMOTE2}>:" not in bounce
    statuses = {r["recipient"]: r["status"] for r in queue(two)}
    assert statuses == {REMOTE: "sent", REMOTE2: "sent", unknown: "bounced"}


def test_remote_5xx_bounces_at_once_with_the_remote_reply(two: TwoProvinces) -> None:
    two.start_receiver()
    two.start_sender()
    send(two, ["nobody@tinh-b.test"], "Không ai nhận")
    (bounce,) = wait_for(lambda: notices(two.sender_dir))
    assert "nobody@tinh-b.test" in bounce
    assert "User unknown" in bounce and "550 5.1.1" in bounce
    assert "Status: 5.1.1" in bounce and "Action: failed" in bounce
    assert "Hãy kiểm tra lại địa chỉ người nhận" in bounce  # what to do, in Vietnamese
    (row,) = queue(two)
    assert row["status"] == "bounced" and row["attempts"] == 1


def test_remote_4xx_is_retried_then_delivered(two: TwoProvinces) -> None:
    two.start_receiver()
    two.start_sender()
    full = "UPDATE mailboxes SET used_bytes = quota_bytes"
    with own_database():
        db_execute(two.receiver_dir, full)
    send(two, [REMOTE], "Hộp thư đầy")
    (row,) = wait_for(lambda: [r for r in queue(two) if r["status"] == "deferred"])
    assert "452 4.2.2" in row["last_error"]
    with own_database():
        db_execute(two.receiver_dir, "UPDATE mailboxes SET used_bytes = 0")
    (received,) = wait_for(lambda: two.receiver_inbox())
    assert str(message_from_bytes(received, policy=policy.default)["Subject"]) == "Hộp thư đầy"
    (row,) = wait_for(lambda: [r for r in queue(two) if r["status"] == "sent"])
    assert row["attempts"] >= 2
    assert notices(two.sender_dir) == []  # the sender was never told of a failure


def test_unreachable_host_retries_then_warns_then_bounces(two: TwoProvinces) -> None:
    # The receiver is never started: nothing listens on its port.
    two.set_sender("retry_min_s", 0.3)
    two.set_sender("retry_max_s", 0.5)
    # Wide enough apart that a loaded machine still makes an attempt between the two.
    two.set_sender("delay_warning_s", 1)
    two.set_sender("bounce_after_s", 8)
    two.start_sender()
    send(two, [REMOTE], "Không tới được")
    (warning,) = wait_for(lambda: notices(two.sender_dir, DELAYED_SUBJECT), timeout=30)
    assert REMOTE in warning and "Action: delayed" in warning
    assert "KHÔNG cần gửi lại" in warning and "Will-Retry-Until:" in warning
    (bounce,) = wait_for(lambda: notices(two.sender_dir), timeout=30)
    assert REMOTE in bounce and "Status: 5.4.7" in bounce and "Connection refused" in bounce
    (row,) = queue(two)
    assert row["status"] == "bounced" and row["attempts"] >= 3
    assert len(notices(two.sender_dir, DELAYED_SUBJECT)) == 1  # warned once only


def test_null_mx_and_missing_domain_bounce_at_once(two: TwoProvinces) -> None:
    two.zone.add("nomail.test", "MX", (0, "."))
    two.start_sender()
    send(two, ["ai@nomail.test"], "MX rỗng")
    (bounce,) = wait_for(lambda: notices(two.sender_dir))
    assert "ai@nomail.test" in bounce and "Status: 5.1.10" in bounce
    send(two, ["ai@khongtontai.test"], "Tên miền không có")
    bounces = wait_for(lambda: [b for b in notices(two.sender_dir) if "khongtontai" in b])
    assert "Status: 5.1.2" in bounces[0]
    assert {r["status"] for r in queue(two)} == {"bounced"}


def test_dns_timeout_defers(two: TwoProvinces) -> None:
    two.zone.fail.add("tinh-b.test")
    two.start_sender()
    send(two, [REMOTE], "DNS lỗi")
    (row,) = wait_for(lambda: [r for r in queue(two) if r["status"] == "deferred"])
    assert "4.4.3" in row["last_error"]
    assert notices(two.sender_dir) == []


def test_mail_loop_bounces_instead_of_leaving(two: TwoProvinces) -> None:
    two.set_sender("max_hops", 3)
    two.start_receiver()
    two.start_sender()
    assert two.sender is not None
    looping = b"".join(
        f"Received: from r{i}.example.org by x; today\r\n".encode() for i in range(4)
    )
    with submission(two.sender) as client:
        client.sendmail(AN, [REMOTE], looping + letter("Vòng lặp"))
    (bounce,) = wait_for(lambda: notices(two.sender_dir))
    assert "Status: 5.4.6" in bounce
    assert two.receiver_inbox() == []


def test_restart_with_mail_in_the_queue_delivers_it_once(two: TwoProvinces) -> None:
    sender = two.start_sender()
    send(two, [REMOTE], "Qua lần khởi động lại")
    send(two, [REMOTE, "ltbinh@khanhhoa.gov.vn"], "Thư thứ hai")
    wait_for(lambda: len([r for r in queue(two) if r["status"] == "deferred"]) == 2)
    assert sender.stop() == 0
    two.start_receiver()
    two.start_sender()
    wait_for(lambda: len(two.receiver_inbox()) == 2)
    time.sleep(2.5)  # more retry rounds: nothing is sent twice
    subjects = sorted(
        str(message_from_bytes(m, policy=policy.default)["Subject"]) for m in two.receiver_inbox()
    )
    assert subjects == ["Qua lần khởi động lại", "Thư thứ hai"]
    assert [r["status"] for r in queue(two)] == ["sent", "sent"]
    assert len(mailbox_messages(two.sender_dir, BINH)) == 1  # the local copy, once


def test_smarthost_takes_all_mail(two: TwoProvinces) -> None:
    # No MX for tinh-b.test any more: only the smarthost can deliver.
    two.zone.remove("tinh-b.test", "MX")
    two.set_sender("smarthost", f"localhost:{two.receiver_smtp}")
    two.set_sender("smarthost_tls", "starttls")  # required, certificate verified
    two.set_sender("ca_file", str(two.receiver_dir / "tls" / "cert.pem"))
    two.start_receiver()
    two.start_sender()
    send(two, [REMOTE], "Qua smarthost")
    (received,) = wait_for(lambda: two.receiver_inbox())
    assert b"with ESMTPS" in received
    (row,) = wait_for(lambda: [r for r in queue(two) if r["status"] == "sent"])
    show = json.loads(cli(two.sender_dir, "queue", "show", str(row["id"]), "--json").stdout)
    assert show["relay"].startswith("localhost[localhost]:")


def test_smarthost_with_an_unverifiable_certificate_defers(two: TwoProvinces) -> None:
    two.set_sender("smarthost", f"localhost:{two.receiver_smtp}")
    two.set_sender("smarthost_tls", "starttls")  # no ca_file: the self-signed one fails
    two.start_receiver()
    two.start_sender()
    send(two, [REMOTE], "Chứng thư không tin được")
    (row,) = wait_for(lambda: [r for r in queue(two) if r["status"] == "deferred"])
    assert "certificate verify failed" in row["last_error"]
    assert two.receiver_inbox() == []


def test_queue_commands_show_retry_and_delete(two: TwoProvinces) -> None:
    two.set_sender("retry_min_s", 3600)  # only the operator's retry can make them due
    two.start_sender()
    send(two, [REMOTE], "Giữ lại")
    send(two, [REMOTE], "Xóa đi")
    rows = wait_for(lambda: [r for r in queue(two) if r["status"] == "deferred"][1:] and queue(two))
    keep, drop = rows[0]["id"], rows[1]["id"]

    shown = cli(two.sender_dir, "queue", "show", str(keep))
    assert shown.exit_code == 0
    assert REMOTE in shown.stdout and "Lỗi gần nhất:" in shown.stdout
    assert "Subject: Giữ lại" in shown.stdout and "deferred, đã thử 1 lần" in shown.stdout
    as_json = json.loads(cli(two.sender_dir, "queue", "show", str(keep), "--json").stdout)
    assert as_json["headers"]["Subject"] == "Giữ lại" and as_json["attempts"] == 1

    deleted = cli(two.sender_dir, "queue", "delete", str(drop))
    assert deleted.exit_code == 0 and "người gửi không được thông báo" in deleted.stdout
    assert [r["id"] for r in queue(two)] == [keep]
    missing = cli(two.sender_dir, "queue", "show", str(drop))
    assert missing.exit_code == 1 and "Không có thư số" in missing.stderr
    assert cli(two.sender_dir, "queue", "retry", "999999").exit_code == 1
    assert cli(two.sender_dir, "queue", "retry").exit_code == 2  # neither rows nor --all

    two.start_receiver()
    retried = cli(two.sender_dir, "queue", "retry", "--all", "--json")
    assert json.loads(retried.stdout) == {"retried": [keep]}
    (received,) = wait_for(lambda: two.receiver_inbox(), timeout=30)
    assert b"Subject: =?utf-8?" in received or "Giữ lại".encode() in received
    assert [r["status"] for r in queue(two)] == ["sent"]
    assert notices(two.sender_dir) == []  # deleting tells the sender nothing


# --- MTA-STS --------------------------------------------------------------------------


def serve_policy(cert: Path, key: Path, policy_text: str) -> tuple[ThreadingHTTPServer, int]:
    class Policy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = policy_text.encode()
            self.send_response(200 if self.path == "/.well-known/mta-sts.txt" else 404)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Policy)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1])


@pytest.mark.parametrize("policy_mx", ["mx.tinh-b.test", "mx.elsewhere.test"])
def test_mta_sts_enforce(two: TwoProvinces, tmp_path: Path, policy_mx: str) -> None:
    # The policy host's certificate and the receiver's, both for names in its policy,
    # trusted through [delivery] ca_file (as a closed network's own CA would be).
    write_self_signed(tmp_path / "sts.pem", tmp_path / "sts.key", ["mta-sts.tinh-b.test"])
    receiver_tls = two.receiver_dir / "tls"
    write_self_signed(receiver_tls / "cert.pem", receiver_tls / "key.pem", ["mx.tinh-b.test"])
    trusted = tmp_path / "trusted.pem"
    trusted.write_bytes(
        (tmp_path / "sts.pem").read_bytes() + (receiver_tls / "cert.pem").read_bytes()
    )
    text = f"version: STSv1\r\nmode: enforce\r\nmx: {policy_mx}\r\nmax_age: 86400\r\n"
    https, port = serve_policy(tmp_path / "sts.pem", tmp_path / "sts.key", text)
    try:
        two.zone.add("_mta-sts.tinh-b.test", "TXT", "v=STSv1; id=20261128")
        two.zone.add("mta-sts.tinh-b.test", "A", "127.0.0.1")
        two.set_sender("mta_sts_port", port)
        two.set_sender("ca_file", str(trusted))
        two.start_receiver()
        two.start_sender()
        send(two, [REMOTE], "Theo MTA-STS")
        if policy_mx == "mx.tinh-b.test":
            (received,) = wait_for(lambda: two.receiver_inbox())
            assert b"with ESMTPS" in received
        else:
            (row,) = wait_for(lambda: [r for r in queue(two) if r["status"] == "deferred"])
            assert "MTA-STS" in row["last_error"]
            assert two.receiver_inbox() == []
    finally:
        https.shutdown()
        https.server_close()
