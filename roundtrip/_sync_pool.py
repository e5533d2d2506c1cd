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
        with self._lock:
            try:
                conn = self._state.take_idle(key, time.monotonic())
            finally:
                actions = self._drain()
        self._carry_out(actions)
        return conn

    def want(self, key: PoolKey, dial: Callable[[Want], None]) -> Want:
        """Queue a want for ``key``; its dial starts unless ``max_conns_per_host`` is reached."""
        want = Want(key, dial)
        with self._lock:
            try:
                self._state.want(want)
            finally:
                actions = self._drain()
        self._carry_out(actions)
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
        return self._step(self._state.release, conn, reusable, time.monotonic())

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
            self._step(self._state.settle_orphans)

    # -- the edge ----------------------------------------------------------------------------

    def _step(self, step: Callable[..., _R], *args: object) -> _R:
        with self._lock:
            try:
                result = step(*args)
            finally:
                actions = self._drain()
        self._carry_out(actions)
        return result

    def _drain(self) -> Actions[Connection, Want]:
        """The state's decisions (lock held); an idle connection needs the timer thread, and
        closing connections or the pool wakes it (it may have nothing left to wait for)."""
        actions = self._state.drain()
        if actions.went_idle:
            self._start_reaper()
        if actions.close or self._state.closed:
            self._reaper_wakeup.notify_all()
        return actions

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
                if wait is not None:
                    self._reaper_wakeup.wait(wait)
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
            self._carry_out(actions)
            if done:
                return
