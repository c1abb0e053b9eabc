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


@pytest.mark.parametrize(
    ("column", "field_vi", "field_en"),
    [
        ("B", "Chức vụ", "position"),
        ("C", "Bộ phận công tác", "department"),
        ("D", "Địa chỉ hộp thư", "address"),
    ],
)
@pytest.mark.parametrize("error", ["#REF!", "#N/A", "#VALUE!", "#DIV/0!", "#NAME?"])
def test_formula_error_in_any_mapped_column_is_a_row_problem(
    tmp_path: Path, column: str, field_vi: str, field_en: str, error: str
) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Họ và tên", "Chức vụ", "Bộ phận công tác", "Địa chỉ hộp thư"])
    sheet.append(["Đào Văn Nam", "Chuyên viên", "Văn phòng", "dvnam"])
    sheet.append(["Hồ Thị Mai", "Kế toán", "Phòng Tài chính", "htmai"])
    # An error-typed cell, as Excel stores a failed formula's cached value.
    sheet[f"{column}2"].value = error
    sheet[f"{column}2"].data_type = "e"
    path = tmp_path / "err.xlsx"
    workbook.save(path)
    problem, good = read(path)
    assert isinstance(problem, RowProblem)
    assert problem.row_number == 2
    for reason, label in ((problem.reason_vi, field_vi), (problem.reason_en, field_en)):
        assert label in reason
        assert error in reason
        assert f" {column}," in reason
        assert " 2)" in reason
    assert "dòng 2" in problem.reason_vi
    assert "row 2" in problem.reason_en
    assert good == StaffRow(3, "Hồ Thị Mai", "Kế toán", "Phòng Tài chính", "htmai")


def test_formula_error_text_in_csv_is_a_row_problem(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "a.csv",
        "STT;Họ và tên;Bộ phận;Chức vụ\n1;Kiều Văn Toàn;#N/A;Văn thư\n2;Lê Thị Hoa;Văn phòng;\n",
    )
    problem, good = read(path)
    assert isinstance(problem, RowProblem)
    assert problem.row_number == 2
    assert "Bộ phận công tác" in problem.reason_vi and "cột C" in problem.reason_vi
    assert "department" in problem.reason_en and "column C" in problem.reason_en
    assert good == StaffRow(3, "Lê Thị Hoa", "", "Văn phòng", None)


def test_formula_error_in_an_unmapped_column_is_ignored(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "ds.xlsx",
        [["Họ và tên", "Ghi chú", "Chức vụ"], ["Thái Văn Long", "#REF!", "Văn thư"]],
    )
    assert staff(path) == [StaffRow(2, "Thái Văn Long", "Văn thư", "", None)]


@pytest.mark.parametrize(
    ("cells", "column", "field_en"),
    [
        ('Phí Văn Tài,"=HYPERLINK(""https://x.vn"",""Trưởng phòng"")",Văn phòng,', "B", "position"),
        ("Phí Văn Tài,Chuyên viên, =B2&C2,", "C", "department"),
        (
            'Phí Văn Tài,Chuyên viên,Văn phòng,"=HYPERLINK(""mailto:pvtai@x.vn"",""pvtai"")"',
            "D",
            "address",
        ),
        ("=CONCAT(B2;C2),Chuyên viên,Văn phòng,", "A", "name"),
    ],
)
def test_unevaluated_formula_is_a_row_problem(
    tmp_path: Path, cells: str, column: str, field_en: str
) -> None:
    text = f"Họ và tên,Chức vụ,Bộ phận,Email\n{cells}\nLã Thị Thu,Văn thư,Văn phòng,ltthu\n"
    problem, good = read(write_csv(tmp_path / "a.csv", text))
    assert isinstance(problem, RowProblem)
    assert problem.row_number == 2
    assert f"cột {column}, dòng 2" in problem.reason_vi
    assert "công thức" in problem.reason_vi
    assert f"The {field_en} cell (column {column}, row 2)" in problem.reason_en
    assert "formula" in problem.reason_en
    assert good == StaffRow(3, "Lã Thị Thu", "Văn thư", "Văn phòng", "ltthu")


def test_equals_sign_inside_a_cell_is_fine(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "a.csv", "Họ và tên,Chức vụ\nMạc Văn Khoa,Chuyên viên (=hạng III)\n"
    )
    assert staff(path) == [StaffRow(2, "Mạc Văn Khoa", "Chuyên viên (=hạng III)", "", None)]


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


@pytest.mark.parametrize(
    "text",
    [
        "Họ và tên,Chức vụ\r\nNguyễn Văn An,Chuyên viên\r\n",
        # Near VNI's pairs once read as Latin-1: "oă" (hoặc), "uơ" (thuở), "iú" (giúp).
        "Họ và tên,Chức vụ,Bộ phận\r\n"
        "Hoàng Thị Thuở,Phó Chánh Văn phòng,Bộ phận Một cửa hoặc tiếp dân\r\n"
        "Đặng Quốc Huy,Giúp việc,Phòng Quản lý đô thị\r\n"
        "Trịnh Thị Ngọc Hường,Trưởng phòng,Phòng Văn hóa – Thông tin\r\n",
        # A few of Windows-1258's symbols, which TCVN3 uses for letters, are fine.
        "Họ và tên,Chức vụ,Bộ phận\r\n"
        "Dương Văn Quý,Chuyên viên,Phòng «Một cửa» (tầng 2°)\r\n"
        "Lưu Thị Yến,Văn thư,Văn phòng\r\n",
    ],
)
def test_genuine_cp1258_csv_is_not_taken_for_legacy(tmp_path: Path, text: str) -> None:
    data = to_cp1258(text)
    assert data.decode("cp1258") != text  # combining tone marks, as Windows-1258 writes
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    path = tmp_path / "a.csv"
    path.write_bytes(data)
    rows = staff(path)
    lines = text.splitlines()[1:]
    assert [r.name for r in rows] == [line.split(",")[0] for line in lines]
    assert [r.position for r in rows] == [line.split(",")[1] for line in lines]


# "Họ và tên,Chức vụ,Bộ phận công tác" and three officials typed in TCVN3 (ABC), as the
# bytes read in Windows-1252 (VIETNAMESE.md): "Phó Trưởng phòng" holds TCVN3's ư, 0xAD.
_TCVN3_AS_CP1252 = (
    "Hä vµ tªn,Chøc vô,Bé phËn c«ng t¸c\r\n"
    "NguyÔn V¨n An,Chuyªn viªn,V¨n phßng\r\n"
    "TrÇn ThÞ Thñy Tiªn,Phã Tr\u00adëng phßng,Phßng NghiÖp vô\r\n"
    "Lª §øc Th¾ng,KÕ to¸n,Phßng Tµi chÝnh\r\n"
)
# The same list in VNI ("Quản lý văn bản" is "Quaûn lyù vaên baûn").
_VNI_AS_CP1252 = (
    "Hoï vaø teân,Chöùc vuï,Boä phaän coâng taùc\r\n"
    "Nguyeãn Vaên An,Chuyeân vieân,Vaên phoøng\r\n"
    "Traàn Thò Thuûy Tieân,Phoù Tröôûng phoøng,Phoøng Nghieäp vuï\r\n"
    "Leâ Ñöùc Thaéng,Keá toaùn,Phoøng Taøi chính\r\n"
)


@pytest.mark.parametrize(
    ("mojibake", "encoding"), [(_TCVN3_AS_CP1252, "TCVN3"), (_VNI_AS_CP1252, "VNI")]
)
def test_legacy_vietnamese_csv_is_refused(tmp_path: Path, mojibake: str, encoding: str) -> None:
    data = mojibake.encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    data.decode("cp1258")  # would be read, as nonsense, without the check
    path = tmp_path / "ds.csv"
    path.write_bytes(data)
    with pytest.raises(InvalidInput) as caught:
        read_staff_list(path)
    error = caught.value
    assert encoding in error.message_vi and encoding in error.message_en
    assert "Unicode" in error.message_vi and "UTF-8" in error.message_vi
    assert "TCVN 6909:2001" in error.message_vi
    assert "Unicode" in error.message_en and "UTF-8" in error.message_en
    assert "ds.csv" in error.message_en
    assert error.details["file"] == str(path)


def test_legacy_detection_names_the_likelier_encoding(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(_TCVN3_AS_CP1252.encode("cp1252"))
    with pytest.raises(InvalidInput) as tcvn3:
        read_staff_list(path)
    path.write_bytes(_VNI_AS_CP1252.encode("cp1252"))
    with pytest.raises(InvalidInput) as vni:
        read_staff_list(path)
    assert "VNI" not in tcvn3.value.message_en
    assert "TCVN3" not in vni.value.message_en


def test_legacy_vietnamese_in_a_single_row_csv_is_refused(tmp_path: Path) -> None:
    # "Lê Văn An" in TCVN3: both letters with diacritics are symbols in cp1252 (ª ê, ¨ ă).
    path = tmp_path / "a.csv"
    path.write_bytes("Lª V¨n An\r\n".encode("cp1252"))
    with pytest.raises(InvalidInput):
        read_staff_list(path)


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


def test_an_xlsx_that_unpacks_to_hundreds_of_megabytes_is_refused(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "bomb.xlsx"
    chunk = b" " * (1 << 20)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as entry,
    ):
        for _ in range(210):
            entry.write(chunk)
    assert path.stat().st_size < 2 * (1 << 20)
    with pytest.raises(InvalidInput, match="MB"):
        read_staff_list(path)
