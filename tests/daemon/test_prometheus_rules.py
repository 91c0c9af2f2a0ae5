"""Alert rules, scrape config and dashboard: promtool-checked and tested, and a real Prometheus scraping a real
agent on loopback."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.daemon.agentproc import AgentProcess, free_port, ran_ok

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing (make deps installs "
                                "the Debian prometheus package)")


def test_alert_rules_check() -> None:
    out = subprocess.run(["promtool", "check", "rules", str(PROM / "alerts.yml")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_alert_rules_unit_tests() -> None:
    out = subprocess.run(["promtool", "test", "rules", str(PROM / "alerts.test.yml")], capture_output=True,
                         text=True)
    assert out.returncode == 0 and "SUCCESS" in out.stdout, out.stdout + out.stderr


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((PROM / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_node_mixin_style() -> None:
    """Every alert has summary and description; conditions with degrees come as warning + critical."""
    by_name: dict[str, set[str]] = {}
    for rule in _rules():
        assert set(rule["annotations"]) == {"summary", "description"}, rule["alert"]
        by_name.setdefault(rule["alert"], set()).add(rule["labels"]["severity"])
    single = {name for name, sev in by_name.items() if sev != {"warning", "critical"}}
    assert single == {"PrecautionRecordChainBroken", "PrecautionAgentIdentityCloned"}  # no mild form of these
    for rule in _rules():
        if rule["alert"] not in single and "increase(" not in rule["expr"]:
            assert "for" in rule, rule["alert"]
    tested = yaml.safe_load((PROM / "alerts.test.yml").read_text())
    fired = {a["alertname"] for t in tested["tests"] for a in t["alert_rule_test"] if a["exp_alerts"]}
    assert fired == set(by_name)  # every alert is shown to fire in a test


def test_alert_metric_names_exist(tmp_path: Path) -> None:
    """The agent metrics the rules use are what a live agent exports (HELP lines exist before any sample)."""
    agent = AgentProcess(tmp_path).start()
    try:
        text = agent.wait_for(lambda f: True) and agent.text()
    finally:
        agent.stop(signal.SIGKILL)
    assert isinstance(text, str)
    exported = set(re.findall(r"^# HELP (\S+)", text, re.M))
    exported |= {name + "_total" for name in exported}
    used = {name for rule in _rules() for name in re.findall(r"precaution_agent_\w+", rule["expr"])}
    assert used and used <= exported, used - exported


def test_scrape_config_checks(tmp_path: Path) -> None:
    text = (PROM / "prometheus.yml").read_text()
    for name in ("precaution-agents.yml", "precaution-collector-ca.pem", "precaution-collector.token"):
        (tmp_path / name).write_text("[]\n" if name.endswith(".yml") else "x\n")
        text = text.replace(f"/etc/prometheus/{name}", str(tmp_path / name))
    shutil.copy(PROM / "alerts.yml", tmp_path / "alerts.yml")
    (tmp_path / "prometheus.yml").write_text(text)
    out = subprocess.run(["promtool", "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_grafana_dashboard_queries_known_metrics() -> None:
    dash = json.loads((ROOT / "deploy" / "grafana" / "precaution.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    titles = {p["title"] for p in dash["panels"]}
    assert {"Agents by state", "Open findings by severity and unit", "Overdue rectifications", "Spool depth",
            "Run durations"} <= titles
    names = {n for e in exprs for n in re.findall(r"precaution_\w+", e)}
    known = (ROOT / "docs" / "metrics.md").read_text()
    for name in names:
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert base in known or base.removesuffix("_total") in known, name


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def test_real_prometheus_scrapes_agent_and_collector(tmp_path: Path) -> None:
    """Debian's prometheus on loopback scrapes a running agent (plain HTTP) and a running collector (HTTPS with
    its CA, bearer token), loads alerts.yml, and answers queries through its HTTP API."""
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus missing (make deps)")
    from tests.collector.conftest import FAST_ENV, running_collector

    with running_collector(tmp_path, "sqlite", FAST_ENV) as collector:
        _scrape_both(tmp_path, collector)


def _scrape_both(tmp_path: Path, collector: Any) -> None:
    agent = AgentProcess(tmp_path, '[self_inspection]\nfile_integrity_paths = ["/usr/share/doc/python3"]\n')
    agent.start()
    port = free_port()
    shutil.copy(PROM / "alerts.yml", tmp_path / "alerts.yml")
    (tmp_path / "token").write_text(collector.metrics_token)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["alerts.yml"],
        "scrape_configs": [
            {"job_name": "precaution-agent", "static_configs": [{"targets": [f"127.0.0.1:{agent.port}"]}]},
            {"job_name": "precaution-collector", "scheme": "https", "tls_config": {"ca_file": collector.ca},
             "authorization": {"type": "Bearer", "credentials_file": str(tmp_path / "token")},
             "static_configs": [{"targets": [f"127.0.0.1:{collector.port}"]}]},
        ],
    }))
    log = (tmp_path / "prometheus.log").open("wb")
    prom = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def query(q: str) -> list[Any]:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                result: list[Any] = _get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": q}))["data"][
                    "result"]
                if result:
                    return result
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"no answer to {q}: " + (tmp_path / "prometheus.log").read_text()[-2000:])

    try:
        agent.wait_for(ran_ok("self_inspection"))
        runs = query('precaution_agent_runs_total{job="precaution-agent",kind="self_inspection",outcome="ok"}')
        assert float(runs[0]["value"][1]) >= 1
        assert runs[0]["metric"]["instance"] == f"127.0.0.1:{agent.port}"
        up = query('up{job="precaution-agent"}')
        assert up[0]["value"][1] == "1"
        db_up = query('precaution_collector_database_up{job="precaution-collector"}')
        assert db_up[0]["value"][1] == "1"
        assert query('up{job="precaution-collector"}')[0]["value"][1] == "1"
        rules = _get(f"{base}/api/v1/rules")["data"]["groups"]
        assert {g["name"] for g in rules} == {"precaution-agent", "precaution-collector"}
        assert all(r["health"] in ("ok", "unknown") for g in rules for r in g["rules"])
    finally:
        prom.send_signal(signal.SIGTERM)
        prom.wait(timeout=30)
        log.close()
        agent.stop(signal.SIGKILL)
