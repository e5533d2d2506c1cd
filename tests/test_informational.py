"""1xx responses (RFC 9110 §15.2): skipped and reported, bounded, and 101 is final."""

from __future__ import annotations

import pytest

import roundtrip

from servers import respond


def test_informational_responses_are_skipped_and_reported(transport, server):
    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
        conn.send(b"HTTP/1.1 102 Processing\r\n\r\n")
        conn.send(respond(200, b"final"))

    srv = server(handler)
    seen = []
    trace = roundtrip.Trace(got_1xx_response=lambda status, headers: seen.append((status, headers.get_all("link"))))
    with transport.round_trip(roundtrip.Request("GET", srv.url("/"), trace=trace)) as resp:
        assert (resp.status_code, resp.read()) == (200, b"final")
    assert seen == [(103, ["</a.css>; rel=preload"]), (102, [])]
    assert isinstance(seen, list)


def test_a_flood_of_1xx_counts_against_max_response_header_bytes(make_transport, server):
    transport = make_transport(max_response_header_bytes=4096)

    def handler(conn):
        conn.read_request()
        for _ in range(1000):
            conn.send(b"HTTP/1.1 102 Processing\r\nX-Pad: " + b"p" * 40 + b"\r\n\r\n")
        conn.send(respond(200, b"never read"))

    srv = server(handler)
    with pytest.raises(roundtrip.HeaderTooLarge):
        transport.round_trip(roundtrip.Request("GET", srv.url("/")))


def test_a_head_over_the_limit_is_refused_and_one_at_the_limit_is_not(make_transport, server):
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: "
    filler = 300 - len(head) - 4
    exact = head + b"a" * filler + b"\r\n\r\n"
    assert len(exact) == 300

    def handler(conn):
        for _ in conn.requests():
            conn.send(exact + b"ok")

    srv = server(handler)
    at_limit = make_transport(max_response_header_bytes=300)
    with at_limit.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        assert resp.read() == b"ok"
    below = make_transport(max_response_header_bytes=299)
    with pytest.raises(roundtrip.HeaderTooLarge):
        below.round_trip(roundtrip.Request("GET", srv.url("/")))


def test_101_is_final_and_the_connection_is_not_pooled(transport, server):
    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: upgrade\r\n\r\nraw bytes")
        conn.close()

    srv = server(handler)
    request = roundtrip.Request("GET", srv.url("/"), headers={"Upgrade": "echo", "Connection": "upgrade"})
    with transport.round_trip(request) as resp:
        assert resp.status_code == 101
        assert resp.read() == b"raw bytes"
    assert transport.pool_stats()["total"]["idle"] == 0
