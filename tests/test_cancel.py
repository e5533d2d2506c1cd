"""``Context.cancel()`` from another thread (``Context``).

At each stage of a round trip (waiting for a pool slot, dialing, writing, waiting for the
response head, reading the body) a cancel makes the round trip raise ``Cancelled`` promptly;
the connection is closed, never pooled; a second cancel is harmless; and a request running
concurrently on the same Transport is not disturbed.

The stage is reached by an event (a server script step or a trace hook), never by a sleep
alone; a short settle after the event lets the client block in the system call. Wall-clock
bounds here only catch hangs.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Callable, Optional

import pytest

import roundtrip
from roundtrip import Cancelled, Context, Request, Trace

from helpers import wait_until
from servers import ScriptedConnection, keep_alive_handler, respond

HANG = 2.0  # a cancelled round trip returning later than this is a hang, not slowness
SETTLE = 0.05  # after a stage's event, let the client block in its system call


class Worker(threading.Thread):
    """Runs ``fn`` on its own thread, keeping its result or exception and when it ended."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.fn = fn
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self.ended_at: Optional[float] = None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:
            self.error = exc
        finally:
            self.ended_at = time.monotonic()

    def finish(self, timeout: float = 5.0) -> None:
        self.join(timeout)
        assert not self.is_alive(), "the round trip hung"


class Stage:
    """Server-side bookkeeping: the script reached its stage, then whether the client closed."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.done = threading.Event()
        self.client_closed: Optional[bool] = None

    def wait_for_close(self, conn: ScriptedConnection) -> None:
        self.reached.set()
        self.client_closed = conn.wait_closed(5.0)
        self.done.set()

    def assert_client_closed(self) -> None:
        assert self.done.wait(6.0), "server script did not finish"
        assert self.client_closed is True, "the client did not close the cancelled connection"


class Other:
    """A request to another server, in flight while the cancel happens; it must succeed."""

    def __init__(self, transport: roundtrip.Transport, server: Any) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()

        def handler(conn: ScriptedConnection) -> None:
            for _ in conn.requests():
                self.arrived.set()
                self.release.wait(5.0)
                conn.send(respond(200, b"other"))

        self.srv = server(handler)

        def go() -> bytes:
            with transport.round_trip(Request("GET", self.srv.url("/other"))) as resp:
                assert resp.status_code == 200
                return resp.read()

        self.worker = Worker(go)
        self.worker.start()
        assert self.arrived.wait(5.0), "the concurrent request did not reach its server"

    def check(self) -> None:
        self.release.set()
        self.worker.finish()
        assert self.worker.error is None, repr(self.worker.error)
        assert self.worker.result == b"other"
        assert [r.target for r in self.srv.received] == ["/other"]


def cancel_after(ctx: Context, event: threading.Event, settle: float = SETTLE) -> float:
    """Wait for ``event``, settle, cancel twice; return when the first cancel happened."""
    assert event.wait(5.0), "the request never reached the stage to cancel"
    time.sleep(settle)
    started = time.monotonic()
    ctx.cancel()
    ctx.cancel()  # harmless
    return started


def assert_cancelled(worker: Worker, cancelled_at: float) -> Cancelled:
    worker.finish()
    assert isinstance(worker.error, Cancelled), repr(worker.error)
    assert worker.ended_at is not None and worker.ended_at - cancelled_at < HANG
    return worker.error


def assert_nothing_pooled(transport: roundtrip.Transport, port: Optional[int] = None) -> None:
    """Nothing active anywhere, and nothing at all (idle included) for 127.0.0.1:``port``;
    with no ``port``, nothing at all."""
    stats = transport.pool_stats()
    total = stats["total"]
    assert total["active"] == 0 and total["dialing"] == 0 and total["waiting"] == 0, stats
    if port is None:
        assert total["idle"] == 0, stats
    else:
        assert f"http://127.0.0.1:{port}" not in stats, stats


# -- waiting for headers --------------------------------------------------------------------


def test_cancel_while_waiting_for_headers(transport, server):
    stage = Stage()

    def silent(conn: ScriptedConnection) -> None:
        conn.read_request()
        stage.wait_for_close(conn)

    srv = server(silent)
    other = Other(transport, server)
    ctx = Context()
    wrote = threading.Event()
    req = Request("GET", srv.url("/slow"), context=ctx, trace=Trace(wrote_request=lambda err: wrote.set()))
    worker = Worker(lambda: transport.round_trip(req))
    worker.start()
    assert stage.reached.wait(5.0)
    error = assert_cancelled(worker, cancel_after(ctx, wrote))
    assert error.conn_reused is False
    assert ctx.cancelled
    stage.assert_client_closed()
    other.check()
    assert_nothing_pooled(transport, srv.port)
    ctx.cancel()  # a third time, after everything: still harmless


def test_cancel_while_waiting_for_headers_on_a_reused_connection(transport, server):
    stage = Stage()

    def handler(conn: ScriptedConnection) -> None:
        conn.read_request()
        conn.send(respond(200, b"first"))
        conn.read_request()
        stage.wait_for_close(conn)

    srv = server(handler)
    with transport.round_trip(Request("GET", srv.url("/first"))) as resp:
        assert resp.read() == b"first"
    assert transport.pool_stats()["total"]["idle"] == 1
    ctx = Context()
    wrote = threading.Event()
    req = Request("GET", srv.url("/second"), context=ctx, trace=Trace(wrote_request=lambda err: wrote.set()))
    worker = Worker(lambda: transport.round_trip(req))
    worker.start()
    error = assert_cancelled(worker, cancel_after(ctx, wrote))
    assert error.conn_reused is True
    stage.assert_client_closed()
    assert_nothing_pooled(transport)
    assert srv.accepted == 1, "a cancelled request must not be retried on a new connection"


# -- reading the body -----------------------------------------------------------------------


def test_cancel_while_reading_the_body(transport, server):
    stage = Stage()

    def stalls(conn: ScriptedConnection) -> None:
        conn.read_request()
        conn.send(respond(200, headers=[("Content-Length", "1000")]) + b"x" * 100)
        stage.wait_for_close(conn)

    srv = server(stalls)
    other = Other(transport, server)
    ctx = Context()
    got_response = threading.Event()
    parts: list[bytes] = []

    def go() -> None:
        resp = transport.round_trip(Request("GET", srv.url("/body"), context=ctx))
        try:
            assert resp.status_code == 200
            parts.append(resp.read(100))
            got_response.set()
            resp.read()  # blocks: 900 bytes still to come
        finally:
            resp.close()

    worker = Worker(go)
    worker.start()
    assert_cancelled(worker, cancel_after(ctx, got_response))
    assert parts == [b"x" * 100]
    stage.assert_client_closed()
    other.check()
    assert_nothing_pooled(transport, srv.port)


def test_cancel_while_reading_a_chunked_body(transport, server):
    stage = Stage()

    def stalls(conn: ScriptedConnection) -> None:
        conn.read_request()
        conn.send(respond(200, headers=[("Transfer-Encoding", "chunked")]) + b"5\r\nhello\r\n")
        stage.wait_for_close(conn)

    srv = server(stalls)
    ctx = Context()
    got_response = threading.Event()

    def go() -> None:
        with transport.round_trip(Request("GET", srv.url("/chunks"), context=ctx)) as resp:
            assert resp.read(5) == b"hello"
            got_response.set()
            resp.read()

    worker = Worker(go)
    worker.start()
    assert_cancelled(worker, cancel_after(ctx, got_response))
    stage.assert_client_closed()
    assert_nothing_pooled(transport)


# -- writing the request --------------------------------------------------------------------


def test_cancel_while_writing_a_large_body(transport, server):
    hold = threading.Event()
    counted: list[Optional[int]] = []

    def handler(conn: ScriptedConnection) -> None:
        hold.wait(5.0)  # reads nothing until the cancel, then counts what came until the close
        total = 0
        conn.sock.settimeout(5.0)
        sink = bytearray(1 << 20)
        try:
            while True:
                got = conn.sock.recv_into(sink)
                if not got:
                    counted.append(total)
                    return
                total += got
        except (socket.timeout, ConnectionError):
            counted.append(None)

    srv = server(handler)
    other = Other(transport, server)
    ctx = Context()
    headers_out = threading.Event()
    body = b"b" * (32 << 20)
    req = Request("POST", srv.url("/upload"), body=body, context=ctx, trace=Trace(wrote_headers=headers_out.set))
    worker = Worker(lambda: transport.round_trip(req))
    worker.start()
    cancelled_at = cancel_after(ctx, headers_out, settle=0.1)
    hold.set()
    error = assert_cancelled(worker, cancelled_at)
    assert 0 < error.bytes_written < len(body)
    wait_until(lambda: bool(counted), "the server to see the close")
    assert counted == [error.bytes_written], "the client closed; bytes_written is what reached the server"
    other.check()
    assert_nothing_pooled(transport, srv.port)


def test_cancel_while_writing_an_endless_body(transport, server):
    hold = threading.Event()
    stage = Stage()

    def handler(conn: ScriptedConnection) -> None:
        hold.wait(5.0)  # reads nothing until the cancel
        stage.wait_for_close(conn)

    srv = server(handler)
    produced = threading.Event()

    def endless():
        chunk = b"e" * 65536
        count = 0
        while True:
            yield chunk
            count += 1
            if count == 4:  # the body is under way; the server reads nothing, so it will block
                produced.set()

    ctx = Context()
    req = Request("POST", srv.url("/stream"), body=endless(), context=ctx)
    worker = Worker(lambda: transport.round_trip(req))
    worker.start()
    cancelled_at = cancel_after(ctx, produced, settle=0.1)
    hold.set()
    assert_cancelled(worker, cancelled_at)
    stage.assert_client_closed()
    assert_nothing_pooled(transport)


# -- waiting for a pool slot ----------------------------------------------------------------


def test_cancel_while_waiting_for_a_pool_slot(make_transport, server, counting_dial):
    transport = make_transport(max_conns_per_host=1, dial=counting_dial)
    srv = server(keep_alive_handler(b"held"))
    holder = transport.round_trip(Request("GET", srv.url("/hold")))  # body unread: the only slot is taken

    ctx = Context()
    cancelled_worker = Worker(lambda: transport.round_trip(Request("GET", srv.url("/cancelled"), context=ctx)))
    cancelled_worker.start()
    wait_until(lambda: transport.pool_stats()["total"]["waiting"] == 1, "the first waiter")

    def behind() -> bytes:
        with transport.round_trip(Request("GET", srv.url("/behind"))) as resp:
            return resp.read()

    behind_worker = Worker(behind)  # queued after the one to be cancelled
    behind_worker.start()
    wait_until(lambda: transport.pool_stats()["total"]["waiting"] == 2, "the second waiter")

    started = time.monotonic()
    ctx.cancel()
    ctx.cancel()
    assert_cancelled(cancelled_worker, started)
    assert transport.pool_stats()["total"]["waiting"] == 1
    assert behind_worker.is_alive()

    assert holder.read() == b"held"  # the connection goes to the remaining waiter
    holder.close()
    behind_worker.finish()
    assert behind_worker.error is None, repr(behind_worker.error)
    assert behind_worker.result == b"held"
    assert [r.target for r in srv.received] == ["/hold", "/behind"]
    assert len(counting_dial.calls) == 1
    assert transport.pool_stats()["total"] == {"idle": 1, "active": 0, "dialing": 0, "waiting": 0}


# -- dialing --------------------------------------------------------------------------------


class BlockingDial:
    """A custom ``dial`` that blocks for one port until released (a dial cannot be
    interrupted), and lets every other port through."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.entered = threading.Event()
        self.release = threading.Event()
        self.sockets: list[socket.socket] = []

    def __call__(self, host: str, port: int, timeout: Any) -> socket.socket:
        if port == self.port:
            self.entered.set()
            self.release.wait(5.0)
        sock = socket.create_connection((host, port), timeout=timeout)
        if port == self.port:
            self.sockets.append(sock)
        return sock


def test_cancel_while_a_custom_dial_blocks(make_transport, server):
    stage = Stage()
    srv = server(stage.wait_for_close)
    dial = BlockingDial(srv.port)
    transport = make_transport(dial=dial)
    other = Other(transport, server)
    ctx = Context()
    worker = Worker(lambda: transport.round_trip(Request("GET", srv.url("/dial"), context=ctx)))
    worker.start()
    assert_cancelled(worker, cancel_after(ctx, dial.entered))
    other.check()

    dial.release.set()  # the dial returns a socket nobody wants any more: it is closed
    stage.assert_client_closed()
    wait_until(lambda: len(dial.sockets) == 1 and dial.sockets[0].fileno() == -1, "the dialed socket to close")
    wait_until(lambda: transport.pool_stats()["total"]["dialing"] == 0, "the dial to finish")
    total = transport.pool_stats()["total"]
    assert total["active"] == 0 and total["waiting"] == 0
    assert not any(key.endswith(f":{srv.port}") for key in transport.pool_stats() if key != "total")
    assert srv.received == []


def test_cancel_while_the_default_dialer_connects(make_transport, server, unreachable):
    transport = make_transport()
    other = Other(transport, server)
    ctx = Context()
    started_connect = threading.Event()
    trace = Trace(connect_start=lambda addr: started_connect.set())
    url = "http://%s:%d/" % unreachable
    worker = Worker(lambda: transport.round_trip(Request("GET", url, context=ctx, trace=trace)))
    worker.start()
    assert_cancelled(worker, cancel_after(ctx, started_connect))
    other.check()
    wait_until(lambda: transport.pool_stats()["total"]["dialing"] == 0, "the dial to stop")
    assert_nothing_pooled(transport, unreachable[1])


# -- before and after -----------------------------------------------------------------------


def test_cancelled_before_round_trip_dials_nothing(make_transport, server, counting_dial):
    transport = make_transport(dial=counting_dial)
    srv = server(keep_alive_handler())
    ctx = Context()
    ctx.cancel()
    with pytest.raises(Cancelled):
        transport.round_trip(Request("GET", srv.url("/"), context=ctx))
    assert counting_dial.calls == []
    assert_nothing_pooled(transport)


def test_cancel_after_the_body_is_read_changes_nothing(transport, server):
    srv = server(keep_alive_handler(b"done"))
    ctx = Context()
    with transport.round_trip(Request("GET", srv.url("/a"), context=ctx)) as resp:
        assert resp.read() == b"done"
    ctx.cancel()
    ctx.cancel()
    assert transport.pool_stats()["total"]["idle"] == 1
    with transport.round_trip(Request("GET", srv.url("/b"))) as resp:
        assert resp.read() == b"done"
    assert srv.accepted == 1, "the connection of a finished request stays reusable"
