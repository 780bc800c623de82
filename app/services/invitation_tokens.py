"""Invitation tokens: the credential of one invitation. Shown once; only the SHA-256 is stored.

`npsi_` tells them from API keys (`nps_`), so the caller's kind is known before any lookup.
"""

import hashlib
import secrets

TOKEN_PREFIX = "npsi_"
TOKEN_BYTES = 32  # 256 random bits


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(raw: str) -> bytes:
    """What is stored of a token: its SHA-256. Unlike an API key's, without the pepper: a token is
    always 256 generated random bits (nobody chooses one), so no guess can be tested against a
    copy of its hash, and the stored hashes stay valid whatever becomes of NPS_KEY_PEPPER."""
    return hashlib.sha256(raw.encode()).digest()


def is_invitation_token(raw: str) -> bool:
    return raw.startswith(TOKEN_PREFIX)
