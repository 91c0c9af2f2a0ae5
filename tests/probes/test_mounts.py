from __future__ import annotations

import pytest

from probes.base import GatherContext
from probes.host.mounts import MountsProbe, parse_mountinfo, unescape
from probes.transport import LocalTransport
from tests.probes.golden import FIXTURES, cases, check_case
from tests.probes.hostb_util import probe_json


@pytest.mark.parametrize("raw_path", cases("mounts"), ids=lambda p: p.name)
def test_golden(raw_path):
    check_case("mounts", raw_path)


def test_usb_media_and_filtering():
    rows = {o.subject: o.attrs for o in check_case("mounts", FIXTURES / "mounts" / "desktop-usb-media.raw.json")}
    assert rows["/media/alice/KINGSTON"]["removable"] and rows["/media/alice/KINGSTON"]["usb"]
    assert rows["/media/alice/Backup Disk"]["usb"]  # removable flag 0, but on a USB bus
    assert not rows["/home"]["removable"] and rows["/home"]["nodev"]
    assert rows["/tmp"]["noexec"] and "/run/user/1000" in rows
    assert not {"/run", "/run/lock", "/sys", "/proc", "/snap/core22/1122", "/sys/fs/cgroup"} & set(rows)


def test_unescape_and_mountinfo():
    assert unescape(r"/media/a\040b") == "/media/a b"
    (e,) = parse_mountinfo("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue")
    assert (e.mount_point, e.device, e.fstype, e.options) == ("/mnt2", "98:0", "ext3", ("rw", "noatime"))


def test_live_root_fs():
    probe = MountsProbe()
    rows = {r.mount_point: r for r in probe.parse(probe.gather(GatherContext(LocalTransport())))}
    assert "/" in rows and rows["/"].device and not rows["/"].device.startswith("0:")


def test_live_private_mount_namespace():
    """tmpfs on /dev/shm with nodev,nosuid,noexec, mounted only inside a private mount namespace.
    (Not /tmp: the checkout, and so the venv running the probe, may itself live under /tmp.)"""
    out = probe_json(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                      'mount -t tmpfs -o nodev,nosuid,noexec,size=1m tmpfs /dev/shm && exec "$0" "$@"'], "mounts")
    rows = {o["subject"]: o["attrs"] for o in out["observations"]}
    assert rows["/dev/shm"]["fstype"] == "tmpfs"
    assert rows["/dev/shm"]["nodev"] and rows["/dev/shm"]["nosuid"] and rows["/dev/shm"]["noexec"]
