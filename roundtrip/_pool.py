"""The connection pool: idle connections, per-key limits and the requests waiting for them.

Go's ``Transport`` keeps this state in ``idleConn``, ``idleConnWait``, ``connsPerHost`` and
``connsPerHostWait``; here it is one ``Pool`` with one lock, never held across network I/O.
A request that finds no idle connection becomes a ``Want``: it is served by whichever comes
first, a connection another request returns or its own dial (Go's late binding), and a dial
that finishes after its request was served goes to the next waiter or the idle pool.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable, Optional

from ._errors import TransportClosed

__all__ = ("Pool", "Want")


class Want:
    """A request waiting for a connection (Go's ``wantConn``).

    The dialing thread and the pool hand results over under ``cond``; trace events raised while
    dialing are queued in ``events`` and run by the waiting (calling) thread.
    """

    __slots__ = ("key", "dial", "cond", "conn", "error", "dialing", "abandoned", "events")

    def __init__(self, key: str, dial: Callable[["Want"], None]) -> None:
        self.key = key
        self.dial = dial  # runs on its own thread and ends with Pool.dial_finished
        self.cond = threading.Condition(threading.Lock())
        self.conn: Any = None
        self.error: Optional[BaseException] = None
        self.dialing = False  # a dial of this want's own is in flight
        self.abandoned = False  # cancelled, timed out, or its caller failed
        self.events: deque[Callable[[], Any]] = deque()

    @property
    def pending(self) -> bool:
        return self.conn is None and self.error is None and not self.abandoned

    def post(self, event: Callable[[], Any]) -> None:
        """Queue a trace hook call for the waiting thread."""
        with self.cond:
            self.events.append(event)
            self.cond.notify()

    def wake(self) -> None:
        with self.cond:
            self.cond.notify()


class _HostState:
    __slots__ = ("dialing", "active", "blocked", "queue")

    def __init__(self) -> None:
        self.dialing = 0  # dials in flight
        self.active = 0  # connections handed to requests
        self.blocked = 0  # wants queued with no dial of their own (over max_conns_per_host)
        self.queue: deque[Want] = deque()  # every pending want, oldest first


class Pool:
    """Connections by key, with Go's limits; each ``Want``'s dial runs on a thread of its own."""

    def __init__(
        self,
        idle: Any,
        *,
        max_conns_per_host: int,
        idle_conn_timeout: Optional[float],
        keep_alive: bool,
    ) -> None:
        self._idle = idle  # _speedups IdleConnections
        self._max_conns_per_host = max_conns_per_host
        self._idle_timeout = idle_conn_timeout
        self._keep_alive = keep_alive
        self._lock = threading.Lock()
        self._reaper_wakeup = threading.Condition(self._lock)
        self._reaper: Optional[threading.Thread] = None
        self._hosts: dict[str, _HostState] = {}
        # Active connections whose response was garbage-collected unfinished: closed already,
        # their slots freed at the next locked step (a finalizer must not take the lock).
        self.orphans: deque[Any] = deque()
        self.closed = False

    # -- taking connections ------------------------------------------------------------------

    def take_idle(self, key: str) -> Any:
        """The most recently used idle connection for ``key``, marked active, or ``None``.

        The caller checks it is still alive and calls ``discard`` if not.
        """
        expired = None
        with self._lock:
            if self.orphans:
                self._settle_orphans()
            if self.closed:
                raise TransportClosed("transport is closed")
            conn = self._idle.get(key)
            if conn is not None and self._idle_timeout is not None:
                cutoff = time.monotonic() - self._idle_timeout
                if conn.idle_since < cutoff:
                    # The newest is too old, so are all the others of this key.
                    expired = [conn]
                    while True:
                        conn = self._idle.get(key)
                        if conn is None:
                            break
                        expired.append(conn)
            if conn is not None:
                self._host(key).active += 1
            else:
                self._forget_if_unused(key)
        if expired:
            for old in expired:
                old.close()
        return conn

    def want(self, key: str, dial: Callable[[Want], None]) -> Want:
        """Queue a want for ``key`` and start its dial unless ``max_conns_per_host`` is reached."""
        want = Want(key, dial)
        with self._lock:
            if self.orphans:
                self._settle_orphans()
            if self.closed:
                raise TransportClosed("transport is closed")
            host = self._host(key)
            host.queue.append(want)
            limit = self._max_conns_per_host
            if limit > 0 and self._total(key, host) >= limit:
                host.blocked += 1
                return want
            host.dialing += 1
            want.dialing = True
        self._start_dial(want)
        return want

    def abandon(self, want: Want, close: bool = False) -> None:
        """The want's caller gave up (cancel, deadline, or an error of its own). A connection
        delivered meanwhile goes back to the pool, or is closed when ``close`` is set (a trace
        hook raised: the connection is closed then)."""
        with self._lock:
            if self.orphans:
                self._settle_orphans()
            if want.abandoned:
                return
            want.abandoned = True
            host = self._hosts.get(want.key)
            if host is not None and want in host.queue:
                host.queue.remove(want)
                if not want.dialing:
                    host.blocked -= 1
            conn, want.conn = want.conn, None
        if conn is not None:
            # Delivered just as its caller gave up: it was never used.
            self.release(conn, reusable=not close)

    def dial_finished(self, want: Want, conn: Any, error: Optional[BaseException]) -> None:
        """Called by the dialing thread with the new connection or the dial's error."""
        to_close = None
        spare = False
        starts: list[Want] = []
        with self._lock:
            if self.orphans:
                self._settle_orphans()
            host = self._host(want.key)
            host.dialing -= 1
            want.dialing = False
            if want.pending:
                host.queue.remove(want)
                with want.cond:
                    if conn is not None:
                        host.active += 1
                        want.conn = conn
                    else:
                        want.error = error
                    want.cond.notify()
            elif conn is not None and not want.abandoned and not self.closed:
                # Served by another connection first (late binding): this one is spare.
                host.active += 1
                spare = True
            elif conn is not None:
                # A cancelled request's late dial is closed, not pooled (unlike Go, which keeps it).
                to_close = conn
            if conn is None or to_close is not None:
                starts = self._dials_for_waiters(want.key, host)
            self._forget_if_unused(want.key)
        for waiter in starts:
            self._start_dial(waiter)
        if to_close is not None:
            to_close.close()
        if spare:
            self.release(conn, reusable=True)

    # -- returning connections ---------------------------------------------------------------

    def release(self, conn: Any, reusable: bool) -> bool:
        """Return an active connection: to the oldest waiter, else to the idle pool, else closed.

        Returns whether the connection was kept (handed over or idle).
        """
        to_close: list[Any] = []
        starts: list[Want] = []
        kept = False
        with self._lock:
            if self.orphans:
                self._settle_orphans()
            key = conn.key
            host = self._host(key)
            if reusable and self._keep_alive and not self.closed and not conn.closed:
                while host.queue and not kept:
                    waiter = host.queue.popleft()
                    if not waiter.dialing:
                        host.blocked -= 1
                    with waiter.cond:
                        waiter.conn = conn
                        waiter.cond.notify()
                    kept = True
                if not kept:
                    host.active -= 1
                    conn.idle_since = time.monotonic()
                    to_close = self._idle.put(key, conn)
                    kept = conn not in to_close
                    if kept:
                        self._start_reaper()
                    for evicted in to_close:
                        if evicted is not conn:
                            starts.extend(self._dials_for_waiters(evicted.key, self._host(evicted.key)))
                            self._forget_if_unused(evicted.key)
            else:
                host.active -= 1
                to_close = [conn]
            if not kept:
                starts.extend(self._dials_for_waiters(key, host))
            self._forget_if_unused(key)
        for waiter in starts:
            self._start_dial(waiter)
        for old in to_close:
            old.close()
        return kept

    def discard(self, conn: Any) -> None:
        """Close an active connection and free its slot."""
        self.release(conn, reusable=False)

    def evict(self, conn: Any) -> None:
        """Close ``conn`` if it is idle (its owner's trace hook failed after it was pooled)."""
        with self._lock:
            if self.orphans:
                self._settle_orphans()
            removed = self._idle.remove(conn.key, conn)
            if removed:
                self._forget_if_unused(conn.key)
        if removed:
            conn.close()

    # -- idle management ---------------------------------------------------------------------

    def close_idle(self) -> None:
        """Close every idle connection now."""
        with self._lock:
            if self.orphans:
                self._settle_orphans()
            conns = self._idle.pop_all()
            for conn in conns:
                self._forget_if_unused(conn.key)
            self._reaper_wakeup.notify_all()
        for conn in conns:
            conn.close()

    def close(self) -> None:
        """Close idle connections; connections returned later are closed, not kept."""
        with self._lock:
            if self.orphans:
                self._settle_orphans()
            self.closed = True
        self.close_idle()

    def stats(self) -> dict[str, dict[str, int]]:
        """``Transport.pool_stats()``: counts per key with anything non-zero, and a total."""
        result: dict[str, dict[str, int]] = {}
        total = {"idle": 0, "active": 0, "dialing": 0, "waiting": 0}
        with self._lock:
            if self.orphans:
                self._settle_orphans()
            keys = set(self._hosts) | set(self._idle.keys())
            for key in sorted(keys):
                host = self._hosts.get(key)
                counts = {
                    "idle": self._idle.count(key),
                    "active": host.active if host else 0,
                    "dialing": host.dialing if host else 0,
                    "waiting": host.blocked if host else 0,
                }
                if any(counts.values()):
                    result[key] = counts
                    for name, value in counts.items():
                        total[name] += value
        result["total"] = total
        return result

    def _start_reaper(self) -> None:
        # At most one timer thread per pool (lock held). A running timer needs no wake-up:
        # a connection just put idle expires after every other one.
        if self._idle_timeout is not None and self._reaper is None:
            self._reaper = threading.Thread(target=self._reap, name="roundtrip-idle-reaper", daemon=True)
            self._reaper.start()

    def _reap(self) -> None:
        """Close idle connections as they expire; end after a whole idle period with nothing
        idle (so a busy pool keeps one thread, and an unused one keeps none)."""
        timeout = self._idle_timeout
        assert timeout is not None
        lingered = False
        while True:
            with self._lock:
                if self.orphans:
                    self._settle_orphans()
                if self.closed:
                    self._reaper = None
                    return
                oldest = self._idle.oldest_idle_since()
                if oldest is None:
                    if lingered:
                        self._reaper = None
                        return
                    lingered = True
                    self._reaper_wakeup.wait(timeout)
                    continue
                lingered = False
                now = time.monotonic()
                if oldest + timeout > now:
                    self._reaper_wakeup.wait(oldest + timeout - now)
                    continue
                expired = self._idle.pop_expired(now - timeout)
                for conn in expired:
                    self._forget_if_unused(conn.key)
            for conn in expired:
                conn.close()

    # -- bookkeeping (lock held) -------------------------------------------------------------

    def _host(self, key: str) -> _HostState:
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _HostState()
        return host

    def _total(self, key: str, host: _HostState) -> int:
        return host.dialing + host.active + self._idle.count(key)

    def settle_orphans(self) -> None:
        """Free the slots of connections whose responses were dropped (a waiter calls this
        while it waits, as a finalizer cannot wake it)."""
        if self.orphans:
            with self._lock:
                self._settle_orphans()

    def _settle_orphans(self) -> None:
        orphans = self.orphans
        while orphans:
            conn = orphans.popleft()
            host = self._hosts.get(conn.key)
            if host is None:
                continue
            host.active -= 1
            for waiter in self._dials_for_waiters(conn.key, host):
                self._start_dial(waiter)
            self._forget_if_unused(conn.key)

    def _forget_if_unused(self, key: str) -> None:
        host = self._hosts.get(key)
        if host is not None and not (host.dialing or host.active or host.queue):
            del self._hosts[key]

    def _dials_for_waiters(self, key: str, host: _HostState) -> list[Want]:
        """A slot freed under ``key``: the oldest blocked wants may dial now (Go's
        ``decConnsPerHost``)."""
        starts = []
        limit = self._max_conns_per_host
        for want in host.queue:
            if limit > 0 and self._total(key, host) >= limit:
                break
            if not want.dialing:
                want.dialing = True
                host.blocked -= 1
                host.dialing += 1
                starts.append(want)
        return starts

    def _start_dial(self, want: Want) -> None:
        threading.Thread(target=want.dial, args=(want,), name="roundtrip-dial", daemon=True).start()
