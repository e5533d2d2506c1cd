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
- one ``Watchdog`` thread per adapter looks at the running clocks every 20 ms and cancels the
  ``Context`` of a request whose clock has run out. roundtrip aborts within 100 ms with ``Cancelled`` (the
  connection is closed, never pooled), and the adapter reports the timeout of the phase the
  timer was in when it fired.

The watchdog thread starts with the first timed request and ends after ``LINGER`` seconds with
nothing to watch, or when the adapter is closed. A request whose limits are all ``None`` gets
no Context, no Trace and no timer: it costs nothing.
"""

from __future__ import annotations

import threading
import time
from typing import Any, AsyncIterable, AsyncIterator, Iterable, Iterator, Optional

import roundtrip

__all__ = ("POOL", "CONNECT", "WRITE", "READ", "PhaseTimer", "Watchdog", "timeout_phase", "TimedFile", "timed_chunks",
           "timed_async_chunks")

POOL, CONNECT, WRITE, READ = 0, 1, 2, 3
PHASE_NAMES = ("pool", "connect", "write", "read")
_INFINITY = float("inf")
_monotonic = time.monotonic


class Watchdog:
    """One thread that cancels the Context of every watched ``PhaseTimer`` whose clock has run out.

    Requests never wait for it: watching a timer is one ``set.add`` (the thread is started
    on the first one), and moving a timer's deadline is one attribute write. The thread looks
    at the deadlines every ``TICK`` seconds, so a timeout fires up to one tick late.
    """

    TICK = 0.02  # seconds between looks
    LINGER = 5.0  # seconds the thread stays with nothing to watch before it ends

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards starting and ending the thread
        self._timers: set[PhaseTimer] = set()
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()

    def watch(self, timer: "PhaseTimer") -> None:
        """Start watching ``timer`` (set.add is atomic under the GIL)."""
        self._timers.add(timer)
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._stop.is_set():
                    self._thread = threading.Thread(target=self._run, name="roundtrip-adapter-timeouts", daemon=True)
                    self._thread.start()

    def forget(self, timer: "PhaseTimer") -> None:
        self._timers.discard(timer)

    def close(self) -> None:
        """Stop the thread now and forget every timer; a later ``watch`` starts it again."""
        with self._lock:
            thread = self._thread
            self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        with self._lock:
            self._timers.clear()
            self._thread = None
            self._stop.clear()

    def _run(self) -> None:
        idle_since: Optional[float] = None
        while not self._stop.wait(self.TICK):
            now = _monotonic()
            timers = list(self._timers)  # one C-level copy: safe while requests add and remove
            if not timers:
                if idle_since is None:
                    idle_since = now
                elif now - idle_since >= self.LINGER:
                    with self._lock:
                        if not self._timers:
                            self._thread = None
                            return
                continue
            idle_since = None
            for timer in timers:
                deadline = timer.deadline
                if deadline is not None and deadline <= now:
                    self._timers.discard(timer)
                    timer.fire()


class PhaseTimer(roundtrip.Trace):
    """Which phase one request is in, and by when that phase must make progress.

    It is the request's ``Trace`` too: its hooks move it from phase to phase. ``limits`` holds
    seconds (or ``None`` for no limit) for the pool, connect, write and read phases.
    ``fired`` is the phase whose limit ran out, once the watchdog has cancelled.
    """

    __slots__ = ("context", "limits", "phase", "deadline", "fired", "strict", "_watchdog", "_watched")

    # Hooks this timer does not need (class attributes shadow the Trace slots).
    put_idle_conn = dns_done = connect_done = tls_handshake_start = tls_handshake_done = None
    wait_100_continue = got_100_continue = got_1xx_response = retried = None

    def __init__(self, watchdog: Watchdog, limits: tuple[Optional[float], Optional[float], Optional[float], Optional[float]], strict: bool = False) -> None:
        # Trace.__init__ is not called: the hooks are this class's methods and attributes.
        self.context = roundtrip.Context()
        self.limits = limits
        self.phase = POOL
        self.deadline: Optional[float] = None
        self.fired: Optional[int] = None
        # Each hook also checks the clock (for httpx.AsyncClient: httpcore's async timeouts
        # are deadlines checked at every await, so a phase that outlasted its limit fails
        # even when it ended between two looks of the watchdog).
        self.strict = strict
        self._watchdog = watchdog
        self._watched = False

    @property
    def trace(self) -> "PhaseTimer":
        return self

    def enter(self, phase: int) -> None:
        """Start ``phase`` with a fresh clock."""
        if self.fired is not None or (self.strict and self._ran_out()):
            return  # cancelled already: the request fails with the phase that ran out
        self.phase = phase
        limit = self.limits[phase]
        if limit is None:
            self.deadline = None
            return
        self.deadline = _monotonic() + limit
        if not self._watched:
            self._watched = True
            self._watchdog.watch(self)

    def progress(self) -> None:
        """Something moved: restart the current phase's clock."""
        if self.strict and self._ran_out():
            return
        if self.deadline is not None:
            self.deadline = _monotonic() + self.limits[self.phase]  # type: ignore[operator]
        elif self.limits[self.phase] is not None:
            self.enter(self.phase)

    def pause(self) -> None:
        """Stop the clock while the caller's own code runs (producing the next body chunk)."""
        if self.fired is None:
            self.deadline = None

    def stop(self) -> None:
        """The request is over: stop watching it."""
        self.deadline = None
        if self._watched:
            self._watched = False
            self._watchdog.forget(self)

    def _ran_out(self) -> bool:
        """Fire now if the current phase's clock has already run out."""
        deadline = self.deadline
        if deadline is None or _monotonic() <= deadline:
            return False
        self._watchdog.forget(self)
        self.fire()
        return True

    def fire(self) -> None:
        """The clock ran out (called by the watchdog thread): cancel the request."""
        self.fired = self.phase
        self.deadline = None
        self._watched = False
        self.context.cancel()

    # Trace hooks (they run on the calling thread).

    def get_conn(self, key: str) -> None:
        self.enter(POOL)

    def dns_start(self, *args: Any) -> None:
        if self.phase == POOL:
            self.enter(CONNECT)

    connect_start = dns_start

    def got_conn(self, info: Any) -> None:
        self.enter(WRITE)

    def wrote_headers(self) -> None:
        self.progress()

    got_first_response_byte = wrote_headers

    def wrote_request(self, error: Optional[BaseException]) -> None:
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


async def timed_async_chunks(chunks: AsyncIterable[Any], timer: PhaseTimer) -> AsyncIterator[Any]:
    """``timed_chunks`` for an asynchronous body."""
    iterator = chunks.__aiter__()
    while True:
        timer.pause()
        try:
            chunk = await iterator.__anext__()
        except StopAsyncIteration:
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
