"""``Response``: body framings, reading in pieces, closing early, errors for cut-short
bodies, and the connection going back to the pool before the read that ends the body returns."""

from __future__ import annotations

import io
import threading

import pytest

import roundtrip

from helpers import send
from servers import keep_alive_handler, respond

WAIT = 5.0


def scripted(*replies: bytes, close: bool = False):
    """A handler that answers the n-th request on a connection with ``replies[n]`` (raw bytes),
    then closes the connection (``close=True``) or waits for the client to close it."""

    def handler(conn):
        for reply in replies:
            conn.read_request()
            conn.send(reply)
        if not close:
            conn.wait_closed()

    return handler


def idle_active(transport):
    total = transport.pool_stats()["total"]
    return total["idle"], total["active"]


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


# -- framings ----------------------------------------------------------------------------------


def test_content_length_body(transport, server):
    srv = server(scripted(respond(200, b"exactly twenty bytes")))
    with send(transport, srv.url()) as resp:
        assert resp.content_length == 20
        assert resp.read() == b"exactly twenty bytes"
        assert resp.read() == b""


def test_chunked_body_with_trailers(transport, server):
    body = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"
    srv = server(scripted(CHUNKED_HEAD + body))
    with send(transport, srv.url()) as resp:
        assert resp.content_length is None
        assert len(resp.trailers) == 0
        assert resp.read() == b"hello, world"
        assert resp.trailers["x-checksum"] == "abc"
        assert resp.trailers.get("X-Other") == "1"
        assert isinstance(resp.trailers, roundtrip.Headers)


def test_chunked_body_arriving_one_byte_at_a_time(transport, server):
    body = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"

    def handler(conn):
        conn.read_request()
        conn.send(CHUNKED_HEAD)
        for i in range(len(body)):
            conn.send(body[i : i + 1])
        conn.wait_closed()

    srv = server(handler)
    with send(transport, srv.url()) as resp:
        assert resp.read() == b"abcde"
    assert idle_active(transport) == (1, 0)


def test_http10_body_is_read_until_close(transport, server):
    srv = server(scripted(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", close=True))
    with send(transport, srv.url()) as resp:
        assert resp.http_version == "HTTP/1.0"
        assert resp.content_length is None
        assert resp.read() == b"until the end"
    assert idle_active(transport) == (0, 0)


def test_http11_body_without_length_is_read_until_close(transport, server):
    srv = server(scripted(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"z" * 100000, close=True))
    with send(transport, srv.url()) as resp:
        assert resp.http_version == "HTTP/1.1"
        assert resp.content_length is None
        assert resp.read() == b"z" * 100000
    assert idle_active(transport) == (0, 0)


def test_head_response_is_empty_whatever_content_length_says(transport, server):
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
    srv = server(scripted(head, respond(200, b"next")))
    with send(transport, srv.url(), "HEAD") as resp:
        assert resp.read() == b""
        assert resp.headers["content-length"] == "1234"
    with send(transport, srv.url()) as resp:
        assert resp.read() == b"next"
    assert srv.accepted == 1


@pytest.mark.parametrize("status", [204, 304])
def test_no_content_statuses_have_an_empty_body_whatever_the_headers_say(transport, server, status):
    lying = f"HTTP/1.1 {status} X\r\nContent-Length: 5\r\n\r\n".encode()
    chunked = f"HTTP/1.1 {status} X\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    srv = server(scripted(lying, chunked, respond(200, b"after")))
    for _ in range(2):
        with send(transport, srv.url()) as resp:
            assert resp.status_code == status
            assert resp.read() == b""
    with send(transport, srv.url()) as resp:
        assert resp.read() == b"after"
    assert srv.accepted == 1


def test_1xx_responses_are_skipped_before_the_final_one(transport, server):
    srv = server(scripted(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n" + respond(200, b"final")))
    with send(transport, srv.url()) as resp:
        assert resp.status_code == 200
        assert resp.read() == b"final"


# -- reading -----------------------------------------------------------------------------------


def test_read_amt_returns_pieces_then_empty(transport, server):
    srv = server(scripted(respond(200, b"0123456789")))
    with send(transport, srv.url()) as resp:
        assert resp.read(3) == b"012"
        assert resp.read(0) == b""
        assert resp.read(4) == b"3456"
        assert resp.read(100) == b"789"
        assert resp.read(5) == b""
        assert resp.read() == b""


def test_read_amt_on_chunked_body(transport, server):
    srv = server(scripted(CHUNKED_HEAD + b"4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n"))
    with send(transport, srv.url()) as resp:
        pieces = []
        while True:
            piece = resp.read(3)
            if not piece:
                break
            assert len(piece) <= 3
            pieces.append(piece)
        assert b"".join(pieces) == b"abcdefgh"


def test_trailers_are_filled_when_reading_in_pieces_reaches_the_end(transport, server):
    srv = server(scripted(CHUNKED_HEAD + b"4\r\nabcd\r\n0\r\nX-Sum: 9\r\n\r\n"))
    with send(transport, srv.url()) as resp:
        data = b""
        while True:
            piece = resp.read(3)
            if not piece:
                break
            data += piece
        assert data == b"abcd"
        assert resp.trailers.get_all("x-sum") == ["9"]


def test_finished_response_reads_nothing_from_the_next_response_on_its_connection(transport, server):
    second = CHUNKED_HEAD + b"6\r\nsecond\r\n0\r\n\r\n"
    srv = server(scripted(respond(200, b"first"), second, respond(200, b"third")))
    first = send(transport, srv.url())
    assert first.read() == b"first"
    second = send(transport, srv.url())
    assert second.read() == b"second"
    third = send(transport, srv.url())
    assert first.read() == b"" and first.read(3) == b""
    assert second.read() == b"" and second.read(3) == b""
    assert third.read() == b"third"
    for resp in (first, second, third):
        resp.close()
    assert srv.accepted == 1


def test_iter_bytes_yields_bounded_pieces(transport, server):
    data = bytes(range(256)) * 40
    srv = server(scripted(respond(200, data)))
    with send(transport, srv.url()) as resp:
        pieces = list(resp.iter_bytes(1000))
    assert b"".join(pieces) == data
    assert all(0 < len(p) <= 1000 for p in pieces)


def test_iter_bytes_default_chunk_size_on_chunked_body(transport, server):
    srv = server(scripted(CHUNKED_HEAD + b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"))
    with send(transport, srv.url()) as resp:
        assert b"".join(resp.iter_bytes()) == b"abcdef"


def test_response_attributes(transport, server):
    srv = server(scripted(b"HTTP/1.1 201 Created Here\r\nContent-Length: 2\r\n\r\nhi"))
    req = roundtrip.Request("GET", srv.url("/r"))
    with transport.round_trip(req) as resp:
        assert resp.request is req
        assert resp.status_code == 201
        assert resp.reason == "Created Here"
        assert resp.http_version == "HTTP/1.1"
        assert resp.content_length == 2
        assert resp.uncompressed is False
        assert resp.closed is False
        resp.read()
    assert resp.closed is True


# -- the connection goes back to the pool when the body ends --------------------------------------


def test_connection_is_idle_once_the_read_returning_the_last_byte_returns(transport, server):
    srv = server(scripted(respond(200, b"0123456789")))
    resp = send(transport, srv.url())
    assert idle_active(transport) == (0, 1)
    assert resp.read(4) == b"0123"
    assert idle_active(transport) == (0, 1)
    assert resp.read(6) == b"456789"
    assert idle_active(transport) == (1, 0)
    resp.close()
    assert idle_active(transport) == (1, 0)


def test_connection_is_idle_once_a_full_read_returns(transport, server):
    srv = server(scripted(respond(200, b"x" * 200000)))
    resp = send(transport, srv.url())
    assert idle_active(transport) == (0, 1)
    assert len(resp.read()) == 200000
    assert idle_active(transport) == (1, 0)
    resp.close()


def test_connection_is_idle_once_the_last_chunk_is_read(transport, server):
    srv = server(scripted(CHUNKED_HEAD + b"5\r\nhello\r\n0\r\n\r\n"))
    resp = send(transport, srv.url())
    assert idle_active(transport) == (0, 1)
    assert resp.read() == b"hello"
    assert idle_active(transport) == (1, 0)
    resp.close()


def test_empty_body_releases_the_connection_at_once(transport, server):
    srv = server(scripted(respond(204)))
    resp = send(transport, srv.url())
    assert idle_active(transport) == (1, 0)
    resp.close()


def test_close_before_the_end_closes_the_connection(transport, server):
    saw_close = threading.Event()

    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"a" * 10)
        if conn.wait_closed(WAIT):
            saw_close.set()

    srv = server(handler)
    resp = send(transport, srv.url())
    assert resp.read(5) == b"aaaaa"
    resp.close()
    assert resp.closed
    assert idle_active(transport) == (0, 0)
    assert saw_close.wait(WAIT), "the server must see the connection closed"


def test_close_without_reading_closes_the_connection(transport, server):
    saw_close = threading.Event()

    def handler(conn):
        conn.read_request()
        conn.send(CHUNKED_HEAD + b"3\r\nabc\r\n")
        if conn.wait_closed(WAIT):
            saw_close.set()

    srv = server(handler)
    with send(transport, srv.url()):
        pass
    assert idle_active(transport) == (0, 0)
    assert saw_close.wait(WAIT)


def test_reading_after_close_raises_response_closed(transport, server):
    srv = server(scripted(respond(200, b"data")))
    resp = send(transport, srv.url())
    resp.close()
    with pytest.raises(roundtrip.ResponseClosed):
        resp.read()
    with pytest.raises(roundtrip.ResponseClosed):
        resp.read(1)
    with pytest.raises(roundtrip.ResponseClosed):
        list(resp.iter_bytes())
    resp.close()  # closing twice is harmless


def test_reading_after_the_context_manager_raises_response_closed(transport, server):
    srv = server(scripted(respond(200, b"data")))
    with send(transport, srv.url()) as resp:
        pass
    assert resp.closed
    with pytest.raises(roundtrip.ResponseClosed):
        resp.read()


# -- broken bodies -----------------------------------------------------------------------------


def test_truncated_content_length_body_raises_incomplete_body(transport, server):
    srv = server(scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this", close=True))
    with send(transport, srv.url()) as resp:
        with pytest.raises(roundtrip.IncompleteBody):
            resp.read()
    assert idle_active(transport) == (0, 0)


def test_truncated_content_length_body_read_in_pieces_raises_incomplete_body(transport, server):
    srv = server(scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this", close=True))
    with send(transport, srv.url()) as resp:
        with pytest.raises(roundtrip.IncompleteBody):
            while resp.read(4):
                pass
    assert idle_active(transport) == (0, 0)


def test_truncated_chunked_body_raises_incomplete_body(transport, server):
    srv = server(scripted(CHUNKED_HEAD + b"5\r\nhello\r\n", close=True))
    with send(transport, srv.url()) as resp:
        with pytest.raises(roundtrip.IncompleteBody):
            resp.read()
    assert idle_active(transport) == (0, 0)


def test_chunked_body_cut_inside_a_chunk_raises_incomplete_body(transport, server):
    srv = server(scripted(CHUNKED_HEAD + b"a\r\nhel", close=True))
    with send(transport, srv.url()) as resp:
        with pytest.raises(roundtrip.IncompleteBody):
            resp.read()


def test_incomplete_body_is_a_protocol_error():
    assert issubclass(roundtrip.IncompleteBody, roundtrip.ProtocolError)


def test_malformed_chunk_size_raises_protocol_error(transport, server):
    srv = server(scripted(CHUNKED_HEAD + b"zz\r\nhello\r\n0\r\n\r\n"))
    with send(transport, srv.url()) as resp:
        with pytest.raises(roundtrip.ProtocolError):
            resp.read()
    assert idle_active(transport) == (0, 0)


@pytest.mark.parametrize(
    "status_line",
    [b"HTTP/1.1 abc OK", b"SMTP ready", b"HTTP/1.1", b"HTTP/x.y 200 OK", b"HTTP/1.1 2000 OK"],
)
def test_malformed_status_line_raises_protocol_error(transport, server, status_line):
    srv = server(scripted(status_line + b"\r\nContent-Length: 0\r\n\r\n"))
    with pytest.raises(roundtrip.ProtocolError):
        send(transport, srv.url())
    assert idle_active(transport) == (0, 0)


@pytest.mark.parametrize(
    "fields",
    [b"Content-Length: 5\r\nContent-Length: 6", b"Content-Length: -1", b"Content-Length: 5x"],
    ids=["conflicting", "negative", "not-a-number"],
)
def test_bad_content_length_raises_protocol_error(transport, server, fields):
    srv = server(scripted(b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n\r\nhello"))
    with pytest.raises(roundtrip.ProtocolError):
        with send(transport, srv.url()) as resp:
            resp.read()
    assert idle_active(transport) == (0, 0)


def test_bytes_after_the_body_keep_the_connection_out_of_the_pool(transport, server):
    extra = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale"
    srv = server([scripted(respond(200, b"abc") + extra), keep_alive_handler(b"fresh")])
    with send(transport, srv.url()) as resp:
        assert resp.read() == b"abc"
    with send(transport, srv.url()) as resp:
        assert resp.read() == b"fresh"
    assert srv.accepted == 2


def test_until_close_body_read_in_pieces(transport, server):
    srv = server(scripted(b"HTTP/1.0 200 OK\r\n\r\n0123456789", close=True))
    with send(transport, srv.url()) as resp:
        pieces = []
        while True:
            piece = resp.read(3)
            if not piece:
                break
            assert len(piece) <= 3
            pieces.append(piece)
    assert b"".join(pieces) == b"0123456789"


def test_head_cut_short_raises_protocol_error(transport, server):
    srv = server(scripted(b"HTTP/1.1 200 OK\r\nContent-Le", close=True))
    with pytest.raises(roundtrip.ProtocolError):
        send(transport, srv.url())


def test_status_without_reason_is_accepted(transport, server):
    srv = server(scripted(b"HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok"))
    with send(transport, srv.url()) as resp:
        assert resp.status_code == 200
        assert resp.reason == ""
        assert resp.read() == b"ok"


def test_error_statuses_are_normal_responses(transport, server):
    srv = server(scripted(respond(503, b"down", reason="Service Unavailable")))
    with send(transport, srv.url()) as resp:
        assert resp.status_code == 503
        assert resp.reason == "Service Unavailable"
        assert resp.read() == b"down"


# -- Response built by hand --------------------------------------------------------------------


def test_response_by_hand_with_bytes():
    req = roundtrip.Request("GET", "http://example.com/")
    resp = roundtrip.Response(200, headers={"X": "1"}, body=b"hand made", request=req)
    assert (resp.status_code, resp.reason, resp.http_version) == (200, "OK", "HTTP/1.1")
    assert resp.headers["x"] == "1"
    assert resp.request is req
    assert resp.content_length == 9
    assert resp.read(4) == b"hand"
    assert resp.read() == b" made"
    assert resp.read() == b""


def test_response_by_hand_defaults():
    resp = roundtrip.Response(404)
    assert resp.reason == "Not Found"
    assert resp.read() == b""
    assert isinstance(resp.headers, roundtrip.Headers) and len(resp.headers) == 0
    assert isinstance(resp.trailers, roundtrip.Headers)
    assert resp.request is None
    assert resp.uncompressed is False


def test_response_by_hand_with_reason_and_version():
    resp = roundtrip.Response(299, reason="Custom", http_version="HTTP/1.0")
    assert (resp.reason, resp.http_version) == ("Custom", "HTTP/1.0")


def test_response_by_hand_with_a_file():
    resp = roundtrip.Response(200, body=io.BytesIO(b"from a file"))
    assert resp.read(4) == b"from"
    assert resp.read() == b" a file"
    assert resp.read() == b""


def test_response_by_hand_with_an_iterable():
    resp = roundtrip.Response(200, body=iter([b"ab", b"cde", b"f"]))
    assert resp.content_length is None
    assert resp.read(3) == b"abc"
    assert resp.read(1) == b"d"
    assert resp.read() == b"ef"
    assert resp.read() == b""


def test_response_by_hand_iter_bytes_and_close():
    with roundtrip.Response(200, body=[b"x" * 10, b"y" * 10]) as resp:
        assert b"".join(resp.iter_bytes(7)) == b"x" * 10 + b"y" * 10
    assert resp.closed
    with pytest.raises(roundtrip.ResponseClosed):
        resp.read()


def test_chunked_framing_drops_a_content_length_that_came_with_it(transport, server):
    # RFC 9112 §6.3: Transfer-Encoding overrides Content-Length; Go's fixLength deletes the
    # header so that nobody forwards a length that does not describe the body.
    def handler(conn):
        for _ in conn.requests():
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\nX-Kept: yes\r\n\r\n5\r\nhello\r\n0\r\n\r\n")

    srv = server(handler)
    with transport.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        assert resp.read() == b"hello"
        assert "Content-Length" not in resp.headers
        assert resp.content_length is None
        assert resp.headers.get_all("transfer-encoding") == ["chunked"]
        assert resp.headers["x-kept"] == "yes"
