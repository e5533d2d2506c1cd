"""The pool's edge for an event loop: ``PoolState``'s steps run as ``_sync_pool.Pool`` runs
them, minus the lock (one loop thread takes every step); a dial is a task, a waiting request
awaits a future, and idle connections expire by ``loop.call_later``, with no thread."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Callable, Coroutine, Optional, TypeVar

from ._pool import Actions, PoolState, Waiter

if TYPE_CHECKING:
    from ._async_connection import AsyncConnection
    from ._events import IdleTable
    from ._route import PoolKey

_R = TypeVar("_R")

__all__ = ("AsyncPool", "AsyncWant")


class AsyncWant(Waiter["AsyncConnection"]):
    """A waiting request on the loop: ``future`` is resolved when the pool decided for it."""

    __slots__ = ("dial", "future", "task")

    def __init__(self, key: PoolKey, dial: Callable[["AsyncWant"], Coroutine[Any, Any, None]], future: asyncio.Future[None]) -> None:
        super().__init__(key)
        self.dial = dial  # a coroutine function ending with AsyncPool.dial_finished
        self.future = future
        self.task: Optional[asyncio.Task[None]] = None  # its dial, while in flight


class AsyncPool:
    """``PoolState`` on one event loop: each step runs, then what it decided (dials to start,
    waiters to wake, connections to close) is carried out."""

    def __init__(self, idle: IdleTable[PoolKey, AsyncConnection], *, max_conns_per_host: int, idle_conn_timeout: Optional[float], keep_alive: bool) -> None:
        self._state: PoolState[AsyncConnection, AsyncWant] = PoolState(idle, max_conns_per_host=max_conns_per_host, idle_conn_timeout=idle_conn_timeout, keep_alive=keep_alive)
        self.orphans = self._state.orphans
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self._timer: Optional[asyncio.TimerHandle] = None
        self._dialing: set[AsyncWant] = set()  # wants whose dial task runs

    def take_idle(self, key: PoolKey) -> Optional[AsyncConnection]:
        """The most recently used idle connection for ``key``, marked active, or None."""
        state = self._state
        if state.orphans:
            state.settle_orphans()
        conn = state.take_idle(key, time.monotonic())
        outbox = state.outbox
        if outbox.dials or outbox.wake or outbox.close:
            self._step(_nothing)
        return conn

    def want(self, key: PoolKey, dial: Callable[[AsyncWant], Coroutine[Any, Any, None]]) -> AsyncWant:
        """Queue a want for ``key``; its dial starts unless ``max_conns_per_host`` is reached."""
        assert self.loop is not None
        want = AsyncWant(key, dial, self.loop.create_future())
        self._step(self._state.want, want)
        return want

    def abandon(self, want: AsyncWant, close: bool = False) -> None:
        """The want's caller gave up: its dial stops; a connection delivered meanwhile goes
        back to the pool, or is closed when ``close`` is set."""
        self._step(self._state.abandon, want, time.monotonic(), not close)
        if want.task is not None:
            want.task.cancel()

    def dial_finished(self, want: AsyncWant, conn: Optional[AsyncConnection], error: Optional[BaseException]) -> None:
        want.task = None
        self._dialing.discard(want)
        self._step(self._state.dial_finished, want, conn, error, time.monotonic())

    def release(self, conn: AsyncConnection, reusable: bool) -> bool:
        """Return an active connection: to the oldest waiter, else to the idle pool, else
        closed. Returns whether it was kept."""
        state = self._state
        if state.orphans:
            state.settle_orphans()
        kept = state.release(conn, reusable, time.monotonic())
        if state.went_idle and self._timer is not None:
            state.went_idle = False  # the timer set expires it after the others
        outbox = state.outbox
        if outbox.dials or outbox.wake or outbox.close or state.went_idle:
            self._step(_nothing)
        return kept

    def discard(self, conn: AsyncConnection) -> None:
        """Close an active connection and free its slot."""
        self.release(conn, reusable=False)

    def evict(self, conn: AsyncConnection) -> None:
        """Close ``conn`` if it is idle (the server closed it, or a trace hook failed)."""
        self._step(self._state.evict, conn)

    def close_idle(self) -> None:
        self._step(self._state.close_idle)

    def close(self) -> None:
        self._step(self._state.close)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def stop_late_dials(self) -> None:
        """Cancel the dials no request waits for any more (served first by a returned
        connection) and let them end: what they would bring is closed anyway."""
        tasks = [want.task for want in self._dialing if want.task is not None and not want.pending]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    def stats(self) -> dict[str, dict[str, int]]:
        # May be called from any thread: a step of the loop's may change the tables meanwhile.
        for _ in range(100):
            try:
                return self._state.stats()
            except RuntimeError:
                continue
        return self._state.stats()

    # -- the edge ----------------------------------------------------------------------------

    def _step(self, step: Callable[..., _R], *args: object) -> _R:
        """Run one ``PoolState`` step, then carry out what it decided."""
        state = self._state
        if state.orphans:
            state.settle_orphans()
        try:
            return step(*args)
        finally:
            if state.went_idle:
                state.went_idle = False
                self._start_timer()
            actions = state.drain()
            if actions is not None:
                self._carry_out(actions)

    def _carry_out(self, actions: Actions[AsyncConnection, AsyncWant]) -> None:
        for waiter in actions.wake:
            if not waiter.future.done():
                waiter.future.set_result(None)
        for waiter in actions.dials:
            assert self.loop is not None
            waiter.task = self.loop.create_task(waiter.dial(waiter))
            self._dialing.add(waiter)
        for conn in actions.close:
            conn.close()

    def _start_timer(self) -> None:
        # One timer per pool; a connection just put idle expires after every other one, so a
        # timer already set needs no change.
        timeout = self._state.idle_timeout
        if timeout is not None and self._timer is None and self.loop is not None and not self._state.closed:
            self._timer = self.loop.call_later(timeout, self._expire)

    def _expire(self) -> None:
        """Close idle connections as they expire; the timer stops when nothing is idle."""
        self._timer = None
        state = self._state
        if state.closed:
            return
        now = time.monotonic()
        next_check = self._step(state.expire, now)
        if next_check is not None and self.loop is not None:
            self._timer = self.loop.call_later(max(next_check - now, 0.0), self._expire)


def _nothing() -> None:
    """A step that decides nothing: ``_step`` carries out what earlier steps left."""
