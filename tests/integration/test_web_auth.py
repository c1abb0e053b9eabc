"""Webmail sign-in against a real ``govmail serve``: login and its throttling shared with
SMTP, the forced password change (R7), sessions and logout, CSRF, TOTP two-factor."""

from __future__ import annotations

import json
import smtplib
import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest

from tests.integration.browser import base_url, closing_clients, csrf_of, login, post, web
from tests.integration.clihelp import cli
from tests.integration.mailserver import (
    AN,
    BINH,
    PASSWORD,
    RunningServer,
    client_tls,
    db_execute,
    db_scalar,
    served,
    set_option,
)

__all__ = ["closing_clients"]  # the fixture, used by every test here
pytestmark = pytest.mark.usefixtures("closing_clients")


@pytest.fixture
def server(province: Path) -> Iterator[RunningServer]:
    """The province's server with quick failure delays and a low per-account limit."""
    set_option(province, "delay_base_s", 0.01, section="auth")
    set_option(province, "delay_max_s", 0.02, section="auth")
    set_option(province, "max_failures_per_account", 4, section="auth")
    with served(province) as running:
        yield running


def _smtp_login(server: RunningServer, password: str) -> tuple[int, str]:
    client = smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=30)
    try:
        client.starttls(context=client_tls())
        try:
            client.login(AN, password)
        except smtplib.SMTPAuthenticationError as exc:
            return exc.smtp_code, exc.smtp_error.decode()
        except smtplib.SMTPResponseException as exc:
            return exc.smtp_code, exc.smtp_error.decode()
        return 235, ""
    finally:
        client.quit()


def test_login_page_then_inbox_with_safe_cookie_and_headers(server: RunningServer) -> None:
    client = web(server)
    page = client.get("/")
    assert page.status_code == 200
    assert "Đăng nhập" in page.text and 'name="password"' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "same-origin"
    assert "<script>" not in page.text  # no inline script anywhere

    wrong = client.post("/login", data={"login": AN, "password": "sai-mat-khau"})
    assert wrong.status_code == 401
    assert "Sai địa chỉ thư hoặc mật khẩu" in wrong.text
    assert "govmail_session" not in wrong.headers.get("set-cookie", "")

    ok = client.post("/login", data={"login": "nvan", "password": PASSWORD})
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    # Plain HTTP from loopback is development: no Secure flag, or the cookie would be lost.
    assert "secure" not in cookie
    inbox = client.get("/")
    assert inbox.status_code == 200
    assert "Hộp thư đến" in inbox.text and AN in inbox.text
    assert '<input type="search" name="q"' in inbox.text
    # The session token is stored only as a hash.
    token = client.cookies["govmail_session"]
    assert (
        db_scalar(
            server.data_dir, f"select count(*) from web_sessions where token_hash = '{token}'"
        )
        == 0
    )
    assert db_scalar(server.data_dir, "select count(*) from web_sessions") == 1


def test_cookie_is_secure_behind_a_tls_proxy(server: RunningServer) -> None:
    client = web(server)
    reply = client.post(
        "/login",
        data={"login": AN, "password": PASSWORD},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert reply.status_code == 303
    assert "secure" in reply.headers["set-cookie"].lower()


def test_failed_web_logins_throttle_smtp_and_smtp_failures_throttle_the_web(
    server: RunningServer,
) -> None:
    client = web(server)
    for _ in range(4):
        assert client.post("/login", data={"login": AN, "password": "doan-mo"}).status_code == 401
    refused = client.post("/login", data={"login": AN, "password": PASSWORD})
    assert refused.status_code == 429
    assert "quá nhiều lần" in refused.text
    # The right password over SMTP is refused too: one count per account for every protocol.
    code, text = _smtp_login(server, PASSWORD)
    assert code == 454 and "Too many failed logins" in text

    # The other way round, for another account.
    for _ in range(4):
        client_smtp = smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=30)
        client_smtp.starttls(context=client_tls())
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client_smtp.login(BINH, "doan-mo")
        client_smtp.quit()
    throttled = web(server).post("/login", data={"login": BINH, "password": PASSWORD})
    assert throttled.status_code == 429


def test_forced_password_change_comes_before_anything_else(server: RunningServer) -> None:
    issued = cli(server.data_dir, "mailbox", "reset-password", AN, "--json")
    assert issued.exit_code == 0, issued.output
    initial = json.loads(issued.output)["initial_password"]
    client = web(server)
    reply = client.post("/login", data={"login": AN, "password": initial})
    assert reply.status_code == 303 and reply.headers["location"] == "/password"
    # Every mail page sends the user back to the change.
    for path in ("/", "/folder/1", "/search?q=x"):
        owed = client.get(path)
        assert owed.status_code == 303 and owed.headers["location"] == "/password", path
    form = client.get("/password")
    assert form.status_code == 200 and "Bạn cần đặt mật khẩu mới" in form.text
    token = csrf_of(client, "/password")

    def change(new: str, confirm: str | None = None) -> object:
        return client.post(
            "/password",
            data={"csrf": token, "new_password": new, "confirm": confirm or new},
        )

    short = change("ngan")
    assert short.status_code == 400 and "ít nhất 8 ký tự" in short.text
    same = change(initial)
    assert same.status_code == 400 and "khác mật khẩu cũ" in same.text
    differ = change("MatKhauMoi2026", "MatKhauKhac2026")
    assert differ.status_code == 400 and "không khớp" in differ.text
    done = change("MatKhauMoi2026")
    assert done.status_code == 303 and done.headers["location"] == "/?notice=password"
    inbox = client.get(done.headers["location"])
    assert inbox.status_code == 200 and "Đã đổi mật khẩu" in inbox.text
    flag = db_scalar(
        server.data_dir,
        "select must_change_password from mailboxes where id = (select mailbox_id from"
        " web_sessions limit 1)",
    )
    assert not flag
    # The old password no longer opens the mailbox; the new one does, over SMTP as well.
    assert web(server).post("/login", data={"login": AN, "password": initial}).status_code == 401
    assert _smtp_login(server, "MatKhauMoi2026")[0] == 235
    assert login(server, AN, "MatKhauMoi2026").get("/").status_code == 200


def test_voluntary_password_change_asks_for_the_current_one(server: RunningServer) -> None:
    client = login(server, AN)
    token = csrf_of(client, "/password")
    data = {"csrf": token, "new_password": "MatKhauMoi2026", "confirm": "MatKhauMoi2026"}
    wrong = client.post("/password", data={**data, "current": "khong-dung"})
    assert wrong.status_code == 400 and "Mật khẩu hiện tại không đúng" in wrong.text
    other = login(server, AN)
    assert client.post("/password", data={**data, "current": PASSWORD}).status_code == 303
    # Changing the password ends the other sessions (a thief's included), not this one.
    assert client.get("/").status_code == 200 and "Hộp thư đến" in client.get("/").text
    assert "Đăng nhập" in other.get("/").text


def test_logout_and_logout_everywhere(server: RunningServer) -> None:
    first, second, third = login(server, AN), login(server, AN), login(server, AN)
    stolen = first.cookies["govmail_session"]
    assert post(first, "/logout").status_code == 303
    assert "Đăng nhập" in first.get("/").text
    # The old cookie is dead on the server, not only deleted in the browser.
    replay = web(server)
    replay.cookies.set("govmail_session", stolen)
    assert 'name="password"' in replay.get("/").text
    assert "Hộp thư đến" in second.get("/").text
    assert post(second, "/logout-all").status_code == 303
    for client in (second, third):
        assert client.get("/folder/1").headers["location"] == "/login"
    assert db_scalar(server.data_dir, "select count(*) from web_sessions") == 0


def test_expired_and_disabled_sessions_stop_working(server: RunningServer) -> None:
    idle = login(server, AN)
    db_execute(server.data_dir, "update web_sessions set last_seen_at = '2000-01-01 00:00:00'")
    assert idle.get("/folder/1").headers["location"] == "/login"

    old = login(server, AN)
    db_execute(server.data_dir, "update web_sessions set expires_at = '2000-01-01 00:00:00'")
    assert old.get("/folder/1").headers["location"] == "/login"

    disabled = login(server, BINH)
    assert disabled.get("/").status_code == 200
    db_execute(
        server.data_dir,
        "update mailboxes set status = 'disabled' where id = (select mailbox_id from"
        " web_sessions limit 1)",
    )
    assert disabled.get("/").status_code == 200  # the login page again
    assert 'name="password"' in disabled.get("/").text


def test_csrf_token_and_origin_are_required(server: RunningServer) -> None:
    an = login(server, AN)
    binh = login(server, BINH)
    an_token = csrf_of(an)
    inbox = an.get("/").text
    folder = int(inbox.split('href="/folder/', 1)[1].split('"', 1)[0])
    target = f"/folder/{folder}/act"
    form = {"action": "seen", "uid": "1"}
    # No token.
    assert an.post(target, data=form).status_code == 403
    # Another session's token (another user's, and another session of the same user).
    assert an.post(target, data={**form, "csrf": csrf_of(binh)}).status_code == 403
    assert an.post(target, data={**form, "csrf": csrf_of(login(server, AN))}).status_code == 403
    # The right token from another site, or with no Origin/Referer at all.
    evil = an.post(
        target, data={**form, "csrf": an_token}, headers={"Origin": "https://evil.example"}
    )
    assert evil.status_code == 403 and "Yêu cầu bị từ chối" in evil.text
    bare = an.build_request("POST", target, data={**form, "csrf": an_token})
    del bare.headers["Origin"]
    assert an.send(bare).status_code == 403
    # A Referer from this site stands in for Origin; the header works like the field.
    referer = an.build_request(
        "POST",
        target,
        data=form,
        headers={"X-CSRF-Token": an_token, "Referer": base_url(server) + "/"},
    )
    del referer.headers["Origin"]
    assert an.send(referer).status_code == 303
    assert an.post(target, data={**form, "csrf": an_token}).status_code == 303
    # Logging out is a POST with a token too; a GET changes nothing.
    assert an.get("/logout").status_code == 405
    assert an.post("/logout-all").status_code == 403
    assert "Hộp thư đến" in an.get("/").text
    # A cross-site login form is refused.
    assert (
        web(server)
        .post(
            "/login",
            data={"login": AN, "password": PASSWORD},
            headers={"Origin": "https://evil.example"},
        )
        .status_code
        == 403
    )


def test_totp_two_factor(server: RunningServer) -> None:
    client = login(server, AN)
    begun = post(client, "/account/two-factor", {"step": "begin"})
    assert begun.status_code == 200
    secret = begun.text.split('<code class="secret">', 1)[1].split("<", 1)[0]
    totp = pyotp.TOTP(secret)
    wrong = post(client, "/account/two-factor", {"step": "confirm", "code": "000000"})
    assert wrong.status_code == 400 and "Mã xác thực không đúng" in wrong.text
    assert (
        post(client, "/account/two-factor", {"step": "confirm", "code": totp.now()}).status_code
        == 303
    )
    assert "Đang bật" in client.get("/account/two-factor").text

    second = web(server)
    reply = second.post("/login", data={"login": AN, "password": PASSWORD})
    assert reply.headers["location"] == "/login/totp"
    assert second.get("/").headers["location"] == "/login/totp"
    token = csrf_of(second, "/login/totp")
    assert second.post("/login/totp", data={"csrf": token, "code": "abcdef"}).status_code == 401
    # The code just used to enable is spent: a fresh step is needed, so use the next one.
    code = totp.at(int(time.time()) + 30)
    done = second.post("/login/totp", data={"csrf": token, "code": code})
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert "Hộp thư đến" in second.get("/").text
    # A code is good once.
    third = web(server)
    third.post("/login", data={"login": AN, "password": PASSWORD})
    again = third.post("/login/totp", data={"csrf": csrf_of(third, "/login/totp"), "code": code})
    assert again.status_code == 401
