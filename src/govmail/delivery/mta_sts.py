"""MTA-STS (RFC 8461): a receiving domain's published demand that mail to it go over
verified TLS to the MX hosts it names; fetched over HTTPS, cached by id and max_age."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass

from govmail.config import DeliverySettings
from govmail.delivery.resolver import DnsTemporaryError, Resolver

log = logging.getLogger(__name__)

MAX_POLICY_BYTES = 64 * 1024  # RFC 8461 §3.3: senders may cap the size
FETCH_TIMEOUT_S = 60.0


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
        if key == "id" and value:
            return value
    return None


class MtaSts:
    """The policies of destination domains, looked up when mail goes to them."""

    def __init__(self, resolver: Resolver, settings: DeliverySettings) -> None:
        self.resolver = resolver
        self.port = settings.mta_sts_port
        self.context = verifying_context(settings.ca_file)
        self._cache: dict[str, Policy] = {}

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
        try:
            text = await asyncio.wait_for(self._fetch(domain), FETCH_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError, DnsTemporaryError, LookupError) as exc:
            log.warning("MTA-STS policy of %s not fetched: %s", domain, exc)
            return cached
        policy = parse_policy(text, policy_id, now)
        if policy is None:
            log.warning("MTA-STS policy of %s is not valid", domain)
            return cached
        self._cache[domain] = policy
        return policy

    async def _fetch(self, domain: str) -> str:
        """GET https://mta-sts.<domain>/.well-known/mta-sts.txt with a verified
        certificate; no redirects (RFC 8461 §3.3)."""
        host = f"mta-sts.{domain}"
        addresses = await self.resolver.addresses(host)
        if not addresses:
            raise LookupError(host)
        reader, writer = await asyncio.open_connection(
            addresses[0], self.port, ssl=self.context, server_hostname=host
        )
        try:
            writer.write(
                f"GET /.well-known/mta-sts.txt HTTP/1.0\r\nHost: {host}\r\n"
                "Connection: close\r\n\r\n".encode("ascii")
            )
            data = b""
            while chunk := await reader.read(65536):
                data += chunk
                if len(data) > MAX_POLICY_BYTES + 4096:
                    raise ValueError("policy too large")
        finally:
            writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].split()
        if len(status) < 2 or status[1] != b"200":
            raise ValueError(f"HTTP {b' '.join(status[1:2]).decode('ascii', 'replace')}")
        if b"text/plain" not in head.lower():
            raise ValueError("not text/plain")
        return body.decode("utf-8", "replace")


def verifying_context(ca_file: str) -> ssl.SSLContext:
    """TLS that checks the certificate and name: the system's CAs and ``ca_file``'s."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(ca_file)
    return context
