"""Unit tests for govmail.core.syllables: the Vietnamese syllable check and text shares."""

from __future__ import annotations

import time
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from govmail.core.syllables import has_vietnamese_marks, is_vietnamese_syllable, vietnamese_share
from govmail.core.vietnamese import fold


def word_list(text: str) -> list[str]:
    """The space-separated words of ``text`` (lists below read better as running text)."""
    return text.split()


# Common words of official mail, with the spellings that test the orthography: gi/qu,
# k/gh/ngh before e ê i, iê/yê, medial o/u, stop finals with sắc and nặng, old and new
# tone placement.
VIETNAMESE_WORDS = word_list(
    "báo cáo kết quả thực hiện nhiệm vụ năm tháng tuần ngày giấy mời họp giao ban "
    "ủy ban nhân dân tỉnh huyện xã phường sở khoa học công nghệ thông tin truyền "
    "quyết định thông báo kế hoạch hướng dẫn tờ trình công văn chỉ thị nghị quyết "
    "người gửi nhận được những các của và với để cho trong ngoài trên dưới đã sẽ "
    "đang không có là một hai ba bốn năm sáu bảy tám chín mười trăm nghìn triệu tỷ "
    "việt nam hà nội khánh hòa hoà thủy thuỷ khỏe khoẻ thúy thuý quý quí huế "
    "nguyễn trần lê phạm hoàng huỳnh võ đặng bùi đỗ hồ ngô dương lý phương "
    "gì gìn giữ giết giếng giữa gia giáo quốc quyền quyết quân quê quen qua "
    "kỹ kỳ kiểm kinh ghi ghế nghe nghiêng nghĩ nghỉ yêu yên uy khuya xoong "
    "chuyển đổi số điện tử hệ thống văn bản đơn vị cán bộ công chức viên chức "
    "khẩn mật tuyệt tối hỏa tốc thượng đề nghị đôn đốc triển khai nghiêm túc"
)

ENGLISH_WORDS = word_list(
    "meeting invitation report schedule attached please review regards thanks "
    "project budget deadline update weekly monthly agenda minutes urgent"
)

# Tone marks sắc, huyền, hỏi, ngã, nặng, and the letters that carry them.
TONES = ("\u0301", "\u0300", "\u0309", "\u0303", "\u0323")
VOWELS = "aăâeêioôơuưy"
LETTERS = sorted(
    {unicodedata.normalize("NFC", v + t) for v in VOWELS for t in ("", *TONES)}
    | set("bcdđghklmnpqrstvx")
)
vietnamese_words = st.sampled_from(VIETNAMESE_WORDS)
letter_strings = st.text(alphabet=LETTERS, min_size=1, max_size=8)


# --- is_vietnamese_syllable --------------------------------------------------------------


@pytest.mark.parametrize("word", VIETNAMESE_WORDS)
def test_common_words_are_syllables(word: str) -> None:
    assert is_vietnamese_syllable(word)


@pytest.mark.parametrize("word", ["bao", "cao", "tuan", "nguyen", "Nguyen", "THANG", "giay", "moi"])
def test_words_without_diacritics_are_judged_by_their_letters(word: str) -> None:
    assert is_vietnamese_syllable(word)


@pytest.mark.parametrize("word", [*ENGLISH_WORDS, "invitation", "report", "Größe", "café", "xyz"])
def test_foreign_words_are_not_syllables(word: str) -> None:
    assert not is_vietnamese_syllable(word)


@pytest.mark.parametrize(
    "word",
    [
        "ka",  # k only before e, ê, i, y: "ca"
        "ce",  # c never before e, ê, i: "ke"
        "gi\u0300a\u0300",  # two tones
        "gha",  # gh only before e, ê, i
        "ngi",  # ng never before i: "nghi"
        "coa",  # c + medial o is written qu: "qua"
        "bàt",  # a stop final takes only sắc or nặng
        "hỏc",
        "kêt",  # diacritics typed but no tone before -t
        "ăn\u0301g",
        "âo",  # no such rhyme
        "b",
        "",
    ],
)
def test_orthography_violations_are_not_syllables(word: str) -> None:
    assert not is_vietnamese_syllable(word)


@pytest.mark.parametrize(
    ("word", "misplaced"),
    [
        ("tẻo", "teỏ"),  # on the nucleus, not the final glide
        ("mùa", "muà"),
        ("túi", "tuì"),
        ("người", "ngưòi"),  # ươ carries it on ơ
        ("ngoài", "ngoaì"),
        ("quá", "qúa"),  # the u of qu is no vowel of the rhyme
        ("già", "gìa"),
        ("toán", "tóan"),  # before a final consonant, on the last vowel
    ],
)
def test_the_tone_must_sit_on_the_vowel_that_carries_it(word: str, misplaced: str) -> None:
    assert is_vietnamese_syllable(word)
    assert not is_vietnamese_syllable(misplaced)


@pytest.mark.parametrize("word", ["học", "bát", "bạt", "kết", "lịch", "thép", "Việt"])
def test_stop_finals_with_sac_or_nang_are_syllables(word: str) -> None:
    assert is_vietnamese_syllable(word)


@given(vietnamese_words)
def test_nfd_and_case_do_not_change_the_verdict(word: str) -> None:
    assert is_vietnamese_syllable(unicodedata.normalize("NFD", word))
    assert is_vietnamese_syllable(word.upper())
    assert is_vietnamese_syllable(word.capitalize())


@given(vietnamese_words)
def test_a_syllable_without_its_diacritics_is_still_one(word: str) -> None:
    assert is_vietnamese_syllable(fold(word))


@given(letter_strings)
def test_verdict_is_the_same_for_nfc_nfd_and_upper_case(word: str) -> None:
    verdict = is_vietnamese_syllable(word)
    assert is_vietnamese_syllable(unicodedata.normalize("NFD", word)) == verdict
    assert is_vietnamese_syllable(word.upper()) == verdict


@given(letter_strings)
def test_a_syllable_stays_one_when_its_diacritics_are_dropped(word: str) -> None:
    if is_vietnamese_syllable(word):
        assert is_vietnamese_syllable(fold(word))


# --- vietnamese_share --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Báo cáo tuần 45", 1.0),
        ("Bao cao tuan 45", 1.0),
        ("Meeting invitation", 0.0),
        ("Giấy mời họp: meeting", 0.75),
        ("123 / 456 -- !!", 0.0),
        ("", 0.0),
        ("Số 12/UBND-KT", 1 / 3),  # UBND and KT are words, and no syllables
    ],
)
def test_share_examples(text: str, expected: float) -> None:
    assert vietnamese_share(text) == pytest.approx(expected)


@given(st.lists(vietnamese_words, min_size=1, max_size=30), st.sampled_from([" ", ", ", ". "]))
def test_share_of_vietnamese_text_is_one_in_any_normal_form(words: list[str], sep: str) -> None:
    text = sep.join(words)
    assert vietnamese_share(text) == 1.0
    assert vietnamese_share(unicodedata.normalize("NFD", text)) == 1.0
    assert vietnamese_share(fold(text)) == 1.0


@given(st.text(max_size=200))
def test_share_is_a_fraction(text: str) -> None:
    assert 0.0 <= vietnamese_share(text) <= 1.0


def test_english_sentence_scores_low() -> None:
    text = "Please review the attached weekly report before the meeting on Friday"
    assert vietnamese_share(text) < 0.4


def test_share_of_a_4kb_text_costs_well_under_a_millisecond() -> None:
    body = (" ".join(VIETNAMESE_WORDS) + ". ") * 8
    body = body[:4096]
    vietnamese_share(body)  # first sight of the words
    rounds = 50
    start = time.perf_counter()
    for _ in range(rounds):
        vietnamese_share(body)
    per_call = (time.perf_counter() - start) / rounds
    # Measured ~0.15 ms; the bound leaves room for a loaded CI machine.
    assert per_call < 0.002


# --- has_vietnamese_marks ----------------------------------------------------------------


@pytest.mark.parametrize("letter", list("ăâđêôơưĂÂĐÊÔƠƯ"))
def test_vietnamese_letters_are_marks(letter: str) -> None:
    assert has_vietnamese_marks(f"x{letter}y")
    assert has_vietnamese_marks(unicodedata.normalize("NFD", letter))


@pytest.mark.parametrize("tone", TONES)
@pytest.mark.parametrize("vowel", list("aeiouyAEIOUY"))
def test_tone_marks_on_vowels_are_marks_in_nfc_and_nfd(vowel: str, tone: str) -> None:
    assert has_vietnamese_marks(unicodedata.normalize("NFC", vowel + tone))
    assert has_vietnamese_marks("Bao " + vowel + tone)  # NFD: the mark is its own character


@pytest.mark.parametrize("text", ["Bao cao tuan 45", "Meeting", "", "Größe", "señor", "ç"])
def test_texts_without_vietnamese_marks(text: str) -> None:
    assert not has_vietnamese_marks(text)


def test_shared_latin_letters_count_as_tone_marks() -> None:
    # é is the sắc tone on e: the rule is about marks, language is vietnamese_share's job.
    assert has_vietnamese_marks("café")
