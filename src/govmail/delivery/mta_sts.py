"""MTA-STS (RFC 8461): a receiving domain's published demand that mail to it go over
verified TLS to the MX hosts it names; fetched over HTTPS, cached by id and max_age."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import ssl
import time
from dataclasses import dataclass
from email.message import Message

from govmail.config import DeliverySettings
from govmail.delivery.resolver import DnsTemporaryError, Resolver

log = logging.getLogger(__name__)

MAX_POLICY_BYTES = 64 * 1024  # RFC 8461 §3.3: senders may cap the size
FETCH_TIMEOUT_S = 15.0  # for the whole fetch; a slow policy host must not hold mail long
RETRY_FETCH_AFTER_S = 600.0  # after a failed fetch, deliver without asking again for a while
_POLICY_ID = re.compile(r"[A-Za-z0-9]{1,32}")  # RFC 8461 §3.1


@dataclass(frozen=True)
class Policy:
    id: str  # the TXT record's id= when the policy was fetched
    mode: str  # enforce, testing, none
    mx: tuple[str, ...]  # patterns: "mx.example.org" or "*.example.org"
    max_age: int
    fetched_at: float  # time.monotonic()

    @property
    def enforced(self) -> bool:
        return self.mode == "enforce"

    def fresh(self, at: float) -> bool:
        return at - self.fetched_at < self.max_age

    def allows(self, host: str) -> bool:
        """Whether the MX ``host`` is one the policy names (RFC 8461 §4.1)."""
        host = host.lower().rstrip(".")
        for pattern in self.mx:
            if pattern.startswith("*."):
                # A wildcard stands for exactly one leftmost label.
                head, _, rest = host.partition(".")
                if head and rest == pattern[2:]:
                    return True
            elif host == pattern:
                return True
        return False


def parse_policy(text: str, policy_id: str, at: float) -> Policy | None:
    """The policy in a fetched mta-sts.txt; None if it is not a valid STSv1 policy."""
    fields: dict[str, str] = {}
    mx: list[str] = []
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "mx":
            mx.append(value.lower().rstrip("."))
        else:
            fields.setdefault(key, value)
    mode = fields.get("mode", "")
    age = fields.get("max_age", "")
    if fields.get("version") != "STSv1" or mode not in ("enforce", "testing", "none"):
        return None
    if not age.isdigit() or (mode != "none" and not mx):
        return None
    return Policy(policy_id, mode, tuple(mx), min(int(age), 31557600), at)


def record_id(records: list[str]) -> str | None:
    """The id= of the one ``v=STSv1`` TXT record; None if there is none (or several)."""
    found = [r for r in records if r.replace(" ", "").startswith("v=STSv1;")]
    if len(found) != 1:
        return None
    for part in found[0].split(";"):
        key, _, value = part.strip().partition("=")
        if key.strip() == "id":
            value = value.strip()
            return value if _POLICY_ID.fullmatch(value) else None
    return None


def policy_text(response: bytes) -> str:
    """The policy in an HTTP response to the policy fetch. Raises ValueError unless it is
    a 200 with a ``text/plain`` body of at most MAX_POLICY_BYTES (RFC 8461 §3.3)."""
    head, sep, body = response.partition(b"\r\n\r\n")
    status, _, fields = head.decode("iso-8859-1").partition("\r\n")
    parts = status.split()
    if not sep or len(parts) < 2 or not parts[0].startswith("HTTP/") or parts[1] != "200":
        raise ValueError(f"HTTP status {status[:40]!r}")
    header = Message()
    for line in fields.split("\r\n"):
        name, colon, value = line.partition(":")
        if colon:
            header[name.strip()] = value.strip()
    if "Content-Type" not in header or header.get_content_type() != "text/plain":
        raise ValueError(f"Content-Type {header.get('Content-Type')!r}, not text/plain")
    length = header.get("Content-Length")
    if length is not None and length.strip().isdigit():
        body = body[: int(length)]
    if len(body) > MAX_POLICY_BYTES:
        raise ValueError("policy larger than 64 KB")
    return body.decode("utf-8", "replace")


class MtaSts:
    """The policies of destination domains, looked up when mail goes to them."""

    def __init__(self, resolver: Resolver, settings: DeliverySettings) -> None:
        self.resolver = resolver
        self.port = settings.mta_sts_port
        self.context = verifying_context(settings.ca_file)
        self._cache: dict[str, Policy] = {}
        self._failed: dict[str, float] = {}  # domain -> when a failed fetch may be retried
        self._fetching: dict[str, asyncio.Task[Policy | None]] = {}

    async def policy(self, domain: str) -> Policy | None:
        """The domain's policy, or None: no policy, or none could be had and none is
        cached (RFC 8461 §5: the sender then delivers as if there were none)."""
        now = time.monotonic()
        cached = self._cache.get(domain)
        if cached is not None and not cached.fresh(now):
            del self._cache[domain]
            cached = None
        try:
            policy_id = record_id(await self.resolver.txt(f"_mta-sts.{domain}"))
        except DnsTemporaryError:
            return cached
        if policy_id is None or (cached is not None and cached.id == policy_id):
            return cached
        if self._failed.get(domain, 0.0) > now:
            return cached
        # Sessions to the same domain starting together share one fetch.
        task = self._fetching.get(domain)
        if task is None:
            task = asyncio.create_task(self._refresh(domain, policy_id))
            self._fetching[domain] = task
            task.add_done_callback(lambda _: self._fetching.pop(domain, None))
        fetched = await asyncio.shield(task)
        return fetched if fetched is not None else cached

    async def _refresh(self, domain: str, policy_id: str) -> Policy | None:
        """Fetch and cache the policy; None (and no new fetch for a while) if that fails."""
        now = time.monotonic()
        try:
            text = await asyncio.wait_for(self._fetch(domain), FETCH_TIMEOUT_S)
            policy = parse_policy(text, policy_id, now)
            if policy is None:
                raise ValueError("not a valid STSv1 policy")
        except (OSError, TimeoutError, ValueError, DnsTemporaryError, LookupError) as exc:
            log.warning("MTA-STS policy of %s not fetched: %s", domain, exc)
            self._failed[domain] = now + RETRY_FETCH_AFTER_S
            return None
        self._failed.pop(domain, None)
        self._cache[domain] = policy
        return policy

    async def _fetch(self, domain: str) -> str:
        """GET https://mta-sts.<domain>/.well-known/mta-sts.txt with a verified
        certificate, from each address of the host in turn; no redirects (RFC 8461
        §3.3)."""
        host = f"mta-sts.{domain}"
        addresses = await self.resolver.addresses(host)
        if not addresses:
            raise LookupError(host)
        trouble: OSError | None = None
        for address in addresses:
            try:
                reader, writer = await asyncio.open_connection(
                    address, self.port, ssl=self.context, server_hostname=host
                )
            except OSError as exc:
                trouble = exc
                continue
            try:
                writer.write(
                    f"GET /.well-known/mta-sts.txt HTTP/1.0\r\nHost: {host}\r\n"
                    "Connection: close\r\n\r\n".encode("ascii")
                )
                data = b""
                while chunk := await reader.read(65536):
                    data += chunk
                    if len(data) > MAX_POLICY_BYTES + 16384:
                        raise ValueError("policy larger than 64 KB")
            finally:
                writer.close()
            return policy_text(data)
        raise trouble or LookupError(host)


@functools.cache
def verifying_context(ca_file: str) -> ssl.SSLContext:
    """TLS that checks the certificate and name: the system's CAs and ``ca_file``'s.
    One per file for the process: loading the CAs costs milliseconds of CPU."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(ca_file)
    return context
