"""Tests for the directory export writers (govmail.directory.export)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from openpyxl import load_workbook

from govmail.directory.export import (
    CSV_ENCODING,
    DirectoryEntry,
    write_csv,
    write_vcf,
    write_xlsx,
)

STC = DirectoryEntry(
    address="stc@khanhhoa.gov.vn",
    name="Sở Tài chính",
    kind="agency",
    agency="",
    agency_address="",
    position="",
    department="",
)
PVHXH_CL = DirectoryEntry(
    address="pvhxh_cl@khanhhoa.gov.vn",
    name="Phòng Văn hóa – Xã hội xã Cam Lâm",
    kind="agency",
    agency="Ủy ban nhân dân xã Cam Lâm",
    agency_address="cl@khanhhoa.gov.vn",
    position="",
    department="",
)
KHAI = DirectoryEntry(
    address="ntmkhai@khanhhoa.gov.vn",
    name="Nguyễn Thị Minh Khai",
    kind="personal",
    agency="Sở Tài chính",
    agency_address="stc@khanhhoa.gov.vn",
    position="Phó Trưởng phòng",
    department="Phòng Tài chính hành chính sự nghiệp",
)
# Every character vCard must escape, and a value long enough to fold several times.
TRICKY = DirectoryEntry(
    address="nvhung_snv@khanhhoa.gov.vn",
    name="Nguyễn Văn Hùng",
    kind="personal",
    agency="Sở Nội vụ",
    agency_address="snv@khanhhoa.gov.vn",
    position="Chuyên viên; kiêm nhiệm, thư ký\\trợ lý\nPhòng Tổ chức",
    department=(
        "Phòng Tổ chức, Biên chế và Tổ chức phi chính phủ; Phòng Xây dựng chính quyền"
        " và Công tác thanh niên – Đội Kiểm tra, Giám sát việc thực hiện quy chế"
    ),
)
ENTRIES = [STC, PVHXH_CL, KHAI, TRICKY]


# --- CSV ------------------------------------------------------------------------------------


def test_csv_header_and_rows() -> None:
    out = io.StringIO(newline="")
    write_csv(ENTRIES, out)
    rows = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert rows[0] == [
        "address",
        "name",
        "kind",
        "agency",
        "agency_address",
        "position",
        "department",
    ]
    assert rows[1] == ["stc@khanhhoa.gov.vn", "Sở Tài chính", "agency", "", "", "", ""]
    assert rows[3] == [
        "ntmkhai@khanhhoa.gov.vn",
        "Nguyễn Thị Minh Khai",
        "personal",
        "Sở Tài chính",
        "stc@khanhhoa.gov.vn",
        "Phó Trưởng phòng",
        "Phòng Tài chính hành chính sự nghiệp",
    ]
    assert [DirectoryEntry(*row) for row in rows[1:]] == ENTRIES


def test_csv_file_has_bom_for_excel(tmp_path: Path) -> None:
    path = tmp_path / "danhba.csv"
    with path.open("w", encoding=CSV_ENCODING, newline="") as out:
        write_csv([KHAI], out)
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfaddress,name,")
    assert "Nguyễn Thị Minh Khai".encode() in data
    with path.open(encoding="utf-8-sig", newline="") as back:
        assert list(csv.reader(back))[1][1] == "Nguyễn Thị Minh Khai"


def test_csv_empty_directory() -> None:
    out = io.StringIO(newline="")
    write_csv([], out)
    assert out.getvalue() == "address,name,kind,agency,agency_address,position,department\r\n"


@pytest.mark.parametrize(
    "value",
    [
        '=HYPERLINK("https://x.vn","Bấm vào đây")',
        "+84 258 3822 000",
        "-1+1",
        "@SUM(A1:A2)",
        "\t=1+1",
        "\r=1+1",
        "=",
    ],
)
def test_csv_formula_injection_is_quoted(value: str) -> None:
    entry = DirectoryEntry(
        address="ntlan@khanhhoa.gov.vn",
        name=value,
        kind="personal",
        agency="Sở Nội vụ",
        agency_address="snv@khanhhoa.gov.vn",
        position=value,
        department=value,
    )
    out = io.StringIO(newline="")
    write_csv([entry], out)
    (row,) = list(csv.reader(io.StringIO(out.getvalue(), newline="")))[1:]
    assert row[0] == "ntlan@khanhhoa.gov.vn"
    assert row[1] == row[5] == row[6] == "'" + value
    assert row[3] == "Sở Nội vụ"


@pytest.mark.parametrize(
    "value",
    ["Nguyễn Văn A", "Chuyên viên (=hạng III)", "a-b@x.vn", " =1+1", "'=1+1", "Phòng 2 – 3", ""],
)
def test_csv_values_that_cannot_run_are_unchanged(value: str) -> None:
    entry = DirectoryEntry("a@x.vn", "Nguyễn Văn A", "personal", "Sở Nội vụ", "", value, "")
    out = io.StringIO(newline="")
    write_csv([entry], out)
    (row,) = list(csv.reader(io.StringIO(out.getvalue(), newline="")))[1:]
    assert row[5] == value


def test_csv_file_with_formula_values(tmp_path: Path) -> None:
    entry = DirectoryEntry("a@x.vn", "=Nguyễn", "personal", "@Sở Nội vụ", "", "-", "+")
    path = tmp_path / "danhba.csv"
    with path.open("w", encoding=CSV_ENCODING, newline="") as out:
        write_csv([entry], out)
    with path.open(encoding="utf-8-sig", newline="") as back:
        rows = list(csv.reader(back))
    assert rows[1] == ["a@x.vn", "'=Nguyễn", "personal", "'@Sở Nội vụ", "", "'-", "'+"]


# --- xlsx -----------------------------------------------------------------------------------


def test_xlsx_round_trip() -> None:
    formula_like = DirectoryEntry(
        "ttr@khanhhoa.gov.vn", "Thanh tra tỉnh", "agency", "", "", "", "=HYPERLINK(1)"
    )
    out = io.BytesIO()
    write_xlsx([*ENTRIES, formula_like], out)

    workbook = load_workbook(io.BytesIO(out.getvalue()))
    assert workbook.sheetnames == ["Danh bạ"]
    sheet = workbook["Danh bạ"]
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert rows[0] == [
        "Địa chỉ hộp thư",
        "Họ và tên / Tên cơ quan",
        "Loại",
        "Cơ quan",
        "Hộp thư cơ quan",
        "Chức vụ",
        "Bộ phận công tác",
    ]
    assert all(cell.font.b for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["B"].width >= 20

    # openpyxl reads empty strings back as empty cells.
    assert [[value or "" for value in row] for row in rows[1:5]] == [
        [
            e.address,
            e.name,
            "Cơ quan" if e.kind == "agency" else "Cá nhân",
            e.agency,
            e.agency_address,
            e.position,
            e.department,
        ]
        for e in ENTRIES
    ]
    # A value that looks like a formula stays text.
    assert rows[5][6] == "=HYPERLINK(1)"
    assert sheet.cell(row=6, column=7).data_type == "s"


def test_xlsx_to_file(tmp_path: Path) -> None:
    path = tmp_path / "danhba.xlsx"
    with path.open("wb") as out:
        write_xlsx([KHAI], out)
    workbook = load_workbook(path, read_only=True)
    try:
        values = list(workbook.worksheets[0].iter_rows(min_row=2, values_only=True))
    finally:
        workbook.close()
    assert values[0][:2] == ("ntmkhai@khanhhoa.gov.vn", "Nguyễn Thị Minh Khai")


# --- vCard ----------------------------------------------------------------------------------


def vcf(entries: list[DirectoryEntry]) -> str:
    out = io.StringIO(newline="")
    write_vcf(entries, out)
    return out.getvalue()


def unfold(text: str) -> list[str]:
    """RFC 6350 §3.2: a CRLF followed by one space or tab is removed."""
    assert text.endswith("\r\n")
    return re.sub(r"\r\n[ \t]", "", text).split("\r\n")[:-1]


def unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def split_components(value: str) -> list[str]:
    """Split a structured value (N, ORG) at unescaped semicolons."""
    return [unescape(part) for part in re.split(r"(?<!\\);", value)]


def properties(lines: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        found[name] = value
    return found


def test_vcard_personal() -> None:
    lines = unfold(vcf([KHAI]))
    assert lines[0] == "BEGIN:VCARD"
    assert lines[1] == "VERSION:4.0"
    assert lines[-1] == "END:VCARD"
    props = properties(lines)
    assert "KIND" not in props
    assert props["FN"] == "Nguyễn Thị Minh Khai"
    assert props["N"] == "Nguyễn;Khai;Thị Minh;;"
    assert props["EMAIL;TYPE=work"] == "ntmkhai@khanhhoa.gov.vn"
    assert split_components(props["ORG"]) == [
        "Sở Tài chính",
        "Phòng Tài chính hành chính sự nghiệp",
    ]
    assert props["TITLE"] == "Phó Trưởng phòng"


def test_vcard_agency() -> None:
    text = vcf([STC, PVHXH_CL])
    assert text.count("BEGIN:VCARD\r\n") == 2
    cards = [card + "END:VCARD\r\n" for card in text.split("END:VCARD\r\n")[:-1]]
    first, second = (properties(unfold(card)) for card in cards)
    assert first["KIND"] == "org"
    assert first["FN"] == "Sở Tài chính"
    assert first["ORG"] == "Sở Tài chính"
    assert "N" not in first
    assert "TITLE" not in first
    assert second["ORG"] == "Ủy ban nhân dân xã Cam Lâm;Phòng Văn hóa – Xã hội xã Cam Lâm"


def test_vcard_two_word_and_one_word_names() -> None:
    two = DirectoryEntry("lphuong@x.vn", "Lê Phương", "personal", "", "", "", "")
    one = DirectoryEntry("an@x.vn", "An", "personal", "", "", "", "")
    assert properties(unfold(vcf([two])))["N"] == "Lê;Phương;;;"
    assert properties(unfold(vcf([one])))["N"] == ";An;;;"


def test_vcard_escaping() -> None:
    props = properties(unfold(vcf([TRICKY])))
    assert props["TITLE"] == "Chuyên viên\\; kiêm nhiệm\\, thư ký\\\\trợ lý\\nPhòng Tổ chức"
    assert unescape(props["TITLE"]) == TRICKY.position
    assert split_components(props["ORG"]) == [TRICKY.agency, TRICKY.department]


def test_vcard_does_not_quote_formula_like_values() -> None:
    entry = DirectoryEntry("a@x.vn", "Lê An", "personal", "=Sở", "", "+84 Chuyên viên", "-")
    props = properties(unfold(vcf([entry])))
    assert props["TITLE"] == "+84 Chuyên viên"
    assert split_components(props["ORG"]) == ["=Sở", "-"]


def test_vcard_lines_are_folded_at_75_octets() -> None:
    text = vcf(ENTRIES)
    physical = text.split("\r\n")[:-1]
    assert "\n" not in text.replace("\r\n", "")
    assert "\r" not in text.replace("\r\n", "")
    assert any(line.startswith(" ") for line in physical), "nothing was long enough to fold"
    for line in physical:
        assert len(line.encode("utf-8")) <= 75, line
    # Unfolding gives back the Vietnamese text intact (no split UTF-8 sequence).
    props = properties([line for line in unfold(text) if line.startswith("ORG:Sở Nội vụ")])
    assert split_components(props["ORG"])[1] == TRICKY.department


@pytest.mark.parametrize("width", range(60, 90))
def test_vcard_folding_never_splits_a_character(width: int) -> None:
    # Multi-byte letters at every offset around the fold point.
    name = ("Nguyễn Thị Thủy Tiên " * 8)[:width] + "ữ"
    entry = DirectoryEntry("nttt@x.vn", name, "personal", "", "", "", "")
    raw = vcf([entry]).encode("utf-8")
    for line in raw.split(b"\r\n"):
        assert len(line) <= 75
        line.decode("utf-8")  # raises if a sequence was cut
    assert properties(unfold(raw.decode("utf-8")))["FN"] == name


def test_vcard_file(tmp_path: Path) -> None:
    path = tmp_path / "danhba.vcf"
    with path.open("w", encoding="utf-8", newline="") as out:
        write_vcf(ENTRIES, out)
    data = path.read_bytes()
    assert data.count(b"BEGIN:VCARD\r\n") == len(ENTRIES)
    assert b"\r\r\n" not in data
    assert "FN:Nguyễn Thị Minh Khai\r\n".encode() in data
