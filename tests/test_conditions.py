from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from baselines.conditions import ConditionError, compile_condition
from probes.observation import Observation


def obs(subject: str = "s", **attrs: object) -> Observation:
    return Observation("p", subject, attrs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cond", "attrs", "expected"),
    [
        ({"uid": 0}, {"uid": 0}, True),
        ({"uid": 0}, {"uid": 1}, False),
        ({"uid": 0}, {}, False),
        ({"port": [21, 23]}, {"port": 23}, True),
        ({"port": [21, 23]}, {"port": 22}, False),
        ({"name": {"ne": "root"}, "uid": 0}, {"name": "toor", "uid": 0}, True),
        ({"name": {"ne": "root"}, "uid": 0}, {"name": "root", "uid": 0}, False),
        ({"bits": {"lt": 2048}}, {"bits": 1024}, True),
        ({"bits": {"lt": 2048}}, {"bits": "1024"}, False),
        ({"bits": {"ge": 2048}}, {"bits": True}, False),
        ({"exe": {"regex": "^/(tmp|dev/shm)/"}}, {"exe": "/tmp/x"}, True),
        ({"exe": {"not_regex": "^/tmp/"}}, {"exe": "/usr/bin/x"}, True),
        ({"opts": {"contains": "noexec"}}, {"opts": ("rw", "noexec")}, True),
        ({"opts": {"contains": "noexec"}}, {"opts": ("rw",)}, False),
        ({"cmd": {"contains": "curl"}}, {"cmd": "curl x | sh"}, True),
        ({"opts": {"regex": "^no"}}, {"opts": ("rw", "nosuid")}, True),
        ({"exe": {"startswith": ["/tmp/", "/var/tmp/"]}}, {"exe": "/var/tmp/a"}, True),
        ({"exe": {"endswith": "sh"}}, {"exe": "/bin/bash"}, True),
        ({"x": {"exists": False}}, {}, True),
        ({"x": {"exists": False}}, {"x": 1}, False),
        ({"x": {"exists": True}}, {"x": None}, True),
        ({"any": [{"a": 1}, {"b": 2}]}, {"b": 2}, True),
        ({"all": [{"a": 1}, {"b": 2}]}, {"a": 1, "b": 3}, False),
        ({"not": {"a": 1}}, {"a": 2}, True),
        ({"subject": {"startswith": "net."}}, {}, False),
        ({"v": {"in": ["a", "b"]}}, {"v": "a"}, True),
        ({"v": {"not_in": ["a", "b"]}}, {"v": "c"}, True),
    ],
)
def test_condition_semantics(cond, attrs, expected):
    assert compile_condition(cond)(obs(**attrs)) is expected


def test_subject_pseudo_attribute():
    assert compile_condition({"subject": "net.ipv4.ip_forward"})(obs("net.ipv4.ip_forward"))


@pytest.mark.parametrize(
    ("cond", "message"),
    [
        ({}, "non-empty mapping"),
        ({"a": {"bogus": 1}}, "unknown operator"),
        ({"a": {"regex": "("}}, "bad regular expression"),
        ({"a": {"lt": "x"}}, "takes a number"),
        ({"any": []}, "non-empty list"),
        ({"a": {"in": 3}}, "takes a list"),
    ],
)
def test_bad_conditions_are_rejected(cond, message):
    with pytest.raises(ConditionError, match=message):
        compile_condition(cond)


@given(st.integers(), st.integers())
def test_not_is_the_negation(a, b):
    cond = {"a": {"lt": b}}
    o = obs(a=a)
    assert compile_condition({"not": cond})(o) is (not compile_condition(cond)(o))
