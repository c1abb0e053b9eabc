"""The layout of a request's PDF, like the regulation's Mẫu 01, 02 and 03 (fpdf2)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos

from govmail.core.errors import GovmailError, InvalidInput
from govmail.workflows.model import (
    CODE_ADDRESS,
    DELEGATION,
    FORM_01,
    FORM_02,
    FORM_03,
    REPORT_WITHIN_DAYS,
    RESET,
    MailboxRequest,
    RequestRow,
)
from govmail.workflows.pdf import DEFAULT_FONT_DIR

VIETNAM_TIME = timezone(timedelta(hours=7), "ICT")
FONT_FAMILY = "DejaVu"
REGULAR_FONT = "DejaVuSans.ttf"
BOLD_FONT = "DejaVuSans-Bold.ttf"
ITALIC_FONT = "DejaVuSans-Oblique.ttf"  # optional: the date line and the stamp note

# Nghị định 30/2020/NĐ-CP page margins for administrative documents (mm); the bottom one
# leaves room for the footer with the request number.
MARGIN_LEFT, MARGIN_TOP, MARGIN_RIGHT, MARGIN_BOTTOM = 30.0, 20.0, 15.0, 20.0
HEADER_LEFT_SHARE = 0.42  # the agency column; the national motto takes the rest

TITLE_LINES = {
    FORM_01: "CẤP MỚI HỘP THƯ ĐIỆN TỬ CÔNG VỤ",
    FORM_02: "THAY ĐỔI THÔNG TIN HỘP THƯ ĐIỆN TỬ CÔNG VỤ",
    FORM_03: "XÓA HỘP THƯ ĐIỆN TỬ CÔNG VỤ CÁ NHÂN",
    RESET: "CẤP LẠI MẬT KHẨU HỘP THƯ ĐIỆN TỬ CÔNG VỤ",
    DELEGATION: "ỦY QUYỀN SỬ DỤNG HỘP THƯ ĐIỆN TỬ CÔNG VỤ CƠ QUAN",
}
REVOKE_TITLE = "THU HỒI ỦY QUYỀN SỬ DỤNG HỘP THƯ ĐIỆN TỬ CÔNG VỤ CƠ QUAN"
CODES_NOTE = (
    "Ghi chú: Nội dung cột “Mã” nhận giá trị 1 khi thay đổi chức vụ, nhận giá trị 2 khi "
    "thay đổi bộ phận công tác và nhận giá trị 3 khi thay đổi địa chỉ hộp thư điện tử."
)
LATE_MARK = f"Nộp muộn (quá {REPORT_WITHIN_DAYS} ngày)"
BLANK = "…………………………"  # an empty field, as on the paper form

LINE = 6.0  # body line height (mm) at BODY_SIZE
BODY_SIZE = 11.0
TABLE_SIZE = 10.0
TABLE_LINE = 5.0
TABLE_PADDING = (1.0, 1.5)  # vertical, horizontal (mm)
SIGNATURE_ROOM = 2 * LINE + 30  # "(Ký tên, đóng dấu)" and the space to sign and stamp
CODES_NOTE_ROOM = 12.0  # Mẫu 02's note under its table


@dataclass(frozen=True)
class Column:
    """One column of a form's table: its heading, its share of the width, its alignment."""

    heading: str
    share: float
    align: Align = Align.L


MAU_01_COLUMNS = (
    Column("STT", 0.08, Align.C),
    Column("Họ và tên", 0.32),
    Column("Chức vụ", 0.22),
    Column("Bộ phận công tác", 0.38),
)
MAU_02_COLUMNS = (
    Column("STT", 0.07, Align.C),
    Column("Họ và tên", 0.27),
    Column("Địa chỉ hộp thư đã được cấp", 0.24),
    Column("Mã", 0.08, Align.C),
    Column("Nội dung mới", 0.34),
)
MAU_03_COLUMNS = (
    Column("STT", 0.07, Align.C),
    Column("Họ và tên", 0.29),
    Column("Chức vụ", 0.17),
    Column("Bộ phận công tác", 0.26),
    Column("Địa chỉ hộp thư được cấp", 0.21),
)
RESET_COLUMNS = (
    Column("STT", 0.08, Align.C),
    Column("Họ và tên", 0.46),
    Column("Địa chỉ hộp thư", 0.46),
)


def render_request_pdf(
    request: MailboxRequest,
    *,
    place: str = "Khánh Hòa",
    addressee: str = "Sở Thông tin và Truyền thông",
    font_dir: Path | None = None,
) -> bytes:
    """Return the request as an A4 PDF laid out like the regulation's form for its kind.

    Mẫu 01/02/03 get the form's table (header row repeated on every page); a password
    reset and a delegation get a short letter under the same national header. The date
    line is the submission date in Vietnam time. ``font_dir`` holds DejaVu Sans regular
    and bold (Debian's fonts-dejavu-core); raises GovmailError when they are missing and
    InvalidInput for a form kind this module does not know.
    """
    body = _BODIES.get(request.form)
    if body is None:
        raise InvalidInput(
            f"Không có mẫu in cho loại yêu cầu “{request.form}”.",
            f"No printable form for request kind {request.form!r}.",
        )
    doc = _FormDocument(request.id, font_dir or DEFAULT_FONT_DIR)
    doc.add_page()
    _national_header(doc, request.agency_name, _date_line(place, request.submitted_at))
    _title(doc, _title_line(request))
    _r21_marks(doc, request)
    _requester(doc, request, addressee)
    body(doc, request)
    _signature(doc)
    return bytes(doc.output())


class _FormDocument(FPDF):
    """An A4 page with the administrative margins, DejaVu fonts and the request footer."""

    def __init__(self, request_id: int, font_dir: Path) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.request_id = request_id
        self.set_margins(MARGIN_LEFT, MARGIN_TOP, MARGIN_RIGHT)
        self.set_auto_page_break(True, margin=MARGIN_BOTTOM)
        self.set_title(f"Phiếu yêu cầu số {request_id}")
        self.set_creator("govmail")
        self.italic_style = _load_fonts(self, font_dir)
        self.set_font(FONT_FAMILY, "", BODY_SIZE)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT_FAMILY, "", 8)
        self.set_text_color(110)
        self.cell(
            0,
            4,
            f"Số yêu cầu: {self.request_id} · Trang {self.page_no()}/{{nb}}",
            align=Align.R,
        )
        self.set_text_color(0)


def _load_fonts(doc: FPDF, font_dir: Path) -> str:
    """Register DejaVu Sans; return the style to use for italics ("" without the file)."""
    regular, bold = font_dir / REGULAR_FONT, font_dir / BOLD_FONT
    missing = [path.name for path in (regular, bold) if not path.is_file()]
    if missing:
        raise GovmailError(
            f"Không tìm thấy phông chữ {', '.join(missing)} trong {font_dir}: cài gói "
            "fonts-dejavu-core (apt-get install fonts-dejavu-core) hoặc chỉ thư mục có "
            "phông DejaVu Sans để in phiếu yêu cầu có dấu tiếng Việt.",
            f"Font {', '.join(missing)} not found in {font_dir}: install the "
            "fonts-dejavu-core package or point to a directory with DejaVu Sans, needed "
            "to print Vietnamese request forms.",
            font_dir=str(font_dir),
            missing=missing,
        )
    doc.add_font(FONT_FAMILY, "", str(regular))
    doc.add_font(FONT_FAMILY, "B", str(bold))
    italic = font_dir / ITALIC_FONT
    if italic.is_file():
        doc.add_font(FONT_FAMILY, "I", str(italic))
        return "I"
    return ""


def _text(value: Any) -> str:
    """Stored text as the font can draw it: NFC, since DejaVu has the precomposed letters
    and fpdf2 does not position NFD's combining marks."""
    return unicodedata.normalize("NFC", str(value or "")).strip()


def _date_line(place: str, submitted_at: datetime) -> str:
    """The date line, "<place>, ngày 05 tháng 02 năm 2025", in Vietnam time: a zero
    before days 1–9 and months 1–2, as Nghị định 30/2020/NĐ-CP writes dates."""
    if submitted_at.tzinfo is None:  # the store keeps UTC
        submitted_at = submitted_at.replace(tzinfo=UTC)
    day = submitted_at.astimezone(VIETNAM_TIME).date()
    month = f"{day.month:02d}" if day.month < 3 else str(day.month)
    return f"{_text(place)}, ngày {day.day:02d} tháng {month} năm {day.year}"


def _short_date(value: date) -> str:
    return f"{value.day:02d}/{value.month:02d}/{value.year}"


def _rule(doc: FPDF, centre: float, width: float, y: float) -> None:
    doc.set_line_width(0.3)
    doc.line(centre - width / 2, y, centre + width / 2, y)


def _national_header(doc: _FormDocument, agency_name: str, date_line: str) -> None:
    """Agency name with a rule (left), the national motto with a rule (right), the date."""
    top = doc.get_y()
    left_w = doc.epw * HEADER_LEFT_SHARE
    right_w = doc.epw - left_w
    left_x, right_x = doc.l_margin, doc.l_margin + left_w

    doc.set_font(FONT_FAMILY, "B", 10)
    doc.set_xy(left_x, top)
    name = _text(agency_name).upper() or BLANK
    doc.multi_cell(left_w, 5, name, align=Align.C, new_x=XPos.LEFT, new_y=YPos.NEXT)
    left_bottom = doc.get_y() + 1
    _rule(doc, left_x + left_w / 2, left_w / 3, left_bottom)

    # The motto must stay on one line: shrink it rather than wrap it.
    motto = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
    size = 10.0
    doc.set_font(FONT_FAMILY, "B", size)
    while doc.get_string_width(motto) > right_w - 2 and size > 7:
        size -= 0.5
        doc.set_font(FONT_FAMILY, "B", size)
    doc.set_xy(right_x, top)
    doc.cell(right_w, 5, motto, align=Align.C, new_x=XPos.LEFT, new_y=YPos.NEXT)
    doc.set_font(FONT_FAMILY, "B", size + 0.5)
    slogan = "Độc lập - Tự do - Hạnh phúc"
    doc.cell(right_w, 5, slogan, align=Align.C, new_x=XPos.LEFT, new_y=YPos.NEXT)
    right_bottom = doc.get_y() + 1
    _rule(doc, right_x + right_w / 2, doc.get_string_width(slogan), right_bottom)

    doc.set_xy(right_x, max(left_bottom, right_bottom) + 4)
    doc.set_font(FONT_FAMILY, doc.italic_style, BODY_SIZE)
    doc.cell(right_w, LINE, date_line, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.ln(6)


def _title_line(request: MailboxRequest) -> str:
    if request.form == DELEGATION and request.payload.get("revoke"):
        return REVOKE_TITLE
    return TITLE_LINES[request.form]


def _title(doc: _FormDocument, second_line: str) -> None:
    doc.set_font(FONT_FAMILY, "B", 13)
    doc.multi_cell(0, 6.5, "PHIẾU YÊU CẦU", align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.multi_cell(0, 6.5, second_line, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.ln(2)


def _r21_marks(doc: _FormDocument, request: MailboxRequest) -> None:
    """R21: the date the personnel decision took effect, and whether it came too late."""
    parts = []
    if request.decision_date is not None:
        parts.append(f"Ngày quyết định có hiệu lực: {_short_date(request.decision_date)}")
    if request.late:
        parts.append(LATE_MARK)
    if not parts:
        return
    doc.set_font(FONT_FAMILY, "B" if request.late else "", 10)
    if request.late:
        doc.set_text_color(180, 0, 0)
    doc.multi_cell(0, 5, " — ".join(parts), align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.set_text_color(0)
    doc.ln(1)


def _requester(doc: _FormDocument, request: MailboxRequest, addressee: str) -> None:
    doc.ln(2)
    doc.set_font(FONT_FAMILY, "", 12)
    doc.multi_cell(
        0, LINE + 1, f"Kính gửi: {_text(addressee)}", align=Align.C,
        new_x=XPos.LMARGIN, new_y=YPos.NEXT,
    )  # fmt: skip
    doc.ln(3)
    who = request.payload.get("requester") or {}
    if not isinstance(who, dict):
        who = {"name": who}
    for label, value in (
        ("Họ và tên người yêu cầu", who.get("name")),
        ("Chức vụ", who.get("position")),
        ("Cơ quan công tác", request.agency_name),
        ("Điện thoại liên lạc", who.get("phone")),
    ):
        _field(doc, label, _text(value) or BLANK)


def _field(doc: _FormDocument, label: str, value: str) -> None:
    """One requester line, "Label: value", the value wrapping under itself."""
    doc.set_font(FONT_FAMILY, "", BODY_SIZE)
    label = f"{label}: "
    doc.cell(doc.get_string_width(label), LINE, label)
    doc.multi_cell(0, LINE, value, align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _paragraph(doc: _FormDocument, text: str, *, style: str = "", indent: float = 0) -> None:
    doc.set_font(FONT_FAMILY, style, BODY_SIZE)
    doc.set_x(doc.l_margin + indent)
    doc.multi_cell(0, LINE, text, align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


@dataclass(frozen=True)
class HeadingCell:
    """A heading cell of a table, spanning columns and heading rows (Mẫu 02's
    "Đề nghị thay đổi" spans Mã and Nội dung mới)."""

    text: str
    column: int
    columns: int = 1
    row: int = 0
    rows: int = 1


class _Grid:
    """A bordered table drawn line by line, its heading repeated on every page.

    fpdf2's own ``table()`` measures every character of every cell twice and took about
    1.8 s for 500 rows; here each glyph's width is measured once per font and the lines
    are placed with ``text()``, so 500 rows take a small fraction of that. A cell is a
    string (wrapped to its column) or a list of lines already wrapped.
    """

    def __init__(
        self,
        doc: _FormDocument,
        columns: Sequence[Column],
        heading: Sequence[HeadingCell] | None = None,
    ) -> None:
        self.doc = doc
        self.columns = columns
        total = sum(c.share for c in columns)
        self.widths = [doc.epw * c.share / total for c in columns]
        self.lefts = [doc.l_margin + sum(self.widths[:i]) for i in range(len(columns))]
        self.pad_v, self.pad_h = TABLE_PADDING
        self.glyphs: dict[tuple[str, str], float] = {}
        cells = heading or [HeadingCell(c.heading, i) for i, c in enumerate(columns)]
        self.heading = cells
        self.heading_rows = max(c.row + c.rows for c in cells)
        self.heading_heights = self._heading_heights()

    def text_width(self, column: int) -> float:
        return self.widths[column] - 2 * self.pad_h

    def _width(self, style: str, text: str) -> float:
        width = 0.0
        glyphs = self.glyphs
        for char in text:
            known = glyphs.get((style, char))
            if known is None:
                known = glyphs[(style, char)] = self.doc.get_string_width(char)
            width += known
        return width

    def wrap(self, text: str, width: float, style: str = "") -> list[str]:
        """``text`` in lines no wider than ``width`` (mm): greedy by words, a word
        longer than the line broken by characters. Needs the table font set."""
        self.doc.set_font(FONT_FAMILY, style, TABLE_SIZE)
        space = self._width(style, " ")
        lines: list[str] = []
        for paragraph in text.split("\n"):
            line, line_w = "", 0.0
            for word in paragraph.split():
                word_w = self._width(style, word)
                if line and line_w + space + word_w <= width:
                    line, line_w = f"{line} {word}", line_w + space + word_w
                    continue
                if line:
                    lines.append(line)
                while word_w > width and len(word) > 1:
                    cut, cut_w = 1, self._width(style, word[0])
                    while cut < len(word) and cut_w + self._width(style, word[cut]) <= width:
                        cut_w += self._width(style, word[cut])
                        cut += 1
                    lines.append(word[:cut])
                    word = word[cut:]
                    word_w = self._width(style, word)
                line, line_w = word, word_w
            lines.append(line)
        return lines

    def _heading_heights(self) -> list[float]:
        heights = [0.0] * self.heading_rows
        for cell in sorted(self.heading, key=lambda c: c.rows):
            width = sum(self.widths[cell.column : cell.column + cell.columns]) - 2 * self.pad_h
            needed = len(self.wrap(cell.text, width, "B")) * TABLE_LINE + 2 * self.pad_v
            last = cell.row + cell.rows - 1
            have = sum(heights[cell.row : last + 1])
            if needed > have:  # a spanning cell grows its last row
                heights[last] += needed - have
        return heights

    def _draw_cell(
        self, x: float, y: float, w: float, h: float, lines: Sequence[str], align: Align,
        style: str,
    ) -> None:  # fmt: skip
        doc = self.doc
        doc.rect(x, y, w, h)
        # Vertically centred; the baseline sits where fpdf2's cell() puts it.
        top = y + (h - len(lines) * TABLE_LINE) / 2
        baseline = 0.5 * TABLE_LINE + 0.3 * doc.font_size
        for number, line in enumerate(lines):
            if not line:
                continue
            left = x + self.pad_h
            if align == Align.C:
                left = x + (w - self._width(style, line)) / 2
            doc.text(left, top + number * TABLE_LINE + baseline, line)

    def draw_heading(self) -> None:
        doc = self.doc
        doc.set_font(FONT_FAMILY, "B", TABLE_SIZE)
        doc.set_line_width(0.2)
        top = doc.get_y()
        for cell in self.heading:
            x = self.lefts[cell.column]
            w = sum(self.widths[cell.column : cell.column + cell.columns])
            y = top + sum(self.heading_heights[: cell.row])
            h = sum(self.heading_heights[cell.row : cell.row + cell.rows])
            lines = self.wrap(cell.text, w - 2 * self.pad_h, "B")
            self._draw_cell(x, y, w, h, lines, Align.C, "B")
        doc.set_y(top + sum(self.heading_heights))

    def add_row(self, cells: Sequence[str | list[str]], keep_with: float = 0) -> None:
        """Draw one row, first turning the page (and repeating the heading) when the
        row, and ``keep_with`` mm of what follows it, do not fit what is left of this one.
        """
        doc = self.doc
        # A row never splits across pages; a cell longer than a whole page (only absurd
        # input does that) is cut with an ellipsis rather than run off the page.
        room = doc.page_break_trigger - doc.t_margin - sum(self.heading_heights)
        most = max(1, int((room - 2 * self.pad_v) // TABLE_LINE))
        wrapped = [
            cell if isinstance(cell, list) else self.wrap(cell, self.text_width(i))
            for i, cell in enumerate(cells)
        ]
        wrapped = [lines if len(lines) <= most else [*lines[: most - 1], "…"] for lines in wrapped]
        height = max(len(lines) for lines in wrapped) * TABLE_LINE + 2 * self.pad_v
        if doc.get_y() + height + keep_with > doc.page_break_trigger:
            doc.add_page()
            self.draw_heading()
        doc.set_font(FONT_FAMILY, "", TABLE_SIZE)
        top = doc.get_y()
        for i, lines in enumerate(wrapped):
            self._draw_cell(
                self.lefts[i], top, self.widths[i], height, lines, self.columns[i].align, ""
            )
        doc.set_y(top + height)

    def start(self) -> None:
        """Draw the heading, on a new page if it and one line would not fit here."""
        doc = self.doc
        one_row = sum(self.heading_heights) + TABLE_LINE + 2 * self.pad_v
        if doc.get_y() + one_row > doc.page_break_trigger:
            doc.add_page()
        self.draw_heading()


def _fill_rows(
    doc: _FormDocument,
    columns: Sequence[Column],
    rows: Sequence[RequestRow],
    cells: Callable[[RequestRow], Sequence[str]],
) -> None:
    grid = _Grid(doc, columns)
    grid.start()
    for number, person in enumerate(rows, start=1):
        # The last row goes with the signature: never a page with only "(Ký tên…)".
        keep_with = SIGNATURE_ROOM if number == len(rows) else 0
        grid.add_row((str(number), *cells(person)), keep_with)
    doc.ln(2)


def _name_cell(person: RequestRow, extra: str = "") -> str:
    name = _text(person.name)
    return f"{name}\n{extra}" if extra else name


def _form_01(doc: _FormDocument, request: MailboxRequest) -> None:
    _paragraph(doc, "Nội dung yêu cầu:", style="B")
    items = 0
    agency = request.payload.get("agency")
    if isinstance(agency, dict) and agency:
        items += 1
        abbr = _text(agency.get("abbr")) or BLANK
        _paragraph(
            doc,
            f"{items}. Đề nghị cấp mới hộp thư điện tử công vụ cơ quan với tên viết tắt là: {abbr}",
        )
        if _text(agency.get("name")):
            _paragraph(doc, f"Tên cơ quan: {_text(agency.get('name'))}", indent=5)
    if request.rows or not items:
        items += 1
        _paragraph(
            doc,
            f"{items}. Đề nghị cấp mới hộp thư điện tử công vụ cá nhân trong danh sách:",
        )
        _fill_rows(
            doc,
            MAU_01_COLUMNS,
            request.rows,
            lambda p: (
                _name_cell(p, f"(địa chỉ đề nghị: {_text(p.address)})" if p.address else ""),
                _text(p.position),
                _text(p.department),
            ),
        )


def _form_02(doc: _FormDocument, request: MailboxRequest) -> None:
    _paragraph(doc, "Nội dung yêu cầu:", style="B")
    items = 0
    rename = request.payload.get("rename")
    if isinstance(rename, dict):
        rename = rename.get("name")
    if _text(rename):
        items += 1
        _paragraph(
            doc,
            f"{items}. Đề nghị thay đổi thông tin của hộp thư điện tử công vụ cơ quan như sau:",
        )
        _paragraph(doc, f"Đổi tên cơ quan thành: {_text(rename)}", indent=5)
    if request.rows or not items:
        items += 1
        _paragraph(
            doc,
            f"{items}. Đề nghị thay đổi thông tin hộp thư điện tử công vụ cá nhân trong danh sách:",
        )
        _changes_table(doc, request.rows)
        doc.set_font(FONT_FAMILY, doc.italic_style, 9.5)
        doc.multi_cell(0, 5, CODES_NOTE, align=Align.J, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _changes_table(doc: _FormDocument, rows: Sequence[RequestRow]) -> None:
    """Mẫu 02's table: "Đề nghị thay đổi" spans the Mã and Nội dung mới columns."""
    heading = [
        *(HeadingCell(c.heading, i, rows=2) for i, c in enumerate(MAU_02_COLUMNS[:3])),
        HeadingCell("Đề nghị thay đổi", 3, columns=2),
        HeadingCell(MAU_02_COLUMNS[3].heading, 3, row=1),
        HeadingCell(MAU_02_COLUMNS[4].heading, 4, row=1),
    ]
    grid = _Grid(doc, MAU_02_COLUMNS, heading)
    grid.start()
    for number, person in enumerate(rows, start=1):
        codes, contents = _change_lines(grid, person)
        keep_with = SIGNATURE_ROOM + CODES_NOTE_ROOM if number == len(rows) else 0
        texts = (str(number), _text(person.name), _text(person.address), codes, contents)
        grid.add_row(texts, keep_with)
    doc.ln(1)


def _change_lines(grid: _Grid, person: RequestRow) -> tuple[list[str], list[str]]:
    """The Mã and Nội dung mới cells of one person, one change a line.

    A long new content wraps inside its cell; its code is followed by as many blank
    lines so that every code stays level with its own content.
    """
    codes: list[str] = []
    contents: list[str] = []
    for code, value in person.changes:
        content = _text(value)
        if not content:
            # An empty new address means "convert to the regulation's form" (R8).
            content = "(theo quy tắc đặt tên)" if code == CODE_ADDRESS else "—"
        lines = grid.wrap(content, grid.text_width(4))
        codes += [str(code), *[""] * (len(lines) - 1)]
        contents += lines
    return codes or [""], contents or [""]


def _form_03(doc: _FormDocument, request: MailboxRequest) -> None:
    _paragraph(doc, "Nội dung yêu cầu: Đề nghị xóa hộp thư điện tử công vụ cá nhân trong danh sách")
    _fill_rows(
        doc,
        MAU_03_COLUMNS,
        request.rows,
        lambda p: (
            _name_cell(p, f"(lý do: {_text(p.reason)})" if p.reason else ""),
            _text(p.position),
            _text(p.department),
            _text(p.address),
        ),
    )


def _reset(doc: _FormDocument, request: MailboxRequest) -> None:
    address = _text(request.payload.get("address"))
    if address:
        _paragraph(
            doc,
            f"Nội dung yêu cầu: Đề nghị cấp lại mật khẩu hộp thư điện tử công vụ {address}. "
            "Người dùng sẽ đổi mật khẩu ở lần đăng nhập đầu tiên.",
        )
    if request.rows or not address:
        _paragraph(
            doc,
            "Nội dung yêu cầu: Đề nghị cấp lại mật khẩu hộp thư điện tử công vụ trong danh sách:",
        )
        _fill_rows(doc, RESET_COLUMNS, request.rows, lambda p: (_text(p.name), _text(p.address)))


def _delegation(doc: _FormDocument, request: MailboxRequest) -> None:
    person = request.payload.get("person")
    if isinstance(person, dict):
        name, address = _text(person.get("name")), _text(person.get("address"))
        who = f"{name} ({address})" if name and address else name or address
    else:
        who = _text(person)
    who = who or BLANK
    mailbox = _text(request.agency) or _text(request.agency_name)
    if request.payload.get("revoke"):
        text = (
            f"Nội dung yêu cầu: Đề nghị thu hồi ủy quyền sử dụng hộp thư điện tử công vụ cơ "
            f"quan {mailbox} đã giao cho {who}."
        )
    else:
        text = (
            f"Nội dung yêu cầu: Ủy quyền cho {who} sử dụng hộp thư điện tử công vụ cơ quan "
            f"{mailbox}: kiểm tra thư, xác nhận đã nhận, chuyển thư để xử lý, lưu trữ thư "
            "gửi và nhận, xóa thư rác, giữ bí mật mật khẩu và báo cáo sự cố."
        )
    _paragraph(doc, text)


def _signature(doc: _FormDocument) -> None:
    """The signature place, "(Ký tên, đóng dấu)", bottom right with room to sign."""
    if doc.get_y() + SIGNATURE_ROOM > doc.page_break_trigger:
        doc.add_page()
    doc.ln(4)
    right_w = doc.epw * (1 - HEADER_LEFT_SHARE)
    doc.set_x(doc.l_margin + doc.epw - right_w)
    doc.set_font(FONT_FAMILY, doc.italic_style, BODY_SIZE)
    doc.cell(right_w, LINE, "(Ký tên, đóng dấu)", align=Align.C, new_x=XPos.LMARGIN,
             new_y=YPos.NEXT)  # fmt: skip


_BODIES: dict[str, Callable[[_FormDocument, MailboxRequest], None]] = {
    FORM_01: _form_01,
    FORM_02: _form_02,
    FORM_03: _form_03,
    RESET: _reset,
    DELEGATION: _delegation,
}
