"""Logging in with a mailbox address and password, shared by SMTP, IMAP and the web:
the argon2 check off the event loop, a cache of recent successes, and brute-force
throttling per client address and per account."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import ipaddress
import secrets
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from enum import Enum
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import Connection, Row, and_, bindparam, or_, select

from govmail.config import AuthLimits, Config
from govmail.directory.passwords import verify_password
from govmail.store.database import Database
from govmail.store.schema import addresses, delegations, domains, mailboxes


@dataclass(frozen=True)
class Account:
    """A logged-in mailbox and the sender addresses it may use (its own addresses and
    those of agency mailboxes delegated to its owner, R22), lower-case."""

    mailbox_id: int
    address: str
    kind: str
    person_id: int | None
    senders: frozenset[str]
    # mailbox id of each agency mailbox its owner is delegated on (R22).
    delegated: frozenset[int]


class AuthStatus(Enum):
    OK = "ok"
    INVALID = "invalid"  # wrong login or password
    THROTTLED = "throttled"  # too many failures: try later
    MUST_CHANGE = "must_change"  # R7: the password must be changed in the webmail first
    DISABLED = "disabled"


@dataclass(frozen=True)
class AuthResult:
    status: AuthStatus
    account: Account | None = None
    delay: float = 0.0  # how long the protocol should wait before answering a failure


class Authenticator:
    """Checks passwords for every protocol of one process.

    Argon2id costs ~140 ms of CPU, so checks run in threads, at most ``parallel`` at a
    time (a flood of logins cannot starve mail delivery), and a success is remembered
    for ``cache_ttl_s`` keyed by a keyed hash of the password, as Dovecot's auth cache
    does: a phone that logs in every minute pays the argon2 cost once. The cache is
    checked against the stored hash, so a password reset takes effect at once.

    Failures are counted per client IP and per login in a sliding window; past the
    limits further attempts are refused without checking anything (``THROTTLED``) and
    every failure asks the protocol to wait a little longer before answering.
    """

    def __init__(
        self, db: Database, cfg: Config, settings: AuthLimits | None = None, *, parallel: int = 2
    ) -> None:
        self.db = db
        self.cfg = cfg
        self.settings = settings or cfg.auth
        self._limit = asyncio.Semaphore(parallel)
        self._key = secrets.token_bytes(32)
        self._cache: dict[tuple[str, bytes], tuple[float, str]] = {}
        self._by_ip: defaultdict[str, deque[float]] = defaultdict(deque)
        self._by_login: defaultdict[str, deque[float]] = defaultdict(deque)
        # Wrong second-factor codes per account: kept apart from password failures,
        # which a right password clears (the code must be throttled after it).
        self._second: defaultdict[str, deque[float]] = defaultdict(deque)

    def second_factor_throttled(self, login: str, client_ip: str) -> bool:
        """Whether this account (or address) has failed its second factor too often."""
        s = self.settings
        return (
            self._recent(self._by_ip[client_key(client_ip)]) >= s.max_failures_per_ip
            or self._recent(self._second[self._canonical(login)]) >= s.max_failures_per_account
        )

    def second_factor_failed(self, login: str, client_ip: str) -> None:
        """Count a wrong second-factor code against the account and the address."""
        now = time.monotonic()
        if len(self._second) + len(self._by_ip) > _SWEEP_AT:
            self._sweep()
        self._by_ip[client_key(client_ip)].append(now)
        self._second[self._canonical(login)].append(now)

    def second_factor_passed(self, login: str) -> None:
        self._second.pop(self._canonical(login), None)

    async def login(self, login: str, password: str, client_ip: str) -> AuthResult:
        # One key per account however it is spelt (nvan, nvan@domain, nvan@alias), so
        # the per-account limit cannot be sidestepped by respelling the login.
        client_ip = client_key(client_ip)
        if len(login) > MAX_LOGIN:
            # No account has such a name; not worth a key in the per-login table.
            return AuthResult(AuthStatus.INVALID, delay=self._fail("", client_ip))
        login = self._canonical(login)
        if self._throttled(login, client_ip):
            return AuthResult(AuthStatus.THROTTLED)
        cfg = self.cfg
        row = await self.db.run(
            lambda conn: _mailbox_by_login(conn, cfg, login), write=False, brief=True
        )
        password_hash = row.password_hash if row is not None else None
        # An unknown login costs the same argon2 check as a known one: the answer's
        # timing does not tell which addresses exist.
        checked = password_hash or await asyncio.to_thread(_dummy_hash)
        ok = await self._verify(login, str(checked), password)
        if row is None or not password_hash or not ok:
            return AuthResult(AuthStatus.INVALID, delay=self._fail(login, client_ip))
        self._by_login.pop(login, None)
        if row.status != "active":
            return AuthResult(AuthStatus.DISABLED)
        box = row.id
        account = await self.db.run(
            lambda conn: load_account(conn, cfg, box), write=False, brief=True
        )
        if row.must_change_password:
            return AuthResult(AuthStatus.MUST_CHANGE, account)
        return AuthResult(AuthStatus.OK, account)

    async def _verify(self, login: str, password_hash: str, password: str) -> bool:
        digest = hmac.new(self._key, password.encode("utf-8", "surrogatepass"), hashlib.sha256)
        key = (login, digest.digest())
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic() and cached[1] == password_hash:
            return True
        async with self._limit:
            ok = await asyncio.to_thread(verify_password, password_hash, password)
        if ok:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[key] = (time.monotonic() + self.settings.cache_ttl_s, password_hash)
        return ok

    def _canonical(self, login: str) -> str:
        local, _, domain = login.strip().lower().partition("@")
        if not domain or domain in self.cfg.alias_domains:
            domain = self.cfg.domain
        return f"{local}@{domain}"

    def _recent(self, events: deque[float]) -> int:
        horizon = time.monotonic() - self.settings.window_s
        while events and events[0] < horizon:
            events.popleft()
        return len(events)

    def _throttled(self, login: str, client_ip: str) -> bool:
        s = self.settings
        return (
            self._recent(self._by_ip[client_ip]) >= s.max_failures_per_ip
            or self._recent(self._by_login[login]) >= s.max_failures_per_account
        )

    def _fail(self, login: str, client_ip: str) -> float:
        now = time.monotonic()
        if len(self._by_login) + len(self._by_ip) > _SWEEP_AT:
            self._sweep()
        self._by_ip[client_ip].append(now)
        self._by_login[login].append(now)
        failures = max(len(self._by_ip[client_ip]), len(self._by_login[login]))
        s = self.settings
        return float(min(s.delay_max_s, s.delay_base_s * 2 ** (failures - 1)))

    def _sweep(self) -> None:
        """Forget counters whose failures have all left the window (bounded memory when
        an attacker tries many logins or addresses)."""
        for table in (self._by_login, self._by_ip, self._second):
            for key in [k for k, events in table.items() if not self._recent(events)]:
                del table[key]


_SWEEP_AT = 50_000
MAX_LOGIN = 320  # longest address; a longer login is refused without a lookup


def client_key(ip: str) -> str:
    """Whom limits count against: the IPv4 address, or the IPv6 /64 (one customer's
    network: rotating addresses inside it must not reset the count)."""
    try:
        address = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return ip
    if address.version == 6 and address.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address.ipv4_mapped or address) if address.version == 6 else str(address)


@functools.cache
def _dummy_hash() -> str:
    """A valid argon2id hash of a random password, checked when the login is unknown."""
    return PasswordHasher().hash(secrets.token_urlsafe(16))


# Built once: a login runs these every time, and building a statement costs more than
# running it (SQLAlchemy reuses the compiled form of a statement it has seen).
_BY_LOGIN = (
    select(
        mailboxes.c.id,
        mailboxes.c.status,
        mailboxes.c.password_hash,
        mailboxes.c.must_change_password,
    )
    .select_from(addresses)
    .join(mailboxes, mailboxes.c.id == addresses.c.mailbox_id)
    .join(domains, domains.c.id == addresses.c.domain_id)
    .where(domains.c.name == bindparam("domain"), addresses.c.local_part == bindparam("local"))
)
_BOX = select(mailboxes.c.kind, mailboxes.c.person_id).where(mailboxes.c.id == bindparam("box"))
_SENDING_DELEGATIONS = (
    select(delegations.c.mailbox_id)
    .join(mailboxes, mailboxes.c.id == delegations.c.mailbox_id)
    .where(
        delegations.c.person_id == bindparam("person"),
        delegations.c.can_send.is_(True),
        delegations.c.revoked_at.is_(None),
        mailboxes.c.status == "active",
    )
)
_ADDRESSES = select(addresses.c.mailbox_id, addresses.c.local_part, addresses.c.kind).where(
    or_(
        addresses.c.mailbox_id == bindparam("box"),
        and_(
            addresses.c.mailbox_id.in_(bindparam("delegated", expanding=True)),
            addresses.c.kind != "reserved",
        ),
    )
)


def _mailbox_by_login(conn: Connection, cfg: Config, login: str) -> Row[Any] | None:
    local, _, domain = login.partition("@")
    if domain and domain != cfg.domain and domain not in cfg.alias_domains:
        return None
    return conn.execute(_BY_LOGIN, {"domain": cfg.domain, "local": local}).first()


def load_account(conn: Connection, cfg: Config, mailbox_id: int) -> Account:
    """The account of a mailbox with the sender addresses it may use."""
    box = conn.execute(_BOX, {"box": mailbox_id}).one()
    delegated: set[int] = set()
    if box.person_id is not None:
        delegated = {r[0] for r in conn.execute(_SENDING_DELEGATIONS, {"person": box.person_id})}
    rows = conn.execute(_ADDRESSES, {"box": mailbox_id, "delegated": sorted(delegated)})
    domains_ = (cfg.domain, *cfg.alias_domains)
    senders: set[str] = set()
    primary = ""
    for owner, local, kind in rows:
        senders.update(f"{local}@{d}" for d in domains_)
        if owner == mailbox_id and kind == "primary":
            primary = f"{local}@{cfg.domain}"
    return Account(
        mailbox_id=mailbox_id,
        address=primary,
        kind=box.kind,
        person_id=box.person_id,
        senders=frozenset(senders),
        delegated=frozenset(delegated),
    )
