"""``Expect: 100-continue`` (RFC 9110 §10.1.1, Go's ``persistConn`` continueCh)."""

from __future__ import annotations

import threading

import pytest

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
    assert log == ["wait", "100", 100], "Go reports Got100Continue before Got1xxResponse"


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


def _upload(sent_first: threading.Event, go_on: threading.Event, pieces: int = 8):
    """A chunked body: one piece, then (once ``go_on`` is set) the rest."""

    def body():
        yield b"a" * 1000
        sent_first.set()
        assert go_on.wait(IO_TIMEOUT)
        for _ in range(pieces - 1):
            yield b"a" * 1000

    return body()


def test_a_100_continue_after_the_wait_ended_does_not_stop_the_upload(make_transport, server):
    # Servers that send 100 when the application first reads the body (uvicorn) send it after
    # the body has started: it ends the wait for continue, it is not an early answer.
    transport = make_transport(expect_continue_timeout=0.05)
    sent_first, said_continue = threading.Event(), threading.Event()

    def handler(conn):
        conn.read_head()
        conn.read_until(b"\r\n")  # the first chunk's size line: the body has started
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        said_continue.set()
        conn.read_until(b"\r\n0\r\n\r\n")  # the rest of the body, to its last chunk
        conn.send(respond(200, b"stored"))

    srv = server(handler)
    log: list = []
    request = roundtrip.Request(
        "PUT", srv.url("/"), headers=EXPECT, body=_upload(sent_first, said_continue), trace=_events(log), context=roundtrip.Context(timeout=10)
    )
    with transport.round_trip(request) as resp:
        assert (resp.status_code, resp.read()) == (200, b"stored")
    assert log == ["wait", "100", 100]
    assert transport.pool_stats()["total"]["idle"] == 1, "the exchange ended cleanly: the connection is kept"


def test_early_hints_during_the_upload_do_not_stop_it(transport, server):
    sent_first, said_hints = threading.Event(), threading.Event()

    def handler(conn):
        conn.read_head()
        conn.read_until(b"\r\n")
        conn.send(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
        conn.send(b"HTTP/1.1 102 Processing\r\n\r\n")
        said_hints.set()
        conn.read_until(b"\r\n0\r\n\r\n")
        conn.send(respond(200, b"stored"))

    srv = server(handler)
    log: list = []
    request = roundtrip.Request("POST", srv.url("/"), body=_upload(sent_first, said_hints), trace=_events(log), context=roundtrip.Context(timeout=10))
    with transport.round_trip(request) as resp:
        assert (resp.status_code, resp.read()) == (200, b"stored")
    assert log == [103, 102]
    assert transport.pool_stats()["total"]["idle"] == 1


@pytest.mark.parametrize("closes", [False, True], ids=["keep-alive", "close"])
def test_a_final_answer_in_the_same_read_as_the_100_is_returned(transport, server, closes):
    # Python's http.server and gunicorn send 100 themselves, then reject: both heads can
    # arrive in one read, and the final one must not be lost with the rest of that read.
    def handler(conn):
        conn.read_head()
        fields = [("Connection", "close")] if closes else []
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n" + respond(401, b"no", fields, reason="Unauthorized"))
        if closes:
            conn.close()
        else:
            conn.wait_closed()

    srv = server(handler)
    log: list = []
    request = roundtrip.Request("PUT", srv.url("/"), headers=EXPECT, body=b"data", trace=_events(log), context=roundtrip.Context(timeout=5))
    with transport.round_trip(request) as resp:
        assert (resp.status_code, resp.read()) == (401, b"no")
    assert log == ["wait", "100", 100]
    assert transport.pool_stats()["total"]["idle"] == 0, "an answer that came before the body leaves the connection out of step"


def test_an_early_http_1_0_answer_without_keep_alive_skips_the_body(transport, server):
    # The same keep-alive rule as every response (RFC 9112 §9.3): HTTP/1.0 closes unless
    # it says keep-alive, so the body is not sent (Go's resp.Close).
    after_head = []

    def handler(conn):
        conn.read_head()
        conn.send(b"HTTP/1.0 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n")
        conn.sock.settimeout(IO_TIMEOUT)
        while True:
            data = conn.sock.recv(65536)
            if not data:
                break
            after_head.append(data)
        after_head.append(bytes(conn.buffer))

    srv = server(handler)
    with transport.round_trip(roundtrip.Request("PUT", srv.url("/"), headers=EXPECT, body=b"data")) as resp:
        assert (resp.status_code, resp.read()) == (417, b"")
    srv.close()
    assert b"".join(after_head) == b"", "the body is never sent on a connection that closes"
