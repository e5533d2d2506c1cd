"""Pool bookkeeping, with no threads, locks or clocks: idle connections, per-key limits and the
requests waiting for them.

Go's ``Transport`` keeps this state in ``idleConn``, ``idleConnWait``, ``connsPerHost`` and
``connsPerHostWait``. ``PoolState`` holds it and makes every decision: which idle connection a
request gets, whether a request may dial or must wait (``max_conns_per_host``), who gets a
returned connection (the oldest waiter, else the idle pool), which connections expire. What
follows from a decision (start these dials, wake these waiters, close these connections) goes
to an outbox that the shell (threads, or an event loop) drains after each step and carries
out, outside of any lock it holds.

A request that finds no idle connection becomes a ``Waiter``: it is served by whichever comes
first, a connection another request returns or its own dial (Go's late binding), and a dial
that finishes after its request was served goes to the next waiter or the idle pool.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Generic, Optional, Protocol, TypeVar

from ._errors import TransportClosed

if TYPE_CHECKING:
    from ._events import IdleTable
    from ._route import PoolKey

__all__ = ("PoolState", "Waiter", "Actions", "PooledConn", "idle_limits")


class PooledConn(Protocol):
    """What the pool reads and writes of a connection; the shell's connections have more."""

    key: PoolKey
    idle_since: float  # when it went idle (the shell's monotonic clock)
    closed: bool


C = TypeVar("C", bound=PooledConn)
# The shell's waiter class. Its connection type cannot be tied to C in a bound (type variables
# cannot take parameters), hence Any; the shell's own class names its connection type.
W = TypeVar("W", bound="Waiter[Any]")


class Waiter(Generic[C]):
    """A request waiting for a connection (Go's ``wantConn``): what the pool decided for it."""

    __slots__ = ("key", "conn", "error", "dialing", "abandoned")

    def __init__(self, key: PoolKey) -> None:
        self.key = key
        self.conn: Optional[C] = None  # the connection it was given
        self.error: Optional[BaseException] = None  # its dial's error
        self.dialing = False  # a dial of its own is in flight
        self.abandoned = False  # cancelled, timed out, or its caller failed

    @property
    def pending(self) -> bool:
        return self.conn is None and self.error is None and not self.abandoned


class Actions(Generic[C, W]):
    """What the shell carries out after a step: start ``dials``, wake ``wake`` (their
    ``conn`` or ``error`` is set), close ``close``."""

    __slots__ = ("dials", "wake", "close")

    def __init__(self) -> None:
        self.dials: list[W] = []
        self.wake: list[W] = []
        self.close: list[C] = []


class _HostState(Generic[W]):
    __slots__ = ("dialing", "active", "blocked", "queue")

    def __init__(self) -> None:
        self.dialing = 0  # dials in flight
        self.active = 0  # connections handed to requests
        self.blocked = 0  # waiters queued with no dial of their own (over max_conns_per_host)
        self.queue: deque[W] = deque()  # every pending waiter, oldest first


def idle_limits(max_idle_conns: int, max_idle_conns_per_host: int) -> tuple[int, int]:
    """``(total, per_host)`` for the idle table from a Transport's options. Go: a
    MaxIdleConnsPerHost of 0 means the default (16), a negative one keeps none, and a negative
    MaxIdleConns keeps none either."""
    per_host = max_idle_conns_per_host if max_idle_conns_per_host != 0 else 16
    if max_idle_conns < 0:
        return 0, -1
    return max_idle_conns, per_host


class PoolState(Generic[C, W]):
    """Connections by key, with Go's limits. Each public method is one step (the threaded shell
    runs it under its lock); ``now`` is the shell's monotonic clock; ``drain()`` hands over
    what the steps decided.

    Before each step the shell calls ``settle_orphans()`` when ``orphans`` is not empty (a
    finalizer queues there, as it may not take the shell's lock); after a step that set
    ``went_idle`` it makes sure its expiry timer runs, and clears the flag.
    """

    def __init__(self, idle: IdleTable[PoolKey, C], *, max_conns_per_host: int, idle_conn_timeout: Optional[float], keep_alive: bool) -> None:
        self._idle = idle  # _speedups IdleConnections: MRU per key, global LRU
        self._max_conns_per_host = max_conns_per_host
        self.idle_timeout = idle_conn_timeout
        self._keep_alive = keep_alive
        self._hosts: dict[PoolKey, _HostState[W]] = {}
        # Active connections whose response was garbage-collected unfinished: closed already,
        # their slots freed at the next step (a finalizer must not take the shell's lock).
        self.orphans: deque[C] = deque()
        self.closed = False
        self.went_idle = False  # a connection went idle since the shell last looked
        # What the steps decided and the shell has not carried out yet (most steps decide
        # nothing: the shell looks at the three lists before it calls ``drain``).
        self.outbox: Actions[C, W] = Actions()

    def drain(self) -> Optional[Actions[C, W]]:
        """What the steps so far decided, for the shell to carry out, or None: nothing to do."""
        actions = self.outbox
        if not (actions.dials or actions.wake or actions.close):
            return None
        self.outbox = Actions()
        return actions

    # -- taking connections ------------------------------------------------------------------

    def take_idle(self, key: PoolKey, now: float) -> Optional[C]:
        """The most recently used idle connection for ``key``, now active, or None. The shell
        checks it is still alive and ``release``s it (not reusable) if not."""
        if self.closed:
            raise TransportClosed("transport is closed")
        conn = self._idle.get(key)
        if conn is not None and self.idle_timeout is not None and conn.idle_since < now - self.idle_timeout:
            # The newest is too old, so are all the others of this key.
            while conn is not None:
                self.outbox.close.append(conn)
                conn = self._idle.get(key)
        if conn is not None:
            # A key with idle connections keeps its state (_forget_if_unused): no new one here.
            self._hosts[key].active += 1
        else:
            self._forget_if_unused(key)
        return conn

    def want(self, waiter: W) -> None:
        """Queue ``waiter``; it dials now unless ``max_conns_per_host`` is reached."""
        if self.closed:
            raise TransportClosed("transport is closed")
        key = waiter.key
        host = self._host(key)
        host.queue.append(waiter)
        limit = self._max_conns_per_host
        if limit > 0 and self._total(key, host) >= limit:
            host.blocked += 1
            return
        host.dialing += 1
        waiter.dialing = True
        self.outbox.dials.append(waiter)

    def abandon(self, waiter: W, now: float, reusable: bool = True) -> None:
        """The waiter's caller gave up (cancel, deadline, an error of its own). A connection
        delivered meanwhile was never used: it goes back to the pool, or is closed when not
        ``reusable`` (a trace hook raised)."""
        if waiter.abandoned:
            return
        waiter.abandoned = True
        host = self._hosts.get(waiter.key)
        if host is not None and waiter in host.queue:
            host.queue.remove(waiter)
            if not waiter.dialing:
                host.blocked -= 1
        conn, waiter.conn = waiter.conn, None
        if conn is not None:
            self.release(conn, reusable, now)

    def dial_finished(self, waiter: W, conn: Optional[C], error: Optional[BaseException], now: float) -> None:
        """A dial ended with ``conn`` or ``error``: its waiter gets it, or (served first by a
        returned connection: Go's late binding) the connection goes to the next waiter or the
        idle pool; a cancelled request's late dial is closed (unlike Go, which keeps it)."""
        key = waiter.key
        host = self._host(key)
        host.dialing -= 1
        waiter.dialing = False
        closing = False
        if waiter.pending:
            host.queue.remove(waiter)
            if conn is not None:
                host.active += 1
                waiter.conn = conn
            else:
                waiter.error = error
            self.outbox.wake.append(waiter)
        elif conn is not None and not waiter.abandoned and not self.closed:
            host.active += 1
            self.release(conn, True, now)
            return
        elif conn is not None:
            self.outbox.close.append(conn)
            closing = True
        if conn is None or closing:
            self._dials_for_waiters(key, host)
        self._forget_if_unused(key)

    # -- returning connections ---------------------------------------------------------------

    def release(self, conn: C, reusable: bool, now: float) -> bool:
        """Return an active connection: to the oldest waiter, else to the idle pool, else to
        be closed. Returns whether it was kept."""
        actions = self.outbox
        key = conn.key
        host = self._hosts.get(key)
        if host is None:
            host = self._host(key)
        kept = False
        if reusable and self._keep_alive and not self.closed and not conn.closed:
            if host.queue:
                waiter = host.queue.popleft()
                if not waiter.dialing:
                    host.blocked -= 1
                waiter.conn = conn
                actions.wake.append(waiter)
                kept = True
            else:
                host.active -= 1
                conn.idle_since = now
                evicted = self._idle.put(key, conn)
                kept = conn not in evicted
                if kept:
                    self.went_idle = True
                if evicted:
                    actions.close.extend(evicted)
                for old in evicted:
                    if old is not conn:
                        self._dials_for_waiters(old.key, self._host(old.key))
                        self._forget_if_unused(old.key)
        else:
            host.active -= 1
            actions.close.append(conn)
        if not kept:
            self._dials_for_waiters(key, host)
            # Kept, the connection is idle or active under key: its state stays.
            self._forget_if_unused(key)
        return kept

    def evict(self, conn: C) -> None:
        """Close ``conn`` if it is idle (its owner's trace hook failed after it was pooled)."""
        if self._idle.remove(conn.key, conn):
            self._forget_if_unused(conn.key)
            self.outbox.close.append(conn)

    # -- idle management ---------------------------------------------------------------------

    def close_idle(self) -> None:
        """Close every idle connection now."""
        conns = self._idle.pop_all()
        for conn in conns:
            self._forget_if_unused(conn.key)
        self.outbox.close.extend(conns)

    def close(self) -> None:
        """Close idle connections; connections returned later are closed, not kept."""
        self.closed = True
        self.close_idle()

    def expire(self, now: float) -> Optional[float]:
        """Close idle connections past ``idle_conn_timeout``; returns when the next one
        expires, or None when nothing is idle."""
        timeout = self.idle_timeout
        assert timeout is not None
        expired = self._idle.pop_expired(now - timeout)
        for conn in expired:
            self._forget_if_unused(conn.key)
        self.outbox.close.extend(expired)
        oldest = self._idle.oldest_idle_since()
        return None if oldest is None else oldest + timeout

    def stats(self) -> dict[str, dict[str, int]]:
        """``Transport.pool_stats()``: counts per key with anything non-zero, and a total."""
        result: dict[str, dict[str, int]] = {}
        total = {"idle": 0, "active": 0, "dialing": 0, "waiting": 0}
        for key in sorted(set(self._hosts) | set(self._idle.keys()), key=str):
            host = self._hosts.get(key)
            counts = {
                "idle": self._idle.count(key),
                "active": host.active if host else 0,
                "dialing": host.dialing if host else 0,
                "waiting": host.blocked if host else 0,
            }
            if any(counts.values()):
                # Keys that differ only in proxy credentials share their text: one entry.
                entry = result.setdefault(str(key), {"idle": 0, "active": 0, "dialing": 0, "waiting": 0})
                for name, value in counts.items():
                    entry[name] += value
                    total[name] += value
        result["total"] = total
        return result

    # -- bookkeeping -------------------------------------------------------------------------

    def settle_orphans(self) -> None:
        """Free the slots of connections whose responses were dropped unfinished (before each
        step; a waiting request asks for it too, as a finalizer wakes nobody)."""
        orphans = self.orphans
        while orphans:
            conn = orphans.popleft()
            host = self._hosts.get(conn.key)
            if host is None:
                continue
            host.active -= 1
            self._dials_for_waiters(conn.key, host)
            self._forget_if_unused(conn.key)

    def _host(self, key: PoolKey) -> _HostState[W]:
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _HostState()
        return host

    def _total(self, key: PoolKey, host: _HostState[W]) -> int:
        return host.dialing + host.active + self._idle.count(key)

    def _forget_if_unused(self, key: PoolKey) -> None:
        # A key's state lives while anything is under it, idle connections included: one
        # that is reused again and again keeps its state rather than making it anew each time.
        host = self._hosts.get(key)
        if host is not None and not (host.dialing or host.active or host.queue or self._idle.count(key)):
            del self._hosts[key]

    def _dials_for_waiters(self, key: PoolKey, host: _HostState[W]) -> None:
        """A slot freed under ``key``: the oldest blocked waiters may dial now (Go's
        ``decConnsPerHost``)."""
        limit = self._max_conns_per_host
        for waiter in host.queue:
            if limit > 0 and self._total(key, host) >= limit:
                break
            if not waiter.dialing:
                waiter.dialing = True
                host.blocked -= 1
                host.dialing += 1
                self.outbox.dials.append(waiter)
