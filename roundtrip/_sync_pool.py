"""The pool's edge for threads: one lock around ``PoolState``'s steps (never held across
network I/O), a thread per dial, a condition per waiting request, and at most one timer thread
that closes idle connections as they expire."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Callable, Optional, TypeVar

from ._pool import Actions, PoolState, Waiter

if TYPE_CHECKING:
    from ._connection import Connection
    from ._events import IdleTable
    from ._route import PoolKey

_R = TypeVar("_R")

__all__ = ("Pool", "Want")


class Want(Waiter["Connection"]):
    """A waiting request on a thread. The dialing thread and the pool hand results over under
    ``cond``; trace events raised while dialing are queued in ``events`` and run by the
    waiting (calling) thread."""

    __slots__ = ("dial", "cond", "events")

    def __init__(self, key: PoolKey, dial: Callable[["Want"], None]) -> None:
        super().__init__(key)
        self.dial = dial  # runs on its own thread and ends with Pool.dial_finished
        self.cond = threading.Condition(threading.Lock())
        self.events: deque[Callable[[], object]] = deque()

    def post(self, event: Callable[[], object]) -> None:
        """Queue a trace hook call for the waiting thread."""
        with self.cond:
            self.events.append(event)
            self.cond.notify()

    def wake(self) -> None:
        with self.cond:
            self.cond.notify()


class Pool:
    """``PoolState`` for threads: every step under one lock; what it decides (dials to start,
    waiters to wake, connections to close) is carried out after the lock is released."""

    def __init__(self, idle: IdleTable[PoolKey, Connection], *, max_conns_per_host: int, idle_conn_timeout: Optional[float], keep_alive: bool) -> None:
        self._state: PoolState[Connection, Want] = PoolState(idle, max_conns_per_host=max_conns_per_host, idle_conn_timeout=idle_conn_timeout, keep_alive=keep_alive)
        # Where a finalized, unfinished response leaves its connection (no lock taken there).
        self.orphans = self._state.orphans
        self._lock = threading.Lock()
        self._reaper_wakeup = threading.Condition(self._lock)
        self._reaper: Optional[threading.Thread] = None

    def take_idle(self, key: PoolKey) -> Optional[Connection]:
        """The most recently used idle connection for ``key``, marked active, or None. The
        caller checks it is still alive and calls ``discard`` if not."""
        # A step of every request: _step's work inlined (it costs several calls).
        state = self._state
        with self._lock:
            if state.orphans:
                state.settle_orphans()
            conn = state.take_idle(key, time.monotonic())
            outbox = state.outbox
            if not (outbox.dials or outbox.wake or outbox.close):
                return conn
        self._step(_nothing)  # carry out what it decided (expired connections, dials)
        return conn

    def want(self, key: PoolKey, dial: Callable[[Want], None]) -> Want:
        """Queue a want for ``key``; its dial starts unless ``max_conns_per_host`` is reached."""
        want = Want(key, dial)
        self._step(self._state.want, want)
        return want

    def abandon(self, want: Want, close: bool = False) -> None:
        """The want's caller gave up; a connection delivered meanwhile goes back to the pool,
        or is closed when ``close`` is set (a trace hook raised)."""
        self._step(self._state.abandon, want, time.monotonic(), not close)

    def dial_finished(self, want: Want, conn: Optional[Connection], error: Optional[BaseException]) -> None:
        """Called by the dialing thread with the new connection or the dial's error."""
        self._step(self._state.dial_finished, want, conn, error, time.monotonic())

    def release(self, conn: Connection, reusable: bool) -> bool:
        """Return an active connection: to the oldest waiter, else to the idle pool, else closed.
        Returns whether it was kept."""
        # A step of every request: _step's work inlined (it costs several calls).
        state = self._state
        with self._lock:
            if state.orphans:
                state.settle_orphans()
            kept = state.release(conn, reusable, time.monotonic())
            if state.went_idle and self._reaper is not None:
                state.went_idle = False  # the running timer sees it: it expires after the others
            outbox = state.outbox
            if not (outbox.dials or outbox.wake or outbox.close or state.went_idle):
                return kept
        self._step(_nothing)  # carry out what it decided
        return kept

    def discard(self, conn: Connection) -> None:
        """Close an active connection and free its slot."""
        self.release(conn, reusable=False)

    def evict(self, conn: Connection) -> None:
        """Close ``conn`` if it is idle (its owner's trace hook failed after it was pooled)."""
        self._step(self._state.evict, conn)

    def close_idle(self) -> None:
        """Close every idle connection now (the timer thread wakes up and may end)."""
        self._step(self._state.close_idle)

    def close(self) -> None:
        """Close idle connections; connections returned later are closed, not kept."""
        self._step(self._state.close)

    def stats(self) -> dict[str, dict[str, int]]:
        return self._step(self._state.stats)

    def settle_orphans(self) -> None:
        """Free the slots of connections whose responses were dropped (a waiter calls this
        while it waits, as a finalizer cannot wake it)."""
        if self.orphans:
            self._step(_nothing)  # _step settles them

    # -- the edge ----------------------------------------------------------------------------

    def _step(self, step: Callable[..., _R], *args: object) -> _R:
        """Run one ``PoolState`` step under the lock, then carry out what it decided. (A step
        that raises leaves its decisions in the outbox for the next one.)"""
        state = self._state
        with self._lock:
            if state.orphans:
                state.settle_orphans()
            result = step(*args)
            if state.went_idle:
                state.went_idle = False
                self._start_reaper()  # an idle connection needs the timer thread
            actions = state.drain()
            if state.closed or actions is not None and actions.close:
                self._reaper_wakeup.notify_all()  # it may have nothing left to wait for
        if actions is not None:
            self._carry_out(actions)
        return result

    def _carry_out(self, actions: Actions[Connection, Want]) -> None:
        for waiter in actions.wake:
            with waiter.cond:
                waiter.cond.notify()
        for waiter in actions.dials:
            threading.Thread(target=waiter.dial, args=(waiter,), name="roundtrip-dial", daemon=True).start()
        for conn in actions.close:
            conn.close()

    def _start_reaper(self) -> None:
        # At most one timer thread per pool (lock held). A running timer needs no wake-up:
        # a connection just put idle expires after every other one.
        if self._state.idle_timeout is not None and self._reaper is None:
            self._reaper = threading.Thread(target=self._reap, name="roundtrip-idle-reaper", daemon=True)
            self._reaper.start()

    def _reap(self) -> None:
        """Close idle connections as they expire; end after a whole idle period with nothing
        idle (so a busy pool keeps one thread, and an unused one keeps none)."""
        timeout = self._state.idle_timeout
        assert timeout is not None
        lingered = False
        wait: Optional[float] = None
        while True:
            with self._lock:
                # The lock was let go to close connections: a close() may have come meanwhile,
                # and its wake-up with it.
                if wait is not None and not self._state.closed:
                    self._reaper_wakeup.wait(wait)
                if self._state.orphans:
                    self._state.settle_orphans()
                done = self._state.closed
                if not done:
                    now = time.monotonic()
                    next_check = self._state.expire(now)
                    if next_check is None:
                        done = lingered
                        lingered, wait = True, timeout
                    else:
                        lingered, wait = False, max(next_check - now, 0.0)
                if done:
                    self._reaper = None
                actions = self._state.drain()
            if actions is not None:
                self._carry_out(actions)
            if done:
                return


def _nothing() -> None:
    """A step that decides nothing: ``_step`` around it settles orphans and carries out what
    earlier steps left in the outbox."""
