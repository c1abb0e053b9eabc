"""The PDF of a request, laid out like the regulation's Mẫu 01–03; the layout itself is
in ``form_layout``, imported on first use (fpdf2 costs ~0.3 s at every server start)."""

from __future__ import annotations

from pathlib import Path

from govmail.workflows.model import MailboxRequest

DEFAULT_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


def render_request_pdf(
    request: MailboxRequest,
    *,
    place: str = "Khánh Hòa",
    addressee: str = "Sở Thông tin và Truyền thông",
    font_dir: Path | None = None,
) -> bytes:
    """The request as an A4 PDF (see ``form_layout.render_request_pdf``). CPU-bound:
    call it from a worker thread."""
    from govmail.workflows.form_layout import render_request_pdf as render

    return render(request, place=place, addressee=addressee, font_dir=font_dir)
