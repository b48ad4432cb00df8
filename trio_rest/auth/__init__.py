"""Authentication and permissions: JSON Web Tokens, per-view permissions, password hashes.

    from trio_rest.auth import IsAuthenticated, JWTAuth

    auth = JWTAuth(secret)                       # 32 bytes or more for HS256
    app = App(router, auth=auth, permissions=[IsAuthenticated])
    token = auth.issue("ada", is_admin=True)

Credentials come with the handshake (``Authorization: Bearer ...`` or ``?token=...``), in an
in-band ``{"type": "auth", "token": ...}`` message, or per request (``args.token``).
"""

from __future__ import annotations

from ._backend import AuthBackend
from ._jwt import ALGORITHMS, Credentials, JWTAuth, JWTKey
from ._passwords import hash_password, verify_password
from ._permissions import AllowAny, BasePermission, IsAdmin, IsAuthenticated

__all__ = [
    "ALGORITHMS",
    "AllowAny",
    "AuthBackend",
    "BasePermission",
    "Credentials",
    "IsAdmin",
    "IsAuthenticated",
    "JWTAuth",
    "JWTKey",
    "hash_password",
    "verify_password",
]

# Public names say they live here, not in the private module that defines them.
for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type) or callable(_value):
        _value.__module__ = __name__
del _name, _value
