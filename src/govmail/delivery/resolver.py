"""DNS for mail: one resolver per process, built from ``[dns]`` so closed networks and
the tests can use their own name servers."""

from __future__ import annotations

from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from govmail.config import DnsSettings


class DnsTemporaryError(Exception):
    """The answer could not be had now (timeout, SERVFAIL): try again later."""


@dataclass(frozen=True)
class MxHost:
    preference: int
    host: str  # without the final dot; "" for a null MX (RFC 7505)


def _configure(resolver: dns.resolver.BaseResolver, settings: DnsSettings) -> None:
    if settings.nameservers:
        servers: list[str] = []
        ports: set[int] = set()
        for entry in settings.nameservers:
            host, port = _host_port(entry)
            servers.append(host)
            ports.add(port)
        resolver.nameservers = servers
        # dnspython has one port for all its servers.
        resolver.port = ports.pop() if len(ports) == 1 else 53
    resolver.timeout = settings.timeout_s
    resolver.lifetime = settings.timeout_s * 2
    resolver.cache = dns.resolver.LRUCache(10_000)


def _host_port(entry: str) -> tuple[str, int]:
    if entry.startswith("["):  # [::1]:5353
        host, _, port = entry[1:].partition("]:")
        return host, int(port or 53)
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, int(port)
    return entry, 53


def sync_resolver(settings: DnsSettings) -> dns.resolver.Resolver:
    """A blocking resolver on the same servers, for libraries that look names up
    themselves (pyspf, dkimpy) from a worker thread."""
    resolver = dns.resolver.Resolver(configure=not settings.nameservers)
    _configure(resolver, settings)
    return resolver


class Resolver:
    """The lookups mail needs, asynchronous."""

    def __init__(self, settings: DnsSettings) -> None:
        self.settings = settings
        self._resolver = dns.asyncresolver.Resolver(configure=not settings.nameservers)
        _configure(self._resolver, settings)

    async def mx(self, domain: str) -> list[MxHost] | None:
        """The MX hosts of ``domain`` by preference; None if it has no MX records (the
        caller falls back to its address, RFC 5321 §5.1). Raises LookupError if the
        domain does not exist, DnsTemporaryError if DNS does not answer now."""
        answer = await self._query(domain, "MX")
        if answer is None:
            return None
        hosts = [
            MxHost(r.preference, r.exchange.to_text(omit_final_dot=True).lower()) for r in answer
        ]
        return sorted(hosts, key=lambda h: h.preference)

    async def addresses(self, host: str) -> list[str]:
        """IPv4 then IPv6 addresses of ``host`` (empty if it has none). A lookup that
        fails now does not hide what the other found; DnsTemporaryError only when
        nothing was found and a lookup failed."""
        found: list[str] = []
        trouble: DnsTemporaryError | None = None
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self._query(host, rdtype)
            except LookupError:
                return found
            except DnsTemporaryError as exc:
                trouble = exc
                continue
            if answer is not None:
                found.extend(r.to_text() for r in answer)
        if trouble is not None and not found:
            raise trouble
        return found

    async def txt(self, name: str) -> list[str]:
        """The TXT records of ``name``, each one string (its parts joined); empty if none."""
        try:
            answer = await self._query(name, "TXT")
        except LookupError:
            return []
        if answer is None:
            return []
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]

    async def _query(self, name: str, rdtype: str) -> dns.resolver.Answer | None:
        try:
            return await self._resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            raise LookupError(name) from None
        except dns.resolver.NoAnswer:
            return None
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
            raise DnsTemporaryError(f"{name} {rdtype}: {exc}") from None
        except dns.name.NameTooLong:
            raise LookupError(name) from None
