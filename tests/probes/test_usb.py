from __future__ import annotations

import json
import os

import pytest

from probes.base import GatherContext
from probes.host.usb import UsbProbe
from probes.transport import LocalTransport
from tests.probes.golden import FIXTURES, cases, check_case


@pytest.mark.parametrize("raw_path", cases("usb"), ids=lambda p: p.name)
def test_golden(raw_path):
    check_case("usb", raw_path)


def test_categories_and_subjects():
    rows = {o.subject: o.attrs for o in check_case("usb", FIXTURES / "usb" / "workstation.raw.json")}
    stick = rows["0781:5567:4C530001230823117203"]
    assert stick["mass_storage"] and not stick["wireless"] and stick["bus_path"] == "2-1"
    assert rows["0bda:8179:00E04C0001"]["wireless"]  # vendor class ff, known by its driver and product string
    assert rows["8087:0026:"]["wireless"]  # Bluetooth: wireless controller class e0
    assert rows["046d:c31c:"]["hid"] and not rows["046d:c31c:"]["mass_storage"]
    cam = rows["046d:082d:A1B2C3D4"]
    assert cam["video"] and cam["audio"] and cam["interface_classes"] == ("01", "0e")
    assert rows["12d1:1506:"]["comm"]
    # two identical mice without serials are told apart by bus path
    assert "093a:2510:@1-5.1" in rows and "093a:2510:@1-5.2" in rows
    assert rows["1d6b:0002:0000:00:14.0"]["hub"] and rows["1d6b:0002:0000:00:14.0"]["bus_path"] == "1-0"


def _write(directory, files):
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)


def test_sysfs_tree(tmp_path):
    """gather() over a sysfs tree laid out as the kernel does (device dirs, interface dirs, driver links)."""
    sys_root = tmp_path / "sys"
    devices = sys_root / "bus" / "usb" / "devices"
    real = sys_root / "devices" / "pci0000:00" / "0000:00:14.0" / "usb2"
    drivers = sys_root / "bus" / "usb" / "drivers" / "usb-storage"
    drivers.mkdir(parents=True)
    _write(real / "2-1", {"idVendor": "0781\n", "idProduct": "5567\n", "manufacturer": "SanDisk\n",
                          "product": "Cruzer Blade\n", "serial": "4C530001230823117203\n", "bDeviceClass": "00\n",
                          "busnum": "2\n", "devpath": "1\n", "speed": "480\n"})
    _write(real / "2-1" / "2-1:1.0", {"bInterfaceClass": "08\n", "bInterfaceSubClass": "06\n",
                                      "bInterfaceProtocol": "50\n"})
    os.symlink(os.path.relpath(drivers, real / "2-1" / "2-1:1.0"), real / "2-1" / "2-1:1.0" / "driver")
    devices.mkdir(parents=True)
    os.symlink(os.path.relpath(real / "2-1", devices), devices / "2-1")
    os.symlink(os.path.relpath(real / "2-1" / "2-1:1.0", devices), devices / "2-1:1.0")
    probe = UsbProbe()
    raw = probe.gather(GatherContext(LocalTransport(sys_root=str(sys_root))))
    json.dumps(raw)
    (row,) = probe.parse(raw)
    assert row.ident == "0781:5567:4C530001230823117203" and row.mass_storage and row.drivers == ("usb-storage",)
    assert row.manufacturer == "SanDisk" and row.bus_path == "2-1"


def test_live_host():
    """This VM has no USB controller: the probe must say so with no rows, not fail."""
    probe = UsbProbe()
    ctx = GatherContext(LocalTransport())
    raw = probe.gather(ctx)
    rows = probe.parse(raw)
    assert not ctx.limitations  # no USB is a fact about the host, not something the probe could not read
    if os.path.isdir("/sys/bus/usb/devices"):  # a host with USB: every device, by its bus path
        names = sorted(n for n in os.listdir("/sys/bus/usb/devices") if ":" not in n)
        assert names and sorted(raw["devices"]) == names
        assert sorted(r.bus_path for r in rows) == names
    else:  # this VM: the USB core is not loaded, so there is nothing, and the probe says nothing
        assert not os.path.exists("/sys/bus/usb")
        assert raw == {"devices": {}, "interfaces": {}} and list(rows) == []
