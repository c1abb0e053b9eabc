"""Tests for reading agencies' staff lists (govmail.directory.spreadsheet)."""

from __future__ import annotations

import datetime as dt
import time
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from govmail.core.errors import InvalidInput
from govmail.directory.spreadsheet import RowProblem, StaffRow, read_staff_list


def write_xlsx(path: Path, rows: Sequence[Sequence[Any]], *, first_sheet: str = "") -> Path:
    workbook = Workbook()
    sheet = workbook.active
    if first_sheet:
        sheet.title = first_sheet
    for row in rows:
        sheet.append(list(row))
    if first_sheet:
        other = workbook.create_sheet("Khác")
        other.append(["Họ và tên"])
        other.append(["Không được đọc"])
    workbook.save(path)
    return path


def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def to_cp1258(text: str) -> bytes:
    """Encode as Windows-1258 does: a precomposed letter where it has one, tones combining."""
    out = bytearray()
    for char in text:
        out += _cp1258_char(char)
    return bytes(out)


def _cp1258_char(char: str) -> bytes:
    decomposed = unicodedata.normalize("NFD", char)
    base, marks = decomposed[0], list(decomposed[1:])
    # Whole letter (à, ê), else the base with one mark precomposed (ô + dot below for ộ),
    # else the bare base; the remaining marks are cp1258's combining tone marks.
    candidates = [(char, "")]
    candidates += [
        (unicodedata.normalize("NFC", base + mark), "".join(marks[:i] + marks[i + 1 :]))
        for i, mark in enumerate(marks)
    ]
    candidates.append((base, "".join(marks)))
    for head, rest in candidates:
        try:
            return head.encode("cp1258") + rest.encode("cp1258")
        except UnicodeEncodeError:
            continue
    raise ValueError(f"{char!r} has no Windows-1258 spelling")


def read(path: Path) -> list[StaffRow | RowProblem]:
    return list(read_staff_list(path))


def staff(path: Path) -> list[StaffRow]:
    rows = read(path)
    assert all(isinstance(r, StaffRow) for r in rows), rows
    return [r for r in rows if isinstance(r, StaffRow)]


# --- headers ----------------------------------------------------------------------------


def test_vietnamese_header_xlsx(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "ds.xlsx",
        [
            ["STT", "Họ và tên", "Chức vụ", "Bộ phận công tác", "Địa chỉ hộp thư"],
            [1, "Nguyễn Thị Minh Khai", "Chuyên viên", "Văn phòng", "NTMKHAI"],
            [2, "Lê Đức Phương", "Trưởng phòng", "Phòng Kế hoạch – Tài chính", None],
        ],
    )
    assert staff(path) == [
        StaffRow(2, "Nguyễn Thị Minh Khai", "Chuyên viên", "Văn phòng", "ntmkhai"),
        StaffRow(3, "Lê Đức Phương", "Trưởng phòng", "Phòng Kế hoạch – Tài chính", None),
    ]


def test_english_header_in_another_order_csv(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "staff.csv",
        "No.,Email,Department,Full name,Title,Notes\n"
        "1,ldphuong@khanhhoa.gov.vn,Thanh tra,Lê Đức Phương,Chánh Thanh tra,ghi chú\n",
    )
    assert staff(path) == [
        StaffRow(2, "Lê Đức Phương", "Chánh Thanh tra", "Thanh tra", "ldphuong@khanhhoa.gov.vn")
    ]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (("HỌ VÀ TÊN", "CHỨC VỤ", "BỘ PHẬN", "HỘP THƯ"), "upper case"),
        (("Ho ten", "Chuc vu", "Phong ban", "Dia chi thu dien tu"), "no diacritics"),
        (("Họ  và tên:", " Chức   vụ ", "Phòng ban", "E-mail"), "spacing and punctuation"),
        (("Name", "Position", "Department", "Address"), "English"),
        (("Họ tên", "Title", "Bộ phận công tác", "Địa chỉ thư điện tử"), "mixed"),
    ],
)
def test_header_variants(tmp_path: Path, labels: tuple[str, ...], expected: str) -> None:
    path = write_xlsx(
        tmp_path / "ds.xlsx", [labels, ("Trần Văn An", "Văn thư", "Văn phòng", "tvan")]
    )
    assert staff(path) == [StaffRow(2, "Trần Văn An", "Văn thư", "Văn phòng", "tvan")], expected


def test_decomposed_header_and_cells_are_nfc(tmp_path: Path) -> None:
    nfd = unicodedata.normalize("NFD", "Họ và tên,Chức vụ\nPhạm Thị Thủy,Kế toán\n")
    (row,) = staff(write_csv(tmp_path / "nfd.csv", nfd))
    assert row.name == "Phạm Thị Thủy"
    assert unicodedata.is_normalized("NFC", row.name)
    assert row.position == "Kế toán"


def test_header_without_some_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", "Họ và tên\nVõ Thị Sáu Lan\n")
    assert staff(path) == [StaffRow(2, "Võ Thị Sáu Lan", "", "", None)]


def test_header_without_name_column_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", "Tên,Chức vụ,Email\nAn,Chuyên viên,an\n")
    with pytest.raises(InvalidInput) as caught:
        read_staff_list(path)
    assert "họ và tên" in caught.value.message_vi
    assert "name column" in caught.value.message_en


def test_title_block_above_header_is_skipped(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "ds.xlsx",
        [
            ["ỦY BAN NHÂN DÂN XÃ CAM LÂM"],
            ["DANH SÁCH ĐỀ NGHỊ CẤP HỘP THƯ ĐIỆN TỬ"],
            [],
            ["STT", "Họ và tên", "Chức vụ", "Bộ phận công tác"],
            [1, "Hồ Văn Nam", "Chủ tịch", "Thường trực Ủy ban nhân dân"],
        ],
    )
    assert staff(path) == [
        StaffRow(5, "Hồ Văn Nam", "Chủ tịch", "Thường trực Ủy ban nhân dân", None)
    ]


def test_repeated_header_is_skipped(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "a.csv",
        "Họ và tên,Chức vụ\nBùi Văn Tài,Chuyên viên\nHọ và tên,Chức vụ\nĐỗ Thị Mai,Văn thư\n",
    )
    assert [(r.row_number, r.name) for r in staff(path)] == [(2, "Bùi Văn Tài"), (4, "Đỗ Thị Mai")]


def test_only_first_worksheet_is_read(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "ds.xlsx", [["Họ và tên"], ["Đinh Văn Hòa"]], first_sheet="Danh sách"
    )
    assert [r.name for r in staff(path)] == ["Đinh Văn Hòa"]


# --- headerless files ---------------------------------------------------------------------


def test_headerless_xlsx(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "ds.xlsx",
        [
            ["Nguyễn Văn Hùng", "Chuyên viên", "Phòng Nghiệp vụ"],
            ["Nguyễn Việt Hùng", "Kế toán", "Văn phòng", "nvhung_stc"],
        ],
    )
    assert staff(path) == [
        StaffRow(1, "Nguyễn Văn Hùng", "Chuyên viên", "Phòng Nghiệp vụ", None),
        StaffRow(2, "Nguyễn Việt Hùng", "Kế toán", "Văn phòng", "nvhung_stc"),
    ]


def test_headerless_csv_with_ordinal_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", "1,Lý Thị Hoa,Văn thư,Văn phòng\n2,Tô Văn Lực,,\n")
    assert staff(path) == [
        StaffRow(1, "Lý Thị Hoa", "Văn thư", "Văn phòng", None),
        StaffRow(2, "Tô Văn Lực", "", "", None),
    ]


def test_headerless_single_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", "Cao Thị Yến\nMai Văn Đông\n")
    assert [(r.row_number, r.name, r.position) for r in staff(path)] == [
        (1, "Cao Thị Yến", ""),
        (2, "Mai Văn Đông", ""),
    ]


# --- rows and cells -----------------------------------------------------------------------


def test_blank_rows_skipped_and_row_numbers_kept_xlsx(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "ds.xlsx",
        [
            [],
            ["Họ và tên", "Chức vụ"],
            ["Phan Văn Khải", "Chuyên viên"],
            [None, "   "],
            [],
            ["Dương Thị Nga", "Cán bộ"],
        ],
    )
    assert [(r.row_number, r.name) for r in staff(path)] == [
        (3, "Phan Văn Khải"),
        (6, "Dương Thị Nga"),
    ]


def test_blank_rows_skipped_and_row_numbers_kept_csv(tmp_path: Path) -> None:
    text = "\n\nHọ và tên;Chức vụ\n\n ; \nĐặng Văn Lâm;Kỹ thuật viên\r\n;;\r\nHà Thị Thu;Văn thư"
    path = write_csv(tmp_path / "a.csv", text)
    assert [(r.row_number, r.name) for r in staff(path)] == [(6, "Đặng Văn Lâm"), (8, "Hà Thị Thu")]


def test_cells_are_cleaned(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "ds.xlsx",
        [
            ["Họ và tên", "Chức vụ", "Bộ phận", "Email"],
            ["  Trương\u00a0Văn   Bình ", "Chuyên\tviên", 2024, "  TVBinh@KhanhHoa.gov.vn "],
            ["Lâm Thị Ngọc", 3.0, 2.5, None],
            ["Lương Văn Thái", dt.datetime(2024, 5, 1), "", ""],
        ],
    )
    assert staff(path) == [
        StaffRow(2, "Trương Văn Bình", "Chuyên viên", "2024", "tvbinh@khanhhoa.gov.vn"),
        StaffRow(3, "Lâm Thị Ngọc", "3", "2.5", None),
        StaffRow(4, "Lương Văn Thái", "2024-05-01", "", None),
    ]


@pytest.mark.parametrize(
    "bad_name", [12345, 3.5, dt.datetime(1980, 1, 2), "#N/A", "#REF!", "12/05/1980", True]
)
def test_bad_name_cell_is_a_row_problem(tmp_path: Path, bad_name: Any) -> None:
    path = write_xlsx(
        tmp_path / "ds.xlsx",
        [["Họ và tên", "Chức vụ"], [bad_name, "Chuyên viên"], ["Vũ Thị Lan", "Cán bộ"]],
    )
    problem, good = read(path)
    assert isinstance(problem, RowProblem)
    assert problem.row_number == 2
    assert problem.reason_vi and problem.reason_en
    assert good == StaffRow(3, "Vũ Thị Lan", "Cán bộ", "", None)


def test_formula_error_from_excel_is_a_row_problem(tmp_path: Path) -> None:
    # Written as an error-typed cell, as Excel stores a failed formula's cached value.
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Họ và tên", "Chức vụ"])
    sheet.append([None, "Chuyên viên"])
    sheet["A2"].value = "#DIV/0!"
    sheet["A2"].data_type = "e"
    path = tmp_path / "err.xlsx"
    workbook.save(path)
    (problem,) = read(path)
    assert isinstance(problem, RowProblem)
    assert problem.row_number == 2


def test_missing_name_is_a_row_problem(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", "Họ và tên,Chức vụ\n,Chuyên viên\n")
    (problem,) = read(path)
    assert isinstance(problem, RowProblem)
    assert problem.row_number == 2
    assert "Thiếu" in problem.reason_vi


def test_quoted_csv_fields(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "a.csv",
        'Họ và tên,Bộ phận công tác\n"Đỗ Văn Tín",'
        '"Phòng Tổ chức, Biên chế và Tổ chức phi chính phủ"\n',
    )
    (row,) = staff(path)
    assert row.department == "Phòng Tổ chức, Biên chế và Tổ chức phi chính phủ"


# --- encodings and delimiters ---------------------------------------------------------------


def test_utf8_bom_csv(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", "Họ và tên,Chức vụ\nNgô Thị Hằng,Văn thư\n", "utf-8-sig")
    assert staff(path) == [StaffRow(2, "Ngô Thị Hằng", "Văn thư", "", None)]


def test_cp1258_csv(tmp_path: Path) -> None:
    text = (
        "Họ và tên,Chức vụ,Bộ phận công tác\r\n"
        "Nguyễn Thị Thủy Tiên,Phó Trưởng phòng,Phòng Nghiệp vụ\r\n"
    )
    path = tmp_path / "a.csv"
    path.write_bytes(to_cp1258(text))
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    assert staff(path) == [
        StaffRow(2, "Nguyễn Thị Thủy Tiên", "Phó Trưởng phòng", "Phòng Nghiệp vụ", None)
    ]


def test_semicolon_csv_with_commas_in_cells(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "a.csv",
        "Họ và tên;Chức vụ;Bộ phận công tác\nHuỳnh Văn Sang;Chuyên viên;Phòng Tổ chức, Biên chế\n",
    )
    assert staff(path) == [
        StaffRow(2, "Huỳnh Văn Sang", "Chuyên viên", "Phòng Tổ chức, Biên chế", None)
    ]


def test_headerless_semicolon_csv(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "a.csv", "Kiều Thị Oanh;Phó Chánh Văn phòng, kiêm kế toán;Văn phòng\n"
    )
    (row,) = staff(path)
    assert row.position == "Phó Chánh Văn phòng, kiêm kế toán"
    assert row.department == "Văn phòng"


def test_tab_csv(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", "Họ và tên\tChức vụ\nChu Văn Bắc\tCán bộ\n")
    assert staff(path) == [StaffRow(2, "Chu Văn Bắc", "Cán bộ", "", None)]


def test_utf16_csv(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", "Họ và tên\tChức vụ\nTạ Thị Nhàn\tKế toán\n", "utf-16")
    assert staff(path) == [StaffRow(2, "Tạ Thị Nhàn", "Kế toán", "", None)]


# --- refused files --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ds.xls", "ds.ods", "ds.txt", "ds"])
def test_wrong_extension(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"Ho va ten\nNguyen Van A\n")
    with pytest.raises(InvalidInput) as caught:
        read_staff_list(path)
    assert caught.value.message_vi and caught.value.message_en


def test_upper_case_extension_is_fine(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "DS.CSV", "Họ và tên\nLưu Văn Hải\n")
    assert [r.name for r in staff(path)] == ["Lưu Văn Hải"]


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\n\n  \n", b" , ,\n,,\n"])
def test_empty_csv(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(content)
    with pytest.raises(InvalidInput):
        read_staff_list(path)


def test_empty_xlsx(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        read_staff_list(write_xlsx(tmp_path / "ds.xlsx", []))


def test_damaged_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "ds.xlsx"
    path.write_bytes(b"PK\x03\x04 this is not really a workbook")
    with pytest.raises(InvalidInput) as caught:
        read_staff_list(path)
    assert "Không đọc được" in caught.value.message_vi


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        read_staff_list(tmp_path / "none.csv")
    with pytest.raises(InvalidInput):
        read_staff_list(tmp_path / "none.xlsx")


def test_undecodable_csv(tmp_path: Path) -> None:
    # 0x81 and 0x8a are undefined in Windows-1258, and this is not UTF-8 either.
    path = tmp_path / "a.csv"
    path.write_bytes(b"Ho va ten\n\x81\x8a\xff\n")
    with pytest.raises(InvalidInput):
        read_staff_list(path)


def test_abandoned_iterator_leaves_nothing_open(tmp_path: Path) -> None:
    # Warnings are errors here: an unclosed file would fail the test run.
    path = write_xlsx(tmp_path / "ds.xlsx", [["Họ và tên"], ["An Văn Bình"], ["Hà Văn Cường"]])
    rows = read_staff_list(path)
    assert next(rows).row_number == 2
    del rows
    read_staff_list(path)  # never iterated


# --- speed --------------------------------------------------------------------------------


def _big_rows(n: int) -> list[list[Any]]:
    return [["STT", "Họ và tên", "Chức vụ", "Bộ phận công tác", "Địa chỉ hộp thư"]] + [
        [i, f"Nguyễn Thị Minh Khai {i}", "Chuyên viên", "Phòng Kế hoạch – Tài chính", f"ntmk{i}"]
        for i in range(1, n + 1)
    ]


def test_20000_rows_csv_is_fast(tmp_path: Path) -> None:
    lines = [",".join(str(cell) for cell in row) for row in _big_rows(20_000)]
    path = write_csv(tmp_path / "big.csv", "\n".join(lines) + "\n")
    start = time.perf_counter()
    rows = read(path)
    elapsed = time.perf_counter() - start
    assert len(rows) == 20_000
    assert rows[-1] == StaffRow(
        20_001,
        "Nguyễn Thị Minh Khai 20000",
        "Chuyên viên",
        "Phòng Kế hoạch – Tài chính",
        "ntmk20000",
    )
    assert elapsed < 2.0


def test_20000_rows_xlsx_is_fast(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "big.xlsx", _big_rows(20_000))
    start = time.perf_counter()
    rows = read(path)
    elapsed = time.perf_counter() - start
    assert len(rows) == 20_000
    assert all(isinstance(r, StaffRow) for r in rows)
    assert elapsed < 6.0
