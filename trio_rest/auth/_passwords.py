"""Password hashes for login views: scrypt from the standard library, never a bare digest.

A hash is one text, ``scrypt$n$r$p$salt$digest`` (base64 salt and digest), so that the cost
parameters can rise later and old hashes still verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["hash_password", "verify_password"]

# scrypt's cost: n=2**14, r=8 takes 16 MiB and some tens of milliseconds: a login is slow
# enough to make guessing expensive, cheap enough for a server (OWASP's minimum is n=2**17
# with r=8 for interactive logins on a large machine; raise `n` where memory allows).
_N, _R, _P = 2**14, 8, 1
_SALT_BYTES, _KEY_BYTES = 16, 32


def hash_password(password: str) -> str:
    """Hash `password` with a fresh random salt."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_KEY_BYTES)
    return "$".join(["scrypt", str(_N), str(_R), str(_P), _b64(salt), _b64(digest)])


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches a hash made by `hash_password` (in constant time)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
