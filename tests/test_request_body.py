"""``Request.body``: how each kind of body is framed on the wire, and what roundtrip does
(and does not do) to the caller's body objects."""

from __future__ import annotations

import io

import pytest

import roundtrip

from servers import keep_alive_handler


@pytest.fixture
def srv(server):
    return server(keep_alive_handler(b"ok"))


def send(transport, srv, method, body=None, headers=None):
    """Round trip and return the request as the server received it."""
    with transport.round_trip(roundtrip.Request(method, srv.url("/upload"), headers=headers, body=body)) as resp:
        assert resp.status_code == 200
        assert resp.read() == b"ok"
    return srv.received[-1]


def chunked(*pieces: bytes) -> bytes:
    """RFC 9112 §7.1 framing: size in hex, CRLF, data, CRLF; then the last chunk."""
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


# -- bytes-like --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_bytes_like_body_is_sent_with_content_length(transport, srv, kind):
    data = b"hello, body"
    received = send(transport, srv, "POST", body=kind(data))
    assert received.header("Content-Length") == str(len(data))
    assert received.header("Transfer-Encoding") is None
    assert received.body == data


def test_memoryview_of_non_byte_items_is_sent_by_bytes(transport, srv):
    import array

    data = array.array("I", [1, 2, 3])
    received = send(transport, srv, "PUT", body=memoryview(data))
    assert received.header("Content-Length") == "12"
    assert received.body == data.tobytes()


def test_large_bytes_body_arrives_whole(transport, srv):
    data = bytes(range(256)) * 1024  # 256 KiB, more than one send
    received = send(transport, srv, "POST", body=data)
    assert received.header("Content-Length") == str(len(data))
    assert received.body == data


def test_empty_bytes_body_on_post_sends_content_length_zero(transport, srv):
    received = send(transport, srv, "POST", body=b"")
    assert received.header("Content-Length") == "0"
    assert received.body == b""


# -- files -------------------------------------------------------------------------------------


def test_bytesio_body_is_sent_from_its_position_with_content_length(transport, srv):
    body = io.BytesIO(b"skip-this|send-this")
    body.seek(10)
    received = send(transport, srv, "POST", body=body)
    assert received.header("Content-Length") == "9"
    assert received.header("Transfer-Encoding") is None
    assert received.body == b"send-this"
    assert not body.closed


def test_file_at_its_end_sends_content_length_zero(transport, srv):
    body = io.BytesIO(b"all read")
    body.read()
    received = send(transport, srv, "POST", body=body)
    assert received.header("Content-Length") == "0"
    assert received.body == b""


def test_real_file_body_is_sent_from_its_position_with_content_length(transport, srv, tmp_path):
    path = tmp_path / "upload.bin"
    data = bytes(range(256)) * 400  # larger than one 64 KiB read
    path.write_bytes(b"HEADER" + data)
    with open(path, "rb") as body:
        body.read(6)
        received = send(transport, srv, "PUT", body=body)
        assert not body.closed
    assert received.header("Content-Length") == str(len(data))
    assert received.body == data


def test_unsized_file_like_body_is_chunked(transport, srv):
    class Stream:
        """Has read() but no size: neither fileno nor seek."""

        def __init__(self) -> None:
            self.parts = [b"first", b"second"]

        def read(self, amt=-1):
            return self.parts.pop(0) if self.parts else b""

    received = send(transport, srv, "POST", body=Stream())
    assert received.header("Transfer-Encoding") == "chunked"
    assert received.header("Content-Length") is None
    assert received.body == b"firstsecond"


def test_body_file_is_never_closed(transport, srv, tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    files = [io.BytesIO(b"abc"), open(path, "rb")]
    try:
        for body in files:
            send(transport, srv, "POST", body=body)
            assert not body.closed
            body.seek(0)
            assert body.read() == b"abc"
    finally:
        files[1].close()


# -- iterables ---------------------------------------------------------------------------------


def test_generator_body_is_chunked_with_exact_framing(transport, srv):
    def gen():
        yield b"abc"
        yield b"x" * 300
        yield b"\r\n0\r\n"

    received = send(transport, srv, "POST", body=gen())
    assert received.header("Transfer-Encoding") == "chunked"
    assert received.header("Content-Length") is None
    assert received.raw_body == chunked(b"abc", b"x" * 300, b"\r\n0\r\n")
    assert received.body == b"abc" + b"x" * 300 + b"\r\n0\r\n"


def test_empty_chunks_of_an_iterable_do_not_end_the_body(transport, srv):
    received = send(transport, srv, "POST", body=[b"one", b"", b"two"])
    assert received.raw_body == chunked(b"one", b"two")


def test_empty_iterable_sends_only_the_last_chunk(transport, srv):
    received = send(transport, srv, "POST", body=iter([]))
    assert received.header("Transfer-Encoding") == "chunked"
    assert received.raw_body == b"0\r\n\r\n"


def test_list_of_bytes_like_pieces_is_chunked(transport, srv):
    received = send(transport, srv, "PUT", body=[b"a", bytearray(b"bc"), memoryview(b"def")])
    assert received.raw_body == chunked(b"a", b"bc", b"def")


def test_keep_alive_continues_after_a_chunked_body(transport, srv):
    send(transport, srv, "POST", body=iter([b"one"]))
    send(transport, srv, "POST", body=iter([b"two"]))
    assert srv.accepted == 1
    assert [r.body for r in srv.received] == [b"one", b"two"]


def test_requests_to_one_url_each_go_with_their_own_method_framing_and_fields(transport, srv):
    # A Transport remembers how it prepared a request without header fields; the next one to
    # the same URL gets the head of its own method and body, never the one before it.
    sent = [
        ("POST", b"abc", None),
        ("POST", b"hello", None),
        ("POST", None, None),
        ("PUT", b"abc", None),
        ("POST", b"abc", {"X-Trace": "1"}),
        ("POST", iter([b"xyz"]), None),
        ("GET", None, None),
        ("POST", b"abc", None),
    ]
    for method, body, headers in sent:
        received = send(transport, srv, method, body=body, headers=headers)
        assert received.method == method
        assert received.header("X-Trace") == (headers or {}).get("X-Trace")
        if isinstance(body, bytes):
            assert (received.header("Content-Length"), received.body) == (str(len(body)), body)
        elif body is None:
            assert received.header("Content-Length") == (None if method == "GET" else "0")
        else:
            assert received.header("Transfer-Encoding") == "chunked" and received.body == b"xyz"
    assert srv.accepted == 1


# -- no body -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_body_expecting_methods_without_body_send_content_length_zero(transport, srv, method):
    received = send(transport, srv, method)
    assert received.header("Content-Length") == "0"
    assert received.header("Transfer-Encoding") is None


@pytest.mark.parametrize("method", ["GET", "DELETE", "OPTIONS"])
def test_other_methods_without_body_send_no_framing(transport, srv, method):
    received = send(transport, srv, method)
    assert received.header("Content-Length") is None
    assert received.header("Transfer-Encoding") is None


# -- get_body ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_get_body_is_set_for_bytes_like_bodies(kind):
    body = kind(b"payload")
    req = roundtrip.Request("POST", "http://example.com/", body=body)
    assert req.get_body is not None
    assert bytes(req.get_body()) == b"payload"


def test_get_body_rewinds_a_seekable_file_to_its_starting_position():
    body = io.BytesIO(b"0123456789")
    body.seek(4)
    req = roundtrip.Request("POST", "http://example.com/", body=body)
    assert req.get_body is not None
    body.read()
    fresh = req.get_body()
    assert fresh.read() == b"456789"


def test_get_body_is_not_set_for_a_generator():
    req = roundtrip.Request("POST", "http://example.com/", body=(b for b in [b"x"]))
    assert req.get_body is None


def test_get_body_given_by_the_caller_is_kept():
    def fresh():
        return b"again"

    req = roundtrip.Request("POST", "http://example.com/", body=iter([b"x"]), get_body=fresh)
    assert req.get_body is fresh


def test_request_keeps_its_arguments_as_attributes():
    body = b"x"
    req = roundtrip.Request("PATCH", "http://example.com/a", {"A": "1"}, body)
    assert (req.method, req.url, req.body) == ("PATCH", "http://example.com/a", body)
    assert req.headers["a"] == "1"
    assert req.context is None and req.trace is None


# -- refused bodies ----------------------------------------------------------------------------


def test_str_body_is_refused(make_transport, counting_dial):
    t = make_transport(dial=counting_dial)
    with pytest.raises(roundtrip.InvalidRequest):
        t.round_trip(roundtrip.Request("POST", "http://127.0.0.1:9/", body="not bytes"))
    assert counting_dial.calls == []
