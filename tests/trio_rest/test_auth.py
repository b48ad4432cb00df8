"""Permissions per view and per method, the App's default, object permissions, password hashes."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_rest import App, ConfigurationError, MethodBasedView, Request, SimpleRouter, endpoint
from trio_rest.auth import AllowAny, BasePermission, IsAuthenticated, JWTAuth, hash_password, verify_password
from trio_rest.auth._recent import RecentRevocations
from trio_rest.testing import TestClient

AUTH = JWTAuth("k" * 32)


class IsOwner(BasePermission):
    message = "Only its owner may change it."

    def has_object_permission(self, request: Request, obj: Any) -> bool:
        return bool(request.user["sub"] == obj["owner"])


class NoteView(MethodBasedView):
    permission_classes: ClassVar[Any] = {"GET": [AllowAny], "*": [IsAuthenticated, IsOwner]}

    async def get(self, request: Request, id: int) -> str:
        return "anyone reads"

    async def put(self, request: Request, id: int) -> str:
        request.check_object_permissions({"owner": "ada"})
        return "changed"


@endpoint
async def default(request: Request) -> str:  # names no permissions: the App's apply
    return "default"


@endpoint(permissions=[lambda request: request.args.get("please") == "yes"])
async def polite(request: Request) -> str:
    return "polite"


def _app() -> App:
    router = SimpleRouter()
    router.register("/note/{id:int}", NoteView, ["GET", "PUT"])
    router.register("/default", default, "GET")
    router.register("/polite", polite, "GET")
    return App(router, auth=AUTH, permissions=[IsAuthenticated])


async def test_permissions_per_method_object_and_default() -> None:
    ada, bob = {"token": AUTH.issue("ada")}, {"token": AUTH.issue("bob")}
    async with TestClient(_app()) as client:
        assert (await client.get("/note/1")).data == "anyone reads"
        assert (await client.put("/note/1")).status == 401
        refused = await client.put("/note/1", args=bob)
        assert (refused.status, refused.detail) == (403, "Only its owner may change it.")
        assert (await client.put("/note/1", args=ada)).data == "changed"
        assert (await client.get("/default")).status == 401  # the App's default
        assert (await client.get("/default", args=ada)).data == "default"
        assert (await client.get("/polite")).status == 401  # a callable: no user, so 401
        assert (await client.get("/polite", args={**ada, "please": "yes"})).data == "polite"
        assert (await client.get("/polite", args=ada)).status == 403


def test_a_permission_that_is_none_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="not a permission"):
        App(SimpleRouter(), permissions=[42])


def test_password_hashes() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$") and "correct horse" not in stored
    assert verify_password("correct horse", stored)
    assert not verify_password("wrong", stored)
    assert hash_password("correct horse") != stored  # a fresh salt each time
    for broken in ("", "scrypt$1$2", "md5$x$y$z$a$b", "scrypt$x$8$1$AAAA$AAAA"):
        assert not verify_password("correct horse", broken)


async def test_authentication_from_the_settings_alone() -> None:
    from trio_rest import Settings

    secret = "e" * 32
    settings = Settings().from_env({"TRIO_REST_JWT_SECRET": secret, "TRIO_REST_JWT_ISSUER": "me"})
    assert secret not in repr(settings)  # never shown
    router = SimpleRouter()
    router.register("/default", default, "GET")
    app = App(router, settings=settings, permissions=[IsAuthenticated])
    assert app.auth is not None and app.auth.issuer == "me"
    async with TestClient(app) as client:
        assert (await client.get("/default")).status == 401
        assert (await client.get("/default", args={"token": app.auth.issue("ada")})).data == "default"


def test_settings_set_later_configure_the_authentication_too() -> None:
    from trio_rest import Settings

    app = App(SimpleRouter())
    assert app.auth is None
    app.settings = Settings(jwt_secret="l" * 32)  # what the CLI does with the environment
    assert app.auth is not None and app.auth.decode(app.auth.issue("ada"))["sub"] == "ada"
    with pytest.raises(ConfigurationError, match="at least 32 bytes"):
        app.settings = Settings(jwt_secret="short")
    coded = App(SimpleRouter(), auth=AUTH)
    coded.settings = Settings(jwt_secret="l" * 32)
    assert coded.auth is AUTH  # an auth given in code wins


def test_the_design_briefs_spelling_of_jwtauth_and_issue() -> None:
    """``JWTAuth(key=SECRET, algorithms=["HS256"])`` and ``auth.issue({"sub": "1"}, expires_in=3600)``."""
    auth = JWTAuth(key="k" * 64, algorithms=["HS512"])
    token = auth.issue({"sub": "1", "is_admin": True}, expires_in=3600)
    claims = auth.decode(token)
    assert (claims["sub"], claims["is_admin"]) == ("1", True)
    assert claims["exp"] - claims["iat"] == pytest.approx(3600, abs=1)
    assert JWTAuth("k" * 64, algorithm="HS512").decode(token)["sub"] == "1"  # the same key and algorithm
    # A key verifies one algorithm: a token may not pick another one from a list.
    for algorithms in (["HS256", "HS512"], [], "HS256"):
        with pytest.raises(ConfigurationError, match="names one algorithm"):
            JWTAuth("k" * 64, algorithms=algorithms)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="not two different ones"):
        JWTAuth("k" * 64, algorithm="HS384", algorithms=["HS512"])
    for claims_without_a_subject in ({"is_admin": True}, {"sub": 1}, {"sub": ""}):
        with pytest.raises(ConfigurationError, match="subject"):
            auth.issue(claims_without_a_subject)


@given(
    steps=st.lists(st.one_of(st.sampled_from(["ada", "bob", "eve"]), st.just(None)), max_size=60),
    kept=st.integers(1, 8),
)
def test_recent_revocations_never_wrongly_accept(steps: list[str | None], kept: int) -> None:
    """Against every revocation ever made: a subject revoked after a mark is always said to be."""
    recent = RecentRevocations(kept)
    made: list[str] = []
    marks: list[int] = []
    for subject in steps:
        if subject is None:
            marks.append(recent.mark())
        else:
            recent.add(subject)
            made.append(subject)
        recent.check_invariants()
        for mark in marks:
            for who in ("ada", "bob", "eve"):
                if who in made[mark:]:
                    assert recent.revoked_since(who, mark)
                elif mark >= len(made) - kept:  # all of them remembered: exact
                    assert not recent.revoked_since(who, mark)


@pytest.mark.parametrize("kept", [0, -1, True, 1.5])
def test_recent_revocations_keep_a_positive_number(kept: Any) -> None:
    with pytest.raises(ValueError, match="kept must be a positive integer"):
        RecentRevocations(kept)
