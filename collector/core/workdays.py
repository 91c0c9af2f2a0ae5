"""Working days in the PRC (Art. 28: re-inspection within 15 working days of the rectification report).

Weekends, public holidays and the adjusted working days (调休) come from ``chinese-calendar``; a per-unit
override list covers local days and years the library does not carry yet. A year that neither covers is
counted by weekends only and *says so* (``warnings``): never a silent guess. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import chinese_calendar

CHINA = ZoneInfo("Asia/Shanghai")


@dataclass
class WorkdayCount:
    due: dt.date
    warnings: list[str] = field(default_factory=list)

    def end_of_due_day(self) -> dt.datetime:
        """The last instant of the due day, China time, as UTC."""
        local = dt.datetime.combine(self.due, dt.time(23, 59, 59), CHINA)
        return local.astimezone(dt.UTC)


@dataclass(frozen=True)
class WorkCalendar:
    overrides: Mapping[dt.date, bool] = field(default_factory=dict)  # day -> is a working day

    def _covered_by_overrides(self, year: int) -> bool:
        return any(d.year == year for d in self.overrides)

    def is_workday(self, day: dt.date, warnings: list[str]) -> bool:
        if day in self.overrides:
            return self.overrides[day]
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            if not self._covered_by_overrides(day.year):
                note = (f"no holiday data for {day.year} (chinese-calendar {_library_version()} does not carry it "
                        f"and no override list covers it): counted weekends only; add the official {day.year} "
                        "holidays to the unit's calendar overrides")
                if note not in warnings:
                    warnings.append(note)
            return day.weekday() < 5

    def add_working_days(self, start: dt.date, days: int) -> WorkdayCount:
        """The ``days``-th working day after ``start`` (the start day itself is not counted)."""
        warnings: list[str] = []
        day, counted = start, 0
        while counted < days:
            day += dt.timedelta(days=1)
            if self.is_workday(day, warnings):
                counted += 1
        return WorkdayCount(day, warnings)


def china_date(moment: dt.datetime) -> dt.date:
    return moment.astimezone(CHINA).date()


def _library_version() -> str:
    return str(getattr(chinese_calendar, "__version__", "?"))
