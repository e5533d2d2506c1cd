"""The compiled exchange (``_connection.exchange_fast`` over ``_speedups_c.exchange_io``): which
requests take it, and that cancel, deadlines, stale connections and failures behave on it as on
the general exchange.

Under the ``c`` parameter common requests on an idle plain TCP connection take it; under
``c-general`` (``_transport.FAST_PATH`` off) and ``py`` (no compiled twin) they never do. The
``paths`` fixture records which exchange each attempt ran; wall-clock bounds only catch hangs.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
from typing import Any, Optional

import httpx
import pytest
import requests

import roundtrip
from roundtrip import Cancelled, Context, DeadlineExceeded, Request, ResponseHeaderTimeout, ServerDisconnected, Trace, _connection, _transport
from roundtrip.adapters import HTTPXTransport, RequestsAdapter

from servers import ScriptedConnection, keep_alive_handler, respond

RESET = f"[Errno {errno.ECONNRESET}] {os.strerror(errno.ECONNRESET)}"  # str() of a reset's OSError
HANG = 2.0  # a cancelled or timed-out round trip returning later than this is a hang
SHORT = 0.2


class Paths:
    """Which exchange ran: ``general`` counts ``exchange()`` calls, ``fast`` the compiled
    exchange's, ``stale`` those that found their idle connection stale."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.general = self.fast = self.stale = 0
        general, fast = _transport.exchange, _transport.exchange_fast

        def spy_general(*args: Any) -> Any:
            self.general += 1
            return general(*args)

        def spy_fast(*args: Any) -> Any:
            self.fast += 1
            response = fast(*args)
            self.stale += response is None
            return response

        monkeypatch.setattr(_transport, "exchange", spy_general)
        monkeypatch.setattr(_transport, "exchange_fast", spy_fast)

    def reset(self) -> None:
        self.general = self.fast = self.stale = 0


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch) -> Paths:
    return Paths(monkeypatch)


def warm(transport: roundtrip.Transport, url: str) -> None:
    """One request read to its end: its connection is left idle."""
    with transport.round_trip(Request("GET", url)) as resp:
        resp.read()


def fast_path_on() -> bool:
    return _transport.FAST_PATH and roundtrip._speedups.impl.__name__.endswith("_c")


def assert_path(paths: Paths, requests_made: int) -> None:
    """Every one of ``requests_made`` requests (on an idle connection) took the compiled
    exchange when it is on, and the general one otherwise."""
    if fast_path_on():
        assert (paths.fast, paths.general) == (requests_made, 0)
    else:
        assert (paths.fast, paths.general) == (0, requests_made)


# -- which requests take it -----------------------------------------------------------------


def test_plain_get_on_an_idle_connection_takes_the_compiled_exchange(transport, server, paths):
    srv = server(keep_alive_handler(b"hello"))
    with transport.round_trip(Request("GET", srv.url("/first"))) as resp:  # dials: general
        assert resp.read() == b"hello"
    assert (paths.fast, paths.general) == (0, 1)
    paths.reset()
    for n in range(5):
        with transport.round_trip(Request("GET", srv.url(f"/{n}"))) as resp:
            assert (resp.status_code, resp.read()) == (200, b"hello")
    assert_path(paths, 5)
    assert srv.accepted == 1


def test_small_post_takes_the_compiled_exchange_and_arrives_whole(transport, server, paths):
    srv = server(keep_alive_handler(b"stored"))
    warm(transport, srv.url("/warm"))
    paths.reset()
    body = bytes(range(256)) * 4
    for payload in (body, bytearray(body), memoryview(body), b""):
        with transport.round_trip(Request("POST", srv.url("/post"), body=payload)) as resp:
            assert resp.read() == b"stored"
    assert_path(paths, 4)
    assert [r.body for r in srv.received[1:]] == [body, body, body, b""]


@pytest.mark.parametrize("timeout", [httpx.Timeout(5.0), None], ids=["default-timeouts", "no-timeouts"])
def test_plain_get_through_the_httpx_adapter_takes_the_compiled_exchange(server, paths, timeout):
    srv = server(keep_alive_handler(b"via httpx"))
    # httpx's default timeouts are kept by a Context and a Trace per request (PhaseTimer).
    with httpx.Client(transport=HTTPXTransport(), timeout=timeout) as client:
        assert client.get(srv.url("/warm")).content == b"via httpx"
        paths.reset()
        for _ in range(3):
            response = client.get(srv.url("/x"))
            assert (response.status_code, response.content) == (200, b"via httpx")
    assert_path(paths, 3)


@pytest.mark.parametrize("timeout", [None, 5.0], ids=["no-timeouts", "timeouts"])
def test_plain_get_through_the_requests_adapter_takes_the_compiled_exchange(server, paths, timeout):
    srv = server(keep_alive_handler(b"via requests"))
    with requests.Session() as session:
        session.trust_env = False
        session.mount("http://", RequestsAdapter())
        assert session.get(srv.url("/warm")).content == b"via requests"
        paths.reset()
        for _ in range(3):
            response = session.get(srv.url("/x"), timeout=timeout)
            assert (response.status_code, response.content) == (200, b"via requests")
    assert_path(paths, 3)


@pytest.mark.parametrize(
    "kind",
    ["expect-continue", "large-body", "iterable-body"],
)
def test_unusual_requests_take_the_general_exchange(transport, server, paths, kind):
    srv = server(keep_alive_handler(b"ok"))
    warm(transport, srv.url("/warm"))
    paths.reset()
    options: dict[str, Any] = {
        "expect-continue": {"body": b"x", "headers": {"Expect": "100-continue"}},
        "large-body": {"body": b"x" * (64 * 1024 + 1)},
        "iterable-body": {"body": iter([b"a", b"b"])},
    }[kind]
    with transport.round_trip(Request("POST", srv.url("/"), **options)) as resp:
        assert resp.read() == b"ok"
    assert (paths.fast, paths.general) == (0, 1)


HOOKS = ["get_conn", "got_conn", "wrote_headers", "wrote_request", "got_first_response_byte", "got_1xx_response", "put_idle_conn"]


def test_trace_hooks_run_in_the_general_exchange_order(transport, server, paths):
    def handler(conn: ScriptedConnection) -> None:
        for n, request in enumerate(conn.requests()):
            early = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n" if n else b""
            conn.send(early + respond(200, request.target.encode()))

    srv = server(handler)
    warm(transport, srv.url("/warm"))
    paths.reset()
    calls: list[tuple[str, Any]] = []

    def record(name: str) -> Any:
        return lambda *args: calls.append((name, args[0] if name in ("get_conn", "got_1xx_response", "put_idle_conn") else None))

    trace = Trace(**{name: record(name) for name in HOOKS})
    with transport.round_trip(Request("POST", srv.url("/traced"), body=b"data", trace=trace)) as resp:
        assert resp.read() == b"/traced"
    assert calls == [
        ("get_conn", f"http://127.0.0.1:{srv.port}"),
        ("got_conn", None),
        ("wrote_headers", None),
        ("wrote_request", None),
        ("got_first_response_byte", None),
        ("got_1xx_response", 103),
        ("put_idle_conn", None),
    ]
    assert_path(paths, 1)


def test_a_head_larger_than_the_buffer_and_1xx_heads_are_read_on(transport, server, paths):
    big = [("X-Filler", "f" * 8000)] * 10  # 80 KB of head: more than one buffer's worth

    def handler(conn: ScriptedConnection) -> None:
        conn.read_request()
        conn.send(respond(200, b"first"))
        conn.read_request()
        conn.send(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n" + respond(200, b"big", headers=big))

    srv = server(handler)
    warm(transport, srv.url("/warm"))
    paths.reset()
    with transport.round_trip(Request("GET", srv.url("/big"))) as resp:
        assert (resp.status_code, resp.read()) == (200, b"big")
        assert resp.headers["X-Filler"] == "f" * 8000
    assert_path(paths, 1)


class SocketCalls:
    """Counts the connection methods through which Python code reaches the socket."""

    NAMES = ("is_stale", "send", "recv_into", "response_waiting")

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = dict.fromkeys(self.NAMES, 0)
        for name in self.NAMES:
            original = getattr(_connection.Connection, name)

            def counted(conn: Any, *args: Any, _name: str = name, _original: Any = original) -> Any:
                self.calls[_name] += 1
                return _original(conn, *args)

            monkeypatch.setattr(_connection.Connection, name, counted)


def test_the_compiled_exchange_makes_every_system_call_of_the_exchange_in_one_call(make_transport, server, paths, monkeypatch):
    """The stale check, the write and the receive happen inside the one compiled call (which
    releases the GIL once), with 8 threads sharing the Transport: Python code touches the
    socket only in the exchanges that dialed (the general exchange)."""
    threads, per_thread = 8, 20

    def echo(conn: ScriptedConnection) -> None:
        for request in conn.requests():
            conn.send(respond(200, request.target.encode()))

    srv = server(echo)
    transport = make_transport()
    sockets = SocketCalls(monkeypatch)
    start = threading.Barrier(threads)
    wrong: list[Any] = []

    def work(index: int) -> None:
        start.wait(10)
        for n in range(per_thread):
            path = f"/t{index}/{n}"
            with transport.round_trip(Request("GET", srv.url(path))) as resp:
                if resp.read() != path.encode():
                    wrong.append(path)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert wrong == [] and not any(worker.is_alive() for worker in workers)
    assert paths.fast + paths.general == threads * per_thread + paths.stale
    if fast_path_on():
        assert paths.general <= srv.accepted  # only requests on a new connection
        assert sockets.calls["is_stale"] == 0
        assert sockets.calls["send"] == sockets.calls["recv_into"] == paths.general
    else:
        assert sockets.calls["send"] == threads * per_thread


# -- stale connections, failures and retries ------------------------------------------------


def test_a_stale_idle_connection_is_replaced_without_an_attempt(transport, server, paths):
    closed = threading.Event()

    def closes_after_answering(conn: ScriptedConnection) -> None:
        conn.read_request()
        conn.send(respond(200, b"once"))
        conn.close()
        closed.set()

    srv = server(closes_after_answering)
    with transport.round_trip(Request("GET", srv.url("/first"))) as resp:
        assert resp.read() == b"once"
    assert transport.pool_stats()["total"]["idle"] == 1
    assert closed.wait(5.0)  # on loopback the FIN is there once close() has returned
    paths.reset()
    # Not idempotent: had an attempt been spent on the dead connection, it could not go again.
    with transport.round_trip(Request("POST", srv.url("/second"), body=b"not idempotent")) as resp:
        assert resp.read() == b"once"
    assert srv.accepted == 2
    assert [r.target for r in srv.received] == ["/first", "/second"]
    if fast_path_on():
        assert (paths.fast, paths.stale, paths.general) == (1, 1, 1)


def test_server_closing_a_reused_connection_before_answering_retries_a_get(transport, server, paths):
    seen = threading.Event()

    def first(conn: ScriptedConnection) -> None:
        conn.read_request()
        conn.send(respond(200, b"first"))
        conn.read_request()
        seen.set()
        conn.close()  # read the second request, then close without answering

    srv = server([first, keep_alive_handler(b"again")])
    warm(transport, srv.url("/first"))
    paths.reset()
    with transport.round_trip(Request("GET", srv.url("/second"))) as resp:
        assert resp.read() == b"again"
    assert seen.is_set() and srv.accepted == 2
    if fast_path_on():
        assert (paths.fast, paths.general) == (1, 1)  # the retry takes the general exchange


def test_server_closing_a_reused_connection_before_answering_fails_a_post(transport, server, paths):
    def first(conn: ScriptedConnection) -> None:
        conn.read_request()
        conn.send(respond(200, b"first"))
        conn.read_request()
        conn.close()

    srv = server(first)
    warm(transport, srv.url("/first"))
    paths.reset()
    with pytest.raises(ServerDisconnected) as info:
        transport.round_trip(Request("POST", srv.url("/second"), body=b"payload"))
    assert str(info.value) == "server closed the connection before responding"
    assert info.value.conn_reused is True
    assert info.value.bytes_written == len(srv.received[1].raw)
    assert_path(paths, 1)
    assert transport.pool_stats()["total"]["idle"] == 0


@pytest.mark.parametrize("partial", [False, True], ids=["before-answering", "inside-the-head"])
def test_a_reset_on_a_reused_connection_fails_a_post_as_the_general_exchange_does(transport, server, paths, partial):
    def first(conn: ScriptedConnection) -> None:
        conn.read_request()
        conn.send(respond(200, b"first"))
        conn.read_request()
        if partial:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Le")
            time.sleep(0.05)  # let the bytes arrive before the RST (not synchronisation)
        conn.reset()

    srv = server(first)
    warm(transport, srv.url("/first"))
    paths.reset()
    with pytest.raises(roundtrip.Error) as info:
        transport.round_trip(Request("POST", srv.url("/second"), body=b"payload"))
    if partial:
        assert type(info.value) is roundtrip.ProtocolError
        assert str(info.value) == f"connection broke while reading the response head: {RESET}"
    else:
        assert type(info.value) is ServerDisconnected
        assert str(info.value) == f"server closed the connection before responding: {RESET}"
    assert (info.value.conn_reused, info.value.bytes_written) == (True, len(srv.received[1].raw))
    assert_path(paths, 1)


# -- cancel and deadlines -------------------------------------------------------------------


class Held:
    """A server that answers the first request and then, on the same connection, reads the
    second and holds it until the client closes."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.client_closed: Optional[bool] = None
        self.done = threading.Event()

    def __call__(self, conn: ScriptedConnection) -> None:
        conn.read_request()
        conn.send(respond(200, b"first"))
        conn.read_request()
        self.reached.set()
        self.client_closed = conn.wait_closed(5.0)
        self.done.set()

    def assert_client_closed(self) -> None:
        assert self.done.wait(6.0), "server script did not finish"
        assert self.client_closed is True, "the client did not close the connection"


def test_cancel_while_waiting_for_headers_on_the_compiled_exchange(transport, server, paths):
    held = Held()
    srv = server(held)
    warm(transport, srv.url("/first"))
    paths.reset()
    ctx = Context()
    outcome: list[Any] = []

    def go() -> None:
        try:
            outcome.append(transport.round_trip(Request("GET", srv.url("/held"), context=ctx)))
        except BaseException as exc:
            outcome.append(exc)
        outcome.append(time.monotonic())

    worker = threading.Thread(target=go, daemon=True)
    worker.start()
    assert held.reached.wait(5.0)
    time.sleep(0.05)  # let the client block in its wait
    cancelled_at = time.monotonic()
    ctx.cancel()
    worker.join(5.0)
    assert not worker.is_alive(), "the round trip hung"
    error, ended_at = outcome
    assert isinstance(error, Cancelled), repr(error)
    assert ended_at - cancelled_at < HANG
    assert error.conn_reused is True
    assert error.bytes_written == len(srv.received[1].raw)
    held.assert_client_closed()
    assert srv.accepted == 1, "a cancelled request is not retried"
    assert_path(paths, 1)


@pytest.mark.parametrize(
    "header_timeout, context_timeout, kind",
    [(SHORT, None, ResponseHeaderTimeout), (None, SHORT, DeadlineExceeded), (SHORT, 10.0, ResponseHeaderTimeout), (10.0, SHORT, DeadlineExceeded)],
)
def test_timeouts_while_waiting_for_headers_on_the_compiled_exchange(make_transport, server, paths, header_timeout, context_timeout, kind):
    held = Held()
    srv = server(held)
    transport = make_transport(response_header_timeout=header_timeout)
    warm(transport, srv.url("/first"))
    paths.reset()
    context = Context(timeout=context_timeout) if context_timeout is not None else None
    started = time.monotonic()
    with pytest.raises(roundtrip.Timeout) as info:
        transport.round_trip(Request("GET", srv.url("/held"), context=context))
    took = time.monotonic() - started
    assert type(info.value) is kind
    assert SHORT * 0.9 <= took < HANG
    assert info.value.conn_reused is True
    assert info.value.bytes_written == len(srv.received[1].raw)
    held.assert_client_closed()
    assert srv.accepted == 1
    assert_path(paths, 1)


def test_deadline_covers_the_body_after_the_compiled_exchange(transport, server, paths):
    def stalls(conn: ScriptedConnection) -> None:
        conn.read_request()
        conn.send(respond(200, b"first"))
        conn.read_request()
        conn.send(respond(200, headers=[("Content-Length", "10")]) + b"12345")
        conn.wait_closed(5.0)

    srv = server(stalls)
    warm(transport, srv.url("/first"))
    paths.reset()
    resp = transport.round_trip(Request("GET", srv.url("/slow"), context=Context(timeout=SHORT)))
    with resp, pytest.raises(DeadlineExceeded):
        resp.read()
    assert_path(paths, 1)


@pytest.mark.once
def test_fast_path_switch_reads_the_environment():
    code = "import roundtrip._transport as t; print(t.FAST_PATH)"
    for value, expected in (("1", "False"), ("0", "True"), ("", "True")):
        env = {**os.environ, "ROUNDTRIP_NO_FAST_PATH": value}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == expected
