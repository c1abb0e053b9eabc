"""A test PKI built with cryptography, and PDFs signed by pyHanko with it (valid, expired,
revoked, unknown CA, modified after signing, signer + agency seal)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.corpus.documents import pdf

if TYPE_CHECKING:
    from pyhanko.sign.signers import SimpleSigner

KINDS = ("valid", "expired", "revoked", "unknown_ca", "modified", "two_signatures")

_DER = serialization.Encoding.DER

# Declared in every signer certificate: pyHanko's soft-fail revocation mode only consults
# a (cached, operator-given) CRL for certificates that name a distribution point, as real
# Vietnamese CA certificates do. Never fetched: validation runs with allow_fetching=False.
CRL_URL = "http://crl.govmail.invalid/root.crl"


@dataclass(frozen=True)
class Identity:
    """One signing certificate with its private key (DER) and the name shown to users."""

    name: str
    serial: int
    cert_der: bytes
    key_der: bytes
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True)
class Pki:
    """The test PKI: a root CA with its CRL, a second root nobody configures, and the
    signing identities ``valid`` (Nguyễn Văn An), ``seal`` (the agency), ``expired``,
    ``revoked`` (listed in ``crl_der``), ``unknown_ca`` (issued by the other root),
    ``not_yet_valid`` (valid from next month) and ``digital_signature_only`` (key usage
    without nonRepudiation). ``root_key_der`` lets a test issue other CRLs."""

    root_pem: bytes
    root_key_der: bytes
    crl_der: bytes
    unknown_root_pem: bytes
    identities: dict[str, Identity]

    @property
    def crl_pem(self) -> bytes:
        body = x509.load_der_x509_crl(self.crl_der)
        return body.public_bytes(serialization.Encoding.PEM)

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write the root (PEM) and the CRL (DER) into ``directory``, as an operator
        would configure them; returns (root path, CRL path)."""
        root = directory / "root-ca.pem"
        crl = directory / "root-ca.crl"
        root.write_bytes(self.root_pem)
        crl.write_bytes(self.crl_der)
        return root, crl


def _name(common_name: str, organisation: str = "govmail thử nghiệm") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _ca(common_name: str, now: datetime) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _key()
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=3650))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _signer(
    common_name: str,
    ca_key: rsa.RSAPrivateKey,
    ca_cert: x509.Certificate,
    not_before: datetime,
    not_after: datetime,
    *,
    non_repudiation: bool = True,
) -> Identity:
    key = _key()
    serial = x509.random_serial_number()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=non_repudiation,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        full_name=[x509.UniformResourceIdentifier(CRL_URL)],
                        relative_name=None,
                        reasons=None,
                        crl_issuer=None,
                    )
                ]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return Identity(
        name=common_name,
        serial=serial,
        cert_der=cert.public_bytes(serialization.Encoding.DER),
        key_der=key_der,
        not_before=not_before,
        not_after=not_after,
    )


@functools.cache
def make_pki() -> Pki:
    """The process-wide test PKI (RSA key generation is slow, so it is built once)."""
    now = datetime.now(UTC).replace(microsecond=0)
    root_key, root = _ca("CA gốc thử nghiệm govmail", now)
    other_key, other_root = _ca("CA lạ không được cấu hình", now)
    current = (now - timedelta(days=365), now + timedelta(days=730))
    identities = {
        "valid": _signer("Nguyễn Văn An", root_key, root, *current),
        "seal": _signer("Ủy ban nhân dân tỉnh Thử Nghiệm", root_key, root, *current),
        "expired": _signer(
            "Lê Thị Hết Hạn", root_key, root, now - timedelta(days=1100), now - timedelta(days=370)
        ),
        "not_yet_valid": _signer(
            "Đỗ Văn Chưa", root_key, root, now + timedelta(days=30), now + timedelta(days=760)
        ),
        "revoked": _signer("Phạm Văn Thu Hồi", root_key, root, *current),
        "unknown_ca": _signer("Trần Văn Lạ", other_key, other_root, *current),
        "digital_signature_only": _signer(
            "Hoàng Thị Ký Số", root_key, root, *current, non_repudiation=False
        ),
    }
    pki = Pki(
        root_pem=root.public_bytes(serialization.Encoding.PEM),
        root_key_der=root_key.private_bytes(
            _DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        crl_der=b"",
        unknown_root_pem=other_root.public_bytes(serialization.Encoding.PEM),
        identities=identities,
    )
    return dataclasses.replace(pki, crl_der=issue_crl(pki, ["revoked"]))


def issue_crl(
    pki: Pki,
    revoked: list[str],
    *,
    last_update: datetime | None = None,
    next_update: datetime | None = None,
) -> bytes:
    """A CRL (DER) of the test root revoking the ``revoked`` identities a month ago;
    by default issued yesterday and fresh for ten years."""
    now = datetime.now(UTC).replace(microsecond=0)
    root_key = serialization.load_der_private_key(pki.root_key_der, password=None)
    if not isinstance(root_key, rsa.RSAPrivateKey):
        raise TypeError("the test root key is RSA")
    root = x509.load_pem_x509_certificate(pki.root_pem)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(root.subject)
        .last_update(last_update or now - timedelta(days=1))
        .next_update(next_update or now + timedelta(days=3650))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
            critical=False,
        )
    )
    for name in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(pki.identities[name].serial)
            .revocation_date(now - timedelta(days=30))
            .build()
        )
    return builder.sign(root_key, hashes.SHA256()).public_bytes(_DER)


def _pyhanko_signer(pki: Pki, identity: Identity) -> SimpleSigner:
    return _signer_for(identity.cert_der, identity.key_der, (pki.root_pem, pki.unknown_root_pem))


@functools.cache
def _signer_for(cert_der: bytes, key_der: bytes, issuer_pems: tuple[bytes, ...]) -> SimpleSigner:
    # Cached: loading an RSA key with cryptography costs ~50 ms (consistency checks).
    from asn1crypto import keys  # type: ignore[import-untyped]
    from asn1crypto import x509 as asn1_x509
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    issuers = [
        asn1_x509.Certificate.load(x509.load_pem_x509_certificate(pem).public_bytes(_DER))
        for pem in issuer_pems
    ]
    return signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(cert_der),
        signing_key=keys.PrivateKeyInfo.load(key_der),
        cert_registry=SimpleCertificateStore.from_certs(issuers),  # type: ignore[no-untyped-call]
    )


def sign(
    data: bytes,
    pki: Pki,
    identity: str,
    field: str = "Signature1",
    *,
    md_algorithm: str = "sha256",
) -> bytes:
    """``data`` (a PDF) with one more approval signature by ``pki.identities[identity]``
    in a new signature field ``field``, appended as an incremental update;
    ``md_algorithm="sha1"`` makes the kind of signature old tools produced."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers

    signer = _pyhanko_signer(pki, pki.identities[identity])
    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    out = signers.sign_pdf(
        writer,
        signers.PdfSignatureMetadata(field_name=field, md_algorithm=md_algorithm),
        signer=signer,
        bytes_reserved=8192,  # skips pyHanko's dry-run size estimate
    )
    return bytes(out.getvalue())


def sign_at(data: bytes, pki: Pki, identity: str, when: datetime) -> bytes:
    """Like :func:`sign`, but the signature claims it was made at ``when`` (signingTime
    attribute and /M). pyHanko's high-level signer always stamps the current time, so
    this uses its documented low-level PdfCMSEmbedder protocol; it is how a certificate
    that has since expired signed while it was still valid."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.signers import cms_embedder
    from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes

    signer = _pyhanko_signer(pki, pki.identities[identity])
    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    cms_writer = cms_embedder.PdfCMSEmbedder().write_cms(field_name="Signature1", writer=writer)
    next(cms_writer)
    placeholder = signers.SignatureObject(timestamp=when, bytes_reserved=8192)
    cms_writer.send(cms_embedder.SigObjSetup(sig_placeholder=placeholder))
    prepared, output = cms_writer.send(cms_embedder.SigIOSetup(md_algorithm="sha256"))
    cms = asyncio.run(
        signer.async_sign(
            prepared.document_digest,
            "sha256",
            signed_attr_settings=PdfCMSSignedAttributes(signing_time=when),
        )
    )
    cms_writer.send(cms)
    return bytes(output.getvalue())


def modify_page(data: bytes, text: str = "Noi dung da bi sua sau khi ky") -> bytes:
    """``data`` with the first page's content replaced in an incremental update: what a
    forger does to a signed decision, and what no signature permits. ``text`` is ASCII."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    page_ref = writer.root["/Pages"]["/Kids"].raw_get(0)
    page = page_ref.get_object()
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("ascii")
    page["/Contents"] = writer.add_object(generic.StreamObject(stream_data=content))
    writer.mark_update(page_ref)
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    return out.getvalue()


DECISION = ("QUYẾT ĐỊNH", "Số: 12/QĐ-UBND", "Về việc thử nghiệm ký số")


@functools.lru_cache(maxsize=32)
def _base_pdf(lines: tuple[str, ...]) -> bytes:
    return pdf(list(lines))


def signed_pdf(pki: Pki, kind: str, lines: list[str] | None = None) -> bytes:
    """A PDF showing ``lines`` (a short decision by default), signed as ``kind`` says:
    one of :data:`KINDS`, or the name of any identity in ``pki``."""
    base = _base_pdf(tuple(lines) if lines is not None else DECISION)
    if kind == "modified":
        return modify_page(sign(base, pki, "valid"))
    if kind == "two_signatures":
        return sign(sign(base, pki, "valid"), pki, "seal", field="Signature2")
    if kind == "expired":
        identity = pki.identities["expired"]
        return sign_at(base, pki, "expired", identity.not_after - timedelta(days=30))
    if kind in pki.identities:
        return sign(base, pki, kind)
    raise ValueError(f"unknown signed PDF kind {kind!r}")
