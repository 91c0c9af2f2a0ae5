"""Cameras and microphones: V4L2 video nodes (/dev/video*) and ALSA capture PCMs (/dev/snd/pcmC*D*c).

Names come from /sys/class/video4linux/<node>/name, /proc/asound/cards and /proc/asound/pcm. Nodes are listed
from /dev and from sysfs, so a container without device nodes still shows the host's devices.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from probes import messages as msg
from probes.base import GatherContext, Probe, Raw, Requirements
from probes.observation import Row

log = logging.getLogger(__name__)

V4L = "/sys/class/video4linux"
SOUND = "/sys/class/sound"
_VIDEO_RE = re.compile(r"^video\d+$")
_CAPTURE_RE = re.compile(r"^pcmC(\d+)D(\d+)c$")
_CARD_RE = re.compile(r"^\s*(\d+)\s+\[([^\]]*)\]:\s*(\S+)\s+-\s+(.*)$")
_PCM_RE = re.compile(r"^(\d+)-(\d+):\s*(.*?)\s*:\s*(.*?)\s*:")


@dataclass(frozen=True, slots=True)
class AvDevice(Row):
    path: str
    kind: str  # camera | microphone
    name: str | None
    driver: str | None
    card: str | None  # the ALSA card's long name, for microphones
    index: int | None  # V4L2 node index within its device: uvcvideo gives a second (metadata) node index 1
    usb: bool

    KEY: ClassVar[tuple[str, ...]] = ("path",)


class AvDevicesProbe(Probe[AvDevice]):
    id = "av_devices"
    title = "Cameras and microphones"
    title_zh = "摄像头与麦克风"
    requires = Requirements()

    def gather(self, ctx: GatherContext) -> Raw:
        videos = sorted(set(_names(ctx, "/dev", _VIDEO_RE)) | set(_names(ctx, V4L, _VIDEO_RE)))
        captures = sorted(set(_names(ctx, "/dev/snd", _CAPTURE_RE)) | set(_names(ctx, SOUND, _CAPTURE_RE)))
        video: dict[str, dict[str, Any]] = {}
        for node in videos:
            base = f"{V4L}/{node}"
            video[node] = {
                "name": _read(ctx, f"{base}/name"),
                "index": _read(ctx, f"{base}/index"),
                "driver": _link(ctx, f"{base}/device/driver"),
                "link": _link(ctx, base),
            }
        capture = {node: {"link": _link(ctx, f"{SOUND}/{node}")} for node in captures}
        return {
            "video": video,
            "capture": capture,
            "cards": _read(ctx, "/proc/asound/cards") if captures else None,
            "pcm": _read(ctx, "/proc/asound/pcm") if captures else None,
        }

    @staticmethod
    def parse(raw: Raw) -> Sequence[AvDevice]:
        rows: list[AvDevice] = []
        for node, info in sorted(raw.get("video", {}).items()):
            link = info.get("link") or ""
            index = (info.get("index") or "").strip()
            rows.append(AvDevice(
                path=f"/dev/{node}",
                kind="camera",
                name=(info.get("name") or "").strip() or None,
                driver=_base(info.get("driver")),
                card=None,
                index=int(index) if index.isdigit() else None,
                usb="/usb" in link,
            ))
        cards = parse_cards(raw.get("cards") or "")
        pcms = parse_pcm(raw.get("pcm") or "")
        for node, info in sorted(raw.get("capture", {}).items()):
            m = _CAPTURE_RE.match(node)
            if not m:
                continue
            card_no, dev_no = int(m.group(1)), int(m.group(2))
            card = cards.get(card_no)
            rows.append(AvDevice(
                path=f"/dev/snd/{node}",
                kind="microphone",
                name=pcms.get((card_no, dev_no)),
                driver=card[0] if card else None,
                card=card[1] if card else None,
                index=dev_no,
                usb="/usb" in (info.get("link") or "") or bool(card and card[2]),
            ))
        return rows


def parse_cards(text: str) -> dict[int, tuple[str, str, bool]]:
    """Card number -> (driver, long name, on USB) from /proc/asound/cards (two lines per card)."""
    out: dict[int, tuple[str, str, bool]] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = _CARD_RE.match(line)
        if not m:
            continue
        detail = lines[i + 1].strip() if i + 1 < len(lines) else ""
        out[int(m.group(1))] = (m.group(3), m.group(4).strip(), " at usb-" in detail)
    return out


def parse_pcm(text: str) -> dict[tuple[int, int], str]:
    """(card, device) -> PCM name from /proc/asound/pcm ("00-00: id : name : playback 1 : capture 1")."""
    out: dict[tuple[int, int], str] = {}
    for line in text.splitlines():
        m = _PCM_RE.match(line)
        if m:
            out[(int(m.group(1)), int(m.group(2)))] = m.group(4) or m.group(3)
    return out


def _names(ctx: GatherContext, directory: str, pattern: re.Pattern[str]) -> list[str]:
    try:
        return [n for n in ctx.transport.list_dir(directory) if pattern.match(n)]
    except FileNotFoundError:
        return []
    except PermissionError:
        ctx.limited(msg.NOT_READABLE(path=directory))
        return []


def _read(ctx: GatherContext, path: str) -> str | None:
    try:
        return ctx.transport.read_text(path, 65536)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except PermissionError:
        ctx.limited(msg.NOT_READABLE(path=path))
        return None


def _link(ctx: GatherContext, path: str) -> str | None:
    try:
        return ctx.transport.readlink(path)
    except OSError:  # absent or not a link: unknown driver or device path
        return None


def _base(link: str | None) -> str | None:
    return link.rstrip("/").rsplit("/", 1)[-1] if link else None
