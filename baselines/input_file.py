"""Reading a document the user names (profile, waivers, notice, config): one clear reason when it cannot be.

A directory, FIFO, device or socket is refused before anything is read (a FIFO would block, a device could
stream for ever), as is a file larger than the caller's limit; unreadable and non-UTF-8 files get their own
message. The reason is the same in every command.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

DEFAULT_LIMIT = 16 * 1024 * 1024

_KINDS = (
    (stat.S_ISDIR, "is a directory", "是目录"),
    (stat.S_ISFIFO, "is a FIFO (named pipe), not a file", "是命名管道而不是文件"),
    (stat.S_ISCHR, "is a device, not a file", "是设备文件而不是文件"),
    (stat.S_ISBLK, "is a device, not a file", "是设备文件而不是文件"),
    (stat.S_ISSOCK, "is a socket, not a file", "是套接字而不是文件"),
)


_WHAT_ZH = {"profile": "检查策略", "waivers": "豁免", "notice": "通知", "config": "配置", "key": "密钥"}


class InputFileError(ValueError):
    """``message`` names the file and the reason; ``zh`` says the same in Simplified Chinese."""

    def __init__(self, message: str, zh: str) -> None:
        super().__init__(message)
        self.message = message
        self.zh = zh


def read_input_bytes(path: str | Path, what: str, limit: int = DEFAULT_LIMIT) -> bytes:
    """The file's bytes; InputFileError (``what``: "profile", "waivers", ...) when it is not a readable file."""
    path = Path(path)
    wz = _WHAT_ZH.get(what, what)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InputFileError(f"{path}: {what} file not found", f"{path}：{wz}文件不存在") from None
    except IsADirectoryError:
        raise InputFileError(f"{path}: {what} file is a directory", f"{path}：{wz}文件是目录") from None
    except PermissionError:
        raise InputFileError(f"{path}: cannot read {what} file: permission denied",
                             f"{path}：无权读取{wz}文件") from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read {what} file: {exc.strerror or exc}",
                             f"{path}：无法读取{wz}文件：{exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        for test, en, zh in _KINDS:
            if test(mode):
                raise InputFileError(f"{path}: {what} file {en}", f"{path}：{wz}文件{zh}")
        os.set_blocking(fd, True)
        chunks: list[bytes] = []
        total = 0
        while True:
            try:
                chunk = os.read(fd, 1 << 20)
            except OSError as exc:
                if exc.errno == errno.EISDIR:
                    raise InputFileError(f"{path}: {what} file is a directory", f"{path}：{wz}文件是目录") from None
                raise InputFileError(f"{path}: cannot read {what} file: {exc.strerror or exc}",
                                     f"{path}：无法读取{wz}文件：{exc.strerror or exc}") from None
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise InputFileError(f"{path}: {what} file is larger than the limit of {limit // 1024} KiB",
                                     f"{path}：{wz}文件超过 {limit // 1024} KiB 上限")
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_input_text(path: str | Path, what: str, limit: int = DEFAULT_LIMIT) -> str:
    data = read_input_bytes(path, what, limit)
    wz = _WHAT_ZH.get(what, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{Path(path)}: {what} file is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                             f"{exc.start})", f"{Path(path)}：{wz}文件不是 UTF-8 文本（偏移 {exc.start} 处字节 "
                             f"0x{data[exc.start]:02x}）") from None
