"""Problems of a TOML config file, each as ``file:line: key: reason`` in English and Chinese: the error type, the
line finder (tomllib gives no positions, so ``key_lines`` finds each table header and key in the text) and the
wording of a pydantic validation error. Shared by config.toml (agent.config) and agent.toml
(agent.daemon.config); kept apart from agent.config's models so that the daemon does not build them."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from agent import messages as msg
from agent.errors import UserError
from baselines.model import Text
from probes.i18n import Joined, Message

if TYPE_CHECKING:
    from pydantic import ValidationError


class ConfigError(UserError):
    """Every problem of a config file, one ``file:line: reason`` per line (``problems``: the English lines)."""

    def __init__(self, problems: Sequence[Message]) -> None:
        super().__init__(Joined(list(problems), "\n", "\n"))
        self.problems = [p.get("en") for p in problems]


# What a validation error type means, for the Chinese line (pydantic words its messages in English only).
_ZH_PROBLEM = {
    "missing": "缺少该项", "literal_error": "取值不在允许的选项中", "enum": "取值不在允许的选项中",
    "string_type": "应为字符串", "int_type": "应为整数", "int_parsing": "应为整数", "int_from_float": "应为整数",
    "float_type": "应为数字", "float_parsing": "应为数字", "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false", "list_type": "应为列表", "dict_type": "应为表", "model_type": "应为表",
    "greater_than": "应大于 {gt}", "greater_than_equal": "应不小于 {ge}", "less_than": "应小于 {lt}",
    "less_than_equal": "应不大于 {le}", "string_too_short": "内容过短", "string_too_long": "内容过长",
    "too_short": "项数过少", "too_long": "项数过多",
}


def problem_line(file: Path | str, line: int, key: str, en: str, zh: str) -> Message:
    return msg.CONFIG_PROBLEM(file=file, line=line, key=key, problem=Text(en, zh))


def not_toml(file: Path | str, exc: tomllib.TOMLDecodeError) -> ConfigError:
    where = re.search(r"\(at line (\d+), column \d+\)", str(exc))
    return ConfigError([msg.CONFIG_NOT_TOML(file=file, line=where.group(1) if where else "1",
                                            error=str(exc).split(" (at line")[0])])


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'. ]+?)\s*=")


_KEY_PART = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([A-Za-z0-9_-]+))\s*(?:\.|$)')


def _split_key(text: str) -> tuple[str, ...]:
    """A dotted TOML key into its parts; quoted parts may hold dots."""
    parts, pos = [], 0
    while pos < len(text):
        m = _KEY_PART.match(text, pos)
        if not m or m.end() == pos:
            return (text.strip(),)
        parts.append(next(g for g in m.groups() if g is not None))
        pos = m.end()
    return tuple(parts)


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """1-based line of every table header and ``key =`` line, by its full dotted path. Lines inside multi-line
    strings and arrays are not keys; values spanning lines keep the line where their key is."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    in_string: str | None = None
    depth = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if in_string:
            if in_string in line:
                in_string = None
            continue
        if depth == 0:
            header = _HEADER.match(line)
            if header:
                table = _split_key(header.group(1))
                lines.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if key:
                path = table + _split_key(key.group(1))
                lines.setdefault(path, number)
                for i in range(len(table) + 1, len(path)):
                    lines.setdefault(path[:i], number)
                value = line[key.end():]
                for quote in ('"""', "'''"):
                    if value.count(quote) == 1:
                        in_string = quote
        depth += line.count("[") - line.count("]") if not _HEADER.match(line) else 0
        depth = max(depth, 0)
    return lines


def _line_of(loc: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> int:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def validation_problems(file: Path, exc: ValidationError, lines: dict[tuple[str, ...], int],
              prefix: tuple[str, ...] = ()) -> list[tuple[int, str, str, str]]:
    """(line, key, problem in English, problem in Chinese) for every error."""
    out = []
    for e in exc.errors():
        loc = prefix + tuple(str(p) for p in e["loc"] if not isinstance(p, int))
        name = ".".join(loc) or "(top level)"
        message = e["msg"].removeprefix("Value error, ")
        zh = _ZH_PROBLEM.get(e["type"], "取值无效").format_map(e.get("ctx") or {})
        if e["type"] == "extra_forbidden":
            table = loc in lines and _is_table(loc, lines)
            message = f"unknown {'table' if table else 'key'}"
            zh = "未知的配置表" if table else "未知的配置项"
        out.append((_line_of(loc, lines), name, message, zh))
    return out


def _is_table(loc: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> bool:
    return any(len(k) > len(loc) and k[:len(loc)] == loc for k in lines)
