"""Outbound rate limits per sending account (R23): a stolen password must not turn the
province's server into a spam source. Recipients are counted per account over a sliding
window; the first time an account goes over, the postmaster is told by mail."""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import TYPE_CHECKING

from govmail.config import Config, RateLimits
from govmail.directory.accounts import Account
from govmail.mailstore.delivery import Delivery
from govmail.mailstore.recipients import is_local_domain

if TYPE_CHECKING:
    from govmail.mailstore.service import MailStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Overrun:
    """An account at its limit: the recipient asked for was refused."""

    limit: int
    count: int  # recipients counted in the window (the limit reached)
    external: bool  # the limit on recipients outside the province's domains
    window_s: float
    retry_after_s: float  # when the oldest counted recipient leaves the window
    first: bool  # the first overrun of this account in the window: alert the centre


class SendingLimits:
    """Per-account sliding windows of accepted recipients, in this process's memory.

    Each account keeps the times of its recipients in the window (at most the limit of
    them, since refused ones are not kept), so a check costs a few deque operations.
    Several nodes on PostgreSQL each count their own sessions: an account may send up to
    the limit through each node until the counters move to the database (a later issue).
    """

    def __init__(self, limits: RateLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._all: dict[int, deque[float]] = {}
        self._external: dict[int, deque[float]] = {}
        self._alerted: dict[int, float] = {}

    def count(self, mailbox_id: int, *, external: bool) -> Overrun | None:
        """Count one more recipient for ``mailbox_id``; None if it is within the limits
        (and now counted), else the overrun (nothing counted)."""
        now = self._clock()
        since = now - self.limits.window_s
        every = _recent(self._all, mailbox_id, since)
        outside = _recent(self._external, mailbox_id, since)
        over: tuple[deque[float], int, bool] | None = None
        if len(every) >= self.limits.max_recipients:
            over = (every, self.limits.max_recipients, False)
        elif external and len(outside) >= self.limits.max_external_recipients:
            over = (outside, self.limits.max_external_recipients, True)
        if over is None:
            every.append(now)
            if external:
                outside.append(now)
            return None
        times, limit, is_external = over
        alerted = self._alerted.get(mailbox_id)
        first = alerted is None or alerted <= since
        if first:
            self._alerted[mailbox_id] = now
        retry = times[0] + self.limits.window_s - now if times else self.limits.window_s
        return Overrun(limit, len(times), is_external, self.limits.window_s, max(retry, 1.0), first)


def _recent(windows: dict[int, deque[float]], key: int, since: float) -> deque[float]:
    times = windows.get(key)
    if times is None:
        times = windows[key] = deque()
    while times and times[0] <= since:
        times.popleft()
    return times


async def count_recipient(
    store: MailStore, account: Account, recipient: str, client_ip: str
) -> Overrun | None:
    """The use case behind each recipient an official sends to (SMTP RCPT on submission,
    the webmail's Send): count it, and alert the postmaster at the first overrun."""
    domain = recipient.rpartition("@")[2]
    over = store.rates.count(account.mailbox_id, external=not is_local_domain(store.cfg, domain))
    if over is not None and over.first:
        log.warning(
            "rate limit: %s reached %d %srecipients in %ss (client %s)",
            account.address,
            over.count,
            "external " if over.external else "",
            over.window_s,
            client_ip,
        )
        await alert_postmaster(store, account, over, client_ip)
    return over


async def alert_postmaster(
    store: MailStore, account: Account, over: Overrun, client_ip: str
) -> None:
    """Deliver the alert about ``account`` to the postmaster's INBOX (a warning in the
    log when no postmaster is configured). A failure to deliver it is logged, never
    passed to the sender's session."""
    cfg = store.cfg
    box = await store.find_recipient("postmaster") if cfg.postmaster else None
    if box is None or box.status != "active":
        log.warning(
            "rate limit alert for %s not delivered: [mail] postmaster is not set or has no"
            " active mailbox",
            account.address,
        )
        return
    raw = alert_message(cfg, account.address, over, client_ip, datetime.now().astimezone())
    try:
        stored = await store.store(b"Return-Path: <>\r\n" + raw)
        await store.commits.deliver(Delivery(message=stored, sender="", inbox=[box.mailbox_id]))
    except Exception:
        log.exception("rate limit alert for %s could not be stored", account.address)


def alert_message(cfg: Config, address: str, over: Overrun, client_ip: str, at: datetime) -> bytes:
    """The alert as a message to the postmaster: who, how much, from where, what to do."""
    window_vi, window_en = duration(over.window_s)
    which_vi, which_en = ("ngoài tỉnh", "outside the province") if over.external else ("", "")
    scope_vi = f"người nhận {which_vi}".strip()
    scope_en = f"recipients {which_en}".strip()
    text = (
        f"Tài khoản {address} đã gửi thư tới {over.count} {scope_vi} trong {window_vi},"
        f" chạm giới hạn {over.limit} (R23). Các người nhận tiếp theo bị từ chối tạm thời"
        f" (451 4.7.1) cho tới khi hết khoảng thời gian này.\n\n"
        f"Địa chỉ IP của máy gửi: {client_ip}\n"
        f"Thời điểm: {format_datetime(at)}\n\n"
        "Việc cần làm: liên hệ người dùng để xác nhận họ có gửi số thư này không. Nếu"
        " không, mật khẩu có thể đã bị lộ: đặt lại mật khẩu ngay bằng lệnh\n"
        f"    govmail mailbox reset-password {address}\n"
        "và kiểm tra hàng đợi thư đi (govmail queue list) để xóa thư rác còn chờ gửi.\n\n"
        "-----\n"
        f"The account {address} sent to {over.count} {scope_en} within {window_en},"
        f" reaching its limit of {over.limit} (R23). Further recipients are refused"
        " temporarily (451 4.7.1) until the window has passed.\n\n"
        f"Client IP address: {client_ip}\n"
        f"Time: {format_datetime(at)}\n\n"
        "What to do: ask the user whether they sent this mail. If not, the password may"
        " have been stolen: reset it now with\n"
        f"    govmail mailbox reset-password {address}\n"
        "and check the outbound queue (govmail queue list) for spam still waiting to leave.\n"
    )
    message = EmailMessage(policy=SMTP)
    message["From"] = f"Mail Delivery System <MAILER-DAEMON@{cfg.hostname}>"
    message["To"] = f"postmaster@{cfg.domain}"
    message["Subject"] = (
        f"Tài khoản {address} vượt giới hạn gửi thư / {address} reached its sending limit"
    )
    message["Date"] = format_datetime(at)
    message["Message-ID"] = f"<{uuid.uuid4().hex}@{cfg.hostname}>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text, charset="utf-8")
    return message.as_bytes()


def duration(seconds: float) -> tuple[str, str]:
    """A window or a wait in words, Vietnamese and English: "5 phút" / "5 minutes"."""
    whole = max(1, round(seconds))
    if whole % 3600 == 0:
        return f"{whole // 3600} giờ", _plural(whole // 3600, "hour")
    if whole >= 60:
        minutes = -(-whole // 60)  # rounded up: a wait is never shorter than said
        return f"{minutes} phút", _plural(minutes, "minute")
    return f"{whole} giây", _plural(whole, "second")


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"
