"""The keep-alive pool: reuse, idle limits per host and across hosts (LRU), closing,
``pool_stats()`` and what makes a connection unfit for reuse."""

from __future__ import annotations

import socket
import threading

import pytest

import roundtrip

from helpers import RecordingDial, fetch_body
from servers import keep_alive_handler, respond

WAIT = 5.0
ZERO = {"idle": 0, "active": 0, "dialing": 0, "waiting": 0}


def tracked_handler(closed: threading.Event, body: bytes = b"ok"):
    """Keep-alive answers; ``closed`` is set once the client closes the connection."""

    def handler(conn):
        for _ in conn.requests():
            conn.send(respond(200, body))
        closed.set()

    return handler


def key(srv):
    return f"http://127.0.0.1:{srv.port}"


# -- reuse -------------------------------------------------------------------------------------


def test_sequential_requests_share_one_connection(transport, server):
    srv = server(keep_alive_handler(b"same"))
    for _ in range(10):
        assert fetch_body(transport, srv.url()) == b"same"
    assert srv.accepted == 1
    assert {r.connection for r in srv.received} == {0}
    assert transport.pool_stats()[key(srv)] == {"idle": 1, "active": 0, "dialing": 0, "waiting": 0}


def test_mixed_methods_share_one_connection(transport, server):
    def handler(conn):
        for request in conn.requests():
            head_only = request.method == "HEAD"
            conn.send(respond(200, b"", [("Content-Length", "2")]) if head_only else respond(200, b"ok"))

    srv = server(handler)
    fetch_body(transport, srv.url(), "GET")
    fetch_body(transport, srv.url(), "POST", body=b"x" * 100)
    fetch_body(transport, srv.url(), "PUT", body=iter([b"chunk"]))
    fetch_body(transport, srv.url(), "HEAD")
    fetch_body(transport, srv.url(), "DELETE")
    assert srv.accepted == 1
    assert [r.method for r in srv.received] == ["GET", "POST", "PUT", "HEAD", "DELETE"]


def test_concurrent_responses_use_separate_connections(transport, server):
    srv = server(keep_alive_handler(b"c"))
    responses = [transport.round_trip(roundtrip.Request("GET", srv.url())) for _ in range(3)]
    assert srv.accepted == 3
    assert transport.pool_stats()["total"]["active"] == 3
    for resp in responses:
        assert resp.read() == b"c"
        resp.close()
    assert transport.pool_stats()["total"] == {"idle": 3, "active": 0, "dialing": 0, "waiting": 0}


def test_max_idle_conns_per_host_closes_the_extra_connections(make_transport, server):
    closed = [threading.Event() for _ in range(5)]
    srv = server([tracked_handler(event) for event in closed])
    t = make_transport(max_idle_conns_per_host=2)
    responses = [t.round_trip(roundtrip.Request("GET", srv.url())) for _ in range(5)]
    assert srv.accepted == 5
    for resp in responses:
        resp.read()
        resp.close()
    assert t.pool_stats()[key(srv)]["idle"] == 2
    # The first two returned are kept; the three that came back to a full pool are closed.
    for index in (2, 3, 4):
        assert closed[index].wait(WAIT), f"connection {index} must be closed"
    assert not closed[0].is_set() and not closed[1].is_set()
    assert fetch_body(t, srv.url()) == b"ok"
    assert srv.accepted == 5


def test_max_idle_conns_evicts_the_least_recently_used_across_hosts(make_transport, server):
    closed = {name: threading.Event() for name in "abc"}
    servers = {name: server(tracked_handler(event, name.encode())) for name, event in closed.items()}
    t = make_transport(max_idle_conns=2)
    for name in "abc":
        assert fetch_body(t, servers[name].url()) == name.encode()
    assert closed["a"].wait(WAIT), "the oldest idle connection must be closed first"
    stats = t.pool_stats()
    assert key(servers["a"]) not in stats
    assert stats[key(servers["b"])]["idle"] == 1
    assert stats[key(servers["c"])]["idle"] == 1
    assert stats["total"]["idle"] == 2
    assert not closed["b"].is_set() and not closed["c"].is_set()


def test_max_idle_conns_zero_means_no_limit(make_transport, server):
    servers = [server(keep_alive_handler()) for _ in range(3)]
    t = make_transport(max_idle_conns=0)
    for srv in servers:
        fetch_body(t, srv.url())
    assert t.pool_stats()["total"]["idle"] == 3
    for srv in servers:
        fetch_body(t, srv.url())
        assert srv.accepted == 1


def test_lru_order_follows_use_not_creation(make_transport, server):
    closed = {name: threading.Event() for name in "abc"}
    servers = {name: server(tracked_handler(event)) for name, event in closed.items()}
    t = make_transport(max_idle_conns=2)
    fetch_body(t, servers["a"].url())
    fetch_body(t, servers["b"].url())
    fetch_body(t, servers["a"].url())  # a is now the most recently used
    fetch_body(t, servers["c"].url())
    assert closed["b"].wait(WAIT)
    stats = t.pool_stats()
    assert key(servers["b"]) not in stats
    assert stats[key(servers["a"])]["idle"] == 1
    assert servers["a"].accepted == 1


# -- closing -----------------------------------------------------------------------------------


def test_close_idle_connections_closes_them_now(transport, server):
    closed = threading.Event()
    srv = server(tracked_handler(closed))
    fetch_body(transport, srv.url())
    assert transport.pool_stats()["total"]["idle"] == 1
    transport.close_idle_connections()
    assert transport.pool_stats() == {"total": ZERO}
    assert closed.wait(WAIT)
    assert fetch_body(transport, srv.url()) == b"ok"
    assert srv.accepted == 2


def test_close_idle_connections_leaves_active_ones_alone(transport, server):
    srv = server(keep_alive_handler(b"still here"))
    resp = transport.round_trip(roundtrip.Request("GET", srv.url()))
    transport.close_idle_connections()
    assert transport.pool_stats()["total"]["active"] == 1
    assert resp.read() == b"still here"
    resp.close()
    assert transport.pool_stats()["total"]["idle"] == 1


def test_round_trip_after_close_raises_transport_closed(make_transport, counting_dial, server):
    closed = threading.Event()
    srv = server(tracked_handler(closed))
    t = make_transport(dial=counting_dial)
    fetch_body(t, srv.url())
    t.close()
    assert closed.wait(WAIT)
    with pytest.raises(roundtrip.TransportClosed):
        t.round_trip(roundtrip.Request("GET", srv.url()))
    assert len(counting_dial.calls) == 1


def test_connection_returned_after_close_is_closed(make_transport, server):
    closed = threading.Event()
    srv = server(tracked_handler(closed, b"late"))
    t = make_transport()
    resp = t.round_trip(roundtrip.Request("GET", srv.url()))
    t.close()
    assert resp.read() == b"late"
    resp.close()
    assert t.pool_stats() == {"total": ZERO}
    assert closed.wait(WAIT)


def test_transport_is_a_context_manager(server):
    closed = threading.Event()
    srv = server(tracked_handler(closed))
    with roundtrip.Transport() as t:
        assert fetch_body(t, srv.url()) == b"ok"
    assert closed.wait(WAIT)
    with pytest.raises(roundtrip.TransportClosed):
        t.round_trip(roundtrip.Request("GET", srv.url()))


# -- pool_stats --------------------------------------------------------------------------------


def test_pool_stats_of_a_fresh_transport_is_only_the_total(transport):
    assert transport.pool_stats() == {"total": ZERO}


def test_pool_stats_key_is_scheme_host_and_explicit_port(transport, server):
    srv = server(keep_alive_handler())
    resp = transport.round_trip(roundtrip.Request("GET", srv.url()))
    stats = transport.pool_stats()
    assert stats == {
        key(srv): {"idle": 0, "active": 1, "dialing": 0, "waiting": 0},
        "total": {"idle": 0, "active": 1, "dialing": 0, "waiting": 0},
    }
    assert all(type(v) is int for counts in stats.values() for v in counts.values())
    resp.read()
    resp.close()
    assert transport.pool_stats()[key(srv)] == {"idle": 1, "active": 0, "dialing": 0, "waiting": 0}


def test_pool_stats_key_lowercases_the_host_and_adds_the_default_port(make_transport, server):
    srv = server(keep_alive_handler())

    t = make_transport(dial=RecordingDial(srv.port))
    fetch_body(t, "http://Example.COM/a")
    fetch_body(t, "http://example.com:80/b")
    assert set(t.pool_stats()) == {"http://example.com:80", "total"}
    assert t.pool_stats()["http://example.com:80"]["idle"] == 1
    assert srv.accepted == 1


def test_pool_stats_key_brackets_ipv6(transport, server):
    try:
        srv = server(keep_alive_handler(), family=socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback")
    assert fetch_body(transport, srv.url()) == b"ok"
    assert set(transport.pool_stats()) == {f"http://[::1]:{srv.port}", "total"}


def test_pool_stats_total_sums_every_key(transport, server):
    a, b = server(keep_alive_handler()), server(keep_alive_handler())
    held = transport.round_trip(roundtrip.Request("GET", a.url()))
    fetch_body(transport, a.url())
    fetch_body(transport, b.url())
    stats = transport.pool_stats()
    assert stats[key(a)] == {"idle": 1, "active": 1, "dialing": 0, "waiting": 0}
    assert stats[key(b)] == {"idle": 1, "active": 0, "dialing": 0, "waiting": 0}
    assert stats["total"] == {"idle": 2, "active": 1, "dialing": 0, "waiting": 0}
    held.read()
    held.close()


def test_pool_stats_leaves_out_keys_with_all_counts_zero(transport, server):
    srv = server(keep_alive_handler(headers=[("Connection", "close")]))
    fetch_body(transport, srv.url())
    assert transport.pool_stats() == {"total": ZERO}


# -- what is not pooled ------------------------------------------------------------------------


def test_disable_keep_alives_sends_connection_close_and_never_pools(make_transport, server):
    closed = [threading.Event() for _ in range(2)]
    srv = server([tracked_handler(event) for event in closed])
    t = make_transport(disable_keep_alives=True)
    for _ in range(2):
        assert fetch_body(t, srv.url()) == b"ok"
        assert t.pool_stats() == {"total": ZERO}
    assert srv.accepted == 2
    assert [r.header("Connection") for r in srv.received] == ["close", "close"]
    assert all(event.wait(WAIT) for event in closed)


def test_caller_connection_close_header_is_sent_once_and_not_pooled(transport, server):
    srv = server(keep_alive_handler())
    fetch_body(transport, srv.url(), headers={"Connection": "close"})
    assert [n.lower() for n in srv.received[0].header_names()].count("connection") == 1
    assert transport.pool_stats() == {"total": ZERO}


def test_response_with_connection_close_is_not_pooled(transport, server):
    closed = threading.Event()

    def handler(conn):
        conn.read_request()
        conn.send(respond(200, b"bye", [("Connection", "close")]))
        if conn.wait_closed(WAIT):
            closed.set()

    srv = server([handler, keep_alive_handler(b"new")])
    assert fetch_body(transport, srv.url()) == b"bye"
    assert transport.pool_stats() == {"total": ZERO}
    assert closed.wait(WAIT), "the client closes a connection the server asked to close"
    assert fetch_body(transport, srv.url()) == b"new"
    assert srv.accepted == 2


def test_http10_response_without_keep_alive_is_not_pooled(transport, server):
    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi")

    srv = server(handler)
    assert fetch_body(transport, srv.url()) == b"hi"
    assert transport.pool_stats() == {"total": ZERO}
    assert fetch_body(transport, srv.url()) == b"hi"
    assert srv.accepted == 2


def test_http10_response_with_keep_alive_is_pooled(transport, server):
    def handler(conn):
        for _ in conn.requests():
            conn.send(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nka")

    srv = server(handler)
    assert fetch_body(transport, srv.url()) == b"ka"
    assert fetch_body(transport, srv.url()) == b"ka"
    assert srv.accepted == 1


# -- stale idle connections --------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_idle_connection_closed_by_the_server_is_replaced(transport, server, method):
    gone = threading.Event()

    def first(conn):
        conn.read_request()
        conn.send(respond(200, b"first"))
        conn.close()
        gone.set()

    srv = server([first, keep_alive_handler(b"second")])
    assert fetch_body(transport, srv.url(), method, body=b"1" if method == "POST" else None) == b"first"
    assert gone.wait(WAIT)
    assert fetch_body(transport, srv.url(), method, body=b"2" if method == "POST" else None) == b"second"
    assert srv.accepted == 2
    assert [r.connection for r in srv.received] == [0, 1]


def test_idle_connection_reset_by_the_server_is_replaced(transport, server):
    gone = threading.Event()

    def first(conn):
        conn.read_request()
        conn.send(respond(200, b"first"))
        conn.reset()
        gone.set()

    srv = server([first, keep_alive_handler(b"second")])
    assert fetch_body(transport, srv.url()) == b"first"
    assert gone.wait(WAIT)
    assert fetch_body(transport, srv.url(), "POST", body=iter([b"unreplayable"])) == b"second"
    assert srv.received[-1].body == b"unreplayable"


def test_idle_connection_with_unsolicited_bytes_is_not_reused(transport, server):
    sent = threading.Event()

    def first(conn):
        conn.read_request()
        conn.send(respond(200, b"first"))
        conn.send(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
        sent.set()
        conn.wait_closed()

    srv = server([first, keep_alive_handler(b"second")])
    assert fetch_body(transport, srv.url()) == b"first"
    assert sent.wait(WAIT)
    with transport.round_trip(roundtrip.Request("GET", srv.url())) as resp:
        assert resp.status_code == 200
        assert resp.read() == b"second"
