"""Invitation tokens: the credential of one invitation. Shown once; only the SHA-256 is stored.

`npsi_` tells them from API keys (`nps_`), so the caller's kind is known before any lookup.
"""

import secrets

from app.services.keys import hash_key

TOKEN_PREFIX = "npsi_"
TOKEN_BYTES = 32  # 256 random bits


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


# Stored as an API key is: its SHA-256 (a 256-bit random secret needs no slow hash).
hash_token = hash_key


def is_invitation_token(raw: str) -> bool:
    return raw.startswith(TOKEN_PREFIX)
