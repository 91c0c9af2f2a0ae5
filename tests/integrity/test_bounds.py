"""Bounds on what outside documents and options may hold: no overflow, no runaway profile, no world-wide
"own network"."""

from __future__ import annotations

import datetime as dt
import sys
import time

import pytest

from agent.config import AgentConfig, check_own_network
from agent.notice import Notice, NoticeError, parse_duration, parse_time
from baselines.conditions import ConditionError, compile_condition
from baselines.profile import ProfileError, parse_profile
from probes.errors import ProbeInputError
from probes.network.ports import PortSet


def _alias_bomb(levels: int = 9) -> str:
    text = "profile: {id: bomb, title: {en: b, zh-CN: b}}\nx0: &a0 [" + ", ".join(["{any: [{name: y}]}"] * 9) + "]\n"
    for i in range(1, levels + 1):
        text += f"x{i}: &a{i} [" + ", ".join([f"{{any: *a{i - 1}}}"] * 9) + "]\n"
    return text + "rules: []\n"


def test_profile_of_nested_aliases_is_refused_quickly() -> None:
    text = _alias_bomb()
    assert len(text) < 1500
    start = time.process_time()
    with pytest.raises(ProfileError, match=r"<profile>:\d+: profile refused: it expands to more than"):
        parse_profile(text)
    assert time.process_time() - start < 5  # not a timing goal: the unbounded version ran for minutes


def test_deeply_nested_not_is_refused_without_recursion_error() -> None:
    deep = "profile: {id: d, title: {en: b, zh-CN: b}}\nrules:\n- forbid: " + "{not: " * 990 + "{a: 1}" + "}" * 990
    with pytest.raises(ProfileError, match=r"nested more than \d+ levels deep") as err:
        parse_profile(deep)
    assert err.value.zh and "嵌套" in err.value.zh


def test_condition_depth_is_bounded_for_any_caller() -> None:
    spec: dict[str, object] = {"a": 1}
    for _ in range(40):
        spec = {"not": spec}
    with pytest.raises(ConditionError, match="nested more than"):
        compile_condition(spec)
    assert sys.getrecursionlimit() >= 1000


def test_default_profile_is_within_the_bounds() -> None:
    from baselines.profile import load_profile

    assert load_profile().rules


@pytest.mark.parametrize("text", ["-1", "-100", "0", "65536", "1--2", "22,-5"])
def test_bad_port_lists_are_refused(text: str) -> None:
    with pytest.raises(ProbeInputError):
        PortSet.parse(text)


def test_port_ranges_still_work() -> None:
    assert str(PortSet.parse("22,80,1000-2000,65000-")) == "22,80,1000-2000,65000-65535"


@pytest.mark.parametrize("text", ["99999999999d", "1e400", "9" * 40, "36600d"])
def test_huge_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_huge_relative_time_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_time("+99999999999d")
    with pytest.raises(ValueError):
        parse_time("+3650000d")


def _notice_json(**changes: object) -> dict[str, object]:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    base: dict[str, object] = {
        "schema": "precaution.notice/v1", "id": "N-1", "issuer": "Bureau", "subject_unit": "Unit A",
        "contact": "", "targets": ["127.0.0.1"], "kinds": ["host"],
        "window": {"start": (now + dt.timedelta(days=2)).isoformat(), "end": (now + dt.timedelta(days=3)).isoformat()},
        "rate_limits": {}, "lead_time_s": 86400, "issued_at": now.isoformat(), "basis": "x"}
    base.update(changes)
    return base


@pytest.mark.parametrize("change", [
    {"lead_time_s": 10**20}, {"lead_time_s": -1}, {"lead_time_s": "86400"}, {"lead_time_s": 1.5},
    {"targets": "127.0.0.1"}, {"kinds": "host"}, {"rate_limits": {"packets_per_second": 10**30}},
    {"window": {"start": "9999-12-31T23:59:59+00:00", "end": "+99999999999d"}},
])
def test_malformed_notice_fields_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(NoticeError) as err:
        Notice.from_json(_notice_json(**change))
    assert err.value.code == "malformed"


def test_a_string_of_targets_is_not_read_one_character_each() -> None:
    with pytest.raises(NoticeError, match="targets: Input should be a valid list"):
        Notice.from_json(_notice_json(targets="127.0.0.1"))


@pytest.mark.parametrize("net", ["0.0.0.0/0", "::/0", "0.0.0.0/1", "128.0.0.0/1", "8.0.0.0/8", "2000::/3",
                                 "garbage", "10.0.0.0/33", "224.0.0.0/4", "240.0.0.0/4", "", "10.0.0.0/8 extra"])
def test_own_networks_that_widen_to_the_world_are_refused(net: str) -> None:
    with pytest.raises(ValueError):
        check_own_network(net)
    with pytest.raises(Exception, match="own_networks"):
        AgentConfig.model_validate({"netscan": {"own_networks": [net]}})


@pytest.mark.parametrize("net", ["10.0.0.0/8", "10.20.0.0/16", "192.168.1.0/24", "172.16.5.0/24", "fd00:1::/64",
                                 "203.0.113.0/24", "198.51.100.7", "2001:db8:1::/48", "100.64.0.0/10"])
def test_specific_private_or_declared_networks_are_accepted(net: str) -> None:
    check_own_network(net)
    assert AgentConfig.model_validate({"netscan": {"own_networks": [net]}}).netscan.own_networks == [net]


def test_host_key_messages_say_what_to_do_once() -> None:
    from agent.services.remote import host_key_message
    from probes.remote.ssh_transport import HostKeyRejected

    unknown_msg = host_key_message(HostKeyRejected("10.231.1.12", "unknown", "SHA256:abc"))
    unknown = unknown_msg.get("en")
    assert unknown.startswith("host key unknown for 10.231.1.12 (SHA256:abc)")
    assert "--accept-new-host-key" in unknown and unknown.count("host key") == 1
    unknown_zh = unknown_msg.get("zh-CN")
    assert "10.231.1.12" in unknown_zh and "SHA256:abc" in unknown_zh and unknown_zh.count("--accept-new-host-key") == 1
    changed_msg = host_key_message(HostKeyRejected("h", "changed", "SHA256:new", "SHA256:old"))
    changed = changed_msg.get("en")
    assert "host key changed" in changed and "SHA256:old" in changed and "--accept-new-host-key" not in changed
    changed_zh = changed_msg.get("zh-CN")
    assert "SHA256:old" in changed_zh and "--accept-new-host-key" not in changed_zh


@pytest.mark.parametrize("command", ["remote", "inspect", "scan", "netscan", "baseline capture", "record show",
                                     "record verify", "baseline diff", "baseline accept", "notice verify"])
def test_every_option_has_help_text(command: str) -> None:
    import argparse

    from agent.cli.main import build_parser

    words = command.split()
    parser = build_parser(words)
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub = action.choices[words[0]]
    for word in words[1:]:
        sub = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices[word]
    missing = [a.option_strings for a in sub._actions if a.option_strings and not a.help and a.dest != "help"]
    assert missing == []
