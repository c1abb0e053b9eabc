"""Debian's Postfix as a real peer of govmail in tests and benchmarks: a private Postfix
instance (its own configuration, queue and Maildirs under a temporary directory, one
SMTP listener on loopback) and Postfix's ``smtp-sink`` with a message counter.

The machine's own Postfix (/etc/postfix) is never touched: the private instance is
started with ``postfix -c DIR start``, which root may do for any directory (others need
it listed in the default main.cf's ``alternate_config_directories``). Tests run as root
in CI; elsewhere they skip.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

POSTFIX = "/usr/sbin/postfix"
SMTP_SINK = "/usr/sbin/smtp-sink"
DOMAIN = "postfix.test"
IN_CI = os.environ.get("CI", "").lower() == "true"

# Every service runs outside a chroot: the instance lives in a temporary directory.
MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN_CF = """\
compatibility_level = 3.7
queue_directory = {base}/queue
data_directory = {base}/data
syslog_name = postfix-test
maillog_file = {base}/postfix.log
maillog_file_prefixes = {base}
myhostname = mta.{domain}
mydomain = {domain}
myorigin = $myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps =
alias_database =
local_recipient_maps =
biff = no
relayhost = {relayhost}
# No DNS: the tests' peers are named by IP address ([127.0.0.1]:port).
smtp_dns_support_level = disabled
smtp_tls_security_level = may
smtpd_tls_security_level = none
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {base}/mail
virtual_mailbox_maps = texthash:{base}/conf/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
"""


def postfix_missing() -> str | None:
    """Why a private Postfix cannot run here, or None."""
    for tool in (POSTFIX, SMTP_SINK):
        if not os.access(tool, os.X_OK):
            return f"{tool} is not installed (apt-get install postfix)"
    if os.geteuid() != 0:
        return "a private Postfix instance must be started as root"
    return None


def require_postfix() -> None:
    """Skip (locally) or fail (CI=true) when Postfix cannot be used."""
    reason = postfix_missing()
    if reason:
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: the Postfix tests must run)")
        pytest.skip(reason)


def free_port() -> int:
    """A port nothing listens on now (the kernel's choice) on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@dataclass
class PrivatePostfix:
    """A running private Postfix: SMTP on 127.0.0.1:``port``, mail for ``domain`` in
    Maildirs under ``base``/mail/``domain``/<local part>/."""

    base: Path
    port: int
    domain: str

    @property
    def config_dir(self) -> Path:
        return self.base / "conf"

    def command(self, tool: str, *args: str) -> str:
        """Run one of Postfix's commands (postfix, postconf, postqueue, postsuper) on
        this instance; its output."""
        done = subprocess.run(
            [f"/usr/sbin/{tool}", "-c", str(self.config_dir), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)}: {done.stderr or done.stdout}")
        return done.stdout

    def maildir(self, local_part: str) -> Path:
        return self.base / "mail" / self.domain / local_part

    def delivered(self, local_part: str) -> list[bytes]:
        """The messages in the Maildir of ``local_part``@domain (new and cur)."""
        found = []
        for sub in ("new", "cur"):
            folder = self.maildir(local_part) / sub
            if folder.is_dir():
                found += [p.read_bytes() for p in sorted(folder.iterdir())]
        return found

    def wait_delivered(self, local_part: str, count: int, timeout: float = 30.0) -> list[bytes]:
        """Wait until ``count`` messages are in the Maildir of ``local_part``; them."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.delivered(local_part)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def queue_ids(self) -> list[str]:
        """The ids of the messages still in the queue (postqueue -j)."""
        return re.findall(r'"queue_id": "([0-9A-Za-z]+)"', self.command("postqueue", "-j"))

    def log(self) -> str:
        path = self.base / "postfix.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def private_postfix(
    *,
    relayhost: str = "",
    domain: str = DOMAIN,
    users: Sequence[str] = ("bob", "carol"),
    settings: Mapping[str, str] | None = None,
) -> Iterator[PrivatePostfix]:
    """Run a private Postfix instance until the block ends, then stop it and remove it.

    It accepts mail from loopback and delivers mail to ``users``@``domain`` to their
    Maildirs (virtual(8), as the unprivileged user ``nobody``; other addresses at
    ``domain`` are refused at RCPT, 550 5.1.1); mail to other domains goes to
    ``relayhost`` (e.g. "[127.0.0.1]:2525") when set. ``settings`` are more main.cf
    lines (e.g. ``{"smtp_destination_concurrency_limit": "50"}``).
    """
    require_postfix()
    nobody = pwd.getpwnam("nobody")
    # Not under pytest's tmp_path: Postfix's unprivileged daemons must reach the
    # queue, and pytest's directories are private to root.
    base = Path(tempfile.mkdtemp(prefix="govmail-postfix-"))
    base.chmod(0o755)
    port = free_port()
    conf = base / "conf"
    for sub in ("conf", "queue", "data", "mail"):
        (base / sub).mkdir()
    os.chown(base / "mail", nobody.pw_uid, nobody.pw_gid)
    postfix = pwd.getpwnam("postfix")
    os.chown(base / "data", postfix.pw_uid, postfix.pw_gid)  # master.lock, TLS caches
    main = MAIN_CF.format(
        base=base, domain=domain, relayhost=relayhost, uid=nobody.pw_uid, gid=nobody.pw_gid
    )
    main += "".join(f"{key} = {value}\n" for key, value in (settings or {}).items())
    (conf / "main.cf").write_text(main)
    (conf / "master.cf").write_text(MASTER_CF.format(port=port))
    (conf / "vmailbox").write_text("".join(f"{u}@{domain} {domain}/{u}/\n" for u in users))
    instance = PrivatePostfix(base, port, domain)
    try:
        instance.command("postfix", "start")
        wait_port(port)
        yield instance
    finally:
        try:
            instance.command("postfix", "stop")
            _wait_stopped(base / "queue" / "pid" / "master.pid")
        finally:
            shutil.rmtree(base, ignore_errors=True)


def _wait_stopped(pid_file: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while pid_file.exists() and time.monotonic() < deadline:
        try:
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError, FileNotFoundError):
            return
        time.sleep(0.1)


class SmtpSink:
    """Postfix's ``smtp-sink`` on 127.0.0.1:``port``, throwing messages away and
    counting them (its ``-c`` counters, read from its output as they change)."""

    def __init__(self, port: int, *options: str, backlog: int = 1024) -> None:
        self.port = port
        self._received = 0
        self._changed = threading.Condition()
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.proc = subprocess.Popen(
            [SMTP_SINK, "-c", *user, *options, f"127.0.0.1:{port}", str(backlog)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def received(self) -> int:
        """Messages received so far (each "." of a transaction)."""
        with self._changed:
            return self._received

    def wait_for(self, count: int, timeout: float) -> int:
        """Wait until ``count`` messages arrived or ``timeout`` passed; how many did."""
        with self._changed:
            self._changed.wait_for(lambda: self._received >= count, timeout)
            return self._received

    def _read(self) -> None:
        assert self.proc.stdout is not None
        pending = b""
        while chunk := self.proc.stdout.read1(65536):
            pending += chunk
            *lines, pending = re.split(rb"[\r\n]", pending)
            counts = [int(m.group(1)) for line in lines if (m := re.search(rb"mesg=(\d+)", line))]
            if counts:
                with self._changed:
                    self._received = counts[-1]
                    self._changed.notify_all()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@contextmanager
def smtp_sink(*options: str, port: int | None = None) -> Iterator[SmtpSink]:
    """An ``smtp-sink`` on a free loopback port (or ``port``) until the block ends;
    ``options`` go to smtp-sink (e.g. "-r", "RCPT" for 4xx replies to RCPT)."""
    require_postfix()
    sink = SmtpSink(port or free_port(), *options)
    try:
        wait_port(sink.port)
        yield sink
    finally:
        sink.stop()
