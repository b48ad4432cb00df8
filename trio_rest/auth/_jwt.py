"""`JWTAuth`: JSON Web Tokens checked with PyJWT, with none of the classic pitfalls left open.

- Each key is bound to one algorithm: a token whose header names another is refused, so an
  RS256 public key can never be used as an HMAC secret, and ``alg: none`` matches nothing.
- The algorithms are an allow-list: HS256, HS384, HS512, RS256, ES256 and EdDSA.
- ``exp`` is required; ``iss`` and ``aud`` are checked when configured; ``nbf`` and ``exp``
  allow a small leeway (30 s by default) for clock skew.
- With a keyring (``kid`` -> key), a token must name a known ``kid``: there is no fallback key.
- A token with a ``crit`` header is refused: this server understands no extension.
- An HMAC secret shorter than its hash (32 bytes for HS256, RFC 7518 section 3.2) is refused
  when the `JWTAuth` is built, so before the App serves anything.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs
import jwt

from .._errors import AuthenticationError, ConfigurationError

__all__ = ["ALGORITHMS", "Credentials", "JWTAuth", "JWTKey"]

#: The algorithms a key may be bound to.
ALGORITHMS: Final = frozenset({"HS256", "HS384", "HS512", "RS256", "ES256", "EdDSA"})

_HMAC_MIN_BYTES: Final = {"HS256": 32, "HS384": 48, "HS512": 64}
_CRIT: Final = "The token names critical extensions this server does not support."


@attrs.frozen
class JWTKey:
    """One key and the one algorithm it verifies (and signs, when it can).

    Attributes:
        key: the HMAC secret (str or bytes); or, for RS256, ES256 and EdDSA, the public key
            (PEM) that verifies, or the private key (PEM), which also signs.
        algorithm: one of `ALGORITHMS`.
    """

    key: str | bytes = attrs.field(repr=False)
    algorithm: str = "HS256"
    _verifier: Any = attrs.field(init=False, repr=False, eq=False)

    def verifying_key(self) -> Any:
        """What verifies a signature: the secret, or the public half of a private key."""
        return self._verifier

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_verifier", self.key)
        self._check()
        pem = self.key.encode() if isinstance(self.key, str) else self.key
        if self.algorithm not in _HMAC_MIN_BYTES and b"PRIVATE KEY" in pem:
            from cryptography.hazmat.primitives.serialization import load_pem_private_key

            try:
                public = load_pem_private_key(pem, password=None).public_key()
            except (ValueError, TypeError) as exc:
                raise ConfigurationError(f"the {self.algorithm} private key cannot be read: {exc}") from None
            object.__setattr__(self, "_verifier", public)

    def _check(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ConfigurationError(
                f"JWT algorithm {self.algorithm!r} is not allowed; use one of {sorted(ALGORITHMS)}"
            )
        minimum = _HMAC_MIN_BYTES.get(self.algorithm)
        if minimum is not None:
            secret = self.key.encode() if isinstance(self.key, str) else self.key
            if len(secret) < minimum:
                raise ConfigurationError(
                    f"a {self.algorithm} secret needs at least {minimum} bytes, not {len(secret)}"
                )
        elif isinstance(self.key, str) and "-----BEGIN" not in self.key:
            raise ConfigurationError(f"a {self.algorithm} key is a PEM text (public or private key)")


@attrs.frozen
class Credentials:
    """What an accepted token established.

    Attributes:
        user: whom it names, as ``request.user`` sees it.
        subject: its ``sub`` claim (None without one): what `JWTAuth.revoke` names.
        expires: when it stops authorising (Unix time).
    """

    user: Any
    subject: str | None
    expires: float


class JWTAuth:
    """Authentication with JSON Web Tokens; pass one to ``App(auth=...)``.

    Args:
        key: the key, a `JWTKey` or an HMAC secret (then ``algorithm`` says which HMAC).
        algorithm: the algorithm of `key` when it is a bare secret (HS256).
        algorithms: the same as a list of one, as PyJWT spells it (``algorithms=["HS256"]``):
            a key verifies one algorithm only, so a token cannot choose a weaker one; use a
            keyring for several.
        keys: instead of `key`, a keyring: ``kid`` -> `JWTKey`, for rotation; a token must
            name one of them in its header.
        signing_kid: with a keyring, the key `issue` signs with.
        issuer: when set, the ``iss`` a token must carry (and `issue` writes).
        audience: when set, an ``aud`` a token must carry (and `issue` writes).
        leeway: seconds of clock skew allowed on ``exp`` and ``nbf``.
        user_loader: turns the checked claims into the user a view sees as
            ``request.user`` (a plain or async function; it may raise
            `AuthenticationError`). By default the user is the claims dict.

    Raises:
        ConfigurationError: no key or both forms, an algorithm outside `ALGORITHMS`, an HMAC
            secret too short for its hash, a negative leeway.
    """

    def __init__(
        self,
        key: JWTKey | str | bytes | None = None,
        *,
        algorithm: str = "HS256",
        algorithms: Sequence[str] | None = None,
        keys: Mapping[str, JWTKey] | None = None,
        signing_kid: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        leeway: float = 30.0,
        user_loader: Any = None,
    ) -> None:
        if (key is None) == (keys is None):
            raise ConfigurationError("JWTAuth needs a key, or a keyring (keys=), not both")
        if algorithms is not None:
            if isinstance(algorithms, str) or len(algorithms) != 1:
                raise ConfigurationError(
                    f"JWTAuth(algorithms=...) names one algorithm, not {algorithms!r}: a key verifies"
                    " one algorithm only (a keyring, keys=, holds keys of several)"
                )
            if algorithm != "HS256" and algorithm != algorithms[0]:
                raise ConfigurationError("JWTAuth takes algorithm= or algorithms=, not two different ones")
            algorithm = algorithms[0]
        if keys is not None:
            if not keys:
                raise ConfigurationError("JWTAuth(keys=...) needs at least one key")
            self._keyring: dict[str, JWTKey] | None = dict(keys)
            if signing_kid is not None and signing_kid not in keys:
                raise ConfigurationError(f"signing_kid {signing_kid!r} is not in the keyring")
            self._key: JWTKey | None = None
        else:
            self._keyring = None
            self._key = key if isinstance(key, JWTKey) else JWTKey(key, algorithm)  # type: ignore[arg-type]
        if leeway < 0:
            raise ConfigurationError("JWTAuth leeway must not be negative")
        self.signing_kid = signing_kid
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.user_loader = user_loader
        self._required = ["exp", *(["iss"] if issuer else []), *(["aud"] if audience else [])]
        self._revoked: dict[str, float] = {}  # subject -> tokens issued until then are refused

    def decode(self, token: str) -> dict[str, Any]:
        """Check a token and return its claims.

        Raises:
            AuthenticationError: for any reason the token is not accepted; the detail says
                which, without echoing the token.
        """
        if not isinstance(token, str) or not token:
            raise AuthenticationError("No token.")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            if "critical" in str(exc):  # PyJWT refuses the crit extensions it does not know
                raise AuthenticationError(_CRIT) from None
            raise AuthenticationError("The token is malformed.") from None
        if "crit" in header:  # any it knows: this server supports none
            raise AuthenticationError(_CRIT)
        key = self._key_for(header.get("kid"))
        if header.get("alg") != key.algorithm:
            raise AuthenticationError("The token's algorithm is not accepted.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.verifying_key(),
                algorithms=[key.algorithm],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
                options={"require": self._required},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("The token has expired.") from None
        except jwt.ImmatureSignatureError:
            raise AuthenticationError("The token is not valid yet.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthenticationError(f"The token has no {exc.claim!r} claim.") from None
        except jwt.InvalidAudienceError:
            raise AuthenticationError("The token is not meant for this server (audience).") from None
        except jwt.InvalidIssuerError:
            raise AuthenticationError("The token comes from another issuer.") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationError("The token's signature does not match.") from None
        except Exception:  # anything else PyJWT or the crypto library raises: refused, not a crash
            raise AuthenticationError("The token is invalid.") from None
        revoked_at = self._revoked.get(str(claims.get("sub")))
        if revoked_at is not None:
            issued = claims.get("iat")
            if not isinstance(issued, int | float) or issued <= revoked_at:
                raise AuthenticationError("The token was revoked.")
        return claims

    async def authenticate(self, token: str) -> Credentials:
        """Check a token and load its user.

        Returns:
            The user (`user_loader`'s, or the claims), the token's subject and its expiry.

        Raises:
            AuthenticationError: the token is refused, or the loader found no user.
        """
        claims = self.decode(token)
        user: Any = claims
        if self.user_loader is not None:
            user = self.user_loader(claims)
            if inspect.isawaitable(user):
                user = await user
        if user is None:
            raise AuthenticationError("The token names no known user.")
        subject = claims.get("sub")
        return Credentials(user, str(subject) if subject is not None else None, float(claims["exp"]))

    def revoke(self, subject: str, *, at: float | None = None) -> None:
        """Refuse every token of `subject` issued at or before `at` (now by default).

        Tokens issued later work again (after a password change, say); a token without
        ``iat`` is refused for good. `App.revoke` also closes the subject's connections.
        """
        self._revoked[subject] = time.time() if at is None else at

    def issue(self, subject: str | Mapping[str, Any], *, expires_in: float = 3600.0, **claims: Any) -> str:
        """Sign a token for `subject` (``sub``) that expires after `expires_in` seconds.

        Args:
            subject: whom the token names; or the claims, ``sub`` among them
                (``auth.issue({"sub": "1", "is_admin": True})``).
            expires_in: its lifetime in seconds.
            **claims: more claims (``is_admin=True``, say).

        Raises:
            ConfigurationError: the key cannot sign (a public key), or a keyring without
                `signing_kid`.
        """
        if isinstance(subject, Mapping):
            claims = {**subject, **claims}
            subject = claims.pop("sub", None)
        if not isinstance(subject, str) or not subject:
            raise ConfigurationError(f"a token's subject (sub) is a non-empty string, not {subject!r}")
        if self._keyring is not None:
            if self.signing_kid is None:
                raise ConfigurationError("JWTAuth.issue with a keyring needs signing_kid")
            key, headers = self._keyring[self.signing_kid], {"kid": self.signing_kid}
        else:
            assert self._key is not None
            key, headers = self._key, None
        now = time.time()
        payload = {"sub": subject, "iat": now, "exp": int(now + expires_in), **claims}
        if self.issuer:
            payload.setdefault("iss", self.issuer)
        if self.audience:
            payload.setdefault("aud", self.audience)
        try:
            return jwt.encode(payload, key.key, algorithm=key.algorithm, headers=headers)
        except (jwt.InvalidKeyError, ValueError, TypeError) as exc:
            raise ConfigurationError(f"this JWTAuth cannot sign tokens: {exc}") from None

    def _key_for(self, kid: Any) -> JWTKey:
        if self._keyring is None:
            assert self._key is not None
            return self._key
        key = self._keyring.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise AuthenticationError("The token names no key this server knows (kid).")
        return key
