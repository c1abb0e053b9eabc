"""DKIM keys and signatures: what a receiver checking our mail would find."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import re
import stat
import time
from pathlib import Path

import dkim
import dkim.canonicalization
import dkim.crypto
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key
from hypothesis import given
from hypothesis import strategies as st

from govmail.config import Config, DkimSettings
from govmail.core.errors import GovmailError, InvalidInput, NotFound
from govmail.delivery.dkim import (
    Signer,
    ensure_keys,
    key_path,
    openssl_pkcs1_sign,
    openssl_pkcs1_verify,
    public_key_record,
    strip_trailing_whitespace,
)

DOMAIN = "khanhhoa.gov.vn"
ALIAS = "khanhhoa.vn"

MESSAGE = (
    b"From: =?utf-8?b?Tmd1eeG7hW4gVsSDbiBBbg==?= <nvan@khanhhoa.gov.vn>\r\n"
    b"To: dn@congty.example\r\n"
    b"Subject: Giay moi hop\r\n"
    b"Date: Sat, 28 Nov 2026 10:00:00 +0700\r\n"
    b"Message-ID: <1@khanhhoa.gov.vn>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"X-Mailer: test\r\n"
    b"\r\n" + ("Kính gửi Quý công ty,\r\nTrân trọng kính mời.\r\n" * 100).encode()
)


def config(tmp_path: Path, *, sign: bool = True, aliases: tuple[str, ...] = (ALIAS,)) -> Config:
    return Config(
        data_dir=tmp_path, domain=DOMAIN, alias_domains=aliases, dkim=DkimSettings(sign=sign)
    )


def dns_of(cfg: Config):  # type: ignore[no-untyped-def]
    """What DNS would answer once the records of ``govmail dns records`` are published."""
    published = {}
    for domain in (cfg.domain, *cfg.alias_domains):
        with contextlib.suppress(GovmailError):
            name = f"{cfg.dkim.selector}._domainkey.{domain}."
            published[name.encode()] = public_key_record(cfg, domain).encode()

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return published.get(name)

    return lookup


def tags(signature: bytes) -> dict[str, str]:
    value = re.sub(r"\s+", "", signature.decode().split(":", 1)[1])
    return dict(tag.split("=", 1) for tag in value.split(";") if tag)


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    cfg = config(tmp_path)
    ensure_keys(cfg)
    return cfg


def test_signed_message_verifies_with_the_published_key(cfg: Config) -> None:
    signature = Signer.from_config(cfg).sign(MESSAGE)

    assert signature.startswith(b"DKIM-Signature: ") and signature.endswith(b"\r\n")
    assert b"\n" not in signature.replace(b"\r\n", b"")  # folded with CRLF only
    assert dkim.verify(signature + MESSAGE, dnsfunc=dns_of(cfg))
    found = tags(signature)
    assert (found["a"], found["c"], found["d"], found["s"]) == (
        "rsa-sha256",
        "relaxed/relaxed",
        DOMAIN,
        "govmail",
    )


def test_signature_covers_the_fields_readers_see_and_oversigns_from_and_subject(
    cfg: Config,
) -> None:
    signature = Signer.from_config(cfg).sign(MESSAGE)

    assert tags(signature)["h"].split(":") == [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "from",
        "subject",
    ]
    signed = signature + MESSAGE
    lookup = dns_of(cfg)
    # A second From or Subject added on the way (above the signed one, where a verifier
    # would not otherwise look), or a changed body, breaks the signature; refolding the
    # header (as relays do) does not.
    assert not dkim.verify(b"From: boss@khanhhoa.gov.vn\r\n" + signed, dnsfunc=lookup)
    assert not dkim.verify(b"Subject: Urgent\r\n" + signed, dnsfunc=lookup)
    assert not dkim.verify(signed.replace("Trân trọng".encode(), b"Tran trong", 1), dnsfunc=lookup)
    assert dkim.verify(signed.replace(b"To: dn@", b"To:  \r\n\tdn@"), dnsfunc=lookup)


def test_alias_domain_mail_is_signed_with_the_alias_key(cfg: Config) -> None:
    message = MESSAGE.replace(b"nvan@khanhhoa.gov.vn", b"nvan@khanhhoa.vn")

    signature = Signer.from_config(cfg).sign(message)

    assert tags(signature)["d"] == ALIAS
    assert dkim.verify(signature + message, dnsfunc=dns_of(cfg))


@pytest.mark.parametrize(
    "author",
    [
        b"someone@example.org",  # not ours: never sign for another domain
        b"nvan@sub.khanhhoa.gov.vn",  # nor for a subdomain we have no key for
        b"nvan@khanhhoa.gov.vn, x@example.org",  # authors in two domains
    ],
)
def test_mail_from_other_domains_is_not_signed(cfg: Config, author: bytes) -> None:
    message = MESSAGE.replace(
        b"=?utf-8?b?Tmd1eeG7hW4gVsSDbiBBbg==?= <nvan@khanhhoa.gov.vn>", author
    )

    assert Signer.from_config(cfg).sign(message) == b""


def test_signing_switched_off_signs_nothing(tmp_path: Path) -> None:
    ensure_keys(config(tmp_path))

    assert Signer.from_config(config(tmp_path, sign=False)).sign(MESSAGE) == b""


def test_no_keys_warns_once_and_sends_unsigned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="govmail.delivery.dkim"):
        signer = Signer.from_config(config(tmp_path))
        assert signer.sign(MESSAGE) == b""
        assert signer.sign(MESSAGE) == b""

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert DOMAIN in warnings[0].getMessage() and ALIAS in warnings[0].getMessage()


def test_a_damaged_key_leaves_that_domain_unsigned_and_the_others_signed(
    cfg: Config, caplog: pytest.LogCaptureFixture
) -> None:
    key_path(cfg, ALIAS).write_bytes(b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n")

    signer = Signer.from_config(cfg)

    assert signer.sign(MESSAGE.replace(b"@khanhhoa.gov.vn>", b"@khanhhoa.vn>")) == b""
    assert dkim.verify(signer.sign(MESSAGE) + MESSAGE, dnsfunc=dns_of(cfg))
    assert ALIAS in caplog.text
    with pytest.raises(InvalidInput):
        public_key_record(cfg, ALIAS)


def test_keys_are_private_2048_bit_and_never_replaced(tmp_path: Path) -> None:
    cfg = config(tmp_path)

    assert ensure_keys(cfg) == [DOMAIN, ALIAS]
    before = {d: key_path(cfg, d).read_bytes() for d in (DOMAIN, ALIAS)}
    assert ensure_keys(cfg) == []
    assert ensure_keys(config(tmp_path, aliases=(ALIAS, "khanhhoa.com.vn"))) == ["khanhhoa.com.vn"]

    for domain, pem in before.items():
        path = key_path(cfg, domain)
        assert path.read_bytes() == pem
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cfg.dkim_dir.stat().st_mode) == 0o700
    assert sorted(os.listdir(cfg.dkim_dir)) == sorted(  # no temporary files left behind
        f"{d}.govmail.key" for d in (DOMAIN, ALIAS, "khanhhoa.com.vn")
    )
    record = public_key_record(cfg, DOMAIN)
    assert record.startswith("v=DKIM1; k=rsa; p=")
    public = load_der_public_key(base64.b64decode(record.split("p=", 1)[1]))
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048


def test_public_key_record_of_a_domain_without_key_says_so(tmp_path: Path) -> None:
    with pytest.raises(NotFound) as caught:
        public_key_record(config(tmp_path), DOMAIN)

    assert "DKIM" in caught.value.message_vi


def test_openssl_signing_step_gives_dkimpys_own_bytes(tmp_path: Path) -> None:
    """The RSA step is OpenSSL's, for speed; it must be bit for bit what dkimpy computes."""
    cfg = config(tmp_path)
    ensure_keys(cfg)
    key = dkim.crypto.parse_pem_private_key(key_path(cfg, DOMAIN).read_bytes())
    for algorithm in (hashlib.sha256, hashlib.sha1):
        ours = openssl_pkcs1_sign(algorithm(MESSAGE), key)
        assert ours == dkim.crypto.RSASSA_PKCS1_v1_5_sign(algorithm(MESSAGE), key)
    assert dkim.RSASSA_PKCS1_v1_5_sign is openssl_pkcs1_sign


def test_openssl_verification_step_agrees_with_dkimpys_own(tmp_path: Path) -> None:
    """Verification is OpenSSL's too (dkimpy's pure-Python pow() lets a hostile key cost
    seconds): same answer on good and bad signatures."""
    cfg = config(tmp_path)
    ensure_keys(cfg)
    private = dkim.crypto.parse_pem_private_key(key_path(cfg, DOMAIN).read_bytes())
    public = {name: private[name] for name in ("modulus", "publicExponent")}
    for algorithm in (hashlib.sha256, hashlib.sha1):
        good = dkim.crypto.RSASSA_PKCS1_v1_5_sign(algorithm(MESSAGE), private)
        bad = bytes([good[0] ^ 1]) + good[1:]
        for signature, expected in ((good, True), (bad, False), (good[:-1], False)):
            assert openssl_pkcs1_verify(algorithm(MESSAGE), signature, public) is expected
            assert (
                dkim.crypto.RSASSA_PKCS1_v1_5_verify(algorithm(MESSAGE), signature, public)
                is expected
            )
        assert openssl_pkcs1_verify(algorithm(MESSAGE + b"x"), good, public) is False
    assert dkim.RSASSA_PKCS1_v1_5_verify is openssl_pkcs1_verify


@given(st.lists(st.sampled_from([b" ", b"\t", b"\r\n", b"\r", b"\n", b"a"]), max_size=60))
def test_linear_blank_stripping_gives_dkimpys_bytes(parts: list[bytes]) -> None:
    body = b"".join(parts)
    assert strip_trailing_whitespace(body) == re.sub(b"[\t ]+\r\n", b"\r\n", body)  # dkimpy's


def test_blank_stripping_is_linear() -> None:
    body = (b" " * 60_000 + b"x\r\n") * 100  # 6 MB: dkimpy's own takes minutes
    started = time.perf_counter()
    assert strip_trailing_whitespace(body) == body
    assert time.perf_counter() - started < 0.5
    assert dkim.canonicalization.strip_trailing_whitespace is strip_trailing_whitespace
