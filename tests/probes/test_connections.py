from __future__ import annotations

import os
import socket

import pytest

from probes.base import GatherContext
from probes.host.connections import ConnectionsProbe
from probes.observation import Observation
from probes.transport import LocalTransport
from tests.probes.golden import FIXTURES, cases, check_case


@pytest.mark.parametrize("raw_path", cases("connections"), ids=lambda p: p.name)
def test_golden(raw_path):
    check_case("connections", raw_path)


def test_golden_compromised_facts():
    rows = {o.subject: o.attrs for o in check_case("connections", FIXTURES / "connections" /
                                                   "compromised-host.raw.json")}
    assert rows["tcp|198.51.100.20|443|/opt/frp_0.52.3_linux_amd64/frpc"]["count"] == 2
    assert rows["tcp|192.0.2.66|3333|/dev/shm/.x/kswapd0"]["exe_deleted"]
    assert rows["tcp|192.0.2.99|8443|/tmp/.ICE-unix/dbus-daemon"]["state"] == "SYN_SENT"
    # An IPv4-mapped IPv6 address is shown as IPv4.
    assert rows["tcp|198.51.100.77|443|/usr/local/bin/cloudflared"]["local_addr"] == "10.1.2.3"
    assert "udp|192.0.2.53|53|/usr/lib/systemd/systemd-resolved" in rows
    # Inbound (accepted by sshd or postgres) and TIME_WAIT connections are not outbound connections.
    assert not any(a["process"] in ("sshd", "postgres") for a in rows.values())


def _gather() -> list[Observation]:
    return ConnectionsProbe().observe(GatherContext(LocalTransport()))


def test_live_loopback_connection_owned_by_this_process():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    peer, _ = server.accept()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.connect(("127.0.0.1", 9))  # connect() on UDP sends nothing
    try:
        obs = _gather()
        mine = [o for o in obs if o.attrs["remote_port"] == port and o.attrs["proto"] == "tcp"]
        assert len(mine) == 1
        attrs = mine[0].attrs
        assert attrs["pid"] == os.getpid() and attrs["loopback"] and attrs["state"] == "ESTABLISHED"
        assert attrs["local_port"] == client.getsockname()[1] and "local_port" in mine[0].volatile
        assert str(attrs["process"]).startswith(("python", "pytest"))
        assert mine[0].subject == f"tcp|127.0.0.1|{port}|{attrs['exe']}"
        # The accepted side has the listening port as its local port: inbound, not reported.
        assert not [o for o in obs if o.attrs["remote_port"] == client.getsockname()[1]]
        assert [o for o in obs if o.attrs["proto"] == "udp" and o.attrs["remote_port"] == 9
                and o.attrs["pid"] == os.getpid()]
    finally:
        for s in (client, peer, server, udp):
            s.close()
    assert not [o for o in _gather() if o.attrs["remote_port"] == port and o.attrs["pid"] == os.getpid()
                and o.attrs["state"] == "ESTABLISHED" and o.attrs["proto"] == "tcp"]


def test_connections_are_judged_by_rules_but_never_baseline_state():
    """A client connection that comes and goes is no drift (quiet host); the rules still see it."""
    from baselines.diff import diff, index
    from probes.host.connections import Connection
    from probes.observation import Observation

    row = Connection(proto="tcp", remote_addr="127.0.0.1", remote_port=6379, program="/usr/bin/redis-cli",
                     process="redis-cli", exe="/usr/bin/redis-cli", exe_dir="/usr/bin", exe_deleted=False, uid=0,
                     state="ESTABLISHED", local_addr="127.0.0.1", local_port=40000, loopback=True, pid=7, count=1)
    obs = Observation.from_row("connections", row)
    assert obs.in_rules and not obs.in_baseline
    assert index([obs]) == {} and diff([], [obs]).empty
