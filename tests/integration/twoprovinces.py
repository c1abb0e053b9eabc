"""Two provinces that mail each other over real SMTP on loopback: the province under test
(khanhhoa.gov.vn, on the backend under test) and a second govmail instance (tinh-b.test,
on its own SQLite), both found through the loopback DNS server with MX, A, SPF, DKIM and
DMARC records as on the Internet.

    with two_provinces(province) as two:      # province: the ``province`` fixture's dir
        two.start_receiver(); two.start_sender()
        ... submission(two.sender) to two.remote_address ...
        two.receiver_inbox()                  # what tinh-b's official got, via its IMAP

Each side's ``[delivery] port`` is the other's SMTP port (fixed before either starts), so
either can send to the other; timers are changed with ``two.set_sender(key, value)``.
"""

from __future__ import annotations

import asyncio
import imaplib
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.clihelp import cli
from tests.integration.dnsserver import Zone, dns_server
from tests.integration.mailserver import PASSWORD, RunningServer, set_option, start_server

SENDER_DOMAIN = "khanhhoa.gov.vn"
RECEIVER_DOMAIN = "tinh-b.test"
# The officials of tinh-b.test the tests write to (of its Văn phòng).
REMOTE = f"ttcuc@{RECEIVER_DOMAIN}"  # Trần Thị Cúc
REMOTE2 = f"pvdung@{RECEIVER_DOMAIN}"  # Phạm Văn Dũng


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def own_database() -> Iterator[None]:
    """Without GOVMAIL_DATABASE_URL (the backend fixture's): tinh-b uses its own SQLite."""
    saved = os.environ.pop("GOVMAIL_DATABASE_URL", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["GOVMAIL_DATABASE_URL"] = saved


@dataclass
class TwoProvinces:
    zone: Zone
    nameserver: str
    sender_dir: Path
    receiver_dir: Path
    sender_smtp: int
    receiver_smtp: int
    remote_address: str = REMOTE
    sender: RunningServer | None = None
    receiver: RunningServer | None = None
    _started: list[RunningServer] = field(default_factory=list)

    def start_sender(self) -> RunningServer:
        self.sender = start_server(self.sender_dir, smtp_port=self.sender_smtp)
        self._started.append(self.sender)
        return self.sender

    def start_receiver(self) -> RunningServer:
        with own_database():
            env = os.environ.copy()
        self.receiver = start_server(self.receiver_dir, smtp_port=self.receiver_smtp, env=env)
        self._started.append(self.receiver)
        return self.receiver

    def set_sender(self, key: str, value: object, section: str = "delivery") -> None:
        """Change the sender's configuration (takes effect at its next start)."""
        set_option(self.sender_dir, key, value, section)

    def set_receiver(self, key: str, value: object, section: str = "delivery") -> None:
        set_option(self.receiver_dir, key, value, section)

    def receiver_inbox(self, address: str = REMOTE) -> list[bytes]:
        """Every message in INBOX of ``address`` at tinh-b, read over its IMAP."""
        if self.receiver is None:
            raise RuntimeError("the receiver is not running")
        client = imaplib.IMAP4("127.0.0.1", self.receiver.port("imap"), timeout=30)
        try:
            client.login(address, PASSWORD)
            client.select("INBOX", readonly=True)
            _, found = client.uid("SEARCH", "ALL")
            found_uids = found[0].split() if found and found[0] else []
            messages: list[bytes] = []
            for uid in found_uids:
                _, data = client.uid("FETCH", uid, "(BODY.PEEK[])")
                item = data[0]
                if isinstance(item, tuple):
                    messages.append(item[1])
            return messages
        finally:
            client.logout()

    def stop(self) -> None:
        for server in self._started:
            server.stop()
        self._started.clear()


def _dkim_records(data_dir: Path) -> list[tuple[str, str]]:
    """The DKIM key records ``govmail dns records --json`` prints for an installation."""
    result = cli(data_dir, "dns", "records", "--json")
    assert result.exit_code == 0, result.output
    return [
        (r["name"], r["value"])
        for r in json.loads(result.output)
        if r["type"] == "TXT" and "._domainkey." in r["name"]
    ]


@contextmanager
def two_provinces(sender_dir: Path, tmp_path: Path) -> Iterator[TwoProvinces]:
    """The DNS server with both domains' records, the receiver's data directory (tinh-b,
    with the officials ttcuc@ and pvdung@), and both configurations pointing at each other. Nothing
    is started: call ``start_receiver`` / ``start_sender`` (any order)."""
    receiver_dir = tmp_path / "tinh-b"
    from govmail.ops.setup import init_data_dir

    with own_database():
        asyncio.run(init_data_dir(receiver_dir, domain=RECEIVER_DOMAIN, demo=False))
        assert (
            cli(receiver_dir, "agency", "add", "--name", "Văn phòng", "--abbr", "vp").exit_code == 0
        )
        for name, address in (("Trần Thị Cúc", REMOTE), ("Phạm Văn Dũng", REMOTE2)):
            added = cli(
                receiver_dir, "person", "add", "--agency", "vp", "--name", name,
                "--password", PASSWORD,
            )  # fmt: skip
            assert added.exit_code == 0 and address in added.output, added.output
        receiver_dkim = _dkim_records(receiver_dir)
    sender_dkim = _dkim_records(sender_dir)
    with dns_server() as (zone, nameserver):
        for domain, records in ((SENDER_DOMAIN, sender_dkim), (RECEIVER_DOMAIN, receiver_dkim)):
            mx_host = f"mx.{domain}"
            zone.add(domain, "MX", (10, mx_host))
            zone.add(mx_host, "A", "127.0.0.1")
            zone.add(domain, "TXT", "v=spf1 ip4:127.0.0.1 -all")
            zone.add(f"_dmarc.{domain}", "TXT", "v=DMARC1; p=reject")
            for name, value in records:
                zone.add(name, "TXT", value)
        two = TwoProvinces(zone, nameserver, sender_dir, receiver_dir, free_port(), free_port())
        for data_dir, peer_port in (
            (sender_dir, two.receiver_smtp),
            (receiver_dir, two.sender_smtp),
        ):
            set_option(data_dir, "nameservers", [nameserver], "dns")
            set_option(data_dir, "timeout_s", 2, "dns")
            set_option(data_dir, "port", peer_port, "delivery")
            set_option(data_dir, "connect_timeout_s", 5, "delivery")
            set_option(data_dir, "timeout_s", 30, "delivery")
        try:
            yield two
        finally:
            two.stop()
