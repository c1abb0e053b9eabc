"""R16 digital signatures: validate the signatures in a PDF attachment with pyHanko against
the operator's trust roots and CRLs, and word the result for a header and for people."""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import threading
import types
import unicodedata
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509 as pyca_x509
from cryptography.hazmat.primitives.serialization import Encoding

if TYPE_CHECKING:
    from pyhanko.sign.validation import EmbeddedPdfSignature, PdfSignatureStatus
    from pyhanko_certvalidator import ValidationContext

from govmail.core.errors import InvalidInput

VALID = "valid"
INVALID = "invalid"
# Why a signature is not valid, most specific first in the order they are judged.
REASONS = (
    "malformed",  # the PDF cannot be read
    "broken",  # the signature value/digest is wrong, or the signature cannot be parsed
    "modified",  # the file was changed after signing in a way the signature does not allow
    "revoked",  # the certificate is listed in a configured CRL
    "expired",  # validation time is past a certificate's not_after
    "not_yet_valid",  # validation time is before a certificate's not_before
    "untrusted",  # the chain does not reach a configured root (or is otherwise refused)
)

_REASON_TEXT: dict[str, tuple[str, str]] = {
    "malformed": (
        "tệp PDF bị hỏng, không đọc được chữ ký",
        "the PDF file is damaged and its signatures cannot be read",
    ),
    "broken": (
        "chữ ký không khớp với nội dung tệp hoặc bị hỏng",
        "the signature does not match the file's content or is damaged",
    ),
    "modified": (
        "tệp đã bị sửa đổi sau khi ký",
        "the file was changed after it was signed",
    ),
    "revoked": (
        "chứng thư số đã bị thu hồi",
        "the signing certificate has been revoked",
    ),
    "expired": (
        "chứng thư số đã hết hạn",
        "the signing certificate has expired",
    ),
    "not_yet_valid": (
        "chứng thư số chưa đến thời gian có hiệu lực",
        "the signing certificate is not valid yet",
    ),
    "untrusted": (
        "chứng thư số không do tổ chức chứng thực được tin cậy cấp",
        "the signing certificate was not issued by a trusted certification authority",
    ),
}

# The mark every PDF signature dictionary carries in the clear: without it there is
# nothing to validate, and an unsigned 2 MB PDF costs one byte search.
_SIGNATURE_MARK = b"/ByteRange"
# Hostile-input bounds: signatures validated per file (government PDFs carry one to a
# few), and revisions past which pyHanko's per-revision diff analysis is skipped (a
# signature that does not cover the whole file then counts as "modified").
MAX_SIGNATURES = 20
MAX_REVISIONS_FOR_DIFF = 100
# Longest filename / signer name put into a header or a sentence.
MAX_FIELD_CHARS = 200


@functools.cache
def _hanko() -> Any:
    """pyHanko, imported on first use: it costs ~0.8 s, and only a PDF that carries a
    signature needs it (every server start and CLI command would pay it otherwise)."""
    from pyhanko.keys import load_certs_from_pemder_data
    from pyhanko.pdf_utils.crypt.api import AuthStatus
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.ades.report import AdESIndeterminate
    from pyhanko.sign.fields import enumerate_sig_fields
    from pyhanko.sign.validation import (
        EmbeddedPdfSignature,
        SignatureCoverageLevel,
        validate_pdf_signature,
    )
    from pyhanko.sign.validation.settings import KeyUsageConstraints
    from pyhanko_certvalidator import ValidationContext
    from pyhanko_certvalidator.policy_decl import (
        CertRevTrustPolicy,
        FreshnessReqType,
        RevocationCheckingPolicy,
    )

    return types.SimpleNamespace(
        load_certs_from_pemder_data=load_certs_from_pemder_data,
        AuthStatus=AuthStatus,
        PdfFileReader=PdfFileReader,
        AdESIndeterminate=AdESIndeterminate,
        enumerate_sig_fields=enumerate_sig_fields,
        EmbeddedPdfSignature=EmbeddedPdfSignature,
        SignatureCoverageLevel=SignatureCoverageLevel,
        validate_pdf_signature=validate_pdf_signature,
        ValidationContext=ValidationContext,
        # Vietnamese CAs issue signing certificates with nonRepudiation, with
        # digitalSignature, or with both. Either bit means "issued for signing";
        # pyHanko's default (nonRepudiation only) would call a correct signature by a
        # digitalSignature-only certificate "untrusted", and a mail gateway that only
        # informs must not cry wolf. What is trusted is still decided by the chain to a
        # configured root. No extended key usage is required.
        key_usage=KeyUsageConstraints(
            key_usage={"non_repudiation", "digital_signature"}, match_all_key_usages=False
        ),
        # Soft-fail revocation: a certificate whose CA has no configured CRL is judged
        # without one (revoked-if-known); a configured CRL is consulted for certificates
        # that declare a distribution point, as Vietnamese CA certificates do. A
        # configured CRL counts however old it is: the operator chose it, and a lapsed
        # nextUpdate must not turn every signature of that CA "untrusted"
        # (TrustStore.stale_crls tells the operator to refresh it).
        revocation=CertRevTrustPolicy(
            RevocationCheckingPolicy.from_legacy("soft-fail"),
            freshness=timedelta(days=36500),
            freshness_req_type=FreshnessReqType.MAX_DIFF_REVOCATION_VALIDATION,
        ),
    )


_VIETNAM = timezone(timedelta(hours=7), "ICT")

# pyHanko reports every problem it finds in a document as a log record with a traceback,
# and may emit Python warnings; for us those are results, not events. Both switches are
# process-wide, so the quiet section is serialised (validation is GIL-bound anyway).
_QUIET_LOCK = threading.Lock()
_PYHANKO_LOGGERS = ("pyhanko", "pyhanko_certvalidator")


@dataclass(frozen=True)
class TrustStore:
    """The operator's trust roots (DER certificates) and CRLs (DER), e.g. the national
    root CA, its re-issued successor and the VGCA root. Empty: every signature is
    "untrusted"."""

    roots: tuple[bytes, ...] = ()
    crls: tuple[bytes, ...] = ()
    crl_names: tuple[str, ...] = ()  # where each CRL came from, for stale_crls()

    @classmethod
    def load(cls, roots: Sequence[Path], crls: Sequence[Path] = ()) -> TrustStore:
        """Read root certificates (PEM files, several per file allowed; DER accepted too)
        and CRLs (DER or PEM). Raises InvalidInput naming the file that is missing,
        unreadable, or holds no certificate / no CRL."""
        root_ders: list[bytes] = []
        for path in roots:
            root_ders.extend(_parse_certificates(_read(path), str(path)))
        crl_ders = [_parse_crl(_read(path), str(path)) for path in crls]
        return cls(tuple(root_ders), tuple(crl_ders), tuple(str(path) for path in crls))

    def validation_context(self, at: datetime | None = None) -> ValidationContext:
        """A fresh pyHanko ValidationContext for one signature (contexts cache paths and
        registered certificates, so they are not shared): offline, given CRLs only."""
        ph = _hanko()
        context: ValidationContext = ph.ValidationContext(
            trust_roots=[
                cert for der in self.roots for cert in ph.load_certs_from_pemder_data(der)
            ],
            crls=list(self.crls),
            moment=at,
            allow_fetching=False,
            revinfo_policy=ph.revocation,
        )
        return context

    def stale_crls(self, at: datetime | None = None) -> list[str]:
        """Names of the configured CRLs whose nextUpdate has passed (time to refresh)."""
        moment = _aware(at)
        stale = []
        for index, der in enumerate(self.crls):
            name = self.crl_names[index] if index < len(self.crl_names) else f"CRL {index + 1}"
            next_update = pyca_x509.load_der_x509_crl(der).next_update_utc
            if next_update is not None and next_update < moment:
                stale.append(name)
        return stale


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(
            f"Không đọc được tệp chứng thư/CRL {path}: {exc.strerror or exc}",
            f"Cannot read certificate/CRL file {path}: {exc.strerror or exc}",
            file=str(path),
        ) from exc


def _parse_certificates(data: bytes, name: str) -> list[bytes]:
    try:
        if b"-----BEGIN" in data:
            certs = pyca_x509.load_pem_x509_certificates(data)
        else:
            certs = [pyca_x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise InvalidInput(
            f"Tệp {name} không chứa chứng thư số (định dạng PEM hoặc DER) hợp lệ",
            f"File {name} holds no valid PEM or DER certificate",
            file=name,
        ) from exc
    return [cert.public_bytes(Encoding.DER) for cert in certs]


def _parse_crl(data: bytes, name: str) -> bytes:
    try:
        if b"-----BEGIN" in data:
            crl = pyca_x509.load_pem_x509_crl(data)
        else:
            crl = pyca_x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise InvalidInput(
            f"Tệp {name} không phải danh sách chứng thư bị thu hồi (CRL) hợp lệ",
            f"File {name} is not a valid certificate revocation list (CRL)",
            file=name,
        ) from exc
    return crl.public_bytes(Encoding.DER)


@dataclass(frozen=True)
class SignatureResult:
    """The verdict on one signature in one PDF attachment."""

    filename: str
    status: str  # VALID | INVALID
    reason: str | None  # one of REASONS when INVALID, None when VALID
    signer: str  # the signer certificate's subject common name, "" if unknown
    signed_at: datetime | None  # trusted timestamp, else the time the signer claims

    def __post_init__(self) -> None:
        if self.status == VALID and self.reason is None:
            return
        if self.status == INVALID and self.reason in REASONS:
            return
        raise ValueError(f"inconsistent signature result {self.status!r}/{self.reason!r}")

    def header_value(self) -> str:
        """The X-Govmail-Signature field body: ``valid; signer="…"; file="…"`` or
        ``invalid; reason=expired; signer="…"; file="…"``. Non-ASCII stays as text (the
        caller encodes the field); quotes and backslashes are escaped, control and
        line-breaking characters removed."""
        head = VALID if self.status == VALID else f"{INVALID}; reason={self.reason}"
        return f"{head}; signer={_quoted(self.signer)}; file={_quoted(self.filename)}"

    @property
    def vi(self) -> str:
        """One Vietnamese sentence for the sender and the webmail."""
        file = f"“{_clean(self.filename)}”"
        if self.status == VALID:
            by = f" của {_clean(self.signer)}" if self.signer else ""
            when = ""
            if self.signed_at is not None:
                local = self.signed_at.astimezone(_VIETNAM)
                when = f", ký lúc {local:%H:%M} ngày {local:%d/%m/%Y}"
            return f"Chữ ký số hợp lệ{by} trên tệp {file}{when}."
        by = f" của {_clean(self.signer)}" if self.signer else ""
        return f"Chữ ký số{by} trên tệp {file} không hợp lệ: {_reason_text(self.reason)[0]}."

    @property
    def en(self) -> str:
        """The same sentence in English."""
        file = f"“{_clean(self.filename)}”"
        by = f" by {_clean(self.signer)}" if self.signer else ""
        if self.status == VALID:
            when = ""
            if self.signed_at is not None:
                local = self.signed_at.astimezone(_VIETNAM)
                when = f", signed {local:%Y-%m-%d %H:%M} (UTC+7)"
            return f"Valid digital signature{by} on {file}{when}."
        return f"The digital signature{by} on {file} is not valid: {_reason_text(self.reason)[1]}."


def _reason_text(reason: str | None) -> tuple[str, str]:
    return _REASON_TEXT[reason or "broken"]


# Removed from names before they reach a header or a sentence: controls (CR/LF would
# split the header), format characters (bidi overrides disguise "…fdp.exe" as "…exe.pdf"),
# surrogates (undecodable bytes in a filename), and the Unicode line/paragraph separators.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _clean(text: str) -> str:
    """``text`` in NFC without the _DROPPED_CATEGORIES, shortened to MAX_FIELD_CHARS."""
    normal = unicodedata.normalize("NFC", text)
    kept = "".join(c for c in normal if unicodedata.category(c) not in _DROPPED_CATEGORIES)
    return kept if len(kept) <= MAX_FIELD_CHARS else kept[: MAX_FIELD_CHARS - 1] + "…"


def _quoted(text: str) -> str:
    return '"' + _clean(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def validate_pdf(
    data: bytes, filename: str, trust: TrustStore, *, at: datetime | None = None
) -> list[SignatureResult]:
    """One result per signature in the PDF ``data``, in signing order (a government
    document usually has two: the signer, then the agency seal); [] when it has none.
    Validation happens at ``at`` (default now; a naive time is UTC), offline.

    Never raises on any input: an unreadable file that shows a signature gives one
    "malformed" result, one that shows none gives []. Document timestamps are not
    reported. Synchronous (pyHanko's sync entry points run their own event loop):
    call it from a worker thread, not from a running event loop (RuntimeError)."""
    if _SIGNATURE_MARK not in data:
        return []
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("validate_pdf is synchronous: run it in a worker thread")
    moment = _aware(at)
    with _quiet():
        return _validate(data, filename, trust, moment)


def _validate(
    data: bytes, filename: str, trust: TrustStore, moment: datetime
) -> list[SignatureResult]:
    malformed = SignatureResult(filename, INVALID, "malformed", "", None)
    ph = _hanko()
    try:
        reader = ph.PdfFileReader(io.BytesIO(data))
        if reader.encrypted and reader.decrypt("").status == ph.AuthStatus.FAILED:
            return [malformed]
        fields = list(ph.enumerate_sig_fields(reader, filled_status=True))
        skip_diff = reader.xrefs.total_revisions > MAX_REVISIONS_FOR_DIFF
    except Exception:
        # pyHanko raises many types (PdfReadError, KeyError, ValueError, …) on hostile
        # input; all of them mean the same thing here.
        return [malformed]

    found: list[tuple[int, SignatureResult]] = []
    for fq_name, _value, field in fields[:MAX_SIGNATURES]:
        try:
            embedded = ph.EmbeddedPdfSignature(reader, field, fq_name)
        except Exception:
            found.append((1 << 30, SignatureResult(filename, INVALID, "broken", "", None)))
            continue
        if embedded.sig_object_type != "/Sig":
            continue  # a document timestamp, not somebody's signature
        found.append(
            (embedded.signed_revision, _judge_one(embedded, filename, trust, moment, skip_diff))
        )
    results = [result for _, result in sorted(found, key=lambda item: item[0])]
    if len(fields) > MAX_SIGNATURES:
        # More signatures than we check: say so rather than drop them silently.
        results.append(malformed)
    return results


def _judge_one(
    embedded: EmbeddedPdfSignature,
    filename: str,
    trust: TrustStore,
    moment: datetime,
    skip_diff: bool,
) -> SignatureResult:
    ph = _hanko()
    try:
        status = ph.validate_pdf_signature(
            embedded,
            signer_validation_context=trust.validation_context(moment),
            key_usage_settings=ph.key_usage,
            skip_diff=skip_diff,
        )
    except Exception:
        signer, claimed = _safe_signer(embedded)
        return SignatureResult(filename, INVALID, "broken", signer, claimed)
    reason = _reason(status, moment)
    return SignatureResult(
        filename,
        VALID if reason is None else INVALID,
        reason,
        _common_name(status.signing_cert),
        _signed_at(status),
    )


def _reason(status: PdfSignatureStatus, moment: datetime) -> str | None:
    """None when the signature is valid, else the first of REASONS that applies."""
    coverage_level = _hanko().SignatureCoverageLevel
    indication = _hanko().AdESIndeterminate
    if not (status.intact and status.valid):
        return "broken"
    if status.coverage is None or status.coverage == coverage_level.UNCLEAR:
        return "broken"
    if status.coverage != coverage_level.ENTIRE_FILE and not status.docmdp_ok:
        # Covers only an earlier revision and the later ones are not signatures or form
        # filling (or were not analysed): changed after signing.
        return "modified"
    indic = status.trust_problem_indic
    if status.revoked or indic in (
        indication.REVOKED_NO_POE,
        indication.REVOKED_CA_NO_POE,
    ):
        return "revoked"
    if indic is None and status.trusted and status.seed_value_ok:
        return None
    if indic in (
        indication.CRYPTO_CONSTRAINTS_FAILURE,
        indication.CRYPTO_CONSTRAINTS_FAILURE_NO_POE,
    ):
        return "broken"  # a banned algorithm (MD5, SHA-1): the signature proves nothing
    path = status.validation_path
    if indic != indication.NO_CERTIFICATE_CHAIN_FOUND and path is not None:
        # The chain reaches a configured root: say which certificate's dates failed.
        for cert in path.iter_certs(include_root=False):
            if moment > cert.not_valid_after:
                return "expired"
            if moment < cert.not_valid_before:
                return "not_yet_valid"
    return "untrusted"


def _signed_at(status: PdfSignatureStatus) -> datetime | None:
    stamp = status.timestamp_validity
    if stamp is not None and stamp.intact and stamp.valid and stamp.trusted:
        return stamp.timestamp
    return status.signer_reported_dt


def _safe_signer(embedded: EmbeddedPdfSignature) -> tuple[str, datetime | None]:
    try:
        return _common_name(embedded.signer_cert), embedded.self_reported_timestamp
    except Exception:
        return "", None


def _common_name(cert: Any) -> str:
    try:
        name = cert.subject.native.get("common_name", "")
    except Exception:
        return ""
    if isinstance(name, list):
        name = name[0] if name else ""
    return unicodedata.normalize("NFC", str(name))


def _aware(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    return at if at.utcoffset() is not None else at.replace(tzinfo=UTC)


@contextmanager
def _quiet() -> Iterator[None]:
    with _QUIET_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loggers = [logging.getLogger(name) for name in _PYHANKO_LOGGERS]
        levels = [logger.level for logger in loggers]
        for logger in loggers:
            logger.setLevel(logging.CRITICAL + 1)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)
