"""USB devices from /sys/bus/usb/devices: identity, strings, device and interface classes, derived categories.

The subject is ``vendor:product:serial`` so that a device keeps its identity when replugged into another port;
the bus path (``busnum-devpath``) is an attribute. Devices without a serial number that share vendor and
product are told apart by their bus path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from probes.base import GatherContext, Probe, Raw, Requirements
from probes.observation import Row

log = logging.getLogger(__name__)

DEVICES = "/sys/bus/usb/devices"
DEVICE_FILES = ("idVendor", "idProduct", "manufacturer", "product", "serial", "bDeviceClass", "busnum", "devpath",
                "speed")
INTERFACE_FILES = ("bInterfaceClass", "bInterfaceSubClass", "bInterfaceProtocol")

# USB-IF base class codes.
CLASS_AUDIO, CLASS_COMM, CLASS_HID, CLASS_MASS_STORAGE, CLASS_HUB, CLASS_VIDEO, CLASS_WIRELESS = (
    "01", "02", "03", "08", "09", "0e", "e0")
CLASS_CDC_DATA = "0a"

# Wi-Fi and Bluetooth dongles often use the vendor-specific class (ff): their kernel drivers and product strings
# tell what they are.
WIRELESS_DRIVERS = frozenset({
    "rtl8xxxu", "rtl8192cu", "rtl8187", "r8188eu", "r8712u", "rt2500usb", "rt73usb", "rt2800usb", "ath9k_htc",
    "carl9170", "ar5523", "ath6kl_usb", "ath10k_usb", "mt7601u", "mt76x0u", "mt76x2u", "mt7663u", "mt7921u",
    "rtw88_8821cu", "rtw88_8822bu", "rtw88_8822cu", "rtw88_8723du", "rtw89_8852au", "brcmfmac", "zd1211rw",
    "p54usb", "at76c50x-usb", "rndis_wlan", "mwifiex_usb", "btusb", "8188eu", "8812au", "88XXau", "8821cu",
})
WIRELESS_WORDS = re.compile(r"wireless|wi-?fi|wlan|802\.11|bluetooth|\bwl\w*\d", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class UsbDevice(Row):
    ident: str  # vendor:product:serial
    bus_path: str  # busnum-devpath
    vendor_id: str
    product_id: str
    manufacturer: str | None
    product: str | None
    serial: str | None
    device_class: str
    interface_classes: tuple[str, ...]
    drivers: tuple[str, ...]  # kernel drivers bound to the interfaces
    mass_storage: bool
    wireless: bool
    hid: bool
    hub: bool
    video: bool
    audio: bool
    comm: bool

    KEY: ClassVar[tuple[str, ...]] = ("ident",)


class UsbProbe(Probe[UsbDevice]):
    id = "usb"
    title = "USB devices"
    title_zh = "USB 设备"
    requires = Requirements(paths_any=("/sys/bus/usb",))

    def gather(self, ctx: GatherContext) -> Raw:
        t = ctx.transport
        devices: dict[str, dict[str, str]] = {}
        interfaces: dict[str, dict[str, str]] = {}
        try:
            names = t.list_dir(DEVICES)
        except FileNotFoundError:
            return {"devices": devices, "interfaces": interfaces}  # USB core not loaded: no USB devices
        for name in names:
            is_interface = ":" in name
            entry: dict[str, str] = {}
            for fname in INTERFACE_FILES if is_interface else DEVICE_FILES:
                try:
                    entry[fname] = t.read_text(f"{DEVICES}/{name}/{fname}", 4096)
                except FileNotFoundError:
                    continue  # strings and serials are optional in USB descriptors
                except OSError as exc:  # a device that stalls on a string descriptor read (EPIPE, EIO)
                    log.debug("usb %s/%s: %s", name, fname, exc)
            if is_interface:
                with contextlib.suppress(OSError):  # no driver bound
                    entry["driver"] = t.readlink(f"{DEVICES}/{name}/driver").rsplit("/", 1)[-1]
                interfaces[name] = entry
            else:
                devices[name] = entry
        return {"devices": devices, "interfaces": interfaces}

    @staticmethod
    def parse(raw: Raw) -> Sequence[UsbDevice]:
        interfaces: dict[str, list[dict[str, str]]] = {}
        for name, entry in raw.get("interfaces", {}).items():
            interfaces.setdefault(name.split(":", 1)[0], []).append(entry)
        devices = sorted(raw.get("devices", {}).items())
        rows = [_device(name, entry, interfaces.get(name, [])) for name, entry in devices]
        seen: dict[str, int] = {}
        for row in rows:
            seen[row.ident] = seen.get(row.ident, 0) + 1
        return sorted(
            (_replace_ident(r, f"{r.ident}@{r.bus_path}") if seen[r.ident] > 1 else r for r in rows),
            key=lambda r: r.ident,
        )


def _s(entry: dict[str, str], key: str) -> str | None:
    value = entry.get(key)
    return value.strip() or None if value is not None else None


def _device(name: str, entry: dict[str, str], ifaces: list[dict[str, str]]) -> UsbDevice:
    vendor = (_s(entry, "idVendor") or "0000").lower()
    product_id = (_s(entry, "idProduct") or "0000").lower()
    serial = _s(entry, "serial")
    busnum, devpath = _s(entry, "busnum"), _s(entry, "devpath")
    bus_path = f"{busnum}-{devpath}" if busnum and devpath else name
    dev_class = (_s(entry, "bDeviceClass") or "00").lower()
    classes = tuple(sorted({(_s(i, "bInterfaceClass") or "").lower() for i in ifaces} - {""}))
    drivers = tuple(sorted({d for i in ifaces if (d := i.get("driver"))}))
    all_classes = {dev_class, *classes}
    text = " ".join(filter(None, (_s(entry, "manufacturer"), _s(entry, "product"))))
    return UsbDevice(
        ident=f"{vendor}:{product_id}:{serial or ''}",
        bus_path=bus_path,
        vendor_id=vendor,
        product_id=product_id,
        manufacturer=_s(entry, "manufacturer"),
        product=_s(entry, "product"),
        serial=serial,
        device_class=dev_class,
        interface_classes=classes,
        drivers=drivers,
        mass_storage=CLASS_MASS_STORAGE in all_classes,
        wireless=CLASS_WIRELESS in all_classes or bool(WIRELESS_DRIVERS.intersection(drivers))
        or bool(WIRELESS_WORDS.search(text)),
        hid=CLASS_HID in all_classes,
        hub=CLASS_HUB in all_classes,
        video=CLASS_VIDEO in all_classes,
        audio=CLASS_AUDIO in all_classes,
        comm=CLASS_COMM in all_classes or CLASS_CDC_DATA in all_classes,
    )


def _replace_ident(row: UsbDevice, ident: str) -> UsbDevice:
    return dataclasses.replace(row, ident=ident)

