"""Tests for reading the request forms' tables (govmail.workflows.forms)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from govmail.core.errors import InvalidInput
from govmail.workflows.forms import (
    MAX_ROWS,
    parse_typed_rows,
    read_form_file,
    template_csv,
    template_xlsx,
)
from govmail.workflows.model import FORM_01, FORM_02, FORM_03, RequestRow


def write_xlsx(path: Path, rows: Sequence[Sequence[Any]]) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(list(row))
    workbook.save(path)
    return path


def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def problems_of(error: InvalidInput) -> list[tuple[int, str]]:
    """(row, English reason) of each problem, as the portal would list them."""
    problems = error.details["problems"]
    for problem in problems:
        assert problem["reason_vi"] and problem["reason_en"]
    return [(p["row"], p["reason_en"]) for p in problems]


def rows_with_problems(error: InvalidInput) -> list[int]:
    return [p["row"] for p in error.details["problems"]]


# The regulation's own example for Mẫu 02, as RequestRows.
REGULATION_02 = [
    RequestRow(
        name="Nguyễn Văn Nguyên",
        address="nvnguyen_ttr",
        changes=((1, "Trưởng phòng"), (2, "Phòng Nghiệp vụ 3"), (3, "nvnguyen")),
    ),
    RequestRow(
        name="Trần Cao Nguyên",
        address="tcnguyen",
        changes=((1, "Chuyên viên"), (2, "Văn phòng")),
    ),
    RequestRow(name="Phạm Du Lịch", address="pdlich_ttr", changes=((3, "pdlich"),)),
]


# --- Mẫu 01 -----------------------------------------------------------------------------


def test_form_01_xlsx_under_a_title_block(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "mau01.xlsx",
        [
            ["UBND TỈNH KHÁNH HÒA"],
            ["PHIẾU YÊU CẦU CẤP MỚI HỘP THƯ ĐIỆN TỬ CÔNG VỤ"],
            ["Chức vụ:", "Chánh Văn phòng"],  # the requester's block, not the table
            [],
            ["STT", "Họ và tên", "Chức vụ", "Bộ phận công tác"],
            [1, "Lê Thị Hồng", "Chuyên viên", "Phòng Nghiệp vụ 1"],
            [2, "  Võ   Minh  Tuấn ", "Phó Trưởng phòng", "Văn phòng"],
            [3, None, None, None],  # numbered in advance, left empty
        ],
    )
    assert read_form_file(path, FORM_01) == [
        RequestRow("Lê Thị Hồng", "Chuyên viên", "Phòng Nghiệp vụ 1"),
        RequestRow("Võ Minh Tuấn", "Phó Trưởng phòng", "Văn phòng"),
    ]


def test_form_01_with_an_address_asked_for(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "a.csv",
        "Họ và tên,Chức vụ,Bộ phận công tác,Địa chỉ hộp thư đề nghị\n"
        "Lê Thị Hồng,Chuyên viên,Văn phòng,LTHong.VP@khanhhoa.gov.vn\n"
        "Võ Minh Tuấn,Kế toán,Văn phòng,\n",
    )
    assert read_form_file(path, FORM_01) == [
        RequestRow("Lê Thị Hồng", "Chuyên viên", "Văn phòng", "lthong.vp@khanhhoa.gov.vn"),
        RequestRow("Võ Minh Tuấn", "Kế toán", "Văn phòng"),
    ]


@pytest.mark.parametrize(
    "header",
    [
        ["STT", "HO VA TEN", "CHUC VU", "BO PHAN CONG TAC"],
        ["stt", "ho ten", "chuc vu", "bo phan"],
        ["No.", "Full name", "Position", "Department"],
        ["#", "Name", "Title", "Unit"],
        ["STT", "Họ và tên:", "CHỨC VỤ", "Phòng ban"],
    ],
)
def test_header_variants(tmp_path: Path, header: list[str]) -> None:
    path = write_xlsx(tmp_path / "a.xlsx", [header, [1, "Đinh Công Tráng", "Văn thư", "Văn phòng"]])
    assert read_form_file(path, FORM_01) == [RequestRow("Đinh Công Tráng", "Văn thư", "Văn phòng")]


def test_columns_in_another_order(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "a.csv", "Bộ phận công tác;Họ và tên;Chức vụ\nVăn phòng;Mai Văn Hùng;Lái xe\n"
    )
    assert read_form_file(path, FORM_01) == [RequestRow("Mai Văn Hùng", "Lái xe", "Văn phòng")]


def test_headerless_file_holds_the_forms_columns_in_order(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", "1,Mai Văn Hùng,Lái xe,Văn phòng\n2,Lý Thị Thu,Văn thư,\n")
    assert read_form_file(path, FORM_01) == [
        RequestRow("Mai Văn Hùng", "Lái xe", "Văn phòng"),
        RequestRow("Lý Thị Thu", "Văn thư", ""),
    ]


def test_values_are_nfc(tmp_path: Path) -> None:
    decomposed = "Nguye\u0302\u0303n Thi\u0323 Thu\u0309y"  # as macOS writes it
    path = write_csv(tmp_path / "a.csv", f"Họ và tên,Chức vụ,Bộ phận công tác\n{decomposed},A,B\n")
    (row,) = read_form_file(path, FORM_01)
    assert row.name == "Nguyễn Thị Thủy"


# --- Mẫu 02 -----------------------------------------------------------------------------


def test_regulation_example_for_form_02(tmp_path: Path) -> None:
    # Laid out as the regulation's table: "Đề nghị thay đổi" spans "Mã" and "Nội dung
    # mới" on a second header row, and a person's codes and values share one cell.
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["STT", "Họ và tên", "Địa chỉ hộp thư đã được cấp", "Đề nghị thay đổi", None])
    sheet.append([None, None, None, "Mã ", "Nội dung mới"])
    sheet.merge_cells("D1:E1")
    sheet.append(
        [
            1,
            "Nguyễn Văn Nguyên",
            "nvnguyen_ttr",
            "1\n2\n3",
            "Trưởng phòng\nPhòng Nghiệp vụ 3\nnvnguyen",
        ]
    )
    sheet.append([2, "Trần Cao Nguyên", "tcnguyen", "1\n2", "Chuyên viên\nVăn phòng"])
    sheet.append([3, "Phạm Du Lịch", "pdlich_ttr", 3, "pdlich"])
    sheet.append([4, None, None, None, None])
    sheet.append(["...", None, None, None, None])
    path = tmp_path / "mau02.xlsx"
    workbook.save(path)
    assert read_form_file(path, FORM_02) == REGULATION_02


def test_form_02_one_change_per_line(tmp_path: Path) -> None:
    # Name and address blank on a person's further lines, or repeated.
    path = write_csv(
        tmp_path / "a.csv",
        "STT,Họ và tên,Địa chỉ (hộp thư đã được cấp),Mã,Nội dung mới\n"
        "1,Nguyễn Văn Nguyên,nvnguyen_ttr,1,Trưởng phòng\n"
        ",,,2,Phòng Nghiệp vụ 3\n"
        ",,,3,nvnguyen\n"
        "2,Trần Cao Nguyên,tcnguyen,1,Chuyên viên\n"
        ",TRẦN CAO NGUYÊN,TCNguyen,2,Văn phòng\n"
        "3,Phạm Du Lịch,pdlich_ttr,3,pdlich\n",
    )
    assert read_form_file(path, FORM_02) == REGULATION_02


def test_form_02_codes_separated_by_commas(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "a.xlsx",
        [
            ["Họ và tên", "Địa chỉ hộp thư", "Mã", "Nội dung mới"],
            [
                "Nguyễn Văn Nguyên",
                "nvnguyen_ttr",
                "1,2,3",
                "Trưởng phòng; Phòng Nghiệp vụ 3;nvnguyen",
            ],
            # Excel with Vietnamese settings keeps "1,2" as the number 1.2.
            ["Trần Cao Nguyên", "tcnguyen", 1.2, "Chuyên viên, Văn phòng"],
            ["Phạm Du Lịch", "pdlich_ttr", "3", "pdlich"],
        ],
    )
    assert read_form_file(path, FORM_02) == REGULATION_02


def test_form_02_code_3_without_value_converts_the_address(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "a.xlsx",
        [
            ["Họ và tên", "Địa chỉ hộp thư", "Mã", "Nội dung mới"],
            ["Phạm Du Lịch", "pdlich_ttr@khanhhoa.gov.vn", 3, None],
            ["Trần Cao Nguyên", "tcnguyen", "1\n3", "Chuyên viên"],
        ],
    )
    assert read_form_file(path, FORM_02) == [
        RequestRow(name="Phạm Du Lịch", address="pdlich_ttr@khanhhoa.gov.vn", changes=((3, ""),)),
        RequestRow(
            name="Trần Cao Nguyên", address="tcnguyen", changes=((1, "Chuyên viên"), (3, ""))
        ),
    ]


def test_form_02_english_headers(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "a.csv",
        "Name,Address,Code,New value\nPhạm Du Lịch,PDLich_TTR,3,PDLich\n",
    )
    assert read_form_file(path, FORM_02) == [
        RequestRow(name="Phạm Du Lịch", address="pdlich_ttr", changes=((3, "pdlich"),))
    ]


# --- Mẫu 03 -----------------------------------------------------------------------------


def test_form_03_regulation_columns_and_reason(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "a.xlsx",
        [
            [
                "STT",
                "Họ và tên",
                "Chức vụ",
                "Bộ phận công tác",
                "Địa chỉ hộp thư được cấp",
                "Lý do",
            ],
            [1, "Phạm Du Lịch", "Chuyên viên", "Phòng Nghiệp vụ 1", "pdlich_ttr", "Nghỉ hưu"],
            [2, "Trần Cao Nguyên", None, None, "TCNguyen", None],
        ],
    )
    assert read_form_file(path, FORM_03) == [
        RequestRow(
            "Phạm Du Lịch", "Chuyên viên", "Phòng Nghiệp vụ 1", "pdlich_ttr", reason="Nghỉ hưu"
        ),
        RequestRow("Trần Cao Nguyên", address="tcnguyen"),
    ]


def test_form_03_without_diacritics_in_the_header(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "a.csv",
        "Ho va ten;Dia chi hop thu duoc cap;Ly do\nPhạm Du Lịch;pdlich_ttr;Nghỉ việc\n",
    )
    assert read_form_file(path, FORM_03) == [
        RequestRow("Phạm Du Lịch", address="pdlich_ttr", reason="Nghỉ việc")
    ]


# --- typed rows -------------------------------------------------------------------------


def test_typed_rows_form_01() -> None:
    text = (
        "\n"
        "Lê Thị Hồng | Chuyên viên | Phòng Nghiệp vụ 1\n"
        "   \n"
        "Võ Minh Tuấn\tKế toán\tVăn phòng\n"
        "Mai Văn Hùng;Lái xe;Văn phòng;mvhung\n"
    )
    assert parse_typed_rows(text, FORM_01) == [
        RequestRow("Lê Thị Hồng", "Chuyên viên", "Phòng Nghiệp vụ 1"),
        RequestRow("Võ Minh Tuấn", "Kế toán", "Văn phòng"),
        RequestRow("Mai Văn Hùng", "Lái xe", "Văn phòng", "mvhung"),
    ]


def test_typed_rows_pasted_from_the_forms_table() -> None:
    # A copy from Excel: TAB between cells, the header line and the STT column.
    text = "STT\tHọ và tên\tChức vụ\tBộ phận công tác\r\n1\tLê Thị Hồng\tChuyên viên\tVăn phòng\r\n"
    assert parse_typed_rows(text, FORM_01) == [
        RequestRow("Lê Thị Hồng", "Chuyên viên", "Văn phòng")
    ]


def test_typed_rows_form_02_one_change_per_line() -> None:
    text = (
        "Nguyễn Văn Nguyên | nvnguyen_ttr | 1 | Trưởng phòng\n"
        "| | 2 | Phòng Nghiệp vụ 3\n"
        "Nguyễn Văn Nguyên | nvnguyen_ttr | 3 | nvnguyen\n"
        "Trần Cao Nguyên; tcnguyen; 1, 2; Chuyên viên, Văn phòng\n"
        "Phạm Du Lịch\tpdlich_ttr\t3\tpdlich\n"
    )
    assert parse_typed_rows(text, FORM_02) == REGULATION_02


def test_typed_rows_extra_separators_belong_to_the_last_field() -> None:
    assert parse_typed_rows("Trần Cao Nguyên;tcnguyen;2;Phòng Tổ chức; Biên chế", FORM_02) == [
        RequestRow(
            name="Trần Cao Nguyên", address="tcnguyen", changes=((2, "Phòng Tổ chức; Biên chế"),)
        )
    ]
    assert parse_typed_rows("Phạm Du Lịch|pdlich_ttr|Nghỉ hưu|từ 01/7", FORM_03) == [
        RequestRow("Phạm Du Lịch", address="pdlich_ttr", reason="Nghỉ hưu từ 01/7")
    ]


def test_typed_rows_form_03() -> None:
    assert parse_typed_rows(
        "Phạm Du Lịch|pdlich_ttr|Nghỉ hưu\nTrần Cao Nguyên|tcnguyen", FORM_03
    ) == [
        RequestRow("Phạm Du Lịch", address="pdlich_ttr", reason="Nghỉ hưu"),
        RequestRow("Trần Cao Nguyên", address="tcnguyen"),
    ]


def test_typed_rows_problems_use_line_numbers() -> None:
    text = "Lê Thị Hồng|CV|VP\n\nHồng|CV|VP\nLê Thị Hồng|CV|VP|a|b\nlê thị hồng|cv|vp\n"
    with pytest.raises(InvalidInput) as caught:
        parse_typed_rows(text, FORM_01)
    assert rows_with_problems(caught.value) == [3, 4, 5]
    assert "more than the form's 4" in problems_of(caught.value)[1][1]
    assert "row 1" in problems_of(caught.value)[2][1]


@pytest.mark.parametrize("text", ["", "\n \n\t\n", "Họ và tên|Chức vụ|Bộ phận công tác\n"])
def test_nothing_typed(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_typed_rows(text, FORM_01)
    assert rows_with_problems(caught.value) == [0]


# Pieces of plausible and hostile typed rows, glued together at random.
_TYPED_PIECES = [
    *"|;\t\n\r ,.@_-=",
    "Nguyễn Văn Nguyên",
    "Trần Cao Nguyên",
    "Phòng Nghiệp vụ 3",
    "nvnguyen_ttr",
    "postmaster",
    "x@y.vn",
    "1",
    "2",
    "3",
    "4",
    "1,2",
    "1\n2",
    "1.2",
    "STT",
    "Họ và tên",
    "9" * 5000,  # int() refuses strings this long
    "x" * 250,
    "\u0301",
    "\u00a0",
    "\u200b",
    "\x00",
    "\ud800",
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from(_TYPED_PIECES), st.text(max_size=4)), max_size=40).map(
        "".join
    ),
    st.sampled_from([FORM_01, FORM_02, FORM_03]),
)
def test_parse_typed_rows_raises_only_invalid_input(text: str, form: str) -> None:
    try:
        rows = parse_typed_rows(text, form)
    except InvalidInput as error:
        assert error.details["problems"]
        assert error.message_vi and error.message_en
    else:
        assert rows and all(isinstance(row, RequestRow) and row.name for row in rows)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300), st.sampled_from([FORM_01, FORM_02, FORM_03]))
def test_parse_typed_rows_any_text(text: str, form: str) -> None:
    try:
        parse_typed_rows(text, form)
    except InvalidInput as error:
        assert error.details["problems"]


# --- problems ---------------------------------------------------------------------------


def test_every_problem_is_reported_with_its_row(tmp_path: Path) -> None:
    long_position = "Chuyên viên " * 20
    workbook = Workbook()
    sheet = workbook.active
    for row in [
        ["DANH SÁCH ĐỀ NGHỊ CẤP MỚI"],
        ["STT", "Họ và tên", "Chức vụ", "Bộ phận công tác", "Địa chỉ hộp thư"],
        [1, "Lê Thị Hồng", "Chuyên viên", "Văn phòng", None],  # row 3: fine
        [2, None, "Chuyên viên", "Văn phòng", None],  # row 4: no name
        [3, "Hồng", "Chuyên viên", "Văn phòng", None],  # row 5: one word
        [4, "Lê Văn 3", "Chuyên viên", "Văn phòng", None],  # row 6: a digit
        [5, "Võ Minh Tuấn", long_position, "Văn phòng", None],  # row 7: too long
        [6, "Mai Văn Hùng", "Lái xe", "Văn phòng", "mv hung"],  # row 8: bad address
        [7, "Lý Thị Thu", "Văn thư", "Văn phòng", "postmaster"],  # row 9: reserved
        [8, "LÊ THỊ HỒNG", "Chuyên viên", "Văn phòng", None],  # row 10: row 3 again
        [9, "Đỗ Văn Bình", "=B3", "Văn phòng", None],  # row 11: a formula
        [10, "Hà Văn Cường", "Chuyên viên", "#REF!", None],  # row 12: a formula error
        [11, "Đặng Thị Dung", "Văn thư", "Văn phòng", "ltthu@x"],  # row 13: bad domain
    ]:
        sheet.append(row)
    sheet["C11"].data_type = "s"  # "=B3" kept as text: a formula nobody evaluated
    sheet["D12"].data_type = "e"  # as Excel stores a failed formula's cached value
    path = tmp_path / "a.xlsx"
    workbook.save(path)
    with pytest.raises(InvalidInput) as caught:
        read_form_file(path, FORM_01)
    error = caught.value
    assert rows_with_problems(error) == [4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    reasons = dict(problems_of(error))
    assert "name is missing" in reasons[4]
    assert "two words" in reasons[5]
    assert "200 characters" in reasons[7]
    assert "' '" in reasons[8]
    assert "row 3" in reasons[10]
    assert "formula" in reasons[11] and "C" in reasons[11]
    assert "#REF!" in reasons[12]
    assert "e-mail address" in reasons[13]
    # The message names the first rows and how many more there are.
    assert "dòng 4, 5, 6, 7, 8 và 5 dòng khác" in error.message_vi
    assert "rows 4, 5, 6, 7, 8 and 5 more" in error.message_en
    assert "Thiếu họ và tên" in error.message_vi
    assert error.details["file"] == "a.xlsx"


def test_form_02_problems(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "a.csv",
        "Họ và tên,Địa chỉ hộp thư đã được cấp,Mã,Nội dung mới\n"
        "Nguyễn Văn Nguyên,nvnguyen_ttr,4,Trưởng phòng\n"  # 2: unknown code
        "Trần Cao Nguyên,tcnguyen,1,\n"  # 3: code 1 without value
        ",,2,\n"  # 4: code 2 without value
        "Phạm Du Lịch,,3,pdlich\n"  # 5: no address
        "Hoàng Văn Em,hvem,,Chuyên viên\n"  # 6: value without code
        'Hoàng Thị Gấm,htgam,"1,2","A, B, C"\n'  # 7: values do not match the codes
        "Lương Văn Hải,lvhai,3,lv hai\n"  # 8: a bad new address
        "Bùi Văn Ích,bvich,1,Văn thư\n"
        ",,1,Lái xe\n"  # 10: code 1 twice for one person
        "Ngô Văn Khoa,nvkhoa,,\n"  # 11: no change at all
        "Nguyễn Văn Nguyên,nvnguyen_ttr,2,Văn phòng\n"  # 12: row 2's person again
        "Cao Văn Lâm,tcnguyen,1,Văn thư\n",  # 13: row 3's mailbox for someone else
    )
    with pytest.raises(InvalidInput) as caught:
        read_form_file(path, FORM_02)
    found = problems_of(caught.value)
    assert [row for row, _ in found] == [2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13]
    reasons = dict(found)
    assert "Unknown change code '4'" in reasons[2]
    assert "Code 1 (Position) needs a new value" in reasons[3]
    assert "Code 2 (Department) needs a new value" in reasons[4]
    assert "address is missing" in reasons[5]
    assert "code (1, 2 or 3) is missing" in reasons[6]
    assert "do not match" in reasons[7]
    assert "new value cell" in reasons[8]
    assert "row 9" in reasons[10]
    assert "No change" in reasons[11]
    assert "This person is already listed on row 2" in reasons[12]
    assert "someone else" in reasons[13]


def test_form_03_duplicates_and_missing_address(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "a.csv",
        "Họ và tên,Địa chỉ hộp thư\n"
        "Phạm Du Lịch,pdlich_ttr\n"
        "Trần Cao Nguyên,\n"
        "Phạm  du lịch,PDLICH_TTR\n",
    )
    with pytest.raises(InvalidInput) as caught:
        read_form_file(path, FORM_03)
    assert problems_of(caught.value) == [
        (3, "The address is missing."),
        (4, "This person is already listed on row 2."),
    ]


@pytest.mark.parametrize(
    ("form", "header", "missing"),
    [
        (FORM_01, "Họ và tên,Bộ phận công tác", ["position"]),
        (FORM_02, "STT,Họ và tên,Mã,Nội dung", ["address"]),
        (FORM_02, "Họ và tên,Địa chỉ", ["code", "new value"]),
        (FORM_03, "Chức vụ,Địa chỉ hộp thư", ["name"]),
    ],
)
def test_missing_column_is_named(
    tmp_path: Path, form: str, header: str, missing: list[str]
) -> None:
    path = write_csv(tmp_path / "a.csv", f"Tiêu đề\n{header}\nPhạm Du Lịch,Chuyên viên\n")
    with pytest.raises(InvalidInput) as caught:
        read_form_file(path, form)
    found = problems_of(caught.value)
    assert [row for row, _ in found] == [2] * len(missing)
    for (_, reason), label in zip(found, missing, strict=True):
        assert f"no {label} column" in reason


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.csv", b""),
        ("blank.csv", b"\xef\xbb\xbf\r\n , , \r\n"),
        ("header-only.csv", "STT,Họ và tên,Chức vụ,Bộ phận công tác\n1,,,\n".encode()),
    ],
)
def test_file_without_data_rows(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InvalidInput) as caught:
        read_form_file(path, FORM_01)
    assert rows_with_problems(caught.value) == [0]
    assert "no data rows" in caught.value.message_en


def test_empty_xlsx(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "a.xlsx", [])
    with pytest.raises(InvalidInput) as caught:
        read_form_file(path, FORM_03)
    assert rows_with_problems(caught.value) == [0]


def test_too_many_rows(tmp_path: Path) -> None:
    lines = [f"Nguyễn Văn {chr(0x41 + i % 26)}{i:05d}x,CV,VP" for i in range(MAX_ROWS + 50)]
    # The names hold digits: each is a problem, but reading stops at the limit.
    path = write_csv(tmp_path / "a.csv", "Họ và tên,Chức vụ,Bộ phận công tác\n" + "\n".join(lines))
    with pytest.raises(InvalidInput) as caught:
        read_form_file(path, FORM_01)
    found = problems_of(caught.value)
    assert len(found) == MAX_ROWS + 1
    assert found[-1][0] == MAX_ROWS + 2  # the header is row 1
    assert "longer than 2,000 rows" in found[-1][1]
    assert "2.000" in caught.value.details["problems"][-1]["reason_vi"]


def test_the_row_limit_itself_is_accepted(tmp_path: Path) -> None:
    lines = [f"Nguyễn Văn An,Chuyên viên,Tổ {i}" for i in range(MAX_ROWS)]
    path = write_csv(tmp_path / "a.csv", "Họ và tên,Chức vụ,Bộ phận công tác\n" + "\n".join(lines))
    assert len(read_form_file(path, FORM_01)) == MAX_ROWS
    typed = "\n".join(line.replace(",", "|") for line in lines)
    assert len(parse_typed_rows(typed, FORM_01)) == MAX_ROWS


def test_typed_rows_over_the_limit() -> None:
    text = "\n".join(f"Nguyễn Văn An|CV|Phòng {i}" for i in range(MAX_ROWS + 1))
    with pytest.raises(InvalidInput) as caught:
        parse_typed_rows(text, FORM_01)
    assert rows_with_problems(caught.value) == [MAX_ROWS + 1]


def test_long_cells_are_refused(tmp_path: Path) -> None:
    long = "x" * 201
    path = write_xlsx(
        tmp_path / "a.xlsx",
        [
            ["Họ và tên", "Địa chỉ hộp thư", "Mã", "Nội dung mới", "Chức vụ", "Lý do"],
            ["Phạm Du Lịch", "pdlich_ttr", 2, long, None, None],
        ],
    )
    with pytest.raises(InvalidInput) as caught:
        read_form_file(path, FORM_02)
    assert problems_of(caught.value) == [(2, "The Department cell is longer than 200 characters.")]
    path = write_xlsx(
        tmp_path / "b.xlsx",
        [["Họ và tên", "Địa chỉ hộp thư", "Lý do"], ["Phạm Du Lịch", "pdlich_ttr", long]],
    )
    with pytest.raises(InvalidInput) as caught:
        read_form_file(path, FORM_03)
    assert problems_of(caught.value) == [(2, "The reason cell is longer than 200 characters.")]


def test_unevaluated_formula_in_a_csv(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "a.csv",
        'Họ và tên,Địa chỉ hộp thư\nPhạm Du Lịch,"=HYPERLINK(""mailto:pdlich@x.vn"",""pdlich"")"\n',
    )
    with pytest.raises(InvalidInput) as caught:
        read_form_file(path, FORM_03)
    ((row, reason),) = problems_of(caught.value)
    assert row == 2
    assert "column B" in reason and "formula" in reason


# "Họ và tên,Chức vụ,Bộ phận công tác" and one official typed in TCVN3 (ABC), as the bytes
# read in Windows-1252.
_TCVN3_AS_CP1252 = (
    "Hä vµ tªn,Chøc vô,Bé phËn c«ng t¸c\r\n"
    "NguyÔn V¨n An,Chuyªn viªn,V¨n phßng\r\n"
    "TrÇn ThÞ Thñy Tiªn,Phã Tr\u00adëng phßng,Phßng NghiÖp vô\r\n"
)


def test_tcvn3_csv_is_refused_as_staff_lists_are(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "mau01.csv", _TCVN3_AS_CP1252, "cp1252")
    with pytest.raises(InvalidInput) as caught:
        read_form_file(path, FORM_01)
    error = caught.value
    assert rows_with_problems(error) == [0]
    assert "TCVN3" in error.message_vi and "TCVN 6909:2001" in error.message_vi
    assert error.details["encoding"] == "TCVN3 (ABC)"


def test_windows_1258_csv_is_read(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes("Ho va ten,Dia chi hop thu\nLê Văn An,lvan\n".encode("cp1258"))
    assert read_form_file(path, FORM_03) == [RequestRow("Lê Văn An", address="lvan")]


@pytest.mark.parametrize("name", ["a.xls", "a.ods", "a.txt", "a"])
def test_other_file_types_are_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"Ho va ten\n")
    with pytest.raises(InvalidInput) as caught:
        read_form_file(path, FORM_01)
    assert rows_with_problems(caught.value) == [0]
    assert ".xlsx" in caught.value.message_vi


def test_damaged_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "a.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(InvalidInput) as caught:
        read_form_file(path, FORM_01)
    assert rows_with_problems(caught.value) == [0]


@pytest.mark.parametrize("form", ["04", "reset", ""])
def test_unknown_form(tmp_path: Path, form: str) -> None:
    with pytest.raises(InvalidInput):
        parse_typed_rows("Lê Văn An|CV|VP", form)
    with pytest.raises(InvalidInput):
        template_xlsx(form)


# --- templates --------------------------------------------------------------------------


EXPECTED_TEMPLATE_ROWS = {
    FORM_01: [RequestRow("Nguyễn Văn An", "Chuyên viên", "Văn phòng")],
    FORM_02: REGULATION_02[:1],
    FORM_03: [
        RequestRow(
            "Phạm Du Lịch", "Chuyên viên", "Phòng Nghiệp vụ 1", "pdlich_ttr", reason="Nghỉ hưu"
        )
    ],
}


@pytest.mark.parametrize("form", [FORM_01, FORM_02, FORM_03])
def test_template_xlsx_round_trip(tmp_path: Path, form: str) -> None:
    data = template_xlsx(form)
    path = tmp_path / f"mau{form}.xlsx"
    path.write_bytes(data)
    assert read_form_file(path, form) == EXPECTED_TEMPLATE_ROWS[form]
    workbook = load_workbook(io.BytesIO(data))
    header = [cell.value for cell in workbook.worksheets[0][1]]
    assert header[:2] == ["STT", "Họ và tên"]
    assert "Hướng dẫn" in workbook.sheetnames


def test_template_xlsx_02_has_the_regulations_header() -> None:
    sheet = load_workbook(io.BytesIO(template_xlsx(FORM_02))).worksheets[0]
    assert [c.value for c in sheet[1]] == [
        "STT",
        "Họ và tên",
        "Địa chỉ hộp thư đã được cấp",
        "Đề nghị thay đổi",
        None,
    ]
    assert [c.value for c in sheet[2]][3:] == ["Mã", "Nội dung mới"]


@pytest.mark.parametrize("form", [FORM_01, FORM_02, FORM_03])
def test_template_csv_round_trip(tmp_path: Path, form: str) -> None:
    text = template_csv(form)
    assert text.startswith("\ufeffSTT,Họ và tên,")
    path = tmp_path / f"mau{form}.csv"
    path.write_bytes(text.encode("utf-8"))
    assert read_form_file(path, form) == EXPECTED_TEMPLATE_ROWS[form]
