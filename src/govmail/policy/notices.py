"""The mail the sending policy writes: the sender's notice (why a message was refused or
what was changed in it) and the alert to the centre and the agency about a classified one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from govmail.config import Config
from govmail.policy.engine import Finding

_RULE_NAMES = {
    "size": "Dung lượng tệp đính kèm (tối đa 10 MB, Điều 9)",
    "formats": "Định dạng tệp đính kèm (Điều 6)",
    "classified": "Tài liệu mật (Điều 8)",
    "unicode": "Bảng mã tiếng Việt Unicode (Điều 7)",
    "subject": "Tiêu đề thư (Điều 7)",
    "signatures": "Chữ ký số (Điều 8)",
}


def sender_notice(
    cfg: Config,
    to: str,
    findings: Sequence[Finding],
    *,
    subject: str,
    refused: bool,
    held: bool = False,
    at: datetime,
) -> bytes:
    """The notice to an official about their message ``subject``: refused (``refused``),
    held for the centre (``held``), or delivered with these warnings."""
    if held:
        title = "Thư của bạn đã bị giữ lại"
        lead_vi = "Thư dưới đây KHÔNG được gửi đi: hệ thống đã giữ lại để Trung tâm CNTT xem xét."
        lead_en = "The message below was NOT sent: it is held for the IT centre to review."
    elif refused:
        title = "Thư của bạn chưa được gửi"
        lead_vi = "Thư dưới đây KHÔNG được gửi đi vì chưa đúng quy định về thư điện tử công vụ."
        lead_en = "The message below was NOT sent: it does not meet the official mail rules."
    else:
        title = "Lưu ý về thư bạn vừa gửi"
        lead_vi = "Thư dưới đây đã được gửi đi, nhưng có điểm chưa đúng quy định cần lưu ý."
        lead_en = "The message below was sent, but something in it does not meet the rules."
    lines = [lead_vi, "", f"Tiêu đề: {subject or '(không có tiêu đề)'}", ""]
    for finding in findings:
        lines += [f"* {_RULE_NAMES.get(finding.rule, finding.rule)}", f"  {finding.explain_vi}", ""]
    lines += [
        "Quy định: Quyết định 1480/QĐ-UBND về quản lý, sử dụng hệ thống thư điện tử công vụ.",
        "Cần hỗ trợ, hãy liên hệ cán bộ chuyên trách CNTT của cơ quan hoặc Trung tâm CNTT.",
        "",
        "-- ",
        lead_en,
        f"Subject: {subject or '(no subject)'}",
        "",
    ]
    lines += [f"* {finding.explain_en}" for finding in findings]
    return _message(cfg, to, f"[Thư điện tử công vụ] {title}: {subject}"[:200], lines, at)


def quarantine_alert(
    cfg: Config,
    to: Sequence[str],
    finding: Finding,
    *,
    quarantine_id: int | None,
    sender: str,
    recipients: Sequence[str],
    subject: str,
    message_id: str | None,
    client_ip: str,
    at: datetime,
) -> bytes:
    """The alert to the centre (and the sender's agency) about a message carrying a
    classification mark: who, to whom, which mark, and what to do."""
    held = quarantine_id is not None
    level, line = finding.details.get("level", ""), finding.details.get("line", "")
    lines = [
        "Hệ thống phát hiện một thư có dấu độ mật (Điều 8, Quyết định 1480/QĐ-UBND).",
        "",
        f"Người gửi: {sender}",
        f"Người nhận: {', '.join(recipients[:20])}{' …' if len(recipients) > 20 else ''}",
        f"Tiêu đề: {subject}",
        f"Message-ID: {message_id or '(không có)'}",
        f"Địa chỉ máy gửi: {client_ip or '(không rõ)'}",
        f'Dấu độ mật: {level} (dòng: "{line}")',
        "",
    ]
    if held:
        lines += [
            f"Thư đã bị giữ lại (số {quarantine_id}), chưa gửi đến ai. Sau khi xem xét:",
            f"  govmail policy release {quarantine_id}   (gửi đi nếu không phải tài liệu mật)",
            f"  govmail policy delete {quarantine_id}    (xóa thư)",
        ]
    else:
        lines += ["Thư đã được chuyển đến người nhận kèm nhãn cảnh báo (thư từ Internet)."]
    lines += [
        "",
        "-- ",
        "A message carrying a classification mark was "
        + (f"held (quarantine id {quarantine_id})." if held else "delivered with a warning label."),
    ]
    return _message(
        cfg, ", ".join(to), f"[Cảnh báo] Thư có dấu độ mật từ {sender}"[:200], lines, at
    )


def _message(cfg: Config, to: str, subject: str, lines: list[str], at: datetime) -> bytes:
    message = EmailMessage()
    message["From"] = f"Hệ thống thư điện tử công vụ <postmaster@{cfg.domain}>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(at)
    message["Message-ID"] = make_msgid(domain=cfg.hostname)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-reply to this
    message.set_content("\n".join(lines), charset="utf-8", cte="quoted-printable")
    return message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
