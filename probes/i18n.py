"""The message catalogue: every sentence a person reads, with an id and an English and a Simplified Chinese
template. It lives in the lowest layer so that probes (limitations), baselines (drift, waivers) and the agent
(tables, notes, CLI lines) all share it; each layer keeps its own messages in its ``messages`` module.

Adding a message::

    NOT_READABLE = message("probe.not-readable", "{path} not readable", "{path} 不可读")
    ctx.limited(NOT_READABLE(path=path))        # a Message: rendered later, in the reader's language
    NOT_READABLE(path=path).get("zh-CN")        # -> "/etc/shadow 不可读"

The Chinese template uses no placeholder the English one lacks (checked at import; the English line may add a
technical detail, such as an OS error, that the Chinese line replaces by a plain sentence) and an id is
defined once.
A parameter may itself be localised (a Message, a Text, a Duration, a LocalTime, a list of them): each
language then gets its own rendering, so a Chinese sentence never embeds an English word like "removed".
There is no fallback at run time: a zh-CN rendering uses the zh-CN template, and tests/test_zh.py fails on
English words in any of them.
"""

from __future__ import annotations

import datetime as dt
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

LANGS = ("en", "zh-CN")


@runtime_checkable
class Localized(Protocol):
    def get(self, lang: str) -> str: ...


def render(value: Any, lang: str) -> str:
    """One template parameter in ``lang``: localised values render themselves, sequences are joined with the
    language's list separator, anything else is data (a path, a host name) shown as it is."""
    if isinstance(value, Localized):
        return value.get(lang)
    if isinstance(value, (list, tuple)):
        return list_separator(lang).join(render(v, lang) for v in value)
    return str(value)


def list_separator(lang: str) -> str:
    return "、" if lang == "zh-CN" else ", "


@dataclass(frozen=True, slots=True)
class Template:
    id: str
    en: str
    zh: str

    def __call__(self, **params: Any) -> Message:
        return Message(self, params)

    def text(self, lang: str) -> str:
        return self.zh if lang == "zh-CN" else self.en

    @property
    def fields(self) -> frozenset[str]:
        return _fields(self.en)


@dataclass(frozen=True, slots=True)
class Message:
    """A template and its parameters, rendered in either language when it is shown."""

    template: Template
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.template.id

    def get(self, lang: str) -> str:
        # localised values and lists render per language; plain data keeps its type, so "{limit:.0f}" works
        values = {k: render(v, lang) if isinstance(v, (Localized, list, tuple)) else v for k, v in self.params.items()}
        return self.template.text(lang).format_map(values)

    @property
    def en(self) -> str:
        return self.get("en")

    @property
    def zh(self) -> str:
        return self.get("zh-CN")

    def __str__(self) -> str:  # logs, exceptions and machine output read English
        return self.en

    def __hash__(self) -> int:  # equal messages group together (e.g. refusals by reason)
        return hash((self.template.id, tuple(sorted((k, repr(v)) for k, v in self.params.items()))))


CATALOGUE: dict[str, Template] = {}


def message(msg_id: str, en: str, zh: str) -> Template:
    """Define one catalogue entry (at import time of a ``messages`` module)."""
    if msg_id in CATALOGUE:
        raise ValueError(f"message id {msg_id!r} defined twice")
    if not _fields(zh) <= _fields(en):  # the English line may carry a technical detail the Chinese one omits
        raise ValueError(f"message {msg_id!r}: zh-CN uses placeholders {sorted(_fields(zh) - _fields(en))} that "
                         "the English template does not have")
    template = Template(msg_id, en, zh)
    CATALOGUE[msg_id] = template
    return template


def _fields(template: str) -> frozenset[str]:
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)


# ------------------------------------------------------------------------------------------------ units


@dataclass(frozen=True, slots=True)
class Duration:
    """A length of time in readable units: 10 s / 10 秒, 1 h 30 min / 1 小时 30 分钟, 24 h / 24 小时, 350 ms /
    350 毫秒; days from two days on (3 d 4 h / 3 天 4 小时)."""

    seconds: float

    def get(self, lang: str) -> str:
        zh = lang == "zh-CN"
        s = self.seconds
        if 0 < abs(s) < 1:
            ms = max(1, round(s * 1000)) if s > 0 else min(-1, round(s * 1000))
            return f"{ms} 毫秒" if zh else f"{ms} ms"
        if abs(s) < 59.5:  # 59.6 s reads as 1 min
            number = f"{s:.0f}" if s == int(s) or abs(s) >= 10 else f"{s:.2f}".rstrip("0").rstrip(".")
            return f"{number} 秒" if zh else f"{number} s"
        total = round(s)
        sign, total = ("-" if total < 0 else ""), abs(total)
        days, rest = divmod(total, 86400) if total >= 2 * 86400 else (0, total)
        hours, rest = divmod(rest, 3600)
        minutes, secs = divmod(rest, 60)
        units = ("天", "小时", "分钟", "秒") if zh else ("d", "h", "min", "s")
        parts = [f"{n} {u}" for n, u in zip((days, hours, minutes, secs), units, strict=True) if n]
        return sign + " ".join(parts)

    @classmethod
    def of(cls, delta: dt.timedelta) -> Duration:
        return cls(delta.total_seconds())


_ZONE_NAMES_ZH = {dt.timedelta(hours=8): "北京时间"}


@dataclass(frozen=True, slots=True)
class LocalTime:
    """A moment in the host's time zone with its offset ("2026-12-02 04:25:14 UTC+08:00", "北京时间 2026-12-02
    04:25:14", "UTC+09:00 2026-12-02 05:25:14").
    Machine output keeps UTC (ISO 8601); this is for people."""

    value: dt.datetime
    zone: dt.tzinfo | None = None  # None: the host's local time zone

    def get(self, lang: str) -> str:
        stamp, zone = self.stamp(), self.zone_name(lang)
        return f"{zone} {stamp}" if lang == "zh-CN" else f"{stamp} {zone}"

    def _local(self) -> dt.datetime:
        value = self.value if self.value.tzinfo else self.value.replace(tzinfo=dt.UTC)
        return value.astimezone(self.zone) if self.zone else value.astimezone()

    def stamp(self) -> str:
        """The local date and time without the zone (for a table column whose header names the zone)."""
        return self._local().strftime("%Y-%m-%d %H:%M:%S")

    def zone_name(self, lang: str) -> str:
        """北京时间 for +08:00 in Chinese, else the offset (UTC+09:00)."""
        offset = self._local().utcoffset() or dt.timedelta(0)
        minutes = int(offset.total_seconds() // 60)
        sign = "+" if minutes >= 0 else "-"
        utc = f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        return (_ZONE_NAMES_ZH.get(offset) or utc) if lang == "zh-CN" else utc

    @classmethod
    def from_iso(cls, text: str) -> LocalTime | str:
        """An ISO 8601 time read from a file (no zone: UTC); kept as written when it does not parse."""
        try:
            return cls(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            return text


@dataclass(frozen=True, slots=True)
class Joined:
    """Several localised parts shown as one list ("a, b" / "a、b") or with a given separator per language."""

    parts: Sequence[Any]
    en_sep: str = ", "
    zh_sep: str = "、"

    def get(self, lang: str) -> str:
        sep = self.zh_sep if lang == "zh-CN" else self.en_sep
        return sep.join(render(p, lang) for p in self.parts)
