"""Unit tests for govmail.policy.subject: the subject must be a Vietnamese summary (R13)."""

from __future__ import annotations

import time
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from govmail.core.legacy import encode_legacy
from govmail.core.syllables import has_vietnamese_marks
from govmail.core.vietnamese import ascii_vietnamese, fold
from govmail.policy.subject import SubjectProblem, check_subject


def kind(subject: str) -> str | None:
    problem = check_subject(subject)
    return None if problem is None else problem.kind


# --- The rule's examples -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Meeting invitation", "not_vietnamese"),
        ("Bao cao tuan 45", "no_diacritics"),
        ("Báo cáo tuần 45", None),
        ("Giấy mời họp", None),
        ("", "empty"),
        ("   ", "empty"),
    ],
)
def test_examples_of_the_rule(subject: str, expected: str | None) -> None:
    assert kind(subject) == expected


# --- Prefixes and tags -------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        "Re:",
        "RE: FW:",
        "Fwd: Re: ",
        "TL: ",
        "Trả lời: Chuyển tiếp:",
        "Tra loi:",
        "[EXTERNAL]",
        "Re: [EXTERNAL] -- ",
        "Re[2]: FW(3): ...",
        "AW: WG: SV: VS: TR:",
        "!!! ??? ...",
    ],
)
def test_a_subject_of_only_prefixes_tags_and_punctuation_is_empty(subject: str) -> None:
    assert kind(subject) == "empty"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: Giấy mời họp giao ban", None),
        ("RE: FW: Fwd: Báo cáo tuần 45", None),
        ("TL: Meeting invitation", "not_vietnamese"),
        ("Chuyển tiếp: Bao cao tuan 45", "no_diacritics"),
        ("[EXTERNAL] Re: Kế hoạch năm 2025", None),
        ("[Khẩn] Mời họp UBND tỉnh", None),
    ],
)
def test_prefixes_are_left_out_before_judging(subject: str, expected: str | None) -> None:
    assert kind(subject) == expected


def test_tb_is_thong_bao_not_a_prefix() -> None:
    # "TB" abbreviates Thông báo; alone it is an abbreviation, not an empty subject.
    assert kind("TB:") == "not_vietnamese"
    assert kind("TB: Lịch công tác tuần 45") is None


@given(
    st.lists(
        st.sampled_from(["Re:", "RE:", "Fwd:", "FW:", "TL:", "Trả lời:", "[EXTERNAL]", "Re[3]:"]),
        max_size=6,
    ),
    st.text(alphabet=" \t-_.,;:!?()[]\"'", max_size=10),
)
def test_any_mix_of_prefixes_and_punctuation_is_empty(prefixes: list[str], tail: str) -> None:
    assert kind(" ".join(prefixes) + tail) == "empty"


# --- Document numbers and abbreviations ---------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    ["Số 123/UBND-KT", "Số: 08/2014/QĐ-UBND", "Re: 45/GM-UBND", "2024", "UBND", "CNTT - HĐND"],
)
def test_a_number_or_abbreviation_alone_asks_for_the_summary(subject: str) -> None:
    problem = check_subject(subject)
    assert problem is not None
    # Not empty (that rejects the message): it warns, asking for the summary.
    assert problem.kind == "not_vietnamese"
    assert "trích yếu" in problem.vi
    assert "số, ký hiệu văn bản" in problem.vi


@pytest.mark.parametrize(
    "subject",
    [
        "Số 123/UBND-KT về việc triển khai thư điện tử công vụ",
        "Công văn 45/UBND-VX ngày 15/3/2025",
        "Báo cáo kết quả thực hiện CCHC quý I năm 2025",
        "Mời họp Zoom meeting với đối tác Japan",  # a few foreign words are fine
    ],
)
def test_a_number_or_foreign_words_beside_a_summary_are_fine(subject: str) -> None:
    assert kind(subject) is None


# --- Language ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        "Meeting invitation",
        "Weekly report",
        "The report",  # "the" is also the syllable "thế": share-based judging handles it
        "Please review the attached budget",
        "Café meeting",  # marks, but not Vietnamese
        "Größe der Straße",
        "URGENT",
    ],
)
def test_foreign_subjects_are_not_vietnamese(subject: str) -> None:
    assert kind(subject) == "not_vietnamese"


@pytest.mark.parametrize(
    "subject",
    ["Bao cao tuan 45", "Giay moi hop giao ban", "Ke hoach thang 3 phong CNTT", "BAO CAO"],
)
def test_vietnamese_without_diacritics_is_flagged(subject: str) -> None:
    assert kind(subject) == "no_diacritics"


PHRASES = (
    "Giấy mời họp giao ban tuần 45",
    "Báo cáo kết quả thực hiện nhiệm vụ tháng 3",
    "Kế hoạch triển khai chuyển đổi số năm 2025",
    "Thông báo lịch nghỉ Tết Nguyên đán",
    "Quyết định về việc ban hành quy chế làm việc",
    "Tờ trình đề nghị phê duyệt dự toán",
    "Phiếu chuyển văn bản của Sở Tài chính",
    "Lịch công tác tuần của Ủy ban nhân dân tỉnh",
    "Hướng dẫn sử dụng hệ thống thư điện tử công vụ",
    "ĐỀ NGHỊ CUNG CẤP SỐ LIỆU",
)


@given(st.sampled_from(PHRASES), st.sampled_from(["", "Re: ", "FW: ", "TL: ", "[EXTERNAL] "]))
def test_vietnamese_summaries_pass_and_their_folded_form_lacks_diacritics(
    phrase: str, prefix: str
) -> None:
    assert kind(prefix + phrase) is None
    assert kind(prefix + unicodedata.normalize("NFD", phrase)) is None
    assert kind(prefix + fold(phrase)) == "no_diacritics"


@pytest.mark.parametrize("encoding", ["tcvn3", "vni"])
@pytest.mark.parametrize("phrase", PHRASES[:4])
def test_a_legacy_encoded_subject_is_judged_as_converted(encoding: str, phrase: str) -> None:
    shown = encode_legacy(phrase, encoding).decode("cp1252")
    assert kind(shown) is None


# --- Texts -------------------------------------------------------------------------------


def _problems() -> list[SubjectProblem]:
    subjects = ["", "Meeting invitation", "Số 123/UBND-KT", "Bao cao tuan 45"]
    problems = [check_subject(s) for s in subjects]
    return [p for p in problems if p is not None]


def test_every_kind_has_a_text() -> None:
    assert {p.kind for p in _problems()} == {"empty", "not_vietnamese", "no_diacritics"}


@pytest.mark.parametrize("problem", _problems(), ids=lambda p: p.kind)
def test_texts_are_vietnamese_first_with_english_beside(problem: SubjectProblem) -> None:
    assert has_vietnamese_marks(problem.vi)
    assert "tiếng Việt có dấu" in problem.vi or "không dấu" in problem.vi
    assert "Vietnamese" in problem.en
    # SMTP replies without SMTPUTF8 carry the same words without diacritics: nothing
    # may turn into "?".
    assert "?" not in ascii_vietnamese(problem.vi)


def test_hostile_subjects_are_judged_quickly() -> None:
    for subject in ("[a]" * 300_000, "Re: " * 250_000, "b¸o " * 250_000, "Số " * 300_000):
        start = time.perf_counter()
        check_subject(subject)
        assert time.perf_counter() - start < 0.5
