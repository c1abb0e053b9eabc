"""Unit tests for govmail.policy.classified (R15): secrecy stamps are found in bodies,
documents and subjects; prose about secrets and passwords never is."""

from __future__ import annotations

import time
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from govmail.policy.classified import Mark, find_mark, find_subject_mark
from govmail.policy.extract import document_text
from tests.corpus import documents


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def to_hop(text: str) -> str:
    """``text`` as "Unicode tổ hợp" keyboards type it: letters with their shape marks
    precomposed (â, ơ, ư…), tone marks as separate combining characters."""
    tones = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}
    out = []
    for char in unicodedata.normalize("NFC", text):
        parts = unicodedata.normalize("NFD", char)
        rest = unicodedata.normalize("NFC", "".join(c for c in parts if c not in tones))
        out.append(rest + "".join(c for c in parts if c in tones))
    return "".join(out)


HEADER = """UBND TỈNH KHÁNH HÒA
SỞ NỘI VỤ
Số: 123/SNV-VP
V/v triển khai kế hoạch năm 2025
CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM
Độc lập - Tự do - Hạnh phúc
Khánh Hòa, ngày 10 tháng 3 năm 2025"""

PROSE = """Kính gửi: Các sở, ban, ngành thuộc tỉnh.
Thực hiện Luật Bảo vệ bí mật nhà nước năm 2018, đề nghị các đơn vị rà soát tài liệu mật.
Cán bộ phải đổi mật khẩu hộp thư định kỳ; không ghi MẬT KHẨU lên giấy.
Mật độ dân số của tỉnh tăng; mật độ giao thông cao.
QUY CHẾ BẢO VỆ BÍ MẬT NHÀ NƯỚC
Độ mật: Thường
Hồ sơ đã được GIẢI MẬT theo quy định.
THƯỢNG KHẨN
Quan hệ thân mật, mật thiết giữa hai đơn vị."""


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("MẬT", "MẬT"),
        ("TỐI MẬT", "TỐI MẬT"),
        ("TUYỆT MẬT", "TUYỆT MẬT"),
        ("   TỐI MẬT   ", "TỐI MẬT"),
        ("TỐI MẬT – KHẨN", "TỐI MẬT"),
        ("MẬT, HỎA TỐC", "MẬT"),
        ("TUYỆT MẬT THƯỢNG KHẨN", "TUYỆT MẬT"),
        ("HOẢ TỐC - TỐI MẬT", "TỐI MẬT"),
        ("│ TUYỆT MẬT │", "TUYỆT MẬT"),
        ("┌─────────┐\n│ TỐI MẬT │\n└─────────┘", "TỐI MẬT"),
        ("[ MẬT ]", "MẬT"),
        ("(MẬT)", "MẬT"),
        ("*** TỐI MẬT ***", "TỐI MẬT"),
        ("| MẬT |", "MẬT"),
        ("M Ậ T", "MẬT"),
        ("T Ố I  M Ậ T", "TỐI MẬT"),
        ("T U Y Ệ T M Ậ T", "TUYỆT MẬT"),
        ("TỐI      MẬT", "TỐI MẬT"),
        # PDF text layers and Word tables put the stamp beside the agency name.
        ("UBND TỈNH KHÁNH HÒA          TỐI MẬT", "TỐI MẬT"),
        ("UBND TỈNH KHÁNH HÒA\tMẬT", "MẬT"),
        ("TUYỆT MẬT          CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "TUYỆT MẬT"),
        # The form field, in any case, also laid out as a table (label, then value).
        ("Độ mật: Tối mật", "TỐI MẬT"),
        ("ĐỘ MẬT: TUYỆT MẬT", "TUYỆT MẬT"),
        ("độ mật : mật", "MẬT"),
        ("Độ khẩn: Hỏa tốc          Độ mật: Mật", "MẬT"),
        ("Độ mật\nTối mật", "TỐI MẬT"),
        ("ĐỘ MẬT      TỐI MẬT", "TỐI MẬT"),
    ],
)
def test_stamps_are_found(text: str, level: str) -> None:
    for form in (text, nfd(text), to_hop(text)):
        mark = find_mark(form)
        assert mark is not None, form
        assert mark.level == level


@pytest.mark.parametrize(
    "text",
    [
        "mật khẩu",
        "bí mật",
        "mật độ",
        "MẬT KHẨU",
        "MẬT   KHẨU",
        "BẢO VỆ BÍ MẬT NHÀ NƯỚC",
        "BẢO VỆ BÍ   MẬT",
        "Luật Bảo vệ bí mật nhà nước",
        "tài liệu mật",
        "TÀI LIỆU MẬT",
        "Tài liệu MẬT",
        "Độ mật: Thường",
        "Độ mật:",
        "GIẢI MẬT",
        "GIẢI   MẬT",
        "THƯỢNG KHẨN",
        "KHẨN",
        "Mật",
        "(mật)",
        "Tối mật",
        "MẬT ONG RỪNG",
        "",
        "Please keep the mat clean",
    ],
)
def test_prose_is_not_a_stamp(text: str) -> None:
    for form in (text, nfd(text), to_hop(text)):
        assert find_mark(form) is None, form


def test_a_realistic_letter_without_stamp() -> None:
    assert find_mark(HEADER + "\n" + PROSE) is None


def test_a_realistic_letter_with_stamp_reports_its_line() -> None:
    text = HEADER.replace("SỞ NỘI VỤ", "SỞ NỘI VỤ          MẬT") + "\n" + PROSE
    assert find_mark(text) == Mark("MẬT", "SỞ NỘI VỤ          MẬT")


def test_the_most_serious_stamp_wins() -> None:
    text = "MẬT\n" + PROSE + "\nTUYỆT MẬT\nTỐI MẬT"
    assert find_mark(text) == Mark("TUYỆT MẬT", "TUYỆT MẬT")


def test_mark_line_is_stripped_and_trimmed() -> None:
    line = "TỐI MẬT" + "   " + "X" * 300
    mark = find_mark("  " + line + "  ")
    assert mark is not None
    assert mark.line == line[:120]


def test_max_lines_limits_the_search_to_the_header_area() -> None:
    text = HEADER + "\n" + PROSE + "\nTỐI MẬT"
    lines = text.count("\n") + 1
    assert find_mark(text, max_lines=lines - 1) is None
    assert find_mark(text, max_lines=lines) == Mark("TỐI MẬT", "TỐI MẬT")
    assert find_mark("TỐI MẬT", max_lines=0) is None


def test_mixed_normalisation_in_one_text() -> None:
    text = "đổi mật khẩu\n" + to_hop("UBND TỈNH   TỐI MẬT") + "\n" + nfd("mật độ")
    mark = find_mark(text)
    assert mark is not None and mark.level == "TỐI MẬT"
    assert mark.line == "UBND TỈNH   TỐI MẬT"  # reported in NFC


# --- Subjects --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "level"),
    [
        ("[MẬT] Kế hoạch phòng thủ dân sự", "MẬT"),
        ("TỐI MẬT: Kế hoạch bảo vệ", "TỐI MẬT"),
        ("Kế hoạch bảo vệ mục tiêu (TUYỆT MẬT)", "TUYỆT MẬT"),
        ("Kế hoạch 12 - MẬT", "MẬT"),
        ("[Mật] Kế hoạch", "MẬT"),
        ("(tối mật) Báo cáo", "TỐI MẬT"),
        ("[TỐI MẬT - KHẨN] Báo cáo", "TỐI MẬT"),
        ("Fwd: [TUYỆT MẬT] Chỉ thị", "TUYỆT MẬT"),
    ],
)
def test_subject_stamps(subject: str, level: str) -> None:
    for form in (subject, nfd(subject)):
        mark = find_subject_mark(form)
        assert mark is not None and mark.level == level
        assert mark.line == subject


@pytest.mark.parametrize(
    "subject",
    [
        "Đổi MẬT KHẨU hộp thư",
        "Mật khẩu mới của hộp thư",
        "Quy chế bảo vệ bí mật nhà nước",
        "[Mật khẩu] Hướng dẫn",
        "THƯỢNG KHẨN: Báo cáo tình hình bão",
        "Tài liệu đã GIẢI MẬT",
        "Giấy mời họp",
        "",
    ],
)
def test_subjects_without_stamp(subject: str) -> None:
    assert find_subject_mark(subject) is None


# --- Documents end to end --------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["pdf", "docx", "odt", "rtf"])
def test_stamp_in_a_document(fmt: str) -> None:
    lines = ["UBND TỈNH KHÁNH HÒA", "TỐI MẬT", "Số: 12/KH-UBND", "KẾ HOẠCH"]
    data = {
        "pdf": lambda: documents.pdf(lines),
        "docx": lambda: documents.docx(lines),
        "odt": lambda: documents.odf(lines),
        "rtf": lambda: documents.rtf("\n".join(lines)),
    }[fmt]()
    mark = find_mark(document_text(data, fmt))
    assert mark == Mark("TỐI MẬT", "TỐI MẬT")


@pytest.mark.parametrize("fmt", ["pdf", "docx", "odt"])
def test_prose_in_a_document(fmt: str) -> None:
    lines = PROSE.splitlines()
    data = {
        "pdf": lambda: documents.pdf(lines),
        "docx": lambda: documents.docx(lines),
        "odt": lambda: documents.odf(lines),
    }[fmt]()
    assert find_mark(document_text(data, fmt)) is None


# --- Properties ------------------------------------------------------------------------

WORDS = [
    "mật", "khẩu", "bí", "độ", "tài", "liệu", "bảo", "vệ", "nhà", "nước", "kế", "hoạch",
    "Mật", "Tối", "tuyệt", "giải", "khẩn", "hỏa", "tốc", "báo", "cáo", "tuần", "Sở",
]  # fmt: skip


@given(st.lists(st.sampled_from(WORDS), max_size=30), st.sampled_from([" ", ", ", ". "]))
def test_lower_case_prose_never_triggers(words: list[str], joiner: str) -> None:
    assert find_mark(joiner.join(words)) is None


@given(
    st.lists(st.sampled_from(WORDS), max_size=12),
    st.sampled_from(["MẬT", "TỐI MẬT", "TUYỆT MẬT"]),
    st.sampled_from(["\n", "   ", "\t", " │ ", " – ", "\n[ "]),
)
def test_a_stamp_set_apart_is_always_found(words: list[str], stamp: str, gap: str) -> None:
    text = " ".join(words) + gap + stamp + "\n" + " ".join(words)
    mark = find_mark(text)
    assert mark is not None and mark.level == stamp


@settings(max_examples=200)
@given(st.text(max_size=200))
def test_any_text_gives_a_mark_or_none_alike_in_nfc_and_nfd(text: str) -> None:
    found = find_mark(text)
    assert found is None or found.level in ("MẬT", "TỐI MẬT", "TUYỆT MẬT")
    again = find_mark(nfd(text))
    assert (found and found.level) == (again and again.level)
    assert find_subject_mark(text) is None or isinstance(find_subject_mark(text), Mark)


# --- Cost ------------------------------------------------------------------------------


def _best_of(runs: int, call: object) -> float:
    assert callable(call)
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def test_cost_on_100_kb_without_stamp() -> None:
    letter = "Kính gửi các sở, ban, ngành về việc triển khai công tác năm 2025.\n"
    no_level_word = (letter * 2000)[:100_000]
    assert _best_of(5, lambda: find_mark(no_level_word)) < 0.0002
    assert _best_of(5, lambda: find_mark(nfd(no_level_word))) < 0.005
    # A long letter that mentions passwords and state secrets a few times.
    some_prose = no_level_word[:50_000] + PROSE + no_level_word[:50_000]
    assert _best_of(5, lambda: find_mark(some_prose)) < 0.002
    # Hostile density: a third of all lines hold a level word in upper case.
    dense = (PROSE + "\n") * (100_000 // (len(PROSE) + 1))
    assert _best_of(3, lambda: find_mark(dense)) < 0.1
