"""R16: PDF signatures validated against the operator's roots and CRLs — each way a
signature can fail is told apart, and the verdict is worded safely for a header."""

from __future__ import annotations

import logging
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from govmail.core.errors import InvalidInput
from govmail.policy import signatures
from govmail.policy.signatures import SignatureResult, TrustStore, validate_pdf
from tests.corpus import documents, signing
from tests.corpus.signing import Pki


@pytest.fixture(scope="module")
def pki() -> Pki:
    return signing.make_pki()


@pytest.fixture(scope="module")
def trust_files(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return pki.write(tmp_path_factory.mktemp("trust"))


@pytest.fixture(scope="module")
def trust(trust_files: tuple[Path, Path]) -> TrustStore:
    root, crl = trust_files
    return TrustStore.load([root], [crl])


_DOCS: dict[str, bytes] = {}


def doc(pki: Pki, kind: str) -> bytes:
    """The signed PDF of ``kind``, built once per test run (signing takes ~70 ms)."""
    if kind not in _DOCS:
        _DOCS[kind] = signing.signed_pdf(pki, kind)
    return _DOCS[kind]


def verdicts(results: list[SignatureResult]) -> list[tuple[str, str | None, str]]:
    return [(r.status, r.reason, r.signer) for r in results]


def byte_range(data: bytes) -> tuple[int, int, int, int]:
    """The /ByteRange of the last signature: [0, gap start, gap end, tail length]."""
    found = re.findall(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", data)
    a, b, c, d = (int(x) for x in found[-1])
    return a, b, c, d


# --- each kind of signed PDF gets its own verdict ----------------------------------------


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("valid", [("valid", None, "Nguyễn Văn An")]),
        ("expired", [("invalid", "expired", "Lê Thị Hết Hạn")]),
        ("not_yet_valid", [("invalid", "not_yet_valid", "Đỗ Văn Chưa")]),
        ("revoked", [("invalid", "revoked", "Phạm Văn Thu Hồi")]),
        ("unknown_ca", [("invalid", "untrusted", "Trần Văn Lạ")]),
        ("modified", [("invalid", "modified", "Nguyễn Văn An")]),
        (
            "two_signatures",
            [("valid", None, "Nguyễn Văn An"), ("valid", None, "Ủy ban nhân dân tỉnh Thử Nghiệm")],
        ),
        # Certificates with digitalSignature but without nonRepudiation sign too.
        ("digital_signature_only", [("valid", None, "Hoàng Thị Ký Số")]),
    ],
)
def test_each_kind_gets_its_verdict(
    pki: Pki, trust: TrustStore, kind: str, expected: list[tuple[str, str | None, str]]
) -> None:
    results = validate_pdf(doc(pki, kind), "Quyết định 12.pdf", trust)
    assert verdicts(results) == expected
    assert all(r.filename == "Quyết định 12.pdf" for r in results)


def test_valid_signature_reports_when_it_was_signed(pki: Pki, trust: TrustStore) -> None:
    (result,) = validate_pdf(doc(pki, "valid"), "a.pdf", trust)
    assert result.signed_at is not None
    assert abs(datetime.now(UTC) - result.signed_at) < timedelta(hours=1)


def test_expired_certificate_signed_while_it_was_valid(pki: Pki, trust: TrustStore) -> None:
    (result,) = validate_pdf(doc(pki, "expired"), "a.pdf", trust)
    identity = pki.identities["expired"]
    assert result.signed_at is not None
    assert identity.not_before < result.signed_at < identity.not_after


def test_empty_store_trusts_nobody(pki: Pki) -> None:
    results = validate_pdf(doc(pki, "two_signatures"), "a.pdf", TrustStore())
    assert [r.reason for r in results] == ["untrusted", "untrusted"]


def test_configuring_the_other_root_makes_its_signer_valid(pki: Pki, tmp_path: Path) -> None:
    both = tmp_path / "roots.pem"
    both.write_bytes(pki.root_pem + b"\n" + pki.unknown_root_pem)
    store = TrustStore.load([both])
    assert validate_pdf(doc(pki, "unknown_ca"), "a.pdf", store)[0].status == "valid"
    assert validate_pdf(doc(pki, "valid"), "a.pdf", store)[0].status == "valid"


def test_revocation_is_judged_only_when_known(pki: Pki, trust_files: tuple[Path, Path]) -> None:
    # Soft-fail: without the CA's CRL, a revoked certificate cannot be told from a good one.
    root, _ = trust_files
    no_crl = TrustStore.load([root])
    assert validate_pdf(doc(pki, "revoked"), "a.pdf", no_crl)[0].status == "valid"


def test_a_lapsed_crl_still_counts(pki: Pki, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    lapsed = signing.issue_crl(
        pki, ["revoked"], last_update=now - timedelta(days=60), next_update=now - timedelta(days=20)
    )
    (tmp_path / "root.pem").write_bytes(pki.root_pem)
    (tmp_path / "old.crl").write_bytes(lapsed)
    store = TrustStore.load([tmp_path / "root.pem"], [tmp_path / "old.crl"])
    assert validate_pdf(doc(pki, "revoked"), "a.pdf", store)[0].reason == "revoked"
    assert validate_pdf(doc(pki, "valid"), "a.pdf", store)[0].status == "valid"
    assert store.stale_crls() == [str(tmp_path / "old.crl")]


def test_fresh_crl_is_not_stale(trust: TrustStore) -> None:
    assert trust.stale_crls() == []


def test_validation_time_decides_expiry(pki: Pki, trust: TrustStore) -> None:
    valid_identity = pki.identities["valid"]
    later = valid_identity.not_after + timedelta(days=1)
    assert validate_pdf(doc(pki, "valid"), "a.pdf", trust, at=later)[0].reason == "expired"
    earlier = valid_identity.not_before - timedelta(days=1)
    assert validate_pdf(doc(pki, "valid"), "a.pdf", trust, at=earlier)[0].reason == (
        "not_yet_valid"
    )
    while_valid = pki.identities["expired"].not_after - timedelta(days=10)
    assert validate_pdf(doc(pki, "expired"), "a.pdf", trust, at=while_valid)[0].status == "valid"
    # A naive time is read as UTC rather than refused.
    naive = while_valid.replace(tzinfo=None)
    assert validate_pdf(doc(pki, "expired"), "a.pdf", trust, at=naive)[0].status == "valid"


# --- unsigned, damaged and hostile input ---------------------------------------------------


def test_unsigned_pdf_has_no_result(trust: TrustStore) -> None:
    assert validate_pdf(documents.pdf(["Báo cáo tuần"]), "bc.pdf", trust) == []


def test_garbage_has_no_result(trust: TrustStore) -> None:
    assert validate_pdf(b"\x00\xff" * 1000, "x.pdf", trust) == []
    assert validate_pdf(b"", "x.pdf", trust) == []
    assert validate_pdf(documents.windows_exe(), "x.pdf", trust) == []


def test_garbage_that_shows_a_signature_is_malformed(trust: TrustStore) -> None:
    results = validate_pdf(b"%PDF-1.7\n<< /ByteRange [0 1 2 3] >>", "x.pdf", trust)
    assert verdicts(results) == [("invalid", "malformed", "")]


@pytest.mark.parametrize(
    ("cut", "expected"),
    [
        # Only the final newline lost: still readable, but the signed bytes changed.
        (1, [("invalid", "broken", "Nguyễn Văn An")]),
        # The cross-reference table or trailer lost: unreadable.
        (30, [("invalid", "malformed", "")]),
        (200, [("invalid", "malformed", "")]),
    ],
)
def test_truncated_signed_pdf_is_malformed_or_broken(
    pki: Pki, trust: TrustStore, cut: int, expected: list[tuple[str, str | None, str]]
) -> None:
    data = doc(pki, "valid")
    assert verdicts(validate_pdf(data[:-cut], "a.pdf", trust)) == expected


def test_truncated_inside_the_signature_dictionary(pki: Pki, trust: TrustStore) -> None:
    data = doc(pki, "valid")
    mark = data.rindex(b"/ByteRange")
    # Cut after the /ByteRange entry: the file shows a signature it cannot support.
    results = validate_pdf(data[: mark + 40], "a.pdf", trust)
    assert verdicts(results) == [("invalid", "malformed", "")]
    # Cut before it (inside /Contents): nothing shows a signature any more.
    _, gap_start, _, _ = byte_range(data)
    assert validate_pdf(data[: gap_start + 100], "a.pdf", trust) == []


def test_content_changed_inside_the_signed_bytes_is_broken(pki: Pki, trust: TrustStore) -> None:
    data = doc(pki, "valid")
    assert data.startswith(b"%PDF-1.")
    changed = data[:7] + (b"4" if data[7:8] != b"4" else b"5") + data[8:]
    assert verdicts(validate_pdf(changed, "a.pdf", trust)) == [
        ("invalid", "broken", "Nguyễn Văn An")
    ]


def _with_bad_signature_value(data: bytes) -> bytes:
    from asn1crypto import cms

    _, gap_start, gap_end, _ = byte_range(data)
    hex_digits = data[gap_start + 1 : gap_end - 1]
    info = cms.ContentInfo.load(bytes.fromhex(hex_digits.decode()).rstrip(b"\0"))
    signer_info = info["content"]["signer_infos"][0]
    value = bytearray(signer_info["signature"].native)
    value[len(value) // 2] ^= 0x01
    signer_info["signature"] = bytes(value)
    new_hex = info.dump(force=True).hex().encode().ljust(len(hex_digits), b"0")
    return data[: gap_start + 1] + new_hex + data[gap_end - 1 :]


def test_wrong_signature_value_is_broken(pki: Pki, trust: TrustStore) -> None:
    forged = _with_bad_signature_value(doc(pki, "valid"))
    assert verdicts(validate_pdf(forged, "a.pdf", trust)) == [
        ("invalid", "broken", "Nguyễn Văn An")
    ]


def test_unparsable_signature_is_broken(pki: Pki, trust: TrustStore) -> None:
    data = doc(pki, "valid")
    _, gap_start, gap_end, _ = byte_range(data)
    zeroed = data[: gap_start + 1] + b"0" * (gap_end - gap_start - 2) + data[gap_end - 1 :]
    assert verdicts(validate_pdf(zeroed, "a.pdf", trust)) == [("invalid", "broken", "")]


def test_sha1_signature_is_broken(pki: Pki, trust: TrustStore) -> None:
    # pyHanko bans MD5 and SHA-1 digests: such a signature no longer proves anything.
    old = signing.sign(documents.pdf(["Công văn cũ"]), pki, "valid", md_algorithm="sha1")
    assert verdicts(validate_pdf(old, "a.pdf", trust)) == [("invalid", "broken", "Nguyễn Văn An")]


def _covered_positions(data: bytes) -> int:
    _, gap_start, _, tail = byte_range(data)
    return gap_start + tail


@settings(max_examples=25, deadline=None)
@given(where=st.floats(min_value=0, max_value=1, exclude_max=True), flip=st.integers(1, 255))
def test_no_changed_signed_byte_passes(
    pki: Pki, trust: TrustStore, where: float, flip: int
) -> None:
    data = doc(pki, "valid")
    _, gap_start, gap_end, _ = byte_range(data)
    index = int(where * _covered_positions(data))
    position = index if index < gap_start else gap_end + (index - gap_start)
    changed = bytearray(data)
    changed[position] ^= flip
    results = validate_pdf(bytes(changed), "a.pdf", trust)
    assert all(r.status == "invalid" for r in results)


@settings(max_examples=25, deadline=None)
@given(keep=st.floats(min_value=0, max_value=1, exclude_max=True))
def test_no_truncation_passes(pki: Pki, trust: TrustStore, keep: float) -> None:
    data = doc(pki, "two_signatures")
    results = validate_pdf(data[: int(keep * len(data))], "a.pdf", trust)
    # The first signature may survive intact in an earlier revision, but nothing after it.
    assert all(r.status == "invalid" for r in results[1:])
    assert len(results) <= 2


def test_too_many_signatures_are_not_dropped_silently(
    pki: Pki, trust: TrustStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signatures, "MAX_SIGNATURES", 1)
    results = validate_pdf(doc(pki, "two_signatures"), "a.pdf", trust)
    assert [(r.status, r.reason) for r in results] == [("valid", None), ("invalid", "malformed")]


def test_without_diff_analysis_an_extended_signature_counts_as_modified(
    pki: Pki, trust: TrustStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signatures, "MAX_REVISIONS_FOR_DIFF", 1)
    results = validate_pdf(doc(pki, "two_signatures"), "a.pdf", trust)
    assert [r.reason for r in results] == ["modified", None]


def test_unsigned_big_pdf_is_cheap(trust: TrustStore) -> None:
    import time

    big = documents.pdf(["Báo cáo"], filler_bytes=2_000_000)
    start = time.perf_counter()
    for _ in range(20):
        assert validate_pdf(big, "big.pdf", trust) == []
    assert (time.perf_counter() - start) / 20 < 0.01


# --- quiet and synchronous ----------------------------------------------------------------


def test_validation_logs_nothing_and_restores_logging(
    pki: Pki, trust: TrustStore, caplog: pytest.LogCaptureFixture
) -> None:
    before = logging.getLogger("pyhanko").level
    with caplog.at_level(logging.DEBUG):
        for kind in ("expired", "unknown_ca", "modified", "revoked"):
            validate_pdf(doc(pki, kind), "a.pdf", trust)
    assert [r for r in caplog.records if r.name.startswith("pyhanko")] == []
    assert logging.getLogger("pyhanko").level == before


async def test_refuses_to_block_a_running_event_loop(pki: Pki, trust: TrustStore) -> None:
    with pytest.raises(RuntimeError, match="worker thread"):
        validate_pdf(doc(pki, "valid"), "a.pdf", trust)


# --- the trust store ----------------------------------------------------------------------


def test_missing_root_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "quoc-gia.pem"
    with pytest.raises(InvalidInput) as caught:
        TrustStore.load([missing])
    assert str(missing) in caught.value.message_vi
    assert "Không đọc được" in caught.value.message_vi


def test_non_pem_root_file_is_named(tmp_path: Path) -> None:
    bogus = tmp_path / "root.pem"
    bogus.write_text("đây không phải chứng thư\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as caught:
        TrustStore.load([bogus])
    assert str(bogus) in caught.value.message_vi
    assert "chứng thư số" in caught.value.message_vi


def test_pem_without_a_certificate_is_refused(tmp_path: Path) -> None:
    key_only = tmp_path / "key.pem"
    key_only.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(InvalidInput):
        TrustStore.load([key_only])


def test_bad_crl_file_is_named(trust_files: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = trust_files
    bogus = tmp_path / "root.crl"
    bogus.write_bytes(b"not a crl")
    with pytest.raises(InvalidInput) as caught:
        TrustStore.load([root], [bogus])
    assert str(bogus) in caught.value.message_vi
    assert "CRL" in caught.value.message_vi


def test_der_root_and_pem_crl_are_accepted(pki: Pki, tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    (tmp_path / "root.cer").write_bytes(
        x509.load_pem_x509_certificate(pki.root_pem).public_bytes(Encoding.DER)
    )
    (tmp_path / "root.crl.pem").write_bytes(pki.crl_pem)
    store = TrustStore.load([tmp_path / "root.cer"], [tmp_path / "root.crl.pem"])
    assert validate_pdf(doc(pki, "revoked"), "a.pdf", store)[0].reason == "revoked"
    assert validate_pdf(doc(pki, "valid"), "a.pdf", store)[0].status == "valid"


# --- wording: the header and the sentences ------------------------------------------------


def parse_header(value: str) -> tuple[str, dict[str, str]]:
    """Split ``head; key=token; key="quoted"`` back into its parts; fails (IndexError,
    ValueError, AssertionError) on anything the format does not allow."""
    head, _, rest = value.partition("; ")
    parts: dict[str, str] = {}
    i = 0
    while i < len(rest):
        eq = rest.index("=", i)
        key, i = rest[i:eq], eq + 1
        if rest[i] == '"':
            i += 1
            text = []
            while rest[i] != '"':
                if rest[i] == "\\":
                    i += 1
                text.append(rest[i])
                i += 1
            i += 1
            parts[key] = "".join(text)
        else:
            end = rest.find(";", i)
            end = len(rest) if end < 0 else end
            parts[key], i = rest[i:end], end
        if i < len(rest):
            assert rest[i : i + 2] == "; "
            i += 2
    return head, parts


def test_header_for_valid_and_invalid() -> None:
    valid = SignatureResult("Quyết định 12.pdf", "valid", None, "Nguyễn Văn A", None)
    assert valid.header_value() == 'valid; signer="Nguyễn Văn A"; file="Quyết định 12.pdf"'
    expired = SignatureResult("QĐ.pdf", "invalid", "expired", "Lê B", None)
    assert expired.header_value() == 'invalid; reason=expired; signer="Lê B"; file="QĐ.pdf"'
    assert parse_header(expired.header_value()) == (
        "invalid",
        {"reason": "expired", "signer": "Lê B", "file": "QĐ.pdf"},
    )


def test_hostile_filename_cannot_break_the_header() -> None:
    hostile = 'a"b\\c\r\nX-Govmail-Signature: valid\t\u202egpj.pdf\udcff\u2028'
    result = SignatureResult(hostile, "invalid", "modified", 'Ng"uyễn\n', None)
    value = result.header_value()
    assert "\r" not in value and "\n" not in value and "\t" not in value
    assert "\u202e" not in value and "\u2028" not in value and "\udcff" not in value
    assert value == (
        'invalid; reason=modified; signer="Ng\\"uyễn"; '
        'file="a\\"b\\\\cX-Govmail-Signature: validgpj.pdf"'
    )
    assert parse_header(value)[1]["file"] == 'a"b\\cX-Govmail-Signature: validgpj.pdf'
    value.encode("utf-8")  # encodable: no lone surrogate left


def test_long_filename_is_shortened() -> None:
    result = SignatureResult("x" * 5000 + ".pdf", "valid", None, "A", None)
    file = parse_header(result.header_value())[1]["file"]
    assert len(file) == signatures.MAX_FIELD_CHARS and file.endswith("…")


_printable = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp")), max_size=80
).map(lambda s: unicodedata.normalize("NFC", s))


@given(filename=_printable, signer=_printable, reason=st.sampled_from(signatures.REASONS))
def test_header_round_trips_printable_names(filename: str, signer: str, reason: str) -> None:
    result = SignatureResult(filename, "invalid", reason, signer, None)
    head, parts = parse_header(result.header_value())
    assert head == "invalid"
    assert parts == {"reason": reason, "signer": signer, "file": filename}


@given(filename=st.text(max_size=80), signer=st.text(max_size=80))
def test_header_never_carries_line_breaks_or_controls(filename: str, signer: str) -> None:
    value = SignatureResult(filename, "valid", None, signer, None).header_value()
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in value)
    head, parts = parse_header(value)
    assert head == "valid" and set(parts) == {"signer", "file"}


def test_sentences_name_signer_file_and_reason() -> None:
    signed = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
    valid = SignatureResult("Quyết định 12.pdf", "valid", None, "Nguyễn Văn A", signed)
    assert valid.vi == (
        "Chữ ký số hợp lệ của Nguyễn Văn A trên tệp “Quyết định 12.pdf”, "
        "ký lúc 08:30 ngày 02/03/2026."
    )
    assert "Nguyễn Văn A" in valid.en and "Quyết định 12.pdf" in valid.en
    words = {
        "expired": ("hết hạn", "expired"),
        "not_yet_valid": ("chưa đến", "not valid yet"),
        "revoked": ("thu hồi", "revoked"),
        "modified": ("sửa đổi sau khi ký", "changed after"),
        "untrusted": ("tin cậy", "trusted"),
        "broken": ("không khớp", "does not match"),
        "malformed": ("bị hỏng", "damaged"),
    }
    assert set(words) == set(signatures.REASONS)
    for reason, (vi, en) in words.items():
        result = SignatureResult("QĐ 12.pdf", "invalid", reason, "Lê B", None)
        assert result.vi.startswith("Chữ ký số của Lê B trên tệp “QĐ 12.pdf” không hợp lệ: ")
        assert vi in result.vi
        assert en in result.en and "QĐ 12.pdf" in result.en
    unknown = SignatureResult("a.pdf", "invalid", "malformed", "", None)
    assert unknown.vi.startswith("Chữ ký số trên tệp “a.pdf” không hợp lệ")


@pytest.mark.parametrize(
    ("status", "reason"),
    [("valid", "expired"), ("invalid", None), ("invalid", "weird"), ("ok", None)],
)
def test_inconsistent_result_is_refused(status: str, reason: str | None) -> None:
    with pytest.raises(ValueError):
        SignatureResult("a.pdf", status, reason, "", None)


def test_corpus_builds_every_kind(pki: Pki) -> None:
    for kind in signing.KINDS:
        assert doc(pki, kind).startswith(b"%PDF-")
    with pytest.raises(ValueError):
        signing.signed_pdf(pki, "nonsense")
