"""Timeouts (the Transport's options and ``Context``, and their errors).

``connect_timeout`` -> ``ConnectTimeout``, ``tls_handshake_timeout`` -> ``TLSHandshakeTimeout``,
``response_header_timeout`` -> ``ResponseHeaderTimeout`` (counted from the end of the request
write), and a ``Context`` deadline -> ``DeadlineExceeded`` over the whole round trip, body read
included. Every one is a ``roundtrip.Timeout`` and a ``TimeoutError``, and carries
``conn_reused`` and ``bytes_written``.

The timeouts are short (a fraction of a second); wall-clock upper bounds only catch hangs.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import Any, Callable, Optional

import pytest

import roundtrip
from roundtrip import (
    ConnectTimeout,
    Context,
    DeadlineExceeded,
    Request,
    ResponseHeaderTimeout,
    TLSHandshakeTimeout,
    Trace,
)

from helpers import wait_until
from servers import ScriptedConnection, keep_alive_handler, respond

SHORT = 0.2  # the timeout under test
HANG = 3.0  # anything slower than this is a hang


class Silent:
    """A server script step: read the request (or nothing), then wait until the client closes."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.client_closed: Optional[bool] = None

    def wait(self, conn: ScriptedConnection) -> None:
        self.client_closed = conn.wait_closed(5.0)
        self.done.set()

    def assert_client_closed(self) -> None:
        assert self.done.wait(6.0), "server script did not finish"
        assert self.client_closed is True, "the client did not close the timed-out connection"


def assert_timeout(error: BaseException, kind: type) -> None:
    assert type(error) is kind, repr(error)
    assert isinstance(error, roundtrip.Timeout)
    assert isinstance(error, roundtrip.Error)
    assert isinstance(error, TimeoutError)


def timed(fn: Callable[[], Any]) -> tuple[BaseException, float]:
    """Run ``fn``, which must raise a roundtrip error; return it and the seconds it took."""
    started = time.monotonic()
    with pytest.raises(roundtrip.Error) as info:
        fn()
    return info.value, time.monotonic() - started


def assert_pool_empty(transport: roundtrip.Transport) -> None:
    total = transport.pool_stats()["total"]
    assert total == {"idle": 0, "active": 0, "dialing": 0, "waiting": 0}, total


# -- connect_timeout ------------------------------------------------------------------------


def test_connect_timeout(make_transport, unreachable):
    transport = make_transport(connect_timeout=SHORT)
    url = "http://%s:%d/" % unreachable
    error, took = timed(lambda: transport.round_trip(Request("GET", url)))
    assert_timeout(error, ConnectTimeout)
    assert SHORT * 0.9 <= took < HANG
    assert (error.conn_reused, error.bytes_written) == (False, 0)
    assert_pool_empty(transport)


def test_connect_timeout_is_not_a_context_deadline(make_transport, unreachable):
    """A Context deadline longer than connect_timeout does not change the error class."""
    transport = make_transport(connect_timeout=SHORT)
    url = "http://%s:%d/" % unreachable
    error, _ = timed(lambda: transport.round_trip(Request("GET", url, context=Context(timeout=10))))
    assert_timeout(error, ConnectTimeout)


def test_context_deadline_while_connecting(make_transport, unreachable):
    transport = make_transport(connect_timeout=10)
    url = "http://%s:%d/" % unreachable
    error, took = timed(lambda: transport.round_trip(Request("GET", url, context=Context(timeout=SHORT))))
    assert_timeout(error, DeadlineExceeded)
    assert took < HANG
    wait_until(lambda: transport.pool_stats()["total"]["dialing"] == 0, "the abandoned dial to stop")
    assert_pool_empty(transport)


def test_custom_dial_raising_socket_timeout_is_connect_timeout(make_transport):
    seen: list[Any] = []

    def dial(host: str, port: int, timeout: Any) -> socket.socket:
        seen.append((host, port, timeout))
        raise socket.timeout("timed out")

    transport = make_transport(dial=dial, connect_timeout=0.25)
    error, _ = timed(lambda: transport.round_trip(Request("GET", "http://127.0.0.1:9/x")))
    assert_timeout(error, ConnectTimeout)
    assert seen == [("127.0.0.1", 9, 0.25)], "the dial gets connect_timeout"
    assert (error.conn_reused, error.bytes_written) == (False, 0)
    assert_pool_empty(transport)


# -- tls_handshake_timeout ------------------------------------------------------------------


def test_tls_handshake_timeout(make_transport, server):
    silent = Silent()
    srv = server(silent.wait)  # accepts TCP, reads the ClientHello, never answers
    transport = make_transport(tls_handshake_timeout=SHORT, ssl_context=ssl.create_default_context())
    error, took = timed(lambda: transport.round_trip(Request("GET", srv.url("/", scheme="https"))))
    assert_timeout(error, TLSHandshakeTimeout)
    assert SHORT * 0.9 <= took < HANG
    assert (error.conn_reused, error.bytes_written) == (False, 0)
    silent.assert_client_closed()
    assert_pool_empty(transport)


# -- response_header_timeout ----------------------------------------------------------------


def test_response_header_timeout(make_transport, server):
    silent = Silent()

    def handler(conn: ScriptedConnection) -> None:
        conn.read_request()
        silent.wait(conn)

    srv = server(handler)
    other = server(keep_alive_handler(b"other"))
    transport = make_transport(response_header_timeout=SHORT)
    error, took = timed(lambda: transport.round_trip(Request("POST", srv.url("/slow"), body=b"payload")))
    assert_timeout(error, ResponseHeaderTimeout)
    assert SHORT * 0.9 <= took < HANG
    assert error.conn_reused is False
    assert error.bytes_written == len(srv.received[0].raw)
    silent.assert_client_closed()
    assert_pool_empty(transport)
    # A timed-out request leaves the Transport fine for others.
    with transport.round_trip(Request("GET", other.url("/fine"))) as resp:
        assert resp.read() == b"other"


def test_response_header_timeout_on_a_reused_connection_is_not_retried(make_transport, server):
    silent = Silent()

    def handler(conn: ScriptedConnection) -> None:
        conn.read_request()
        conn.send(respond(200, b"first"))
        conn.read_request()
        silent.wait(conn)

    srv = server(handler)
    transport = make_transport(response_header_timeout=SHORT)
    with transport.round_trip(Request("GET", srv.url("/first"))) as resp:
        assert resp.read() == b"first"
    error, _ = timed(lambda: transport.round_trip(Request("GET", srv.url("/second"))))
    assert_timeout(error, ResponseHeaderTimeout)
    assert error.conn_reused is True
    assert error.bytes_written == len(srv.received[1].raw)
    silent.assert_client_closed()
    assert srv.accepted == 1 and len(srv.received) == 2
    assert_pool_empty(transport)


def test_response_header_timeout_starts_after_the_request_is_written(make_transport, server):
    """The server takes longer than the timeout to read the body, then answers at once: the
    write is not covered by response_header_timeout, so this succeeds."""
    body = b"u" * (16 << 20)  # far more than the socket buffers hold
    delay = SHORT * 3
    began_reading_body: list[float] = []

    def handler(conn: ScriptedConnection) -> None:
        conn.read_head()
        threading.Event().wait(delay)  # the slow server, not synchronisation
        began_reading_body.append(time.monotonic())
        drain(conn, len(body))
        conn.send(respond(200, b"stored"))

    srv = server(handler)
    transport = make_transport(response_header_timeout=SHORT)
    marks: dict[str, float] = {}
    trace = Trace(
        wrote_headers=lambda: marks.setdefault("headers", time.monotonic()),
        wrote_request=lambda err: marks.setdefault("request", time.monotonic()),
    )
    with transport.round_trip(Request("PUT", srv.url("/big"), body=body, trace=trace)) as resp:
        assert resp.status_code == 200
        assert resp.read() == b"stored"
    # The write really was held up by the server for longer than the timeout.
    assert marks["request"] - marks["headers"] > SHORT
    assert marks["request"] >= began_reading_body[0]


def drain(conn: ScriptedConnection, count: int) -> None:
    """Read and drop ``count`` bytes quickly (``read_exactly`` keeps them, slowly, in one
    growing buffer)."""
    taken = min(count, len(conn.buffer))
    conn.buffer = conn.buffer[taken:]
    count -= taken
    sink = bytearray(1 << 20)
    while count:
        got = conn.sock.recv_into(sink, min(count, len(sink)))
        assert got, "client closed mid-body"
        count -= got


def count_until_closed(conn: ScriptedConnection) -> Optional[int]:
    """Bytes the client sent (from the first) until it closed; None if it never closed."""
    total = len(conn.buffer)
    sink = bytearray(1 << 20)
    conn.sock.settimeout(5.0)
    try:
        while True:
            got = conn.sock.recv_into(sink)
            if not got:
                return total
            total += got
    except (socket.timeout, ConnectionError):
        return None


# -- Context deadline -----------------------------------------------------------------------


def test_deadline_while_waiting_for_headers(make_transport, server, counting_dial):
    silent = Silent()

    def handler(conn: ScriptedConnection) -> None:
        conn.read_request()
        silent.wait(conn)

    srv = server(handler)
    transport = make_transport(dial=counting_dial)
    ctx = Context(timeout=SHORT)
    error, took = timed(lambda: transport.round_trip(Request("GET", srv.url("/"), context=ctx)))
    assert_timeout(error, DeadlineExceeded)
    assert took < HANG
    assert time.monotonic() >= ctx.deadline
    assert error.conn_reused is False
    assert error.bytes_written == len(srv.received[0].raw)
    silent.assert_client_closed()
    assert_pool_empty(transport)


@pytest.mark.parametrize(
    "header_timeout, context_timeout, kind",
    [(10.0, SHORT, DeadlineExceeded), (SHORT, 10.0, ResponseHeaderTimeout)],
    ids=["deadline-first", "header-timeout-first"],
)
def test_the_earlier_of_deadline_and_response_header_timeout_wins(make_transport, server, header_timeout, context_timeout, kind):
    silent = Silent()

    def handler(conn: ScriptedConnection) -> None:
        conn.read_request()
        silent.wait(conn)

    srv = server(handler)
    transport = make_transport(response_header_timeout=header_timeout)
    error, took = timed(lambda: transport.round_trip(Request("GET", srv.url("/"), context=Context(timeout=context_timeout))))
    assert_timeout(error, kind)
    assert took < HANG
    silent.assert_client_closed()


def test_deadline_while_writing_the_body(make_transport, server):
    hold = threading.Event()
    counted: list[Optional[int]] = []

    def handler(conn: ScriptedConnection) -> None:
        hold.wait(5.0)  # reads nothing until the client gave up
        counted.append(count_until_closed(conn))

    srv = server(handler)
    transport = make_transport()
    body = b"w" * (32 << 20)
    try:
        error, took = timed(lambda: transport.round_trip(Request("POST", srv.url("/"), body=body, context=Context(timeout=SHORT))))
    finally:
        hold.set()
    assert_timeout(error, DeadlineExceeded)
    assert took < HANG
    assert 0 < error.bytes_written < len(body)
    wait_until(lambda: bool(counted), "the server to see the close")
    assert counted == [error.bytes_written], "bytes_written is what reached the server"
    assert_pool_empty(transport)


def _stalled_body_server(server: Any, silent: Silent, request_bytes: list[int]) -> Any:
    def handler(conn: ScriptedConnection) -> None:
        request_bytes.append(len(conn.read_request().raw))
        conn.send(respond(200, headers=[("Content-Length", "1000")]) + b"x" * 10)
        silent.wait(conn)

    return server(handler)


def test_deadline_includes_reading_the_body(make_transport, server):
    silent = Silent()
    request_bytes: list[int] = []
    srv = _stalled_body_server(server, silent, request_bytes)
    transport = make_transport()
    resp = transport.round_trip(Request("GET", srv.url("/"), context=Context(timeout=SHORT)))
    with resp:
        assert resp.status_code == 200
        assert resp.read(10) == b"x" * 10
        error, took = timed(resp.read)
    assert_timeout(error, DeadlineExceeded)
    assert took < HANG
    silent.assert_client_closed()
    assert_pool_empty(transport)


def test_deadline_during_body_read_carries_conn_reused_and_bytes_written(make_transport, server):
    silent = Silent()
    request_bytes: list[int] = []

    def handler(conn: ScriptedConnection) -> None:
        conn.read_request()
        conn.send(respond(200, b"warm"))
        request_bytes.append(len(conn.read_request().raw))
        conn.send(respond(200, headers=[("Content-Length", "1000")]) + b"x" * 10)
        silent.wait(conn)

    srv = server(handler)
    transport = make_transport()
    with transport.round_trip(Request("GET", srv.url("/warm"))) as resp:
        assert resp.read() == b"warm"
    resp = transport.round_trip(Request("POST", srv.url("/order"), body=b"order=1", context=Context(timeout=SHORT)))
    with resp:
        assert resp.read(10) == b"x" * 10
        error, _ = timed(resp.read)
    assert_timeout(error, DeadlineExceeded)
    silent.assert_client_closed()
    assert (error.conn_reused, error.bytes_written) == (True, request_bytes[0])


def test_deadline_is_not_reset_by_each_arriving_byte(make_transport, server):
    """A body trickling in byte by byte, each byte well within the deadline's remainder,
    still ends at the deadline: it bounds the whole round trip, not each read."""
    pace = threading.Event()

    def trickle(conn: ScriptedConnection) -> None:
        conn.read_request()
        conn.send(respond(200, headers=[("Content-Length", "200")]))
        for _ in range(200):
            if pace.wait(0.03):  # the slow server's pacing
                return
            conn.send(b"t")

    srv = server(trickle)
    transport = make_transport()
    try:
        resp = transport.round_trip(Request("GET", srv.url("/"), context=Context(timeout=0.4)))
        with resp:
            error, took = timed(resp.read)
    finally:
        pace.set()
    assert_timeout(error, DeadlineExceeded)
    assert took < HANG
    assert_pool_empty(transport)


def test_deadline_while_waiting_for_a_pool_slot(make_transport, server, counting_dial):
    srv = server(keep_alive_handler(b"held"))
    transport = make_transport(max_conns_per_host=1, dial=counting_dial)
    holder = transport.round_trip(Request("GET", srv.url("/hold")))  # body unread: the only slot is taken
    try:
        error, took = timed(lambda: transport.round_trip(Request("GET", srv.url("/late"), context=Context(timeout=SHORT))))
        assert_timeout(error, DeadlineExceeded)
        assert SHORT * 0.9 <= took < HANG
        assert (error.conn_reused, error.bytes_written) == (False, 0)
        assert transport.pool_stats()["total"]["waiting"] == 0
        assert holder.read() == b"held"
    finally:
        holder.close()
    assert len(counting_dial.calls) == 1
    assert [r.target for r in srv.received] == ["/hold"]
    assert transport.pool_stats()["total"] == {"idle": 1, "active": 0, "dialing": 0, "waiting": 0}


def test_an_expired_context_fails_before_dialing(make_transport, server, counting_dial):
    srv = server(keep_alive_handler())
    transport = make_transport(dial=counting_dial)
    ctx = Context(timeout=0)
    error, _ = timed(lambda: transport.round_trip(Request("GET", srv.url("/"), context=ctx)))
    assert_timeout(error, DeadlineExceeded)
    assert (error.conn_reused, error.bytes_written) == (False, 0)
    assert counting_dial.calls == []
    assert srv.accepted == 0
    assert_pool_empty(transport)


def test_an_expired_context_does_not_take_an_idle_connection(make_transport, server, counting_dial):
    srv = server(keep_alive_handler(b"ok"))
    transport = make_transport(dial=counting_dial)
    with transport.round_trip(Request("GET", srv.url("/warm"))) as resp:
        assert resp.read() == b"ok"
    error, _ = timed(lambda: transport.round_trip(Request("GET", srv.url("/late"), context=Context(timeout=0))))
    assert_timeout(error, DeadlineExceeded)
    assert len(srv.received) == 1
    assert transport.pool_stats()["total"] == {"idle": 1, "active": 0, "dialing": 0, "waiting": 0}
    with transport.round_trip(Request("GET", srv.url("/again"))) as resp:
        assert resp.read() == b"ok"
    assert len(counting_dial.calls) == 1
