"""A mailbox's webmail settings: signature, language and the vacation auto-reply, stored in
``mailbox_preferences`` (no row: the defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone

from sqlalchemy import Connection, select, update

from govmail.core.errors import GovmailError
from govmail.store.schema import mailbox_preferences

VIETNAM = timezone(timedelta(hours=7), "ICT")  # vacation dates are Vietnamese calendar days
MAX_SIGNATURE = 2_000  # characters
MAX_SUBJECT = 200
MAX_TEXT = 10_000
LANGUAGES = ("vi", "en")


class SettingsError(GovmailError):
    """A setting the form sent cannot be saved (too long, end before start…)."""

    code = "invalid_settings"


@dataclass(frozen=True)
class Vacation:
    """The auto-reply: active when ``enabled`` and today (in Vietnam) lies between
    ``start`` and ``end`` inclusive (either may be open)."""

    enabled: bool = False
    start: date | None = None
    end: date | None = None
    subject: str = ""  # empty: "Trả lời tự động: <original subject>"
    text: str = ""

    def active_on(self, day: date) -> bool:
        return (
            self.enabled
            and (self.start is None or self.start <= day)
            and (self.end is None or day <= self.end)
        )


@dataclass(frozen=True)
class Preferences:
    signature: str = ""
    language: str = "vi"
    vacation: Vacation = field(default_factory=Vacation)


def today_in_vietnam(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(VIETNAM).date()


def checked(prefs: Preferences) -> Preferences:
    """``prefs`` normalised (CRLF → LF, stripped ends), or SettingsError saying why not."""
    signature = prefs.signature.replace("\r\n", "\n").strip("\n")
    if len(signature) > MAX_SIGNATURE:
        raise SettingsError(
            f"Chữ ký dài quá {MAX_SIGNATURE:,} ký tự.".replace(",", "."),
            f"The signature is longer than {MAX_SIGNATURE:,} characters.",
        )
    if prefs.language not in LANGUAGES:
        raise SettingsError("Ngôn ngữ không hợp lệ.", "Unknown language.")
    vac = prefs.vacation
    subject = " ".join(vac.subject.split())  # one line: no header injection
    text = vac.text.replace("\r\n", "\n").strip()
    if len(subject) > MAX_SUBJECT or len(text) > MAX_TEXT:
        raise SettingsError(
            "Tiêu đề hoặc nội dung trả lời tự động quá dài.",
            "The auto-reply's subject or text is too long.",
        )
    if vac.start is not None and vac.end is not None and vac.end < vac.start:
        raise SettingsError(
            "Ngày kết thúc phải sau ngày bắt đầu.", "The end date must not be before the start."
        )
    if vac.enabled and not text:
        raise SettingsError(
            "Hãy nhập nội dung thư trả lời tự động.", "Write the auto-reply's text."
        )
    vacation = Vacation(vac.enabled, vac.start, vac.end, subject, text)
    return Preferences(signature, prefs.language, vacation)


def load_preferences(conn: Connection, mailbox_id: int) -> Preferences:
    row = conn.execute(
        select(mailbox_preferences).where(mailbox_preferences.c.mailbox_id == mailbox_id)
    ).first()
    if row is None:
        return Preferences()
    vacation = Vacation(
        row.vacation_enabled,
        row.vacation_start,
        row.vacation_end,
        row.vacation_subject,
        row.vacation_text,
    )
    return Preferences(row.signature, row.language, vacation)


def save_preferences(conn: Connection, mailbox_id: int, prefs: Preferences) -> Preferences:
    """Store ``prefs`` (checked first: SettingsError) for ``mailbox_id``; returns them as
    stored."""
    prefs = checked(prefs)
    values = {
        "signature": prefs.signature,
        "language": prefs.language,
        "vacation_enabled": prefs.vacation.enabled,
        "vacation_start": prefs.vacation.start,
        "vacation_end": prefs.vacation.end,
        "vacation_subject": prefs.vacation.subject,
        "vacation_text": prefs.vacation.text,
        "updated_at": datetime.now(UTC),
    }
    changed = conn.execute(
        update(mailbox_preferences)
        .where(mailbox_preferences.c.mailbox_id == mailbox_id)
        .values(**values)
    ).rowcount
    if not changed:
        conn.execute(mailbox_preferences.insert().values(mailbox_id=mailbox_id, **values))
    return prefs


def vacationing(conn: Connection, mailbox_ids: list[int]) -> dict[int, Vacation]:
    """The mailboxes among ``mailbox_ids`` whose auto-reply is switched on (dates not
    checked), with their settings."""
    c = mailbox_preferences.c
    rows = conn.execute(
        select(c.mailbox_id, c.vacation_start, c.vacation_end, c.vacation_subject, c.vacation_text)
        .where(c.mailbox_id.in_(mailbox_ids))
        .where(c.vacation_enabled.is_(True))
    )
    return {
        r.mailbox_id: Vacation(
            True, r.vacation_start, r.vacation_end, r.vacation_subject, r.vacation_text
        )
        for r in rows
    }


def with_signature(body: str, signature: str) -> str:
    """A compose body with the signature below the usenet separator "-- " (RFC 3676 §4.3),
    placed above a quoted original so replies read naturally."""
    if not signature:
        return body
    block = f"\n\n-- \n{signature}\n"
    return block + body if body else block
