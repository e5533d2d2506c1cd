"""``Context``: a deadline and a cancellation signal for one round trip."""

from __future__ import annotations

import threading
import time
from typing import Callable

__all__ = ("Context",)


class Context:
    """A deadline and a cancellation switch shared by everything one request does.

    Args:
        timeout: seconds from now within which the whole round trip, reading the body
            included, must finish; ``None`` for no deadline.

    ``cancel()`` may be called from any thread: an in-flight round trip stops within 100 ms
    with ``Cancelled`` and its connection is closed.
    """

    __slots__ = ("deadline", "_cancelled", "_lock", "_on_cancel")

    def __init__(self, timeout: float | None = None) -> None:
        self.deadline: float | None = None if timeout is None else time.monotonic() + timeout
        self._cancelled = False
        self._lock = threading.Lock()
        self._on_cancel: dict[int, Callable[[], None]] = {}

    @property
    def cancelled(self) -> bool:
        """Whether ``cancel()`` has been called."""
        return self._cancelled

    def cancel(self) -> None:
        """Abort whatever the request is doing; calling it again does nothing."""
        with self._lock:
            if self._cancelled:
                return
            self._cancelled = True
            callbacks = list(self._on_cancel.values())
            self._on_cancel.clear()
        for callback in callbacks:
            callback()

    def remaining(self) -> float | None:
        """Seconds left before the deadline (may be negative), or ``None``."""
        if self.deadline is None:
            return None
        return self.deadline - time.monotonic()

    def _add_cancel_callback(self, callback: Callable[[], None]) -> int | None:
        """Run ``callback`` on cancel; returns a handle, or ``None`` (and runs nothing) when
        already cancelled."""
        with self._lock:
            if self._cancelled:
                return None
            handle = id(callback)
            self._on_cancel[handle] = callback
            return handle

    def _remove_cancel_callback(self, handle: int | None) -> None:
        if handle is not None:
            with self._lock:
                self._on_cancel.pop(handle, None)
