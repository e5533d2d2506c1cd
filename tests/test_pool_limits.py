"""Pool limits (Go's connsPerHost, idleConnWait, idleLRU and idle timeout)."""

from __future__ import annotations

import socket
import threading
import time

import roundtrip

from helpers import fetch_body, wait_until
from servers import respond

WAIT = 5.0


def _gated_server(server, gate: threading.Semaphore):
    """Answers each request only when the test releases ``gate`` once."""

    def handler(conn):
        for request in conn.requests():
            assert gate.acquire(timeout=WAIT)
            conn.send(respond(200, request.header("x-id", "").encode()))

    return server(handler)


def _fetch(transport, url, ident, results):
    """A thread's work: one request tagged ``ident``, its body appended to ``results``."""
    results.append(fetch_body(transport, url, headers={"X-Id": ident}).decode())


def test_max_conns_per_host_makes_requests_wait_in_fifo_order(make_transport, server):
    transport = make_transport(max_conns_per_host=2)
    gate = threading.Semaphore(0)
    srv = _gated_server(server, gate)
    key = f"http://127.0.0.1:{srv.port}"
    results: list[str] = []
    threads = []
    for ident in "abcde":
        thread = threading.Thread(target=_fetch, args=(transport, srv.url("/"), ident, results))
        thread.start()
        threads.append(thread)
        # Let each request take its place before the next arrives, so FIFO order is defined.
        expected = len(threads)
        wait_until(lambda: sum(transport.pool_stats().get(key, {}).get(k, 0) for k in ("active", "waiting")) == expected, f"{expected} active or waiting")
    wait_until(lambda: len(srv.received) == 2, "two requests at the server")
    stats = transport.pool_stats()[key]
    assert (stats["active"], stats["waiting"], stats["dialing"]) == (2, 3, 0)
    for answered in range(1, 6):
        # One answer at a time: the freed connection goes to the oldest waiter, whose request
        # reaches the server before the next answer is let go.
        gate.release()
        wait_until(lambda: len(results) == answered and len(srv.received) == min(2 + answered, 5), f"{answered} answered")
    for thread in threads:
        thread.join(WAIT)
    assert srv.accepted == 2, "exactly max_conns_per_host dials"
    arrival = [r.header("x-id") for r in srv.received]
    assert sorted(arrival[:2]) == ["a", "b"] and arrival[2:] == ["c", "d", "e"]
    assert sorted(results) == list("abcde")
    assert transport.pool_stats()["total"]["waiting"] == 0


def test_a_waiter_takes_a_returned_connection_before_its_own_dial_finishes(make_transport, server):
    dial_gate = threading.Event()
    dials = []

    def dial(host, port, timeout):
        dials.append(port)
        if len(dials) == 2:
            assert dial_gate.wait(WAIT)  # the second dial hangs until the test lets it go
        return socket.create_connection((host, port), timeout)

    transport = make_transport(dial=dial)
    srv = server(lambda conn: [conn.send(respond(200, b"ok")) for _ in conn.requests()])
    first = transport.round_trip(roundtrip.Request("GET", srv.url("/1")))
    infos = []
    done = threading.Event()

    def second():
        trace = roundtrip.Trace(got_conn=infos.append)
        with transport.round_trip(roundtrip.Request("GET", srv.url("/2"), trace=trace)) as resp:
            resp.read()
        done.set()

    thread = threading.Thread(target=second)
    thread.start()
    wait_until(lambda: len(dials) == 2, "two dials")
    assert first.read() == b"ok"  # returns the first connection: the waiter takes it
    first.close()
    assert done.wait(WAIT), "the waiter must not wait for its own dial"
    assert infos[0].reused is True
    dial_gate.set()
    thread.join(WAIT)
    # The late dial is not wasted: it goes to the idle pool (Go's late binding).
    wait_until(lambda: transport.pool_stats()["total"]["idle"] == 2, "two idle connections")
    assert transport.pool_stats()["total"]["dialing"] == 0


def test_max_idle_conns_closes_the_least_recently_used_first(make_transport, server):
    transport = make_transport(max_idle_conns=2)
    closed = {}
    servers = []
    for name in ("a", "b", "c"):
        seen_close = threading.Event()
        closed[name] = seen_close

        def handler(conn, seen_close=seen_close):
            for _ in conn.requests():
                conn.send(respond(200, b"ok"))
            seen_close.set()

        servers.append(server(handler))
    for srv in servers:
        with transport.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
            resp.read()
    assert closed["a"].wait(WAIT), "the oldest idle connection is closed"
    assert not closed["b"].is_set() and not closed["c"].is_set()
    assert transport.pool_stats()["total"]["idle"] == 2


def test_max_idle_conns_per_host_closes_the_surplus(make_transport, server):
    transport = make_transport(max_idle_conns_per_host=1)
    srv = server(lambda conn: [conn.send(respond(200, b"ok")) for _ in conn.requests()])
    responses = [transport.round_trip(roundtrip.Request("GET", srv.url("/"))) for _ in range(3)]
    for resp in responses:
        resp.read()
        resp.close()
    stats = transport.pool_stats()[f"http://127.0.0.1:{srv.port}"]
    assert (stats["idle"], stats["active"]) == (1, 0)


def test_idle_connection_is_closed_when_its_timeout_passes_without_a_request(make_transport, server):
    transport = make_transport(idle_conn_timeout=0.2)
    closed = threading.Event()

    def handler(conn):
        for _ in conn.requests():
            conn.send(respond(200, b"ok"))
        closed.set()

    srv = server(handler)
    with transport.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        resp.read()
    assert transport.pool_stats()["total"]["idle"] == 1
    assert closed.wait(WAIT), "the timer closes the idle connection with no request coming"
    assert transport.pool_stats()["total"]["idle"] == 0
    reapers = [t for t in threading.enumerate() if t.name == "roundtrip-idle-reaper"]
    for reaper in reapers:
        reaper.join(WAIT)  # the timer thread ends once nothing is idle


def test_at_most_one_timer_thread_per_transport(make_transport, server):
    transport = make_transport(idle_conn_timeout=30)
    servers = [server(lambda conn: [conn.send(respond(200, b"ok")) for _ in conn.requests()]) for _ in range(3)]
    for srv in servers:
        with transport.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
            resp.read()
    assert len([t for t in threading.enumerate() if t.name == "roundtrip-idle-reaper"]) == 1
    transport.close()
    for reaper in [t for t in threading.enumerate() if t.name == "roundtrip-idle-reaper"]:
        reaper.join(WAIT)


def test_pool_stats_counts_dialing(make_transport, server):
    gate = threading.Event()

    def dial(host, port, timeout):
        assert gate.wait(WAIT)
        return socket.create_connection((host, port), timeout)

    transport = make_transport(dial=dial)
    srv = server(lambda conn: [conn.send(respond(200, b"ok")) for _ in conn.requests()])
    key = f"http://127.0.0.1:{srv.port}"
    thread = threading.Thread(target=lambda: transport.round_trip(roundtrip.Request("GET", srv.url("/"))).close())
    thread.start()
    wait_until(lambda: transport.pool_stats().get(key, {}).get("dialing") == 1, "one dial")
    assert transport.pool_stats()[key] == {"idle": 0, "active": 0, "dialing": 1, "waiting": 0}
    gate.set()
    thread.join(WAIT)
    assert key not in transport.pool_stats()  # closed early: nothing left under the key
