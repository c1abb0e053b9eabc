"""The webmail's settings page against a real ``govmail serve``: the signature prefilled in
Compose, and the vacation auto-reply answering mail from the MX and from submission once
per sender, never automatic or bulk mail, only between its dates, and never at the cost
of the delivery it answers."""

from __future__ import annotations

import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import httpx
import pytest

from govmail.config import load_config
from govmail.store.blobs import FileBlobStore
from tests.integration.browser import closing_clients, csrf_of, deliver, login, simple_message
from tests.integration.mailserver import (
    AN,
    BINH,
    RunningServer,
    db_execute,
    db_scalar,
    mailbox_messages,
    submission,
)

__all__ = ["closing_clients"]  # the fixture, used by every test here
pytestmark = pytest.mark.usefixtures("closing_clients")

AWAY = "Tôi nghỉ phép đến hết ngày 5/12. Việc gấp xin liên hệ chị Bình."


def save_settings(client: httpx.Client, **fields: str) -> httpx.Response:
    data = {"csrf": csrf_of(client, "/settings"), "language": "vi", **fields}
    return client.post("/settings", data=data)


def vacation_on(client: httpx.Client, **fields: str) -> None:
    reply = save_settings(client, vacation_enabled="1", vacation_text=AWAY, **fields)
    assert reply.status_code == 303, reply.text


def queued_to(data_dir: Path, recipient: str) -> list[EmailMessage]:
    """Auto-replies (null sender) waiting in the outbound queue for ``recipient``."""
    count = db_scalar(
        data_dir,
        f"SELECT count(*) FROM outbound_queue WHERE recipient = '{recipient}' AND sender = ''",
    )
    if not count:
        return []
    blob = db_scalar(
        data_dir,
        "SELECT m.blob FROM outbound_queue q JOIN messages m ON m.id = q.message_id"
        f" WHERE q.recipient = '{recipient}' AND q.sender = ''",
    )
    raw = FileBlobStore(load_config(data_dir).blob_dir).get(str(blob))
    return [parsed(raw)] * int(str(count))


def parsed(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def auto_replies_in(data_dir: Path, address: str) -> list[EmailMessage]:
    found = [parsed(raw) for _, raw in mailbox_messages(data_dir, address)]
    return [m for m in found if m["Auto-Submitted"] == "auto-replied"]


def eventually(check: object, timeout: float = 15.0) -> None:
    """Wait for ``check()`` to hold: the responder answers after the delivery's 250."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "no auto-reply in time"
        time.sleep(0.1)


def send_outside(server: RunningServer, subject: str, sender: str, **headers: str) -> None:
    """A message from ``sender`` (envelope and From) to An through the MX."""
    message = simple_message(subject, sender=sender)
    message["Message-ID"] = make_msgid(domain="example.org")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    deliver(server, message, AN, sender=sender)


def test_signature_is_prefilled_in_compose(server: RunningServer) -> None:
    client = login(server, AN)
    page = client.get("/settings")
    assert page.status_code == 200 and "Chữ ký" in page.text
    assert 'href="/settings"' in client.get("/").text  # the link beside Danh bạ
    assert 'href="/password"' in page.text and 'href="/account/two-factor"' in page.text
    signature = "Nguyễn Văn An\nThanh tra tỉnh Khánh Hòa"
    assert save_settings(client, signature=signature).status_code == 303
    assert "Nguyễn Văn An\nThanh tra tỉnh Khánh Hòa</textarea>" in client.get("/settings").text
    compose = client.get("/compose").text
    assert "-- \nNguyễn Văn An\nThanh tra tỉnh Khánh Hòa" in compose
    # Without the CSRF field nothing is saved.
    refused = client.post("/settings", data={"signature": "kẻ gian"})
    assert refused.status_code == 403
    assert "kẻ gian" not in client.get("/compose").text
    # Too long: a Vietnamese message, the form kept, nothing saved.
    long = save_settings(client, signature="x" * 2001)
    assert long.status_code == 400 and "Chữ ký dài quá" in long.text
    assert "x" * 2001 not in client.get("/compose").text


def test_vacation_answers_each_sender_once(server: RunningServer, province: Path) -> None:
    client = login(server, AN)
    vacation_on(client)
    # Automatic and bulk mail first: it must get nothing.
    send_outside(server, "Bản tin", "robot@example.net", Auto_Submitted="auto-generated")
    send_outside(server, "Quảng cáo", "bulk@example.net", Precedence="bulk")
    # An outside official through the MX, twice.
    for n in (1, 2):
        send_outside(server, f"Hỏi việc {n}", "ngoai@example.org")
    # A colleague through submission, twice.
    for n in (1, 2):
        message = EmailMessage()
        message["From"] = BINH
        message["To"] = AN
        message["Subject"] = f"Họp giao ban {n}"
        message.set_content("Anh An ơi.")
        with submission(server, BINH) as smtp:
            smtp.send_message(message)

    eventually(lambda: queued_to(province, "ngoai@example.org"))
    eventually(lambda: auto_replies_in(province, BINH))
    time.sleep(1.0)  # a late second reply would show by now
    [remote] = queued_to(province, "ngoai@example.org")
    assert remote["From"] == AN and remote["To"] == "ngoai@example.org"
    assert remote["Subject"] == "Trả lời tự động: Hỏi việc 1"
    assert remote["Auto-Submitted"] == "auto-replied"
    assert remote["In-Reply-To"] and remote["In-Reply-To"] in remote["References"]
    assert AWAY in remote.get_content()
    [local] = auto_replies_in(province, BINH)
    assert local["From"] == AN and local["Subject"] == "Trả lời tự động: Họp giao ban 1"
    assert local["In-Reply-To"]
    assert queued_to(province, "robot@example.net") == []
    assert queued_to(province, "bulk@example.net") == []
    # Every message was delivered, answered or not.
    assert len(mailbox_messages(province, AN)) == 6


def test_no_reply_outside_the_dates(server: RunningServer, province: Path) -> None:
    client = login(server, AN)
    vacation_on(client, vacation_start="2099-01-01", vacation_end="2099-01-31")
    assert 'value="2099-01-01"' in client.get("/settings").text
    send_outside(server, "Trước kỳ nghỉ", "som@example.org")
    vacation_on(client, vacation_start="2020-01-01")  # open-ended, started long ago
    send_outside(server, "Trong kỳ nghỉ", "dung@example.org")
    eventually(lambda: queued_to(province, "dung@example.org"))
    assert queued_to(province, "som@example.org") == []


def test_a_responder_error_does_not_fail_delivery(server: RunningServer, province: Path) -> None:
    client = login(server, AN)
    vacation_on(client)
    db_execute(province, "DROP TABLE vacation_replies")  # the responder's writes now fail
    send_outside(server, "Vẫn phải nhận được", "ngoai@example.org")
    [(_, raw)] = mailbox_messages(province, AN)
    assert "Vẫn phải nhận được" in parsed(raw)["Subject"]
    time.sleep(0.5)
    assert queued_to(province, "ngoai@example.org") == []


def test_english_leads_when_chosen(server: RunningServer) -> None:
    def body_tag(client: httpx.Client) -> str:
        return client.get("/").text.split("<body", 1)[1].split(">", 1)[0]

    client = login(server, AN)
    assert "lang-en" not in body_tag(client)
    assert save_settings(client, language="en").status_code == 303
    assert "lang-en" in body_tag(client)
    assert save_settings(client, language="vi").status_code == 303
    assert "lang-en" not in body_tag(client)
