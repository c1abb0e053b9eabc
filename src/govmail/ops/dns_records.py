"""The DNS records a province publishes so that the Internet trusts and finds its mail
(``govmail dns records``), and the MTA-STS policy whose id one of them carries."""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from govmail.config import Config
from govmail.delivery.dkim import ensure_keys, our_domains, public_key_record

TTL = 3600
MTA_STS_MAX_AGE = 604800  # one week, as RFC 8461's examples and the large providers use
# Mail clients' ports (RFC 8314 and RFC 6186): the production listeners, whatever ports
# this installation's development config uses.
CLIENT_PORTS = {"imaps": 993, "imap": 143, "submissions": 465, "submission": 587}


@dataclass(frozen=True)
class DnsRecord:
    """One record. ``name`` and host names inside ``value`` are fully qualified without
    the final dot; a TXT ``value`` is the whole text, unquoted and unsplit."""

    name: str
    type: str
    value: str

    def zone_line(self, ttl: int = TTL) -> str:
        """``NAME TTL IN TYPE VALUE`` as in a zone file: names end with a dot and a TXT
        value is quoted in strings of at most 255 bytes (RFC 1035 §3.3.14)."""
        value = self.value
        if self.type == "TXT":
            value = _quoted_strings(value)
        elif self.type in ("MX", "CNAME", "SRV"):  # these end with a host name
            head, _, host = value.rpartition(" ")
            value = f"{head} {host}.".lstrip()
        return f"{self.name}. {ttl} IN {self.type} {value}"

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type, "value": self.value}


def _quoted_strings(text: str) -> str:
    data = text.encode("utf-8")
    chunks = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
    return " ".join(
        '"' + c.decode("utf-8").replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks
    )


def mta_sts_policy(cfg: Config) -> str:
    """The policy served at https://mta-sts.<domain>/.well-known/mta-sts.txt (RFC 8461 §3.2)."""
    lines = [
        "version: STSv1",
        f"mode: {cfg.dns.mta_sts_mode}",
        f"mx: {cfg.hostname}",
        f"max_age: {MTA_STS_MAX_AGE}",
    ]
    return "".join(f"{line}\r\n" for line in lines)


def mta_sts_id(cfg: Config) -> str:
    """The policy's id for the _mta-sts TXT record: a digest of the policy text, so it
    changes exactly when the policy does and senders fetch the new one."""
    return hashlib.sha256(mta_sts_policy(cfg).encode("ascii")).hexdigest()[:20]


def dns_records(cfg: Config) -> list[DnsRecord]:
    """Every record to publish for the main domain and each alias domain.

    A domain without a DKIM key gets one first (as ``govmail serve`` would at start), so
    the record printed is the key that will sign.
    """
    ensure_keys(cfg)
    host = cfg.hostname.lower().rstrip(".")
    records: list[DnsRecord] = []
    for domain in our_domains(cfg):
        rua = f"mailto:postmaster@{domain}" if cfg.postmaster else ""
        dmarc = f"v=DMARC1; p={cfg.dns.dmarc_policy}" + (f"; rua={rua}" if rua else "")
        records += [
            DnsRecord(domain, "MX", f"10 {host}"),
            DnsRecord(domain, "TXT", _spf(cfg)),
            DnsRecord(
                f"{cfg.dkim.selector}._domainkey.{domain}", "TXT", public_key_record(cfg, domain)
            ),
            DnsRecord(f"_dmarc.{domain}", "TXT", dmarc),
            DnsRecord(f"_mta-sts.{domain}", "TXT", f"v=STSv1; id={mta_sts_id(cfg)}"),
            DnsRecord(f"mta-sts.{domain}", "CNAME", host),
        ]
        if rua:  # the record is void without somewhere to send reports (RFC 8460 §3)
            records.append(DnsRecord(f"_smtp._tls.{domain}", "TXT", f"v=TLSRPTv1; rua={rua}"))
        records += [
            DnsRecord(f"autoconfig.{domain}", "CNAME", host),
            DnsRecord(f"autodiscover.{domain}", "CNAME", host),
            *(
                DnsRecord(f"_{service}._tcp.{domain}", "SRV", f"0 1 {port} {host}")
                for service, port in CLIENT_PORTS.items()
            ),
        ]
    return records


def _spf(cfg: Config) -> str:
    """Mail leaves from the MX host itself, or through the smarthost when there is one."""
    if not cfg.delivery.smarthost:
        return "v=spf1 mx -all"
    relay = cfg.delivery.smarthost.rpartition(":")[0].strip("[]")
    try:
        ip = ipaddress.ip_address(relay)
    except ValueError:
        return f"v=spf1 mx a:{relay} -all"
    return f"v=spf1 mx ip{ip.version}:{ip} -all"
