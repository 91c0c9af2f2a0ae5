from __future__ import annotations

import socket

import pytest

from probes.base import GatherContext
from probes.host.listeners import ListenersProbe
from probes.procfs import hex_to_addr
from probes.transport import LocalTransport
from tests.probes.golden import cases, check_case


@pytest.mark.parametrize("raw_path", cases("listeners"), ids=lambda p: p.name)
def test_golden(raw_path):
    check_case("listeners", raw_path)


def test_hex_addresses():
    assert hex_to_addr("0100007F") == "127.0.0.1"
    assert hex_to_addr("00000000") == "0.0.0.0"
    assert hex_to_addr("00000000000000000000000001000000") == "::1"
    assert hex_to_addr("0000000000000000FFFF00000100007F") == "::ffff:127.0.0.1"


def test_live_listener_found_with_owner():
    """A real socket on loopback shows up with this process as owner, and is gone once closed."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    probe = ListenersProbe()
    try:
        rows = probe.parse(probe.gather(GatherContext(LocalTransport())))
        mine = [r for r in rows if r.port == port and r.proto == "tcp"]
        assert len(mine) == 1
        assert mine[0].address == "127.0.0.1" and mine[0].loopback and not mine[0].wildcard
        assert mine[0].process.startswith(("python", "pytest"))
    finally:
        sock.close()
    rows = probe.parse(probe.gather(GatherContext(LocalTransport())))
    assert not [r for r in rows if r.port == port and r.proto == "tcp"]
