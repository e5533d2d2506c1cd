"""``Expect: 100-continue`` (RFC 9110 §10.1.1, Go's ``persistConn`` continueCh)."""

from __future__ import annotations

import threading

import roundtrip

from servers import IO_TIMEOUT, respond

EXPECT = {"Expect": "100-continue"}


def _events(log):
    return roundtrip.Trace(
        wait_100_continue=lambda: log.append("wait"),
        got_100_continue=lambda: log.append("100"),
        got_1xx_response=lambda status, headers: log.append(status),
    )


def test_body_is_sent_after_100_continue(transport, server):
    def handler(conn):
        head = conn.read_head()
        assert b"Expect: 100-continue" in head
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        assert conn.read_exactly(4) == b"data"
        conn.send(respond(200, b"stored"))

    srv = server(handler)
    log: list = []
    request = roundtrip.Request("PUT", srv.url("/"), headers=EXPECT, body=b"data", trace=_events(log))
    with transport.round_trip(request) as resp:
        assert (resp.status_code, resp.read()) == (200, b"stored")
    assert log == ["wait", 100, "100"]


def test_body_is_sent_anyway_when_no_answer_comes_in_time(make_transport, server):
    transport = make_transport(expect_continue_timeout=0.05)
    body_arrived = threading.Event()

    def handler(conn):
        conn.read_head()  # says nothing and waits for the body
        assert conn.read_exactly(4) == b"data"
        body_arrived.set()
        conn.send(respond(200, b"ok"))

    srv = server(handler)
    with transport.round_trip(roundtrip.Request("PUT", srv.url("/"), headers=EXPECT, body=b"data")) as resp:
        assert resp.read() == b"ok"
    assert body_arrived.is_set()


def test_final_answer_that_closes_skips_the_body(transport, server):
    closed = threading.Event()

    def handler(conn):
        conn.read_head()
        conn.send(respond(401, b"no", [("Connection", "close")], reason="Unauthorized"))
        closed.set()
        conn.close()

    srv = server(handler)
    body_read = []

    def body():
        body_read.append(True)
        yield b"data"

    with transport.round_trip(roundtrip.Request("PUT", srv.url("/"), headers=EXPECT, body=body())) as resp:
        assert (resp.status_code, resp.read()) == (401, b"no")
    assert body_read == [], "the body is never sent after a final answer that closes"
    assert transport.pool_stats()["total"]["idle"] == 0


def test_final_answer_that_keeps_the_connection_still_gets_the_body(transport, server):
    def handler(conn):
        conn.read_head()
        conn.send(respond(417, b"nope", reason="Expectation Failed"))
        assert conn.read_exactly(4) == b"data"  # Go sends it to keep the connection in step
        for _ in conn.requests():
            conn.send(respond(200, b"next"))

    srv = server(handler)
    with transport.round_trip(roundtrip.Request("PUT", srv.url("/"), headers=EXPECT, body=b"data")) as resp:
        assert (resp.status_code, resp.read()) == (417, b"nope")
    with transport.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        assert resp.read() == b"next"
    assert srv.accepted == 1


def test_early_response_while_writing_a_large_body_is_returned(transport, server):
    def handler(conn):
        conn.read_head()
        conn.send(respond(413, b"too big", [("Connection", "close")], reason="Payload Too Large"))
        conn.sock.settimeout(IO_TIMEOUT)
        conn.close()

    srv = server(handler)

    def body():
        for _ in range(4096):
            yield b"x" * 65536  # 256 MiB: far more than the socket buffers hold

    with transport.round_trip(roundtrip.Request("POST", srv.url("/"), body=body())) as resp:
        assert (resp.status_code, resp.read()) == (413, b"too big")
    assert transport.pool_stats()["total"]["idle"] == 0
