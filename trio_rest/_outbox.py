"""`Outbox`: the one way out of a connection, one `send_all` at a time.

Everything a connection writes (replies, notifications, pongs, the close frame) is queued
here and framed by the WebSocket engine only when a batch is written, so a batch of
replies costs one `send_all` (DESIGN.md section 5: batching is worth 2-3x).

Who writes. A writer task, started on first need so that an idle connection has none,
writes whatever is queued. A worker that just answered the last request of a batch may
*claim* the write instead: it sets `claimed` (only while no `send_all` is under way), queues
its reply, then clears `claimed` and calls `flush` itself, without waking the writer, which
saves a task switch per request/response exchange. The claim is made by the worker pool
(`_workers.py`), inline, on its hot path. The reader, which runs quick requests itself, ends
its claim with `write_now`: a non-blocking write of what the socket takes at once, the rest
left to the writer task, so that the reader never waits for a client to read.

Rules (`check_invariants` raises `AssertionError` when one is broken):

1. At most one write is under way on the stream: a `send_all` (`sending`), whoever makes it,
   or a `write_now`, which never waits and is made only by a claimer.
2. `queued_bytes` is the total length of `queue`, and stays within `limit`: past it the
   oldest droppable notifications are dropped, when the policy allows (``drop_oldest``),
   until a quarter of the room is free; when that is not enough, the queue is dropped
   and `on_overflow` ends the connection (a client that does not read must not grow the
   server's memory).
3. Nothing queued is forgotten: while output is due (`dirty`), a `send_all` is under way
   and will go round again, or a worker has claimed the write, or the writer task is
   woken (or will be started when the connection runs).
4. A claim lasts from the moment `claimed` is set to the claimer's `flush` or `write_now`,
   with no wait in between; no claim is made while a `send_all` is under way.
5. Bytes go out in the order they were framed: what a `write_now` left over goes out
   before anything framed after it.
6. Once `ended`, nothing new is written: the connection is over.
7. `notes` holds the positions in `queue` of the droppable notifications, in increasing
   order; `missed` counts those dropped since the client was last told, and the next
   batch framed starts with `on_missed`'s notice of them.
8. A producer waiting for room (`wait_room`) is woken after every completed write, and
   when the outbox ends or the stream breaks, so it never waits for a write that will
   not come.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable

import trio

from ._engine import Engine

__all__ = ["Outbox"]

_LOST = (trio.BrokenResourceError, trio.ClosedResourceError)


class Outbox:
    """The queue and the writer of one connection's output.

    Args:
        stream: the socket (or in-memory stream).
        engine: the WebSocket engine that frames messages.
        limit: the most bytes queued for a client that does not read.
        on_overflow: called with the byte count once the limit is passed (the queue
            is already dropped).
        on_lost: called when a write finds the stream broken.
        drop_oldest: past the limit, drop the oldest notifications queued with
            `put_note` before giving up on the client.
        on_missed: called with the count of notifications dropped, when the next
            batch is framed; returns the message that tells the client (framed first),
            or None when none can be sent any more.
    """

    __slots__ = (
        "_done",
        "_engine",
        "_flushed",
        "_lot",
        "_nursery",
        "_on_lost",
        "_on_missed",
        "_on_overflow",
        "_pending",
        "_room",
        "_socket",
        "_stream",
        "_writer_started",
        "claimed",
        "dirty",
        "drop_oldest",
        "ended",
        "limit",
        "missed",
        "notes",
        "queue",
        "queued_bytes",
        "sending",
        "unsent",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        engine: Engine,
        *,
        limit: int,
        on_overflow: Callable[[int], None],
        on_lost: Callable[[], None],
        drop_oldest: bool = False,
        on_missed: Callable[[int], str | bytes | None] | None = None,
    ) -> None:
        self._stream = stream
        self._engine = engine
        self.limit = limit
        self._on_overflow = on_overflow
        self._on_lost = on_lost
        self.drop_oldest = drop_oldest
        self._on_missed = on_missed
        self.queue: list[str | bytes] = []
        self.queued_bytes = 0
        self.notes: list[int] = []  # where the droppable notifications are in `queue`
        self.missed = 0  # notifications dropped that the client was not told of yet
        self.dirty = False  # output is due that no write has taken yet
        self.sending = False  # a send_all is under way
        self.claimed = False  # a worker will write the batch itself
        self.ended = False
        self.unsent = b""  # a batch handed to send_all that has not returned yet
        self._pending = b""  # what the socket did not take of a `write_now`: the writer's first bytes
        # A TCP socket `write_now` may write to without waiting (POSIX: a socket is a file).
        self._socket = stream.socket if isinstance(stream, trio.SocketStream) and os.name == "posix" else None
        self._nursery: trio.Nursery | None = None
        self._writer_started = False
        self._lot = trio.lowlevel.ParkingLot()  # where the writer waits for work
        self._room = trio.lowlevel.ParkingLot()  # where producers wait for the client to read (`wait_room`)
        self._done = trio.Event()  # the writer wrote the close frame, or gave up
        self._flushed: trio.Event | None = None  # made by wait_flushed, set when nothing is due

    # -- queueing (never blocks) ---------------------------------------------------

    def put(self, wire: str | bytes) -> None:
        """Queue one message; past `limit`, drop notifications or the queue (rule 2)."""
        self.queue.append(wire)
        self.queued_bytes += len(wire)
        if self.queued_bytes > self.limit and not (self.notes and self._drop_notes()):
            queued, self.queue, self.queued_bytes, self.notes = self.queued_bytes, [], 0, []
            self._on_overflow(queued)
            return
        self.poke()

    def put_note(self, wire: str | bytes) -> None:
        """Queue a notification that the ``drop_oldest`` policy may drop (see `put`)."""
        if self.drop_oldest:
            self.notes.append(len(self.queue))
        self.put(wire)

    def _drop_notes(self) -> bool:
        """Drop the oldest notifications until a quarter of `limit` is free; false if that cannot be."""
        queue, notes = self.queue, self.notes
        excess = self.queued_bytes - self.limit * 3 // 4
        freed = dropped = 0
        while dropped < len(notes) and freed < excess:
            freed += len(queue[notes[dropped]])
            dropped += 1
        if freed < excess:
            return False
        gone = set(notes[:dropped])
        kept = set(notes[dropped:])
        self.queue, self.notes = [], []
        for index, wire in enumerate(queue):
            if index in gone:
                continue
            if index in kept:
                self.notes.append(len(self.queue))
            self.queue.append(wire)
        self.queued_bytes -= freed
        self.missed += dropped
        return True

    def poke(self) -> None:
        """Say that output is due: a message was queued, or the engine has its own (a pong, a close)."""
        if self.ended or self.dirty:  # over, or already due: a batch shares one wake-up
            return
        self.dirty = True
        if self.claimed or self.sending:
            return  # the claimer, or the send under way, writes it (rule 3)
        if self._writer_started:
            self._lot.unpark_all()
        elif self._nursery is not None:
            self._start_writer()

    def frame(self) -> None:
        """Hand every queued message to the engine, which frames it for the next write.

        A batch after dropped notifications starts with the notice of how many (rule 7).
        """
        if self.missed and self._on_missed is not None:
            missed, self.missed = self.missed, 0
            notice = self._on_missed(missed)
            if notice is not None:
                self._engine.send_message(notice)
        if self.queue:
            batch, self.queue, self.queued_bytes, self.notes = self.queue, [], 0, []
            send_message = self._engine.send_message
            for wire in batch:
                send_message(wire)

    def close(self, code: int, reason: str) -> None:
        """Queue the close frame after every message already queued."""
        self.frame()
        self._engine.close(code, reason)
        self.poke()

    # -- writing ---------------------------------------------------------------------

    def start(self, nursery: trio.Nursery) -> None:
        """Let the outbox start its writer in `nursery` (the connection runs now)."""
        self._nursery = nursery
        if self.dirty and not self.claimed and not self.sending:
            self._start_writer()  # something was queued before the connection ran

    def end(self) -> None:
        """The connection is over: its own last words aside, nothing more is written (rule 6).

        Messages queued from now on are still framed by `close` for whoever writes the
        engine's data last. The outbox drops its callbacks, so that it holds no reference
        back to its connection.
        """
        self.ended = True
        self._room.unpark_all()  # no producer waits for a client that is gone
        self._on_overflow = _ignore_overflow
        self._on_lost = _nothing
        self._on_missed = None

    def take_unsent(self) -> bytes:
        """Take back what was due and not sent: a cancelled `send_all`'s batch, a `write_now`'s rest."""
        data, self.unsent, self._pending = self.unsent + self._pending, b"", b""
        return data

    def write_now(self) -> None:
        """End a claim without waiting: write what the socket takes at once, the rest later.

        The reader, which must never wait for a client to read, ends its claims this
        way. On a TCP socket, the batch goes out in one non-blocking ``write``; whatever
        the kernel does not take (or the whole batch, on another kind of stream) is left
        to the writer task, which writes it before anything queued after it.
        """
        self.claimed = False
        if not self.dirty:
            return
        self.dirty = False
        sock = self._socket
        fileno = sock.fileno() if sock is not None and not self._pending and not self.ended else -1
        if fileno < 0:
            self.poke()  # the writer task writes it (rule 3)
            return
        engine = self._engine
        self.frame()
        data = engine.data_to_send()
        if data:
            try:
                sent = os.write(fileno, data)
            except BlockingIOError:
                sent = 0
            except OSError:
                self._on_lost()
                return
            if sent < len(data):
                self._pending = data[sent:]
                self.poke()
                return
        if self._flushed is not None:
            self._flushed.set()
        if engine.closed and self._writer_started:
            self._lot.unpark_all()  # the writer's last duty: to say it is done

    async def flush(self) -> None:
        """Write everything due, in as few `send_all` calls as the queue allows."""
        engine = self._engine
        self.sending = True
        try:
            while self.dirty:
                self.dirty = False
                self.frame()
                data = engine.data_to_send()
                if self._pending:
                    data, self._pending = self._pending + data, b""
                if data:
                    self.unsent = data
                    await self._stream.send_all(data)
                    self.unsent = b""
                    if self._room:
                        self._room.unpark_all()  # the client read: producers may go on
                    # The peer's close may have arrived during that write: its
                    # reply is queued now, so go round once more.
                    if engine.closed:
                        self.dirty = True
        except _LOST:
            self.dirty = False
            self.unsent = self._pending = b""
            self._room.unpark_all()
            self._on_lost()
        finally:
            self.sending = False
        if self._flushed is not None and not self.dirty:
            self._flushed.set()
        if engine.closed and self._writer_started:
            self._lot.unpark_all()  # the writer's last duty: to say it is done

    @property
    def backlog(self) -> int:
        """Bytes on their way to the client: queued, framed and not written, being written."""
        return self.queued_bytes + len(self.unsent) + len(self._pending)

    async def wait_room(self, level: int) -> None:
        """Wait until at most `level` bytes are on their way to the client (`backlog`), or it is over.

        A producer that could outpace the client (a streaming view) calls it between
        messages, so that the client's pace, not the overflow policy, bounds it.
        """
        await trio.lowlevel.checkpoint()
        while self.backlog > level and not self.ended:
            await self._room.park()

    async def wait_flushed(self) -> None:
        """Wait until nothing is due and no `send_all` is under way."""
        while self.dirty or self.sending:
            self._flushed = trio.Event()
            await self._flushed.wait()
        await trio.lowlevel.checkpoint()

    async def wait_written(self) -> None:
        """Wait until the writer wrote the close frame (or the stream broke)."""
        if not self._writer_started and self._nursery is not None:
            self._start_writer()
        await self._done.wait()

    def _start_writer(self) -> None:
        assert self._nursery is not None
        try:
            self._nursery.start_soon(self._write_loop)
        except RuntimeError:  # the nursery closed: the connection is ending, it writes its last words
            self.ended = True
            return
        self._writer_started = True

    async def _write_loop(self) -> None:
        try:
            while True:
                if self.sending:
                    # A worker is sending: it writes what is queued meanwhile, then wakes us.
                    await self._lot.park()
                elif self.dirty:
                    await self.flush()
                elif self._engine.closed:
                    return  # everything, the close frame included, is written
                else:
                    await self._lot.park()
        finally:
            self._done.set()

    def check_invariants(self) -> None:
        """Raise `AssertionError` if a rule of the module docstring is broken.

        Meant for a moment when no task of the connection is running (tests call it
        between steps): a claim never outlives the step that made it.
        """
        assert self.queued_bytes == sum(len(wire) for wire in self.queue), "rule 2: byte count"
        assert self.queued_bytes <= self.limit, "rule 2: over the limit"
        notes = self.notes
        assert all(a < b for a, b in itertools.pairwise(notes)), "rule 7: notes out of order"
        assert not notes or notes[-1] < len(self.queue), "rule 7: a note past the queue"
        assert not self.missed or self.dirty or self.sending or self.ended, "rule 7: a notice not due"
        assert not self.claimed, "rule 4: a claim outlived its step"
        assert not self._pending or self.dirty or self.sending or self.ended, "rule 5: leftover bytes not due"
        if self.dirty and not self.sending and not self.ended:
            woken = self._writer_started and not self._lot and not self._done.is_set()  # it runs soon
            assert woken or self._nursery is None, "rule 3: output due and no one to write it"


def _ignore_overflow(queued: int) -> None:
    pass


def _nothing() -> None:
    pass
