"""What hostile or broken IMAP clients get: BAD not a crash, limits on connections,
literals, lines and idleness, throttled logins shared with SMTP, no STARTTLS injection."""

from __future__ import annotations

import smtplib
import socket
import time
from pathlib import Path

import pytest

from tests.integration.mailserver import (
    AN,
    PASSWORD,
    RunningServer,
    client_tls,
    imap,
    served,
    set_option,
)


def connect(server: RunningServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port("imap")), timeout=10)
    assert sock.recv(4096).startswith(b"* OK")
    return sock


def read_until(sock: socket.socket, marker: bytes, limit: float = 10.0) -> bytes:
    data = b""
    deadline = time.monotonic() + limit
    while marker not in data and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_garbage_gets_bad_and_the_server_lives_on(server: RunningServer) -> None:
    sock = connect(server)
    junk = [
        b"\x00\x01\x02\r\n",
        b"a1 FETCH\r\n",
        b"a2 LOGIN\r\n",
        b'a3 LOGIN "unterminated\r\n',
        b"a4 SELECT (((((\r\n",
        b"a5 UID FETCH 1:* (BODY[1.2.3.HEADER.FIELDS (\r\n",
        b"a6 SEARCH OR OR OR\r\n",
        'a7 LIST "" "Thư"\r\n'.encode(),
        b"a8 NOOP\r\n",
    ]
    sock.sendall(b"".join(junk))
    answers = read_until(sock, b"a8 OK")
    for tag in (b"a1", b"a2", b"a3", b"a4", b"a5", b"a6"):
        assert tag + b" BAD" in answers, answers
    assert b"a8 OK" in answers
    sock.close()
    client = imap(server)  # still serving
    assert client.noop()[0] == "OK"
    client.logout()


def test_too_many_bad_commands_disconnect(server: RunningServer) -> None:
    sock = connect(server)
    sock.sendall(b"".join(b"x%d BOGUS\r\n" % n for n in range(30)))
    answers = read_until(sock, b"* BYE")
    assert b"* BYE" in answers
    assert sock.recv(4096) == b""
    sock.close()


def test_overlong_line_and_literals(server: RunningServer) -> None:
    sock = connect(server)
    sock.sendall(b"a1 NOOP " + b"x" * 200_000 + b"\r\na2 NOOP\r\n")
    answers = read_until(sock, b"a2 OK")
    assert b"a1 BAD" in answers and b"a2 OK" in answers
    # Before login nobody may make the server hold a big literal.
    sock.sendall(b"a3 LOGIN {1000000}\r\n")
    assert b"a3 NO [TOOBIG]" in read_until(sock, b"a3 ")
    sock.sendall(f'a4 LOGIN "{AN}" "{PASSWORD}"\r\n'.encode())
    assert b"a4 OK" in read_until(sock, b"a4 ")
    # A message bigger than the limit is refused before it is sent...
    sock.sendall(b"a5 APPEND INBOX {999999999}\r\n")
    assert b"a5 NO [TOOBIG]" in read_until(sock, b"a5 ")
    # ...and a non-synchronising one cannot be skipped: the connection ends.
    sock.sendall(b"a6 APPEND INBOX {999999999+}\r\nxx")
    assert b"* BYE" in read_until(sock, b"* BYE")
    sock.close()


def test_starttls_drops_commands_sent_in_the_clear(server: RunningServer) -> None:
    sock = connect(server)
    sock.sendall(b"a1 STARTTLS\r\na2 CAPABILITY\r\n")
    assert read_until(sock, b"a1 OK").startswith(b"a1 OK")
    tls = client_tls().wrap_socket(sock, server_hostname="localhost")
    tls.sendall(b"a3 NOOP\r\n")
    answer = read_until(tls, b"a3 OK")  # type: ignore[arg-type]
    assert b"a2" not in answer and b"a3 OK" in answer
    tls.close()


def test_connection_limits_per_user_and_address(province: Path) -> None:
    set_option(province, "max_connections_per_user", 2)
    set_option(province, "max_connections_per_ip", 4, section="imap")
    with served(province) as server:
        first, second = imap(server), imap(server)
        sock = connect(server)
        sock.sendall(f'a1 LOGIN "{AN}" "{PASSWORD}"\r\n'.encode())
        assert b"* BYE" in read_until(sock, b"* BYE")
        sock.close()
        fourth = connect(server)
        time.sleep(0.2)  # the refused connection's slot is given back
        extra = [connect(server)]
        refused = socket.create_connection(("127.0.0.1", server.port("imap")), timeout=10)
        assert refused.recv(4096).startswith(b"* BYE")
        refused.close()
        for sock in (fourth, *extra):
            sock.close()
        first.logout()
        second.logout()


def test_idle_sessions_are_logged_out(province: Path) -> None:
    set_option(province, "idle_timeout_s", 1)
    with served(province) as server:
        sock = connect(server)
        started = time.monotonic()
        assert b"* BYE" in read_until(sock, b"* BYE", limit=10)
        assert time.monotonic() - started < 5
        sock.close()


def test_failed_imap_logins_throttle_smtp_too(province: Path) -> None:
    set_option(province, "max_failures_per_account", 3)
    set_option(province, "delay_base_s", 0.01)
    with served(province) as server:
        sock = connect(server)
        for n in range(3):
            sock.sendall(f'f{n} LOGIN "{AN}" "wrong"\r\n'.encode())
            assert b"NO [AUTHENTICATIONFAILED]" in read_until(sock, f"f{n} ".encode())
        sock.close()
        client = smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=30)
        client.starttls(context=client_tls())
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login(AN, PASSWORD)  # the right password, but the account is throttled
        client.close()


def test_pipelined_commands_are_all_answered_in_order(server: RunningServer) -> None:
    sock = connect(server)
    sock.sendall(f'a0 LOGIN "{AN}" "{PASSWORD}"\r\n'.encode())
    read_until(sock, b"a0 OK")
    sock.sendall(b"".join(b"p%d NOOP\r\n" % n for n in range(1000)))
    answers = read_until(sock, b"p999 OK", limit=30)
    tags = [line.split()[0] for line in answers.splitlines() if line.startswith(b"p")]
    assert tags == [b"p%d" % n for n in range(1000)]
    sock.close()


def test_no_big_literal_before_login_even_non_synchronising(server: RunningServer) -> None:
    sock = connect(server)
    sock.sendall(b"p1 APPEND INBOX {26000000+}\r\n" + b"x" * 100_000)
    answers = read_until(sock, b"* BYE")
    assert b"* BYE" in answers
    sock.close()
