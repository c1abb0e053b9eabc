"""``govmail dns records``: published as printed, the records make receivers trust our mail."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import dkim
import dns.rdatatype
import dns.resolver
import dns.zone
import pytest

from govmail.config import load_config
from govmail.delivery.dkim import Signer, key_path
from govmail.delivery.resolver import sync_resolver
from govmail.ops.setup import init_data_dir
from tests.integration.clihelp import cli
from tests.integration.dnsserver import dns_server
from tests.integration.mailserver import served, set_option

DOMAIN = "khanhhoa.gov.vn"
ALIAS = "khanhhoa.vn"
HOST = "mail.khanhhoa.gov.vn"


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A province with an alias domain and a postmaster. The records come from the
    config and the key files alone, so one backend (SQLite) is enough."""
    monkeypatch.delenv("GOVMAIL_DATABASE_URL", raising=False)
    path = tmp_path / "data"
    asyncio.run(init_data_dir(path, domain=DOMAIN, demo=False))
    set_option(path, "alias_domains", [ALIAS])
    set_option(path, "postmaster", "ttr")
    return path


def records_json(data_dir: Path) -> list[dict[str, str]]:
    result = cli(data_dir, "dns", "records", "--json")
    assert result.exit_code == 0, result.output
    records: list[dict[str, str]] = json.loads(result.stdout)
    return records


def values(records: list[dict[str, str]], name: str, rtype: str) -> list[str]:
    return [r["value"] for r in records if r["name"] == name and r["type"] == rtype]


def message(author: str) -> bytes:
    return (
        f"From: Nguyễn Văn An <{author}>\r\n"
        "To: dn@congty.example\r\n"
        "Subject: =?utf-8?q?Gi=E1=BA=A5y_m=E1=BB=9Di?=\r\n"
        "Date: Sat, 28 Nov 2026 10:00:00 +0700\r\n"
        "Message-ID: <42@khanhhoa.gov.vn>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "Kính gửi Quý công ty.\r\n"
    ).encode()


def test_published_records_let_a_receiver_verify_our_signatures(install: Path) -> None:
    records = records_json(install)

    with dns_server() as (zone, address):
        for r in records:
            if r["type"] == "MX":
                preference, host = r["value"].split()
                zone.add(r["name"], "MX", (int(preference), host))
            elif r["type"] == "TXT":
                zone.add(r["name"], "TXT", r["value"])
        # (The test server answers MX, TXT, A and AAAA only; CNAME and SRV are checked
        # against the zone-file form below.)
        set_option(install, "nameservers", [address], section="dns")
        resolver = sync_resolver(load_config(install).dns)

        def lookup(name: bytes, timeout: int = 5) -> bytes | None:
            answer = resolver.resolve(name.decode(), "TXT", raise_on_no_answer=False)
            return b"".join(answer[0].strings) if answer.rrset else None

        signer = Signer.from_config(load_config(install))
        for author in (f"nvan@{DOMAIN}", f"nvan@{ALIAS}"):
            signed = signer.sign(message(author)) + message(author)
            assert dkim.verify(signed, dnsfunc=lookup), author
            assert not dkim.verify(signed.replace("Kính".encode(), b"Kinh"), dnsfunc=lookup)

        def txt(name: str) -> list[str]:
            return [b"".join(r.strings).decode() for r in resolver.resolve(name, "TXT")]

        for domain in (DOMAIN, ALIAS):
            mx = resolver.resolve(domain, "MX")
            assert [r.exchange.to_text(omit_final_dot=True) for r in mx] == [HOST]
            assert txt(domain) == ["v=spf1 mx -all"]
            assert txt(f"_dmarc.{domain}") == [f"v=DMARC1; p=none; rua=mailto:postmaster@{domain}"]
            assert txt(f"_smtp._tls.{domain}") == [f"v=TLSRPTv1; rua=mailto:postmaster@{domain}"]
            (sts,) = txt(f"_mta-sts.{domain}")
            assert sts.startswith("v=STSv1; id=")


def test_zone_lines_parse_and_say_what_the_json_says(install: Path) -> None:
    records = records_json(install)
    result = cli(install, "dns", "records")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()

    assert len(lines) == len(records)
    for line, record in zip(lines, records, strict=True):
        name, ttl, klass, rtype, _value = line.split(" ", 4)
        assert (name, klass, rtype) == (record["name"] + ".", "IN", record["type"])
        assert int(ttl) > 0
    zone = dns.zone.from_text(result.stdout, origin=".", relativize=False, check_origin=False)
    for record in records:
        rdataset = zone.find_rdataset(record["name"] + ".", record["type"])
        texts = []
        for rdata in rdataset:
            if rdata.rdtype == dns.rdatatype.TXT:
                assert all(len(s) <= 255 for s in rdata.strings)
                texts.append(b"".join(rdata.strings).decode())
            else:  # host names: the JSON leaves out the final dot
                texts.append(rdata.to_text().removesuffix("."))
        assert record["value"] in texts, record
    # The 2048-bit key does not fit one string: it is split, on one line.
    dkim_line = next(line for line in lines if line.startswith(f"govmail._domainkey.{DOMAIN}. "))
    assert dkim_line.count('" "') == 1
    for domain in (DOMAIN, ALIAS):
        for name, target in [
            (f"mta-sts.{domain}.", HOST),
            (f"autoconfig.{domain}.", HOST),
            (f"autodiscover.{domain}.", HOST),
        ]:
            (cname,) = zone.find_rdataset(name, "CNAME")
            assert cname.target.to_text() == target + "."
        for service, port in [("submission", 587), ("imaps", 993), ("imap", 143)]:
            (srv,) = zone.find_rdataset(f"_{service}._tcp.{domain}.", "SRV")
            assert (srv.port, srv.target.to_text()) == (port, HOST + ".")


def test_policies_follow_the_configuration(install: Path) -> None:
    before = records_json(install)
    set_option(install, "postmaster", "")
    set_option(install, "mta_sts_mode", "enforce", section="dns")
    set_option(install, "dmarc_policy", "reject", section="dns")
    set_option(install, "smarthost", "192.0.2.7:587", section="delivery")

    after = records_json(install)

    assert values(after, f"_dmarc.{DOMAIN}", "TXT") == ["v=DMARC1; p=reject"]
    assert values(after, f"_smtp._tls.{DOMAIN}", "TXT") == []  # no one to send reports to
    assert values(after, DOMAIN, "TXT") == ["v=spf1 mx ip4:192.0.2.7 -all"]
    sts_id = values(before, f"_mta-sts.{DOMAIN}", "TXT")
    assert sts_id != values(after, f"_mta-sts.{DOMAIN}", "TXT")
    # The DKIM key is the same: publishing the records again changes no key.
    name = f"govmail._domainkey.{DOMAIN}"
    assert values(before, name, "TXT") == values(after, name, "TXT")


def test_bad_policy_setting_is_refused_in_both_languages(install: Path) -> None:
    set_option(install, "dmarc_policy", "strict", section="dns")

    result = cli(install, "dns", "records")

    assert result.exit_code == 1
    assert "dmarc_policy" in result.stderr and "Giá trị cấu hình" in result.stderr


def test_an_alias_domain_added_later_gets_its_key_at_the_next_start(install: Path) -> None:
    cfg = load_config(install)
    main_key = key_path(cfg, DOMAIN).read_bytes()
    later = "khanhhoa.com.vn"
    set_option(install, "alias_domains", [ALIAS, later])

    with served(install):
        pass

    cfg = load_config(install)
    for domain in (ALIAS, later):
        assert stat.S_IMODE(key_path(cfg, domain).stat().st_mode) == 0o600
    assert key_path(cfg, DOMAIN).read_bytes() == main_key
    records = records_json(install)
    assert values(records, f"govmail._domainkey.{later}", "TXT")[0].startswith("v=DKIM1; k=rsa;")
