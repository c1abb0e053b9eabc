"""Unit tests for govmail.policy.doctypes (R14): messages are classified by document
number, subject, file names and first page; the type list is a data file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from govmail.core.errors import InvalidInput
from govmail.policy.doctypes import Classification, DocumentType, DocumentTypes
from govmail.policy.extract import document_text
from tests.corpus import documents

TYPES = DocumentTypes.load()

NATIONAL_HEADER = (
    "UBND TỈNH KHÁNH HÒA          CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM\n"
    "SỞ NỘI VỤ          Độc lập - Tự do - Hạnh phúc\n"
)


def first_page(number_line: str, *body: str) -> str:
    return (
        NATIONAL_HEADER
        + f"{number_line}          Khánh Hòa, ngày 10 tháng 3 năm 2025\n"
        + "\n".join(body)
        + "\n"
    )


GIAY_MOI = first_page(
    "Số: 123/GM-UBND",
    "GIẤY MỜI",
    "Họp triển khai kế hoạch chuyển đổi số năm 2025",
    "Căn cứ Quyết định số 1480/QĐ-UBND ngày 05/6/2024 của UBND tỉnh;",
    "UBND tỉnh trân trọng kính mời lãnh đạo các sở, ban, ngành dự họp.",
)
CONG_VAN = first_page(
    "Số: 456/UBND-KT",
    "V/v tăng cường phòng, chống thiên tai",
    "Kính gửi: Các sở, ban, ngành thuộc tỉnh.",
    "Thực hiện Công điện số 12/CĐ-TTg của Thủ tướng Chính phủ…",
)
QUYET_DINH = first_page(
    "Số: 08/2014/QĐ-UBND",
    "QUYẾT ĐỊNH",
    "Ban hành Quy chế quản lý văn bản điện tử",
)
KE_HOACH_NO_NUMBER = NATIONAL_HEADER + "\n\nKẾ HOẠCH\nTriển khai công tác năm 2025\n"


def classify(subject: str = "", filenames: tuple[str, ...] = (), text: str = "") -> Classification:
    return TYPES.classify(subject, list(filenames), text)


# --- Document numbers ------------------------------------------------------------------


def test_number_on_the_first_page_decides() -> None:
    result = classify("Gửi tài liệu họp", (), GIAY_MOI)
    assert result == Classification("giay-moi", "Giấy mời", "123/GM-UBND", "number")


def test_number_with_year_of_a_normative_document() -> None:
    result = classify("Fwd: văn bản mới", (), QUYET_DINH)
    assert (result.type_id, result.number, result.signal) == (
        "quyet-dinh",
        "08/2014/QĐ-UBND",
        "number",
    )


def test_cited_numbers_in_the_text_are_not_the_documents_own() -> None:
    text = "Căn cứ Quyết định số 1480/QĐ-UBND ngày 05/6/2024;\nThực hiện Kế hoạch số 12/KH-UBND"
    assert classify("Gửi các đơn vị", (), text).type_id == "khac"


def test_number_beats_the_subject() -> None:
    assert classify("Báo cáo kết quả họp", (), GIAY_MOI).type_id == "giay-moi"


def test_number_in_the_subject() -> None:
    result = classify("Quyết định 1480/QĐ-UBND phê duyệt đề án")
    assert (result.type_id, result.number, result.signal) == (
        "quyet-dinh",
        "1480/QĐ-UBND",
        "number",
    )


def test_number_typed_without_dyet() -> None:
    assert classify("QD 1480/QD-UBND").type_id == "quyet-dinh"
    assert classify("", (), first_page("Số: 12/ĐA-UBND")).type_id == "de-an"
    assert classify("", (), first_page("Số: 12/DA-UBND")).type_id == "du-an"


def test_agency_number_is_a_cong_van() -> None:
    result = classify("Gửi các sở", (), CONG_VAN)
    assert result == Classification("cong-van", "Công văn", "456/UBND-KT", "number")


def test_subject_keyword_beats_an_agency_number() -> None:
    # A cover letter (công văn) sending a weekly report: the subject names the report.
    result = classify("Báo cáo tuần 45", (), CONG_VAN)
    assert (result.type_id, result.number, result.signal) == (
        "bao-cao-tuan",
        "456/UBND-KT",
        "subject",
    )


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Báo cáo tuần 45", "bao-cao-tuan"),
        ("Báo cáo tháng 10/2025", "bao-cao-thang"),
        ("Báo cáo kết quả thực hiện", "bao-cao"),
    ],
)
def test_bc_number_is_refined_by_the_subject(subject: str, expected: str) -> None:
    result = classify(subject, (), first_page("Số: 77/BC-SNV", "BÁO CÁO"))
    assert (result.type_id, result.signal) == (expected, "number")


def test_bc_number_is_refined_by_the_title() -> None:
    text = first_page("Số: 77/BC-SNV", "BÁO CÁO TUẦN", "Tình hình thực hiện nhiệm vụ tuần 45")
    assert classify("Gửi báo cáo", (), text).type_id == "bao-cao-tuan"


# Nghị định 30/2020/NĐ-CP's abbreviations (VIETNAMESE.md) and the copies.
ND30 = {
    "NQ": "nghi-quyet",
    "QĐ": "quyet-dinh",
    "CT": "chi-thi",
    "QC": "quy-che",
    "QyĐ": "quy-dinh",
    "TC": "thong-cao",
    "TB": "thong-bao",
    "HD": "huong-dan",
    "CTr": "chuong-trinh",
    "KH": "ke-hoach",
    "PA": "phuong-an",
    "ĐA": "de-an",
    "DA": "du-an",
    "BC": "bao-cao",
    "BB": "bien-ban",
    "TTr": "to-trinh",
    "HĐ": "hop-dong",
    "CĐ": "cong-dien",
    "BGN": "ban-ghi-nho",
    "BTT": "ban-thoa-thuan",
    "GUQ": "giay-uy-quyen",
    "GM": "giay-moi",
    "GGT": "giay-gioi-thieu",
    "GNP": "giay-nghi-phep",
    "PG": "phieu-gui",
    "PC": "phieu-chuyen",
    "PB": "phieu-bao",
    "SY": "ban-sao",
    "TrS": "ban-sao",
    "SL": "ban-sao",
}


@pytest.mark.parametrize(("abbreviation", "type_id"), sorted(ND30.items()))
def test_every_nd30_abbreviation(abbreviation: str, type_id: str) -> None:
    result = classify("Gửi văn bản", (), first_page(f"Số: 15/{abbreviation}-UBND"))
    assert (result.type_id, result.number) == (type_id, f"15/{abbreviation}-UBND")


def test_builtin_file_covers_the_29_nd30_types_and_r14s() -> None:
    ids = {t.id for t in TYPES.types}
    assert set(ND30.values()) | {"cong-van", "thu-cong"} <= ids  # 29 ND30 types
    assert len(set(ND30.values()) - {"ban-sao"} | {"cong-van", "thu-cong"}) == 29
    r14 = {"giay-moi", "phieu-gui", "phieu-chuyen", "bao-cao-tuan", "bao-cao-thang"}
    r14 |= {"ban-sao", "lich-cong-tac", "cong-van", "to-trinh", "quyet-dinh", "thong-bao"}
    assert r14 | {"ke-hoach", "khac"} <= ids
    for doc_type in TYPES.types:
        assert doc_type.id.isascii() and doc_type.name


# --- Subjects --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Giấy mời họp giao ban tháng 3", "giay-moi"),
        ("Giay moi hop giao ban", "giay-moi"),
        ("GIẤY MỜI DỰ HỘI NGHỊ", "giay-moi"),
        ("Mời họp triển khai chuyển đổi số", "giay-moi"),
        ("Báo cáo tuần 45", "bao-cao-tuan"),
        ("Bao cao tuan 45", "bao-cao-tuan"),
        ("Báo cáo hằng tháng", "bao-cao-thang"),
        ("Bao cao thang 10", "bao-cao-thang"),
        ("Báo cáo tình hình kinh tế - xã hội", "bao-cao"),
        ("Re: Fwd: Tờ trình đề nghị ban hành Quyết định", "to-trinh"),
        ("Lịch công tác tuần 45 của UBND tỉnh", "lich-cong-tac"),
        ("Phiếu chuyển đơn thư", "phieu-chuyen"),
        ("Phiếu gửi văn bản", "phieu-gui"),
        ("Bản sao y bản chính Quyết định 12", "ban-sao"),
        ("Thông báo kết luận của Chủ tịch UBND tỉnh", "thong-bao"),
        ("Kế hoạch tổ chức Tết", "ke-hoach"),
        ("Bản thoả thuận hợp tác", "ban-thoa-thuan"),  # old tone placement
        ("Giấy uỷ quyền ký thay", "giay-uy-quyen"),
        ("Công văn đề nghị hỗ trợ", "cong-van"),
        ("V/v tăng cường phòng chống thiên tai", "cong-van"),
        ("Về việc cử cán bộ đi học", "cong-van"),
    ],
)
def test_subject_keywords(subject: str, expected: str) -> None:
    result = classify(subject)
    assert (result.type_id, result.signal) == (expected, "subject")
    assert result.name == TYPES.get(expected).name


@pytest.mark.parametrize(
    "subject",
    [
        "Meeting invitation",
        "Weekly report",
        "Hello from the project team",
        "Gửi Sở Kế hoạch và Đầu tư tài liệu",  # an agency's name, not a kế hoạch
        "Ban Quản lý dự án gửi hồ sơ",
        "Sản phẩm thủ công mỹ nghệ",  # "thủ công", not "thư công"
        "",
    ],
)
def test_subjects_that_name_no_type(subject: str) -> None:
    assert classify(subject) == Classification("khac", "Khác", None, "none")


def test_v_v_counts_only_when_nothing_else_does() -> None:
    assert classify("V/v triển khai Quyết định 123").type_id == "quyet-dinh"
    assert classify("V/v họp", ("GM-12.pdf",)).type_id == "giay-moi"
    assert classify("V/v họp", (), KE_HOACH_NO_NUMBER).type_id == "ke-hoach"
    assert classify("V/v họp").type_id == "cong-van"


def test_earliest_keyword_in_the_subject_wins() -> None:
    assert classify("Giấy mời họp về Kế hoạch năm 2025").type_id == "giay-moi"
    assert classify("Kế hoạch tổ chức hội nghị, kèm giấy mời").type_id == "ke-hoach"


# --- File names and first-page titles --------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("GM-123.pdf", "giay-moi"),
        ("gm_123.pdf", "giay-moi"),
        ("1480_QD-UBND.pdf", "quyet-dinh"),
        ("123-TTr-SNV.signed.pdf", "to-trinh"),
        ("bao_cao_thang_10.docx", "bao-cao-thang"),
        ("Bao cao tuan 45.xlsx", "bao-cao-tuan"),
        ("KH 2025 chuyen doi so.docx", "ke-hoach"),
        ("Lịch công tác tuần 45.pdf", "lich-cong-tac"),
    ],
)
def test_file_names(filename: str, expected: str) -> None:
    result = classify("Gửi tài liệu", ("logo.png", filename))
    assert (result.type_id, result.signal) == (expected, "filename")


def test_file_names_without_type() -> None:
    for name in ("scan0001.pdf", "Document1.docx", "anh.jpg", "GMT+7 2025.txt"):
        assert classify("Gửi tài liệu", (name,)).type_id == "khac"


def test_subject_beats_file_name_and_file_name_beats_title() -> None:
    assert classify("Giấy mời họp", ("KH-12.pdf",), KE_HOACH_NO_NUMBER).type_id == "giay-moi"
    result = classify("Gửi tài liệu", ("TB-12.pdf",), KE_HOACH_NO_NUMBER)
    assert (result.type_id, result.signal) == ("thong-bao", "filename")


def test_title_after_the_national_header() -> None:
    result = classify("Gửi tài liệu", ("scan.pdf",), KE_HOACH_NO_NUMBER)
    assert result == Classification("ke-hoach", "Kế hoạch", None, "text")


def test_title_in_prose_case_is_not_a_title() -> None:
    text = NATIONAL_HEADER + "Kế hoạch này áp dụng cho các sở.\n"
    assert classify("Gửi tài liệu", (), text).type_id == "khac"


@pytest.mark.parametrize("fmt", ["pdf", "docx", "odt"])
def test_first_page_of_a_real_document(fmt: str) -> None:
    lines = [
        "UBND TỈNH KHÁNH HÒA",
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "Số: 123/GM-UBND",
        "GIẤY MỜI",
        "Dự họp giao ban công tác tháng 3",
    ]
    data = {
        "pdf": lambda: documents.pdf(lines),
        "docx": lambda: documents.docx(lines),
        "odt": lambda: documents.odf(lines),
    }[fmt]()
    result = classify("Kính gửi", (f"giaymoi.{fmt}",), document_text(data, fmt))
    assert result == Classification("giay-moi", "Giấy mời", "123/GM-UBND", "number")


# --- Robustness and cost ---------------------------------------------------------------


@given(st.text(max_size=120), st.lists(st.text(max_size=40), max_size=3), st.text(max_size=400))
def test_any_input_gives_a_declared_type(subject: str, names: list[str], text: str) -> None:
    result = TYPES.classify(subject, names, text)
    assert TYPES.get(result.type_id).name == result.name
    assert result.signal in {"number", "subject", "filename", "text", "none"}
    assert result.number is None or "/" in result.number


def test_cost_of_a_plain_message() -> None:
    best = float("inf")
    for index in range(200):
        start = time.perf_counter()
        TYPES.classify(f"Giấy mời họp giao ban tuần {index}", [], "")
        best = min(best, time.perf_counter() - start)
    assert best < 0.0005
    start = time.perf_counter()
    for _ in range(20):
        TYPES.classify("Gửi tài liệu", ["scan.pdf"], CONG_VAN * 3)
    assert (time.perf_counter() - start) / 20 < 0.005


# --- The data file ---------------------------------------------------------------------

CUSTOM = """
default = "khac"
number_without_type = "cong-van"
ignore = ["Phòng Họp"]

[[type]]
id = "cong-van"
name = "Công văn"
abbreviations = []
keywords = ["Công văn"]
fallback_keywords = ["V/v"]

[[type]]
id = "to-khai"
name = "Tờ khai"
abbreviations = ["TK"]
keywords = ["Tờ khai", "Họp"]

[[type]]
id = "khac"
name = "Khác"
"""


def test_custom_file_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "types.toml"
    path.write_text(CUSTOM, encoding="utf-8")
    types = DocumentTypes.load(path)
    assert [t.id for t in types.types] == ["cong-van", "to-khai", "khac"]
    assert types.get("to-khai") == DocumentType("to-khai", "Tờ khai", ("TK",), ("Tờ khai", "Họp"))
    assert types.classify("Nộp tờ khai thuế", [], "").type_id == "to-khai"
    assert types.classify("Gửi", [], first_page("Số: 5/TK-CT")).type_id == "to-khai"
    assert types.classify("Giấy mời họp", [], "").type_id == "to-khai"
    assert types.classify("Phòng họp số 2", [], "").type_id == "khac"  # ignored phrase
    assert types.classify("V/v abc", [], "").type_id == "cong-van"
    # GM is no abbreviation here: it reads as an agency's code, the mark of a công văn.
    assert types.classify("Gửi", [], first_page("Số: 5/GM-UBND")).type_id == "cong-van"


def _bad(tmp_path: Path, content: str | bytes) -> InvalidInput:
    path = tmp_path / "bad.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidInput) as caught:
        DocumentTypes.load(path)
    assert str(path) in caught.value.message_vi
    assert str(path) in caught.value.message_en
    return caught.value


@pytest.mark.parametrize(
    ("content", "vietnamese"),
    [
        ("default = ", "cú pháp TOML"),
        (b"default = '\xff'", "không đọc được"),
        ('default = "khac"', "không khai báo loại văn bản nào"),
        (CUSTOM + '\n[[type]]\nid = "khac"\nname = "Trùng"\n', "bị trùng"),
        (CUSTOM.replace('default = "khac"', 'default = "khong-co"'), "không được khai báo"),
        (CUSTOM.replace('number_without_type = "cong-van"', 'number_without_type = "x"'), "'x'"),
        (CUSTOM.replace('id = "to-khai"', 'id = "Tờ-khai"'), "'id'"),
        (CUSTOM.replace('id = "to-khai"', 'id = "-to-khai"'), "'id'"),
        (CUSTOM.replace('name = "Tờ khai"', 'name = ""'), "thiếu 'name'"),
        (CUSTOM.replace('keywords = ["Tờ khai", "Họp"]', 'keyword = ["Tờ khai"]'), "khóa"),
        (CUSTOM.replace('abbreviations = ["TK"]', 'abbreviations = "TK"'), "danh sách"),
        (CUSTOM.replace('abbreviations = ["TK"]', 'abbreviations = ["T/K"]'), "chữ cái"),
        (CUSTOM.replace('keywords = ["Tờ khai", "Họp"]', 'keywords = ["..."]'), "từ khóa"),
        (CUSTOM.replace("ignore = ", "ignored = "), "khóa không hợp lệ"),
        ('default = "khac"\ntype = "giay-moi"', "không khai báo"),
        ('default = "khac"\ntype = [1, 2]', "phải là bảng"),
        ('[[type]]\nid = "khac"\nname = "Khác"', "thiếu 'default'"),
    ],
)
def test_malformed_files_are_refused(tmp_path: Path, content: str | bytes, vietnamese: str) -> None:
    error = _bad(tmp_path, content)
    assert vietnamese in error.message_vi
    assert error.message_vi.startswith("Tệp danh mục loại văn bản")


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        DocumentTypes.load(tmp_path / "khong-co.toml")
    assert "khong-co.toml" in caught.value.message_vi
