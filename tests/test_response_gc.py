"""A response dropped unfinished, without close(), gives its connection and its pool slot back."""

from __future__ import annotations

import gc
import threading

import roundtrip

from servers import respond


def _slow_body_server(server):
    """Sends the head and half of a Content-Length body, then waits for the client to close."""
    closed = threading.Event()

    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf!")
        if conn.wait_closed():
            closed.set()

    return server(handler), closed


def test_a_dropped_response_closes_its_connection_and_frees_its_slot(make_transport, server):
    transport = make_transport(max_conns_per_host=1)
    srv, closed = _slow_body_server(server)
    resp = transport.round_trip(roundtrip.Request("GET", srv.url("/")))
    assert resp.read(2) == b"ha"
    assert transport.pool_stats()["total"]["active"] == 1
    del resp
    gc.collect()
    assert closed.wait(5), "the socket is closed when the response goes"
    assert transport.pool_stats()["total"]["active"] == 0


def test_the_freed_slot_serves_the_next_request_under_max_conns_per_host(make_transport, server):
    transport = make_transport(max_conns_per_host=1)
    first, _ = _slow_body_server(server)
    transport.round_trip(roundtrip.Request("GET", first.url("/")))  # dropped at once, unread
    gc.collect()
    second = server(lambda conn: [conn.send(respond(200, b"ok")) for _ in conn.requests()])
    context = roundtrip.Context(timeout=5)
    with transport.round_trip(roundtrip.Request("GET", first.url("/").replace(str(first.port), str(second.port)), context=context)) as resp:
        assert resp.read() == b"ok"
    # The same key: only one connection at a time may exist, so the slot must have been freed.
    assert first.port != second.port


def test_a_dropped_response_under_the_same_key_does_not_block_a_waiter(make_transport, server):
    transport = make_transport(max_conns_per_host=1)
    closed = threading.Event()

    def handler(conn):
        request = conn.read_request()
        if request.target == "/leak":
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf!")
            if conn.wait_closed():
                closed.set()
            return
        conn.send(respond(200, b"ok"))

    srv = server(handler)
    leaked = transport.round_trip(roundtrip.Request("GET", srv.url("/leak")))
    results = []

    def waiter():
        context = roundtrip.Context(timeout=5)
        with transport.round_trip(roundtrip.Request("GET", srv.url("/next"), context=context)) as resp:
            results.append(resp.read())

    thread = threading.Thread(target=waiter)
    thread.start()
    del leaked
    gc.collect()
    thread.join(10)
    assert results == [b"ok"]
    assert closed.is_set()


def test_a_finished_or_closed_response_leaves_nothing_behind(transport, server):
    srv = server(lambda conn: [conn.send(respond(200, b"ok")) for _ in conn.requests()])
    resp = transport.round_trip(roundtrip.Request("GET", srv.url("/")))
    assert resp.read() == b"ok"
    del resp
    gc.collect()
    assert transport.pool_stats()["total"] == {"idle": 1, "active": 0, "dialing": 0, "waiting": 0}
