"""The policy tests' own documents, built in memory: DOCX, ODF, PDF, RTF, and files that
only look like documents (executables, macro-enabled Office files, archives)."""

# ruff: noqa: E501  (XML boilerplate reads better on one line)
from __future__ import annotations

import io
import os
import struct
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")

_DOCX_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
{extra}<Override PartName="/word/document.xml" ContentType="{main}"/>
</Types>"""
_DOCX_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
_DOCM_MAIN = "application/vnd.ms-word.document.macroEnabled.main+xml"
_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>
</Relationships>"""


def docx(paragraphs: list[str], *, macros: bool = False) -> bytes:
    """A Word document whose body is ``paragraphs``; ``macros`` makes it a .docm with a
    VBA project inside."""
    body = "".join(
        f'<w:p><w:r><w:t xml:space="preserve">{escape(p)}</w:t></w:r></w:p>' for p in paragraphs
    )
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body>{body}</w:body></w:document>"
    )
    extra = (
        '<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/>\n'
        if macros
        else ""
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            _DOCX_TYPES.format(extra=extra, main=_DOCM_MAIN if macros else _DOCX_MAIN),
        )
        z.writestr("_rels/.rels", _RELS)
        z.writestr("word/document.xml", document)
        if macros:
            z.writestr(
                "word/vbaProject.bin",
                ole2_with_streams({"VBA/dir": b"\x01" * 64, "PROJECT": b'ID="{0}"\r\n'}),
            )
    return out.getvalue()


def odf(paragraphs: list[str], kind: str = "text") -> bytes:
    """An OpenDocument file (``kind``: text, spreadsheet, presentation) holding
    ``paragraphs``; ``mimetype`` stored first and uncompressed, as ODF requires."""
    body = "".join(f"<text:p>{escape(p)}</text:p>" for p in paragraphs)
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        f"<office:body><office:{kind}>{body}</office:{kind}></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
        f'<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.{kind}"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("mimetype", f"application/vnd.oasis.opendocument.{kind}", zipfile.ZIP_STORED)
        z.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
        z.writestr("META-INF/manifest.xml", manifest, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def pdf(lines: list[str], *, pages: int = 1, filler_bytes: int = 0) -> bytes:
    """A PDF whose first page shows ``lines`` in DejaVu Sans (Unicode text layer);
    ``pages`` adds blank pages, ``filler_bytes`` an incompressible embedded stream to
    reach a size."""
    from fpdf import FPDF

    doc = FPDF()
    doc.add_font("DejaVu", "", str(FONT))
    doc.set_font("DejaVu", size=12)
    doc.add_page()
    for line in lines:
        doc.cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    for _ in range(pages - 1):
        doc.add_page()
    data = bytes(doc.output())
    return _pad_pdf(data, os.urandom(filler_bytes)) if filler_bytes else data


def _pad_pdf(data: bytes, filler: bytes) -> bytes:
    """``data`` with ``filler`` appended as a stream object nothing references, in an
    incremental update (readers and signature validators accept it)."""
    startxref = int(data.rsplit(b"startxref", 1)[1].split()[0])
    size = int(data.rsplit(b"/Size ", 1)[1].split()[0].rstrip(b">/"))
    offset = len(data)
    obj = (
        b"%d 0 obj\n<< /Length %d >>\nstream\n" % (size, len(filler))
        + filler
        + b"\nendstream\nendobj\n"
    )
    xref_at = offset + len(obj)
    root = data.rsplit(b"/Root ", 1)[1].split(b"R")[0] + b"R"
    xref = b"xref\n0 1\n0000000000 65535 f \n%d 1\n%010d 00000 n \n" % (size, offset)
    trailer = b"trailer\n<< /Size %d /Root %s /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (
        size + 1,
        root,
        startxref,
        xref_at,
    )
    return data + obj + xref + trailer


def rtf(text: str) -> bytes:
    """An RTF document holding ``text`` (non-ASCII as \\u escapes)."""
    body = "".join(
        c if ord(c) < 128 else f"\\u{ord(c) if ord(c) < 32768 else ord(c) - 65536}?" for c in text
    )
    body = body.replace("\n", "\\par\n")
    return ("{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Times New Roman;}}\\f0 " + body + "}").encode(
        "ascii"
    )


def windows_exe() -> bytes:
    """A tiny file with the DOS and PE headers of a Windows executable."""
    pe_offset = 0x80
    dos = b"MZ" + b"\x90\x00" * 29 + struct.pack("<I", pe_offset)
    dos = dos.ljust(pe_offset, b"\x00")
    return dos + b"PE\x00\x00" + struct.pack("<HH", 0x14C, 1) + b"\x00" * 200


def png() -> bytes:
    """A valid 1×1 PNG."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def jpeg() -> bytes:
    """The start of a JFIF JPEG (enough for content sniffing)."""
    return (
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        + b"\x00" * 64
        + b"\xff\xd9"
    )


def zip_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def ole2_with_streams(streams: dict[str, bytes]) -> bytes:
    """A minimal OLE2 compound file (the container of .doc/.xls/.ppt and of VBA
    projects) holding ``streams`` (names with "/" make storages), readable by olefile.
    Uses 512-byte sectors; every stream goes to the regular FAT (no mini stream)."""
    sector = 512
    # Directory entries: root, then storages and streams.
    entries: list[dict[str, object]] = [
        {"name": "Root Entry", "type": 5, "children": [], "data": b""}
    ]
    storages: dict[str, int] = {"": 0}
    for path, data in streams.items():
        parts = path.split("/")
        parent = ""
        for depth, part in enumerate(parts):
            key = "/".join(parts[: depth + 1])
            last = depth == len(parts) - 1
            if last:
                entries.append(
                    {"name": part, "type": 2, "children": [], "data": data.ljust(4096, b"\x00")}
                )
                entries[storages[parent]]["children"].append(len(entries) - 1)  # type: ignore[attr-defined]
            elif key not in storages:
                entries.append({"name": part, "type": 1, "children": [], "data": b""})
                storages[key] = len(entries) - 1
                entries[storages[parent]]["children"].append(len(entries) - 1)  # type: ignore[attr-defined]
            parent = key
    # Lay out stream data sectors first.
    sectors: list[bytes] = []
    starts: dict[int, tuple[int, int]] = {}
    fat: list[int] = []
    for i, entry in enumerate(entries):
        data = entry["data"]
        assert isinstance(data, bytes)
        if entry["type"] != 2:
            continue
        count = -(-len(data) // sector)
        first = len(sectors)
        for k in range(count):
            sectors.append(data[k * sector : (k + 1) * sector].ljust(sector, b"\x00"))
            fat.append(first + k + 1 if k < count - 1 else 0xFFFFFFFE)
        starts[i] = (first, len(data))
    # Directory sectors (4 entries of 128 bytes each).
    dir_first = len(sectors)
    raw_entries = b""
    for i, entry in enumerate(entries):
        name = str(entry["name"]).encode("utf-16-le") + b"\x00\x00"
        children = entry["children"]
        assert isinstance(children, list)
        # Children as a degenerate tree: first child is the root of a right-linked chain.
        child = children[0] if children else 0xFFFFFFFF
        right = 0xFFFFFFFF
        for parent_entry in entries:
            siblings = parent_entry["children"]
            assert isinstance(siblings, list)
            if i in siblings and siblings.index(i) + 1 < len(siblings):
                right = siblings[siblings.index(i) + 1]
        start, size = starts.get(i, (0xFFFFFFFE if entry["type"] == 5 else 0, 0))
        raw_entries += (
            name.ljust(64, b"\x00")
            + struct.pack("<HBB", len(name), int(entry["type"]), 1)  # type, colour black
            + struct.pack("<III", 0xFFFFFFFF, right, child)
            + b"\x00" * 16
            + b"\x00" * 4
            + b"\x00" * 16
            + struct.pack("<IIHH", start, size, 0, 0)
        )
    raw_entries = raw_entries.ljust(-(-len(raw_entries) // sector) * sector, b"\x00")
    dir_count = len(raw_entries) // sector
    for k in range(dir_count):
        sectors.append(raw_entries[k * sector : (k + 1) * sector])
        fat.append(dir_first + k + 1 if k < dir_count - 1 else 0xFFFFFFFE)
    # One FAT sector describes 128 sectors; itself marked 0xFFFFFFFD.
    fat_first = len(sectors)
    fat.append(0xFFFFFFFD)
    fat_sector = b"".join(struct.pack("<I", v) for v in fat).ljust(sector, b"\xff")
    sectors.append(fat_sector)
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + b"\x00" * 16
        + struct.pack("<HHHH", 0x3E, 3, 0xFFFE, 9)
        + struct.pack("<H", 6)
        + b"\x00" * 6
        + struct.pack("<I", 0)  # directory sectors (0 for v3)
        + struct.pack("<I", 1)  # FAT sectors
        + struct.pack("<I", dir_first)
        + struct.pack("<I", 0)
        + struct.pack("<I", 4096)  # mini stream cutoff
        + struct.pack("<II", 0xFFFFFFFE, 0)  # mini FAT
        + struct.pack("<II", 0xFFFFFFFE, 0)  # DIFAT
        + struct.pack("<I", fat_first)
        + b"\xff" * (4 * 108)
    )
    return header.ljust(sector, b"\x00") + b"".join(sectors)
