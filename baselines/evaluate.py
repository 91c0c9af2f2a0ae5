"""Evaluate a profile over observations: pure, no I/O."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from baselines.model import Finding, finding_id
from baselines.profile import Profile, Rule
from probes.observation import Observation

MAX_EVIDENCE_ITEMS = 20


@dataclass(frozen=True, slots=True)
class Evaluation:
    findings: tuple[Finding, ...]
    evaluated_rules: int
    unevaluated_rules: tuple[str, ...]  # rule ids whose probe did not run


def evaluate(profile: Profile, observations: Iterable[Observation], host: str, ran_probes: set[str]) -> Evaluation:
    by_probe: dict[str, list[Observation]] = defaultdict(list)
    for obs in observations:
        if obs.in_rules:  # rows kept only for baselines (process identities) are not judged a second time
            by_probe[obs.probe].append(obs)
    findings: list[Finding] = []
    unevaluated: list[str] = []
    evaluated = 0
    for rule in profile.rules:
        if rule.probe not in ran_probes:
            unevaluated.append(rule.id)
            continue
        evaluated += 1
        findings.extend(evaluate_rule(rule, by_probe.get(rule.probe, []), host))
    return Evaluation(tuple(findings), evaluated, tuple(unevaluated))


def evaluate_rule(rule: Rule, observations: Sequence[Observation], host: str) -> list[Finding]:
    if rule.mode == "forbid":
        return [_finding(rule, host, o.subject, dict(o.attrs)) for o in observations if rule.condition(o)]
    if rule.mode == "expect":
        selected = [o for o in observations if _selected(rule, o)]
        if not selected:
            if rule.missing == "fail":
                return [_finding(rule, host, rule.subject or "", {"observed": "none"})]
            return []
        return [_finding(rule, host, o.subject, dict(o.attrs)) for o in selected if not rule.condition(o)]
    # require: at least one observation must satisfy the condition
    if any(rule.condition(o) for o in observations):
        return []
    evidence: dict[str, Any] = {"observed": [o.subject for o in observations[:MAX_EVIDENCE_ITEMS]]}
    return [_finding(rule, host, "", evidence)]


def _selected(rule: Rule, obs: Observation) -> bool:
    if rule.subject is not None and obs.subject != rule.subject:
        return False
    return rule.selector is None or rule.selector(obs)


def _finding(rule: Rule, host: str, subject: str, evidence: dict[str, Any]) -> Finding:
    # an unknown value shows as <name> in a command, for the operator to fill in, never as "None"
    values = {k: f"<{k}>" if v is None else v for k, v in evidence.items()}
    values.update(subject=subject, host=host)
    return Finding(
        id=finding_id(host, rule.probe, subject, rule.id),
        rule_id=rule.id,
        host=host,
        probe=rule.probe,
        subject=subject,
        severity=rule.severity,
        title=rule.title,
        rationale=rule.rationale,
        remediation=rule.remediation.format(values),
        evidence={k: list(v) if isinstance(v, tuple) else v for k, v in evidence.items()},
        references=rule.references,
    )
