"""Mail in through the real server: MX and submission, delivery, Sent copies, the queue."""

from __future__ import annotations

import json
import smtplib
from pathlib import Path

import pytest

from tests.integration.clihelp import cli
from tests.integration.mailserver import (
    AN,
    BINH,
    DOMAIN,
    TTR,
    RunningServer,
    db_execute,
    db_scalar,
    mailbox_folders,
    mailbox_messages,
    mx,
    served,
    set_option,
    submission,
    utf8_labelled,
)


def test_mx_delivers_to_the_inbox_with_trace_headers(server: RunningServer) -> None:
    message = (
        "From: Công dân <citizen@example.org>\r\nTo: nvan@khanhhoa.gov.vn\r\n"
        "Subject: Đề nghị cấp giấy phép\r\n\r\nKính gửi Thanh tra tỉnh.\r\n"
    ).encode()
    with mx(server) as client:
        refused = client.sendmail("citizen@example.org", [AN], message)
    assert refused == {}
    ((stored, raw),) = mailbox_messages(server.data_dir, AN)
    # Return-Path, then our verdict on the sender (RFC 8601 §5), then our trace field.
    assert raw.startswith(b"Return-Path: <citizen@example.org>\r\nAuthentication-Results: ")
    assert b"\r\nReceived: from mta.example.org" in raw
    assert b"for <nvan@khanhhoa.gov.vn>" in raw
    # The message is stored as sent, but for the charset it lacked (R12: UTF-8 text that
    # names no charset is labelled, so readers do not guess another).
    assert raw.endswith(utf8_labelled(message))
    assert stored.uid == 1 and stored.flags == 0
    assert stored.subject == "Đề nghị cấp giấy phép"
    assert "de nghi cap giay phep" in stored.search_text
    used = db_scalar(
        server.data_dir,
        "select used_bytes from mailboxes m join addresses a"
        " on a.mailbox_id = m.id where a.local_part = 'nvan'",
    )
    assert used == len(raw)


def test_alias_domain_and_case_reach_the_same_mailbox(province: Path) -> None:
    text = (province / "govmail.toml").read_text(encoding="utf-8")
    (province / "govmail.toml").write_text(
        text.replace("alias_domains = []", 'alias_domains = ["khanhhoa.vn"]'), encoding="utf-8"
    )
    with served(province) as server, mx(server) as client:
        client.sendmail("a@example.org", ["NVAN@KhanhHoa.vn", AN], b"Subject: x\r\n\r\nx\r\n")
    # Two recipients naming one mailbox: one copy.
    assert len(mailbox_messages(province, AN)) == 1


def test_submission_delivers_locally_files_sent_and_queues_remote(province: Path) -> None:
    # No name server answers: the outbound mail waits in the queue (tests/integration/
    # test_outbound.py follows it out).
    set_option(province, "nameservers", ["127.0.0.1:9"], section="dns")
    message = (
        b"From: nvan@khanhhoa.gov.vn\r\nTo: ltbinh@khanhhoa.gov.vn\r\nSubject: Hop\r\n\r\nHi\r\n"
    )
    with served(province) as server, submission(server) as client:
        refused = client.sendmail(AN, [BINH, "dn@example.com"], message)
    assert refused == {}
    ((inbox, raw),) = mailbox_messages(server.data_dir, BINH)
    ((sent, sent_raw),) = mailbox_messages(server.data_dir, AN, "Sent")
    assert raw == sent_raw and inbox.blob == sent.blob  # one blob serves both
    assert sent.flags & 1  # \Seen
    assert b"with ESMTPSA" in raw and b"Authenticated sender: nvan@khanhhoa.gov.vn" in raw
    assert b"Message-ID: <" in raw and b"\r\nDate: " in raw  # added on submission
    queued = json.loads(cli(server.data_dir, "queue", "list", "--json").stdout)
    assert [(q["sender"], q["recipient"]) for q in queued] == [(AN, "dn@example.com")]
    assert queued[0]["status"] in ("queued", "deferred")
    assert queued[0]["size"] == len(raw)
    assert "dn@example.com" in cli(server.data_dir, "queue", "list").stdout


def test_every_mailbox_has_the_special_use_folders(server: RunningServer) -> None:
    with mx(server) as client:
        client.sendmail("a@example.org", [AN], b"Subject: x\r\n\r\nx\r\n")
        client.sendmail("a@example.org", [AN], b"Subject: y\r\n\r\ny\r\n")
    found = {f["name"]: f for f in mailbox_folders(server.data_dir, AN)}
    assert {name: f["special_use"] for name, f in found.items()} == {
        "INBOX": None,
        "Sent": "sent",
        "Drafts": "drafts",
        "Trash": "trash",
        "Junk": "junk",
    }
    inbox = found["INBOX"]
    assert inbox["uidnext"] == 3 and inbox["highest_modseq"] == 3
    assert int(str(inbox["uidvalidity"])) > 1_700_000_000
    # A mailbox that never received mail has them too.
    assert len(mailbox_folders(server.data_dir, BINH)) == 5


def test_one_blob_for_many_recipients(server: RunningServer) -> None:
    with mx(server) as client:
        client.sendmail("a@example.org", [AN, BINH, TTR], b"Subject: Giay moi\r\n\r\nHop\r\n")
    blobs = {
        m.blob for address in (AN, BINH, TTR) for m, _ in mailbox_messages(server.data_dir, address)
    }
    assert len(blobs) == 1
    assert db_scalar(server.data_dir, "select count(*) from messages") == 1
    files = [
        p for p in (server.data_dir / "blobs").rglob("*") if p.is_file() and p.parent.name != "tmp"
    ]
    assert len(files) == 1


def test_sender_must_own_the_address(server: RunningServer) -> None:
    with submission(server) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail(BINH, [AN], b"Subject: x\r\n\r\nx\r\n")
        assert refused.value.smtp_code == 553
        # The From: header is checked too, not only the envelope.
        with pytest.raises(smtplib.SMTPDataError) as forged:
            client.sendmail(AN, [BINH], b"From: ltbinh@khanhhoa.gov.vn\r\nSubject: x\r\n\r\nx\r\n")
        assert forged.value.smtp_code == 553
        # A From: with no usable address cannot slip past the check.
        with pytest.raises(smtplib.SMTPDataError) as hidden:
            client.sendmail(AN, [BINH], b"From: Ban Giam doc:;\r\nSubject: x\r\n\r\nx\r\n")
        assert hidden.value.smtp_code == 553
    assert mailbox_messages(server.data_dir, BINH) == []


def test_delegated_official_sends_as_the_agency(province: Path) -> None:
    message = b"From: ttr@khanhhoa.gov.vn\r\nSubject: Cong van\r\n\r\nx\r\n"
    with (
        served(province) as server,
        submission(server) as client,
        pytest.raises(smtplib.SMTPSenderRefused),
    ):
        client.sendmail(TTR, [BINH], message)
    assert cli(province, "delegation", "grant", "ttr", AN).exit_code == 0
    with served(province) as server:
        with submission(server) as client:
            assert client.sendmail(TTR, [BINH], message) == {}
        ((_, raw),) = mailbox_messages(province, BINH)
        assert raw.endswith(message)
    assert cli(province, "delegation", "revoke", "ttr", AN).exit_code == 0
    with (
        served(province) as server,
        submission(server) as client,
        pytest.raises(smtplib.SMTPSenderRefused),
    ):
        client.sendmail(TTR, [BINH], message)


def test_bare_lf_is_stored_as_crlf(server: RunningServer) -> None:
    with mx(server) as client:
        client.mail("a@example.org")
        client.rcpt(AN)
        code, _ = client.docmd("DATA")
        assert code == 354
        client.send(b"Subject: lf\nX-Line: 1\n\nbody line\nsecond\r\n.\r\n")
        code, _ = client.getreply()
        assert code == 250
    ((_, raw),) = mailbox_messages(server.data_dir, AN)
    assert raw.endswith(b"Subject: lf\r\nX-Line: 1\r\n\r\nbody line\r\nsecond\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"")


def test_recipient_over_quota_at_data_gets_a_bounce_not_silence(server: RunningServer) -> None:
    # ltbinh's mailbox is 1 KB short of its quota: RCPT cannot know the size; DATA can.
    set_used = (
        "update mailboxes set used_bytes = quota_bytes - 1024 where id ="
        " (select mailbox_id from addresses where local_part = 'ltbinh')"
    )
    db_execute(server.data_dir, set_used)
    big = b"From: nvan@khanhhoa.gov.vn\r\nSubject: Tai lieu\r\n\r\n"
    big += (b"y" * 998 + b"\r\n") * 12_000  # 12 MB: beyond the 10% grace of 100 MB
    with submission(server) as client:
        # No SIZE= in MAIL: RCPT cannot know the size (with SIZE it answers 452 4.2.2).
        assert client.mail(AN)[0] == 250
        assert client.rcpt(BINH)[0] == 250 and client.rcpt(TTR)[0] == 250
        assert client.data(big)[0] == 250
    assert mailbox_messages(server.data_dir, BINH) == []
    assert len(mailbox_messages(server.data_dir, TTR)) == 1
    ((_, raw),) = mailbox_messages(server.data_dir, AN)
    assert raw.startswith(b"Return-Path: <>\r\n")
    assert b"Content-Type: message/delivery-status" in raw
    assert b"Final-Recipient: rfc822; ltbinh@khanhhoa.gov.vn" in raw and b"Status: 5.2.2" in raw
    assert b"Subject: Tai lieu" in raw  # the original's headers come back, not its body
    assert raw.count(b"y" * 998) == 0


def test_postmaster_and_abuse_reach_the_configured_mailbox(province: Path) -> None:
    with (
        served(province) as server,
        mx(server) as client,
        pytest.raises(smtplib.SMTPRecipientsRefused),
    ):
        client.sendmail("a@example.org", [f"postmaster@{DOMAIN}"], b"Subject: x\r\n\r\nx\r\n")
    set_option(province, "postmaster", "ttr")
    with served(province) as server, mx(server) as client:
        # RFC 5321 §4.5.1: "postmaster" without a domain must be accepted too.
        for rcpt in ("Postmaster", f"postmaster@{DOMAIN}", f"abuse@{DOMAIN}"):
            assert client.sendmail("a@example.org", [rcpt], b"Subject: x\r\n\r\nx\r\n") == {}
    assert len(mailbox_messages(province, TTR)) == 3


def test_mail_accepts_the_auth_parameter_of_rfc_4954(server: RunningServer) -> None:
    with submission(server) as client:
        assert client.mail(AN, ["AUTH=<>", "SIZE=100"])[0] == 250
        assert client.rcpt(BINH)[0] == 250
        assert client.data(b"From: nvan@khanhhoa.gov.vn\r\nSubject: a\r\n\r\nx\r\n")[0] == 250


def test_mx_refuses_our_own_addresses_from_outside_unless_trusted(province: Path) -> None:
    message = b"From: nvan@khanhhoa.gov.vn\r\nSubject: Chu tich chi dao\r\n\r\nx\r\n"
    with served(province) as server, mx(server) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail(AN, [BINH], message)
        assert refused.value.smtp_code == 550 and b"5.7.1" in refused.value.smtp_error
        assert client.sendmail("", [BINH], b"Subject: bounce\r\n\r\nx\r\n") == {}  # null sender
    set_option(province, "trusted_relays", ["127.0.0.0/8"])
    with served(province) as server, mx(server) as client:
        assert client.sendmail(AN, [BINH], message) == {}
    assert len(mailbox_messages(province, BINH)) == 2
