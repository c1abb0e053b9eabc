"""The agency mailbox in the webmail (R22) against a real ``govmail serve``: a delegated
clerk switches to ttr@, reads what was sent there by SMTP, acknowledges receipt once;
an undelegated official gets nothing; a revoked delegation ends access at once."""

from __future__ import annotations

import re
import time
from email import message_from_bytes, policy
from email.message import EmailMessage

import httpx
import pytest

from tests.integration.browser import closing_clients, login, message_links, post
from tests.integration.clihelp import cli
from tests.integration.mailserver import (
    AN,
    BINH,
    TTR,
    RunningServer,
    db_scalar,
    mailbox_messages,
    submission,
)

__all__ = ["closing_clients"]  # the fixture, used by every test here
pytestmark = pytest.mark.usefixtures("closing_clients")

SUBJECT = "Đề nghị cung cấp hồ sơ thanh tra năm 2025"


def _mailbox_id(server: RunningServer, local: str) -> int:
    value = db_scalar(
        server.data_dir,
        f"select mailbox_id from addresses where local_part = '{local}' and kind = 'primary'",
    )
    assert isinstance(value, int)
    return value


def _send_to_agency(server: RunningServer) -> str:
    """ltbinh@ writes to ttr@ over SMTP submission; returns the Message-ID."""
    message = EmailMessage()
    message["From"] = f"Lê Thị Bình <{BINH}>"
    message["To"] = TTR
    message["Subject"] = SUBJECT
    message["Message-ID"] = "<de-nghi-123@khanhhoa.gov.vn>"
    message.set_content("Kính gửi Thanh tra tỉnh, đề nghị cung cấp hồ sơ.")
    with submission(server, BINH) as client:
        assert client.send_message(message) == {}
    return "<de-nghi-123@khanhhoa.gov.vn>"


def _switch(client: httpx.Client, mailbox_id: int) -> httpx.Response:
    return post(client, "/mailboxes/switch", {"mailbox": mailbox_id})


def _wait_for(check: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_clerk_acknowledges_receipt_from_the_agency_mailbox(server: RunningServer) -> None:
    assert cli(server.data_dir, "delegation", "grant", "ttr", AN).exit_code == 0
    message_id = _send_to_agency(server)
    ttr, an = _mailbox_id(server, "ttr"), _mailbox_id(server, "nvan")
    clerk = login(server, AN)

    # The switcher lists the own mailbox and the agency's; the own INBOX is empty.
    home = clerk.get("/").text
    assert 'href="/mailboxes"' in home and 'href="/directory"' in home
    assert message_links(home) == []
    chooser = clerk.get("/mailboxes").text
    assert "Thanh tra tỉnh" in chooser and TTR in chooser and AN in chooser
    assert _switch(clerk, ttr).status_code == 303

    inbox = clerk.get("/").text
    assert TTR in inbox and "Về hộp thư cá nhân" in inbox and SUBJECT in inbox
    links = message_links(inbox)
    assert len(links) == 1
    page = clerk.get(links[0]).text
    assert "Xác nhận đã tiếp nhận" in page and "Chuyển xử lý" in page
    state = clerk.get(links[0] + "/acknowledgement").text
    assert "Xác nhận đã tiếp nhận" in state and "Đã xác nhận" not in state

    # R19/R22: the agency INBOX view is recorded with the clerk as the actor.
    assert _wait_for(
        lambda: db_scalar(
            server.data_dir,
            "select count(*) from access_events where protocol = 'web' and folder = 'INBOX'"
            f" and mailbox_id = {ttr} and actor_mailbox_id = {an}",
        )
    )

    done = post(clerk, links[0] + "/acknowledge")
    assert done.status_code == 303, done.text
    assert "Đã xác nhận" in clerk.get(links[0] + "/acknowledgement").text

    # The sender's INBOX has the acknowledgement, from the agency address, in the thread.
    received = mailbox_messages(server.data_dir, BINH)
    assert len(received) == 1
    reply = message_from_bytes(received[0][1], policy=policy.default)
    assert reply["From"].addresses[0].addr_spec == TTR
    assert reply["From"].addresses[0].display_name == "Thanh tra tỉnh"
    assert str(reply["Subject"]) == f"Đã tiếp nhận: {SUBJECT}"
    assert reply["In-Reply-To"] == message_id and message_id in reply["References"]
    body = reply.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    day = time.strftime("%d/%m/%Y", time.gmtime(time.time() + 7 * 3600))
    assert f"Thanh tra tỉnh đã tiếp nhận văn bản/thư của quý cơ quan/ông/bà gửi ngày {day}" in text
    assert f"tiêu đề “{SUBJECT}”" in text and "Trân trọng." in text

    # The agency keeps what it sent (R22); the clerk's own Sent does not get it.
    sent = mailbox_messages(server.data_dir, TTR, "Sent")
    assert [m.subject for m, _ in sent] == [f"Đã tiếp nhận: {SUBJECT}"]
    assert mailbox_messages(server.data_dir, AN, "Sent") == []
    original = mailbox_messages(server.data_dir, TTR)[0][0]
    assert original.keywords is not None and "$Acknowledged" in original.keywords

    # A second click sends nothing more.
    assert post(clerk, links[0] + "/acknowledge").status_code == 303
    assert len(mailbox_messages(server.data_dir, BINH)) == 1
    assert len(mailbox_messages(server.data_dir, TTR, "Sent")) == 1

    # Back to the own mailbox: no acknowledgement from there.
    assert _switch(clerk, an).status_code == 303
    back = clerk.get("/").text
    assert SUBJECT not in back and "Về hộp thư cá nhân" not in back
    assert clerk.get(links[0] + "/acknowledgement").status_code == 404


def test_acknowledging_over_htmx_answers_with_the_new_state(server: RunningServer) -> None:
    assert cli(server.data_dir, "delegation", "grant", "ttr", AN).exit_code == 0
    _send_to_agency(server)
    clerk = login(server, AN)
    _switch(clerk, _mailbox_id(server, "ttr"))
    link = message_links(clerk.get("/").text)[0]
    csrf = re.search(r'name="csrf" value="([^"]+)"', clerk.get(link).text)
    assert csrf is not None
    fragment = clerk.post(
        link + "/acknowledge", headers={"HX-Request": "true", "X-CSRF-Token": csrf.group(1)}
    )
    assert fragment.status_code == 200
    assert 'id="acknowledgement"' in fragment.text and "Đã xác nhận" in fragment.text


def test_an_undelegated_official_cannot_switch_or_read(server: RunningServer) -> None:
    assert cli(server.data_dir, "delegation", "grant", "ttr", AN).exit_code == 0
    _send_to_agency(server)
    ttr = _mailbox_id(server, "ttr")
    clerk = login(server, AN)
    _switch(clerk, ttr)
    link = message_links(clerk.get("/").text)[0]

    outsider = login(server, BINH)
    assert 'href="/mailboxes"' not in outsider.get("/").text
    assert TTR not in outsider.get("/mailboxes").text
    refused = _switch(outsider, ttr)
    assert refused.status_code == 404 and SUBJECT not in refused.text
    home = outsider.get("/").text
    assert TTR not in home and SUBJECT not in home
    for path in (link, link + "/body", link + "/acknowledgement"):
        answer = outsider.get(path)
        assert answer.status_code == 404 and SUBJECT not in answer.text, path
    assert post(outsider, link + "/acknowledge").status_code == 404
    # Nothing went out in the agency's name.
    assert mailbox_messages(server.data_dir, TTR, "Sent") == []


def test_a_revoked_delegation_ends_access_on_the_next_request(server: RunningServer) -> None:
    assert cli(server.data_dir, "delegation", "grant", "ttr", AN).exit_code == 0
    _send_to_agency(server)
    clerk = login(server, AN)
    _switch(clerk, _mailbox_id(server, "ttr"))
    link = message_links(clerk.get("/").text)[0]
    assert clerk.get(link).status_code == 200

    assert cli(server.data_dir, "delegation", "revoke", "ttr", AN).exit_code == 0
    home = clerk.get("/").text
    assert SUBJECT not in home and "Về hộp thư cá nhân" not in home
    assert 'href="/mailboxes"' not in home
    assert clerk.get(link).status_code == 404
    assert post(clerk, link + "/acknowledge").status_code == 404
    assert _switch(clerk, _mailbox_id(server, "ttr")).status_code == 404
    assert mailbox_messages(server.data_dir, BINH) == []
