"""Tests for R11: attachment formats recognised by content (govmail.policy.formats)."""

from __future__ import annotations

import io
import os
import struct
import time
import unicodedata
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from govmail.config import DEFAULT_FORMATS
from govmail.policy import formats
from govmail.policy.formats import FORMAT_EXTENSIONS, FormatProblem, check_attachment, sniff
from govmail.policy.parts import Attachment
from tests.corpus import documents

# --- Builders the shared corpus does not have ----------------------------------------------
_CT_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels"'
    ' ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
)
_OOXML = {
    "xlsx": (
        "xl/workbook.xml",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
    ),
    "xlsm": ("xl/workbook.xml", "application/vnd.ms-excel.sheet.macroEnabled.main+xml"),
    "pptx": (
        "ppt/presentation.xml",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
    ),
    "pptm": (
        "ppt/presentation.xml",
        "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml",
    ),
}


def ooxml(kind: str, *, extra: dict[str, bytes] | None = None, declare: bool = True) -> bytes:
    """An Excel or PowerPoint package (``kind`` as in _OOXML) with its main part declared
    in [Content_Types].xml (``declare=False``: only the part names say what it is)."""
    part, content_type = _OOXML[kind]
    override = f'<Override PartName="/{part}" ContentType="{content_type}"/>' if declare else ""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _CT_HEAD + override + "</Types>")
        z.writestr("_rels/.rels", "<Relationships/>")
        z.writestr(part, "<root>Báo cáo</root>")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return out.getvalue()


def biff_workbook(sheet_type: int) -> bytes:
    """A Workbook stream's globals: BOF, one BOUNDSHEET of ``sheet_type`` (0 worksheet,
    1 Excel 4.0 macro sheet), EOF."""
    name = b"Sheet1"
    bof = struct.pack("<HH", 0x0809, 16) + b"\x00\x06\x05\x00" + b"\x00" * 12
    sheet = struct.pack("<I", 0) + bytes([0, sheet_type]) + bytes([len(name), 0]) + name
    boundsheet = struct.pack("<HH", 0x0085, len(sheet)) + sheet
    return bof + boundsheet + struct.pack("<HH", 0x000A, 0)


def xls(*, sheet_type: int = 0, extra: dict[str, bytes] | None = None) -> bytes:
    return documents.ole2_with_streams({"Workbook": biff_workbook(sheet_type), **(extra or {})})


def ppt() -> bytes:
    return documents.ole2_with_streams(
        {"PowerPoint Document": b"\x00" * 64, "Current User": b"\x00" * 32}
    )


def doc(extra: dict[str, bytes] | None = None) -> bytes:
    return documents.ole2_with_streams(
        {"WordDocument": b"\xec\xa5" + b"\x00" * 62, **(extra or {})}
    )


def odf_with(kind: str, extra: dict[str, bytes]) -> bytes:
    """An ODF file of ``kind`` with ``extra`` members added (e.g. Basic macros)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(documents.odf(["Báo cáo"], kind))) as src,
        zipfile.ZipFile(out, "w") as z,
    ):
        for info in src.infolist():
            z.writestr(info, src.read(info))
        for name, data in extra.items():
            z.writestr(name, data)
    return out.getvalue()


def zip_stored(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def attach(name: str, data: bytes, *, inline: bool = False, ctype: str = "") -> Attachment:
    return Attachment(name, ctype or "application/octet-stream", data, inline=inline)


def check(
    name: str, data: bytes, allowed: tuple[str, ...] = DEFAULT_FORMATS, *, inline: bool = False
) -> FormatProblem | None:
    return check_attachment(attach(name, data, inline=inline), allowed)


WITH_ZIP = (*DEFAULT_FORMATS, "zip")
EXE = documents.windows_exe()
TEXT = "Kính gửi: Sở Khoa học và Công nghệ\r\nBáo cáo tuần 12\r\n".encode()

# One sample of every default format, named as practice names it.
ALLOWED_SAMPLES: dict[str, tuple[str, bytes]] = {
    "txt": ("ghi-chu.txt", TEXT),
    "doc": ("cong-van.doc", doc()),
    "odt": ("to-trinh.odt", documents.odf(["Tờ trình"], "text")),
    "ods": ("bang-luong.ods", documents.odf(["Bảng lương"], "spreadsheet")),
    "odp": ("trinh-chieu.odp", documents.odf(["Hội nghị"], "presentation")),
    "rtf": ("thong-bao.rtf", documents.rtf("Thông báo số 5")),
    "pdf": ("quyet-dinh.pdf", documents.pdf(["QUYẾT ĐỊNH", "Số: 1480/QĐ-UBND"])),
    "docx": ("bao-cao.docx", documents.docx(["Báo cáo tuần"])),
    "xlsx": ("so-lieu.xlsx", ooxml("xlsx")),
    "pptx": ("hoi-nghi.pptx", ooxml("pptx")),
    "xls": ("so-lieu-cu.xls", xls()),
    "ppt": ("hoi-nghi-cu.ppt", ppt()),
    "jpg": ("anh-chup.jpg", documents.jpeg()),
    "png": ("so-do.png", documents.png()),
}


# --- Every allowed format passes by name and content ---------------------------------------
def test_samples_cover_every_default_format() -> None:
    assert set(ALLOWED_SAMPLES) == set(DEFAULT_FORMATS)


@pytest.mark.parametrize("fmt", sorted(ALLOWED_SAMPLES))
def test_allowed_format_passes_and_is_recognised(fmt: str) -> None:
    name, data = ALLOWED_SAMPLES[fmt]
    assert sniff(data) == fmt
    assert check(name, data) is None


@pytest.mark.parametrize("fmt", sorted(ALLOWED_SAMPLES))
def test_extension_in_any_case_and_vietnamese_names(fmt: str) -> None:
    name, data = ALLOWED_SAMPLES[fmt]
    ext = name.rsplit(".", 1)[1]
    assert check(f"BAO CAO.{ext.upper()}", data) is None
    assert check(f"Báo cáo tuần 12 – Sở KH&CN.{ext.capitalize()}", data) is None
    nfd = unicodedata.normalize("NFD", f"Tờ trình số 5 của Ủy ban.{ext}")
    assert check(nfd, data) is None


def test_every_config_format_has_extensions() -> None:
    for fmt in (*DEFAULT_FORMATS, "zip", "gif", "xml", "html", "bmp", "webp", "tiff"):
        assert FORMAT_EXTENSIONS[fmt], fmt
    assert FORMAT_EXTENSIONS["jpg"][:3] == ("jpg", "jpeg", "jpe")
    assert "csv" in FORMAT_EXTENSIONS["txt"]
    assert "doc" in FORMAT_EXTENSIONS["rtf"]


def test_narrowed_list_refuses_what_it_leaves_out() -> None:
    name, data = ALLOWED_SAMPLES["docx"]
    problem = check(name, data, ("pdf",))
    assert problem is not None and problem.kind == "not_allowed"
    assert '"bao-cao.docx"' in problem.vi and ".pdf" in problem.vi
    assert check("quyet-dinh.pdf", ALLOWED_SAMPLES["pdf"][1], ("pdf",)) is None


def test_widened_list_accepts_what_it_adds() -> None:
    gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + b"\x00" * 20
    refused = check("bieu-do.gif", gif)
    assert refused is not None and refused.kind == "not_allowed"
    assert "ảnh GIF" in refused.vi
    assert check("bieu-do.gif", gif, (*DEFAULT_FORMATS, "gif")) is None


# --- Practice's compatible names ------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("cong-van.doc", documents.rtf("Công văn số 12")),  # Word's "save as RTF" kept .doc
        ("danh-sach.csv", "Họ và tên;Chức vụ\r\nLê Phương;Chuyên viên\r\n".encode()),
        ("nhat-ky.log", b"2025-01-01 ok\n"),
        ("bao-cao.doc", b"<html><head></head><body><p>B\xc3\xa1o c\xc3\xa1o</p></body></html>"),
        ("so-lieu.xls", b"<?xml version='1.0'?><Workbook><Worksheet/></Workbook>"),
        ("anh-chup.jpg", documents.png()),  # a PNG saved as .jpg opens everywhere
        ("ghi-chu.txt", "Báo cáo".encode("cp1258")),  # legacy 8-bit text
        ("ghi-chu.txt", "\ufeffBáo cáo".encode("utf-16-le")),
        ("ghi-chu.txt", b""),  # an empty text file
    ],
)
def test_compatible_names_pass(name: str, data: bytes) -> None:
    assert check(name, data) is None


def test_tcvn3_text_with_its_capitals_is_text() -> None:
    # TCVN3 puts some capitals (Ú Ụ …) on control-range bytes; still a text file.
    data = b"B\xb8o c\xb8o \x01\x02 \x11\x12\r\n"
    assert sniff(data) == "txt"
    assert check("van-ban-cu.txt", data) is None


# --- Disguised and dangerous files ----------------------------------------------------------
def test_executable_named_pdf_is_a_mismatch_naming_the_file() -> None:
    problem = check("bao-cao.pdf", EXE)
    assert problem is not None
    assert problem.kind == "mismatch"
    assert problem.filename == "bao-cao.pdf"
    assert problem.vi.startswith(
        'Tệp "bao-cao.pdf" không phải là tệp PDF (nội dung là tệp chạy được) — không được gửi'
    )
    assert "bao-cao.pdf" in problem.en and "executable" in problem.en


@pytest.mark.parametrize(
    "name",
    [
        "setup.exe",
        "CAI DAT.EXE",
        "bao-cao.pdf.exe",
        "bao-cao.exe.",  # Windows drops the trailing dot and runs it
        "bao-cao.exe  ",
        "cong-van.js",
        "tai-lieu.vbs",
        "chay.bat",
        "lien-ket.lnk",
        "trang.hta",
        "cap-nhat.ps1",
        "goi.msi",
        "anh.scr",
        "dia.iso",
        "cai-dat.sh",
        "bao-cao\u202efdp.exe",  # shows as "bao-caoexe.pdf"
    ],
)
def test_executable_extensions_are_refused_whatever_the_content(name: str) -> None:
    problem = check(name, TEXT, (*DEFAULT_FORMATS, "exe", "script", "txt"))
    assert problem is not None and problem.kind == "executable"
    assert "tệp lệnh" in problem.vi or "chương trình" in problem.vi


def test_executable_content_without_name_or_with_unknown_name() -> None:
    for name in ("", "du-lieu.dat"):
        problem = check(name, EXE, (*DEFAULT_FORMATS, "exe"))
        assert problem is not None and problem.kind == "executable"
        assert "tệp chạy được" in problem.vi


def test_bidi_override_is_not_shown_raw() -> None:
    problem = check("bao-cao\u202efdp.exe", EXE)
    assert problem is not None
    assert "\u202e" not in problem.vi and "\u202e" not in problem.en


def test_control_characters_in_a_name_do_not_reach_the_message() -> None:
    problem = check("bao-cao\r\n550 ok.pdf", EXE)
    assert problem is not None
    assert "\r" not in problem.vi and "\n" not in problem.vi


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 40, "elf"),
        (b"\xcf\xfa\xed\xfe" + b"\x00" * 40, "macho"),
        (b"\xca\xfe\xba\xbe\x00\x00\x00\x02" + b"\x00" * 40, "macho"),
        (b"#!/bin/sh\nrm -rf ~\n", "script"),
    ],
)
def test_other_executables_are_refused_even_if_listed(data: bytes, fmt: str) -> None:
    assert sniff(data) == fmt
    problem = check("", data, (*DEFAULT_FORMATS, fmt))
    assert problem is not None and problem.kind == "executable"
    named = check("bao-cao.docx", data)
    assert named is not None and named.kind == "mismatch"


def test_msi_content_is_an_executable() -> None:
    data = bytearray(documents.ole2_with_streams({"Property": b"\x00" * 16}))
    # The root entry's CLSID (directory entry offset 80) marks a Windows Installer package.
    root = data.find("Root Entry".encode("utf-16-le"))
    data[root + 80 : root + 96] = bytes.fromhex("84100C0000000000C000000000000046")
    problem = check("", bytes(data), (*DEFAULT_FORMATS, "ole"))
    assert problem is not None and problem.kind == "executable"
    assert "MSI" in problem.vi


# --- Macros ---------------------------------------------------------------------------------
def test_docm_extension_is_refused_even_without_macros_inside() -> None:
    problem = check("bieu-mau.docm", documents.docx(["x"]), (*DEFAULT_FORMATS, "docm"))
    assert problem is not None and problem.kind == "macro"
    assert '"bieu-mau.docm"' in problem.vi and ".docm" in problem.vi


def test_docm_content_is_recognised() -> None:
    assert sniff(documents.docx(["x"], macros=True)) == "docm"
    assert sniff(ooxml("xlsm")) == "xlsm"
    assert sniff(ooxml("pptm")) == "pptm"


def test_docx_with_a_vba_project_inside_is_refused() -> None:
    problem = check("bao-cao.docx", documents.docx(["Báo cáo"], macros=True))
    assert problem is not None and problem.kind == "macro"
    assert "macro" in problem.vi and '"bao-cao.docx"' in problem.vi


def test_xlsx_with_only_a_vba_part_is_refused() -> None:
    data = ooxml("xlsx", extra={"xl/vbaProject.bin": documents.ole2_with_streams({"x": b"1"})})
    assert sniff(data) == "xlsm"
    problem = check("so-lieu.xlsx", data)
    assert problem is not None and problem.kind == "macro"


def test_xlsx_with_an_excel4_macro_sheet_part_is_refused() -> None:
    data = ooxml("xlsx", extra={"xl/macrosheets/sheet1.xml": b"<xm:macrosheet/>"})
    problem = check("so-lieu.xlsx", data)
    assert problem is not None and problem.kind == "macro"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("cong-van.doc", doc({"Macros/VBA/dir": b"\x01" * 32, "Macros/PROJECT": b"ID="})),
        ("so-lieu.xls", xls(extra={"_VBA_PROJECT_CUR/VBA/dir": b"\x01" * 32})),
        ("so-lieu.xls", xls(sheet_type=1)),  # an Excel 4.0 macro sheet
    ],
)
def test_ole2_files_with_macros_are_refused(name: str, data: bytes) -> None:
    problem = check(name, data)
    assert problem is not None and problem.kind == "macro"
    assert f'"{name}"' in problem.vi


def test_odf_with_basic_macros_is_refused() -> None:
    data = odf_with("text", {"Basic/Standard/Module1.xml": b"<script:module/>"})
    assert sniff(data) == "odt"
    problem = check("to-trinh.odt", data)
    assert problem is not None and problem.kind == "macro"


def test_ooxml_flavour_from_part_names_when_types_do_not_say() -> None:
    assert sniff(ooxml("xlsx", declare=False)) == "xlsx"
    assert sniff(ooxml("pptx", declare=False)) == "pptx"


# --- Name and content disagree --------------------------------------------------------------
def test_doc_named_docx_is_a_mismatch_that_says_how_to_fix_it() -> None:
    problem = check("cong-van.docx", doc())
    assert problem is not None and problem.kind == "mismatch"
    assert "văn bản Word .doc" in problem.vi and ".doc rồi gửi lại" in problem.vi


def test_text_named_pdf_is_a_mismatch() -> None:
    problem = check("quyet-dinh.pdf", TEXT)
    assert problem is not None and problem.kind == "mismatch"


def test_encrypted_office_file_is_explained() -> None:
    data = documents.ole2_with_streams({"EncryptionInfo": b"\x04\x00", "EncryptedPackage": b"x"})
    problem = check("bao-cao.docx", data)
    assert problem is not None and problem.kind == "mismatch"
    assert "mật khẩu" in problem.vi


# --- Broken containers ----------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["docx", "xlsx", "pptx", "odt", "ods", "doc", "xls", "ppt"])
@pytest.mark.parametrize("keep", [0.3, 0.9])
def test_truncated_container_is_a_mismatch(fmt: str, keep: float) -> None:
    name, data = ALLOWED_SAMPLES[fmt]
    cut = data[: int(len(data) * keep)]
    problem = check(name, cut)
    assert problem is not None and problem.kind == "mismatch"
    assert "bị hỏng" in problem.vi and f'"{name}"' in problem.vi


def test_corrupt_containers_never_raise_and_are_refused() -> None:
    garbage = {
        "a.docx": b"PK\x03\x04" + os.urandom(2000),
        "a.doc": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + os.urandom(2000),
        "a.zip": b"PK\x05\x06" + b"\xff" * 18,
    }
    for name, data in garbage.items():
        problem = check(name, data, WITH_ZIP)
        assert problem is not None and problem.kind in ("mismatch", "archive"), name


def test_empty_pdf_is_refused() -> None:
    problem = check("quyet-dinh.pdf", b"")
    assert problem is not None and problem.kind == "mismatch" and "bị hỏng" in problem.vi


# --- Inline images and nameless parts -------------------------------------------------------
def test_inline_images_pass_whatever_the_list() -> None:
    assert check("", documents.png(), (), inline=True) is None
    assert check("", documents.jpeg(), ("pdf",), inline=True) is None


def test_inline_executable_is_refused() -> None:
    problem = check("", EXE, inline=True)
    assert problem is not None and problem.kind == "executable"
    assert "không tên" in problem.vi


def test_inline_non_image_is_judged_normally() -> None:
    pdf = ALLOWED_SAMPLES["pdf"][1]
    assert check("", pdf, inline=True) is None
    problem = check("", pdf, ("txt",), inline=True)
    assert problem is not None and problem.kind == "not_allowed"


def test_nameless_attachment_is_judged_by_content() -> None:
    assert check("", ALLOWED_SAMPLES["docx"][1]) is None
    problem = check("", b"Rar!\x1a\x07\x00" + b"\x00" * 20)
    assert problem is not None and problem.kind == "not_allowed" and "RAR" in problem.vi


def test_smime_signature_part_passes() -> None:
    der = b"\x30\x82\x01\x00" + b"\x00" * 32
    signature = attach("smime.p7s", der, ctype="application/pkcs7-signature")
    assert check_attachment(signature, DEFAULT_FORMATS) is None


# --- Zip archives ---------------------------------------------------------------------------
def test_zip_refused_when_zip_is_not_allowed() -> None:
    data = documents.zip_of({"bao-cao.pdf": ALLOWED_SAMPLES["pdf"][1]})
    problem = check("ho-so.zip", data)
    assert problem is not None and problem.kind == "not_allowed"
    assert '"ho-so.zip"' in problem.vi and "ZIP" in problem.vi


def test_zip_of_allowed_files_passes() -> None:
    members = {f"hồ sơ/{name}": data for name, data in ALLOWED_SAMPLES.values()}
    assert check("Hồ sơ trình.zip", documents.zip_of(members), WITH_ZIP) is None


def test_renamed_executable_inside_zip_is_refused_naming_both() -> None:
    data = documents.zip_of({"ghi-chu.txt": TEXT, "tai-lieu/bao-cao.pdf": EXE})
    problem = check("ho-so.zip", data, WITH_ZIP)
    assert problem is not None
    assert problem.kind == "archive" and problem.filename == "ho-so.zip"
    assert problem.vi.startswith('Trong tệp nén "ho-so.zip", tệp "tai-lieu/bao-cao.pdf"')
    assert "tệp chạy được" in problem.vi


@pytest.mark.parametrize(
    ("member", "data", "words"),
    [
        ("cap-nhat.js", b"alert(1)", "tệp lệnh"),
        ("bieu-mau.docx", documents.docx(["x"], macros=True), "macro"),
        ("nen.rar", b"Rar!\x1a\x07\x00" + b"\x00" * 20, "RAR"),
    ],
)
def test_bad_member_is_refused(member: str, data: bytes, words: str) -> None:
    problem = check("ho-so.zip", documents.zip_of({member: data}), WITH_ZIP)
    assert problem is not None and problem.kind == "archive"
    assert member in problem.vi and words in problem.vi


def test_zip_in_zip_passes_but_not_three_levels() -> None:
    inner = documents.zip_of({"bao-cao.txt": TEXT})
    middle = documents.zip_of({"trong.zip": inner})
    assert check("ngoai.zip", middle, WITH_ZIP) is None
    outer = documents.zip_of({"giua.zip": middle})
    problem = check("ngoai.zip", outer, WITH_ZIP)
    assert problem is not None and problem.kind == "archive"
    assert "lồng nhau" in problem.vi


def test_too_many_members() -> None:
    data = zip_stored({f"{i}.txt": b"x" for i in range(formats.MAX_ARCHIVE_MEMBERS + 1)})
    problem = check("nhieu.zip", data, WITH_ZIP)
    assert problem is not None and problem.kind == "archive"
    assert "quá nhiều tệp" in problem.vi


def test_encrypted_member_is_refused() -> None:
    # zipfile cannot encrypt: set the "encrypted" flag in both headers of a plain member.
    data = bytearray(zip_stored({"bao-cao.txt": TEXT}))
    data[data.find(b"PK\x03\x04") + 6] |= 0x1
    data[data.find(b"PK\x01\x02") + 8] |= 0x1
    problem = check("mat-khau.zip", bytes(data), WITH_ZIP)
    assert problem is not None and problem.kind == "archive" and "mật khẩu" in problem.vi


def test_zip_bomb_is_refused_quickly() -> None:
    data = documents.zip_of({"du-lieu.txt": b"\x20" * (30 * 1024 * 1024)})
    assert len(data) < 100 * 1024
    started = time.perf_counter()
    problem = check("bom.zip", data, WITH_ZIP)
    assert time.perf_counter() - started < 0.5
    assert problem is not None and problem.kind == "archive" and "bom nén" in problem.vi


def test_zip_bomb_with_lying_sizes_is_bounded() -> None:
    data = bytearray(documents.zip_of({"du-lieu.txt": b"\x20" * (30 * 1024 * 1024)}))
    # Claim 1,000 bytes unpacked in both headers: reading stops there and the CRC fails.
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, 1000)
    struct.pack_into("<I", data, central + 24, 1000)
    started = time.perf_counter()
    problem = check("bom.zip", bytes(data), WITH_ZIP)
    assert time.perf_counter() - started < 0.5
    assert problem is not None and problem.kind == "archive"


def test_total_unpacked_size_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats, "MAX_ARCHIVE_BYTES", 10_000)
    members = {f"{i}.txt": os.urandom(3000).hex().encode()[:3000] for i in range(4)}
    problem = check("lon.zip", documents.zip_of(members), WITH_ZIP)
    assert problem is not None and problem.kind == "archive" and "quá lớn" in problem.vi


def test_odf_and_ooxml_are_documents_not_archives() -> None:
    # Their members (XML, media) are not judged as files sent, even when zip is not allowed.
    data = ooxml("pptx", extra={"ppt/media/image1.emf": b"\x01\x00\x00\x00" * 10})
    assert check("hoi-nghi.pptx", data, ("pptx",)) is None


# --- Content sniffing -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (b"GIF87a" + b"\x00" * 10, "gif"),
        (b"BM\x3a\x00\x00\x00\x00\x00\x00\x00\x36\x00" + b"\x00" * 40, "bmp"),
        (b"II*\x00\x08\x00\x00\x00", "tiff"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "webp"),
        (b"7z\xbc\xaf\x27\x1c\x00\x04", "7z"),
        (b"\x1f\x8b\x08\x00\x00\x00", "gz"),
        (b"<!DOCTYPE html><html><body>x</body></html>", "html"),
        (b"<?xml version='1.0'?><a/>", "xml"),
        (b'\xef\xbb\xbf<?xml version="1.0"?><!DOCTYPE html><html/>', "html"),
        (b"\n  %PDF-1.7\n", "pdf"),
        (b"\x00\x01junk%PDF-1.4\n", "pdf"),
        (b"Ghi chu: tai lieu %PDF-1.4 duoc dinh kem\n", "txt"),
        (b"MZ is the start of this note\n", "txt"),
        (b"\x00\x01\x02\x03binary", "unknown"),
        ("\ufeffBáo cáo".encode("utf-16-be"), "txt"),
        (documents.zip_of({"a.txt": b"x"}), "zip"),
        (documents.odf(["x"], "graphics"), "odg"),
        (documents.ole2_with_streams({"__substg1.0_0037001F": b"x"}), "ole"),
    ],
)
def test_sniff(data: bytes, fmt: str) -> None:
    assert sniff(data) == fmt


def test_sniff_does_not_open_a_file_named_by_short_bytes() -> None:
    # olefile treats short bytes as a path: a tiny "OLE2" must be judged, not opened.
    assert sniff(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1/etc/passwd") == "unknown"


# --- Never raises ---------------------------------------------------------------------------
_MAGIC = [
    b"",
    b"PK\x03\x04",
    b"PK\x05\x06",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
    b"%PDF-",
    b"MZ",
    b"\xca\xfe\xba\xbe",
    b"\xff\xfe",
    b"BM",
    b"RIFF",
]
_CONTAINERS = [ALLOWED_SAMPLES[f][1] for f in ("docx", "xlsx", "odt", "doc", "xls", "ppt")] + [
    documents.zip_of({"a.txt": TEXT, "b.zip": documents.zip_of({"c.pdf": b"%PDF-1"})})
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_MAGIC), st.binary(max_size=4096), st.text(max_size=40), st.booleans())
def test_never_raises_on_arbitrary_input(
    magic: bytes, tail: bytes, name: str, inline: bool
) -> None:
    data = magic + tail
    assert sniff(data) in FORMAT_EXTENSIONS
    problem = check_attachment(attach(name, data, inline=inline), WITH_ZIP)
    assert problem is None or problem.kind in (
        "not_allowed",
        "mismatch",
        "executable",
        "macro",
        "archive",
    )


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(_CONTAINERS),
    st.integers(min_value=0, max_value=1 << 20),
    st.binary(min_size=1, max_size=64),
    st.booleans(),
)
def test_never_raises_on_damaged_containers(
    data: bytes, position: int, patch: bytes, truncate: bool
) -> None:
    at = position % len(data)
    damaged = data[:at] if truncate else data[:at] + patch + data[at + len(patch) :]
    assert sniff(damaged) in FORMAT_EXTENSIONS
    for name in ("bao-cao.docx", "ho-so.zip", ""):
        check_attachment(attach(name, damaged), WITH_ZIP)


# --- Cost -----------------------------------------------------------------------------------
def _docx_of_size(size: int) -> bytes:
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(documents.docx(["Báo cáo"] * 100))) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z,
    ):
        for info in src.infolist():
            z.writestr(info, src.read(info))
        z.writestr("word/media/image1.png", os.urandom(size))
    return out.getvalue()


def test_sniff_cost_on_large_documents() -> None:
    """A 2 MB PDF is judged by its magic, a 2 MB DOCX by its directory and content types:
    both well under a millisecond (generous bound here for loaded test machines)."""
    pdf = documents.pdf(["Báo cáo"], filler_bytes=2 * 1024 * 1024)
    big = _docx_of_size(2 * 1024 * 1024)
    for data, fmt in ((pdf, "pdf"), (big, "docx")):
        started = time.perf_counter()
        for _ in range(20):
            assert sniff(data) == fmt
        assert (time.perf_counter() - started) / 20 < 0.02
