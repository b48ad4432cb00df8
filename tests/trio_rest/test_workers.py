"""The worker pool: its rules, its concurrency, and random interleavings of everything a client does."""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings

from trio_rest import App, Request, Settings, SimpleRouter, endpoint
from trio_rest._budget import ByteBudget
from trio_rest._workers import WorkerPool
from trio_rest.testing import TestClient, checking_invariants

from ._edge_app import batch, edge_app, nap, quick
from ._raw import memory_connection


@endpoint
async def crash(request: Request) -> None:
    raise RuntimeError("boom")


async def watch(request: Request) -> str:
    for i in range(int(request.args.get("n", 2))):
        await request.notify({"i": i})
        await trio.sleep(0.5)
    if request.args.get("forever"):
        await trio.sleep_forever()
    return "over"


def make_app(**options: Any) -> App:
    router = SimpleRouter()
    router.register("/quick", quick, "GET")
    router.register("/nap", nap, "GET")
    router.register("/crash", crash, "GET")
    router.register("/watch", watch, "SUBSCRIBE")
    return App(router, settings=Settings(**options))


def _frames(task: trio.lowlevel.Task) -> list[str]:
    return [frame.f_code.co_name for frame, _ in task.iter_await_frames()]


def _all_tasks(task: trio.lowlevel.Task) -> list[trio.lowlevel.Task]:
    found = [task]
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            found += _all_tasks(child)
    return found


async def test_a_hung_view_shows_its_own_frames_in_the_task_tree(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with TestClient(make_app()) as client, trio.open_nursery() as nursery:
        nursery.start_soon(client.get, "/nap?s=60")
        await trio.sleep(1)
        stacks = [_frames(task) for task in _all_tasks(trio.lowlevel.current_root_task())]
        (stack,) = [stack for stack in stacks if "nap" in stack]
        # The reader ran it, then handed the reading over: from the connection down
        # through the view to its own wait.
        assert stack[0] == "handle_stream"
        assert stack.index("lead") < stack.index("nap") < stack.index("sleep")
        nursery.cancel_scope.cancel()


async def test_slow_handlers_run_concurrently_up_to_the_limit(autojump_clock: trio.testing.MockClock) -> None:
    test_client = TestClient(make_app(max_concurrency=3))
    async with test_client as client:
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for _ in range(6):
                nursery.start_soon(client.get, "/nap?s=1")
        assert 2 <= trio.current_time() - start < 2.5  # two waves of three
        (conn,) = test_client.server.connections
        assert conn.stats().workers == 3


# Leader/follower: the reader runs a request itself while no worker is idle, and hands
# its reading over when the handler waits.


@endpoint
async def scoped(request: Request) -> str:
    # Enters a cancel scope and a nursery in its first step, then waits inside them: the
    # scope the reader lent must enclose both.
    with trio.move_on_after(float(request.args.get("limit", 100))):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep, float(request.args.get("s", 1)))
        return "slept"
    return "gave up"


def _leader_app(**options: Any) -> App:
    app = make_app(**options)
    app.router.register("/scoped", scoped, "GET")
    return app


async def test_a_view_run_by_the_reader_that_waits_inside_its_own_scope_finishes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    test_client = TestClient(_leader_app())
    async with test_client as client:
        assert (await client.get("/scoped?s=1")).data == "slept"
        assert (await client.get("/scoped?s=5&limit=1")).data == "gave up"
        (conn,) = test_client.server.connections
        assert conn.stats().workers == 1  # the first reader, a worker since its view waited


async def test_a_view_run_by_the_reader_is_cancelled_and_timed_out_while_the_next_reader_reads(
    autojump_clock: trio.testing.MockClock,
) -> None:
    test_client = TestClient(_leader_app(request_timeout=None))
    async with test_client as client:
        async with trio.open_nursery() as nursery:
            replies: dict[str, int] = {}

            async def get(name: str, url: str, **kwargs: Any) -> None:
                replies[name] = (await client.get(url, **kwargs)).status

            nursery.start_soon(get, "cancelled", "/scoped?s=60")
            await trio.sleep(1)
            assert (await client.get("/quick")).status == 200  # read while the first one waits
            nursery.cancel_scope.cancel()  # the client sends a cancel for the request
        await trio.sleep(0.1)
        (conn,) = test_client.server.connections
        assert conn.stats().running == 0 and "cancelled" not in replies
        assert (await client.get("/scoped?s=60", timeout=2)).status == 504
        assert (await client.get("/scoped?s=1")).data == "slept"


async def test_the_readers_task_that_ran_a_waiting_view_is_cancelled_with_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    test_client = TestClient(_leader_app(request_timeout=None, shutdown_timeout=1.0))
    async with test_client as client, trio.open_nursery() as nursery:
        nursery.start_soon(client.get, "/scoped?s=600")
        await trio.sleep(1)
        (conn,) = test_client.server.connections
        assert conn.stats().workers == 1 and conn.stats().running == 1
        await conn.close()  # the grace runs out: the view is cancelled, answered 503
        nursery.cancel_scope.cancel()
    conn.check_invariants()
    assert conn.stats().workers == 0


class _Outbox:
    claimed = dirty = False


def _pool(max_concurrency: int = 2) -> WorkerPool:
    async def call(job: Any) -> None:
        raise AssertionError("not called")  # pragma: no cover

    return WorkerPool(
        Settings(max_concurrency=max_concurrency),
        _Outbox(),  # type: ignore[arg-type]
        ByteBudget(100),
        call=call,
        reply=lambda job, reply: None,
        on_room=lambda: None,
    )


@pytest.mark.parametrize(
    ("counter", "change", "rule"),
    [("tasks", 1, "rule 1"), ("free", 1, "rule 3"), ("parked", 3, "rule 2"), ("unanswered", 1, "rule 5")],
)
def test_the_check_fails_on_a_broken_rule(counter: str, change: int, rule: str) -> None:
    pool = _pool()
    pool.check_invariants()  # a fresh pool keeps them
    if counter == "parked":
        pool.tasks += change
    setattr(pool, counter, getattr(pool, counter) + change)
    with pytest.raises(AssertionError, match=rule):
        pool.check_invariants()


# Random interleavings: each example opens one connection, sends a random sequence of
# requests, cancels, subscriptions and pauses, then ends in one of four ways. (Plain def
# handlers are left to the tests over real sockets: their threads run in real time,
# which the virtual clock would jump past.) Every step
# checks the connection's rules (checking_invariants) and, however it ended, every
# request got exactly one reply unless the client itself left.

_request = st.one_of(
    st.tuples(st.just("GET"), st.just("/quick")),
    st.tuples(st.just("GET"), st.sampled_from(["/nap?s=0.2", "/nap?s=1", "/nap?s=3"])),
    st.tuples(st.just("GET"), st.just("/crash")),
    st.tuples(st.just("GET"), st.just("/nowhere")),
    st.tuples(st.just("SUBSCRIBE"), st.sampled_from(["/watch?n=1", "/watch?n=3", "/watch?n=1&forever=1"])),
)
_step = st.one_of(
    st.tuples(st.just("request"), _request, st.sampled_from([None, 0.1, 0.5, 2.0])),
    st.tuples(st.just("cancel"), st.integers(0, 30), st.none()),
    st.tuples(st.just("pause"), st.sampled_from([0.0, 0.05, 0.3, 1.0]), st.none()),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(_step, max_size=25),
    ending=st.sampled_from(["drain", "close", "shutdown", "leave"]),
    concurrency=st.sampled_from([1, 2, 32]),
)
def test_every_request_gets_exactly_one_reply_whatever_the_interleaving(
    steps: list[tuple[str, Any, Any]], ending: str, concurrency: int
) -> None:
    trio.run(_scenario, steps, ending, concurrency, clock=trio.testing.MockClock(autojump_threshold=0))


async def _scenario(steps: list[tuple[str, Any, Any]], ending: str, concurrency: int) -> None:
    app = make_app(max_concurrency=concurrency, shutdown_timeout=1.0)
    sent: list[str] = []
    with checking_invariants(), trio.fail_after(120):
        async with memory_connection(app) as (server, client, server_scope):
            for kind, what, extra in steps:
                if kind == "request":
                    request_id = f"r{len(sent)}"
                    method, url = what
                    envelope = {"method": method, "url": url, "id": request_id}
                    if extra is not None:
                        envelope["timeout"] = extra
                    sent.append(request_id)
                    await client.send(envelope)
                elif kind == "cancel" and sent:
                    await client.send({"type": "cancel", "id": sent[what % len(sent)]})
                elif kind == "pause":
                    await trio.sleep(what)
            await trio.sleep(0.001)  # the server reads everything sent
            (conn,) = server.connections
            if ending == "drain":
                for request_id in sent:  # a subscription that never ends is cancelled
                    await client.send({"type": "cancel", "id": request_id})
                await client.wait_for(len(sent))
            elif ending == "close":
                await conn.close(1001, "going away", grace=0.5)
                await client.closed.wait()
            elif ending == "shutdown":
                server_scope.cancel()
                await client.closed.wait()
            else:
                await client.stream.aclose()
            while server.connections:
                await trio.sleep(0.01)
            assert server.budget.used == 0  # every job gave its bytes back
    if ending == "leave":
        return
    replies: dict[str, int] = {}
    for response in client.responses():
        replies[response["id"]] = replies.get(response["id"], 0) + 1
    assert replies == dict.fromkeys(sent, 1)
    if ending in ("close", "shutdown"):
        assert client.close_code == 1001


# Limits and counts at the edges.


async def test_pipelined_subscribes_respect_max_subscriptions(autojump_clock: trio.testing.MockClock) -> None:
    async with memory_connection(edge_app(max_subscriptions=1)) as (server, client, _):
        envelopes = [f'{{"method": "SUBSCRIBE", "url": "/forever", "id": "s{i}"}}' for i in range(3)]
        await client.stream.send_all(batch(client, envelopes))
        await client.wait_for(3)
        (conn,) = server.connections
        assert conn.stats().subscriptions == 1
        assert sorted(r["status"] for r in client.responses()) == [200, 429, 429]


async def test_the_id_of_an_active_subscription_is_not_reused(autojump_clock: trio.testing.MockClock) -> None:
    async with memory_connection(edge_app()) as (server, client, _):
        await client.send({"method": "SUBSCRIBE", "url": "/forever", "id": "s"})
        await client.wait_for(1)
        await client.send({"method": "SUBSCRIBE", "url": "/forever", "id": "s"})
        await client.wait_for(2)
        second = client.responses()[1]
        await client.stream.aclose()
        while server.connections:
            await trio.sleep(0.01)
        assert server.budget.used == 0
        assert second["status"] == 409


async def test_worker_counts_stay_true_when_the_connection_is_aborted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Three parked workers, then a reply that overflows the outbox while two quick jobs
    # wake parked workers: the abort cancels the parked ones as they are woken. The
    # rules (non-negative counts among them) are checked as the connection ends.
    async with memory_connection(edge_app(max_concurrency=3, max_outbound_bytes=100_000)) as (
        server,
        client,
        _,
    ):
        for i in range(3):
            await client.send({"method": "GET", "url": "/nap", "id": f"n{i}"})
        await client.wait_for(3)
        (conn,) = server.connections
        urls = ["/big", "/yields", "/yields"]
        await client.stream.send_all(
            batch(client, [f'{{"method": "GET", "url": "{url}", "id": "{i}"}}' for i, url in enumerate(urls)])
        )
        while server.connections:
            await trio.sleep(0.01)
    conn.check_invariants()
    assert conn.stats().workers == 0


async def test_a_cancel_is_heard_at_the_in_flight_limit(autojump_clock: trio.testing.MockClock) -> None:
    async with memory_connection(edge_app(max_in_flight=2, request_timeout=None)) as (_server, client, _):
        await client.send({"method": "GET", "url": "/hang", "id": "a"})
        await client.send({"method": "GET", "url": "/hang", "id": "b"})
        await trio.sleep(0.1)
        await client.send({"type": "cancel", "id": "a"})
        with trio.move_on_after(60):
            await client.wait_for(1)
        assert [(r["id"], r["status"]) for r in client.responses()] == [("a", 499)]


async def test_a_client_that_leaves_at_the_in_flight_limit_is_noticed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_connection(edge_app(max_in_flight=2, request_timeout=None)) as (server, client, _):
        for request_id in "abc":  # the third is held: the reader still reads
            await client.send({"method": "GET", "url": "/hang", "id": request_id})
        await trio.sleep(0.1)
        await client.stream.aclose()
        await trio.sleep(10)
        assert not server.connections


async def test_an_apierror_that_cannot_be_sent_is_a_500_and_the_connection_lives(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_connection(edge_app()) as (_server, client, _):
        await client.send({"method": "GET", "url": "/missing/7", "id": "m"})
        await client.send({"method": "GET", "url": "/quick", "id": "q"})
        await client.wait_for(2)
        assert not client.closed.is_set()
    assert [(r["id"], r["status"]) for r in client.responses()] == [("m", 500), ("q", 200)]
