"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against the real collector over TLS,
on SQLite and PostgreSQL: findings ingested through the signed agent API are seen after logging in, a lifecycle
action shows up in the audit history (and in the API), a viewer of unit A cannot open unit B's data, forged or
cross-site form posts are refused, and the zh-CN pages are Chinese.

One browser for the module; each test opens a context of its own (its own cookies)."""

from __future__ import annotations

import datetime as dt
import html
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.collector.client import AgentSim, finding, iso, notice_digest, run
from tests.collector.conftest import Collector, unit_name
from tests.zh_check import data_words, english_words

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian package chromium is missing (make deps)"
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@dataclass
class World:
    unit_a: str
    unit_b: str
    agent_a: AgentSim
    agent_b: AgentSim
    ids: dict[str, int]  # finding id (wire) -> collector row id
    users: dict[str, str]  # user name -> password


def _add_user(collector: Collector, name: str, role: str, unit: str) -> str:
    password = secrets.token_urlsafe(16)
    done = collector.cli("user", "add", name, "--role", role, "--unit", unit, "--password-stdin", input=password + "\n")
    assert done.returncode == 0, done.stderr
    return password


@pytest.fixture(scope="module")
def world(collector: Collector) -> World:
    """Two units, each with an agent that sent findings through the signed API; unit A also has a record-chain
    alert (a wiped record) and a clone alert; a viewer and an operator of unit A."""
    unit_a, unit_b = unit_name(), unit_name()
    agent_a = collector.agent(unit_a, hostname=f"{unit_a}-db01")
    agent_b = collector.agent(unit_b, hostname=f"{unit_b}-web01")
    r = agent_a.ingest(agent_a.batch(
        runs=[run("ra1", [finding("a-ssh", host=agent_a.hostname, severity="high"),
                          finding("a-crit", host=agent_a.hostname, severity="critical", probe="kernel",
                                  rule="PC-KERN-001")], host=agent_a.hostname)],
        record=[agent_a.record_scan(2)]))
    assert r.status_code == 200, r.text
    agent_a.seq, agent_a.link = 0, "0" * 64  # the record was wiped: entry 1 again
    assert agent_a.ingest(agent_a.batch(record=[agent_a.record_scan()])).status_code == 200
    r = agent_b.ingest(agent_b.batch(runs=[run("rb1", [finding("b-secret", host=agent_b.hostname)],
                                               host=agent_b.hostname)]))
    assert r.status_code == 200, r.text
    clone_of = collector.agent(unit_a, hostname=f"{unit_a}-app02")
    twin = AgentSim(collector.url, collector.ca, hostname=clone_of.hostname, machine_id=clone_of.machine_id,
                    identity=clone_of.identity, record_key=clone_of.record_key, agent_id=clone_of.agent_id)
    assert clone_of.notices().status_code == 200 and twin.notices().status_code == 200
    assert clone_of.notices().status_code == 409  # the first boot id came back: clone suspected
    ids: dict[str, int] = {}
    with collector.login() as admin:
        for unit in (unit_a, unit_b):
            for f in admin.get("/api/v1/findings", params={"unit": unit}).json()["items"]:
                ids[f["finding_id"]] = f["id"]
    assert {"a-ssh", "a-crit", "b-secret"} <= set(ids)
    users = {f"view-{unit_a}": _add_user(collector, f"view-{unit_a}", "viewer", unit_a),
             f"oper-{unit_a}": _add_user(collector, f"oper-{unit_a}", "operator", unit_a)}
    return World(unit_a, unit_b, agent_a, agent_b, ids, users)


def _login(page: Any, collector: Collector, user: str, password: str, target: str = "/ui/overview") -> None:
    page.goto(collector.url + target)
    assert "/ui/login" in page.url  # no session yet: the login form, coming back here afterwards
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("form.login button[type=submit]")
    assert page.url.startswith(collector.url + target), page.url


def _api_finding(collector: Collector, row_id: int) -> dict[str, Any]:
    with collector.login() as admin:
        r = admin.get(f"/api/v1/findings/{row_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())


def _form_session(collector: Collector, user: str, password: str) -> httpx.Client:
    """Log in through the dashboard's form over HTTPS (as a browser does, without one)."""
    client = collector.http()
    form = client.get("/ui/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf
    r = client.post("/ui/login", data={"csrf": csrf.group(1), "username": user, "password": password,
                                       "next": "/ui/overview"})
    assert r.status_code == 303 and r.headers["location"] == "/ui/overview", r.text
    return client


def _csrf(client: httpx.Client, path: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert match
    return match.group(1)


def test_operator_sees_ingested_findings_acts_and_reads_the_report(collector: Collector, browser: Any,
                                                                   world: World) -> None:
    context = browser.new_context(ignore_https_errors=True, locale="en-US")
    page = context.new_page()
    user = f"oper-{world.unit_a}"
    _login(page, collector, user, world.users[user], f"/ui/overview?unit={world.unit_a}")
    cookie = next(c for c in context.cookies() if c["name"] == "precaution_session")
    assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (True, True, "Strict")

    # the overview: findings by severity (the wiped record added a critical one), alerts, agents by state
    assert "Overview of " + world.unit_a in page.inner_text("h1")
    figures = page.inner_text("main")
    assert re.search(r"critical\s+2", figures) and re.search(r"high\s+1", figures), figures
    assert "record wiped" in figures and "clone suspected" in figures
    assert re.search(r"clone suspected\s+1", figures) and re.search(r"online\s+2", figures), figures
    assert world.agent_b.hostname not in figures

    # the findings list with a filter, then one finding with its suggestion in both languages
    page.goto(f"{collector.url}/ui/findings?unit={world.unit_a}&severity=high")
    rows = page.locator("table.list tbody tr")
    assert rows.count() == 1 and "finding a-ssh" in rows.first.inner_text()
    rows.first.locator("a").first.click()
    assert page.url.endswith(f"/ui/findings/{world.ids['a-ssh']}")
    assert page.inner_text(".suggestion-en").count("fix it") == 1
    assert "整改" in page.inner_text(".suggestion-zh-CN") and "问题 a-ssh" in page.inner_text(".suggestion-zh-CN")
    assert page.inner_text("#state") == "open"

    # a forged CSRF token is refused and changes nothing
    form = page.locator("form.action-rectification_ordered")
    form.locator("input[name=csrf]").evaluate("e => e.value = 'forged'")
    form.locator("textarea[name=note]").fill("forged order")
    with page.expect_navigation() as nav:
        form.locator("button").click()
    assert nav.value.status == 403 and "security token" in page.inner_text("main")
    assert _api_finding(collector, world.ids["a-ssh"])["state"] == "open"

    # the real action, through the same lifecycle code as the API: state, deadline and the audit entry
    page.goto(f"{collector.url}/ui/findings/{world.ids['a-ssh']}")
    page.fill("form.action-rectification_ordered textarea[name=note]", "disable password login on db01")
    page.click("form.action-rectification_ordered button")
    assert page.url.endswith("?saved=1") and page.inner_text("#state") == "rectification ordered"
    audit = page.inner_text("#audit")
    assert "disable password login on db01" in audit and user in audit and "rectification ordered" in audit
    api = _api_finding(collector, world.ids["a-ssh"])
    assert api["state"] == "rectification_ordered" and api["deadline"]
    assert api["audit"][-1]["actor"] == user and api["audit"][-1]["note"].startswith("disable password login")

    # risk acceptance needs an approver and an expiry date (the end of that day)
    page.goto(f"{collector.url}/ui/findings/{world.ids['a-crit']}")
    page.fill("form.action-risk_accepted textarea[name=note]", "kernel update in the spring window")
    page.fill("form.action-risk_accepted input[name=approver]", "CISO")
    page.fill("form.action-risk_accepted input[name=expires]", "2099-03-31")
    page.click("form.action-risk_accepted button")
    assert page.inner_text("#state") == "risk accepted"
    assert _api_finding(collector, world.ids["a-crit"])["accepted_until"].startswith("2099-03-31T15:59:59")

    # the printable report lists the ordered finding with its deadline; then the whole UI in Chinese
    page.goto(f"{collector.url}/ui/report?unit={world.unit_a}")
    assert "finding a-ssh" in page.inner_text("main")
    page.click("a[hreflang=zh-CN]")
    assert page.url.endswith(f"/ui/report?unit={world.unit_a}")
    text = page.inner_text("main")
    assert f"{world.unit_a} 整改情况报告" in text and "问题 a-ssh" in text and "已责令整改" in text
    allowed = data_words([world.unit_a, world.agent_a.hostname, "PC-SSH-004", "PC-KERN-001", "a-ssh", "a-crit"])
    assert not english_words(text, allowed), english_words(text, allowed)
    page.goto(f"{collector.url}/ui/findings?unit={world.unit_a}&state=all")
    # the collector's own record finding has the subject "record of agent <id>": data, shown as stored
    assert not english_words(page.inner_text("main"), allowed | data_words(["record of agent"]))
    assert "发现问题" in page.inner_text("h1")

    # logging out ends the session (in the language chosen)
    page.click("form.logout button")
    assert "/ui/login" in page.url and "您已退出登录" in page.inner_text("main")
    page.goto(f"{collector.url}/ui/overview")
    assert "/ui/login" in page.url
    context.close()


def test_a_viewer_sees_only_its_unit(collector: Collector, browser: Any, world: World) -> None:
    context = browser.new_context(ignore_https_errors=True, locale="en-US")
    page = context.new_page()
    user = f"view-{world.unit_a}"
    _login(page, collector, user, world.users[user], "/ui/findings?state=all")
    listed = page.inner_text("main")
    assert "finding a-ssh" in listed and "finding b-secret" not in listed
    assert world.unit_b not in page.inner_text("select[name=unit]")
    b_finding = world.ids["b-secret"]
    assert page.goto(f"{collector.url}/ui/findings/{b_finding}").status == 404
    assert "finding b-secret" not in page.content()
    assert page.goto(f"{collector.url}/ui/hosts/{world.agent_b.agent_id}").status == 404
    for path in ("overview", "report", "work", "findings"):
        assert page.goto(f"{collector.url}/ui/{path}?unit={world.unit_b}").status == 403, path
        assert world.agent_b.hostname not in page.content()
    page.goto(f"{collector.url}/ui/findings/{world.ids['a-ssh']}")
    assert page.locator("form.action").count() == 0 and "need the operator role" in page.inner_text("main")
    context.close()

    # over plain HTTPS with the cookie session: the same answers, and a viewer cannot act even with a valid token
    with _form_session(collector, user, world.users[user]) as viewer:
        assert viewer.get(f"/ui/findings/{b_finding}").status_code == 404
        assert viewer.get("/ui/report", params={"unit": world.unit_b}).status_code == 403
        csrf = _csrf(viewer, f"/ui/findings/{world.ids['a-crit']}")
        r = viewer.post(f"/ui/findings/{world.ids['a-crit']}/transition",
                        data={"csrf": csrf, "to": "false_positive", "note": "not mine to decide"})
        assert r.status_code == 403
    with _form_session(collector, f"oper-{world.unit_a}", world.users[f"oper-{world.unit_a}"]) as operator:
        csrf = _csrf(operator, "/ui/overview")
        r = operator.post(f"/ui/findings/{b_finding}/transition",
                          data={"csrf": csrf, "to": "false_positive", "note": "another unit's finding"})
        assert r.status_code == 404
    b = _api_finding(collector, b_finding)
    assert b["state"] == "open" and b["audit"] == []
    assert _api_finding(collector, world.ids["a-crit"])["state"] != "false_positive"


def test_forms_without_a_matching_token_or_from_another_site_are_refused(collector: Collector, browser: Any,
                                                                         world: World) -> None:
    user, password = f"oper-{world.unit_a}", world.users[f"oper-{world.unit_a}"]
    target = world.ids["a-ssh"]
    before = _api_finding(collector, target)
    with collector.http() as anonymous:  # the login form itself: a double-submit token
        r = anonymous.post("/ui/login", data={"csrf": "x", "username": user, "password": password})
        assert r.status_code == 403 and "precaution_session" not in r.headers.get("set-cookie", "")
    with _form_session(collector, user, password) as operator, _form_session(collector, user, password) as other:
        path = f"/ui/findings/{target}/transition"
        fields = {"to": "false_positive", "note": "csrf probe"}
        assert operator.post(path, data=fields).status_code == 403  # no token
        assert operator.post(path, data={**fields, "csrf": "0" * 64}).status_code == 403  # a wrong one
        other_token = _csrf(other, "/ui/overview")
        assert operator.post(path, data={**fields, "csrf": other_token}).status_code == 403  # another session's
        own = _csrf(operator, "/ui/overview")
        r = operator.post(path, data={**fields, "csrf": own}, headers={"Origin": "https://evil.example"})
        assert r.status_code == 403  # the right token from another origin
        assert operator.post("/ui/logout", data={}).status_code == 403
        assert operator.get("/ui/overview").status_code == 200  # still logged in
        csrf = html.unescape(own)
    after = _api_finding(collector, target)
    assert after["state"] == before["state"] and after["audit"] == before["audit"]

    # a page of another site posting to the collector: the SameSite=Strict cookie is not sent, so no session
    context = browser.new_context(ignore_https_errors=True, locale="en-US")
    page = context.new_page()
    _login(page, collector, user, password)
    page.goto("about:blank")  # an opaque origin, not the collector's
    page.set_content(f'<form method="post" action="{collector.url}{path}"><input name="csrf" value="{csrf}">'
                     '<input name="to" value="false_positive"><input name="note" value="cross-site">'
                     '<button>go</button></form>')
    with page.expect_navigation():
        page.click("button")
    assert "/ui/login" in page.url
    assert _api_finding(collector, target)["audit"] == before["audit"]
    context.close()


def test_findings_pages_go_most_severe_first_without_gaps_or_repeats(collector: Collector) -> None:
    """The unit-wide list reads one severity at a time (its own index range): across a page boundary that falls
    inside a severity, every finding appears once, critical first."""
    unit = unit_name()
    sim = collector.agent(unit, hostname=f"{unit}-h1")
    severities = ["critical"] * 7 + ["high"] * 31 + ["medium"] * 12 + ["low"] * 9 + ["info"] * 4  # 63: 2 pages
    found = [finding(f"p{i:02d}", host=sim.hostname, severity=sev, subject=f"item {i}")
             for i, sev in enumerate(severities)]
    assert sim.ingest(sim.batch(runs=[run("rp1", found, host=sim.hostname)])).status_code == 200
    order = ("critical", "high", "medium", "low", "info")
    seen: list[tuple[str, int]] = []
    with _form_session(collector, "admin", collector.admin_password) as viewer:
        for page_no in (1, 2):
            text = viewer.get("/ui/findings", params={"unit": unit, "page": str(page_no)}).text
            assert f"Page {page_no} of 2 (63 findings)" in text
            rows = re.findall(r'class="sev sev-(\w+)">.*?/ui/findings/(\d+)"', text, re.S)
            seen += [(sev, int(fid)) for sev, fid in rows]
    assert len(seen) == 63 and len({fid for _, fid in seen}) == 63
    assert [order.index(sev) for sev, _ in seen] == sorted(order.index(sev) for sev, _ in seen)
    assert [sev for sev, _ in seen] == severities  # each severity complete, in rank order


def test_notices_tasks_and_host_pages(collector: Collector) -> None:
    """A notice with the agent's acknowledgement and its time, the tasks by state, and one host's runs."""
    unit = unit_name()
    sim = collector.agent(unit, hostname=f"{unit}-gw1")
    now = dt.datetime.now(dt.UTC)
    assert sim.ingest(sim.batch(runs=[run("rh1", [finding("h-1", host=sim.hostname)], host=sim.hostname)])
                      ).status_code == 200
    with collector.login() as admin:
        notice = admin.post("/api/v1/notices", json={
            "unit": unit, "targets": ["10.231.0.0/24"], "kinds": ["portscan"], "lead_time_s": 0,
            "start": iso(now + dt.timedelta(hours=1)), "end": iso(now + dt.timedelta(hours=9))}).json()
        r = admin.post("/api/v1/tasks", json={"unit": unit, "notice_id": notice["id"], "tests": ["portscan"],
                                              "targets": ["10.231.0.0/24"]})
        assert r.status_code == 200, r.text
    delivered = sim.notices().json()["notices"]
    ack = {"notice_id": notice["id"], "digest": notice_digest(delivered[0]), "acknowledged_at": iso(now),
           "actor": "ops@gw1"}
    assert sim.ingest(sim.batch(acks=[ack])).json()["items"][0]["status"] == "accepted"
    with _form_session(collector, "admin", collector.admin_password) as browser:
        work = browser.get("/ui/work", params={"unit": unit}).text
        assert notice["id"] in work and "10.231.0.0/24" in work
        acks = re.search(r'<span class="ack">([^<]+)</span>', work)
        assert acks and acks.group(1).startswith(f"{sim.hostname} (")  # who acknowledged, and when
        assert re.search(r"queued</td><td class=\"num\">1<", work)
        host = browser.get(f"/ui/hosts/{sim.agent_id}").text
        assert "rh1" in host and "finding h-1" in host and "online" in host
