"""`make demo`: the whole loop on this machine, on loopback only.

A collector on SQLite (TLS with its own CA), one agent enrolled with a one-time token, a self-inspection and a
loopback network test run by the agent's scheduler, pushed through its spool, and the collector's view of the
findings. State lives in ``state/demo`` (``DEMO_HOME`` overrides it); a second run reuses it. Ctrl-C stops the
agent and the collector cleanly. ``--once`` stops them after the summary (for a scripted check).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LISTEN = "127.0.0.1:18443"
METRICS = "127.0.0.1:19847"
UNIT = "demo-unit"


def say(text: str) -> None:
    sys.stdout.write(f"== {text}\n")
    sys.stdout.flush()


def run(argv: list[str], env: dict[str, str], what: str) -> str:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(f"demo: {what} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
        raise SystemExit(2)
    return proc.stdout


def private_write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def set_up_collector(home: Path, env: dict[str, str]) -> str:
    """Initialise once; the first admin's password (printed once by init) is kept for the demo's API calls."""
    password_file = home.parent / "collector-admin.password"
    if not (home / "config.toml").exists():
        say(f"precaution-collector init (state in {home})")
        out = run([str(BIN / "precaution-collector"), "init", "--listen", LISTEN], env, "collector init")
        match = re.search(r"password \(shown once\)[^:]*:\s*(\S+)", out)
        if not match:
            sys.stderr.write(f"demo: no admin password in the init output:\n{out}")
            raise SystemExit(2)
        private_write(password_file, match.group(1))
    return password_file.read_text().strip()


def wait_for(url: str, ca: Path | None, proc: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    import ssl

    context = ssl.create_default_context(cafile=str(ca)) if ca else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.stderr.write(f"demo: {what} exited with {proc.returncode}\n")
            raise SystemExit(2)
        try:
            with urllib.request.urlopen(url, timeout=2, context=context):
                return
        except OSError:
            time.sleep(0.3)
    sys.stderr.write(f"demo: {what} did not answer at {url} within {timeout:.0f} s\n")
    raise SystemExit(2)


def metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{", 1)[0] != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="stop after the summary instead of waiting for Ctrl-C")
    args = parser.parse_args()
    demo = Path(os.environ.get("DEMO_HOME") or ROOT / "state" / "demo").resolve()
    demo.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(demo, 0o700)
    collector_home = demo / "collector"
    agent_home = demo / "agent"
    env = {**os.environ, "PRECAUTION_COLLECTOR_HOME": str(collector_home), "PRECAUTION_HOME": str(agent_home)}
    password = set_up_collector(collector_home, env)
    ca = collector_home / "ca.crt"
    url = f"https://{LISTEN}"

    agent_toml = demo / "agent.toml"
    if not agent_toml.exists():
        private_write(agent_toml, f"""# The demo agent: loopback only, every schedule due at once.
[schedule.self_inspection]
interval = "1h"
splay = 0

[schedule.own_networks]
interval = "1h"
splay = 0

[self_inspection]
own_networks = ["127.0.0.0/8"]

[metrics]
listen = "{METRICS}"
""")
    children: list[subprocess.Popen[bytes]] = []

    def stop_all(*_: object) -> None:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in reversed(children):
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()

    logs = demo / "logs"
    logs.mkdir(exist_ok=True, mode=0o700)
    try:
        say(f"precaution-collector serve on {url} (SQLite, TLS with its own CA)")
        with (logs / "collector.log").open("ab") as out:
            children.append(subprocess.Popen([str(BIN / "precaution-collector"), "serve", "--listen", LISTEN,
                                              "--log-level", "warning"], env=env, stdout=out, stderr=out))
        wait_for(f"{url}/readyz", ca, children[-1], "the collector")

        if not (agent_home / "identity" / "enrolment.json").exists():
            token = run([str(BIN / "precaution-collector"), "token", "create", "--unit", UNIT], env,
                        "token create").strip()
            say(f"precaution agent enroll {url} --token … --ca {ca}")
            sys.stdout.write(run([str(BIN / "precaution"), "agent", "enroll", url, "--token", token, "--ca",
                                  str(ca), "--unit", UNIT, "--config", str(agent_toml)], env, "agent enroll"))
        else:
            say("agent already enrolled (state reused)")

        say("precaution agent run: self-inspection and a loopback network test, pushed through the spool")
        with (logs / "agent.log").open("ab") as out:
            children.append(subprocess.Popen([str(BIN / "precaution"), "agent", "run", "--config", str(agent_toml)],
                                             env=env, stdout=out, stderr=out))
        metrics_url = f"http://{METRICS}/metrics"
        wait_for(metrics_url, None, children[-1], "the agent")
        deadline = time.monotonic() + 300
        while True:
            if children[-1].poll() is not None:
                if children[-1].returncode in (0, -signal.SIGINT, -signal.SIGTERM):
                    return 130  # Ctrl-C reached the agent first: it stopped cleanly
                sys.stderr.write(f"demo: the agent exited with {children[-1].returncode}; see {logs / 'agent.log'}\n")
                return 2
            with urllib.request.urlopen(metrics_url, timeout=5) as resp:
                text = resp.read().decode()
            ran = metric(text, "precaution_agent_last_successful_run_timestamp_seconds", kind="self_inspection")
            pushed = metric(text, "precaution_agent_last_successful_push_timestamp_seconds")
            depth = metric(text, "precaution_agent_spool_items") or 0.0
            if ran and pushed and pushed >= ran and depth == 0:
                break
            if time.monotonic() > deadline:
                sys.stderr.write(f"demo: no self-inspection pushed within 300 s; see {logs / 'agent.log'}\n")
                return 2
            time.sleep(1)

        import httpx

        with httpx.Client(base_url=url, verify=str(ca), timeout=30) as api:
            login = api.post("/api/v1/auth/login", json={"username": "admin", "password": password})
            login.raise_for_status()
            api.headers["Authorization"] = f"Bearer {login.json()['token']}"
            summary = api.get("/api/v1/findings/summary", params={"unit": UNIT})
            summary.raise_for_status()
            body = summary.json()
        active = body.get("active", {})
        counts = ", ".join(f"{k} {active.get(k, 0)}" for k in ("critical", "high", "medium", "low", "info"))
        say(f"findings at the collector for unit {UNIT}: {counts}; overdue rectifications: {body.get('overdue', 0)}")
        sys.stdout.write(f"   collector:      {url}  (API docs {url}/docs, CA {ca}; admin password in "
                         f"{demo / 'collector-admin.password'})\n")
        sys.stdout.write(f"   agent metrics:  {metrics_url}\n")
        sys.stdout.write(f"   agent status:   PRECAUTION_HOME={agent_home} {BIN / 'precaution'} agent status "
                         f"--config {agent_toml}\n")
        sys.stdout.write(f"   logs:           {logs}\n")
        if args.once:
            return 0
        say("running; Ctrl-C stops the agent and the collector")
        while all(child.poll() is None for child in children):
            time.sleep(1)
        sys.stderr.write(f"demo: a process stopped by itself; see {logs}\n")
        return 2
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all()
        sys.stdout.write("== stopped\n")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(main())
