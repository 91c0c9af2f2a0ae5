"""The agent's Ed25519 signing key (baselines, inspection record), created on first use in the state dir.
Key handling itself is baselines.ed25519; this module only keeps the key file.

A key that disappears while the record exists is not silently replaced: ``agent.record.Recorder.write`` (which
alone creates the key, under the record lock) writes an ``agent-key`` entry naming the old and new
fingerprints, and ``record verify`` reports the change until an operator acknowledges it. Code that only reads
(``record verify``, loading a baseline) uses ``load_agent_key``, which never creates one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from agent import messages as msg
from agent.errors import UserError
from agent.state import StateDir, atomic_write, read_state_file
from baselines import ed25519
from baselines.ed25519 import fingerprint as key_fingerprint
from baselines.ed25519 import public_b64 as public_key_b64

if TYPE_CHECKING:
    from baselines.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "KEY_FILE",
    "agent_signing_key",
    "key_fingerprint",
    "load_agent_key",
    "load_private_key_file",
    "load_public_key_b64",
    "public_key_b64",
]

KEY_FILE = "agent.key"


def load_agent_key(state: StateDir) -> Ed25519PrivateKey | None:
    """The agent key, or None when there is none (never created here, never read through a link)."""
    path = state.path / KEY_FILE
    try:
        data = read_state_file(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UserError(f"{path}: cannot read the agent key: {exc.strerror or exc}",
                        f"{path}：无法读取本机签名密钥：{exc.strerror or exc}") from None
    try:
        return ed25519.load_private_pem(data)
    except ed25519.KeyFormatError as exc:
        if exc.reason == "not-ed25519":
            raise UserError(f"{path}: not an Ed25519 key", f"{path}：不是 Ed25519 密钥") from None
        raise UserError(f"{path}: cannot load the agent key: {exc}", f"{path}：无法加载本机签名密钥：{exc}") from None


def agent_signing_key(state: StateDir) -> Ed25519PrivateKey:
    """Load the agent key, creating it (mode 0600, atomically) on first use. Only the record writer calls this
    (see the module doc)."""
    path = state.ensure() / KEY_FILE
    existing = load_agent_key(state)
    if existing is not None:
        return existing
    key = ed25519.generate()
    atomic_write(path, ed25519.private_pem(key), mode=0o600)
    return key


def load_private_key_file(path: Path, what: str) -> Ed25519PrivateKey:
    """An Ed25519 PEM private key file; a UserError naming the file and ``what`` it should hold otherwise."""
    from baselines.input_file import InputFileError, read_input_bytes

    try:
        return ed25519.load_private_pem(read_input_bytes(path, "key", 64 * 1024))
    except InputFileError as exc:
        raise UserError(exc.message, exc.zh) from None
    except ed25519.KeyFormatError as exc:
        if exc.reason == "not-ed25519":
            raise UserError(msg.KEY_NOT_ED25519(path=path)) from None
        raise UserError(msg.KEY_CANNOT_LOAD(path=path, what=what, detail=exc)) from None
    except OSError as exc:
        raise UserError(msg.KEY_CANNOT_LOAD(path=path, what=what, detail=exc)) from None


def load_public_key_b64(text: str) -> Ed25519PublicKey:
    try:
        return ed25519.load_public_b64(text)
    except ed25519.KeyFormatError as exc:
        raise UserError(msg.KEY_BAD_PUBLIC(detail=exc)) from None
