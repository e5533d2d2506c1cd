"""Per-phase timeouts for the adapters, enforced by cancelling the request's ``Context``.

httpx and requests give timeouts per request and per phase (waiting for a pool slot,
connecting, each write, each read), and their read timeout is a limit on *inactivity*: a
download may take an hour as long as no single read waits longer than the limit. roundtrip's
options are per Transport and a ``Context`` deadline is one fixed instant for the whole round
trip, body included, so neither can say this. The adapters therefore give each request a
``Context`` without a deadline plus a ``PhaseTimer``:

- ``Trace`` hooks, which run on the calling thread, move the timer from phase to phase
  (``get_conn`` -> pool, ``dns_start``/``connect_start`` -> connect, ``got_conn`` -> write,
  ``wrote_request`` -> read), and every chunk that moves (a body chunk handed to the transport,
  a response chunk received) restarts the current phase's clock;
- one ``Watchdog`` thread per adapter sleeps until the earliest running clock runs out and then
  cancels that request's ``Context``. roundtrip aborts within 100 ms with ``Cancelled`` (the
  connection is closed, never pooled), and the adapter reports the timeout of the phase the
  timer was in when it fired.

The watchdog thread starts with the first timed request and ends after ``LINGER`` seconds with
nothing to watch, or when the adapter is closed. A request whose limits are all ``None`` gets
no Context, no Trace and no timer: it costs nothing.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Iterable, Iterator, Optional

import roundtrip

__all__ = ("POOL", "CONNECT", "WRITE", "READ", "PhaseTimer", "Watchdog", "timeout_phase", "TimedFile", "timed_chunks")

POOL, CONNECT, WRITE, READ = 0, 1, 2, 3
PHASE_NAMES = ("pool", "connect", "write", "read")
_INFINITY = float("inf")
_monotonic = time.monotonic


class Watchdog:
    """One thread that cancels the Context of every ``PhaseTimer`` whose clock runs out."""

    LINGER = 5.0  # seconds the thread waits with nothing to watch before it ends

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._timers: set[PhaseTimer] = set()
        self._thread: Optional[threading.Thread] = None
        self._wake_at = _INFINITY  # when the thread will look again (read under the lock)
        self._closed = False

    def watch(self, timer: "PhaseTimer") -> None:
        """Start watching ``timer`` (again); wake the thread if its deadline comes first."""
        with self._cond:
            if self._closed:
                return  # close() is running: the request goes unwatched
            self._timers.add(timer)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="roundtrip-adapter-timeouts", daemon=True)
                self._thread.start()
            elif timer.deadline is not None and timer.deadline < self._wake_at:
                self._cond.notify()

    def forget(self, timer: "PhaseTimer") -> None:
        with self._cond:
            self._timers.discard(timer)

    def close(self) -> None:
        """Stop the thread now and forget every timer; a later ``watch`` starts it again."""
        with self._cond:
            self._closed = True
            self._timers.clear()
            thread = self._thread
            self._cond.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        with self._cond:
            self._closed = False

    def _run(self) -> None:
        cond = self._cond
        idle_since: Optional[float] = None
        cond.acquire()
        try:
            while not self._closed:
                now = _monotonic()
                expired = []
                earliest = _INFINITY
                for timer in self._timers:
                    deadline = timer.deadline
                    if deadline is None:
                        continue
                    if deadline <= now:
                        expired.append(timer)
                    elif deadline < earliest:
                        earliest = deadline
                if expired:
                    for timer in expired:
                        self._timers.discard(timer)
                        timer.fired = timer.phase
                        timer.deadline = None
                    cond.release()
                    try:
                        for timer in expired:
                            timer.context.cancel()
                    finally:
                        cond.acquire()
                    continue
                if not self._timers:
                    if idle_since is None:
                        idle_since = now
                    elif now - idle_since >= self.LINGER:
                        break
                    self._wake_at = idle_since + self.LINGER
                else:
                    idle_since = None
                    self._wake_at = earliest
                cond.wait(max(self._wake_at - now, 0.0) if self._wake_at < _INFINITY else None)
        finally:
            self._thread = None
            self._wake_at = _INFINITY
            cond.release()


class PhaseTimer:
    """Which phase one request is in, and by when that phase must make progress.

    ``limits`` holds seconds (or ``None`` for no limit) for the pool, connect, write and read
    phases. ``fired`` is the phase whose limit ran out, once the watchdog has cancelled.
    """

    __slots__ = ("context", "trace", "limits", "phase", "deadline", "fired", "_watchdog")

    def __init__(self, watchdog: Watchdog, limits: tuple[Optional[float], Optional[float], Optional[float], Optional[float]]) -> None:
        self.context = roundtrip.Context()
        self.limits = limits
        self.phase = POOL
        self.deadline: Optional[float] = None
        self.fired: Optional[int] = None
        self._watchdog = watchdog
        self.trace = roundtrip.Trace(
            get_conn=self._on_get_conn,
            dns_start=self._on_dial,
            connect_start=self._on_dial,
            got_conn=self._on_got_conn,
            wrote_headers=self._on_progress,
            wrote_request=self._on_wrote_request,
            got_first_response_byte=self._on_progress,
        )

    def enter(self, phase: int) -> None:
        """Start ``phase`` with a fresh clock."""
        if self.fired is not None:
            return  # cancelled already: the request fails with the phase that ran out
        self.phase = phase
        limit = self.limits[phase]
        if limit is None:
            self.deadline = None
            return
        self.deadline = _monotonic() + limit
        self._watchdog.watch(self)

    def progress(self) -> None:
        """Something moved: restart the current phase's clock."""
        limit = self.limits[self.phase]
        if limit is None:
            return
        if self.deadline is not None:
            # The deadline only moves later, so the watchdog needs no wake-up.
            self.deadline = _monotonic() + limit
        else:
            self.enter(self.phase)

    def pause(self) -> None:
        """Stop the clock while the caller's own code runs (producing the next body chunk)."""
        if self.fired is None:
            self.deadline = None

    def stop(self) -> None:
        """The request is over: stop watching it."""
        self.deadline = None
        self._watchdog.forget(self)

    # Trace hooks (they run on the calling thread).

    def _on_get_conn(self, key: str) -> None:
        self.enter(POOL)

    def _on_dial(self, *args: Any) -> None:
        if self.phase == POOL:
            self.enter(CONNECT)

    def _on_got_conn(self, info: Any) -> None:
        self.enter(WRITE)

    def _on_progress(self) -> None:
        self.progress()

    def _on_wrote_request(self, error: Optional[BaseException]) -> None:
        self.enter(READ)


def timeout_phase(exc: BaseException, timer: Optional[PhaseTimer]) -> Optional[int]:
    """The phase whose timeout ``exc`` stands for, or ``None`` if it is not a timeout."""
    if isinstance(exc, (roundtrip.ConnectTimeout, roundtrip.TLSHandshakeTimeout)):
        return CONNECT
    if isinstance(exc, roundtrip.ResponseHeaderTimeout):
        return READ
    if isinstance(exc, roundtrip.Timeout):  # DeadlineExceeded, or a future kind
        return timer.phase if timer is not None else READ
    if isinstance(exc, roundtrip.Cancelled) and timer is not None:
        return timer.fired
    return None


def timed_chunks(chunks: Iterable[Any], timer: PhaseTimer) -> Iterator[Any]:
    """Yield ``chunks``, with the clock stopped while the caller's iterator produces each one
    and restarted as each one is handed to the transport."""
    iterator = iter(chunks)
    while True:
        timer.pause()
        try:
            chunk = next(iterator)
        except StopIteration:
            timer.progress()
            return
        timer.progress()
        yield chunk


class TimedFile:
    """A binary file whose every ``read`` restarts the timer's clock; everything else (size,
    ``seek`` for a replay) goes to the file itself."""

    __slots__ = ("_file", "_timer")

    def __init__(self, file: Any, timer: PhaseTimer) -> None:
        self._file = file
        self._timer = timer

    def read(self, size: int = -1) -> Any:
        data = self._file.read(size)
        self._timer.progress()
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)
