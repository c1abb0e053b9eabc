"""SPF, DKIM and DMARC on the MX, against a real DNS server on loopback: what is recorded
in Authentication-Results, what lands in Junk, and what is refused.

The many-case tests run on SQLite only (the checks do not touch the store); filing into
Junk, which does, runs on both backends."""

from __future__ import annotations

import base64
import re
import smtplib
import time
from collections.abc import Iterator
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.integration.dnsserver import Zone, dns_server
from tests.integration.mailserver import (
    AN,
    RunningServer,
    db_scalar,
    mailbox_messages,
    mx,
    served,
    set_option,
)

HOST = "mail.khanhhoa.gov.vn"  # the authserv-id: the province's host name
SELECTOR = b"sel"
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def signing_key() -> tuple[bytes, str]:
    """A 2048-bit RSA key: (PEM private key, the p= of its DKIM record)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, base64.b64encode(public).decode()


@pytest.fixture
def zone() -> Iterator[tuple[Zone, str]]:
    with dns_server() as running:
        yield running


@pytest.fixture
def internet(province: Path, zone: tuple[Zone, str]) -> Path:
    """The province, looking names up on the test's DNS server."""
    set_option(province, "nameservers", [zone[1]], section="dns")
    return province


@pytest.fixture
def server(internet: Path) -> Iterator[RunningServer]:
    with served(internet) as running:
        yield running


def publish(
    zone: Zone,
    domain: str,
    key: tuple[bytes, str],
    *,
    spf: str | None = None,
    dmarc: str | None = None,
) -> None:
    """A sending domain's records: its DKIM key, and SPF and DMARC when given."""
    zone.add(f"{SELECTOR.decode()}._domainkey.{domain}", "TXT", f"v=DKIM1; k=rsa; p={key[1]}")
    if spf is not None:
        zone.add(domain, "TXT", spf)
    if dmarc is not None:
        zone.add(f"_dmarc.{domain}", "TXT", dmarc)


def message(author: str, subject: str, key: tuple[bytes, str] | None = None, d: str = "") -> bytes:
    """A message from ``author``, DKIM-signed for ``d`` when a key is given."""
    text = (
        f"From: Doanh nghiệp <{author}>\r\nTo: {AN}\r\nSubject: {subject}\r\n"
        "Message-ID: <" + subject.replace(" ", ".") + "@sender.test>\r\n\r\n"
        "Kính gửi Sở. Đề nghị cấp giấy phép.\r\n"
    ).encode()
    if key is None:
        return text
    signature = dkim.sign(
        text,
        SELECTOR,
        (d or author.rpartition("@")[2]).encode(),
        key[0],
        include_headers=[b"from", b"to", b"subject", b"message-id"],
    )
    return bytes(signature) + text


def send(server: RunningServer, sender: str, data: bytes) -> None:
    with mx(server) as client:
        assert client.sendmail(sender, [AN], data) == {}


def refused(server: RunningServer, sender: str, data: bytes) -> tuple[int, str]:
    with mx(server) as client, pytest.raises(smtplib.SMTPDataError) as error:
        client.sendmail(sender, [AN], data)
    return error.value.smtp_code, error.value.smtp_error.decode()


def results(raw: bytes) -> str:
    """Our Authentication-Results, unfolded, without the authserv-id."""
    fields = BytesHeaderParser(policy=compat32).parsebytes(raw).get_all("Authentication-Results")
    ours = [f for f in fields or [] if f.startswith(HOST + ";")]
    assert len(ours) == 1, fields
    return re.sub(r"\s+", " ", ours[0].removeprefix(HOST + ";")).strip()


def delivered(server: RunningServer, subject: str, folder: str = "INBOX") -> bytes:
    found = [
        raw for m, raw in mailbox_messages(server.data_dir, AN, folder) if m.subject == subject
    ]
    assert len(found) == 1, f"{subject!r} not in {folder}"
    return found[0]


# --- SPF --------------------------------------------------------------------------------


@sqlite_only
def test_spf_pass_fail_softfail_and_none_are_recorded(
    server: RunningServer, zone: tuple[Zone, str]
) -> None:
    dns, _ = zone
    dns.add("pass.test", "TXT", "v=spf1 ip4:127.0.0.0/8 -all")
    dns.add("fail.test", "TXT", "v=spf1 ip4:192.0.2.1 -all")
    dns.add("soft.test", "TXT", "v=spf1 ~all")
    dns.add("none.test", "A", "192.0.2.7")  # exists, publishes no SPF
    for domain in ("pass", "fail", "soft", "none"):
        send(server, f"a@{domain}.test", message(f"a@{domain}.test", f"spf {domain}"))
    assert results(delivered(server, "spf pass")).startswith("spf=pass smtp.mailfrom=a@pass.test;")
    assert results(delivered(server, "spf fail")).startswith("spf=fail smtp.mailfrom=a@fail.test;")
    # Without a DMARC policy a failing SPF only gets recorded: the message is delivered.
    assert results(delivered(server, "spf soft")).startswith("spf=softfail ")
    assert results(delivered(server, "spf none")) == (
        "spf=none smtp.mailfrom=a@none.test; dkim=none; dmarc=none header.from=none.test"
    )


# --- DKIM and DMARC ---------------------------------------------------------------------


@sqlite_only
def test_dkim_pass_fail_none_and_dmarc_alignment(
    server: RunningServer, zone: tuple[Zone, str], signing_key: tuple[bytes, str]
) -> None:
    dns, _ = zone
    # SPF passes for the bulk mailer's own domain only; DMARC p=none records, delivers.
    publish(dns, "sender.test", signing_key, spf="v=spf1 -all", dmarc="v=DMARC1; p=none")
    dns.add("bulk.sender.test", "TXT", "v=spf1 ip4:127.0.0.1 -all")

    signed = message("info@sender.test", "dkim signed", signing_key)
    send(server, "bounce@esp.test", signed)
    tampered = message("info@sender.test", "dkim tampered", signing_key)
    send(server, "bounce@esp.test", tampered.replace("Đề nghị".encode(), "Đề xuất".encode()))
    send(server, "news@bulk.sender.test", message("info@sender.test", "spf aligned"))
    send(server, "bounce@esp.test", message("info@sender.test", "nothing aligned"))

    assert results(delivered(server, "dkim signed")) == (
        "spf=none smtp.mailfrom=bounce@esp.test;"
        " dkim=pass header.d=sender.test header.s=sel;"
        " dmarc=pass (p=none dis=none) header.from=sender.test"
    )
    # The body changed after signing: the signature fails, and so does DMARC.
    assert results(delivered(server, "dkim tampered")) == (
        "spf=none smtp.mailfrom=bounce@esp.test;"
        " dkim=fail header.d=sender.test header.s=sel;"
        " dmarc=fail (p=none dis=none) header.from=sender.test"
    )
    # No signature; SPF passes for a subdomain: relaxed alignment is enough.
    assert results(delivered(server, "spf aligned")) == (
        "spf=pass smtp.mailfrom=news@bulk.sender.test; dkim=none;"
        " dmarc=pass (p=none dis=none) header.from=sender.test"
    )
    assert results(delivered(server, "nothing aligned")).endswith(
        "dkim=none; dmarc=fail (p=none dis=none) header.from=sender.test"
    )


def test_dmarc_quarantine_files_failing_mail_into_junk(
    server: RunningServer, zone: tuple[Zone, str], signing_key: tuple[bytes, str]
) -> None:
    dns, _ = zone
    publish(dns, "sender.test", signing_key, dmarc="v=DMARC1; p=quarantine")
    # p=reject but a 0% sample: the next lower policy, quarantine, applies.
    publish(dns, "sampled.test", signing_key, dmarc="v=DMARC1; p=reject; pct=0")
    send(server, "x@esp.test", message("info@sender.test", "forged quarantine"))
    send(server, "x@esp.test", message("info@sampled.test", "forged sampled"))
    send(server, "x@esp.test", message("info@sender.test", "signed quarantine", signing_key))

    raw = delivered(server, "forged quarantine", "Junk")
    assert "dmarc=fail (p=quarantine dis=quarantine)" in results(raw)
    assert "dmarc=fail (p=reject dis=quarantine)" in results(
        delivered(server, "forged sampled", "Junk")
    )
    assert "dmarc=pass" in results(delivered(server, "signed quarantine"))
    assert [m.subject for m, _ in mailbox_messages(server.data_dir, AN)] == ["signed quarantine"]
    # Junk counts against the quota like any folder.
    used = db_scalar(
        server.data_dir,
        "select used_bytes from mailboxes m join addresses a"
        " on a.mailbox_id = m.id where a.local_part = 'nvan'",
    )
    assert used == sum(len(r) for _, r in mailbox_messages(server.data_dir, AN, "Junk")) + len(
        delivered(server, "signed quarantine")
    )


@sqlite_only
def test_dmarc_reject_is_refused_or_filed_in_junk_as_configured(
    internet: Path, zone: tuple[Zone, str], signing_key: tuple[bytes, str]
) -> None:
    dns, _ = zone
    publish(dns, "bank.test", signing_key, spf="v=spf1 -all", dmarc="v=DMARC1; p=reject")
    forged = message("security@bank.test", "verify your account")
    with served(internet) as server:
        code, text = refused(server, "security@bank.test", forged)
        assert code == 550 and text.startswith("5.7.1 ")
        assert "DMARC" in text and "tu choi" in text  # Vietnamese first, then English
        # The bank's own signed mail still goes through.
        send(server, "x@esp.test", message("security@bank.test", "statement", signing_key))
    assert [m.subject for m, _ in mailbox_messages(internet, AN)] == ["statement"]

    set_option(internet, "dmarc_reject", "junk", section="inbound")
    with served(internet) as server:
        send(server, "security@bank.test", forged)
        assert "dmarc=fail (p=reject dis=reject)" in results(
            delivered(server, "verify your account", "Junk")
        )


# --- forgery, loops, DNS trouble --------------------------------------------------------


@sqlite_only
def test_forged_authentication_results_claiming_our_host_are_removed(
    server: RunningServer, zone: tuple[Zone, str]
) -> None:
    zone[0].add("evil.test", "TXT", "v=spf1 -all")
    forged = (
        f"Authentication-Results: {HOST}; spf=pass; dkim=pass; dmarc=pass\r\n"
        "Authentication-Results: mx.evil.test; spf=pass\r\n"
    ).encode() + message("ceo@evil.test", "forged results")
    send(server, "ceo@evil.test", forged)
    raw = delivered(server, "forged results")
    assert results(raw).startswith("spf=fail smtp.mailfrom=ceo@evil.test;")  # one, ours
    assert b"Authentication-Results: mx.evil.test; spf=pass\r\n" in raw  # not ours: kept
    # Ours sits above our Received, under Return-Path (RFC 8601 §5).
    assert raw.startswith(
        f"Return-Path: <ceo@evil.test>\r\nAuthentication-Results: {HOST};".encode()
    )
    assert raw.index(b"\r\nReceived: from") < raw.index(b"mx.evil.test")


@sqlite_only
def test_our_domain_in_from_is_refused_from_outside(internet: Path) -> None:
    # The envelope is someone else's (MAIL FROM in our domain is refused already); only
    # the From: the official will see claims the province.
    impostor = message("chutich@khanhhoa.gov.vn", "chi dao khan")
    with served(internet) as server:
        code, text = refused(server, "attacker@evil.test", impostor)
        assert code == 550 and text.startswith("5.7.1 ")
        assert mailbox_messages(internet, AN) == []
    # A trusted relay (the province's own gateway) is not checked as Internet mail.
    set_option(internet, "trusted_relays", ["127.0.0.0/8"])
    with served(internet) as server:
        send(server, "attacker@evil.test", impostor)
        raw = delivered(server, "chi dao khan")
    assert b"Authentication-Results" not in raw


@sqlite_only
def test_a_message_that_passed_too_many_relays_is_a_loop(internet: Path) -> None:
    set_option(internet, "max_hops", 5, section="delivery")
    hops = b"".join(
        b"Received: from relay%d.test by relay%d.test; x\r\n" % (i, i) for i in range(5)
    )
    with served(internet) as server:
        code, text = refused(server, "a@sender.test", hops + message("a@sender.test", "loop"))
        assert code == 554 and text.startswith("5.4.6 ")
        send(
            server, "a@sender.test", hops[hops.index(b"\r\n") + 2 :] + message("a@sender.test", "4")
        )
    assert [m.subject for m, _ in mailbox_messages(internet, AN)] == ["4"]


@sqlite_only
def test_dns_failure_is_recorded_as_temperror_and_the_message_delivered(
    server: RunningServer, zone: tuple[Zone, str], signing_key: tuple[bytes, str]
) -> None:
    dns, _ = zone
    publish(dns, "sender.test", signing_key, spf="v=spf1 -all", dmarc="v=DMARC1; p=reject")
    dns.fail.update({"sender.test", "_dmarc.sender.test", "sel._domainkey.sender.test"})
    send(server, "a@sender.test", message("a@sender.test", "dns down", signing_key))
    assert results(delivered(server, "dns down")) == (
        "spf=temperror smtp.mailfrom=a@sender.test;"
        " dkim=temperror (key lookup failed) header.d=sender.test header.s=sel;"
        " dmarc=temperror header.from=sender.test"
    )


@sqlite_only
def test_checks_turned_off_record_nothing_and_refuse_nothing(
    internet: Path, zone: tuple[Zone, str], signing_key: tuple[bytes, str]
) -> None:
    publish(zone[0], "bank.test", signing_key, spf="v=spf1 -all", dmarc="v=DMARC1; p=reject")
    for check in ("spf", "dkim", "dmarc"):
        set_option(internet, check, False, section="inbound")
    forged = f"Authentication-Results: {HOST}; dmarc=pass\r\n".encode()
    forged += message("security@bank.test", "unchecked")
    with served(internet) as server:
        send(server, "security@bank.test", forged)
        raw = delivered(server, "unchecked")
    # Still, nobody else may write our results.
    assert b"Authentication-Results" not in raw


# --- hostile and unusual input ----------------------------------------------------------


def hostile_key() -> str:
    """The p= of a key no verifier should do arithmetic with: 8192 bits."""
    public = rsa.generate_private_key(public_exponent=65537, key_size=8192).public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@sqlite_only
def test_keys_that_are_missing_revoked_or_hostile_are_permerrors(
    server: RunningServer, zone: tuple[Zone, str], signing_key: tuple[bytes, str]
) -> None:
    dns, _ = zone
    dns.add("sel._domainkey.revoked.test", "TXT", "v=DKIM1; k=rsa; p=")
    dns.add("sel._domainkey.huge.test", "TXT", f"v=DKIM1; k=rsa; p={hostile_key()}")
    for domain in ("missing", "revoked", "huge"):
        send(server, "a@esp.test", message(f"a@{domain}.test", domain, signing_key))
    assert "dkim=permerror (no key) header.d=missing.test" in results(delivered(server, "missing"))
    assert "dkim=permerror (unusable key) header.d=revoked.test" in results(
        delivered(server, "revoked")
    )
    assert "dkim=permerror (unacceptable key size) header.d=huge.test" in results(
        delivered(server, "huge")
    )


@sqlite_only
def test_at_most_three_signatures_are_verified(
    server: RunningServer, zone: tuple[Zone, str], signing_key: tuple[bytes, str]
) -> None:
    publish(zone[0], "sender.test", signing_key)
    signed = message("a@sender.test", "five signatures", signing_key)
    signature = signed[: signed.index(b"From: ")]
    send(server, "a@esp.test", signature * 4 + signed)
    assert results(delivered(server, "five signatures")).count("dkim=pass") == 3


@sqlite_only
def test_from_without_address_or_twice_is_refused(server: RunningServer) -> None:
    code, text = refused(
        server,
        "a@esp.test",
        message("a@sender.test", "x").replace(
            b"From: Doanh nghi\xe1\xbb\x87p <a@sender.test>", b"From: undisclosed"
        ),
    )
    assert code == 550 and text.startswith("5.7.1 ") and "From" in text
    twice = b"From: b@other.test\r\n" + message("a@sender.test", "two authors")
    code, text = refused(server, "a@esp.test", twice)
    assert code == 550 and text.startswith("5.6.0 ")
    assert mailbox_messages(server.data_dir, AN) == []


@sqlite_only
def test_the_organizational_domain_policy_and_its_sp_apply_to_subdomains(
    server: RunningServer, zone: tuple[Zone, str]
) -> None:
    dns, _ = zone
    dns.add("_dmarc.corp.test", "TXT", "v=DMARC1; p=none; sp=quarantine")
    # An unusable record at the author's own domain means no policy, not the parent's.
    dns.add("_dmarc.broken.corp.test", "TXT", "v=DMARC1; p=bogus")
    send(server, "x@esp.test", message("a@hr.corp.test", "from a subdomain"))
    send(server, "x@esp.test", message("a@broken.corp.test", "broken record"))
    send(server, "x@esp.test", message("a@corp.test", "from the parent"))
    assert "dmarc=fail (p=quarantine dis=quarantine) header.from=hr.corp.test" in results(
        delivered(server, "from a subdomain", "Junk")
    )
    assert results(delivered(server, "broken record")).endswith(
        "dmarc=none header.from=broken.corp.test"
    )
    assert "dmarc=fail (p=none dis=none)" in results(delivered(server, "from the parent"))


@sqlite_only
def test_our_own_domain_unverifiable_for_now_is_deferred(
    server: RunningServer, zone: tuple[Zone, str], signing_key: tuple[bytes, str]
) -> None:
    zone[0].fail.add("sel._domainkey.khanhhoa.gov.vn")
    signed = message("chutich@khanhhoa.gov.vn", "dns down for us", signing_key)
    code, text = refused(server, "relay@esp.test", signed)
    assert code == 451 and text.startswith("4.7.1 ")


@sqlite_only
def test_a_huge_folded_header_is_refused_and_a_large_one_read_quickly(
    server: RunningServer,
) -> None:
    folded = b"X-Long: a\r\n" + b" folded\r\n" * 12_000  # 108 KB of one field
    started = time.perf_counter()
    code, text = refused(server, "a@esp.test", folded + message("a@sender.test", "huge"))
    assert code == 552 and text.startswith("5.3.4 ")
    large = b"X-Long: a\r\n" + b" folded\r\n" * 9_000
    send(server, "a@esp.test", large + message("a@sender.test", "large header"))
    assert time.perf_counter() - started < 5
    assert results(delivered(server, "large header")).startswith("spf=none")
