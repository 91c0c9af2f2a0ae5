from __future__ import annotations

import json
import os

import pytest

from probes.base import GatherContext
from probes.host.av_devices import AvDevicesProbe, parse_cards, parse_pcm
from probes.transport import LocalTransport
from tests.probes.golden import FIXTURES, cases, check_case


@pytest.mark.parametrize("raw_path", cases("av_devices"), ids=lambda p: p.name)
def test_golden(raw_path):
    check_case("av_devices", raw_path)


def test_webcam_and_microphones():
    rows = {o.subject: o.attrs for o in check_case("av_devices", FIXTURES / "av_devices" / "laptop-webcam.raw.json")}
    assert rows["/dev/video0"]["kind"] == "camera" and rows["/dev/video0"]["driver"] == "uvcvideo"
    assert rows["/dev/video0"]["usb"] and rows["/dev/video1"]["index"] == 1
    mic = rows["/dev/snd/pcmC1D0c"]
    assert (mic["kind"], mic["driver"], mic["card"], mic["usb"]) == (
        "microphone", "USB-Audio", "HD Pro Webcam C920", True)
    assert rows["/dev/snd/pcmC0D0c"]["name"] == "ALC257 Analog" and not rows["/dev/snd/pcmC0D0c"]["usb"]


def test_proc_asound_parsers():
    cards = parse_cards(" 0 [PCH            ]: HDA-Intel - HDA Intel PCH\n"
                        "                      HDA Intel PCH at 0xf1340000 irq 147\n")
    assert cards == {0: ("HDA-Intel", "HDA Intel PCH", False)}
    assert parse_pcm("00-03: HDMI 0 : HDMI 0 : playback 1\n") == {(0, 3): "HDMI 0"}


def test_fixture_tree(tmp_path):
    """/dev, /sys and /proc trees as a host with a webcam and its microphone lays them out."""
    (tmp_path / "dev" / "snd").mkdir(parents=True)
    for node in ("video0", "null"):
        (tmp_path / "dev" / node).write_text("")
    for node in ("pcmC1D0c", "pcmC1D0p", "controlC1"):
        (tmp_path / "dev" / "snd" / node).write_text("")
    v4l_dev = tmp_path / "sys" / "devices" / "pci0000:00" / "usb1" / "1-3" / "1-3:1.0"
    node_dir = v4l_dev / "video4linux" / "video0"
    node_dir.mkdir(parents=True)
    (node_dir / "name").write_text("HD Pro Webcam C920\n")
    (node_dir / "index").write_text("0\n")
    driver = tmp_path / "sys" / "bus" / "usb" / "drivers" / "uvcvideo"
    driver.mkdir(parents=True)
    os.symlink(os.path.relpath(v4l_dev, node_dir), node_dir / "device")
    os.symlink(os.path.relpath(driver, v4l_dev), v4l_dev / "driver")
    cls = tmp_path / "sys" / "class" / "video4linux"
    cls.mkdir(parents=True)
    os.symlink(os.path.relpath(node_dir, cls), cls / "video0")
    asound = tmp_path / "proc" / "asound"
    asound.mkdir(parents=True)
    (asound / "cards").write_text(" 1 [C920           ]: USB-Audio - HD Pro Webcam C920\n"
                                  "                      HD Pro Webcam C920 at usb-0000:00:14.0-3, high speed\n")
    (asound / "pcm").write_text("01-00: USB Audio : USB Audio : capture 1\n")
    probe = AvDevicesProbe()
    raw = probe.gather(GatherContext(LocalTransport(root=str(tmp_path))))
    json.dumps(raw)
    rows = {r.path: r for r in probe.parse(raw)}
    assert set(rows) == {"/dev/video0", "/dev/snd/pcmC1D0c"}
    assert rows["/dev/video0"].driver == "uvcvideo" and rows["/dev/video0"].usb
    assert rows["/dev/snd/pcmC1D0c"].usb and rows["/dev/snd/pcmC1D0c"].name == "USB Audio"


def test_live_host():
    probe = AvDevicesProbe()
    rows = probe.parse(probe.gather(GatherContext(LocalTransport())))
    videos = [n for n in os.listdir("/dev") if n.startswith("video")]
    assert len([r for r in rows if r.kind == "camera"]) >= len(videos)
