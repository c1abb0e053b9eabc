"""R23: an account past its sending limits gets 451 4.7.1 and the postmaster is alerted,
on a real ``govmail serve`` driven by smtplib over submission (587) and submissions (465)."""

from __future__ import annotations

import smtplib
import time
from email import message_from_bytes, policy
from pathlib import Path

from tests.integration.mailserver import (
    AN,
    BINH,
    PASSWORD,
    TTR,
    RunningServer,
    client_tls,
    mailbox_messages,
    served,
    set_option,
    submission,
)

MESSAGE = b"Subject: Giay moi hop\r\n\r\nKinh gui cac dong chi.\r\n"
ALERT = "reached its sending limit"


def limits(
    data_dir: Path, *, total: int, external: int, window_s: float, postmaster: str = "ttr"
) -> None:
    set_option(data_dir, "max_recipients", total, section="rate")
    set_option(data_dir, "max_external_recipients", external, section="rate")
    set_option(data_dir, "window_s", window_s, section="rate")
    set_option(data_dir, "postmaster", postmaster, section="mail")
    # Mail queued for other domains must not leave this machine: no DNS answers.
    set_option(data_dir, "nameservers", ["127.0.0.1:9"], section="dns")


def alerts(server: RunningServer) -> list[bytes]:
    """The rate-limit alerts in the postmaster's (ttr@) INBOX."""
    found = mailbox_messages(server.data_dir, TTR)
    return [
        raw
        for _, raw in found
        if ALERT in str(message_from_bytes(raw, policy=policy.default)["Subject"])
    ]


def rcpt(client: smtplib.SMTP, address: str) -> tuple[int, str]:
    code, text = client.rcpt(address)
    return code, text.decode()


def test_fourth_recipient_deferred_and_postmaster_alerted_once(province: Path) -> None:
    limits(province, total=3, external=100, window_s=3600)
    with served(province) as server:
        with submission(server) as client:
            # Three recipients over two messages reach the limit of 3...
            client.sendmail(AN, [BINH, TTR], MESSAGE)
            client.mail(AN)
            assert rcpt(client, BINH)[0] == 250
            # ... the fourth is refused for now, the accepted one still gets the message.
            code, text = rcpt(client, TTR)
            assert code == 451
            assert text.startswith("4.7.1")
            assert "3" in text and "1 hour" in text and "try again in" in text
            assert "thu lai sau" in text  # Vietnamese first (without diacritics: no SMTPUTF8)
            assert client.data(MESSAGE)[0] == 250
            # Again in a new transaction: still refused, and no second alert.
            client.mail(AN)
            assert rcpt(client, BINH)[0] == 451
            client.rset()
        # The other port of submission counts for the same account.
        with smtplib.SMTP_SSL(
            "127.0.0.1", server.port("submissions"), context=client_tls(), timeout=30
        ) as implicit:
            implicit.login(AN, PASSWORD)
            implicit.mail(AN)
            assert rcpt(implicit, BINH)[0] == 451
            implicit.rset()
        # Another official is not limited by nvan's sending.
        with submission(server, BINH) as other:
            assert other.sendmail(BINH, [AN, TTR, AN], MESSAGE) == {}

        found = alerts(server)
        assert len(found) == 1
        assert AN.encode() in found[0]
        assert len(mailbox_messages(server.data_dir, BINH)) == 2


def test_alert_names_account_count_ip_and_what_to_do(province: Path) -> None:
    limits(province, total=1, external=100, window_s=3600)
    with served(province) as server:
        with submission(server) as client:
            client.sendmail(AN, [BINH], MESSAGE)
            client.mail(AN)
            assert rcpt(client, TTR)[0] == 451
            client.rset()
        (alert,) = alerts(server)
    message = message_from_bytes(alert, policy=policy.default)
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert f"Tài khoản {AN} đã gửi thư tới 1 người nhận" in text
    assert "giới hạn 1" in text and "limit of 1" in text
    assert "127.0.0.1" in text
    assert f"govmail mailbox reset-password {AN}" in text
    assert "vượt giới hạn" in str(message["Subject"])
    assert message["Auto-Submitted"] == "auto-generated"


def test_window_passing_lets_the_account_send_again(province: Path) -> None:
    limits(province, total=2, external=100, window_s=3)
    with served(province) as server:
        with submission(server) as client:
            client.sendmail(AN, [BINH, TTR], MESSAGE)
            client.mail(AN)
            code, text = rcpt(client, BINH)
            assert code == 451 and "3 seconds" in text
            client.rset()
            time.sleep(3.2)
            # A new window: the account sends again; its next overrun is a new alert.
            assert client.sendmail(AN, [BINH, TTR], MESSAGE) == {}
            client.mail(AN)
            assert rcpt(client, BINH)[0] == 451
            client.rset()
        assert len(alerts(server)) == 2
        assert len(mailbox_messages(server.data_dir, BINH)) == 2


def test_external_limit_counts_only_recipients_outside_the_province(province: Path) -> None:
    # No postmaster configured: the alert goes to the log instead.
    limits(province, total=10, external=2, window_s=3600, postmaster="")
    with served(province) as server:
        with submission(server) as client:
            client.mail(AN)
            assert rcpt(client, "dan1@other.test")[0] == 250
            assert rcpt(client, "dan2@other.test")[0] == 250
            code, text = rcpt(client, "dan3@other.test")
            assert code == 451 and text.startswith("4.7.1")
            assert "2 external recipients" in text
            # Recipients in the province are still within the overall limit.
            assert rcpt(client, BINH)[0] == 250
            assert client.data(MESSAGE)[0] == 250
            client.mail(AN)
            assert rcpt(client, "dan4@other.test")[0] == 451
            assert rcpt(client, TTR)[0] == 250
            client.rset()
        assert "rate limit alert for nvan@khanhhoa.gov.vn not delivered" in server.log()
        assert len(mailbox_messages(server.data_dir, BINH)) == 1


def test_overall_limit_counts_local_and_external_together(province: Path) -> None:
    limits(province, total=3, external=3, window_s=3600)
    with served(province) as server:
        with submission(server) as client:
            client.mail(AN)
            assert rcpt(client, BINH)[0] == 250
            assert rcpt(client, TTR)[0] == 250
            assert rcpt(client, "dan1@other.test")[0] == 250
            code, text = rcpt(client, "dan2@other.test")
            assert code == 451 and "3 recipients per 1 hour" in text
            assert rcpt(client, BINH)[0] == 451
            client.rset()
        assert len(alerts(server)) == 1
