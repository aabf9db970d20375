"""API tokens: shown once, stored only as a sha256 hash."""
import hashlib
import secrets

TOKEN_PREFIX = "evb_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
