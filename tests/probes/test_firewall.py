from __future__ import annotations

import os
import subprocess
import sys

import pytest

from probes.host.firewall import parse_iptables_save
from tests.probes.golden import FIXTURES, cases, check_case
from tests.probes.hostb_util import REPO, in_ns, netns, probe_json

RULESET = """
table inet filter {
  chain input {
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    iif "lo" accept
    tcp dport 22 accept
  }
  chain output {
    type filter hook output priority 0; policy accept;
  }
}
"""


@pytest.mark.parametrize("raw_path", cases("firewall"), ids=lambda p: p.name)
def test_golden(raw_path):
    check_case("firewall", raw_path)


def _rows(case):
    return {o.subject: o.attrs for o in check_case("firewall", FIXTURES / "firewall" / case)}


def test_nft_chains_and_summary():
    rows = _rows("netns-nft.raw.json")
    assert rows["inet/filter/input"]["policy"] == "drop" and rows["inet/filter/input"]["rules"] == 4
    assert rows["inet/filter/extra"]["hook"] is None and rows["inet/filter/extra"]["rules"] == 1
    assert rows["ip/nat/postrouting"]["type"] == "nat"
    s = rows["ruleset"]
    assert (s["backend"], s["has_input_drop_policy"], s["input_rules"], s["total_rules"]) == ("nftables", True, 4, 6)


def test_iptables_accept_empty_and_hardened():
    empty = _rows("iptables-accept-empty.raw.json")["ruleset"]
    assert (empty["backend"], empty["input_policy"], empty["input_rules"]) == ("iptables", "accept", 0)
    hard = _rows("iptables-hardened.raw.json")
    assert hard["ip/filter/INPUT"]["policy"] == "drop" and hard["ip/filter/LOGDROP"]["policy"] is None
    assert hard["ip6/filter/INPUT"]["policy"] == "drop" and hard["ruleset"]["has_input_drop_policy"]


def test_nonroot_is_unreadable_not_empty():
    assert _rows("nonroot.raw.json")["ruleset"]["readable"] is False


def test_iptables_save_custom_chain_policy():
    (chain,) = parse_iptables_save("*filter\n:LOGDROP - [0:0]\n-A LOGDROP -j DROP\nCOMMIT\n", "ip")
    assert (chain.path, chain.hook, chain.policy, chain.rules) == ("ip/filter/LOGDROP", None, None, 1)


def test_live_netns_ruleset(tmp_path):
    """A ruleset loaded in a throw-away namespace is read back; the host's own ruleset is never touched."""
    rules = tmp_path / "rules.nft"
    rules.write_text(RULESET)
    with netns() as ns:
        before = probe_json(["ip", "netns", "exec", ns], "firewall")
        summary = {o["subject"]: o["attrs"] for o in before["observations"]}["ruleset"]
        assert summary["chains"] == 0 and not summary["has_input_drop_policy"]
        in_ns(ns, "nft", "-f", str(rules))
        out = probe_json(["ip", "netns", "exec", ns], "firewall")
        rows = {o["subject"]: o["attrs"] for o in out["observations"]}
        assert rows["inet/filter/input"]["rules"] == 3 and rows["inet/filter/input"]["hook"] == "input"
        assert rows["ruleset"]["has_input_drop_policy"] and rows["ruleset"]["input_rules"] == 3


def test_live_not_root_is_a_limitation():
    if os.geteuid() != 0:
        argv = [sys.executable, "-m", "agent.cli.main", "probe", "run", "firewall"]
    else:
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                sys.executable, "-m", "agent.cli.main", "probe", "run", "firewall"]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    import json

    out = json.loads(proc.stdout)
    assert out["limitations"] and out["observations"][-1]["attrs"]["readable"] is False
