"""DKIM for the province's own domains (RFC 6376): one RSA key per domain, kept as a file
in the data directory's dkim/, and the signature that outgoing mail carries."""

from __future__ import annotations

import base64
import functools
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import dkim
import dkim.canonicalization
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from govmail.config import Config
from govmail.core.errors import InvalidInput, NotFound
from govmail.core.mime import header_addresses
from govmail.store.blobs import fsync_dir

log = logging.getLogger(__name__)

KEY_BITS = 2048
# Fields that say who wrote what to whom and how to read it. Only those present are
# signed; From and Subject are listed once more than they occur ("oversigned") so that
# nobody on the way can add a second one that some readers would show instead.
SIGNED_FIELDS = (
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"in-reply-to",
    b"references",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
)
OVERSIGNED_FIELDS = (b"from", b"subject")


def our_domains(cfg: Config) -> tuple[str, ...]:
    """The domains whose mail govmail signs: the main domain, then the alias domains."""
    return (cfg.domain, *(d for d in cfg.alias_domains if d != cfg.domain))


def key_path(cfg: Config, domain: str) -> Path:
    """Where the private key (PEM) of ``domain`` for the configured selector lives."""
    return cfg.dkim_dir / f"{domain}.{cfg.dkim.selector}.key"


def ensure_keys(cfg: Config) -> list[str]:
    """Create the missing keys of our domains; returns the domains that got a new one.

    Idempotent and safe against a crash or a second process doing the same: each key
    is written to a temporary file, fsynced, then linked into place only if no key is
    there yet, so an existing key (already published in DNS) is never replaced.
    """
    created = []
    for domain in our_domains(cfg):
        path = key_path(cfg, domain)
        if path.exists():
            continue
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if _write_new_key(path):
            created.append(domain)
            log.info("created DKIM key %s; publish it: govmail dns records", path)
    return created


def _write_new_key(path: Path) -> bool:
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # PKCS#1, as opendkim writes
        serialization.NoEncryption(),
    )
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        if os.geteuid() == 0:
            # Made by root (say, 'govmail dns records' run from a root shell): the key
            # belongs to whoever owns the data directory, who runs 'govmail serve'.
            owner = path.parent.parent.stat()
            os.fchown(fd, owner.st_uid, owner.st_gid)
            os.chown(path.parent, owner.st_uid, owner.st_gid)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temp, path)  # unlike rename, fails rather than replace a key
        except FileExistsError:
            return False
        fsync_dir(path.parent)
        return True
    finally:
        os.unlink(temp)


def public_key_record(cfg: Config, domain: str) -> str:
    """The TXT value to publish at ``<selector>._domainkey.<domain>``: "v=DKIM1; k=rsa; p=…".

    Raises NotFound when the domain has no key (``govmail init``/``serve`` create them),
    InvalidInput when its file is not a key.
    """
    try:
        pem = key_path(cfg, domain).read_bytes()
    except FileNotFoundError:
        raise NotFound(
            f"Chưa có khóa DKIM cho {domain} ({key_path(cfg, domain)}).",
            f"No DKIM key for {domain} ({key_path(cfg, domain)}).",
        ) from None
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(
            f"Khóa DKIM {key_path(cfg, domain)} bị hỏng: {exc}",
            f"The DKIM key {key_path(cfg, domain)} is damaged: {exc}",
        ) from None
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode('ascii')}"


class Signer:
    """Signs outgoing mail whose From: is in one of our domains, with that domain's key."""

    def __init__(self, keys: dict[str, bytes], selector: str, *, enabled: bool = True) -> None:
        self._keys = keys  # domain -> PEM private key
        self._selector = selector.encode("ascii")
        self._enabled = enabled

    @classmethod
    def from_config(cls, cfg: Config) -> Signer:
        """Load the keys of our domains from ``cfg.dkim_dir``; never raises: a domain
        without a usable key is named in one warning and its mail goes out unsigned."""
        keys: dict[str, bytes] = {}
        missing: list[str] = []
        for domain in our_domains(cfg):
            path = key_path(cfg, domain)
            try:
                pem = path.read_bytes()
                # Parsed once here so that a damaged file shows at start, not per message.
                if not isinstance(
                    serialization.load_pem_private_key(pem, password=None), rsa.RSAPrivateKey
                ):
                    raise ValueError("not an RSA key")
            except (OSError, ValueError, TypeError) as exc:
                missing.append(f"{domain} ({path}: {exc})")
                continue
            keys[domain] = pem
        if missing and cfg.dkim.sign:
            log.warning("DKIM: mail from these domains goes out unsigned: %s", "; ".join(missing))
        return cls(keys, cfg.dkim.selector, enabled=cfg.dkim.sign)

    def sign(self, message: bytes) -> bytes:
        """The ``DKIM-Signature: …\\r\\n`` field to put in front of ``message``; b"" when
        signing is off, the From: domain is not ours or has no key."""
        if not self._enabled:
            return b""
        authors = header_addresses(message, "from")
        domains = {a.rpartition("@")[2] for a in authors}
        if len(domains) != 1:
            return b""  # no author, or several in different domains: no one key speaks for all
        domain = domains.pop()
        key = self._keys.get(domain)
        if key is None:
            return b""
        try:
            return bytes(
                dkim.sign(
                    message,
                    self._selector,
                    domain.encode("ascii"),
                    key,
                    canonicalize=(b"relaxed", b"relaxed"),
                    signature_algorithm=b"rsa-sha256",
                    include_headers=_fields_to_sign(message),
                    linesep=b"\r\n",
                )
            )
        except dkim.DKIMException as exc:
            log.warning("DKIM: message left unsigned: %s", exc)
            return b""


def openssl_pkcs1_sign(digest: Any, private_key: dict[str, int]) -> bytes:
    """dkimpy's RSASSA-PKCS1-v1_5 signing step done by OpenSSL (``cryptography``).

    dkimpy does the RSA arithmetic in pure Python: 6 ms of a signature's 6.3 ms, holding
    the GIL, which capped a process at about 160 signed messages a second. PKCS #1 v1.5
    signatures are deterministic, so OpenSSL gives the same bytes (a test compares them)
    in 0.2 ms. dkimpy keeps canonicalisation, the field list and the header's form.
    """
    key = _openssl_key(tuple(private_key[name] for name in _KEY_PARTS))
    algorithm = hashes.SHA256() if digest.name == "sha256" else hashes.SHA1()
    return key.sign(digest.digest(), padding.PKCS1v15(), Prehashed(algorithm))


_KEY_PARTS = (
    "modulus",
    "publicExponent",
    "privateExponent",
    "prime1",
    "prime2",
    "exponent1",
    "exponent2",
    "coefficient",
)


@functools.lru_cache(maxsize=64)
def _openssl_key(parts: tuple[int, ...]) -> rsa.RSAPrivateKey:
    n, e, d, p, q, dmp1, dmq1, iqmp = parts
    numbers = rsa.RSAPrivateNumbers(p, q, d, dmp1, dmq1, iqmp, rsa.RSAPublicNumbers(e, n))
    return numbers.private_key()


def openssl_pkcs1_verify(digest: Any, signature: bytes, public_key: dict[str, int]) -> bool:
    """dkimpy's RSASSA-PKCS1-v1_5 verification step done by OpenSSL: whether ``signature``
    signs ``digest``.

    dkimpy's own is a pure-Python pow() with the modulus and exponent of whatever key a
    sender publishes: an 8192-bit modulus with a huge exponent costs a second of CPU per
    signature, holding the GIL. OpenSSL takes microseconds and refuses absurd keys
    (KeyFormatError: the caller's permerror). A test compares both on good and bad
    signatures.
    """
    try:
        key = _openssl_public_key(public_key["modulus"], public_key["publicExponent"])
    except ValueError as exc:
        raise dkim.KeyFormatError(f"unusable RSA public key: {exc}") from None
    algorithm = hashes.SHA256() if digest.name == "sha256" else hashes.SHA1()
    try:
        key.verify(signature, digest.digest(), padding.PKCS1v15(), Prehashed(algorithm))
    except InvalidSignature:
        return False
    return True


@functools.lru_cache(maxsize=256)
def _openssl_public_key(modulus: int, exponent: int) -> rsa.RSAPublicKey:
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()


# Relaxed body canonicalisation drops the blanks that end each line. dkimpy does it with
# re.sub(b"[\t ]+\r\n"), which retries a run of blanks not ending a line from each of
# its bytes: 64 KB of spaces (one line, as our SMTP reader allows) cost seconds, 1 MB
# of them eleven minutes, for any message sent or received. Matching only where a run
# starts, without backtracking, gives the same bytes in linear time.
_TRAILING_BLANKS = re.compile(rb"(?<![\t ])[\t ]++\r\n")


def strip_trailing_whitespace(content: bytes) -> bytes:
    """dkimpy's ``strip_trailing_whitespace`` in linear time (a test compares them)."""
    return _TRAILING_BLANKS.sub(b"\r\n", content)


# dkimpy looks these functions up in their modules at each use. It also parses the PEM
# key (pure-Python ASN.1) for every signature: the same few keys, parsed once.
dkim.parse_pem_private_key = functools.lru_cache(maxsize=64)(dkim.crypto.parse_pem_private_key)
dkim.RSASSA_PKCS1_v1_5_sign = openssl_pkcs1_sign
dkim.RSASSA_PKCS1_v1_5_verify = openssl_pkcs1_verify
dkim.canonicalization.strip_trailing_whitespace = strip_trailing_whitespace


def _fields_to_sign(message: bytes) -> list[bytes]:
    headers, _body = dkim.rfc822_parse(message)
    present = [name.lower() for name, _value in headers if name.lower() in SIGNED_FIELDS]
    return present + [name for name in OVERSIGNED_FIELDS if name in present]
