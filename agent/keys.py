"""The agent's Ed25519 signing key (baselines, inspection record), created on first use in the state dir.
Key handling itself is baselines.ed25519; this module only keeps the key file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import UserError
from agent.state import StateDir, atomic_write
from baselines import ed25519
from baselines.ed25519 import fingerprint as key_fingerprint
from baselines.ed25519 import public_b64 as public_key_b64

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = ["KEY_FILE", "agent_signing_key", "key_fingerprint", "load_private_key_file", "load_public_key_b64",
           "public_key_b64"]

KEY_FILE = "agent.key"


def agent_signing_key(state: StateDir) -> Ed25519PrivateKey:
    """Load the agent key, creating it (mode 0600, atomically) on first use."""
    path = state.ensure() / KEY_FILE
    if path.exists():
        return load_private_key_file(path, "the agent key")
    key = ed25519.generate()
    atomic_write(path, ed25519.private_pem(key), mode=0o600)
    return key


def load_private_key_file(path: Path, what: str) -> Ed25519PrivateKey:
    """An Ed25519 PEM private key file; a UserError naming the file and ``what`` it should hold otherwise."""
    try:
        return ed25519.load_private_pem(path.read_bytes())
    except ed25519.KeyFormatError as exc:
        if exc.reason == "not-ed25519":
            raise UserError(f"{path}: not an Ed25519 key") from None
        raise UserError(f"{path}: cannot load {what}: {exc}") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot load {what}: {exc}") from None


def load_public_key_b64(text: str) -> Ed25519PublicKey:
    try:
        return ed25519.load_public_b64(text)
    except ed25519.KeyFormatError as exc:
        raise UserError(str(exc)) from None
