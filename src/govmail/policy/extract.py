"""The text of an attached document (PDF, OOXML, ODF, RTF, TXT, legacy Word) for R14 and R15."""

from __future__ import annotations

import codecs
import contextlib
import io
import logging
import re
import struct
import threading
import warnings
import zipfile
from collections.abc import Callable, Iterator
from typing import Any
from xml.parsers import expat

import olefile
import pypdf
from pypdf.errors import PdfReadWarning
from striprtf.striprtf import rtf_to_text

__all__ = ["document_text"]

log = logging.getLogger(__name__)

# Budgets for hostile input. Every reader stops once it holds ``max_chars``; these bound
# the work done before that (a zip bomb, a huge stream of markup without text).
_MAX_XML_BYTES = 4 * 1024 * 1024  # decompressed XML read from one OOXML/ODF file in all
_XML_CHUNK = 64 * 1024
_MAX_RTF_BYTES = 1024 * 1024  # striprtf spends about a microsecond per token
_MAX_RTF_FONT_TABLE = 32 * 1024
_MAX_OLE_STREAM = 16 * 1024 * 1024
_MAX_RUN_SCAN = 4 * 1024 * 1024  # bytes of an OLE stream scanned for runs of text
_MAX_DOC_PIECES = 100_000

# pypdf's own limits are sized for 75 MB streams; a page of a letter needs far less.
# (pypdf < 7 has no Configuration and keeps its module-level limits.)
_PDF_CONFIG = (
    pypdf.Configuration().with_overwrites(
        zlib_maximum_output_length=8 * 1024 * 1024,
        lzw_maximum_output_length=8 * 1024 * 1024,
        run_length_maximum_output_length=8 * 1024 * 1024,
        stream_decoding_work_maximum_length=32 * 1024 * 1024,
        stream_parsing_work_maximum_count=500_000,
        xform_maximum_invocations_per_extraction=500,
        jbig2dec_binary=None,  # never start a program for an attachment
        disable_legacy_handling=True,
    )
    if hasattr(pypdf, "Configuration")
    else None
)
# pypdf reports every oddity of a malformed file through logging (and, in older
# versions, PdfReadWarning). Hostile attachments would flood the log, so both are
# silenced while pypdf works for us; the switch is process-wide, hence the lock.
_PYPDF_QUIET = threading.Lock()


class _Full(Exception):
    """Raised by _Text when it holds max_chars: the readers stop there."""


class _Hostile(Exception):
    """Raised by the XML handlers on a DTD (entity expansion is never legitimate here)."""


class _Text:
    """Text collected by a reader, at most ``limit`` characters."""

    def __init__(self, limit: int) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.limit = limit

    @property
    def remaining(self) -> int:
        return self.limit - self.size

    def add(self, text: str) -> None:
        if not text:
            return
        self.parts.append(text)
        self.size += len(text)
        if self.size >= self.limit:
            raise _Full

    def result(self) -> str:
        text = "".join(self.parts)
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        return text[: self.limit]


Reader = Callable[[bytes, _Text, int], None]


def document_text(data: bytes, fmt: str, *, max_chars: int = 100_000, max_pages: int = 3) -> str:
    """Return the text of a document whose content format (policy/formats.py) is ``fmt``.

    Lines are kept (one paragraph, table cell or text line per line): stamps and titles
    are found line by line. PDF: the text layer of the first ``max_pages`` pages (laid
    out, so text placed side by side stays apart by several spaces); PPTX: the first
    ``max_pages`` slides; DOCX (page headers first, then the body), XLSX (shared
    strings), ODF, RTF, TXT: from the start; .doc: its piece table, or runs of text when
    that cannot be read; .xls/.ppt: runs of text. Other formats give "".

    Never raises on malformed or hostile input: it returns what was read before the
    problem, possibly "". Work is bounded by ``max_chars``, ``max_pages`` and fixed
    caps on decompressed bytes.
    """
    reader = _READERS.get(fmt)
    if reader is None or not data or max_chars <= 0:
        return ""
    out = _Text(max_chars)
    try:
        reader(data, out, max(max_pages, 1))
    except _Full:
        pass
    except Exception as exc:  # hostile input may break a parser anywhere
        log.debug("text of a %s document stops after %d chars: %r", fmt, out.size, exc)
    return out.result()


# --- PDF -------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_pypdf() -> Iterator[None]:
    logger = logging.getLogger("pypdf")
    with _PYPDF_QUIET, warnings.catch_warnings():
        # Only pypdf's notes on malformed files: a DeprecationWarning caused by our use
        # of its API must still reach the tests (warnings are errors there).
        warnings.filterwarnings("ignore", category=PdfReadWarning)
        level = logger.level
        logger.setLevel(logging.CRITICAL)
        try:
            if _PDF_CONFIG is None:
                yield
            else:
                with pypdf.apply_configuration(_PDF_CONFIG):
                    yield
        finally:
            logger.setLevel(level)


def _pdf(data: bytes, out: _Text, max_pages: int) -> None:
    with _quiet_pypdf():
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            return  # a real password: no text to read
        pages = reader.pages
        for index in range(min(len(pages), max_pages)):
            out.add(_page_text(pages[index]))
            out.add("\n")


_WIDE_GAP = re.compile(r" {4,}")


def _page_text(page: pypdf.PageObject) -> str:
    try:
        # Layout mode keeps two columns of a header line (agency name | stamp or
        # national motto) apart by spaces; plain mode joins them with one space.
        text = page.extract_text(extraction_mode="layout")
    except Exception:  # layout mode is stricter about odd fonts
        text = page.extract_text()
    # Layout mode pads columns with long runs of spaces; three still set them apart.
    lines = (_WIDE_GAP.sub("   ", line.rstrip()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


# --- OOXML and ODF (zip + XML) ---------------------------------------------------------

_DOCX_PART = re.compile(r"word/(?:header\d{1,3}|document\d{0,3})\.xml")
_SLIDE = re.compile(r"ppt/slides/slide(\d{1,5})\.xml")


def _docx(data: bytes, out: _Text, max_pages: int) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = [n for n in archive.namelist() if _DOCX_PART.fullmatch(n)]
        headers = sorted(n for n in names if n.startswith("word/header"))
        body = "word/document.xml" if "word/document.xml" in names else None
        body = body or next((n for n in sorted(names) if n.startswith("word/document")), None)
        _read_xml_members(archive, [*headers, *([body] if body else [])], out, _OoxmlHandler)


def _pptx(data: bytes, out: _Text, max_pages: int) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        slides = []
        for name in archive.namelist():
            found = _SLIDE.fullmatch(name)
            if found:
                slides.append((int(found.group(1)), name))
        members = [name for _, name in sorted(slides)[:max_pages]]
        _read_xml_members(archive, members, out, _OoxmlHandler)


def _xlsx(data: bytes, out: _Text, max_pages: int) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        _read_xml_members(archive, ["xl/sharedStrings.xml"], out, _OoxmlHandler)


def _odf(data: bytes, out: _Text, max_pages: int) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        _read_xml_members(archive, ["content.xml"], out, _OdfHandler)


def _read_xml_members(
    archive: zipfile.ZipFile,
    members: list[str],
    out: _Text,
    handler: Callable[[_Text], _XmlHandler],
) -> None:
    budget = _MAX_XML_BYTES
    present = set(archive.namelist())
    for name in members:
        if name not in present or budget <= 0:
            continue
        parser = expat.ParserCreate()
        parser.buffer_text = True
        handler(out).attach(parser)
        with archive.open(name) as stream:
            # Read in chunks: a zip bomb is cut at the budget, never inflated whole.
            while budget > 0:
                chunk = stream.read(min(_XML_CHUNK, budget))
                if not chunk:
                    break
                budget -= len(chunk)
                parser.Parse(chunk, False)


class _XmlHandler:
    """Expat callbacks that turn one XML part into lines of text.

    Element names are matched on their local part ("w:t" → "t") whatever the prefix;
    namespace processing is off: it costs time and refuses files with a stray prefix.
    """

    def __init__(self, out: _Text) -> None:
        self.out = out
        self.skip = 0  # depth inside a subtree whose text is not shown
        self.locals: dict[str, str] = {}

    def attach(self, parser: Any) -> None:
        parser.StartDoctypeDeclHandler = self.refuse
        parser.EntityDeclHandler = self.refuse
        parser.StartElementHandler = self.start
        parser.EndElementHandler = self.end
        parser.CharacterDataHandler = self.chars

    def refuse(self, *args: object) -> None:
        raise _Hostile("DTD in a document part")

    def local(self, name: str) -> str:
        local = self.locals.get(name)
        if local is None:
            local = self.locals[name] = name[name.find(":") + 1 :]
        return local

    def start(self, name: str, attrs: dict[str, str]) -> None:
        raise NotImplementedError

    def end(self, name: str) -> None:
        raise NotImplementedError

    def chars(self, data: str) -> None:
        raise NotImplementedError


class _OoxmlHandler(_XmlHandler):
    """WordprocessingML, DrawingML (slides) and SpreadsheetML shared strings: text sits
    only in ``t`` elements; ``p`` (paragraph) and ``si`` (shared string) end a line."""

    # mc:Fallback repeats a text box's text for old readers; rPh is phonetic guide text.
    SKIPPED = frozenset({"Fallback", "rPh"})

    def __init__(self, out: _Text) -> None:
        super().__init__(out)
        self.in_text = False
        self.runs = 0  # depth of w:r / a:r: a w:tab outside a run sets a tab stop

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if self.skip:
            self.skip += 1
            return
        local = self.local(name)
        if local == "t":
            self.in_text = True
        elif local == "r":
            self.runs += 1
        elif local == "tab":
            if self.runs:
                self.out.add("\t")
        elif local in ("br", "cr"):
            self.out.add("\n")
        elif local in self.SKIPPED:
            self.skip = 1

    def end(self, name: str) -> None:
        if self.skip:
            self.skip -= 1
            return
        local = self.local(name)
        if local == "t":
            self.in_text = False
        elif local == "r":
            self.runs = max(self.runs - 1, 0)
        elif local in ("p", "si"):
            self.out.add("\n")

    def chars(self, data: str) -> None:
        if self.in_text and not self.skip:
            self.out.add(data)


class _OdfHandler(_XmlHandler):
    """OpenDocument content.xml: mixed content inside text:p and text:h paragraphs."""

    SKIPPED = frozenset({"tracked-changes", "annotation", "note-citation"})

    def __init__(self, out: _Text) -> None:
        super().__init__(out)
        self.paragraphs = 0

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if self.skip:
            self.skip += 1
            return
        local = self.local(name)
        if local in ("p", "h"):
            self.paragraphs += 1
        elif local in self.SKIPPED:
            self.skip = 1
        elif not self.paragraphs:
            return
        elif local == "s":  # a run of spaces, text:c of them
            count = next((v for k, v in attrs.items() if self.local(k) == "c"), "1")
            spaces = int(count) if count.isascii() and count.isdigit() else 1
            self.out.add(" " * min(spaces, 100))
        elif local == "tab":
            self.out.add("\t")
        elif local == "line-break":
            self.out.add("\n")

    def end(self, name: str) -> None:
        if self.skip:
            self.skip -= 1
            return
        if self.paragraphs and self.local(name) in ("p", "h"):
            self.paragraphs -= 1
            self.out.add("\n")

    def chars(self, data: str) -> None:
        if self.paragraphs and not self.skip:
            self.out.add(data)


# --- RTF -------------------------------------------------------------------------------

_RTF_CODEPAGE = re.compile(r"\\ansicpg(\d{3,5})")
_RTF_BIN = re.compile(r"\\bin(\d{1,9})")
# Picture and object data as hex: never text, and striprtf would walk it char by char.
_HEX_RUN = re.compile(r"[0-9a-fA-F\r\n]{256,}")
_RTF_BRACE = re.compile(r"[{}]")


def _rtf(data: bytes, out: _Text, max_pages: int) -> None:
    raw = data[: min(_MAX_RTF_BYTES, out.remaining * 8 + 4096)].decode("latin-1")
    raw = _HEX_RUN.sub("", _drop_rtf_binary(raw))
    # striprtf's hyperlink regex backtracks quadratically on hostile input; a space after
    # \field is a control word's delimiter, so the RTF means the same without a match.
    raw = raw.replace("{\\field{", "{\\field {")
    raw = _drop_large_font_table(raw)
    found = _RTF_CODEPAGE.search(raw, 0, 4096)
    encoding = "cp1252"
    if found:
        with contextlib.suppress(LookupError):
            encoding = codecs.lookup(f"cp{found.group(1)}").name
    text: str = rtf_to_text(raw, encoding=encoding, errors="replace")  # type: ignore[no-untyped-call]
    out.add(text)


def _drop_rtf_binary(raw: str) -> str:
    """``raw`` without the bytes of \\binN runs (raw binary data inside pictures)."""
    if "\\bin" not in raw:
        return raw
    kept: list[str] = []
    position = 0
    for found in _RTF_BIN.finditer(raw):
        if found.start() < position:
            continue  # inside binary data already dropped
        kept.append(raw[position : found.start()])
        position = found.end() + int(found.group(1))
    kept.append(raw[position:])
    return "".join(kept)


def _drop_large_font_table(raw: str) -> str:
    """striprtf scans the font table with lazy regexes (quadratic on a hostile table);
    a real one is a few KB, so a huge one is removed (text then decodes as ansicpg)."""
    start = raw.find("{\\fonttbl")
    if start < 0:
        return raw
    depth = 0
    for brace in _RTF_BRACE.finditer(raw, start, start + _MAX_RTF_FONT_TABLE):
        depth += 1 if brace.group() == "{" else -1
        if depth == 0:
            return raw
    end = raw.find("}", start + _MAX_RTF_FONT_TABLE)
    return raw[:start] + raw[end + 1 :] if end >= 0 else raw[:start]


# --- Plain text ------------------------------------------------------------------------


def _txt(data: bytes, out: _Text, max_pages: int) -> None:
    head = data[: out.remaining * 4 + 4]
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        out.add(head.decode("utf-32", "replace"))
    elif head.startswith(codecs.BOM_UTF8):
        out.add(head[3:].decode("utf-8", "replace"))
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        out.add(head.decode("utf-16", "replace"))
    else:
        out.add(_utf8_or_cp1252(head, truncated=len(head) < len(data)))


def _utf8_or_cp1252(data: bytes, *, truncated: bool) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Our own cut may split the last character: that is still UTF-8.
        if truncated and exc.reason == "unexpected end of data" and exc.start >= len(data) - 3:
            return data[: exc.start].decode("utf-8")
    return data.decode("cp1252", "replace")


# --- Legacy Office (OLE2) --------------------------------------------------------------

# Word's special characters: paragraph and cell ends become line ends; field, picture
# and annotation anchors are dropped; non-breaking and optional hyphens normalised.
_DOC_CHARS = str.maketrans(
    {
        "\x07": "\n",
        "\x0b": "\n",
        "\x0c": "\n",
        "\x0d": "\n",
        "\x1e": "-",
        "\x1f": None,
        "\x00": None,
        "\x01": None,
        "\x02": None,
        "\x05": None,
        "\x08": None,
        "\x15": None,
    }
)
_DOC_FIELD_CODE = re.compile("\x13[^\x13\x14\x15]{0,1000}[\x14\x15]")
# Runs of printable text in a binary stream: UTF-16LE (Latin letters, and Vietnamese
# ones in U+01xx and U+1Exx), or 8-bit cp1252.
_TEXT_RUNS = re.compile(
    rb"(?P<wide>(?:[\x09\x0a\x0d\x20-\x7e\xa0-\xff]\x00|[\x00-\xff][\x01\x1e]){4,})"
    rb"|(?P<narrow>[\x09\x20-\x7e\xa0-\xff]{8,})"
)


def _doc(data: bytes, out: _Text, max_pages: int) -> None:
    with olefile.OleFileIO(io.BytesIO(data)) as ole:
        word = _ole_stream(ole, "WordDocument")
        if word is None:
            return
        table_name = "1Table" if len(word) > 0x0B and word[0x0B] & 0x02 else "0Table"
        table = _ole_stream(ole, table_name) or b""
        text = _doc_pieces(word, table, out.remaining)
        if text is None:
            _add_runs(word, out)
            return
        text = _DOC_FIELD_CODE.sub("", text)
        out.add(text.translate(_DOC_CHARS))


def _doc_pieces(word: bytes, table: bytes, limit: int) -> str | None:
    """The text of a Word 97-2003 document from its piece table (MS-DOC 2.8.35), or None
    when the file is not one (too short, encrypted, no piece table)."""
    if len(word) < 0x1AA or struct.unpack_from("<H", word, 0)[0] != 0xA5EC:
        return None
    if struct.unpack_from("<H", word, 0x0A)[0] & 0x0100:  # fEncrypted
        return None
    fc_clx, lcb_clx = struct.unpack_from("<II", word, 0x1A2)
    clx = table[fc_clx : fc_clx + lcb_clx]
    position = 0
    while position + 3 <= len(clx) and clx[position] == 0x01:  # Prc: formatting, skipped
        position += 3 + struct.unpack_from("<H", clx, position + 1)[0]
    if position + 5 > len(clx) or clx[position] != 0x02:  # Pcdt
        return None
    size = struct.unpack_from("<I", clx, position + 1)[0]
    plc = clx[position + 5 : position + 5 + size]
    count = min((len(plc) - 4) // 12, _MAX_DOC_PIECES)
    if count <= 0:
        return None
    cps = struct.unpack_from(f"<{count + 1}I", plc, 0)
    parts: list[str] = []
    total = 0
    for index in range(count):
        chars = min(cps[index + 1] - cps[index], limit - total)
        if chars <= 0:
            continue
        fc = struct.unpack_from("<I", plc, (count + 1) * 4 + index * 8 + 2)[0]
        if fc & 0x40000000:  # fCompressed: 8-bit text at fc / 2
            start = (fc & 0x3FFFFFFF) // 2
            piece = word[start : start + chars].decode("cp1252", "replace")
        else:
            start = fc & 0x3FFFFFFF
            piece = word[start : start + 2 * chars].decode("utf-16-le", "replace")
        parts.append(piece)
        total += len(piece)
        if total >= limit:
            break
    return "".join(parts)


def _ole_stream(ole: Any, name: str) -> bytes | None:
    if not ole.exists(name) or ole.get_size(name) > _MAX_OLE_STREAM:
        return None
    data: bytes = ole.openstream(name).read()
    return data


def _ole_runs(*stream_names: str) -> Reader:
    """A reader for .xls/.ppt: runs of text in the first of ``stream_names`` present."""

    def read(data: bytes, out: _Text, max_pages: int) -> None:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            for name in stream_names:
                stream = _ole_stream(ole, name)
                if stream is not None:
                    _add_runs(stream, out)
                    return

    return read


def _add_runs(stream: bytes, out: _Text) -> None:
    for found in _TEXT_RUNS.finditer(stream, 0, _MAX_RUN_SCAN):
        wide = found.group("wide")
        run = (
            wide.decode("utf-16-le", "replace")
            if wide
            else found.group(0).decode("cp1252", "replace")
        )
        out.add(run.translate(_DOC_CHARS).strip() + "\n")


_READERS: dict[str, Reader] = {
    "pdf": _pdf,
    "docx": _docx,
    "docm": _docx,
    "pptx": _pptx,
    "pptm": _pptx,
    "xlsx": _xlsx,
    "xlsm": _xlsx,
    "odt": _odf,
    "ods": _odf,
    "odp": _odf,
    "rtf": _rtf,
    "txt": _txt,
    "doc": _doc,
    "xls": _ole_runs("Workbook", "Book"),
    "ppt": _ole_runs("PowerPoint Document"),
}
