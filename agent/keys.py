"""The agent's Ed25519 signing key (baselines, inspection record), created on first use in the state dir."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from agent.errors import UserError
from agent.state import StateDir, atomic_write

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_FILE = "agent.key"


def agent_signing_key(state: StateDir) -> Ed25519PrivateKey:
    """Load the agent key, creating it (mode 0600, atomically) on first use."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = state.ensure() / KEY_FILE
    if path.exists():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: cannot load the agent key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise UserError(f"{path}: not an Ed25519 key")
        return key
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
    from agent.wire.signatures import fingerprint

    return fingerprint(key)
