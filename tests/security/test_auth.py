"""JSON Web Tokens as an attacker sends them, over real sockets on 127.0.0.1.

Each pitfall is refused with its exact status, and a well-behaved client is served afterwards.
Every credential route is driven: the handshake's Bearer header and ``?token=``, the in-band
``auth`` message (which also refreshes an expiring token), and ``args.token`` per request.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import jwt
import orjson
import pytest
import trio
import trio_websocket
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.trio_rest._sockets import running
from trio_rest import App, ConfigurationError, Request, Server, Settings, SimpleRouter, endpoint
from trio_rest.auth import AllowAny, IsAdmin, IsAuthenticated, JWTAuth, JWTKey
from trio_rest.testing import TestClient

SECRET = "s" * 32


@endpoint(permissions=[IsAuthenticated])
async def me(request: Request) -> Any:
    return request.user["sub"]


@endpoint(permissions=[IsAdmin])
async def admin(request: Request) -> str:
    return "admin"


@endpoint(permissions=[AllowAny])
async def public(request: Request) -> str:
    return "public"


def _app(auth: JWTAuth, **options: Any) -> App:
    router = SimpleRouter()
    router.register("/me", me, "GET")
    router.register("/admin", admin, "GET")
    router.register("/public", public, "GET")
    return App(router, auth=auth, **options)


@asynccontextmanager
async def _serving(auth: JWTAuth, **options: Any) -> AsyncIterator[Server]:
    with trio.fail_after(20):
        async with running(_app(auth, **options)) as server:
            yield server


def _url(server: Server, query: str = "") -> str:
    return f"ws://127.0.0.1:{server.port}/{query}"


async def _ask(ws: trio_websocket.WebSocketConnection, url: str, **envelope: Any) -> dict[str, Any]:
    await ws.send_message(orjson.dumps({"method": "GET", "url": url, "id": 1, **envelope}).decode())
    reply: dict[str, Any] = orjson.loads(await ws.get_message())
    return reply


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """A token built by hand, as an attacker would (PyJWT refuses to make these)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(sign(signing_input.encode()))}"


def _claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "ada", "exp": int(time.time()) + 600, **extra}


def _hs256(secret: bytes) -> Callable[[bytes], bytes]:
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


async def _refused(server: Server, token: str, detail: str) -> None:
    """The token is refused per request (401), then a good one is served on the same socket."""
    async with trio_websocket.open_websocket_url(_url(server)) as ws:
        reply = await _ask(ws, "/me", args={"token": token})
        assert (reply["status"], reply["code"]) == (401, "not_authenticated")
        assert detail in reply["detail"]
        assert token not in reply["detail"]
        good = JWTAuth(SECRET).issue("bob")
        assert (await _ask(ws, "/me", args={"token": good}))["data"] == "bob"


@pytest.fixture
def rsa_keys() -> tuple[str, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


async def test_alg_none_is_refused() -> None:
    async with _serving(JWTAuth(SECRET)) as server:
        token = _forge({"alg": "none", "typ": "JWT"}, _claims(), lambda data: b"")
        await _refused(server, token, "algorithm")


async def test_hs256_signed_with_the_rsa_public_key_is_refused(rsa_keys: tuple[str, str]) -> None:
    private_pem, public_pem = rsa_keys
    async with _serving(JWTAuth(JWTKey(public_pem, "RS256"))) as server:
        token = _forge({"alg": "HS256", "typ": "JWT"}, _claims(), _hs256(public_pem.encode()))
        async with trio_websocket.open_websocket_url(_url(server)) as ws:
            reply = await _ask(ws, "/me", args={"token": token})
            assert (reply["status"], reply["detail"]) == (401, "The token's algorithm is not accepted.")
            good = jwt.encode(_claims(sub="rsa"), private_pem, algorithm="RS256")
            assert (await _ask(ws, "/me", args={"token": good}))["data"] == "rsa"


@pytest.mark.parametrize(
    ("make", "detail"),
    [
        (lambda: JWTAuth(SECRET).issue("ada")[:-3] + "AAA", "signature"),
        (lambda: JWTAuth(SECRET).issue("ada", expires_in=-120), "expired"),
        (lambda: jwt.encode(_claims(nbf=int(time.time()) + 3600), SECRET), "not valid yet"),
        (lambda: jwt.encode({"sub": "ada"}, SECRET), "'exp'"),
        (
            lambda: _forge({"alg": "HS256", "crit": ["x"], "x": 1}, _claims(), _hs256(SECRET.encode())),
            "critical",
        ),
        (lambda: "not.a.token", "malformed"),
    ],
    ids=["bad-signature", "expired", "future-nbf", "no-exp", "unknown-crit", "malformed"],
)
async def test_each_broken_token_is_refused(make: Callable[[], str], detail: str) -> None:
    async with _serving(JWTAuth(SECRET)) as server:
        await _refused(server, make(), detail)


async def test_wrong_audience_and_issuer_are_refused() -> None:
    auth = JWTAuth(SECRET, issuer="https://id.example", audience="api")
    async with _serving(auth) as server, trio_websocket.open_websocket_url(_url(server)) as ws:
        for claims, detail in (
            (_claims(iss="https://id.example", aud="other"), "audience"),
            (_claims(iss="https://evil.example", aud="api"), "issuer"),
            (_claims(aud="api"), "'iss'"),
        ):
            reply = await _ask(ws, "/me", args={"token": jwt.encode(claims, SECRET)})
            assert reply["status"] == 401 and detail in reply["detail"], reply
        assert (await _ask(ws, "/me", args={"token": auth.issue("ada")}))["data"] == "ada"


async def test_a_keyring_refuses_an_unknown_kid_and_follows_rotation() -> None:
    old, new = JWTKey("o" * 32), JWTKey("n" * 32)
    auth = JWTAuth(keys={"2025": old, "2026": new}, signing_kid="2026")
    async with _serving(auth) as server, trio_websocket.open_websocket_url(_url(server)) as ws:
        unknown = jwt.encode(_claims(), "n" * 32, headers={"kid": "2027"})
        nameless = jwt.encode(_claims(), "n" * 32)
        for token in (unknown, nameless):
            reply = await _ask(ws, "/me", args={"token": token})
            assert (reply["status"], reply["detail"]) == (
                401,
                "The token names no key this server knows (kid).",
            )
        older = jwt.encode(_claims(sub="old"), "o" * 32, headers={"kid": "2025"})
        assert (await _ask(ws, "/me", args={"token": older}))["data"] == "old"
        assert (await _ask(ws, "/me", args={"token": auth.issue("new")}))["data"] == "new"


def test_weak_keys_and_algorithms_are_refused_when_the_app_is_built() -> None:
    with pytest.raises(ConfigurationError, match="at least 32 bytes"):
        _app(JWTAuth("short"))
    with pytest.raises(ConfigurationError, match="at least 64 bytes"):
        JWTAuth("x" * 32, algorithm="HS512")
    with pytest.raises(ConfigurationError, match="not allowed"):
        JWTAuth(SECRET, algorithm="none")
    with pytest.raises(ConfigurationError, match="PEM"):
        JWTKey("not a pem", "RS256")
    with pytest.raises(ConfigurationError, match="require_auth"):
        App(SimpleRouter(), require_auth=True)


async def test_the_handshake_header_and_query_token() -> None:
    auth = JWTAuth(SECRET)
    async with _serving(auth) as server:
        headers = [("Authorization", f"Bearer {auth.issue('header')}")]
        async with trio_websocket.open_websocket_url(_url(server), extra_headers=headers) as ws:
            assert (await _ask(ws, "/me"))["data"] == "header"
        async with trio_websocket.open_websocket_url(_url(server, f"?token={auth.issue('query')}")) as ws:
            assert (await _ask(ws, "/me"))["data"] == "query"
        for bad in ([("Authorization", "Bearer nope")], []):
            query = "" if bad else "?token=nope"
            with pytest.raises(trio_websocket.HandshakeError) as info:
                async with trio_websocket.open_websocket_url(_url(server, query), extra_headers=bad):
                    pass
            assert getattr(info.value, "status_code", None) == 401
        async with trio_websocket.open_websocket_url(_url(server)) as ws:  # no credentials at all
            reply = await _ask(ws, "/me")
            assert (reply["status"], reply["detail"]) == (
                401,
                "Authentication credentials were not provided.",
            )
            assert (await _ask(ws, "/public"))["data"] == "public"


async def test_in_band_auth_and_a_refresh_before_expiry() -> None:
    auth = JWTAuth(SECRET, leeway=0)
    async with _serving(auth) as server, trio_websocket.open_websocket_url(_url(server)) as ws:
        await ws.send_message(orjson.dumps({"type": "auth", "token": "bad", "id": "a"}).decode())
        refused = orjson.loads(await ws.get_message())
        assert (refused["id"], refused["status"]) == ("a", 401)
        await ws.send_message(
            orjson.dumps({"type": "auth", "token": auth.issue("ada", expires_in=1)}).decode()
        )
        assert orjson.loads(await ws.get_message())["status"] == 200
        assert (await _ask(ws, "/me"))["data"] == "ada"
        await trio.sleep(2.1)  # the connection's token expires: it no longer authorises
        expired = await _ask(ws, "/me")
        assert expired["status"] == 401 and "expired" in expired["detail"]
        await ws.send_message(
            orjson.dumps({"type": "auth", "token": auth.issue("ada", is_admin=True)}).decode()
        )
        assert orjson.loads(await ws.get_message())["status"] == 200  # refreshed without a reconnect
        assert (await _ask(ws, "/admin"))["data"] == "admin"


async def test_permissions_401_without_a_user_403_with_one() -> None:
    auth = JWTAuth(SECRET)
    async with _serving(auth) as server, trio_websocket.open_websocket_url(_url(server)) as ws:
        assert (await _ask(ws, "/admin"))["status"] == 401
        user = await _ask(ws, "/admin", args={"token": auth.issue("ada")})
        assert (user["status"], user["code"]) == (403, "permission_denied")
        assert (await _ask(ws, "/admin", args={"token": auth.issue("root", is_admin=True)}))["status"] == 200


async def test_require_auth_wants_an_auth_message_first_and_in_time() -> None:
    auth = JWTAuth(SECRET)
    settings = Settings(auth_timeout=0.5)
    async with _serving(auth, require_auth=True, settings=settings) as server:
        async with trio_websocket.open_websocket_url(_url(server)) as ws:  # a request first
            reply = await _ask(ws, "/public")
            assert (reply["status"], reply["code"]) == (401, "not_authenticated")
            with pytest.raises(trio_websocket.ConnectionClosed) as info:
                await ws.get_message()
            assert (info.value.reason.code, info.value.reason.reason) == (1008, "authentication required")
        async with trio_websocket.open_websocket_url(_url(server)) as ws:  # nothing in time
            start = trio.current_time()
            with pytest.raises(trio_websocket.ConnectionClosed) as info:
                await ws.get_message()
            assert info.value.reason.code == 1008 and 0.4 < trio.current_time() - start < 2
        async with trio_websocket.open_websocket_url(_url(server)) as ws:  # the auth message first
            await ws.send_message(orjson.dumps({"type": "auth", "token": auth.issue("ada")}).decode())
            assert orjson.loads(await ws.get_message())["status"] == 200
            await trio.sleep(0.7)  # past the deadline: authenticated, so it stays open
            assert (await _ask(ws, "/public"))["data"] == "public"
        headers = [("Authorization", f"Bearer {auth.issue('bob')}")]
        async with trio_websocket.open_websocket_url(_url(server), extra_headers=headers) as ws:
            assert (await _ask(ws, "/me"))["data"] == "bob"  # credentials in the handshake suffice


async def test_revoking_a_user_closes_its_sockets_and_refuses_its_tokens() -> None:
    auth = JWTAuth(SECRET)
    app = _app(auth)
    old_token = auth.issue("ada")
    with trio.fail_after(20):
        async with running(app) as server:
            ada_headers = [("Authorization", f"Bearer {old_token}")]
            bob_headers = [("Authorization", f"Bearer {auth.issue('bob')}")]
            async with (
                trio_websocket.open_websocket_url(_url(server), extra_headers=ada_headers) as ada,
                trio_websocket.open_websocket_url(_url(server), extra_headers=bob_headers) as bob,
            ):
                assert (await _ask(ada, "/me"))["data"] == "ada"
                assert app.revoke("ada") == 1
                with pytest.raises(trio_websocket.ConnectionClosed) as info:
                    await ada.get_message()
                assert info.value.reason.code == 1008
                assert (await _ask(bob, "/me"))["data"] == "bob"  # others are untouched
                refused = await _ask(bob, "/me", args={"token": old_token})
                assert (refused["status"], refused["detail"]) == (401, "The token was revoked.")
                assert (await _ask(bob, "/me", args={"token": auth.issue("ada")}))["data"] == "ada"


class _SlowLoader:
    """A user loader that, for "ada", waits until told: a revocation comes while it waits."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.checking = trio.Event()
        self.go_on = trio.Event()

    async def __call__(self, claims: dict[str, Any]) -> Any:
        if claims["sub"] == "ada" and not self.go_on.is_set():
            self.checking.set()
            await self.go_on.wait()
        return claims

    async def revoke_while_checking(self) -> None:
        await self.checking.wait()
        self.app.revoke("ada")
        self.go_on.set()


async def test_a_user_revoked_while_its_token_is_checked_gets_nothing_from_it() -> None:
    """The handshake, an auth message, args.token: a token revoked during its own check is refused."""
    auth = JWTAuth(SECRET)
    app = _app(auth)
    with trio.fail_after(20):
        async with running(app) as server, trio.open_nursery() as nursery:
            # The handshake: accepted by then, its connection serves nothing as ada, and closes (1008).
            slow = auth.user_loader = _SlowLoader(app)
            headers = [("Authorization", f"Bearer {auth.issue('ada')}")]
            nursery.start_soon(slow.revoke_while_checking)
            async with trio_websocket.open_websocket_url(_url(server), extra_headers=headers) as ws:
                with pytest.raises(trio_websocket.ConnectionClosed) as info:
                    # Answered 401 (or 503: closing), never as ada; or the close comes first.
                    reply = await _ask(ws, "/me")
                    assert reply["status"] in (401, 503) and "data" not in reply, reply
                    await ws.get_message()
                assert (info.value.reason.code, info.value.reason.reason) == (1008, "credentials revoked")
            async with trio_websocket.open_websocket_url(_url(server)) as ws:
                # An auth message: refused, and the connection stays without credentials.
                slow = auth.user_loader = _SlowLoader(app)
                message = {"type": "auth", "token": auth.issue("ada"), "id": "a"}
                nursery.start_soon(slow.revoke_while_checking)
                await ws.send_message(orjson.dumps(message).decode())
                refused = orjson.loads(await ws.get_message())
                assert (refused["status"], refused["detail"]) == (401, "The token was revoked.")
                assert (await _ask(ws, "/me"))["status"] == 401
                # args.token: that request is refused.
                slow = auth.user_loader = _SlowLoader(app)
                token = auth.issue("ada")
                nursery.start_soon(slow.revoke_while_checking)
                refused = await _ask(ws, "/me", args={"token": token})
                assert (refused["status"], refused["detail"]) == (401, "The token was revoked.")
    app.revocations.check_invariants()
    assert app.revocations.count == 3


async def test_requests_read_before_a_revocation_and_run_after_it_are_refused() -> None:
    """One at a time: the requests queued behind the one that revokes are answered 401.

    The one that revokes finishes, and one that brings its own token is served with it.
    """
    auth = JWTAuth(SECRET)
    ran_as: list[Any] = []

    @endpoint(permissions=[AllowAny])
    async def revoke_ada(request: Request) -> int:
        while request.connection.stats().waiting < 4:  # the others are read, and wait
            await trio.sleep(0.01)
        closed = request.app.revoke("ada")
        await trio.sleep(0.01)  # its own revocation does not cancel it
        return closed

    @endpoint(permissions=[AllowAny])
    async def who(request: Request) -> Any:
        ran_as.append(request.user)
        return request.user["sub"]

    router = SimpleRouter()
    router.register("/revoke", revoke_ada, "POST")
    router.register("/who", who, "GET")
    app = App(router, auth=auth, settings=Settings(max_concurrency=1))
    replies: list[Any] = []
    with trio.fail_after(10):
        async with TestClient(app, path=f"/?token={auth.issue('ada')}", reconnect=False) as client:

            async def ask(method: str, url: str, **args: Any) -> None:
                reply = await client.request(method, url, args=args)
                replies.append((url, reply.status, reply.data))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(ask, "POST", "/revoke")
                await trio.sleep(0.05)  # sent first, so read first
                for _ in range(3):
                    nursery.start_soon(ask, "GET", "/who")
                nursery.start_soon(functools.partial(ask, "GET", "/who", token=auth.issue("bob")))
    assert sorted(replies, key=str) == [
        ("/revoke", 200, 1),
        ("/who", 200, "bob"),
        ("/who", 401, None),
        ("/who", 401, None),
        ("/who", 401, None),
    ]
    assert [user["sub"] for user in ran_as] == ["bob"]  # none ran as ada, or as anyone


async def test_a_revocation_reaches_what_runs_while_the_connection_closes_or_changes_user() -> None:
    """Closing already, or authenticated as bob since: what was read as ada is refused all the same."""
    auth = JWTAuth(SECRET)
    started: list[Request] = []

    @endpoint(permissions=[IsAuthenticated])
    async def slow(request: Request) -> Any:
        started.append(request)
        await trio.sleep(2)
        return request.user["sub"]

    router = SimpleRouter()
    router.register("/slow", slow, "GET")
    app = App(router, auth=auth, settings=Settings(max_concurrency=1))
    with trio.fail_after(10):
        async with TestClient(app, path=f"/?token={auth.issue('ada')}", reconnect=False) as client:
            async with trio.open_nursery() as nursery:
                replies: list[Any] = []

                async def ask() -> None:
                    reply = await client.get("/slow")
                    replies.append((reply.status, reply.detail))

                nursery.start_soon(ask)
                while not started:
                    await trio.sleep(0.01)
                nursery.start_soon(started[0].connection.close, 1000, "bye")  # a grace of 10 s
                await trio.sleep(0.05)
                assert app.revoke("ada") == 1
            assert replies == [(401, "The token was revoked.")]
        async with running(app) as server:
            url = f"ws://127.0.0.1:{server.port}/?token={auth.issue('ada')}"
            async with trio_websocket.open_websocket_url(url) as ws:
                for message in (
                    {"method": "GET", "url": "/slow", "id": 1},  # runs, as ada
                    {"method": "GET", "url": "/slow", "id": 2},  # read as ada, waits for the first
                    {"type": "auth", "token": auth.issue("bob"), "id": "a"},  # bob's connection now
                ):
                    await ws.send_message(orjson.dumps(message).decode())
                assert orjson.loads(await ws.get_message())["id"] == "a"
                assert app.revoke("ada") == 0  # not her connection any more
                answers = sorted(
                    (m["id"], m["status"]) for m in [orjson.loads(await ws.get_message()) for _ in "12"]
                )
                assert answers == [(1, 401), (2, 401)]  # both read as ada


async def test_a_subscription_made_with_a_revoked_users_own_token_ends() -> None:
    """On an anonymous connection, args.token's subscription ends with a 401 when its user is revoked."""
    auth = JWTAuth(SECRET)

    @endpoint(permissions=[IsAuthenticated])
    async def room(request: Request) -> None:
        await request.follow("room")
        await trio.sleep_forever()

    router = SimpleRouter()
    router.register("/room", room, "SUBSCRIBE")
    app = App(router, auth=auth)
    with trio.fail_after(10):
        async with TestClient(app, reconnect=False) as client:
            token = auth.issue("ada")
            async with (
                client.subscribe("/room", args={"token": token}) as ada,
                client.subscribe("/room", args={"token": auth.issue("bob")}) as bob,
            ):
                assert app.revoke("ada") == 0  # no connection of hers to close
                final = await ada.__anext__()
                assert (final.event_name, final.final, final.data["status"]) == ("error", True, 401)
                assert final.data["detail"] == "The token was revoked."
                assert await app.publish("room", "message", "for bob") == 1  # bob's goes on
                assert (await bob.__anext__()).data == "for bob"
                with pytest.raises(StopAsyncIteration):
                    await ada.__anext__()


async def test_an_rs256_private_key_verifies_and_a_failing_loader_is_a_500(rsa_keys: tuple[str, str]) -> None:
    private_pem, _ = rsa_keys
    auth = JWTAuth(JWTKey(private_pem, "RS256"))

    def loader(claims: dict[str, Any]) -> Any:
        if claims["sub"] == "broken":
            raise KeyError("the user store is down")
        return claims

    auth.user_loader = loader
    async with _serving(auth) as server:
        async with trio_websocket.open_websocket_url(_url(server)) as ws:
            assert (await _ask(ws, "/me", args={"token": auth.issue("ada")}))["data"] == "ada"
            await ws.send_message(
                orjson.dumps({"type": "auth", "token": auth.issue("broken"), "id": "x"}).decode()
            )
            assert orjson.loads(await ws.get_message())["status"] == 500  # answered; the socket lives
            assert (await _ask(ws, "/public"))["data"] == "public"
        headers = [("Authorization", f"Bearer {auth.issue('broken')}")]
        with pytest.raises(trio_websocket.HandshakeError) as info:
            async with trio_websocket.open_websocket_url(_url(server), extra_headers=headers):
                pass
        assert getattr(info.value, "status_code", None) == 500


async def test_auth_messages_are_rate_limited_too() -> None:
    auth = JWTAuth(SECRET)
    settings = Settings(rate_limit=1000.0, rate_burst=5, rate_limit_strikes=1000)
    async with (
        _serving(auth, settings=settings) as server,
        trio_websocket.open_websocket_url(_url(server)) as ws,
    ):
        message = orjson.dumps({"type": "auth", "token": auth.issue("ada")}).decode()
        for _ in range(20):
            await ws.send_message(message)
        statuses = [orjson.loads(await ws.get_message())["status"] for _ in range(20)]
        assert 429 in statuses and 200 in statuses
