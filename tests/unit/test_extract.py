"""Unit tests for govmail.policy.extract: the text of attached documents, line by line,
within bounded time and memory on malformed and hostile files."""

from __future__ import annotations

import io
import logging
import struct
import time
import tracemalloc
import unicodedata
import zipfile
import zlib
from xml.sax.saxutils import escape

import pypdf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from govmail.policy.classified import find_mark
from govmail.policy.extract import document_text
from tests.corpus import documents

HEADER = [
    "UBND TỈNH KHÁNH HÒA",
    "TỐI MẬT",
    "Số: 123/GM-UBND",
    "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
    "Độc lập - Tự do - Hạnh phúc",
    "GIẤY MỜI",
]
FORMATS = ["pdf", "docx", "docm", "pptx", "xlsx", "odt", "ods", "odp", "rtf", "txt"]
FORMATS += ["doc", "xls", "ppt"]


def lines_of(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


# --- builders for what tests.corpus.documents does not make ----------------------------


def pdf_pages(pages: list[list[str]]) -> bytes:
    """A PDF with ``pages[i]`` as the lines of page i + 1."""
    from fpdf import FPDF

    doc = FPDF()
    doc.add_font("DejaVu", "", str(documents.FONT))
    doc.set_font("DejaVu", size=12)
    for lines in pages:
        doc.add_page()
        for line in lines:
            doc.cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(doc.output())


def pdf_side_by_side(left: str, right: str) -> bytes:
    """A PDF whose first line holds ``left`` at the left margin and ``right`` at the
    right, as a letter's header sets the agency name and the stamp or motto."""
    from fpdf import FPDF

    doc = FPDF()
    doc.add_font("DejaVu", "", str(documents.FONT))
    doc.set_font("DejaVu", size=12)
    doc.add_page()
    doc.set_xy(10, 10)
    doc.cell(80, 8, left)
    doc.set_xy(150, 10)
    doc.cell(40, 8, right)
    return bytes(doc.output())


W_NS = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def docx_parts(parts: dict[str, str]) -> bytes:
    """A DOCX-like zip with the given XML parts (enough for text extraction)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        for name, xml in parts.items():
            archive.writestr(name, xml)
    return out.getvalue()


def word_xml(body: str) -> str:
    return f"<?xml version='1.0'?><w:document {W_NS}><w:body>{body}</w:body></w:document>"


def w_para(text: str) -> str:
    return f"<w:p><w:r><w:t>{escape(text)}</w:t></w:r></w:p>"


A_NS = 'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"'
P_NS = 'xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"'


def pptx(slides: list[list[str]]) -> bytes:
    parts = {}
    for number, paragraphs in enumerate(slides, start=1):
        body = "".join(f"<a:p><a:r><a:t>{escape(p)}</a:t></a:r></a:p>" for p in paragraphs)
        parts[f"ppt/slides/slide{number}.xml"] = (
            f"<p:sld {P_NS} {A_NS}><p:cSld><p:spTree><p:sp><p:txBody>{body}"
            "</p:txBody></p:sp></p:spTree></p:cSld></p:sld>"
        )
    return docx_parts(parts)


def xlsx(strings: list[str]) -> bytes:
    items = "".join(f"<si><t>{escape(s)}</t></si>" for s in strings)
    sst = (
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        f'count="{len(strings)}">{items}</sst>'
    )
    return docx_parts({"xl/sharedStrings.xml": sst})


def word97(pieces: list[tuple[str, bool]]) -> bytes:
    """A Word 97-2003 .doc whose text is ``pieces`` (text, compressed): a FIB pointing to
    a piece table in the 1Table stream (MS-DOC 2.8.35), text stored as cp1252
    (compressed) or UTF-16LE."""
    fib = bytearray(0x800)
    struct.pack_into("<H", fib, 0, 0xA5EC)
    struct.pack_into("<H", fib, 0x0A, 0x0200)  # fWhichTblStm: the table is 1Table
    stored = bytearray()
    cps = [0]
    descriptors = b""
    for text, compressed in pieces:
        offset = len(fib) + len(stored)
        if compressed:
            stored += text.encode("cp1252")
            fc = (offset * 2) | 0x40000000
        else:
            stored += text.encode("utf-16-le")
            fc = offset
        cps.append(cps[-1] + len(text))
        descriptors += struct.pack("<HIH", 0, fc, 0)
    plc = struct.pack(f"<{len(cps)}I", *cps) + descriptors
    clx = b"\x01\x02\x00\xaa\xbb" + b"\x02" + struct.pack("<I", len(plc)) + plc  # Prc, Pcdt
    struct.pack_into("<II", fib, 0x1A2, 0, len(clx))
    return documents.ole2_with_streams({"WordDocument": bytes(fib + stored), "1Table": clx})


# --- PDF -------------------------------------------------------------------------------


def test_pdf_text_layer_keeps_lines() -> None:
    text = document_text(documents.pdf(HEADER), "pdf")
    assert lines_of(text) == HEADER


def test_pdf_columns_of_a_header_line_stay_apart() -> None:
    text = document_text(pdf_side_by_side("UBND TỈNH KHÁNH HÒA", "TỐI MẬT"), "pdf")
    [line] = lines_of(text)
    assert line.startswith("UBND TỈNH KHÁNH HÒA  ")
    assert line.endswith("  TỐI MẬT")
    mark = find_mark(text)
    assert mark is not None and mark.level == "TỐI MẬT"


def test_pdf_reads_only_max_pages() -> None:
    data = pdf_pages([[f"Trang số {n}"] for n in range(1, 51)])
    text = document_text(data, "pdf")
    assert lines_of(text) == ["Trang số 1", "Trang số 2", "Trang số 3"]
    assert lines_of(document_text(data, "pdf", max_pages=1)) == ["Trang số 1"]


def test_pdf_of_fifty_pages_is_read_quickly() -> None:
    data = documents.pdf(HEADER, pages=50)
    start = time.perf_counter()
    text = document_text(data, "pdf")
    assert time.perf_counter() - start < 1.0
    assert "GIẤY MỜI" in text


def test_pdf_encrypted_without_user_password_is_read() -> None:
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(documents.pdf(HEADER)))
    writer.encrypt(user_password="", owner_password="chủ-sở-hữu", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    assert "TỐI MẬT" in document_text(out.getvalue(), "pdf")


def test_pdf_with_a_real_password_gives_nothing() -> None:
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(documents.pdf(HEADER)))
    writer.encrypt(user_password="bí-mật", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    assert document_text(out.getvalue(), "pdf") == ""


def test_damaged_pdf_is_read_without_warnings_or_log_noise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = documents.pdf(HEADER)
    damaged = data.replace(b"startxref", b"startxref\n999999\n%", 1)  # a wrong xref offset
    level = logging.getLogger("pypdf").level
    with caplog.at_level(logging.DEBUG):
        text = document_text(damaged, "pdf")
    assert "GIẤY MỜI" in text  # pypdf rebuilt the xref table
    assert not [r for r in caplog.records if r.name.startswith("pypdf")]
    assert logging.getLogger("pypdf").level == level  # restored after the call


def test_truncated_pdf_gives_a_string() -> None:
    data = documents.pdf(HEADER)
    for cut in (10, len(data) // 3, len(data) // 2, len(data) - 40):
        assert isinstance(document_text(data[:cut], "pdf"), str)


# --- OOXML -----------------------------------------------------------------------------


@pytest.mark.parametrize("macros", [False, True])
def test_docx_paragraphs_are_lines(macros: bool) -> None:
    text = document_text(documents.docx(HEADER, macros=macros), "docm" if macros else "docx")
    assert lines_of(text) == HEADER


def test_docx_page_header_comes_first_and_runs_join() -> None:
    body = (
        "<w:p><w:pPr><w:tabs><w:tab w:val='left' w:pos='100'/></w:tabs></w:pPr>"
        "<w:r><w:t>Số: 12</w:t></w:r><w:r><w:t>3/GM-UBND</w:t></w:r>"
        "<w:r><w:tab/><w:t>Khánh Hòa</w:t></w:r></w:p>" + w_para("GIẤY MỜI")
    )
    data = docx_parts(
        {
            "word/document.xml": word_xml(body),
            "word/header1.xml": f"<w:hdr {W_NS}>{w_para('MẬT')}</w:hdr>",
        }
    )
    assert document_text(data, "docx").splitlines() == [
        "MẬT",
        "Số: 123/GM-UBND\tKhánh Hòa",
        "GIẤY MỜI",
    ]


def test_docx_text_box_is_not_read_twice() -> None:
    box = (
        "<w:p><w:r><mc:AlternateContent "
        'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006">'
        f"<mc:Choice Requires='wps'><w:txbxContent>{w_para('TUYỆT MẬT')}</w:txbxContent>"
        f"</mc:Choice><mc:Fallback><w:txbxContent>{w_para('TUYỆT MẬT')}</w:txbxContent>"
        "</mc:Fallback></mc:AlternateContent></w:r></w:p>"
    )
    text = document_text(docx_parts({"word/document.xml": word_xml(box)}), "docx")
    assert text.count("TUYỆT MẬT") == 1


def test_pptx_reads_the_first_slides_in_order() -> None:
    data = pptx([[f"Trang chiếu {n}", "Nội dung"] for n in range(1, 13)])
    assert lines_of(document_text(data, "pptx", max_pages=2)) == [
        "Trang chiếu 1",
        "Nội dung",
        "Trang chiếu 2",
        "Nội dung",
    ]
    # slide10.xml sorts before slide2.xml as a string, not as a slide number.
    assert "Trang chiếu 10" not in document_text(data, "pptx", max_pages=9)


def test_xlsx_shared_strings() -> None:
    text = document_text(xlsx(["Độ mật: Tối mật", "Danh sách cán bộ"]), "xlsx")
    assert lines_of(text) == ["Độ mật: Tối mật", "Danh sách cán bộ"]


# --- ODF -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "kind"), [("odt", "text"), ("ods", "spreadsheet"), ("odp", "presentation")]
)
def test_odf_paragraphs_are_lines(fmt: str, kind: str) -> None:
    assert lines_of(document_text(documents.odf(HEADER, kind), fmt)) == HEADER


def test_odf_mixed_content_spaces_and_breaks() -> None:
    content = (
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:text>'
        "<text:h>KẾ <text:span>HOẠCH</text:span></text:h>"
        '<text:p>UBND TỈNH<text:s text:c="5"/>TỐI <text:span>MẬT</text:span></text:p>'
        "<text:p>Dòng một<text:line-break/>Dòng hai<text:tab/>cột</text:p>"
        "<text:tracked-changes><text:p>đã xóa</text:p></text:tracked-changes>"
        "</office:text></office:body></office:document-content>"
    )
    data = docx_parts({"content.xml": content})
    assert document_text(data, "odt").splitlines() == [
        "KẾ HOẠCH",
        "UBND TỈNH     TỐI MẬT",
        "Dòng một",
        "Dòng hai\tcột",
    ]


# --- RTF and TXT -----------------------------------------------------------------------


def test_rtf_unicode_escapes() -> None:
    text = document_text(documents.rtf("\n".join(HEADER)), "rtf")
    assert lines_of(text) == HEADER


def test_rtf_in_the_vietnamese_code_page() -> None:
    # cp1258 writes tones as combining marks: "Ố" is 0xD4 (Ô) + 0xEC (acute), "Ậ" is
    # 0xC2 (Â) + 0xF2 (dot below), "ò" is "o" + 0xCC (grave).
    data = b"{\\rtf1\\ansi\\ansicpg1258\\deff0 T\\'d4\\'ecI M\\'c2\\'f2T\\par Kh\\'e1nh Ho\\'cca}"
    text = document_text(data, "rtf")
    assert unicodedata.normalize("NFC", text).splitlines() == ["TỐI MẬT", "Khánh Hòa"]
    mark = find_mark(text)
    assert mark is not None and mark.level == "TỐI MẬT"


def test_rtf_hostile_hyperlink_and_font_table_are_bounded() -> None:
    hyperlinks = b"{\\rtf1 " + b"{\\field{\\*\\fldinst{HYPERLINK " * 20_000 + b"x}"
    fonts = b"{\\rtf1{\\fonttbl" + b"\\f1" * 200_000 + b"}T\\'d4I}"
    pictures = b"{\\rtf1{\\pict\\bin999999999 " + b"\x00" * 100_000 + b"}M\\'c2T}"
    for data in (hyperlinks, fonts, pictures):
        start = time.perf_counter()
        assert isinstance(document_text(data, "rtf"), str)
        assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize(
    "data",
    [
        "Độ mật: Tối mật\r\nKính gửi".encode(),
        b"\xef\xbb\xbf" + "Độ mật: Tối mật\nKính gửi".encode(),
        "Độ mật: Tối mật\nKính gửi".encode("utf-16"),
        "Độ mật: Tối mật\nKính gửi".encode("utf-16-be").join([b"\xfe\xff", b""]),
        "Độ mật: Tối mật\nKính gửi".encode("utf-32"),
    ],
)
def test_txt_encodings(data: bytes) -> None:
    assert document_text(data, "txt").splitlines() == ["Độ mật: Tối mật", "Kính gửi"]


def test_txt_falls_back_to_cp1252() -> None:
    assert document_text("Café – Ñandú".encode("cp1252"), "txt") == "Café – Ñandú"


def test_txt_cut_inside_a_character_stays_utf8() -> None:
    data = ("ậ" * 50).encode()  # three bytes each
    assert document_text(data, "txt", max_chars=10) == "ậ" * 10


def test_max_chars_is_respected() -> None:
    data = ("Kính gửi các sở, ban, ngành.\n" * 20_000).encode()
    text = document_text(data, "txt", max_chars=1000)
    assert len(text) == 1000
    assert len(document_text(documents.docx(["x" * 500] * 500), "docx", max_chars=1234)) == 1234


# --- Legacy Office ---------------------------------------------------------------------


def test_doc_piece_table_utf16_and_compressed_pieces() -> None:
    data = word97([("UBND TỈNH KHÁNH HÒA\r", False), ("Office 2003\r", True), ("MẬT\x07", False)])
    assert lines_of(document_text(data, "doc")) == ["UBND TỈNH KHÁNH HÒA", "Office 2003", "MẬT"]


def test_doc_field_codes_are_dropped() -> None:
    data = word97([('Xem \x13 HYPERLINK "http://x.vn" \x14trang\x15 này\r', False)])
    assert lines_of(document_text(data, "doc")) == ["Xem trang này"]


def test_doc_without_piece_table_falls_back_to_runs_of_text() -> None:
    stream = b"\x00" * 64 + "UBND TỈNH KHÁNH HÒA\rTỐI MẬT".encode("utf-16-le") + b"\xff" * 64
    data = documents.ole2_with_streams({"WordDocument": stream})
    assert "TỐI MẬT" in document_text(data, "doc")


@pytest.mark.parametrize(("fmt", "stream"), [("xls", "Workbook"), ("ppt", "PowerPoint Document")])
def test_xls_and_ppt_runs_of_text(fmt: str, stream: str) -> None:
    content = b"\x09\x08\x10\x00" + "Độ mật: Tối mật".encode("utf-16-le") + b"\x00\x00"
    content += b"\x01\x02" + b"Plain ASCII label" + b"\x00\x01"
    text = document_text(documents.ole2_with_streams({stream: content}), fmt)
    assert "Độ mật: Tối mật" in text
    assert "Plain ASCII label" in text


def test_short_ole_bytes_are_not_taken_for_a_file_name() -> None:
    # olefile treats short bytes as a path; the reader must give it a file object.
    assert document_text(b"/etc/passwd", "doc") == ""


# --- Malformed and hostile input -------------------------------------------------------


def test_unknown_formats_and_empty_input_give_nothing() -> None:
    assert document_text(documents.png(), "png") == ""
    assert document_text(documents.windows_exe(), "exe") == ""
    assert document_text(b"", "pdf") == ""
    assert document_text(documents.pdf(HEADER), "pdf", max_chars=0) == ""


@pytest.mark.parametrize("fmt", FORMATS)
def test_corrupt_files_never_raise(fmt: str) -> None:
    samples = [
        b"garbage",
        documents.windows_exe(),
        documents.docx(HEADER)[:200],
        documents.pdf(HEADER)[:300],
        documents.ole2_with_streams({"WordDocument": b"\xec\xa5" + b"\xff" * 600}),
        documents.zip_of({"word/document.xml": b"<w:document><w:body><w:p>"}),
    ]
    for data in samples:
        assert isinstance(document_text(data, fmt), str)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fmt=st.sampled_from(FORMATS), data=st.binary(max_size=2048))
def test_random_bytes_never_raise(fmt: str, data: bytes) -> None:
    assert isinstance(document_text(data, fmt), str)


@settings(max_examples=40, deadline=None)
@given(fmt=st.sampled_from(["docx", "pdf", "odt", "rtf"]), cut=st.floats(0, 1))
def test_truncated_documents_give_a_prefix_or_nothing(fmt: str, cut: float) -> None:
    builders = {
        "docx": lambda: documents.docx(HEADER),
        "pdf": lambda: documents.pdf(HEADER),
        "odt": lambda: documents.odf(HEADER),
        "rtf": lambda: documents.rtf("\n".join(HEADER)),
    }
    data = builders[fmt]()
    text = document_text(data[: int(len(data) * cut)], fmt)
    # Every line but the last (cut anywhere, even inside an escape) is the document's.
    for line in lines_of(text)[:-1]:
        assert line in HEADER


def test_xml_entity_bomb_is_refused() -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
        + "]>"
        + f"<w:document {W_NS}><w:body>"
        + "<w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"
    ).replace("&lol0;", "&lol;")
    start = time.perf_counter()
    text = document_text(docx_parts({"word/document.xml": bomb}), "docx")
    assert time.perf_counter() - start < 0.5
    assert "lollol" not in text


def _zip_bomb(member: str, head: bytes, filler: bytes, size: int) -> bytes:
    """A zip whose ``member`` inflates to ``size`` bytes: ``head`` then ``filler``
    repeated (deflate shrinks a repeated block about a thousandfold)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        info = zipfile.ZipInfo(member)
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as stream:
            stream.write(head)
            block = filler * (1024 * 1024 // len(filler))
            for _ in range(size // len(block)):
                stream.write(block)
    return out.getvalue()


def test_zip_bomb_is_read_only_up_to_the_budget() -> None:
    data = _zip_bomb(
        "word/document.xml",
        f"<w:document {W_NS}><w:body>".encode(),
        b"<w:p/>    ",
        128 * 1024 * 1024,
    )
    assert len(data) < 1024 * 1024  # 128 MB once inflated
    tracemalloc.start()
    start = time.perf_counter()
    try:
        text = document_text(data, "docx")
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 5.0  # under tracemalloc; about 0.1 s without it
    assert peak < 32 * 1024 * 1024
    assert set(text) <= {"\n"}


def test_zip_bomb_of_text_stops_at_max_chars() -> None:
    head = (
        b'<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        b' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><text:p>'
    )
    data = _zip_bomb("content.xml", head, b"MAT ", 256 * 1024 * 1024)
    start = time.perf_counter()
    text = document_text(data, "odt", max_chars=5000)
    assert time.perf_counter() - start < 1.0
    assert len(text) == 5000


def pdf_with_content(content: bytes) -> bytes:
    """A one-page PDF (Helvetica as F1) whose page content stream is ``content``,
    Flate-compressed in 1 MB blocks, with a correct cross-reference table."""
    packer = zlib.compressobj(9)
    step = 1024 * 1024
    stream = b"".join(packer.compress(content[i : i + step]) for i in range(0, len(content), step))
    stream += packer.flush()
    objects = [
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 600 800]/Contents 4 0 R"
        b"/Resources<</Font<</F1 5 0 R>>>>>>",
        b"<</Length %d/Filter/FlateDecode>>stream\n" % len(stream) + stream + b"\nendstream",
        b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


def test_zlib_bomb_inside_a_pdf_is_bounded() -> None:
    text_operators = b"BT /F1 12 Tf 72 700 Td (DANH SACH) Tj ET\n"
    small = pdf_with_content(text_operators + b" " * 1024 * 1024)
    assert "DANH SACH" in document_text(small, "pdf")  # the builder makes a readable PDF
    # The same page inflating to 96 MB: pypdf's own limit (75 MB) would not stop it.
    bomb = pdf_with_content(text_operators + b" " * 96 * 1024 * 1024)
    assert len(bomb) < 256 * 1024
    tracemalloc.start()
    start = time.perf_counter()
    try:
        document_text(bomb, "pdf")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 10.0
    assert peak < 40 * 1024 * 1024  # about 225 MB with pypdf's own limits
