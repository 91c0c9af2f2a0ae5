"""Does an SMB server still accept SMB1 (CIFS)? One pre-authentication NEGOTIATE, nothing more.

We offer only the SMB1 dialect "NT LM 0.12". A server that still speaks SMB1 answers with an SMB1 NEGOTIATE
response naming that dialect; one limited to SMB2+ answers "no dialect" (index 0xFFFF), replies SMB2, or closes
the connection. Building and parsing are pure (golden-tested on recorded bytes); ``check_smb1`` is the only
function that sends, and only to an ApprovedTarget.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import time

from probes.network.target import ApprovedTarget, check_targets

log = logging.getLogger(__name__)

SMB_PORTS = (445,)  # direct-hosted SMB; 139 needs a NetBIOS session request first (not done)
SMB1_MAGIC = b"\xffSMB"
SMB2_MAGIC = b"\xfeSMB"
SMB_COM_NEGOTIATE = 0x72
NO_DIALECT = 0xFFFF
DIALECTS = ("NT LM 0.12",)  # SMB1 only: an SMB2-only server must refuse
MAX_REPLY = 65536


def negotiate_request(pid: int = 0xFEFF, mid: int = 1) -> bytes:
    """NetBIOS session message carrying an SMB1 NEGOTIATE that offers only SMB1 dialects (pure)."""
    flags = 0x18  # case-insensitive paths, canonicalised paths
    flags2 = 0xC001  # unicode, NT status codes, long names (what Windows clients send)
    header = (SMB1_MAGIC + struct.pack("<BIBH", SMB_COM_NEGOTIATE, 0, flags, flags2)
              + struct.pack("<H8sHHHHH", 0, b"\0" * 8, 0, 0, pid & 0xFFFF, 0, mid))
    body = b"".join(b"\x02" + d.encode("ascii") + b"\0" for d in DIALECTS)
    smb = header + b"\x00" + struct.pack("<H", len(body)) + body  # WordCount 0, ByteCount, dialects
    return b"\x00" + len(smb).to_bytes(3, "big") + smb


def smb1_accepted(reply: bytes) -> bool:
    """Pure: True only for an SMB1 NEGOTIATE response with success status that selected one of our dialects.
    An SMB2 reply, an error, "no dialect" (0xFFFF), a short reply or nothing at all (close/reset) → False."""
    if len(reply) < 4 + 32 + 3:
        return False
    smb = reply[4:]
    if smb[:4] != SMB1_MAGIC or smb[4] != SMB_COM_NEGOTIATE:
        return False  # SMB2 (\xfeSMB) or something else entirely
    status: int = struct.unpack_from("<I", smb, 5)[0]
    word_count = smb[32]
    if status != 0 or word_count < 1:
        return False
    index: int = struct.unpack_from("<H", smb, 33)[0]
    return index != NO_DIALECT and index < len(DIALECTS)


def _recv_message(sock: socket.socket, timeout: float) -> bytes:
    """One NetBIOS session message (header + body), or what arrived before close/timeout."""
    data = b""
    end = time.monotonic() + timeout
    want = 4
    while len(data) < want and len(data) < MAX_REPLY:
        left = end - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(min(MAX_REPLY, want) - len(data))
        except (TimeoutError, ConnectionError, OSError):
            break
        if not chunk:
            break
        data += chunk
        if len(data) >= 4 and want == 4:
            want = 4 + int.from_bytes(data[1:4], "big")
    return data


def exchange(address: str, port: int, timeout: float) -> bytes:
    """Send the NEGOTIATE and return the raw reply (b"" when the server closed or reset)."""
    with socket.create_connection((address, port), timeout=timeout) as sock:
        sock.sendall(negotiate_request(pid=os.getpid()))
        return _recv_message(sock, timeout)


def check_smb1(target: ApprovedTarget, port: int = 445, timeout: float = 3.0) -> bool | None:
    """Whether the target's SMB server on ``port`` accepts SMB1; None when it could not be asked (no connect)."""
    check_targets([target], ("service",))
    if target.ports is not None and port not in target.ports:
        raise PermissionError(f"{target.address}: port {port} not approved")
    try:
        reply = exchange(target.address, port, timeout)
    except (TimeoutError, ConnectionError, OSError) as exc:
        log.debug("smb negotiate %s:%d failed: %s", target.address, port, exc)
        return None
    return smb1_accepted(reply)
