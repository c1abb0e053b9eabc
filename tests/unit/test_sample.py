"""Tests for the fictitious directory generator (govmail.core.sample)."""

from __future__ import annotations

import unicodedata
from collections import Counter

import pytest

from govmail.core.sample import SampleAgency, SampleOfficial, demo_province, generate_officials


def r5_form(full_name: str) -> str:
    """The regulation's personal address form: initials of all words but the last, last word.

    A deliberately independent fold (not core.vietnamese) so this test checks the data.
    """
    decomposed = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", full_name))
    folded = "".join(c for c in decomposed if unicodedata.category(c) != "Mn").lower()
    words = folded.replace("đ", "d").split()
    return "".join(word[0] for word in words[:-1]) + words[-1]


def test_r5_form_helper() -> None:
    assert r5_form("Nguyễn Thị Minh Khai") == "ntmkhai"
    assert r5_form("Lê Phương") == "lphuong"
    assert r5_form("Đặng Đức Đạt") == "dddat"


@pytest.fixture(scope="module")
def twenty_thousand() -> list[SampleOfficial]:
    return generate_officials(20_000)


def test_same_seed_same_officials() -> None:
    assert generate_officials(500, seed=7) == generate_officials(500, seed=7)


def test_different_seeds_differ() -> None:
    assert generate_officials(200, seed=1) != generate_officials(200, seed=2)


def test_prefix_is_stable() -> None:
    # A benchmark that grows n must keep the officials it already had.
    assert generate_officials(1_000)[:100] == generate_officials(100)


def test_zero_and_negative() -> None:
    assert generate_officials(0) == []
    with pytest.raises(ValueError):
        generate_officials(-1)


def test_names_are_nfc_vietnamese_order(twenty_thousand: list[SampleOfficial]) -> None:
    for official in twenty_thousand[:2_000]:
        for text in (official.full_name, official.position, official.department):
            assert unicodedata.is_normalized("NFC", text)
        words = official.full_name.split()
        assert 3 <= len(words) <= 4
        assert words[0] != words[1]  # no "Lê Lê Minh …"
        assert words[-1] not in words[1:-1]  # no "Nguyễn Minh Minh"
        assert official.position
        assert official.department


def test_surname_weights(twenty_thousand: list[SampleOfficial]) -> None:
    surnames = Counter(o.full_name.split()[0] for o in twenty_thousand)
    share = {name: count / len(twenty_thousand) for name, count in surnames.items()}
    assert 0.36 <= share["Nguyễn"] <= 0.40
    assert 0.095 <= share["Trần"] <= 0.125
    assert 0.08 <= share["Lê"] <= 0.11
    assert len(surnames) >= 25
    assert Counter(len(o.full_name.split()) for o in twenty_thousand)[4] > 1_000


def test_r5_collisions_are_realistic(twenty_thousand: list[SampleOfficial]) -> None:
    # VIETNAMESE.md: 20,000 officials gave about 11,400 distinct forms, one occurring 32 times.
    forms = Counter(r5_form(o.full_name) for o in twenty_thousand)
    assert 10_000 <= len(forms) <= 13_000
    assert 20 <= forms.most_common(1)[0][1] <= 40


def test_exact_duplicate_names(twenty_thousand: list[SampleOfficial]) -> None:
    names = Counter(o.full_name for o in twenty_thousand)
    assert sum(1 for count in names.values() if count > 1) > 500
    assert names.most_common(1)[0][1] >= 5


def test_chuyen_vien_is_the_most_common_position(twenty_thousand: list[SampleOfficial]) -> None:
    positions = Counter(o.position for o in twenty_thousand)
    assert positions.most_common(1)[0][0] == "Chuyên viên"
    assert "Giám đốc" in positions
    assert "Phòng Kế hoạch – Tài chính" in {o.department for o in twenty_thousand}


@pytest.fixture(scope="module")
def province() -> list[SampleAgency]:
    return demo_province()


def test_demo_province_is_deterministic(province: list[SampleAgency]) -> None:
    assert demo_province() == province
    assert demo_province(seed=2) != province


def test_demo_province_shape(province: list[SampleAgency]) -> None:
    seen: set[str] = set()
    addresses: set[str] = set()
    for agency in province:
        if agency.parent_abbr is None:
            seen.add(agency.abbr)
            address = agency.abbr
        else:
            assert agency.parent_abbr in seen, f"{agency.name} comes before its parent"
            address = f"{agency.abbr}_{agency.parent_abbr}"
        assert address not in addresses
        addresses.add(address)
        assert agency.abbr.isascii() and agency.abbr.islower() and agency.abbr.isalpha()
        assert unicodedata.is_normalized("NFC", agency.name)
        assert agency.officials

    top = [a for a in province if a.parent_abbr is None]
    children = [a for a in province if a.parent_abbr is not None]
    assert {"stttt", "stc", "snv", "sgddt", "syt", "vpubnd", "ttr", "skhcn", "sxd", "stp"} <= seen
    assert {"chd", "nt", "cl"} <= seen
    communes = [a for a in top if a.name.startswith("Ủy ban nhân dân")]
    assert len(communes) == 4
    assert len(top) - len(communes) >= 12
    for commune in communes:
        assert 2 <= sum(1 for c in children if c.parent_abbr == commune.abbr) <= 3
    assert {"pvhxh", "pkt"} <= {c.abbr for c in children}
    names = {a.abbr: a.name for a in top}
    assert names["stttt"] == "Sở Thông tin và Truyền thông"
    assert names["chd"] == "Ủy ban nhân dân xã Cam Hải Đông"

    total = sum(len(a.officials) for a in province)
    assert 270 <= total <= 330
    by_abbr = {a.abbr: len(a.officials) for a in top}
    assert by_abbr["sgddt"] > by_abbr["stp"]


def test_demo_province_leaders_come_first(province: list[SampleAgency]) -> None:
    by_abbr = {a.abbr: a for a in province if a.parent_abbr is None}
    assert by_abbr["stc"].officials[0].position == "Giám đốc"
    assert by_abbr["ttr"].officials[0].position == "Chánh Thanh tra"
    assert by_abbr["cl"].officials[0].position == "Chủ tịch"


def test_demo_province_has_namesakes(province: list[SampleAgency]) -> None:
    where: dict[str, list[str]] = {}
    full_names: Counter[str] = Counter()
    for agency in province:
        for official in agency.officials:
            where.setdefault(r5_form(official.full_name), []).append(agency.abbr)
            full_names[official.full_name] += 1
    within = [form for form, agencies in where.items() if len(agencies) > len(set(agencies))]
    across = [form for form, agencies in where.items() if len(set(agencies)) > 1]
    assert len(within) >= 2
    assert len(across) >= 3
    assert full_names["Nguyễn Văn Hùng"] >= 2
    assert len(where["nvhung"]) >= 4
