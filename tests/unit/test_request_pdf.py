"""Unit tests for govmail.workflows.pdf: a request printed like the regulation's Mẫu 01–03."""

from __future__ import annotations

import random
import shutil
import time
import unicodedata
from datetime import UTC, date, datetime
from io import BytesIO
from itertools import product
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from govmail.core.errors import GovmailError, InvalidInput
from govmail.workflows.model import (
    DELEGATION,
    FORM_01,
    FORM_02,
    FORM_03,
    PENDING,
    RESET,
    MailboxRequest,
    RequestRow,
)
from govmail.workflows.pdf import DEFAULT_FONT_DIR, render_request_pdf

AGENCY = "Sở Thông tin và Truyền thông tỉnh Khánh Hòa"
MOTTO = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
SLOGAN = "Độc lập - Tự do - Hạnh phúc"
REQUESTER = {"name": "Lê Đức Phương", "position": "Chánh Văn phòng", "phone": "0258 3822 000"}

SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Huỳnh", "Võ", "Đặng", "Bùi", "Đỗ", "Âu Dương"]
MIDDLES = ["Văn", "Thị", "Đức", "Ngọc", "Hữu", "Quốc", "Thuỳ", "Nữ", "Đình", "Mỹ"]
GIVENS = ["Phương", "Khai", "Hùng", "Hoà", "Thuỷ", "Dũng", "Hương", "Nguyên", "Lịch", "Ý",
          "Nghĩa", "Khuê", "Uyên", "Yến", "Trường"]  # fmt: skip


def _names(count: int) -> list[str]:
    every = [" ".join(parts) for parts in product(SURNAMES, MIDDLES, GIVENS)]
    return random.Random(1480).sample(every, count)


def _request(
    form: str,
    rows: list[RequestRow] | None = None,
    late: bool = False,
    **payload: Any,
) -> MailboxRequest:
    return MailboxRequest(
        id=12,
        form=form,
        agency="stttt",
        agency_name=AGENCY,
        status=PENDING,
        submitted_by="ldphuong@khanhhoa.gov.vn",
        # 20:00 UTC on 4 February is already 5 February in Khánh Hòa.
        submitted_at=datetime(2025, 2, 4, 20, 0, tzinfo=UTC),
        decision_date=date(2025, 1, 10) if late else None,
        late=late,
        rows=tuple(rows or ()),
        payload={"requester": REQUESTER, **payload},
    )


def _pages(pdf: bytes) -> list[str]:
    reader = PdfReader(BytesIO(pdf))
    return [page.extract_text() for page in reader.pages]


def _assert_form_frame(page: str, title: str) -> None:
    # Long titles and agency names wrap: compare with line breaks as spaces.
    first_page = " ".join(page.split())
    assert AGENCY.upper() in first_page
    assert MOTTO in first_page
    assert SLOGAN in first_page
    assert "Khánh Hòa, ngày 05 tháng 02 năm 2025" in first_page
    assert f"PHIẾU YÊU CẦU {title}" in first_page
    assert "Kính gửi: Sở Thông tin và Truyền thông" in first_page
    assert "Họ và tên người yêu cầu: Lê Đức Phương" in first_page
    assert "Chức vụ: Chánh Văn phòng" in first_page
    assert f"Cơ quan công tác: {AGENCY}" in first_page
    assert "Điện thoại liên lạc: 0258 3822 000" in first_page


def test_form_01_for_a_new_agency_only_has_the_abbreviation_and_no_table() -> None:
    request = _request(FORM_01, agency={"name": "Ban Quản lý dự án", "abbr": "bqlda"})

    pages = _pages(render_request_pdf(request))

    assert len(pages) == 1
    _assert_form_frame(pages[0], "CẤP MỚI HỘP THƯ ĐIỆN TỬ CÔNG VỤ")
    assert (
        "1. Đề nghị cấp mới hộp thư điện tử công vụ cơ quan với tên viết tắt là: bqlda" in pages[0]
    )
    assert "STT" not in pages[0]
    assert "(Ký tên, đóng dấu)" in pages[0]
    assert "Số yêu cầu: 12 · Trang 1/1" in pages[0]
    assert "Nộp muộn" not in pages[0]


def test_form_01_with_300_people_repeats_the_heading_on_every_page() -> None:
    names = _names(300)
    rows = [
        RequestRow(name, position="Chuyên viên", department="Phòng Quản lý Đô thị")
        for name in names
    ]

    pages = _pages(render_request_pdf(_request(FORM_01, rows)))

    assert len(pages) > 1
    _assert_form_frame(pages[0], "CẤP MỚI HỘP THƯ ĐIỆN TỬ CÔNG VỤ")
    assert "1. Đề nghị cấp mới hộp thư điện tử công vụ cá nhân trong danh sách:" in pages[0]
    everything = "\n".join(pages)
    for number, name in enumerate(names, start=1):
        assert f"{number} {name} Chuyên viên" in everything
    for number, page in enumerate(pages, start=1):
        assert "STT Họ và tên Chức vụ Bộ phận công tác" in page
        assert f"Số yêu cầu: 12 · Trang {number}/{len(pages)}" in page
    assert "(Ký tên, đóng dấu)" in pages[-1]


def test_500_rows_render_well_under_two_seconds() -> None:
    rows = [RequestRow(name, "Chuyên viên", "Văn phòng Sở") for name in _names(500)]
    request = _request(FORM_01, rows)

    started = time.perf_counter()
    pdf = render_request_pdf(request)
    elapsed = time.perf_counter() - started

    assert elapsed < 2.0, f"500 rows took {elapsed:.2f} s"
    assert len(PdfReader(BytesIO(pdf)).pages) > 10


def test_a_long_name_wraps_inside_its_column() -> None:
    long_name = "Nguyễn " + " ".join(["Tôn Nữ Hoàng Thị Ngọc"] * 4) + " Khuê"
    request = _request(FORM_01, [RequestRow(long_name, "Chuyên viên", "Văn phòng")])

    page = _pages(render_request_pdf(request))[0]

    lines_with_name = [line for line in page.splitlines() if "Tôn Nữ Hoàng" in line]
    assert len(lines_with_name) > 1  # wrapped, not cut or run over the next column
    for word in long_name.split():
        assert word in page


def test_form_02_prints_each_code_level_with_its_new_content() -> None:
    department = "Phòng Quản lý Đô thị và Hạ tầng kỹ thuật khu vực phía Nam"  # wraps
    rows = [
        RequestRow(
            "Nguyễn Văn Nguyên",
            address="nvnguyen_ttr",
            changes=((1, "Trưởng phòng"), (2, department), (3, "nvnguyen")),
        ),
        RequestRow("Phạm Du Lịch", address="pdlich_ttr", changes=((3, "pdlich"),)),
    ]
    request = _request(FORM_02, rows, rename="Sở Khoa học và Công nghệ")
    placed: list[tuple[str, float, float]] = []  # text, x, y of each line drawn

    def visit(text: str, cm: Any, tm: Any, font: Any, size: Any) -> None:
        if text.strip():
            placed.append((text.strip(), float(tm[4]), float(tm[5])))

    reader = PdfReader(BytesIO(render_request_pdf(request)))
    page = reader.pages[0].extract_text()
    reader.pages[0].extract_text(visitor_text=visit)

    _assert_form_frame(page, "THAY ĐỔI THÔNG TIN HỘP THƯ ĐIỆN TỬ CÔNG VỤ")
    assert "Đổi tên cơ quan thành: Sở Khoa học và Công nghệ" in page
    assert "Đề nghị thay đổi" in page and "Nội dung mới" in page
    assert "Ghi chú: Nội dung cột “Mã” nhận giá trị 1 khi thay đổi chức vụ" in page
    for text in ("Nguyễn Văn Nguyên", "nvnguyen_ttr", "Phạm Du Lịch", "pdlich_ttr"):
        assert text in page

    def y_of(start: str) -> float:  # the line that starts with ``start``
        return round(next(y for t, _, y in placed if t.startswith(start)), 1)

    # The Mã column lies between the issued address and the new content.
    left = next(x for t, x, _ in placed if t == "nvnguyen_ttr")
    right = next(x for t, x, _ in placed if t == "Trưởng phòng")
    codes = {(t, round(y, 1)) for t, x, y in placed if left < x < right and t.isdigit()}
    assert ("1", y_of("Trưởng phòng")) in codes
    assert ("2", y_of("Phòng Quản lý Đô thị")) in codes  # the first of its two lines
    assert ("3", round(next(y for t, _, y in placed if t == "nvnguyen"), 1)) in codes
    assert ("3", y_of("pdlich")) in codes  # pdlich_ttr and pdlich share a one-line row
    assert len(codes) == 4


def test_form_03_lists_the_mailboxes_to_delete() -> None:
    rows = [
        RequestRow("Trần Thị Thuỷ", "Kế toán", "Văn phòng Sở", "ttthuy", reason="nghỉ hưu"),
        RequestRow("Đỗ Hữu Nghĩa", "Chuyên viên", "Thanh tra Sở", "dhnghia"),
    ]

    page = _pages(render_request_pdf(_request(FORM_03, rows)))[0]

    _assert_form_frame(page, "XÓA HỘP THƯ ĐIỆN TỬ CÔNG VỤ CÁ NHÂN")
    assert "Đề nghị xóa hộp thư điện tử công vụ cá nhân trong danh sách" in page
    assert "STT Họ và tên Chức vụ Bộ phận công tác" in page
    assert "Địa chỉ hộp thư được cấp" in page
    for text in ("Trần Thị Thuỷ", "Kế toán Văn phòng Sở ttthuy", "(lý do: nghỉ hưu)"):
        assert text in page
    assert "2 Đỗ Hữu Nghĩa Chuyên viên Thanh tra Sở dhnghia" in page


def test_a_late_report_shows_the_decision_date_and_the_late_mark() -> None:
    rows = [RequestRow("Bùi Quốc Trường", address="bqtruong", changes=((1, "Phó Giám đốc"),))]

    page = _pages(render_request_pdf(_request(FORM_02, rows, late=True)))[0]

    assert "Ngày quyết định có hiệu lực: 10/01/2025" in page
    assert "Nộp muộn (quá 10 ngày)" in page


def test_reset_and_delegation_are_letters_under_the_same_header() -> None:
    reset = _pages(render_request_pdf(_request(RESET, address="ldphuong")))[0]
    grant = _pages(render_request_pdf(_request(DELEGATION, person="ntmkhai")))[0]
    revoke = _pages(render_request_pdf(_request(DELEGATION, person="ntmkhai", revoke=True)))[0]

    _assert_form_frame(reset, "CẤP LẠI MẬT KHẨU HỘP THƯ ĐIỆN TỬ CÔNG VỤ")
    assert "Đề nghị cấp lại mật khẩu hộp thư điện tử công vụ ldphuong" in reset
    _assert_form_frame(grant, "ỦY QUYỀN SỬ DỤNG HỘP THƯ ĐIỆN TỬ CÔNG VỤ CƠ QUAN")
    assert "Ủy quyền cho ntmkhai sử dụng hộp thư điện tử công vụ cơ quan" in grant
    _assert_form_frame(revoke, "THU HỒI ỦY QUYỀN SỬ DỤNG HỘP THƯ ĐIỆN TỬ CÔNG VỤ CƠ QUAN")
    assert "thu hồi ủy quyền" in revoke and "ntmkhai" in revoke
    for page in (reset, grant, revoke):
        assert "(Ký tên, đóng dấu)" in page


def test_decomposed_input_prints_as_composed_vietnamese() -> None:
    name = unicodedata.normalize("NFD", "Huỳnh Thị Ngọc Ánh")
    request = _request(FORM_01, [RequestRow(name, "Chuyên viên", "Văn phòng")])

    page = _pages(render_request_pdf(request))[0]

    assert "Huỳnh Thị Ngọc Ánh" in unicodedata.normalize("NFC", page)
    assert name not in page


def test_place_and_addressee_are_the_callers() -> None:
    request = _request(RESET, address="ldphuong")

    pdf = render_request_pdf(request, place="Nha Trang", addressee="Trung tâm CNTT&TT")
    page = _pages(pdf)[0]

    assert "Nha Trang, ngày 05 tháng 02 năm 2025" in page
    assert "Kính gửi: Trung tâm CNTT&TT" in page


def test_a_font_dir_without_the_italic_face_still_renders(tmp_path: Path) -> None:
    for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"):
        shutil.copy(DEFAULT_FONT_DIR / name, tmp_path / name)

    pdf = render_request_pdf(_request(RESET, address="ldphuong"), font_dir=tmp_path)

    assert "(Ký tên, đóng dấu)" in _pages(pdf)[0]


def test_missing_fonts_give_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GovmailError) as caught:
        render_request_pdf(_request(RESET, address="ldphuong"), font_dir=tmp_path)

    assert "fonts-dejavu-core" in caught.value.message_vi
    assert "DejaVuSans.ttf" in caught.value.message_vi
    assert "fonts-dejavu-core" in caught.value.message_en


def test_an_unknown_form_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        render_request_pdf(_request("04"))
