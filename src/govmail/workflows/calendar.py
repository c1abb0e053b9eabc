"""Working days in Vietnam (the centre's SLA on requests): weekends, the national holidays
with their swapped days (the ``holidays`` package) and the province's own days off."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")


class WorkingCalendar:
    """Which days count as working days; ``extra`` adds the province's own days off."""

    def __init__(self, extra: Iterable[str | date] = ()) -> None:
        self.extra = frozenset(d if isinstance(d, date) else date.fromisoformat(d) for d in extra)

    @functools.cached_property
    def _national(self) -> holidays.HolidayBase:
        return holidays.country_holidays("VN")

    def is_working_day(self, day: date) -> bool:
        if day in self.extra:
            return False
        return bool(self._national.is_working_day(day))

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The end of the ``days``-th working day after ``start`` (Vietnam time)."""
        day = start.astimezone(VIETNAM).date()
        left = days
        while left > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                left -= 1
        return datetime.combine(day, time(23, 59, 59), VIETNAM)


def vietnam_date(moment: datetime) -> date:
    return moment.astimezone(VIETNAM).date()
