"""The connection driver, end to end over the in-memory TestClient."""

from __future__ import annotations

import gc
import time
import uuid
import weakref
from typing import Any

import pytest
import trio
import trio.testing

from trio_rest import App, ConfigurationError, Request, Settings, SimpleRouter, endpoint
from trio_rest.testing import TestClient

from ._raw import memory_connection
from ._sockets import RawClient, running
from .conftest import build_app


async def test_get_with_params_and_merged_args(app: App) -> None:
    async with TestClient(app) as client:
        response = await client.get("/user/6?expand=addresses", args={"x": "1"}, event_name="get-user")
    assert response.status == 200
    assert response.data == {"id": 6, "args": {"expand": "addresses", "x": "1"}}
    assert response.event_name == "get-user"


async def test_plain_def_handler_runs_in_a_thread(app: App) -> None:
    async with TestClient(app) as client:
        response = await client.put("/user/2/", {"name": "Ada"})
    assert (response.status, response.data) == (200, {"id": 2, "name": "Ada"})


async def test_converters_over_the_wire(app: App) -> None:
    key = uuid.uuid4()
    async with TestClient(app) as client:
        assert (await client.get("/hello/ada")).data == {"greeting": "Hello, ada", "user": "/user/3"}
        assert (await client.get("/hello/a%20b/")).data["greeting"] == "Hello, a b"
        assert (await client.get("/files/a/b/c.txt")).data == "a/b/c.txt"
        assert (await client.get(f"/keys/{key}")).data == str(key)
        assert (await client.get("/keys/not-a-uuid")).status == 404
        assert (await client.get("/user/abc")).status == 404


@pytest.mark.parametrize(
    ("method", "url", "status", "code"),
    [
        ("GET", "/nowhere", 404, "not_found"),
        ("DELETE", "/user/1", 405, "method_not_allowed"),
        ("GET", "/user/404", 404, "not_found"),
    ],
)
async def test_routing_errors(app: App, method: str, url: str, status: int, code: str) -> None:
    async with TestClient(app) as client:
        response = await client.request(method, url)
    assert (response.status, response.code) == (status, code)


async def test_405_names_the_allowed_methods_and_options_lists_them(app: App) -> None:
    async with TestClient(app) as client:
        refused = await client.delete("/user/1")
        options = await client.request("OPTIONS", "/user/1")
    assert refused.errors == {"allowed": ["GET", "HEAD", "PUT"]}  # HEAD: GET's view, no data
    assert (options.status, options.data) == (200, {"allow": ["GET", "HEAD", "PUT"]})


async def test_head_is_get_without_the_data(app: App) -> None:
    async with TestClient(app) as client:
        head = await client.request("HEAD", "/user/1")
        missing = await client.request("HEAD", "/user/404")
        refused = await client.request("HEAD", "/item/")  # POST only
    assert (head.status, head.data) == (200, None)
    assert missing.status == 404
    assert refused.status == 405


@pytest.mark.parametrize(
    ("kind", "method", "message"),
    [
        ("async", "GET", "register it for SUBSCRIBE, not GET"),
        ("plain", "SUBSCRIBE", "make it an async generator"),
    ],
)
def test_a_generator_that_cannot_stream_is_refused_when_the_app_is_built(
    kind: str, method: str, message: str
) -> None:
    async def stream_async(request: Request) -> Any:
        yield 1

    def stream_plain(request: Request) -> Any:
        yield 1

    router = SimpleRouter()
    router.register("/stream", stream_async if kind == "async" else stream_plain, method)
    with pytest.raises(ConfigurationError, match=message):
        App(router)


async def test_view_crash_is_500_without_internals_and_connection_lives(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    async with TestClient(app) as client:
        response = await client.get("/crash")
        assert (response.status, response.code) == (500, "internal_error")
        assert "secret" not in repr(response)
        assert (await client.get("/user/1")).status == 200
    assert "secret internals" in caplog.text  # the traceback is in the log


async def test_unencodable_reply_is_500(app: App) -> None:
    async with TestClient(app) as client:
        response = await client.get("/not-json")
        assert (response.status, response.code) == (500, "internal_error")
        assert (await client.get("/user/1")).status == 200


async def test_body_structuring_reports_every_field(app: App) -> None:
    async with TestClient(app) as client:
        created = await client.post("/item/", {"name": "cup", "size": 2})
        missing = await client.post("/item/", {"size": "big", "colour": "red"})
    assert (created.status, created.data) == (201, {"name": "cup", "size": 2})
    assert (missing.status, missing.code) == (400, "invalid")
    assert set(missing.errors) >= {"name", "size"}


async def test_timeout_is_504(app: App, autojump_clock: trio.testing.MockClock) -> None:
    async with TestClient(app) as client:
        response = await client.get("/sleep", timeout=0.5)
    assert (response.status, response.code) == (504, "timeout")


async def test_default_timeout_applies(autojump_clock: trio.testing.MockClock) -> None:
    async with TestClient(build_app(request_timeout=2.0)) as client:
        assert (await client.get("/sleep")).status == 504
        assert (await client.get("/sleep?seconds=1")).data == "woke"


async def test_cancel_is_499(app: App, autojump_clock: trio.testing.MockClock) -> None:
    async with TestClient(app) as client:
        await client.send_raw('{"method": "GET", "url": "/sleep", "id": "slow"}')
        await trio.sleep(1)
        response = await client.request("GET", "/user/1")  # the connection keeps serving
        assert response.status == 200
        waiter = client._waiters  # the raw request has no waiter: read the reply by hand
        assert "slow" not in waiter
        with trio.fail_after(5):
            reply = await _cancel_and_wait(client, "slow")
    assert (reply.status, reply.code, reply.id) == (499, "cancelled", "slow")


async def _cancel_and_wait(client: object, request_id: str) -> object:
    from trio_rest.client import _Waiter

    waiter = _Waiter()
    client._waiters[request_id] = waiter  # type: ignore[attr-defined]
    await client.send_raw('{"type": "cancel", "id": "slow"}')  # type: ignore[attr-defined]
    await waiter.done.wait()
    return waiter.response


async def test_leaving_the_scope_cancels_on_the_server(
    app: App, autojump_clock: trio.testing.MockClock
) -> None:
    test_client = TestClient(app)
    async with test_client as client:
        with trio.move_on_after(1):
            await client.get("/sleep")
        await trio.sleep(0.1)
        (conn,) = test_client.server.connections
        assert conn.stats().running == 0  # the server cancelled the handler
        assert (await client.get("/user/1")).status == 200


async def test_subscription_notifies_then_ends_with_a_final_notification(app: App) -> None:
    async with TestClient(app) as client, client.subscribe("/ticks?count=3") as subscription:
        notes = [note async for note in subscription]
    assert subscription.response.status == 200
    assert [note.data for note in notes] == [{"i": 0}, {"i": 1}, {"i": 2}, "done"]
    assert [note.seq for note in notes] == [1, 2, 3, 4]
    assert notes[-1].final and notes[0].event_name == "tick" and notes[0].topic == "/ticks"


async def test_unsubscribing_cancels_the_handler(app: App) -> None:
    test_client = TestClient(app)
    async with test_client as client:
        async with client.subscribe("/ticks?count=1&forever=1") as subscription:
            first = await subscription.__anext__()
            assert first.data == {"i": 0}
        await trio.sleep(0.05)
        (conn,) = test_client.server.connections
        assert conn.stats().subscriptions == 0
        assert (await client.get("/user/1")).status == 200


async def test_refused_subscription_raises(app: App) -> None:
    from trio_rest import APIError

    async with TestClient(app) as client:
        with pytest.raises(APIError) as info:
            async with client.subscribe("/refuse"):
                pass  # pragma: no cover
    assert (info.value.status, info.value.code) == (404, "not_found")


async def test_subscription_limit_is_429() -> None:
    async with (
        TestClient(build_app(max_subscriptions=1)) as client,
        client.subscribe("/ticks?count=1&forever=1"),
    ):
        second = await client.request("SUBSCRIBE", "/ticks", id="two")
    assert (second.status, second.code) == (429, "too_many_requests")


async def test_topic_notification(app: App) -> None:
    async with TestClient(app) as client:
        assert (await client.post("/broadcast")).data == "sent"
        note = client.notifications.receive_nowait()
    assert (note.id, note.topic, note.event_name, note.data) == (None, "lobby", "hello", {"hello": "all"})


async def test_ping_pong(app: App) -> None:
    async with TestClient(app) as client:
        assert await client.ping() >= 0


async def test_in_band_auth_is_refused_without_an_authenticator(app: App) -> None:
    from trio_rest.client import _Waiter

    async with TestClient(app) as client:
        waiter = _Waiter()
        client._waiters["a"] = waiter
        await client.send_raw('{"type": "auth", "token": "x", "id": "a"}')
        await waiter.done.wait()
    assert waiter.response is not None and waiter.response.status == 501


async def test_concurrency_is_bounded_and_excess_waits(autojump_clock: trio.testing.MockClock) -> None:
    test_client = TestClient(build_app(max_concurrency=2))
    async with test_client as client:
        results: list[int] = []

        async def one() -> None:
            results.append((await client.get("/sleep?seconds=1")).status)

        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for _ in range(6):
                nursery.start_soon(one)
            await trio.sleep(0.5)
            (conn,) = test_client.server.connections
            stats = conn.stats()
            assert (stats.running, stats.waiting) == (2, 4)
    assert results == [200] * 6
    assert trio.current_time() - start >= 3  # three waves of two


async def test_cancel_of_a_waiting_request(autojump_clock: trio.testing.MockClock) -> None:
    test_client = TestClient(build_app(max_concurrency=1))
    async with test_client as client, trio.open_nursery() as nursery:
        nursery.start_soon(client.get, "/sleep?seconds=5")
        await trio.sleep(0.1)
        with trio.move_on_after(0.5):
            await client.get("/sleep?seconds=5")  # waits behind the first, then is cancelled
        await trio.sleep(0.1)
        (conn,) = test_client.server.connections
        assert conn.stats().waiting == 0


async def test_non_finite_float_in_reply_is_null(app: App) -> None:
    async with TestClient(app) as client:
        assert (await client.get("/nan")).data == {"x": None}


async def test_msgpack_subprotocol(app: App) -> None:
    async with TestClient(app, subprotocol="trio-rest.msgpack") as client:
        response = await client.get("/user/3")
    assert response.data == {"id": 3, "args": {}}


async def test_a_close_arriving_during_a_write_is_still_answered(app: App) -> None:
    """The writer must flush the close reply queued while it was blocked in send_all."""
    import wsproto
    import wsproto.events

    from trio_rest import Server

    client_stream, server_stream = trio.testing.memory_stream_pair()
    pump = server_stream.send_stream.send_all_hook
    writes = 0
    gate = trio.Event()

    async def held_write() -> None:
        nonlocal writes
        assert pump is not None
        await pump()
        writes += 1
        if writes == 2:  # the reply to our request: hold the server's writer here
            await gate.wait()

    server_stream.send_stream.send_all_hook = held_write
    ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    events: list[object] = []

    async def receive_events() -> None:
        ws.receive_data(await client_stream.receive_some(65536) or None)
        events.extend(ws.events())

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(Server(app).handle_stream, server_stream)
            await client_stream.send_all(ws.send(wsproto.events.Request(host="test", target="/")))
            await receive_events()
            await client_stream.send_all(
                ws.send(wsproto.events.Message(data='{"method": "GET", "url": "/user/1"}'))
            )
            await receive_events()  # the reply arrives; the server's send_all is still held
            await client_stream.send_all(ws.send(wsproto.events.CloseConnection(code=1000)))
            await trio.sleep(0.1)  # the server's reader sees the close meanwhile
            gate.set()
            while not any(isinstance(e, wsproto.events.CloseConnection) for e in events):
                await receive_events()
            await client_stream.aclose()
    closes = [e for e in events if isinstance(e, wsproto.events.CloseConnection)]
    assert closes[0].code == 1000  # the server's reply, not a connection lost (1006)


async def test_each_request_times_out_at_its_own_deadline(
    app: App, autojump_clock: trio.testing.MockClock
) -> None:
    """Later requests with earlier deadlines must not wait for the earlier requests' deadlines."""
    arrivals: dict[float, tuple[int, float]] = {}
    async with TestClient(app) as client:
        start = trio.current_time()

        async def one(seconds: float) -> None:
            response = await client.get("/sleep", timeout=seconds)
            arrivals[seconds] = (response.status, trio.current_time() - start)

        async with trio.open_nursery() as nursery:
            for seconds in (3.0, 1.0, 2.0):
                nursery.start_soon(one, seconds)
                await trio.sleep(0.01)
    for timeout, (status, elapsed) in arrivals.items():
        assert status == 504
        assert timeout <= elapsed < timeout + 0.1


async def test_a_burst_of_quick_requests_is_run_by_the_reader_and_slow_ones_run_concurrently(
    app: App, autojump_clock: trio.testing.MockClock
) -> None:
    test_client = TestClient(app)
    async with test_client as client:
        (conn,) = test_client.server.connections

        def workers() -> int:
            return conn.stats().workers

        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(client.get, f"/user/{i}")
        assert workers() == 0  # handlers that never wait ran in the reader's task
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(client.get, "/sleep?seconds=0.3")
        assert trio.current_time() - start < 0.4  # all at once, not one after another (1.5 s)
        assert workers() == 5


async def test_a_subscription_outlives_the_request_timeout(autojump_clock: trio.testing.MockClock) -> None:
    test_client = TestClient(build_app(request_timeout=1.0))
    async with test_client as client, client.subscribe("/ticks?count=1&forever=1") as subscription:
        assert (await subscription.__anext__()).data == {"i": 0}
        await trio.sleep(30)
        (conn,) = test_client.server.connections
        assert conn.stats().subscriptions == 1  # still streaming, no 504
        assert (await client.get("/sleep?seconds=5")).status == 504  # while requests still time out


async def test_a_worker_carries_no_deadline_or_cancel_to_its_next_job(
    app: App, autojump_clock: trio.testing.MockClock
) -> None:
    test_client = TestClient(app)
    async with test_client as client:
        assert (await client.get("/sleep?seconds=1", timeout=2)).data == "woke"
        assert (await client.get("/sleep?seconds=3")).data == "woke"  # not cut at the 2 s of the last
        assert (await client.get("/sleep", timeout=1)).status == 504
        assert (await client.get("/sleep?seconds=3")).data == "woke"  # a fresh scope after the 504
        (conn,) = test_client.server.connections
        assert conn.stats().workers == 1


# Races between workers, writes and cancellation, over real sockets.


async def _accept_and_return(request: Request) -> str:  # never waits: accept and notify do not
    await request.notify({"i": 0})
    return "done"


@endpoint
async def _quick(request: Request) -> str:
    return "quick"


@endpoint
def _blocking(request: Request) -> str:  # a plain def: its thread cannot be cancelled
    time.sleep(float(request.args.get("s", "0.3")))
    return "slow-done"


def _race_app(**settings: Any) -> App:
    router = SimpleRouter()
    router.register("/ticks", _accept_and_return, "SUBSCRIBE")
    router.register("/quick", _quick, "GET")
    router.register("/blocking", _blocking, "GET")
    return App(router, settings=Settings(**settings))


async def test_a_plain_def_view_past_its_deadline_is_answered_504_on_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running(_race_app()) as server:
        client = await RawClient.connect(server.port)
        start = trio.current_time()
        await client.send('{"method": "GET", "url": "/blocking?s=0.5", "id": "b", "timeout": 0.1}')
        [first] = await client.replies(1)  # the thread cannot be stopped, but the reply need not wait
        assert (first["id"], first["status"]) == ("b", 504)
        assert trio.current_time() - start < 0.4
        await client.send('{"method": "GET", "url": "/quick", "id": "q"}')
        [second] = await client.replies(1)
        assert (second["id"], second["status"]) == ("q", 200)
        assert await client.replies(1, seconds=0.6) == []  # the late result is not sent...
    assert "_blocking ended after its request was answered" in caplog.text  # ...but logged


async def test_a_cancel_of_a_plain_def_view_is_answered_at_once() -> None:
    async with running(_race_app()) as server:
        client = await RawClient.connect(server.port)
        await client.send('{"method": "GET", "url": "/blocking?s=0.4", "id": "b"}')
        await trio.sleep(0.1)
        await client.send('{"type": "cancel", "id": "b"}')
        [reply] = await client.replies(1)
        assert (reply["id"], reply["status"]) == ("b", 499)
        assert await client.replies(1, seconds=0.5) == []  # the thread's result is discarded


async def test_a_subscription_that_never_waits_leaves_no_request_stranded() -> None:
    async with running(_race_app()) as server:
        client = await RawClient.connect(server.port)
        await client.stream.send_all(
            client.frame('{"method": "SUBSCRIBE", "url": "/ticks", "id": "s"}')
            + client.frame('{"method": "GET", "url": "/quick", "id": "g"}')
        )
        got = await client.replies(4)  # 200, a notification, the final one, and the GET's reply
        assert any(m["id"] == "g" and m.get("status") == 200 for m in got), got


async def test_a_notification_to_a_connection_that_is_ending_is_dropped_quietly() -> None:
    errors: list[BaseException] = []
    async with trio.open_nursery() as outer:
        async with running(_race_app()) as server:
            client = await RawClient.connect(server.port)  # kept open: the shutdown ends it
            while not server.connections:
                await trio.sleep(0.01)
            (conn,) = server.connections

            async def notify_when_closed() -> None:
                while not conn.closed:
                    await trio.lowlevel.checkpoint()
                try:
                    await conn.send_notification({"x": 1})
                except BaseException as exc:  # what the old code raised: a closed nursery
                    errors.append(exc)

            outer.start_soon(notify_when_closed)
            await trio.sleep(0.01)
        await trio.sleep(0.1)
        await client.stream.aclose()
    assert not errors


# Closing: every request gets exactly one reply before the close frame.


async def test_a_graceful_close_answers_what_runs_and_what_waits_before_the_close_frame(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_connection(build_app(max_concurrency=1)) as (server, client, _):
        await client.send({"method": "GET", "url": "/sleep?seconds=1", "id": "quick-enough"})
        await client.send({"method": "GET", "url": "/sleep", "id": "running"})
        await client.send({"method": "GET", "url": "/user/1", "id": "waiting"})
        await trio.sleep(0.5)
        (conn,) = server.connections
        await conn.close(1001, "going away", grace=2)
        await client.closed.wait()
    replies = {m["id"]: (m["status"], m.get("code")) for m in client.responses()}
    assert replies == {"quick-enough": (200, None), "running": (503, "closing"), "waiting": (503, "closing")}
    assert len(client.responses()) == 3 and client.close_code == 1001


async def test_a_shutdown_by_cancellation_answers_every_request_before_its_1001(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = build_app(max_concurrency=2)
    async with (
        memory_connection(app) as (_, client, server_scope),
        client.subscribe_raw("/ticks?forever=1", "s"),
    ):
        for request_id in ("a", "b", "c"):  # two run, one waits
            await client.send({"method": "GET", "url": "/sleep", "id": request_id})
        await trio.sleep(1)
        server_scope.cancel()
        await client.closed.wait()
    replies = sorted((m["id"], m["status"]) for m in client.responses())
    assert replies == [("a", 503), ("b", 503), ("c", 503), ("s", 200)]
    (final,) = [m for m in client.messages if m.get("final")]
    assert (final["id"], final["event_name"], final["data"]["status"]) == ("s", "error", 503)
    assert client.close_code == 1001


async def test_a_thread_still_running_at_the_close_is_answered_before_the_close_frame() -> None:
    app = _race_app(shutdown_timeout=0.1, close_timeout=0.3)
    async with running(app) as server:
        client = await RawClient.connect(server.port)
        await client.send('{"method": "GET", "url": "/blocking?s=0.8", "id": "t"}')
        await trio.sleep(0.1)
        (conn,) = server.connections
        with trio.fail_after(5):
            await conn.close(1001, "going away")
        replies = await client.replies(2, seconds=1.5)  # the thread's own result never follows
    assert [(r["id"], r["status"], r["code"]) for r in replies] == [("t", 503, "closing")]


async def test_nothing_keeps_a_finished_connection_alive(autojump_clock: trio.testing.MockClock) -> None:
    """No registry (keepalive, server, pool, subscriptions) holds a closed client's connection."""
    async with memory_connection(build_app()) as (server, client, _):
        async with client.subscribe_raw("/ticks?count=1", "s"):
            await client.send({"method": "GET", "url": "/user/1", "id": "u"})
            await client.send({"method": "GET", "url": "/sleep", "id": "z"})
            await client.wait_for(2)
        (conn,) = server.connections
        ref = weakref.ref(conn)
        del conn
        await client.stream.aclose()
        while server.connections:
            await trio.sleep(0.01)
        await trio.sleep(0.1)
        gc.collect()
        assert ref() is None


async def test_a_timeout_counts_from_when_the_request_was_read(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # One handler at a time: the second request waits 2 s for the first; its 1 s timeout
    # has passed by the time it starts, so its handler is cancelled at its first wait.
    async with TestClient(build_app(max_concurrency=1)) as client:
        start = trio.current_time()
        replies: dict[str, tuple[int, float]] = {}

        async def get(name: str, url: str, seconds: float | None = None) -> None:
            response = await client.get(url, timeout=seconds)
            replies[name] = (response.status, trio.current_time() - start)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(get, "first", "/sleep?seconds=2")
            await trio.sleep(0.01)
            nursery.start_soon(get, "second", "/sleep?seconds=5", 1.0)
        assert replies["first"][0] == 200 and replies["second"][0] == 504
        assert 2 <= replies["second"][1] < 2.1


async def test_a_missing_field_is_worded_as_in_the_serializers(app: App) -> None:
    async with TestClient(app) as client:
        response = await client.post("/item/", data={})
    assert response.status == 400
    assert response.errors["name"] == ["This field is required."]
