"""A real DNS server on loopback for the tests (dnslib, UDP and TCP on one port), serving
records the test sets, so MX lookups, SPF, DKIM, DMARC and MTA-STS run as on the
Internet without leaving the machine."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

from dnslib import AAAA, MX, QTYPE, RCODE, RR, TXT, A, DNSLabel, DNSRecord
from dnslib.server import DNSLogger, DNSServer


class Zone:
    """Records by (name, type), changeable while the server runs. A name with no
    record of any type is NXDOMAIN; ``fail`` names answer SERVFAIL."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], list[object]] = defaultdict(list)
        self.fail: set[str] = set()
        self._lock = threading.Lock()

    def add(self, name: str, rtype: str, value: str | tuple[int, str]) -> None:
        with self._lock:
            self._records[(_key(name), rtype.upper())].append(value)

    def set(self, name: str, rtype: str, *values: str | tuple[int, str]) -> None:
        with self._lock:
            self._records[(_key(name), rtype.upper())] = list(values)

    def remove(self, name: str, rtype: str | None = None) -> None:
        with self._lock:
            for key in [k for k in self._records if k[0] == _key(name)]:
                if rtype is None or key[1] == rtype.upper():
                    del self._records[key]

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        reply = request.reply()
        qname = str(request.q.qname)
        qtype = QTYPE[request.q.qtype]
        name = _key(qname)
        with self._lock:
            if name in self.fail:
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            known = any(k[0] == name for k, v in self._records.items() if v)
            values = list(self._records.get((name, qtype), ()))
        if not known:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for value in values:
            reply.add_answer(
                RR(DNSLabel(qname), QTYPE.reverse[qtype], rdata=_rdata(qtype, value), ttl=60)
            )
        return reply


def _key(name: str) -> str:
    return name.lower().rstrip(".")


def _rdata(qtype: str, value: object) -> object:
    if qtype == "A":
        return A(str(value))
    if qtype == "AAAA":
        return AAAA(str(value))
    if qtype == "MX":
        preference, host = value  # type: ignore[misc]
        return MX(host, preference)
    if qtype == "TXT":
        text = str(value).encode()
        # One TXT record is a list of strings of at most 255 bytes (RFC 1035 §3.3.14).
        return TXT([text[i : i + 255] for i in range(0, len(text), 255)] or [b""])
    raise ValueError(qtype)


@contextmanager
def dns_server() -> Iterator[tuple[Zone, str]]:
    """A running server and its zone; yields (zone, "127.0.0.1:PORT")."""
    zone = Zone()
    quiet = DNSLogger(log="-request,-reply,-truncated,-error", prefix=False)
    udp = DNSServer(zone, address="127.0.0.1", port=0, logger=quiet)
    port = udp.server.server_address[1]
    tcp = DNSServer(zone, address="127.0.0.1", port=port, tcp=True, logger=quiet)
    udp.start_thread()
    tcp.start_thread()
    try:
        yield zone, f"127.0.0.1:{port}"
    finally:
        for server in (udp, tcp):
            server.stop()
            server.server.server_close()
