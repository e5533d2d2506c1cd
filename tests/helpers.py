"""Small things many test files do: send one request and read it, dial through a recording
``dial`` option, and wait (boundedly) for a condition another thread brings about."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Callable, Optional

import roundtrip

WAIT = 5.0  # no condition a test waits for takes longer than this


def send(transport: roundtrip.Transport, url: str, method: str = "GET", **kwargs: Any) -> roundtrip.Response:
    """The response to one request, body unread; the caller closes it (``with``)."""
    return transport.round_trip(roundtrip.Request(method, url, **kwargs))


def fetch(transport: roundtrip.Transport, url: str, method: str = "GET", **kwargs: Any) -> tuple[roundtrip.Response, bytes]:
    """One request with its body read whole: the (closed) response and the body."""
    with send(transport, url, method, **kwargs) as resp:
        return resp, resp.read()


def fetch_body(transport: roundtrip.Transport, url: str, method: str = "GET", **kwargs: Any) -> bytes:
    """The body of one request, read whole."""
    return fetch(transport, url, method, **kwargs)[1]


def status_and_body(transport: roundtrip.Transport, url: str, method: str = "GET", **kwargs: Any) -> tuple[int, bytes]:
    """``(status code, body)`` of one request, to compare with one ``==``."""
    resp, body = fetch(transport, url, method, **kwargs)
    return resp.status_code, body


class RecordingDial:
    """A ``dial`` option that records each ``(host, port)`` it is asked for (to prove what was,
    or that nothing was, dialed) and connects there, or to ``to_port`` on 127.0.0.1 when given
    (so that any name reaches a local server)."""

    def __init__(self, to_port: Optional[int] = None) -> None:
        self.to_port = to_port
        self.calls: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def __call__(self, host: str, port: int, timeout: Any) -> socket.socket:
        with self.lock:
            self.calls.append((host, port))
        address = (host, port) if self.to_port is None else ("127.0.0.1", self.to_port)
        sock = socket.create_connection(address, timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout`` seconds. For
    conditions no event announces (pool counters, a socket closed by another thread)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)
