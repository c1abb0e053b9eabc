"""R11: attachment formats recognised by their content, and the allowed-format check."""

from __future__ import annotations

import io
import struct
import unicodedata
import zipfile
from collections.abc import Collection
from dataclasses import dataclass
from typing import NamedTuple

import olefile

from govmail.policy.parts import Attachment

# --- Limits on hostile input ---------------------------------------------------------------
# Archives (R11 "a .zip whose members are all allowed"): members may sit this many archive
# levels down (a zip inside a zip is fine, a third level is refused), all archives of one
# attachment together hold at most this many files and unpack to at most this many bytes.
MAX_ARCHIVE_DEPTH = 2
MAX_ARCHIVE_MEMBERS = 1000
MAX_ARCHIVE_BYTES = 100 * 1024 * 1024
# A member above MIN_RATIO_CHECK bytes that inflates more than MAX_RATIO times is a zip bomb
# (Apache POI's ZipSecureFile uses the same 1 % floor; real text and XML stay under 30×).
MAX_RATIO = 100
MIN_RATIO_CHECK = 1024 * 1024
# zipfile parses the central directory entry by entry (~10 µs each): a larger one than
# this is no real document (a big workbook lists ~3,000 parts, 1,000 archive members with
# long Vietnamese paths take ~200 KB) and would cost seconds (a 25 MB message can list
# 500,000 empty entries). Past it, ~25 ms of parsing at worst.
MAX_ZIP_DIRECTORY = 256 * 1024
# Small members read to tell documents apart ([Content_Types].xml, ODF's mimetype).
MAX_CONTENT_TYPES = 1024 * 1024
MAX_MIMETYPE = 256
# Text is recognised on this prefix: enough to tell text from binary, bounded on a huge file.
TEXT_SCAN = 1024 * 1024
# The Workbook stream's records are walked this far looking for Excel 4.0 macro sheets.
BIFF_SCAN = 256 * 1024
_CHUNK = 64 * 1024

# --- Format ids and the file-name extensions they may carry -------------------------------
# Each format's own extensions; the first is the one to suggest when a file needs renaming.
_PRIMARY: dict[str, tuple[str, ...]] = {
    "pdf": ("pdf",),
    "doc": ("doc", "dot"),
    "xls": ("xls", "xlt"),
    "ppt": ("ppt", "pps", "pot"),
    "ole": ("msg", "pub", "vsd", "mpp"),
    "docx": ("docx", "dotx"),
    "xlsx": ("xlsx", "xltx"),
    "pptx": ("pptx", "ppsx", "potx"),
    "docm": ("docm", "dotm"),
    "xlsm": ("xlsm", "xltm", "xlam", "xlsb"),
    "pptm": ("pptm", "ppsm", "potm", "ppam", "sldm"),
    "odt": ("odt", "ott"),
    "ods": ("ods", "ots"),
    "odp": ("odp", "otp"),
    "odg": ("odg", "otg"),
    "zip": ("zip",),
    "rtf": ("rtf",),
    "txt": ("txt", "text", "csv", "tsv", "log", "md"),
    "html": ("html", "htm", "xhtml"),
    "xml": ("xml", "xsd", "xsl", "xslt", "svg", "kml", "gpx"),
    "jpg": ("jpg", "jpeg", "jpe", "jfif"),
    "png": ("png",),
    "gif": ("gif",),
    "bmp": ("bmp", "dib"),
    "tiff": ("tif", "tiff"),
    "webp": ("webp",),
    "exe": ("exe", "dll", "com", "scr", "cpl", "ocx", "sys", "drv", "efi", "xll", "class"),
    "elf": ("so", "elf", "ko", "run"),
    "macho": ("dylib", "bundle"),
    "script": ("sh", "bash", "zsh", "csh", "ksh", "command", "py", "pl", "rb", "php"),
    "rar": ("rar",),
    "7z": ("7z",),
    "gz": ("gz", "tgz"),
    "unknown": (),
}
# Names practice gives a content that is not their own and that open fine: Word saves RTF
# and HTML ("Web page") as .doc, report software exports HTML or SpreadsheetML as .xls, an
# image saved under another image's extension, markup saved as .txt.
_IMAGES = ("jpg", "jpeg", "jpe", "jfif", "png", "gif", "bmp", "webp")
_COMPATIBLE: dict[str, tuple[str, ...]] = {
    "rtf": ("doc",),
    "html": ("doc", "xls", "txt"),
    "xml": ("doc", "xls", "txt"),
    **{f: _IMAGES for f in ("jpg", "png", "gif", "bmp", "webp")},
}
FORMAT_EXTENSIONS: dict[str, tuple[str, ...]] = {
    fmt: own + tuple(e for e in _COMPATIBLE.get(fmt, ()) if e not in own)
    for fmt, own in _PRIMARY.items()
}
# The format a file's name claims.
_NAMED: dict[str, str] = {ext: fmt for fmt, own in _PRIMARY.items() for ext in own}


# Programs, scripts, shortcuts and disk images Windows, macOS or Linux run or mount when
# opened (Outlook's blocked-attachment list and more), refused whatever the content.
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


EXECUTABLE_EXTENSIONS = _words(
    """
    ade adp app appcontent-ms application appref-ms apk appx appxbundle asp aspx bas bat
    bash bgi bundle chm class cmd com command cpl csh dmg deb diagcab dll drv efi elf exe
    fxp gadget grp hlp hpj hta htc inf ins iqy iso img isp its jar jnlp js jse ksh ko lnk
    library-ms mad maf mag mam maq mar mas mat mau mav maw mcf mda mdb mde mdt mdw mdz mjs
    msc msh msh1 msh2 mshxml msi msix msixbundle msp mst msu ocx ops osd pcd php pif pkg pl
    plg prf prg printerexport ps1 ps1xml ps2 ps2xml psc1 psc2 psd1 psm1 py pyc pyo pyw pyz
    pyzw rb reg rpm run scf scr sct search-ms searchconnector-ms settingcontent-ms sh shb
    shs slk so sys tool url vb vbe vbp vbs vhd vhdx vsmacros vsw webpnp website ws wsc wsf
    wsh xbap xll xnk zsh
    """
)
# Office files that carry macros by their very type.
MACRO_EXTENSIONS = _words("docm dotm xlsm xltm xlam xlsb pptm potm ppsm ppam sldm")

_INLINE_IMAGES = frozenset({"jpg", "png", "gif", "bmp", "webp"})
_OPAQUE_ARCHIVES = frozenset({"rar", "7z", "gz"})

_ENCRYPTED = (
    "được đặt mật khẩu nên không kiểm tra được nội dung — không được gửi. Hãy bỏ mật khẩu "
    "rồi gửi lại.",
    "is password-protected, so its content cannot be checked — it may not be sent. Remove "
    "the password and send it again.",
)
_LABELS: dict[str, tuple[str, str]] = {
    "pdf": ("tệp PDF", "a PDF file"),
    "doc": ("văn bản Word .doc", "a Word .doc document"),
    "xls": ("bảng tính Excel .xls", "an Excel .xls workbook"),
    "ppt": ("bản trình chiếu PowerPoint .ppt", "a PowerPoint .ppt presentation"),
    "ole": ("tệp OLE2 khác (Office cũ, Outlook)", "another OLE2 file (old Office, Outlook)"),
    "docx": ("văn bản Word .docx", "a Word .docx document"),
    "xlsx": ("bảng tính Excel .xlsx", "an Excel .xlsx workbook"),
    "pptx": ("bản trình chiếu PowerPoint .pptx", "a PowerPoint .pptx presentation"),
    "docm": ("văn bản Word có macro", "a macro-enabled Word document"),
    "xlsm": ("bảng tính Excel có macro", "a macro-enabled Excel workbook"),
    "pptm": ("bản trình chiếu PowerPoint có macro", "a macro-enabled PowerPoint presentation"),
    "odt": ("văn bản OpenDocument .odt", "an OpenDocument .odt text"),
    "ods": ("bảng tính OpenDocument .ods", "an OpenDocument .ods spreadsheet"),
    "odp": ("bản trình chiếu OpenDocument .odp", "an OpenDocument .odp presentation"),
    "odg": ("bản vẽ OpenDocument .odg", "an OpenDocument .odg drawing"),
    "zip": ("tệp nén ZIP", "a ZIP archive"),
    "rtf": ("văn bản RTF", "an RTF document"),
    "txt": ("văn bản thuần (text)", "plain text"),
    "html": ("trang web HTML", "an HTML page"),
    "xml": ("tệp XML", "an XML file"),
    "jpg": ("ảnh JPEG", "a JPEG image"),
    "png": ("ảnh PNG", "a PNG image"),
    "gif": ("ảnh GIF", "a GIF image"),
    "bmp": ("ảnh BMP", "a BMP image"),
    "tiff": ("ảnh TIFF", "a TIFF image"),
    "webp": ("ảnh WebP", "a WebP image"),
    "exe": ("tệp chạy được", "an executable"),
    "elf": ("tệp chạy được (Linux)", "a Linux executable"),
    "macho": ("tệp chạy được (macOS)", "a macOS executable"),
    "script": ("tệp lệnh (script)", "a script"),
    "rar": ("tệp nén RAR", "a RAR archive"),
    "7z": ("tệp nén 7z", "a 7z archive"),
    "gz": ("tệp nén gzip", "a gzip archive"),
    "unknown": ("dữ liệu không rõ định dạng", "data of unknown format"),
}


@dataclass(frozen=True)
class FormatProblem:
    """Why an attachment may not be sent (R11), in words for the sender.

    ``kind``: "not_allowed", "mismatch", "executable", "macro" or "archive" (a problem
    found inside a zip, or with the zip itself: too many files, too deep, a zip bomb).
    """

    filename: str  # the attachment's name as sent ("" when it has none)
    kind: str
    vi: str
    en: str


class _Content(NamedTuple):
    """What the bytes are, with what a format id alone does not say."""

    format: str
    macro: bool = False  # VBA, Excel 4.0 macro sheets, ODF Basic/scripts
    executable: bool = False  # executable content (also an MSI, which is OLE2)
    # Not a whole file of its kind: a container that does not open, an empty file.
    broken: bool = False
    encrypted: bool = False  # a password-protected Office file (OLE2 "EncryptedPackage")


# --- Sniffing ------------------------------------------------------------------------------
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MACHO = (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")
# C0 controls that never occur in text. Tab, line breaks, form feed, DOS end-of-file and
# ESC (coloured logs) do, and so do 0x01-0x06 and 0x11-0x17: TCVN3 capitals (Ú Ụ Ừ …).
# One memchr per byte is ~20 times faster than a regex character class over a megabyte.
_BINARY_BYTES = tuple(bytes([b]) for b in (0, 3, 7, 8, 14, 15, 16, 24, 25, 28, 29, 30, 31, 127))
_BINARY_CHARS = tuple(chr(c) for c in (*range(9), *range(14, 26), *range(28, 32), 127))
_MSI_CLSIDS = frozenset(
    {"000C1084-0000-0000-C000-000000000046", "000C1086-0000-0000-C000-000000000046"}
)
_VBA_STORAGES = frozenset({"macros", "_vba_project_cur", "vba"})


def sniff(data: bytes) -> str:
    """The format id of ``data`` judged by its content alone ("unknown" when none fits).

    Magic bytes decide; containers (OLE2, zip) are opened only when their magic says so,
    and only their directory and a small member are read. Never raises."""
    return _inspect(data).format


def _inspect(data: bytes) -> _Content:
    if not data:
        return _Content("txt", broken=True)  # an empty .txt is fine, an empty .pdf is not
    head = data[:16]
    if head.startswith(b"%PDF-"):
        return _Content("pdf")
    if head.startswith(_OLE_MAGIC):
        return _ole(data)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip(data)
    if head.startswith(b"{\\rtf"):
        return _Content("rtf")
    # A DOS header's fields hold zero bytes; text that happens to start "MZ" has none.
    if head.startswith((b"MZ", b"ZM")) and b"\x00" in data[:64]:
        return _Content("exe", executable=True)
    if head.startswith(b"\x7fELF"):
        return _Content("elf", executable=True)
    if head.startswith(_MACHO):
        return _Content("macho", executable=True)
    if head.startswith((b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf")) and len(data) >= 8:
        # A universal Mach-O counts its architectures here; a Java class has its version (>= 45).
        (count,) = struct.unpack(">I", data[4:8])
        return _Content("macho" if count < 45 else "exe", executable=True)
    if head.startswith(b"#!"):
        return _Content("script", executable=True)
    image = _image(data)
    if image:
        return _Content(image)
    if head.startswith(b"Rar!\x1a\x07"):
        return _Content("rar")
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return _Content("7z")
    if head.startswith(b"\x1f\x8b"):
        return _Content("gz")
    # Readers accept "%PDF-" anywhere in the first KB: after whitespace or binary junk it is
    # a PDF; after lines of text it is a text that mentions PDFs.
    at = data.find(b"%PDF-", 0, 1024)
    if at > 0:
        before = data[:at].lstrip(b"\xef\xbb\xbf").strip()
        if not before or _binary(before, len(before)):
            return _Content("pdf")
    return _Content(_text(data))


def _image(data: bytes) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data.startswith(b"BM") and len(data) >= 26 and data[6:10] == b"\x00\x00\x00\x00":
        return "bmp"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "webp"
    return ""


def _text(data: bytes) -> str:
    """ "txt", "html" or "xml" when ``data`` is text, else "unknown"."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        codec = "utf-16-le" if data[0] == 0xFF else "utf-16-be"
        end = min(len(data), TEXT_SCAN) & ~1
        text = data[2:end].decode(codec, errors="replace")
        if any(c in text for c in _BINARY_CHARS):
            return "unknown"
        return _markup(text[:1024])
    if _binary(data, TEXT_SCAN):
        return "unknown"
    return _markup(data[:1024].removeprefix(b"\xef\xbb\xbf").decode("latin-1"))


def _binary(data: bytes, end: int) -> bool:
    """Whether ``data[:end]`` holds a byte that text never does."""
    return any(data.find(b, 0, end) >= 0 for b in _BINARY_BYTES)


def _markup(head: str) -> str:
    start = head.lstrip().lower()
    if start.startswith("<?xml"):
        return "html" if "<!doctype html" in start or "<html" in start else "xml"
    if start.startswith(("<!doctype html", "<html", "<head", "<body")):
        return "html"
    if start.startswith(("<svg", "<!--")) or (
        len(start) > 1
        and start[0] == "<"
        and start[1].isalpha()
        and ("</" in start or "/>" in start)
    ):
        return "xml"
    return "txt"


def _ole(data: bytes) -> _Content:
    """An OLE2 compound file's flavour from its streams."""
    try:
        # A file object, never bytes: olefile takes bytes under 1,536 as a path to open.
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            paths = [[str(p).lower() for p in path] for path in ole.listdir(True, True)]
            top = {path[0] for path in paths if len(path) == 1}
            macro = any(_VBA_STORAGES.intersection(path) for path in paths)
            clsid = str(getattr(ole.root, "clsid", "") or "").upper()
            if clsid in _MSI_CLSIDS:
                return _Content("ole", executable=True)
            if "worddocument" in top:
                return _Content("doc", macro=macro)
            for stream in ("workbook", "book"):
                if stream in top:
                    return _Content("xls", macro=macro or _macro_sheets(ole, stream))
            if "powerpoint document" in top:
                return _Content("ppt", macro=macro)
            # An encrypted .docx/.xlsx/.pptx is an OLE2 wrapper around the real package.
            encrypted = {"encryptioninfo", "encryptedpackage"} <= top
            return _Content("ole", macro=macro, encrypted=encrypted)
    except Exception:  # hostile input: any parser failure means the container is broken
        return _Content("unknown", broken=True)


def _macro_sheets(ole: olefile.OleFileIO, stream: str) -> bool:
    """Whether the workbook declares an Excel 4.0 macro sheet (BOUNDSHEET type 1)."""
    with ole.openstream(stream) as fp:
        records = fp.read(BIFF_SCAN)
    pos = 0
    while pos + 4 <= len(records):
        kind, size = struct.unpack_from("<HH", records, pos)
        body = pos + 4
        if kind == 0x0085 and size >= 6 and body + 6 <= len(records) and records[body + 5] == 1:
            return True
        if kind == 0x000A:  # EOF of the workbook globals, where the sheets are listed
            return False
        pos = body + size
    return False


_WORD, _EXCEL, _POWERPOINT = ("docx", "docm"), ("xlsx", "xlsm"), ("pptx", "pptm")
# Main-part content types, lower case ("macroenabled" marks the macro flavour).
_OOXML_MAIN = (
    ("wordprocessingml.document.main+xml", _WORD),
    ("wordprocessingml.template.main+xml", _WORD),
    ("ms-word.document.macroenabled.main+xml", _WORD),
    ("ms-word.template.macroenabledtemplate.main+xml", _WORD),
    ("spreadsheetml.sheet.main+xml", _EXCEL),
    ("spreadsheetml.template.main+xml", _EXCEL),
    ("ms-excel.sheet.macroenabled.main+xml", _EXCEL),
    ("ms-excel.template.macroenabled.main+xml", _EXCEL),
    ("ms-excel.addin.macroenabled.main+xml", _EXCEL),
    ("ms-excel.sheet.binary.macroenabled.main", _EXCEL),
    ("presentationml.presentation.main+xml", _POWERPOINT),
    ("presentationml.slideshow.main+xml", _POWERPOINT),
    ("presentationml.template.main+xml", _POWERPOINT),
    ("ms-powerpoint.presentation.macroenabled.main+xml", _POWERPOINT),
    ("ms-powerpoint.slideshow.macroenabled.main+xml", _POWERPOINT),
    ("ms-powerpoint.template.macroenabled.main+xml", _POWERPOINT),
    ("ms-powerpoint.addin.macroenabled.main+xml", _POWERPOINT),
)
_ODF = {
    "text": "odt",
    "text-template": "odt",
    "spreadsheet": "ods",
    "spreadsheet-template": "ods",
    "presentation": "odp",
    "presentation-template": "odp",
    "graphics": "odg",
    "graphics-template": "odg",
}


def _zip(data: bytes) -> _Content:
    """A zip's flavour: ODF from its ``mimetype``, OOXML from ``[Content_Types].xml``."""
    directory = _zip_directory_size(data)
    if directory is None:
        return _Content("unknown", broken=True)
    if directory > MAX_ZIP_DIRECTORY:
        return _Content("zip")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = {info.filename: info for info in archive.infolist()}
            lower = [name.lower() for name in infos]
            if "mimetype" in infos:
                mimetype = _small_member(archive, infos["mimetype"], MAX_MIMETYPE)
                kind = mimetype.decode("ascii", "replace").strip()
                kind = kind.removeprefix("application/vnd.oasis.opendocument.")
                if kind in _ODF:
                    macro = any(n.startswith(("basic/", "scripts/")) for n in lower)
                    return _Content(_ODF[kind], macro=macro)
            if "[Content_Types].xml" not in infos:
                return _Content("zip")
            types = _small_member(archive, infos["[Content_Types].xml"], MAX_CONTENT_TYPES)
            return _ooxml(types.decode("utf-8", "replace").lower(), lower)
    except Exception:  # hostile input: any parser failure means the container is broken
        return _Content("unknown", broken=True)


def _ooxml(types: str, names: list[str]) -> _Content:
    macro = (
        "macroenabled" in types
        or "vbaproject" in types
        or "macrosheet" in types
        or any(
            n.endswith("vbaproject.bin")
            or "/macrosheets/" in n
            or _extension(n) in MACRO_EXTENSIONS
            for n in names
        )
    )
    family: tuple[str, str] | None = None
    for main, candidate in _OOXML_MAIN:
        if main in types:
            family = candidate
            break
    if family is None:  # no main part declared: the part names tell the application
        for prefix, candidate in (("word/", _WORD), ("xl/", _EXCEL), ("ppt/", _POWERPOINT)):
            if any(n.startswith(prefix) for n in names):
                family = candidate
                break
    if family is None:
        return _Content("zip")
    return _Content(family[1] if macro else family[0], macro=macro)


def _small_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """A member expected to be small; one that is not reads as empty."""
    if info.file_size > cap:
        return b""
    with archive.open(info) as fp:
        return fp.read(cap)


def _zip_directory_size(data: bytes) -> int | None:
    """The central directory's size from the end record (zip64 too), None if absent."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 0xFFFF))
    if end < 0 or end + 22 > len(data):
        return None
    (size,) = struct.unpack_from("<I", data, end + 12)
    if size != 0xFFFFFFFF:
        return int(size)
    locator = end - 20
    if locator < 0 or data[locator : locator + 4] != b"PK\x06\x07":
        return None
    (record,) = struct.unpack_from("<Q", data, locator + 8)
    if record + 56 > len(data) or data[record : record + 4] != b"PK\x06\x06":
        return None
    (size64,) = struct.unpack_from("<Q", data, record + 40)
    return int(size64)


# --- Judging an attachment -----------------------------------------------------------------
@dataclass
class _Scan:
    """One attachment's check: the allowed formats and what its archives have used up."""

    allowed: frozenset[str]
    filename: str
    members: int = 0
    unpacked: int = 0


def check_attachment(attachment: Attachment, allowed: Collection[str]) -> FormatProblem | None:
    """None when ``attachment`` may be sent under R11 with the formats ``allowed`` (format
    ids as in config), else the first problem found, in Vietnamese and English.

    Executables, scripts and macro-enabled files are refused even if their format is
    listed; a zip passes only when "zip" is allowed and every member passes. Never raises."""
    if _smime_signature(attachment):
        return None
    scan = _Scan(frozenset(a.lower() for a in allowed), attachment.filename)
    return _judge(scan, attachment.filename, attachment.data, (), inline=attachment.inline)


def _smime_signature(attachment: Attachment) -> bool:
    """The detached signature of an S/MIME signed message (smime.p7s): part of how the
    message is signed, not a document sent."""
    return (
        attachment.content_type in ("application/pkcs7-signature", "application/x-pkcs7-signature")
        and _extension(attachment.filename) in ("", "p7s")
        and attachment.data.startswith(b"\x30")
    )


def _judge(
    scan: _Scan, name: str, data: bytes, where: tuple[str, ...], *, inline: bool = False
) -> FormatProblem | None:
    """The problem with one file named ``name`` found inside the archives ``where``."""
    ext = _extension(name)
    if ext in EXECUTABLE_EXTENSIONS:
        return _problem(
            scan,
            where,
            name,
            "executable",
            f"có phần mở rộng .{ext} của chương trình hoặc tệp lệnh — không được gửi qua thư "
            "công vụ.",
            f"has the .{ext} extension of a program or script — it may not be sent by "
            "official mail.",
        )
    content = _inspect(data)
    if inline and not name and content.format in _INLINE_IMAGES:
        return None
    if ext in MACRO_EXTENSIONS or content.macro:
        if ext in MACRO_EXTENSIONS:
            what_vi = f"là tệp Office có macro (.{ext})"
            what_en = f"is a macro-enabled Office file (.{ext})"
        else:
            what_vi = "chứa macro (mã lệnh VBA, Excel 4.0 hoặc Basic)"
            what_en = "contains macros (VBA, Excel 4.0 or Basic code)"
        return _problem(
            scan,
            where,
            name,
            "macro",
            f"{what_vi} — không được gửi. Hãy xoá macro và lưu lại dưới dạng không có macro "
            "(.docx, .xlsx, .pptx, .odt…) rồi gửi lại.",
            f"{what_en} — it may not be sent. Remove the macros and save it in a macro-free "
            "format (.docx, .xlsx, .pptx, .odt…), then send it again.",
        )
    named = _NAMED.get(ext)
    if named is not None and ext not in FORMAT_EXTENSIONS[content.format]:
        return _mismatch(scan, where, name, named, content)
    if content.executable:
        label_vi, label_en = _LABELS[content.format]
        if content.format == "ole":
            label_vi, label_en = "gói cài đặt Windows (MSI)", "a Windows installer (MSI)"
        return _problem(
            scan,
            where,
            name,
            "executable",
            f"là {label_vi} — không được gửi qua thư công vụ. Nếu bạn không chủ ý gửi tệp "
            "này, hãy báo cán bộ công nghệ thông tin của cơ quan.",
            f"is {label_en} — it may not be sent by official mail. If you did not mean to "
            "send it, tell your agency's IT officer.",
        )
    if content.format not in scan.allowed and (named is None or named not in scan.allowed):
        return _not_allowed(scan, where, name, content)
    if content.format == "zip":
        return _judge_zip(scan, name, data, where)
    if content.format in _OPAQUE_ARCHIVES:
        label_vi, label_en = _LABELS[content.format]
        return _problem(
            scan,
            where,
            name,
            "archive",
            f"là {label_vi}; hệ thống chỉ kiểm tra được các tệp bên trong tệp nén ZIP — "
            "không được gửi. Hãy nén lại bằng ZIP hoặc gửi từng tệp.",
            f"is {label_en}; only the files inside ZIP archives can be checked — it may not "
            "be sent. Compress the files as ZIP or send them one by one.",
        )
    return None


def _mismatch(
    scan: _Scan, where: tuple[str, ...], name: str, named: str, content: _Content
) -> FormatProblem:
    named_vi, named_en = _LABELS[named]
    if content.encrypted:
        vi, en = _ENCRYPTED
    elif content.broken:
        vi = (
            f"bị hỏng hoặc không phải là {named_vi} — không được gửi. Hãy mở tệp bằng phần "
            "mềm soạn thảo, lưu lại rồi gửi lại."
        )
        en = (
            f"is damaged or is not {named_en} — it may not be sent. Open it in its "
            "application, save it again and send it again."
        )
    else:
        content_vi, content_en = _LABELS[content.format]
        vi = f"không phải là {named_vi} (nội dung là {content_vi}) — không được gửi."
        en = f"is not {named_en} (its content is {content_en}) — it may not be sent."
        if content.executable:
            vi += (
                " Nếu bạn không tự đổi tên tệp này, hãy báo cán bộ công nghệ thông tin của cơ quan."
            )
            en += " If you did not rename this file yourself, tell your agency's IT officer."
        elif content.format in scan.allowed and _PRIMARY[content.format]:
            right = _PRIMARY[content.format][0]
            vi += f" Hãy đổi phần mở rộng của tệp thành .{right} rồi gửi lại."
            en += f" Rename the file with the .{right} extension and send it again."
        else:
            vi += " Hãy gửi đúng tệp gốc."
            en += " Send the original file."
    return _problem(scan, where, name, "mismatch", vi, en)


def _not_allowed(
    scan: _Scan, where: tuple[str, ...], name: str, content: _Content
) -> FormatProblem:
    if content.encrypted:
        vi, en = _ENCRYPTED
        return _problem(scan, where, name, "not_allowed", vi, en)
    label_vi, label_en = _LABELS[content.format]
    listed = ", ".join(f".{_PRIMARY[f][0]}" for f in sorted(scan.allowed) if _PRIMARY.get(f))
    return _problem(
        scan,
        where,
        name,
        "not_allowed",
        f"là {label_vi} — định dạng này không được phép gửi. Các định dạng được phép: "
        f"{listed or '(không có)'}. Hãy chuyển tệp sang một định dạng được phép rồi gửi lại.",
        f"is {label_en} — this format may not be sent. Allowed formats: {listed or '(none)'}. "
        "Convert the file to an allowed format and send it again.",
    )


def _judge_zip(scan: _Scan, name: str, data: bytes, where: tuple[str, ...]) -> FormatProblem | None:
    """Every member of an allowed zip, by its own name and content, within the limits."""
    inside = (*where, name)
    if len(inside) > MAX_ARCHIVE_DEPTH:
        return _archive_problem(
            scan,
            where,
            name,
            f"chứa tệp nén lồng nhau quá {MAX_ARCHIVE_DEPTH} mức",
            f"nests archives more than {MAX_ARCHIVE_DEPTH} levels deep",
        )
    size = _zip_directory_size(data)
    if size is not None and size > MAX_ZIP_DIRECTORY:
        return _too_many(scan, where, name)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                scan.members += 1
                if scan.members > MAX_ARCHIVE_MEMBERS:
                    return _too_many(scan, where, name)
                problem = _judge_member(scan, archive, info, inside)
                if problem is not None:
                    return problem
    except Exception:  # hostile input: a directory zipfile cannot read is a broken zip
        return _archive_problem(
            scan, where, name, "bị hỏng, không đọc được", "is damaged and cannot be read"
        )
    return None


def _judge_member(
    scan: _Scan, archive: zipfile.ZipFile, info: zipfile.ZipInfo, inside: tuple[str, ...]
) -> FormatProblem | None:
    member = info.filename
    if info.flag_bits & 0x1:
        return _problem(
            scan,
            inside,
            member,
            "archive",
            "được đặt mật khẩu nên không kiểm tra được — không được gửi. Hãy nén lại không "
            "đặt mật khẩu rồi gửi lại.",
            "is password-protected, so it cannot be checked — it may not be sent. Compress "
            "it again without a password and send it again.",
        )
    budget = MAX_ARCHIVE_BYTES - scan.unpacked
    # The declared sizes refuse most bombs unread; _read_capped holds whatever they hide.
    declared_bomb = info.file_size > budget or (
        info.file_size > MIN_RATIO_CHECK and info.file_size > MAX_RATIO * max(info.compress_size, 1)
    )
    data = None
    if not declared_bomb:
        try:
            data = _read_capped(archive, info, budget)
        except Exception:  # hostile input: bad CRC, unknown method, truncated data
            return _problem(
                scan,
                inside,
                member,
                "archive",
                "bị hỏng, không đọc được — không được gửi. Hãy nén lại rồi gửi lại.",
                "is damaged and cannot be read — it may not be sent. Compress it again and "
                "send it again.",
            )
    if data is None:
        megabytes = MAX_ARCHIVE_BYTES // (1024 * 1024)
        return _archive_problem(
            scan,
            inside[:-1],
            inside[-1],
            f"giải nén ra quá lớn (hơn {megabytes} MB) hoặc nén với tỉ lệ bất thường (nghi "
            "là bom nén)",
            f"unpacks to too much data (over {megabytes} MB) or is compressed at an abnormal "
            "ratio (a suspected zip bomb)",
        )
    scan.unpacked += len(data)
    return _judge(scan, member, data, inside)


def _read_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes | None:
    """The member's bytes, or None once more than ``cap`` bytes or an abnormal ratio."""
    chunks: list[bytes] = []
    total = 0
    compressed = max(info.compress_size, 1)
    with archive.open(info) as fp:
        while chunk := fp.read(_CHUNK):
            total += len(chunk)
            if total > cap or (total > MIN_RATIO_CHECK and total > MAX_RATIO * compressed):
                return None
            chunks.append(chunk)
    return b"".join(chunks)


def _too_many(scan: _Scan, where: tuple[str, ...], name: str) -> FormatProblem:
    return _archive_problem(
        scan,
        where,
        name,
        f"chứa quá nhiều tệp (hơn {MAX_ARCHIVE_MEMBERS})",
        f"holds too many files (over {MAX_ARCHIVE_MEMBERS})",
    )


def _archive_problem(
    scan: _Scan, where: tuple[str, ...], name: str, vi: str, en: str
) -> FormatProblem:
    return _problem(
        scan,
        where,
        name,
        "archive",
        f"{vi} — không được gửi. Hãy gửi các tệp riêng hoặc chia thành tệp nén nhỏ hơn.",
        f"{en} — it may not be sent. Send the files separately or in smaller archives.",
    )


def _problem(
    scan: _Scan, where: tuple[str, ...], name: str, kind: str, vi: str, en: str
) -> FormatProblem:
    """A problem whose texts name the file (and the archives it sits in); a problem inside
    an archive is of kind "archive" and belongs to the attachment that was sent."""
    if name:
        shown = _shown(name)
        file_vi, file_en = f'Tệp "{shown}"', f'File "{shown}"'
    else:
        file_vi, file_en = "Tệp đính kèm không tên", "The unnamed attachment"
    if where:
        path = " › ".join(f'"{_shown(w)}"' for w in where)
        return FormatProblem(
            scan.filename,
            "archive",
            f"Trong tệp nén {path}, {file_vi[0].lower()}{file_vi[1:]} {vi}",
            f"Inside the archive {path}, {file_en[0].lower()}{file_en[1:]} {en}",
        )
    return FormatProblem(scan.filename, kind, f"{file_vi} {vi}", f"{file_en} {en}")


def _shown(name: str) -> str:
    """``name`` safe to show and to put in an SMTP reply: controls and bidi overrides (which
    make "exe.pdf" of "fdp.exe") as "?", at most 120 characters."""
    safe = "".join("?" if unicodedata.category(c)[0] == "C" else c for c in name[:121])
    return safe if len(safe) <= 120 else safe[:119] + "…"


def _extension(name: str) -> str:
    """The lower-case extension Windows would act on: after the last dot of the last path
    component, ignoring trailing dots and spaces (Windows drops them: "a.exe." runs) and
    anything past a NUL (where some clients cut the name when saving)."""
    base = name.split("\x00", 1)[0].replace("\\", "/").rsplit("/", 1)[-1].rstrip(" .")
    _stem, dot, ext = base.rpartition(".")
    return ext.lower() if dot else ""
