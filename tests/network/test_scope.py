"""Scope guard: parsing, refusals (deny wins, outside, kinds, ports, size, deadline), sealed targets."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import UserError
from agent.scope import PortSet, Refusal, Scope, ScopeGuard, ScopeRefused, expand_target
from probes.errors import ProbeInputError
from probes.network.target import ApprovedTarget, check_targets


def _guard(scope: Scope, **kw: object) -> tuple[ScopeGuard, list[Refusal]]:
    seen: list[Refusal] = []
    return ScopeGuard(scope, seen.append, **kw), seen  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "10.0.0.1/24", "10.0.0.300", "300.1.1.1/8", "10.0.0.9-10.0.0.1",
                                 "fe80::1::2", "bad host!", "10.0.0.1-::5", "1.2.3"])
def test_bad_scope_entries(bad: str) -> None:
    with pytest.raises(UserError):
        Scope.parse(bad)


def test_too_large_and_empty() -> None:
    Scope.parse("10.0.0.0/16")
    with pytest.raises(UserError, match="too large"):
        Scope.parse("10.0.0.0/15")
    with pytest.raises(UserError, match="too large"):
        Scope.parse("2001:db8::/64")
    with pytest.raises(UserError, match="too large"):
        Scope.parse(["10.0.0.0/16", "10.1.0.0/31"])
    with pytest.raises(UserError, match="empty"):
        Scope.parse(" , ")
    with pytest.raises(UserError, match="unknown test kind"):
        Scope.parse("10.0.0.0/24", kinds=["portscan", "exploit"])


def test_loopback_default() -> None:
    guard, _ = _guard(Scope.loopback())
    assert [t.address for t in guard.approve(["127.0.0.1", "::1"], "portscan")] == ["127.0.0.1", "::1"]
    with pytest.raises(ScopeRefused):
        guard.approve("10.231.1.11", "portscan")


def test_expand_forms() -> None:
    assert [str(ip) for ip, _ in expand_target("10.231.1.0/30")] == ["10.231.1.1", "10.231.1.2"]
    assert [str(ip) for ip, _ in expand_target("10.231.1.5-7")] == ["10.231.1.5", "10.231.1.6", "10.231.1.7"]
    assert len(expand_target("10.231.1.250-10.231.2.5")) == 12
    assert [str(ip) for ip, _ in expand_target("10.231.1.9/32")] == ["10.231.1.9"]
    assert [str(ip) for ip, _ in expand_target("[::1]")] == ["::1"]
    pairs = expand_target("localhost")
    assert ipaddress.ip_address("127.0.0.1") in [ip for ip, _ in pairs] and pairs[0][1] == "localhost"
    with pytest.raises(UserError, match="cannot resolve"):
        expand_target("no-such-host.invalid")
    with pytest.raises(ScopeRefused, match="more than the limit"):
        expand_target("10.0.0.0/8")


def test_outside_refused_whole_and_recorded() -> None:
    guard, seen = _guard(Scope.parse("10.231.1.0/28"))
    with pytest.raises(ScopeRefused) as info:
        guard.approve(["10.231.1.11", "10.231.1.20"], "portscan")
    assert "10.231.1.20" in str(info.value) and "outside scope" in str(info.value)
    assert len(seen) == 1 and seen[0].addresses == ("10.231.1.20",) and seen[0].kind == "portscan"
    # partial: the in-scope part is approved, the rest still recorded
    approved = guard.approve(["10.231.1.11", "10.231.1.20"], "portscan", partial=True)
    assert [t.address for t in approved] == ["10.231.1.11"] and len(seen) == 2
    # a CIDR that overlaps the scope's edge is refused as a whole
    with pytest.raises(ScopeRefused) as info:
        guard.approve("10.231.1.0/27", "discovery")
    assert info.value.refusals[0].count == 15  # .16-.30


def test_deny_wins() -> None:
    guard, seen = _guard(Scope.parse("10.231.1.0/24", deny=["10.231.1.1", "10.231.1.128/25"]))
    with pytest.raises(ScopeRefused, match="deny list"):
        guard.approve("10.231.1.1", "portscan")
    approved = guard.approve("10.231.1.0/24", "discovery", partial=True)
    assert len(approved) == 126 and all(int(t.ip) & 0xFF < 128 and t.address != "10.231.1.1" for t in approved)
    assert {r.reason for r in seen} == {"in deny list 10.231.1.1/32", "in deny list 10.231.1.128/25"}


def test_hostnames_in_scope_and_targets() -> None:
    guard, _ = _guard(Scope.parse(["localhost"]))
    approved = guard.approve("localhost", "service")
    assert approved and all(t.hostname == "localhost" and t.ip.is_loopback for t in approved)
    assert guard.approve("127.0.0.1", "service")[0].hostname is None
    with pytest.raises(ScopeRefused):
        guard.approve("127.0.0.2", "service")


def test_ipv6() -> None:
    guard, _ = _guard(Scope.parse("fd31:231::/120"))
    assert len(guard.approve("fd31:231::/124", "portscan")) == 15
    with pytest.raises(ScopeRefused):
        guard.approve("fd31:231::1:1", "portscan")
    # an IPv4-mapped address is not the IPv4 address for the guard
    guard4, _ = _guard(Scope.parse("10.231.1.0/24"))
    with pytest.raises(ScopeRefused):
        guard4.approve("::ffff:10.231.1.5", "portscan")


def test_kinds_ports_deadline() -> None:
    scope = Scope.parse("10.231.1.0/24", kinds=["discovery", "portscan"], ports="1-1024")
    guard, seen = _guard(scope)
    with pytest.raises(ScopeRefused, match="test kind 'service'"):
        guard.approve("10.231.1.11", "service")
    with pytest.raises(ScopeRefused, match="ports 1025,8080"):
        guard.approve("10.231.1.11", "portscan", PortSet.parse("22,1025,8080"))
    t = guard.approve("10.231.1.11", "portscan")[0]
    assert t.ports == PortSet.parse("1-1024")
    with pytest.raises(UserError, match="unknown test kind"):
        guard.approve("10.231.1.11", "exploit")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    closed, seen2 = _guard(scope, deadline=past)
    with pytest.raises(ScopeRefused, match="window closed"):
        closed.approve("10.231.1.11", "portscan")
    assert len(seen) == 2 and len(seen2) == 1


def test_request_cap() -> None:
    guard, seen = _guard(Scope.parse("10.231.0.0/16"))
    assert len(guard.approve("10.231.0.0/16", "discovery")) == 65534
    with pytest.raises(ScopeRefused, match="limit"):
        guard.approve(["10.231.0.0/16", "10.231.1.0/24"], "discovery")
    assert seen


def test_targets_are_sealed() -> None:
    guard, _ = _guard(Scope.loopback())
    t = guard.approve("127.0.0.1", "portscan")[0]
    with pytest.raises(TypeError):
        ApprovedTarget(ipaddress.ip_address("10.0.0.1"), "portscan")
    with pytest.raises(TypeError):
        dataclasses.replace(t, ip=ipaddress.ip_address("10.0.0.1"))
    with pytest.raises(TypeError):
        ApprovedTarget(ipaddress.ip_address("10.0.0.1"), "portscan", seal=t.seal)
    with pytest.raises(TypeError):
        check_targets(["127.0.0.1"], ["portscan"])  # type: ignore[list-item]
    with pytest.raises(PermissionError):
        check_targets([t], ["discovery"])


@pytest.mark.parametrize("bad", ["0", "65536", "22,", "80-22", "x", "", "1-70000"])
def test_portset_bad(bad: str) -> None:
    with pytest.raises(ProbeInputError):
        PortSet.parse(bad)


def test_portset_forms() -> None:
    ps = PortSet.parse("443, 22,80,1000-2000,1500-2500,81")
    assert str(ps) == "22,80-81,443,1000-2500" and len(ps) == 1505 and 1999 in ps and 79 not in ps
    assert len(PortSet.parse("-")) == 65535 and str(PortSet.parse("60000-")) == "60000-65535"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 65535), st.integers(0, 300)), min_size=1, max_size=8))
def test_portset_property(pairs: list[tuple[int, int]]) -> None:
    text = ",".join(f"{lo}-{min(lo + n, 65535)}" for lo, n in pairs)
    ps = PortSet.parse(text)
    expected = {p for lo, n in pairs for p in range(lo, min(lo + n, 65535) + 1)}
    assert set(ps) == expected and len(ps) == len(expected)
    assert PortSet.parse(str(ps)) == ps


@settings(max_examples=150, deadline=None)
@given(scope_len=st.integers(24, 32), req_len=st.integers(24, 32), offset=st.integers(0, 255),
       deny=st.integers(0, 255))
def test_guard_property(scope_len: int, req_len: int, offset: int, deny: int) -> None:
    """Whatever is asked, every approved address is in scope and not denied; a refusal approves nothing."""
    scope_net = ipaddress.ip_network(f"10.231.7.0/{scope_len}")
    req_net = ipaddress.ip_network(f"10.231.7.{offset}/{req_len}", strict=False)
    deny_ip = ipaddress.ip_address(f"10.231.7.{deny}")
    guard, seen = _guard(Scope.parse(str(scope_net), deny=[str(deny_ip)]))
    try:
        approved = guard.approve(str(req_net), "portscan", partial=True)
    except ScopeRefused:
        assert seen
        return
    assert approved
    for t in approved:
        assert t.ip in scope_net and t.ip != deny_ip and t.ip in req_net
    try:
        whole = guard.approve(str(req_net), "portscan")
    except ScopeRefused:
        return
    assert whole == approved
