"""Key fingerprints in the one form used everywhere (OpenSSH's): "SHA256:" + unpadded base64 of the SHA-256
of the key blob. SSH host keys (remote transport), authorized_keys entries, and the agent's and issuers'
Ed25519 keys (baselines.ed25519) all go through here, so the same key always shows the same fingerprint."""

from __future__ import annotations

import base64
import hashlib


def sha256_fingerprint(blob: bytes) -> str:
    """The fingerprint of a key blob: the SSH wire encoding for SSH keys, the 32 raw bytes for Ed25519."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")
