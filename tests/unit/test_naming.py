"""Unit tests for govmail.core.naming: address rules R3–R5 and address proposals."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from govmail.core.errors import InvalidInput
from govmail.core.naming import (
    DEFAULT_RESERVED,
    MAX_LOCAL_PART,
    agency_local_part,
    personal_local_part,
    propose_agency_abbreviation,
    propose_personal_addresses,
    validate_local_part,
)
from govmail.core.vietnamese import fold

# Our own name lists (Faker's vi_VN has ten surnames in Western order); spellings mix old
# and new tone placement as real directories do.
SURNAMES = [
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng",
    "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Đinh", "Trương", "Tôn", "Âu",
]  # fmt: skip
MIDDLES = [
    "Văn", "Thị", "Đức", "Minh", "Ngọc", "Thanh", "Thu", "Hữu", "Quốc", "Xuân",
    "Kim", "Hoài", "Thuỳ", "Bảo", "Nữ", "Thất", "Công", "Đình", "Quang", "Mỹ",
]  # fmt: skip
GIVENS = [
    "Phương", "Khai", "Anh", "Hùng", "Hoà", "Thuỷ", "Dũng", "Hương", "Lan", "Tuấn",
    "Nguyên", "Lịch", "Huyền", "Quý", "Ánh", "Nghĩa", "Khuê", "Uyên", "Yến", "Toàn",
    "Hiếu", "Đông", "Ý", "Nhung", "Trường",
]  # fmt: skip

ASCII_LETTERS = set("abcdefghijklmnopqrstuvwxyz")

# Old (Hoà, Thuỷ) and new (Hòa, Thủy) tone placement; directories hold both.
TONE_PLACEMENT = [("oà", "òa"), ("oá", "óa"), ("uỳ", "ùy"), ("uỷ", "ủy"), ("uý", "úy")]


@st.composite
def full_names(draw: st.DrawFn) -> str:
    """A two-to-five-word Vietnamese full name in NFC with single spaces."""
    surname = draw(st.sampled_from(SURNAMES))
    middle = draw(st.lists(st.sampled_from(MIDDLES), max_size=3))
    given_name = draw(st.sampled_from(GIVENS))
    return " ".join([surname, *middle, given_name])


def _spell_differently(name: str, variant: int) -> str:
    """The same name as it arrives from other sources."""
    if variant == 0:
        return unicodedata.normalize("NFD", name)
    if variant == 1:
        return name.upper()
    if variant == 2:
        return name.replace("Đ", "\u00d0").replace("đ", "\u00f0")  # read as cp1252
    if variant == 3:
        return "  " + name.replace(" ", " \u00a0 ") + "\t"
    if variant == 4:
        for old_style, new_style in TONE_PLACEMENT:
            name = name.replace(old_style, new_style)
        return name
    return "\u200b" + name.replace(" ", "\u200b ")


def _never_taken(_: str) -> bool:
    return False


# --- validate_local_part ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("ldphuong", "ldphuong"),
        ("pvhtt_cl", "pvhtt_cl"),
        ("nguyen.van.a", "nguyen.van.a"),
        ("a", "a"),
        ("3", "3"),
        ("  LDPhuong ", "ldphuong"),
        ("ntmkhai2", "ntmkhai2"),
        ("a" * MAX_LOCAL_PART, "a" * MAX_LOCAL_PART),
    ],
)
def test_validate_local_part_accepts(local: str, expected: str) -> None:
    assert validate_local_part(local) == expected


@pytest.mark.parametrize(
    ("local", "english"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("a" * (MAX_LOCAL_PART + 1), "65 characters long"),
        ("lê", "invalid character 'ê'"),
        ("mailer-daemon", "invalid character '-'"),
        ("ld phuong", "invalid character ' '"),
        ("ldphuong@khanhhoa.gov.vn", "invalid character '@'"),
        (".ldphuong", "start and end with a letter or a digit"),
        ("ldphuong_", "start and end with a letter or a digit"),
        ("_cl", "start and end with a letter or a digit"),
        ("nguyen..a", "two dots in a row"),
        ("postmaster", "reserved"),
        ("Admin", "reserved"),
        ("NoReply", "reserved"),
    ],
)
def test_validate_local_part_rejects(local: str, english: str) -> None:
    with pytest.raises(InvalidInput, match=english) as caught:
        validate_local_part(local)
    assert caught.value.message_vi.startswith("Tên hộp thư")


def test_validate_local_part_uses_the_reserved_set_given() -> None:
    assert validate_local_part("admin", reserved=frozenset()) == "admin"
    with pytest.raises(InvalidInput, match="reserved"):
        validate_local_part("ldphuong", reserved=frozenset({"ldphuong"}))


def test_reserved_names_are_valid_lower_case_local_parts() -> None:
    for name in DEFAULT_RESERVED:
        assert validate_local_part(name, reserved=frozenset()) == name


def test_reserved_names_are_not_regulation_forms_of_common_names() -> None:
    # "dkim" would be Đỗ Kim's address, so it must not be reserved.
    forms = {personal_local_part(f"{s} {m} {g}") for s in SURNAMES for m in MIDDLES for g in GIVENS}
    forms |= {personal_local_part(f"{s} {g}") for s in SURNAMES for g in [*GIVENS, *MIDDLES]}
    assert not forms & DEFAULT_RESERVED
    assert "dkim" in forms


# --- personal_local_part (R5) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("full_name", "expected"),
    [
        ("Lê Đức Phương", "ldphuong"),  # the regulation's own example
        ("Nguyễn Thị Minh Khai", "ntmkhai"),
        ("Lê Phương", "lphuong"),
        ("Nguyễn Văn Nguyên", "nvnguyen"),  # Mẫu 02
        ("Trần Cao Nguyên", "tcnguyen"),
        ("Phạm Du Lịch", "pdlich"),
        ("LÊ ĐỨC PHƯƠNG", "ldphuong"),
        (unicodedata.normalize("NFD", "Lê Đức Phương"), "ldphuong"),
        ("Lê \u00d0ức Phương", "ldphuong"),
        ("  lê   đức\u00a0phương ", "ldphuong"),
        ("Đỗ Thị Thuỷ", "dtthuy"),
        ("Đỗ Thị Thủy", "dtthuy"),
        ("Ngô Ánh Ý", "nay"),
        ("H'Hen Niê", "hnie"),
        ("Nguyễn Thị-Minh Khai", "ntkhai"),
        ("Y Moan Ê\u2019nuôl", "ymenuol"),
    ],
)
def test_personal_local_part_examples(full_name: str, expected: str) -> None:
    assert personal_local_part(full_name) == expected


@pytest.mark.parametrize("full_name", ["Phương", "", "Lê Văn 2", "ldphuong@khanhhoa.gov.vn"])
def test_personal_local_part_rejects_what_split_name_rejects(full_name: str) -> None:
    with pytest.raises(InvalidInput):
        personal_local_part(full_name)


def test_personal_local_part_rejects_letters_without_an_ascii_form() -> None:
    with pytest.raises(InvalidInput, match="no unaccented a-z form") as caught:
        personal_local_part("Lê Ørsted")
    assert "'ø'" in caught.value.message_en


@given(full_names())
def test_personal_local_part_is_always_a_valid_local_part(full_name: str) -> None:
    local = personal_local_part(full_name)
    assert validate_local_part(local) == local
    assert set(local) <= ASCII_LETTERS
    *others, given_name = fold(full_name).split()
    assert local == "".join(word[0] for word in others) + given_name


@given(full_names(), st.integers(min_value=0, max_value=5))
def test_personal_local_part_ignores_how_the_name_is_spelled(full_name: str, variant: int) -> None:
    assert personal_local_part(_spell_differently(full_name, variant)) == personal_local_part(
        full_name
    )


# --- agency names (R4) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Sở Thông tin và Truyền thông", "stttt"),  # the regulation's own example
        ("Phòng Văn hóa và Thông tin", "pvhtt"),
        ("Phòng Văn hoá và Thông tin", "pvhtt"),
        ("Sở Khoa học và Công nghệ", "skhcn"),
        ("Văn phòng HĐND tỉnh", "vphdndt"),
        ("Văn phòng UBND tỉnh", "vpubndt"),
        ("Thanh tra tỉnh", "ttt"),
        ("Phòng Nghiệp vụ 3", "pnv3"),
        ("Ủy ban nhân dân huyện Cam Lâm", "cl"),  # the regulation's own example
        ("Uỷ ban nhân dân huyện Cam Lâm", "cl"),
        ("UBND huyện Cam Lâm", "cl"),
        ("UBND xã Cam Hải Đông", "chd"),
        ("UBND phường Nha Trang", "nt"),
        ("Ủy ban nhân dân thành phố Cam Ranh", "cr"),
        ("UBND thị xã Ninh Hòa", "nh"),
        ("UBND thị trấn Vạn Giã", "vg"),
        ("UBND đặc khu Trường Sa", "ts"),
        ("Ủy ban nhân dân tỉnh Khánh Hòa", "kh"),
        ("UBND Phường 12", "p12"),
        ("UBND tỉnh", "ubndt"),  # no place name: ordinary initials
        ("ỦY BAN NHÂN DÂN HUYỆN CAM LÂM", "cl"),
        ("SỞ THÔNG TIN VÀ TRUYỀN THÔNG", "stttt"),  # all capitals: no acronyms to see
        (unicodedata.normalize("NFD", "Sở Thông tin và Truyền thông"), "stttt"),
        ("Sở Văn hóa & Thể thao", "svhtt"),
    ],
)
def test_propose_agency_abbreviation(name: str, expected: str) -> None:
    assert propose_agency_abbreviation(name) == expected


@pytest.mark.parametrize("name", ["", "   ", "và", "& - ()"])
def test_propose_agency_abbreviation_needs_usable_words(name: str) -> None:
    with pytest.raises(InvalidInput, match="No abbreviation") as caught:
        propose_agency_abbreviation(name)
    assert "tên viết tắt" in caught.value.message_vi


@pytest.mark.parametrize(
    ("abbr", "parent", "expected"),
    [
        ("pvhtt", "cl", "pvhtt_cl"),  # the regulation's own example
        ("stttt", None, "stttt"),
        ("cl", None, "cl"),
        (" PVHTT ", "CL", "pvhtt_cl"),
    ],
)
def test_agency_local_part(abbr: str, parent: str | None, expected: str) -> None:
    assert agency_local_part(abbr, parent) == expected


@pytest.mark.parametrize(("abbr", "parent"), [("pvhtt", ""), ("", None), ("p-vhtt", "cl")])
def test_agency_local_part_rejects_invalid(abbr: str, parent: str | None) -> None:
    with pytest.raises(InvalidInput):
        agency_local_part(abbr, parent)


# --- propose_personal_addresses (R5) ------------------------------------------------------


def test_proposals_start_with_the_free_regulation_form() -> None:
    proposals = propose_personal_addresses("Lê Đức Phương", ["ttr"], _never_taken)
    assert proposals == ["ldphuong", "ldphuong_ttr", "lducphuong", "leducphuong", "ldphuong2"]


def test_proposals_put_the_agency_suffix_first_after_the_taken_base() -> None:
    # Mẫu 02 of the regulation lists Nguyễn Văn Nguyên with the address nvnguyen_ttr.
    proposals = propose_personal_addresses("Nguyễn Văn Nguyên", ["ttr"], {"nvnguyen"}.__contains__)
    assert proposals[0] == "nvnguyen_ttr"
    assert proposals == ["nvnguyen_ttr", "nvannguyen", "nguyenvannguyen", "nvnguyen2", "nvnguyen3"]


def test_proposals_follow_the_agency_abbreviations_in_order() -> None:
    proposals = propose_personal_addresses(
        "Lê Phương", ["pvhtt", "pvhtt_cl", "pvhtt"], {"lphuong"}.__contains__
    )
    assert proposals[:2] == ["lphuong_pvhtt", "lphuong_pvhtt_cl"]
    assert len(proposals) == len(set(proposals))


def test_proposals_spell_out_middle_words_from_the_last_backwards() -> None:
    taken = {"ntmkhai", "ntmkhai_ttr"}
    proposals = propose_personal_addresses("Nguyễn Thị Minh Khai", ["ttr"], taken.__contains__)
    assert proposals == ["ntminhkhai", "nthiminhkhai", "nguyenthiminhkhai", "ntmkhai2", "ntmkhai3"]


def test_two_word_names_only_spell_out_the_surname() -> None:
    proposals = propose_personal_addresses("Lê Phương", [], {"lphuong"}.__contains__, limit=3)
    assert proposals == ["lephuong", "lphuong2", "lphuong3"]


def test_numbered_forms_appear_when_everything_else_is_taken() -> None:
    taken = {"ntmkhai", "ntmkhai_ttr", "ntminhkhai", "nthiminhkhai", "nguyenthiminhkhai"}
    taken |= {f"ntmkhai{n}" for n in range(2, 40)}  # a crowded form, as in real directories
    proposals = propose_personal_addresses("Nguyễn Thị Minh Khai", ["ttr"], taken.__contains__)
    assert proposals == ["ntmkhai40", "ntmkhai41", "ntmkhai42", "ntmkhai43", "ntmkhai44"]


def test_proposals_skip_reserved_forms() -> None:
    reserved = frozenset({"ldphuong", "ldphuong_ttr"})
    proposals = propose_personal_addresses(
        "Lê Đức Phương", ["ttr"], _never_taken, limit=2, reserved=reserved
    )
    assert proposals == ["lducphuong", "leducphuong"]


def test_proposals_skip_invalid_agency_suffixes() -> None:
    proposals = propose_personal_addresses(
        "Lê Phương", ["t-tr", "", "x_", "t..r", "TTR"], {"lphuong"}.__contains__, limit=2
    )
    assert proposals == ["lphuong_ttr", "lephuong"]


def test_proposals_skip_forms_longer_than_the_limit_without_truncating() -> None:
    folded_given = "phuong" + "a" * (MAX_LOCAL_PART - 10)
    base = "lv" + folded_given  # 62 characters: "_ttr" and "levan…" do not fit, "2" does
    proposals = propose_personal_addresses(f"Lê Văn {folded_given.title()}", ["ttr"], _never_taken)
    assert proposals == [base, "lvan" + folded_given, base + "2", base + "3", base + "4"]
    assert all(len(p) <= MAX_LOCAL_PART for p in proposals)


def test_proposals_respect_the_limit() -> None:
    assert propose_personal_addresses("Lê Phương", [], _never_taken, limit=0) == []
    assert propose_personal_addresses("Lê Phương", [], _never_taken, limit=1) == ["lphuong"]
    assert len(propose_personal_addresses("Lê Phương", ["a"], _never_taken, limit=12)) == 12


def test_proposals_ask_is_taken_only_as_often_as_needed() -> None:
    asked: list[str] = []

    def is_taken(local: str) -> bool:
        asked.append(local)
        return False

    propose_personal_addresses("Nguyễn Thị Minh Khai", ["ttr"], is_taken, limit=5)
    assert len(asked) == 5


def test_proposals_end_when_every_candidate_is_taken() -> None:
    assert propose_personal_addresses("Lê Phương", ["ttr"], lambda _: True) == []


def test_proposals_reject_one_word_names() -> None:
    with pytest.raises(InvalidInput, match="at least two words"):
        propose_personal_addresses("Phương", ["ttr"], _never_taken)


@given(
    full_names(),
    st.lists(st.sampled_from(["ttr", "stttt", "pvhtt_cl", "cl", "T-TR"]), max_size=3),
    st.data(),
)
def test_proposals_never_offer_taken_or_reserved_forms(
    full_name: str, abbrs: list[str], data: st.DataObject
) -> None:
    everything = propose_personal_addresses(full_name, abbrs, _never_taken, limit=20)
    taken = data.draw(st.sets(st.sampled_from(everything)))
    reserved = data.draw(st.sets(st.sampled_from(everything)).map(frozenset))
    is_taken: Callable[[str], bool] = taken.__contains__

    proposals = propose_personal_addresses(full_name, abbrs, is_taken, reserved=reserved)

    assert len(proposals) == 5
    assert len(set(proposals)) == len(proposals)
    assert not set(proposals) & (taken | reserved)
    assert all(validate_local_part(p, reserved=reserved) == p for p in proposals)
    # The survivors keep the order of the untouched list: best first, deterministically.
    survivors = [p for p in everything if p not in taken and p not in reserved]
    assert proposals[: len(survivors[:5])] == survivors[:5]
    assert propose_personal_addresses(full_name, abbrs, is_taken, reserved=reserved) == proposals


@given(full_names())
def test_proposals_offer_the_regulation_form_first_when_free(full_name: str) -> None:
    proposals = propose_personal_addresses(full_name, ["ttr"], _never_taken)
    assert proposals[0] == personal_local_part(full_name)
    assert proposals[1] == personal_local_part(full_name) + "_ttr"
