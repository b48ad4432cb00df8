"""`WorkerPool`: runs one connection's requests on a few long-lived worker tasks.

A task spawned per request costs more than a small request itself (DESIGN.md section 5),
so workers, started on demand, run the queued jobs one after another and park when the
queue is empty. A burst of quick requests is drained by one worker; another is woken only
when a handler *waits* (its first step, run inline, suspends: the rest is awaited through a
`Resume`), so slow handlers still run concurrently, up to `max_concurrency` at once.

Each job runs under its own deadline and can be cancelled alone (the client's cancel, its
deadline, the connection closing, a revocation of its credentials). The cancel scope that
does it is the worker's, kept from job to job and renewed after a cancellation: entering a
scope per request cost about a fifth of a request. A deadline is handed to that scope only
once the handler waits; a handler that never waits cannot be cancelled anyway
(cancellation lands at checkpoints).

A SUBSCRIBE job that accepts (`Subscription.accept`) is *detached*: its 200 is its reply,
and its worker leaves the pool for as long as the subscription lasts, so that it no
longer counts against the concurrency.

Past `max_in_flight` requests waiting or running, or `max_buffered_bytes` of them, a new
job is *held*: queued, but not yet admitted, and admitted in order as room frees. The
reader keeps reading while jobs are held (so that a cancel, a ping or the client's close
is always heard) until the held jobs reach those same bounds; only then does it stop.

`run_job` runs one job in the calling task, counted as a pool worker: the workers call it,
and a reader that runs a request itself and hands its reading role to another task only
when the handler waits (leader/follower) would join the counts the same way.

Terms: a worker is *awake* when it is in the pool and not parked, and *free* when it is
awake and not waiting inside a handler or a write: a free worker comes back to the queue
by itself.

Rules (`check_invariants` raises `AssertionError` when one is broken):

1. Every worker task is exactly one of awake, parked or detached:
   ``tasks == awake + parked + detached``.
2. ``awake + parked <= max_concurrency`` and ``len(running) <= awake``.
3. ``free == awake - (running jobs whose handler waits) - writing``; so ``0 <= free <= awake``.
4. Progress: while jobs wait, a worker is free or the pool is full
   (``awake == max_concurrency``).
5. A job is in exactly one of `held`, `waiting`, `running` and `subscriptions` while the
   pool has it; `unanswered` counts those not answered yet, so a job leaves only once
   answered. Each job is answered once (`Job.answered`): a second answer is dropped.
6. A detached job is in `subscriptions`, never in `running`, and is answered.
7. `buffered` is the sum of the sizes of the admitted jobs (waiting, running, subscribed),
   `held_bytes` that of the held ones; `subscribing` counts SUBSCRIBE jobs anywhere.
8. Jobs are held only while the admitted ones are at a bound, in arrival order; no count
   is ever negative.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import trio
from trio_rest_protocol import Response as ProtocolResponse

from ._budget import ByteBudget
from ._errors import APIError
from ._jobs import (
    CancelledBy,
    Job,
    cancelled_reply,
    closing_reply,
    current_job,
    error_reply,
    revoked_reply,
    success_reply,
)
from ._outbox import Outbox
from ._resume import Resume

if TYPE_CHECKING:
    from ._settings import Settings

__all__ = ["WorkerPool"]

log = logging.getLogger("trio_rest")


Caller = Callable[[Job], Coroutine[Any, Any, Any]]
Replier = Callable[[Job, ProtocolResponse], None]


class WorkerPool:
    """The jobs of one connection and the workers that run them.

    Args:
        settings: the limits (`max_concurrency`, the request timeouts).
        outbox: where replies go; a worker that ends a batch writes it itself.
        budget: the server's byte budget, given back as jobs leave.
        call: runs a job's handler and returns its result.
        reply: queues a job's reply.
        on_room: called whenever a job leaves (the reader may be waiting for room).
    """

    __slots__ = (
        "_adopted",
        "_budget",
        "_call",
        "_idle",
        "_lender",
        "_lot",
        "_nursery",
        "_on_room",
        "_outbox",
        "_reply",
        "_settings",
        "awake",
        "buffered",
        "detached",
        "free",
        "held",
        "held_bytes",
        "max_buffered",
        "max_concurrency",
        "max_in_flight",
        "parked",
        "running",
        "subscribing",
        "subscriptions",
        "tasks",
        "unanswered",
        "waiting",
        "writing",
    )

    def __init__(
        self,
        settings: Settings,
        outbox: Outbox,
        budget: ByteBudget,
        *,
        call: Caller,
        reply: Replier,
        on_room: Callable[[], None],
    ) -> None:
        self._settings = settings
        self.max_concurrency = settings.max_concurrency
        self.max_in_flight = settings.max_in_flight
        self.max_buffered = settings.max_buffered_bytes
        self._outbox = outbox
        self._budget = budget
        self._call = call
        self._reply = reply
        self._on_room = on_room
        self._nursery: trio.Nursery | None = None
        # Jobs in arrival order (a list: at most max_in_flight long, and an empty
        # deque would cost 600 bytes of every idle connection's memory).
        self.held: list[Job] = []
        self.waiting: list[Job] = []
        self.running: dict[object, Job] = {}
        self.subscriptions: dict[object, Job] = {}
        self.tasks = self.awake = self.parked = self.detached = self.free = self.writing = 0
        self.unanswered = self.subscribing = 0
        self.buffered = self.held_bytes = 0
        self._lot = trio.lowlevel.ParkingLot()
        self._idle: trio.Event | None = None  # made by wait_idle, set when nothing is left
        # While the reader reads (`lead`): the cancel scope it lends to a request it runs
        # itself, and the request whose first step waited there, which it then owes.
        self._lender: trio.CancelScope | None = None
        self._adopted: tuple[Job, Coroutine[Any, Any, Any], Any] | None = None

    # -- what the connection asks -------------------------------------------------

    def start(self, nursery: trio.Nursery) -> None:
        """Start workers in `nursery` from now on (the connection runs)."""
        self._nursery = nursery
        if self.waiting:
            self._wake()

    @property
    def in_flight(self) -> int:
        """Requests admitted, waiting or running (subscriptions excluded)."""
        return len(self.running) + len(self.waiting)

    @property
    def full(self) -> bool:
        """Whether the held jobs reached the bounds: the reader must stop reading."""
        return len(self.held) >= self.max_in_flight or self.held_bytes >= self.max_buffered

    def submit(self, job: Job) -> None:
        """Queue a job; a worker takes it within `max_concurrency` (held first past the bounds)."""
        self.unanswered += 1
        if job.request.subscription is not None:
            self.subscribing += 1
        in_flight = len(self.running) + len(self.waiting)
        if self.held or in_flight >= self.max_in_flight or self.buffered >= self.max_buffered:
            self.held.append(job)
            self.held_bytes += job.size
            return
        scope = self._lender
        if (
            scope is not None
            and not self.waiting
            and not self.parked
            and not self.free
            and self._adopted is None
            and self.awake < self.max_concurrency
            and job.request.subscription is None
        ):
            self._run_inline(job, scope)
        else:
            self._admit(job)

    def _run_inline(self, job: Job, scope: trio.CancelScope) -> None:
        """Run a job's first step in the reader's task, under the scope the reader lent.

        Only when no job waits (none is overtaken) and no worker is idle (a parked
        worker is cheaper than a new reader task, so that a connection's tasks stay as
        few as before: one per handler that waits at once). If the first step suspends, the reader's
        task becomes one of the pool's workers, counted awake with a handler that waits
        (rules 1-3 as for any worker), and `lead` has it finish the job.
        """
        self.buffered += job.size
        job.scope = scope
        self.running[job.key] = job
        step = self._first_step(job)
        if step is not None:
            # `_blocked` took one from `free` for a worker that was not counted yet.
            self.tasks += 1
            self.awake += 1
            self.free += 1
            self._adopted = (job, *step)

    def _admit(self, job: Job) -> None:
        self.waiting.append(job)
        self.buffered += job.size
        self._wake()

    def cancel(self, id: object) -> bool:
        """Cancel the request or subscription of this id; false when there is none."""
        job = self.running.get(id) or self.subscriptions.get(id)
        if job is not None:
            job.cancelled = CancelledBy.CLIENT
            job.scope.cancel()
            return True
        for queue in (self.waiting, self.held):
            for job in queue:
                if job.event.id == id:
                    self._answer(job, job.event.error(499))
                    self._forget(job)
                    return True
        return False

    def revoke(self, subject: str | None, *, queued: bool = False) -> int:
        """Cancel what runs with `subject`'s credentials: each is answered 401 as it ends.

        The request that revokes (its view calls `App.revoke`) finishes. What has not run yet
        and was read with those credentials is answered 401 now, and with `queued` (the
        connection's own credentials were revoked) so is everything else that carries no
        token of its own. Returns how many running jobs were cancelled.
        """
        revoked = 0
        caller = current_job.get()
        for job in [*self.running.values(), *self.subscriptions.values()]:
            if job is caller:
                continue
            if subject is not None and job.request.subject == subject and job.cancelled is None:
                job.cancelled = CancelledBy.REVOKED
                job.scope.cancel()
                revoked += 1
        for job in [*self.held, *self.waiting]:
            read_with_them = subject is not None and job.request.subject == subject
            if (queued or read_with_them) and not job.carries_token:
                self._answer(job, revoked_reply(job))
                self._forget(job)
        return revoked

    def cancel_all(self) -> None:
        """The connection closes: cancel what runs, answer what waits with 503."""
        for job in [*self.running.values(), *self.subscriptions.values()]:
            if job.cancelled is not CancelledBy.REVOKED:  # that one is still answered 401
                job.cancelled = CancelledBy.CLOSING
            job.scope.cancel()
        self._answer_queued()

    def answer_all(self) -> None:
        """Answer every job still owed a reply with 503 (a handler that cannot be stopped).

        A job answered here and finishing later has its own reply dropped (rule 5); a
        subscription gets its final notification, an error.
        """
        self._answer_queued()
        for job in self.running.values():
            self._answer(job, closing_reply(job))
        for job in self.subscriptions.values():
            subscription = job.request.subscription
            if subscription is not None:
                subscription.end(None, closing_reply(job))

    def _answer_queued(self) -> None:
        for job in [*self.held, *self.waiting]:
            self._answer(job, closing_reply(job))
            self._forget(job)

    def release(self) -> None:
        """The connection is over and its workers with it: let go of every job left.

        The pool then holds no reference to its connection (its callbacks are dropped),
        so that a finished connection is freed at once, not at the next cyclic collection.
        """
        for job in [*self.held, *self.waiting, *self.running.values(), *self.subscriptions.values()]:
            if not job.answered:
                job.answered = True  # no one is left to answer: the client is gone
                self.unanswered -= 1
            self._forget(job)
        self._call = _never_called
        self._reply = _drop_reply
        self._on_room = _nothing

    async def wait_idle(self, *, subscriptions: bool = False) -> None:
        """Wait until no request waits or runs (and, if asked, no subscription is left)."""
        while self.running or self.waiting or self.held or (subscriptions and self.subscriptions):
            if self._idle is None or self._idle.is_set():
                self._idle = trio.Event()  # shared by every waiter until it is set
            await self._idle.wait()
        await trio.lowlevel.checkpoint()

    def accepted(self, job: Job, data: Any) -> bool:
        """A SUBSCRIBE handler accepts: send its 200, and let its worker leave the pool.

        Returns:
            False when the job was answered already (the connection is closing): no
            subscription starts.
        """
        if job.answered:
            return False
        # Once accepted, a subscription lives until cancelled: no deadline, and it
        # no longer counts against the request concurrency.
        job.scope.deadline = math.inf
        key = job.key
        del self.running[key]
        self.subscriptions[key] = job
        job.detached = True
        self.awake -= 1
        self.detached += 1
        if not job.blocked:
            self.free -= 1  # it was counted free: it leaves the pool (rule 3)
        self._answer(job, job.event.response(data=data))
        if self.waiting:
            self._wake()
        self._made_room()
        return True

    @property
    def handed_over(self) -> bool:
        """Whether a request the reader ran itself waits: the reader must stop reading (`lead`)."""
        return self._adopted is not None

    async def lead(self, read: Callable[[], Awaitable[None]], follow: Callable[[], None]) -> bool:
        """Be the connection's reader: run `read` with a cancel scope to lend to requests.

        While `read` runs, a request submitted with no job waiting and a worker to spare
        runs its handler's first step right in the reader's task (leader/follower): a
        handler that never waits costs no task switch. When one waits, `read` must return
        as soon as it sees `handed_over`; then `follow` starts another reader, and this
        task finishes the request under the scope it lent, writes, and serves as a
        worker until the connection ends.

        The scope is entered before the first step: a scope the handler enters during
        that step must nest inside it.

        Returns:
            True when `read` returned with no request handed over (the input ended);
            False after this task served as a worker.
        """
        counted = False  # whether this task counts as a worker (once a request was handed over)
        try:
            with trio.CancelScope() as scope:
                self._lender = scope
                try:
                    await read()
                finally:
                    self._lender = None
                    adopted, self._adopted = self._adopted, None
                    counted = adopted is not None
                if adopted is None:
                    return True
                job, coro, trap = adopted
                follow()
                await self._rest(job, coro, trap)
                adopted = None
            if adopted is not None:  # cancelled by its own scope: the client, its deadline, the closing
                self._complete(job, None, None)
            await self._after_job(job)
        except BaseException:
            if counted:  # cancelled with the connection: out of the counts (rule 1)
                self._leave_adopted()
            raise
        await self._worker()  # counted awake and free, as a worker woken by someone
        return False

    def _leave_adopted(self) -> None:
        """The reader's task leaves the pool before it became a plain worker (rule 1)."""
        self.tasks -= 1
        self.awake -= 1
        self.free -= 1

    # -- the workers ---------------------------------------------------------------

    def _wake(self) -> None:
        """Make sure a worker will take the queued jobs, within `max_concurrency` (rule 4).

        A free worker comes back to the queue by itself, so a pipelined batch wakes one
        worker, not one per request.
        """
        if self.free > 0:
            return
        # A parked worker may have left the lot already: cancelled with the connection.
        if self.parked and self._lot.unpark():
            self.parked -= 1
            self.awake += 1
            self.free += 1
        elif self.awake + self.parked < self.max_concurrency and self._nursery is not None:
            self.awake += 1
            self.free += 1
            self.tasks += 1
            self._nursery.start_soon(self._worker)

    def _blocked(self, job: Job) -> None:
        """The job's handler waits for the first time: its worker is no longer free."""
        job.blocked = True
        if not job.detached:
            self.free -= 1
            job.scope.deadline = job.deadline
            if self.waiting:
                self._wake()

    def _resumed(self, job: Job) -> None:
        """The handler of a job that waited has returned (or raised)."""
        job.blocked = False
        if not job.detached:
            self.free += 1

    async def _worker(self) -> None:
        """Run queued jobs one after another; park when there are none."""
        waiting = self.waiting
        parked = False  # counted parked (by ourselves), else awake (by whoever woke us)
        held: Job | None = None  # the job in hand, if any
        try:
            while True:
                job: Job | None = None
                done: Job | None = None
                with trio.CancelScope() as scope:
                    while not scope.cancel_called:  # a cancel that came as a job returned: renew
                        if not waiting:
                            self.awake -= 1
                            self.free -= 1
                            self.parked += 1
                            parked = True
                            await self._lot.park()  # whoever wakes us counts us awake and free
                            parked = False
                            continue
                        job = held = waiting.pop(0)
                        job.scope = scope
                        self.running[job.key] = job
                        await self.run_job(job)
                        done, job = job, None
                        if await self._after_job(done):
                            return
                        # Let go of the job before parking: its request may hold a large body.
                        done = held = None
                if job is not None:  # cancelled: by the client, by its deadline, or by the closing
                    self._complete(job, None, None)
                    if await self._after_job(job):
                        return
                    held = None
        finally:
            # Leaving the pool, by its own choice or cancelled anywhere by the connection's
            # nursery: take this worker out of the counts (rule 1). An awake worker is free
            # by then: `run_job` and `_after_job` gave back what they took.
            self.tasks -= 1
            if parked:
                self.parked -= 1
            elif held is not None and held.detached:
                self.detached -= 1
            else:
                self.awake -= 1
                self.free -= 1

    async def _after_job(self, job: Job) -> bool:
        """Write the batch if this job ended it; tell whether the worker must stop."""
        outbox = self._outbox
        if outbox.claimed:
            outbox.claimed = False  # the claim ends here (outbox rule 4): write what it covers
            if outbox.dirty and job.detached:  # this worker left the pool: it counts nowhere
                await outbox.flush()
            elif outbox.dirty:
                self.free -= 1
                self.writing += 1
                try:
                    await outbox.flush()
                finally:
                    self.writing -= 1
                    self.free += 1
        return job.detached  # its subscription ended: this worker left the pool at the 200

    async def run_job(self, job: Job) -> None:
        """Run one job in the current task and reply; `job.scope` is the scope to cancel it by.

        Cancellation of the job (``trio.Cancelled``) passes through to that scope.
        """
        step = self._first_step(job)
        if step is not None:
            await self._rest(job, *step)

    def _first_step(self, job: Job) -> tuple[Coroutine[Any, Any, Any], Any] | None:
        """Run the handler's first step here; reply if it returned.

        Returns:
            None when the job is answered; else the handler's coroutine and the trap it
            suspended on, for `_rest` (the job then counts as waiting, rule 3).
        """
        event, settings = job.event, self._settings
        timeout = event.timeout if event.timeout is not None else settings.request_timeout
        if timeout is not None:
            # Given to Trio only if the handler waits (`_blocked`): a deadline can
            # only fire at a checkpoint, so a handler that never waits needs none.
            job.deadline = job.arrived + min(timeout, settings.max_request_timeout)
        coro = self._call(job)
        reply: ProtocolResponse | None
        try:
            trap = coro.send(None)
        except StopIteration as done:
            result = done.value
            reply = None if job.detached else success_reply(event, result)
        except Exception as exc:
            result, reply = None, self._failure(job, exc)
        else:
            self._blocked(job)
            return coro, trap
        self._complete(job, result, reply)
        return None

    async def _rest(self, job: Job, coro: Coroutine[Any, Any, Any], trap: Any) -> None:
        """Await the rest of a handler whose first step suspended on `trap`, then reply."""
        reply: ProtocolResponse | None
        try:
            try:
                result = await Resume(coro, trap)
            finally:
                self._resumed(job)
        except Exception as exc:
            result, reply = None, self._failure(job, exc)
        else:
            reply = None if job.detached else success_reply(job.event, result)
        self._complete(job, result, reply)

    def _failure(self, job: Job, exc: Exception) -> ProtocolResponse:
        """The reply to a handler that raised `exc`; anything but an `APIError` is logged."""
        event = job.event
        if isinstance(exc, APIError):
            return error_reply(event, exc)
        log.error(
            "%s: %s %s (request id %r) failed in %s",
            job.request.connection.peer,
            event.method,
            event.path,  # not the url: its query string may carry a token
            event.id,
            job.handler.name,
            exc_info=exc,
        )
        return event.error(500, detail="The server failed to handle the request.")

    def _complete(self, job: Job, result: Any, reply: ProtocolResponse | None) -> None:
        """Reply to a job that ended (reply None: it was cancelled) and forget it."""
        scope = job.scope
        if scope.deadline != math.inf and not scope.cancel_called:
            scope.deadline = math.inf  # the worker's next job starts without it
        # The last queued job's worker writes the batch itself (`_after_job`): no hand-off
        # to the writer on the way out. While jobs wait, their workers reply later and the
        # writer sends the batch. Never from a cancelled scope (a plain def's thread that
        # outlived its deadline): the write would be cancelled with the reply taken.
        if not self.waiting and not scope.cancel_called:
            outbox = self._outbox
            outbox.claimed = not outbox.sending  # the claim (outbox rule 4), inline: it is per request
        self._forget(job)
        if job.detached:
            subscription = job.request.subscription
            if subscription is not None:
                if reply is None and job.cancelled in (CancelledBy.CLOSING, CancelledBy.REVOKED):
                    reply = cancelled_reply(job)  # its final notification says why it ended
                subscription.end(result, reply)
        else:
            self._answer(job, reply if reply is not None else cancelled_reply(job))

    def _answer(self, job: Job, reply: ProtocolResponse) -> None:
        if job.answered:
            return
        job.answered = True
        self.unanswered -= 1
        self._reply(job, reply)

    def _forget(self, job: Job) -> None:
        key, size = job.key, job.size
        if self.running.get(key) is job:  # the common case first: a job that ran
            del self.running[key]
            self.buffered -= size
        elif self.subscriptions.get(key) is job:
            del self.subscriptions[key]
            self.buffered -= size
        elif job in self.waiting:  # cancelled or answered before it ran
            self.waiting.remove(job)
            self.buffered -= size
        else:
            self.held.remove(job)
            self.held_bytes -= size
        subscription = job.request.subscription
        if subscription is not None:
            self.subscribing -= 1
            subscription.close()
        self._budget.give(size)
        self._made_room()

    def _made_room(self) -> None:
        held = self.held
        while held and self.in_flight < self.max_in_flight and self.buffered < self.max_buffered:
            job = held.pop(0)
            self.held_bytes -= job.size
            self._admit(job)
        self._on_room()
        if self._idle is not None and not self.running and not self.waiting and not held:
            self._idle.set()  # wait_idle checks the subscriptions itself

    def check_invariants(self) -> None:
        """Raise `AssertionError` if a rule of the module docstring is broken."""
        counts = (self.tasks, self.awake, self.parked, self.detached, self.free, self.writing)
        assert min(counts) >= 0 and self.unanswered >= 0 and self.subscribing >= 0, "rule 8: a negative count"
        assert self.tasks == self.awake + self.parked + self.detached, "rule 1"
        assert self.awake + self.parked <= self.max_concurrency, "rule 2: too many workers"
        assert len(self.running) <= self.awake, "rule 2: a running job without a worker"
        waiting_handlers = sum(job.blocked for job in self.running.values())
        assert self.free == self.awake - waiting_handlers - self.writing, "rule 3"
        assert not self.waiting or self.free > 0 or self.awake == self.max_concurrency, "rule 4"
        admitted = [*self.waiting, *self.running.values(), *self.subscriptions.values()]
        every = [*self.held, *admitted]
        assert len({id(job) for job in every}) == len(every), "rule 5: a job held twice"
        assert self.unanswered == sum(not job.answered for job in every), "rule 5: unanswered count"
        assert all(job.detached and job.answered for job in self.subscriptions.values()), "rule 6"
        assert not any(job.detached for job in self.running.values()), "rule 6"
        assert self.buffered == sum(job.size for job in admitted), "rule 7: buffered"
        assert self.held_bytes == sum(job.size for job in self.held), "rule 7: held bytes"
        assert self.subscribing == sum(job.request.subscription is not None for job in every), "rule 7"
        at_bound = self.in_flight >= self.max_in_flight or self.buffered >= self.max_buffered
        assert not self.held or at_bound, "rule 8: a job held with room to spare"


async def _never_called(job: Job) -> Any:
    raise AssertionError("a released pool runs no job")  # pragma: no cover


def _drop_reply(job: Job, reply: ProtocolResponse) -> None:
    pass


def _nothing() -> None:
    pass
