"""The default profile's ACC, SUDO, SSH, PROC and CONN rules over golden observations and live facts: exactly
which rules fire for which subjects."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile

import pytest

from baselines.evaluate import evaluate
from baselines.model import ActionKind
from baselines.profile import Profile, load_profile
from probes.base import GatherContext
from probes.host.connections import ConnectionsProbe
from probes.host.processes import ProcessesProbe
from probes.observation import Observation
from probes.registry import get_probe
from probes.transport import LocalTransport
from tests.probes.golden import FIXTURES
from tests.spawn import spawn

PREFIXES = ("PC-ACC-", "PC-SUDO-", "PC-SSH-", "PC-PROC-", "PC-CONN-")


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile()


def _observations(probe_id: str, case: str) -> list[Observation]:
    raw = json.loads((FIXTURES / probe_id / f"{case}.raw.json").read_text(encoding="utf-8"))
    return [Observation.from_row(probe_id, row) for row in get_probe(probe_id).parse(raw)]


def _fired(profile: Profile, probe_id: str, observations: list[Observation]) -> set[tuple[str, str]]:
    evaluation = evaluate(profile, observations, "host-a", {probe_id})
    return {(f.rule_id, f.subject) for f in evaluation.findings if f.rule_id.startswith(PREFIXES)}


def test_rules_are_complete(profile):
    mine = [r for r in profile.rules if r.id.startswith(PREFIXES)]
    assert len(mine) >= 20
    for rule in mine:
        assert rule.title.en and rule.title.zh and rule.rationale.zh and rule.remediation.steps.zh
        assert any(ref.startswith("Art.") for ref in rule.references)
        assert rule.probe in ("accounts", "sudoers", "sshd", "authorized_keys", "processes", "connections")
        assert isinstance(rule.remediation.action, ActionKind) and rule.remediation.command


CASES = {
    ("accounts", "compromised-el"): {
        ("PC-ACC-001", "toor"),
        ("PC-ACC-002", "guest"),
        ("PC-ACC-003", "toor"), ("PC-ACC-003", "legacy"), ("PC-ACC-003", "inline"),
        ("PC-ACC-004", "ftp"),
        ("PC-ACC-005", "www-data"), ("PC-ACC-005", "ftp"),
        ("PC-ACC-006", "inline"),
        ("PC-ACC-007", "root"), ("PC-ACC-007", "toor"), ("PC-ACC-007", "legacy"), ("PC-ACC-007", "oldunix"),
        ("PC-ACC-007", "gost"), ("PC-ACC-007", "scrypt"),
    },
    ("accounts", "debian12-host"): {("PC-ACC-005", "postgres")},
    ("accounts", "no-shadow-rhel6"): {("PC-ACC-005", "web")},  # uid 499 < UID_MIN 500 from login.defs
    ("sudoers", "debian12-stock"): set(),
    ("sudoers", "debian12-host"): set(),
    ("sudoers", "cloud-mixed"): {
        ("PC-SUDO-001", "/etc/sudoers.d/90-cloud-init-users|ubuntu ALL=(ALL) NOPASSWD:ALL"),
        ("PC-SUDO-002", "/etc/sudoers.d/deploy|deploy ALL=(root) NOPASSWD: DEPLOY"),
        ("PC-SUDO-002", "/etc/sudoers.d/developers|#1005 ALL = (ALL) NOPASSWD: /usr/bin/rsync"),
        ("PC-SUDO-002", "/etc/sudoers.d/operator|operator ALL = (ALL) NOPASSWD: /bin/ls, PASSWD: /bin/cat : "
                        "dbhost = (postgres) NOPASSWD: /usr/bin/psql"),
        ("PC-SUDO-003", "/etc/sudoers.local|Defaults:backup !authenticate"),
        ("PC-SUDO-004", "/etc/sudoers.d/developers|%developers ALL=(ALL:ALL) ALL"),
        ("PC-SUDO-005", "/etc/sudoers.d/90-cloud-init-users|ubuntu ALL=(ALL) NOPASSWD:ALL"),
        ("PC-SUDO-005", "/etc/sudoers.d/deploy|svc ALL = EVERYTHING"),
    },
    ("sshd", "debian12-host"): {
        ("PC-SSH-002", "permitrootlogin"), ("PC-SSH-003", "passwordauthentication"),
        ("PC-SSH-005", "x11forwarding"), ("PC-SSH-006", "maxauthtries"),
    },
    ("sshd", "debian12-files"): {
        ("PC-SSH-002", "permitrootlogin"), ("PC-SSH-003", "passwordauthentication"),
        ("PC-SSH-005", "x11forwarding"), ("PC-SSH-006", "maxauthtries"),
    },
    ("sshd", "files-hardened"): set(),
    ("sshd", "files-weak"): {
        ("PC-SSH-001", "permitrootlogin"),
        ("PC-SSH-002", "permitrootlogin [Match Address 10.0.0.0/8]"),
        ("PC-SSH-003", "passwordauthentication"), ("PC-SSH-003", "passwordauthentication [Match User backup]"),
        ("PC-SSH-004", "permitemptypasswords"), ("PC-SSH-005", "x11forwarding"), ("PC-SSH-006", "maxauthtries"),
        ("PC-SSH-007", "ciphers"), ("PC-SSH-008", "macs"), ("PC-SSH-009", "kexalgorithms"),
        ("PC-SSH-010", "protocol"), ("PC-SSH-011", "ignorerhosts"), ("PC-SSH-012", "permituserenvironment"),
    },
    ("authorized_keys", "debian12-host"): set(),
    ("authorized_keys", "mixed-keys"): {
        ("PC-SSH-013", "root|/root/.ssh/authorized_keys|SHA256:DNafhu5CyTYcjuQ+qVVrSTFtLo0MeRrEfcwXrPeuDq0"),
        ("PC-SSH-014", "alice|/home/alice/.ssh/authorized_keys2|SHA256:Uxyfv82laslkBa8CjT0vU15RMkNhFhqCaI5Dq7vFBAY"),
        ("PC-SSH-015", "root|/root/.ssh/authorized_keys|SHA256:BA0GZi/sXfvZbGXsdJAk5UvYiSEUdoGnKY/tr3PIHYE"),
    },
    ("processes", "debian12-host"): set(),
    ("connections", "debian12-host"): set(),
    ("connections", "compromised-host"): {
        ("PC-CONN-001", "tcp|192.0.2.66|3333|/dev/shm/.x/kswapd0"),
        ("PC-CONN-001", "tcp|192.0.2.99|8443|/tmp/.ICE-unix/dbus-daemon"),
        ("PC-CONN-002", "tcp|192.0.2.66|3333|/dev/shm/.x/kswapd0"),
        ("PC-CONN-003", "tcp|203.0.113.7|4444|/usr/bin/bash"),
        ("PC-CONN-004", "tcp|198.51.100.20|443|/opt/frp_0.52.3_linux_amd64/frpc"),
        ("PC-CONN-004", "tcp|198.51.100.77|443|/usr/local/bin/cloudflared"),
        ("PC-CONN-004", "udp|198.51.100.20|7001|/opt/frp_0.52.3_linux_amd64/frpc"),
        ("PC-CONN-005", "tcp|192.0.2.66|3333|/dev/shm/.x/kswapd0"),
        ("PC-CONN-005", "tcp|203.0.113.7|4444|/usr/bin/bash"),
    },
}


@pytest.mark.parametrize("probe_id,case", sorted(CASES), ids=lambda v: str(v))
def test_rules_fire_exactly(profile, probe_id, case):
    assert _fired(profile, probe_id, _observations(probe_id, case)) == CASES[(probe_id, case)]


def test_process_rules_on_compromised_host(profile):
    fired = _fired(profile, "processes", _observations("processes", "compromised-host"))
    by_rule: dict[str, set[str]] = {}
    for rule_id, subject in fired:
        by_rule.setdefault(rule_id, set()).add(subject.split("|")[1])  # the comm
    assert by_rule == {
        "PC-PROC-001": {"bash"},  # the reverse shell (stdin tcp), not alice's login bash (tty)
        "PC-PROC-002": {"sh"},
        "PC-PROC-003": {"sh", "python3"},
        "PC-PROC-004": {"kswapd0"},
        "PC-PROC-005": {"memfd:x"},
        "PC-PROC-006": {"kswapd0", "dbus-daemon", "x"},
        "PC-PROC-007": {"ngrok", "frpc", "frps", "npc", "chisel", "cloudflared", "gost"},
        "PC-PROC-008": {"teamviewerd", "ToDesk_Service", "rustdesk", "anydesk", "sunloginclient"},
        "PC-PROC-009": {"ssh"},
        "PC-PROC-010": {"nc", "ncat", "socat"},
    }


def test_remediation_is_filled_from_evidence(profile):
    evaluation = evaluate(profile, _observations("accounts", "compromised-el"), "host-a", {"accounts"})
    toor = next(f for f in evaluation.findings if f.rule_id == "PC-ACC-001")
    assert toor.remediation.command == "usermod -L toor" and toor.severity.value == "critical"
    assert "toor" in toor.remediation.steps.en and "toor" in toor.remediation.steps.zh
    assert "<redacted>" not in json.dumps([f.to_json() for f in evaluation.findings])


def test_live_process_in_tmp_with_connection_fires(profile):
    """Real parts: a copy of sleep run from /tmp fires PC-PROC-006; a shell whose stdin is a TCP connection fires
    PC-PROC-001; this process's loopback connection fires none of the connection rules."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    with tempfile.TemporaryDirectory(prefix="precaution-rules-", dir="/tmp") as tmp:
        exe = os.path.join(tmp, "sleepy")
        shutil.copy2(shutil.which("sleep") or "/bin/sleep", exe)
        sleeper = spawn([exe, "300"], stdin=subprocess.DEVNULL)
        shell = spawn(["/bin/sh"], stdin=peer.fileno(), stdout=subprocess.DEVNULL)
        try:
            procs = ProcessesProbe().observe(GatherContext(LocalTransport()))
            conns = ConnectionsProbe().observe(GatherContext(LocalTransport()))
        finally:
            for p in (sleeper, shell):
                p.kill()
                p.wait()
            for s in (client, peer, server):
                s.close()
    by_pid = {o.attrs["pid"]: o.subject for o in procs}
    fired = _fired(profile, "processes", procs)
    assert ("PC-PROC-006", by_pid[sleeper.pid]) in fired
    assert ("PC-PROC-001", by_pid[shell.pid]) in fired
    mine = {o.subject for o in conns if o.attrs["pid"] == os.getpid()}
    assert mine and not {s for _, s in _fired(profile, "connections", conns)} & mine
