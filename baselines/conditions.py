"""A small declarative condition language over observation attributes (pure, compiled once at load).

    {uid: 0, name: {ne: root}}          all keys must hold; a plain value means equality, a list means "in"
    {any: [c1, c2]} {all: [...]} {not: c}
    operators: eq ne in not_in lt le gt ge regex not_regex contains startswith endswith exists
``subject`` is available as a pseudo-attribute. A tuple attribute matches regex/startswith/endswith when any
element does; ``contains`` tests membership in a tuple or a substring in a string.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from probes.observation import Observation

Predicate = Callable[[Observation], bool]


class ConditionError(ValueError):
    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


_MISSING = object()
MAX_DEPTH = 16  # all/any/not nesting; a deeper condition is refused, not compiled (nor recursed into)


def _value(obs: Observation, attr: str) -> Any:
    if attr == "subject":
        return obs.subject
    return obs.attrs.get(attr, _MISSING)


def _as_items(value: Any) -> tuple[Any, ...]:
    return value if isinstance(value, tuple) else (value,)


def _cmp(op: str, expected: Any, path: tuple[str | int, ...]) -> Callable[[Any], bool]:
    if op == "eq":
        return lambda v: v == expected
    if op == "ne":
        return lambda v: v != expected
    if op in ("in", "not_in"):
        if not isinstance(expected, list):
            raise ConditionError(path, f"'{op}' takes a list")
        allowed = tuple(expected)
        return (lambda v: v in allowed) if op == "in" else (lambda v: v not in allowed)
    if op in ("lt", "le", "gt", "ge"):
        if not isinstance(expected, int | float) or isinstance(expected, bool):
            raise ConditionError(path, f"'{op}' takes a number")

        def num(v: Any) -> bool:
            if not isinstance(v, int | float) or isinstance(v, bool):
                return False
            return {"lt": v < expected, "le": v <= expected, "gt": v > expected, "ge": v >= expected}[op]

        return num
    if op in ("regex", "not_regex"):
        try:
            pattern = re.compile(str(expected))
        except re.error as exc:
            raise ConditionError(path, f"bad regular expression: {exc}") from None

        def rx(v: Any) -> bool:
            return any(isinstance(i, str) and pattern.search(i) for i in _as_items(v))

        return rx if op == "regex" else (lambda v: not rx(v))
    if op in ("startswith", "endswith"):
        needles = tuple(expected) if isinstance(expected, list) else (str(expected),)
        method = str.startswith if op == "startswith" else str.endswith
        return lambda v: any(isinstance(i, str) and method(i, needles) for i in _as_items(v))
    if op == "contains":
        return lambda v: (expected in v) if isinstance(v, tuple | str) and (
            isinstance(v, tuple) or isinstance(expected, str)) else False
    raise ConditionError(path, f"unknown operator '{op}'")


def compile_condition(spec: Any, path: tuple[str | int, ...] = (), depth: int = 0) -> Predicate:
    if depth > MAX_DEPTH:
        raise ConditionError(path, f"condition nested more than {MAX_DEPTH} levels deep (all/any/not)")
    if not isinstance(spec, Mapping) or not spec:
        raise ConditionError(path, "a condition is a non-empty mapping")
    parts: list[Predicate] = []
    for key, value in spec.items():
        here = (*path, key)
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                raise ConditionError(here, f"'{key}' takes a non-empty list of conditions")
            subs = [compile_condition(v, (*here, i), depth + 1) for i, v in enumerate(value)]
            parts.append((lambda s: lambda o: all(p(o) for p in s))(subs) if key == "all"
                         else (lambda s: lambda o: any(p(o) for p in s))(subs))
        elif key == "not":
            parts.append(_negate(compile_condition(value, here, depth + 1)))
        else:
            parts.append(_attr_test(str(key), value, here))
    return parts[0] if len(parts) == 1 else (lambda o: all(p(o) for p in parts))


def _negate(pred: Predicate) -> Predicate:
    return lambda o: not pred(o)


def _attr_test(attr: str, value: Any, path: tuple[str | int, ...]) -> Predicate:
    if isinstance(value, Mapping):
        tests: list[Callable[[Any], bool]] = []
        exists_wanted: bool | None = None
        for op, expected in value.items():
            if op == "exists":
                exists_wanted = bool(expected)
                continue
            tests.append(_cmp(str(op), expected, (*path, op)))
        if not tests and exists_wanted is None:
            raise ConditionError(path, "empty operator mapping")

        def check(o: Observation) -> bool:
            v = _value(o, attr)
            if v is _MISSING:
                return exists_wanted is False
            if exists_wanted is False:
                return False
            return all(t(v) for t in tests)

        return check
    test = _cmp("in", value, path) if isinstance(value, list) else _cmp("eq", value, path)

    def plain(o: Observation) -> bool:
        v = _value(o, attr)
        return v is not _MISSING and test(v)

    return plain
