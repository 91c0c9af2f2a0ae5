"""What every request handler shares: settings, the database, the CA and the issuer key (read-only)."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collector.core.ca import Authority
from collector.core.db import Database
from collector.core.settings import CollectorSettings


@dataclass(frozen=True)
class AppContext:
    settings: CollectorSettings
    db: Database
    authority: Authority
    issuer_key: Ed25519PrivateKey
    issuer_name: str
