"""Drift items -> findings, judged by the profile's ``drift:`` rules (first match wins). Pure.

A rule with ``group_by`` folds its items into one finding per attribute value (e.g. every file of one package
update is one "package updated" finding, not hundreds).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from baselines import messages as msg
from baselines.diff import AttrChange, Diff, DriftItem
from baselines.model import ActionKind, Finding, Remediation, Severity, Text, finding_id
from baselines.profile import DEFAULT_DRIFT_RULE, DriftRule
from probes.i18n import Joined, Message

MAX_GROUP_EVIDENCE = 20
INTEGRITY_RULE_ID = "PC-BASE-001"


@dataclass(frozen=True, slots=True)
class DriftFinding:
    """A finding and the drift items it stands for (one, or a group); accepting the finding accepts them."""

    finding: Finding
    items: tuple[DriftItem, ...]


def item_id(host: str, item: DriftItem) -> str:
    return finding_id(host, item.probe, item.subject, f"DRIFT-{item.change}")


def match_rule(item: DriftItem, rules: Sequence[DriftRule]) -> DriftRule:
    old, new = item.old_observation(), item.new_observation()
    changed = item.changed_attrs
    for rule in rules:
        if rule.matches(item.change, item.probe, item.subject, old, new, changed):
            return rule
    return DEFAULT_DRIFT_RULE


def is_catch_all(rule: DriftRule) -> bool:
    return rule is DEFAULT_DRIFT_RULE or "*" in rule.probes


def drift_findings(diff: Diff, rules: Sequence[DriftRule], host: str,
                   parents: ParentsOf | None = None) -> list[DriftFinding]:
    """One finding per change. ``parents`` (e.g. baselines.netdrift.network_parents) names the items an item
    is part of: a new port's service and TLS rows belong to the port's finding, not findings of their own."""
    out: list[DriftFinding] = []
    groups: dict[tuple[str, str, str, str], tuple[DriftRule, list[DriftItem]]] = {}
    for item, related in _fold(diff.items, parents):
        rule = _specific_rule(item, related, rules)
        value = _group_value(item, rule.group_by) if rule.group_by else None
        if rule.group_by and value is not None:
            groups.setdefault((rule.id, item.probe, item.change, value), (rule, []))[1].extend((item, *related))
            continue
        out.append(DriftFinding(_single(rule, item, host, related), (item, *related)))
    for (_, probe, change, value), (rule, items) in groups.items():
        out.append(DriftFinding(_grouped(rule, probe, change, value, items, host), tuple(items)))
    out.sort(key=lambda d: (-d.finding.severity.rank, d.finding.probe, d.finding.subject))
    return out


ParentsOf = Callable[[DriftItem], Sequence[tuple[str, str, str]]]  # (change, probe, subject), nearest first


def _fold(items: Sequence[DriftItem], parents: ParentsOf | None) -> list[tuple[DriftItem, tuple[DriftItem, ...]]]:
    """Each item that is part of another item (its nearest present parent, followed up to the top) goes with
    that item: (top item, the items folded into it), in diff order."""
    if parents is None:
        return [(item, ()) for item in items]
    present: dict[tuple[str, str, str], DriftItem] = {(i.change, *i.key): i for i in items}

    def parent(item: DriftItem) -> DriftItem | None:
        for key in parents(item):
            found = present.get(key)
            if found is not None and found is not item:
                return found
        return None

    tops: dict[tuple[str, str, str], list[DriftItem]] = {}
    order: list[DriftItem] = []
    for item in items:
        top, seen = item, {item.key}
        while (up := parent(top)) is not None and up.key not in seen:  # a cycle in ``parents`` stops here
            top = up
            seen.add(up.key)
        if top is item:
            order.append(item)
            tops.setdefault((item.change, *item.key), [])
        else:
            tops.setdefault((top.change, *top.key), []).append(item)
    return [(item, tuple(tops[(item.change, *item.key)])) for item in order]


def _specific_rule(item: DriftItem, related: Sequence[DriftItem], rules: Sequence[DriftRule]) -> DriftRule:
    """The item's own rule, unless only a catch-all matched it and a folded item has a specific rule."""
    rule = match_rule(item, rules)
    if is_catch_all(rule):
        for other in related:
            candidate = match_rule(other, rules)
            if not is_catch_all(candidate):
                return candidate
    return rule


def _group_value(item: DriftItem, attr: str | None) -> str | None:
    if attr is None:
        return None
    for attrs in (item.new, item.old):
        if attrs is not None and attrs.get(attr) not in (None, ""):
            return str(attrs.get(attr))
    return None


def _values(item: DriftItem, host: str) -> dict[str, Any]:
    base: dict[str, Any] = dict(item.new if item.new is not None else item.old or {})
    if item.old is not None:
        base.update({f"old_{k}": v for k, v in item.old.items()})
    base.update(subject=item.subject, host=host, probe=item.probe, change=msg.CHANGE[item.change](),
                changes=Joined(item.changes, "; ", "；"))
    return base


@dataclass(frozen=True, slots=True)
class RelatedChange:
    """A change of a related item ({changes} of a folded finding), named by its probe, in either language."""

    probe: str
    change: AttrChange

    def get(self, lang: str) -> str:
        return f"{self.probe} {self.change.text(lang)}"


def _evidence(item: DriftItem) -> dict[str, Any]:
    data = item.to_json()
    data.pop("probe")
    data.pop("subject")
    if item.change == "changed":  # the changed attributes are named in "changes"; keep the rest for context
        data.pop("old", None)
    return data


def _single(rule: DriftRule, item: DriftItem, host: str, related: Sequence[DriftItem] = ()) -> Finding:
    values = _values(item, host)
    evidence = _evidence(item)
    if related:
        parts = [*item.changes, *(RelatedChange(r.probe, c) for r in related for c in r.changes)]
        values["changes"] = Joined(parts, "; ", "；")
        evidence["related"] = [_evidence(r) | {"probe": r.probe, "subject": r.subject} for r in related]
    return Finding(
        id=item_id(host, item),
        rule_id=rule.id,
        host=host,
        probe=item.probe,
        subject=item.subject,
        severity=rule.severity,
        title=rule.title.format(values),
        rationale=rule.rationale,
        remediation=rule.remediation.format(values),
        evidence=evidence,
        references=rule.references,
        kind="drift",
    )


def _grouped(rule: DriftRule, probe: str, change: str, value: str, items: list[DriftItem], host: str) -> Finding:
    attr = rule.group_by or ""
    subject = f"{attr}={value}"
    shown = [i.subject for i in items[:MAX_GROUP_EVIDENCE]]
    values: dict[str, Any] = {attr: value, "count": len(items), "subjects": ", ".join(shown), "subject": subject,
                              "host": host, "probe": probe, "change": msg.CHANGE[change]()}
    return Finding(
        id=finding_id(host, probe, subject, f"DRIFT-{change}"),
        rule_id=rule.id,
        host=host,
        probe=probe,
        subject=subject,
        severity=rule.severity,
        title=rule.title.format(values),
        rationale=rule.rationale,
        remediation=rule.remediation.format(values),
        evidence={"change": change, attr: value, "count": len(items),
                  "items": [_evidence(i) | {"subject": i.subject} for i in items[:MAX_GROUP_EVIDENCE]]},
        references=rule.references,
        kind="drift",
    )


def integrity_finding(host: str, scope: str, path: str, reason: str | Message) -> Finding:
    """The saved baseline failed verification: it is not used, and that itself is critical. ``reason`` is
    BaselineInvalid.localized (a plain Chinese sentence in zh-CN), or a string."""
    values: dict[str, Any] = {"path": path, "reason": reason, "scope": scope}
    return Finding(
        id=finding_id(host, "baseline", scope, INTEGRITY_RULE_ID),
        rule_id=INTEGRITY_RULE_ID,
        host=host,
        probe="baseline",
        subject=scope,
        severity=Severity.CRITICAL,
        title=Text("Saved baseline failed verification and was not used",
                   "已保存的基线未通过校验，未予使用"),
        rationale=Text("A baseline that was edited, swapped, truncated, unsigned or taken from another host "
                       "could hide changes an intruder made; drift cannot be judged until it is trusted again.",
                       "被篡改、替换、截断、未签名或来自其他主机的基线可能掩盖入侵者所做的改动；"
                       "在重新可信之前无法判断偏离。"),
        remediation=Remediation(ActionKind.INVESTIGATE, Text(
            "Find out who changed {path} ({reason}); check the host, then record a fresh baseline with "
            "`precaution baseline capture --force`.",
            "查明 {path} 被谁改动（{reason}）；核查主机后使用 `precaution baseline capture --force` 重新采集基线。",
        )).format(values),
        evidence={"path": path, "reason": str(reason)},
        references=("Art. 9(9)", "Art. 25"),
        kind="integrity",
    )
