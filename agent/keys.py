"""The agent's Ed25519 signing key (baselines, inspection record), created on first use in the state dir.

A key that disappears while the record exists is not silently replaced: ``agent.record.append`` writes an
``agent-key`` entry naming the old and new fingerprints, and ``record verify`` reports the change until an
operator acknowledges it. Code that only reads (``record verify``, loading a baseline) uses ``load_agent_key``,
which never creates one.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import UserError
from agent.state import atomic_write, ensure_state_dir, read_state_file, state_dir

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_FILE = "agent.key"


def load_agent_key(state: Path | None = None) -> Ed25519PrivateKey | None:
    """The agent key, or None when there is none (never created here, never read through a link)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = (state or state_dir()) / KEY_FILE
    try:
        data = read_state_file(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UserError(f"{path}: cannot read the agent key: {exc.strerror or exc}",
                        f"{path}：无法读取本机签名密钥：{exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{path}: cannot load the agent key: {exc}", f"{path}：无法加载本机签名密钥：{exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError(f"{path}: not an Ed25519 key", f"{path}：不是 Ed25519 密钥")
    return key


def agent_signing_key(state: Path | None = None) -> Ed25519PrivateKey:
    """Load the agent key, creating it (mode 0600, atomically) on first use. Only writers call this; the
    record entry that follows a creation names a replaced key (see the module doc)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    state = ensure_state_dir(state)
    path = state / KEY_FILE
    existing = load_agent_key(state)
    if existing is not None:
        return existing
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    atomic_write(path, pem, mode=0o600)
    return key


def public_key_b64(key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def load_public_key_b64(text: str) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except ValueError as exc:
        raise UserError(f"not a base64 Ed25519 public key: {exc}") from None


def key_fingerprint(key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")
