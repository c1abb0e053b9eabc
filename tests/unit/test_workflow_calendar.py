"""The centre's SLA counts Vietnamese working days: weekends, national holidays with their
swapped days, and the province's own days off do not count."""

from __future__ import annotations

from datetime import UTC, date, datetime

from govmail.workflows.calendar import VIETNAM, WorkingCalendar, vietnam_date


def test_weekends_and_national_day_are_not_working_days() -> None:
    calendar = WorkingCalendar()
    assert calendar.is_working_day(date(2026, 11, 27))  # a Friday
    assert not calendar.is_working_day(date(2026, 11, 28))  # Saturday
    assert not calendar.is_working_day(date(2026, 11, 29))  # Sunday
    assert not calendar.is_working_day(date(2026, 9, 2))  # Quốc khánh


def test_due_date_skips_the_weekend() -> None:
    friday = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)  # 10:00 in Vietnam
    due = WorkingCalendar().add_working_days(friday, 3)
    assert due.tzinfo == VIETNAM
    assert due.date() == date(2026, 12, 2)  # Mon, Tue, Wed


def test_province_days_off_count_as_holidays() -> None:
    friday = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
    calendar = WorkingCalendar(["2026-11-30"])
    assert not calendar.is_working_day(date(2026, 11, 30))
    assert calendar.add_working_days(friday, 3).date() == date(2026, 12, 3)


def test_tet_holiday_pushes_the_due_date_past_it() -> None:
    # Tết Nguyên đán 2027 falls on 6 February; the days around it are off.
    before = datetime(2027, 2, 3, 2, 0, tzinfo=UTC)
    due = WorkingCalendar().add_working_days(before, 3)
    assert due.date() > date(2027, 2, 10)


def test_the_date_is_the_date_in_vietnam() -> None:
    late_evening_utc = datetime(2026, 11, 28, 18, 30, tzinfo=UTC)  # 01:30 on the 29th
    assert vietnam_date(late_evening_utc) == date(2026, 11, 29)
