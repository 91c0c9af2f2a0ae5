"""Host firewall: nftables ruleset (``nft -j list ruleset``), else ``iptables-save``/``ip6tables-save``.

One row per chain (family/table/chain with hook, policy, rule count) and a summary row, subject ``ruleset``.
Only reads: nothing here changes firewall state. Reading needs CAP_NET_ADMIN; as another user, or when no tool
could be run at all, the summary says ``readable: false`` (state unknown: no rule judges it) and the run is
limited.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from probes import messages as msg
from probes.base import GatherContext, Probe, Raw, Requirements
from probes.observation import Row
from probes.transport import CommandUnavailable

log = logging.getLogger(__name__)

IPT_HOOKS = {"PREROUTING": "prerouting", "INPUT": "input", "FORWARD": "forward", "OUTPUT": "output",
             "POSTROUTING": "postrouting"}


@dataclass(frozen=True, slots=True)
class FirewallChain(Row):
    path: str  # family/table/chain
    family: str
    table: str
    chain: str
    type: str | None  # filter | nat | route (nft base chains); the table name for iptables built-ins
    hook: str | None  # None for regular (jump target) chains
    priority: int | None
    policy: str | None  # accept | drop, lower case; None for regular chains
    rules: int

    KEY: ClassVar[tuple[str, ...]] = ("path",)


@dataclass(frozen=True, slots=True)
class FirewallRuleset(Row):
    name: str  # always "ruleset"
    backend: str  # nftables | iptables | none
    readable: bool
    tables: int
    chains: int
    total_rules: int
    input_chains: int  # filter base chains on the input hook
    input_policy: str  # drop when any input filter chain drops by default, accept when none does, none if no chain
    has_input_drop_policy: bool
    input_rules: int

    KEY: ClassVar[tuple[str, ...]] = ("name",)


class FirewallProbe(Probe[Row]):
    id = "firewall"
    title = "Host firewall ruleset"
    title_zh = "主机防火墙规则"
    requires = Requirements(root=True, binaries_any=("nft", "iptables-save"))

    def gather(self, ctx: GatherContext) -> Raw:
        t = ctx.transport
        if t.which("nft"):
            try:
                result = t.run(["nft", "-j", "list", "ruleset"], timeout=30.0)
            except CommandUnavailable:
                result = None
            if result is not None:
                if result.returncode == 0:
                    return {"nft": result.stdout}
                ctx.limited(msg.COMMAND_FAILED(command="nft list ruleset", error=result.stderr.strip()[:200]))
                return {"nft": None, "error": result.stderr.strip()[:200]}
        raw: Raw = {}
        for cmd, key in (("iptables-save", "iptables"), ("ip6tables-save", "ip6tables")):
            try:
                result = t.run([cmd], timeout=30.0)
            except CommandUnavailable:
                continue
            if result.returncode == 0:
                raw[key] = result.stdout
            else:
                ctx.limited(msg.COMMAND_FAILED(command=cmd, error=result.stderr.strip()[:200]))
                raw["error"] = result.stderr.strip()[:200]
        if not raw:
            ctx.limited(msg.NO_FIREWALL_TOOL())
        return raw

    @staticmethod
    def parse(raw: Raw) -> Sequence[Row]:
        if "nft" in raw:
            chains = parse_nft(raw["nft"]) if raw["nft"] else []
            return [*chains, summarise("nftables", raw["nft"] is not None, chains)]
        if "iptables" in raw or "ip6tables" in raw:
            chains = [*parse_iptables_save(raw.get("iptables") or "", "ip"),
                      *parse_iptables_save(raw.get("ip6tables") or "", "ip6")]
            readable = "error" not in raw
            return [*chains, summarise("iptables", readable, chains)]
        # Neither tool could be run (not installed, or a --root tree where commands are off): the kernel's
        # ruleset was not read at all, which says nothing about whether it filters.
        return [summarise("none", False, [])]


def parse_nft(text: str) -> list[FirewallChain]:
    items: list[dict[str, Any]] = json.loads(text).get("nftables", [])
    rules: dict[tuple[str, str, str], int] = {}
    for item in items:
        rule = item.get("rule")
        if rule:
            key = (rule["family"], rule["table"], rule["chain"])
            rules[key] = rules.get(key, 0) + 1
    out = []
    for item in items:
        c = item.get("chain")
        if not c:
            continue
        key = (c["family"], c["table"], c["name"])
        out.append(FirewallChain(
            path="/".join(key), family=c["family"], table=c["table"], chain=c["name"], type=c.get("type"),
            hook=c.get("hook"), priority=c.get("prio") if isinstance(c.get("prio"), int) else None,
            policy=c.get("policy") if c.get("hook") else None, rules=rules.get(key, 0),
        ))
    return sorted(out, key=lambda r: r.path)


def parse_iptables_save(text: str, family: str) -> list[FirewallChain]:
    table = ""
    policies: dict[tuple[str, str], str | None] = {}
    counts: dict[tuple[str, str], int] = {}
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif line.startswith(":") and table:
            parts = line[1:].split()
            if parts:
                policies[(table, parts[0])] = parts[1].lower() if len(parts) > 1 and parts[1] != "-" else None
        elif line.startswith("-A ") and table:
            chain = line.split()[1]
            counts[(table, chain)] = counts.get((table, chain), 0) + 1
    out = []
    for (tbl, chain), policy in policies.items():
        builtin = chain in IPT_HOOKS and policy is not None
        out.append(FirewallChain(
            path=f"{family}/{tbl}/{chain}", family=family, table=tbl, chain=chain, type=tbl if builtin else None,
            hook=IPT_HOOKS[chain] if builtin else None, priority=None, policy=policy if builtin else None,
            rules=counts.get((tbl, chain), 0),
        ))
    return sorted(out, key=lambda r: r.path)


def summarise(backend: str, readable: bool, chains: list[FirewallChain]) -> FirewallRuleset:
    inputs = [c for c in chains if c.hook == "input" and c.type == "filter" and c.family in ("inet", "ip", "ip6")]
    drop = any(c.policy == "drop" for c in inputs)
    return FirewallRuleset(
        name="ruleset",
        backend=backend,
        readable=readable,
        tables=len({(c.family, c.table) for c in chains}),
        chains=len(chains),
        total_rules=sum(c.rules for c in chains),
        input_chains=len(inputs),
        input_policy="drop" if drop else ("accept" if inputs else "none"),
        has_input_drop_policy=drop,
        input_rules=sum(c.rules for c in inputs),
    )
