"""Unit tests for govmail.core.vietnamese: folding, stored name form, name splitting."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from govmail.core.errors import InvalidInput
from govmail.core.vietnamese import NameParts, fold, normalize_name, split_name

# Tone marks in the order of the Vietnamese alphabet's tones: huyền, sắc, hỏi, ngã, nặng.
TONES = ("", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323")
VOWELS = "aăâeêioôơuưy"
CONSONANTS = "bcdđghklmnpqrstvx"
LOWER_LETTERS = sorted(
    {unicodedata.normalize("NFC", v + t) for v in VOWELS for t in TONES} | set(CONSONANTS)
)
LETTERS = LOWER_LETTERS + [c.upper() for c in LOWER_LETTERS]

vietnamese_text = st.text(alphabet=[*LETTERS, " "], max_size=40)


# --- fold -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Lê Đức Phương", "le duc phuong"),
        ("NGUYỄN THỊ MINH KHAI", "nguyen thi minh khai"),
        ("Sở Thông tin và Truyền thông", "so thong tin va truyen thong"),
        ("  Trần\u00a0\u00a0Văn\tAn \n", "tran van an"),
        ("Ｎｇｕｙễｎ Ｖăｎ Ａ", "nguyen van a"),  # full-width letters from some IMEs
        ("ĐẶNG ÐỨC ðức đức", "dang duc duc duc"),  # Đ, eth Ð and ð, đ
        ("ldphuong@khanhhoa.gov.vn", "ldphuong@khanhhoa.gov.vn"),
        ("Phòng Nghiệp vụ 3 (P.3)", "phong nghiep vu 3 (p.3)"),
        ("pvhtt_cl", "pvhtt_cl"),
        ("Ng\u200buyễn\u00ad Văn", "nguyen van"),  # zero-width space, soft hyphen
        ("", ""),
        ("   ", ""),
    ],
)
def test_fold_examples(text: str, expected: str) -> None:
    assert fold(text) == expected


@pytest.mark.parametrize(
    ("old", "new"),
    [("Thuỷ", "Thủy"), ("Uỷ ban", "Ủy ban"), ("Hoà", "Hòa"), ("Khoẻ", "Khỏe"), ("Thuý", "Thúy")],
)
def test_fold_ignores_tone_placement(old: str, new: str) -> None:
    assert fold(old) == fold(new)


def test_fold_nfc_and_nfd_agree() -> None:
    nfc = unicodedata.normalize("NFC", "Phương")
    nfd = unicodedata.normalize("NFD", "Phương")
    assert nfc != nfd  # the trap the folding exists for
    assert fold(nfc) == fold(nfd) == "phuong"


@given(vietnamese_text)
def test_fold_ignores_normal_form_and_case(text: str) -> None:
    folded = fold(text)
    assert fold(unicodedata.normalize("NFD", text)) == folded
    assert fold(text.upper()) == folded
    assert fold(text.lower()) == folded


@given(vietnamese_text)
def test_fold_maps_vietnamese_to_ascii_letters(text: str) -> None:
    assert set(fold(text)) <= set("abcdefghijklmnopqrstuvwxyz ")


@given(vietnamese_text)
def test_fold_treats_eth_as_dyet(text: str) -> None:
    eth = text.replace("Đ", "\u00d0").replace("đ", "\u00f0")
    assert fold(eth) == fold(text)


@given(
    st.sampled_from(["h", "th", "kh", "ng", "t", ""]),
    st.sampled_from(["oa", "oe", "uy", "uê"]),
    st.sampled_from(TONES[1:]),
)
def test_fold_old_and_new_tone_placement(onset: str, nucleus: str, tone: str) -> None:
    old_style = unicodedata.normalize("NFC", onset + nucleus + tone)  # hoà, thuỷ
    new_style = unicodedata.normalize("NFC", onset + nucleus[0] + tone + nucleus[1])  # hòa
    assert fold(old_style) == fold(new_style)


@given(vietnamese_text)
def test_fold_is_idempotent_on_vietnamese(text: str) -> None:
    assert fold(fold(text)) == fold(text)


@given(st.text())
def test_fold_is_idempotent_on_any_text(text: str) -> None:
    assert fold(fold(text)) == fold(text)


def test_fold_is_idempotent_when_dropped_marks_separate_spacing_marks() -> None:
    # Removing the Mn marks between these spacing marks leaves them out of canonical order.
    text = "\u193b\U0001d170\U00011cad\u302a\ua9c0"
    assert fold(fold(text)) == fold(text)


# --- normalize_name -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Lê Đức Phương", "Lê Đức Phương"),
        ("  Lê \u00a0Đức\tPhương  ", "Lê Đức Phương"),
        (unicodedata.normalize("NFD", "Nguyễn Thị Thuỷ"), "Nguyễn Thị Thuỷ"),
        ("\u00d0ặng Văn \u00f0ức", "Đặng Văn đức"),  # eth from cp1252-decoded data
        ("\ufeffNguy\u200bễn\u00ad Văn\u200d A\u200c", "Nguyễn Văn A"),
        ("nguyễn VĂN a", "nguyễn VĂN a"),  # the user's capitalisation is kept
        ("Ủy ban nhân dân huyện Cam Lâm", "Ủy ban nhân dân huyện Cam Lâm"),
    ],
)
def test_normalize_name_examples(text: str, expected: str) -> None:
    assert normalize_name(text) == expected


def test_normalize_name_gives_nfc() -> None:
    name = normalize_name(unicodedata.normalize("NFD", "Phương"))
    assert name == unicodedata.normalize("NFC", "Phương")
    assert len(name) == 6


def test_normalize_name_keeps_tone_placement() -> None:
    # Stored names keep what the person wrote; only search keys (fold) merge the styles.
    assert normalize_name("Thuỷ") != normalize_name("Thủy")


@given(vietnamese_text)
def test_normalize_name_is_idempotent_and_form_insensitive(text: str) -> None:
    normalized = normalize_name(text)
    assert normalize_name(normalized) == normalized
    assert normalize_name(unicodedata.normalize("NFD", text)) == normalized
    assert unicodedata.is_normalized("NFC", normalized)
    assert "  " not in normalized
    assert normalized == normalized.strip()


# --- split_name -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("full_name", "expected"),
    [
        ("Lê Đức Phương", NameParts("Lê", "Đức", "Phương")),
        ("Lê Phương", NameParts("Lê", "", "Phương")),
        ("Nguyễn Thị Minh Khai", NameParts("Nguyễn", "Thị Minh", "Khai")),
        ("Tôn Nữ Thị Hoài Thu", NameParts("Tôn", "Nữ Thị Hoài", "Thu")),
        ("  Trần \u00a0 Văn   An ", NameParts("Trần", "Văn", "An")),
        ("\u00d0ỗ Kim", NameParts("Đỗ", "", "Kim")),
        ("H'Hen Niê", NameParts("H'Hen", "", "Niê")),
        ("Y Moan Ê\u2019nuôl", NameParts("Y", "Moan", "Ê\u2019nuôl")),
        ("Nguyễn Thị-Minh Khai", NameParts("Nguyễn", "Thị-Minh", "Khai")),
    ],
)
def test_split_name_examples(full_name: str, expected: NameParts) -> None:
    assert split_name(full_name) == expected


def test_split_name_normalizes_first() -> None:
    parts = split_name(unicodedata.normalize("NFD", "Lê Đức Phương"))
    assert parts.surname == "Lê"
    assert unicodedata.is_normalized("NFC", parts.given)


@pytest.mark.parametrize("full_name", ["Phương", "", "   ", "\u200b", "Nguyễn\u00a0"])
def test_split_name_rejects_fewer_than_two_words(full_name: str) -> None:
    with pytest.raises(InvalidInput, match="at least two words") as caught:
        split_name(full_name)
    assert "ít nhất hai từ" in caught.value.message_vi
    assert caught.value.code == "invalid_input"


@pytest.mark.parametrize(
    ("full_name", "character"),
    [
        ("Nguyễn Văn 2", "2"),
        ("ldphuong@khanhhoa.gov.vn x", "@"),
        ("Lê Đức. Phương", "."),
        ("Lê (Đức) Phương", "("),
        ("Lê_Phương", "_"),
    ],
)
def test_split_name_rejects_other_characters(full_name: str, character: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        split_name(full_name)
    assert caught.value.details["character"] == character
    assert repr(character) in caught.value.message_vi
    assert repr(character) in caught.value.message_en


def test_split_name_rejects_a_word_without_letters() -> None:
    with pytest.raises(InvalidInput, match="needs a letter"):
        split_name("Lê - Phương")


@given(st.lists(st.text(alphabet=LETTERS, min_size=1, max_size=8), min_size=2, max_size=6))
def test_split_name_round_trips_words(words: list[str]) -> None:
    parts = split_name(" ".join(words))
    rebuilt = " ".join(p for p in (parts.surname, parts.middle, parts.given) if p)
    assert rebuilt == normalize_name(" ".join(words))
    assert parts.surname and parts.given
    assert " " not in parts.surname and " " not in parts.given
