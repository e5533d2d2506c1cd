"""Transparent gzip (``disable_compression``; Go's ``gzipReader``)."""

from __future__ import annotations

import gzip
import tracemalloc

import pytest

import roundtrip
from roundtrip._response_body import GzipBody
from roundtrip._errors import ProtocolError

from servers import respond

TEXT = b"roundtrip " * 5000


def _gzip_server(server, payload=None, headers=None):
    payload = gzip.compress(TEXT) if payload is None else payload

    def handler(conn):
        for request in conn.requests():
            wants_gzip = "gzip" in (request.header("accept-encoding") or "")
            fields = [("Content-Encoding", "gzip")] if wants_gzip else []
            conn.send(respond(200, payload if wants_gzip else TEXT, fields + list(headers or [])))

    return server(handler)


def test_gzip_is_requested_and_decoded_transparently(transport, server):
    srv = _gzip_server(server)
    with transport.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        assert resp.uncompressed is True
        assert "content-encoding" not in resp.headers and "content-length" not in resp.headers
        assert resp.content_length is None
        assert resp.read() == TEXT
    assert srv.received[0].header("accept-encoding") == "gzip"
    assert transport.pool_stats()["total"]["idle"] == 1


def test_read_amt_never_returns_more_than_asked(transport, server):
    srv = _gzip_server(server)
    with transport.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        pieces = []
        while True:
            piece = resp.read(1000)
            if not piece:
                break
            assert len(piece) <= 1000
            pieces.append(piece)
    assert b"".join(pieces) == TEXT


def test_caller_accept_encoding_means_no_decoding(transport, server):
    srv = _gzip_server(server)
    request = roundtrip.Request("GET", srv.url("/"), headers={"Accept-Encoding": "gzip"})
    with transport.round_trip(request) as resp:
        assert resp.uncompressed is False
        assert resp.headers["content-encoding"] == "gzip"
        assert gzip.decompress(resp.read()) == TEXT


@pytest.mark.parametrize("method, headers", [("HEAD", {}), ("GET", {"Range": "bytes=0-9"})])
def test_no_gzip_for_head_or_range(transport, server, method, headers):
    srv = _gzip_server(server)
    with transport.round_trip(roundtrip.Request(method, srv.url("/"), headers=headers)) as resp:
        resp.read()
    assert srv.received[0].header("accept-encoding") is None


def test_disable_compression_sends_no_accept_encoding(make_transport, server):
    transport = make_transport(disable_compression=True)
    srv = _gzip_server(server)
    with transport.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        assert resp.read() == TEXT
    assert srv.received[0].header("accept-encoding") is None


def test_truncated_gzip_is_a_protocol_error(transport, server):
    srv = _gzip_server(server, payload=gzip.compress(TEXT)[:-12])
    with transport.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        with pytest.raises(roundtrip.ProtocolError):
            resp.read()
    # The HTTP framing was whole, so the connection is in step and kept (as in Go).
    assert transport.pool_stats()["total"]["idle"] == 1


def test_corrupt_gzip_is_a_protocol_error(transport, server):
    srv = _gzip_server(server, payload=b"\x1f\x8b\x08\x00" + b"garbage" * 10)
    with transport.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        with pytest.raises(roundtrip.ProtocolError):
            resp.read()


@pytest.mark.parametrize("members", [1, 64], ids=["one-member", "64-members"])
def test_gzip_bomb_is_inflated_in_bounded_steps(transport, server, members):
    # 64 MiB of zeros in ~64 KiB, as one member or as 64 of 1 MiB each.
    bomb = gzip.compress(b"\0" * (64 << 20)) if members == 1 else gzip.compress(b"\0" * (1 << 20)) * 64
    srv = _gzip_server(server, payload=bomb)
    with transport.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        pieces = [resp.read(65536) for _ in range(40)]  # 2.5 MiB: past two member ends
        assert all(0 < len(piece) <= 65536 and not piece.strip(b"\0") for piece in pieces)
        resp.close()


# -- several members (RFC 1952 §2.2: a gzip file is a series of members) -----------------------


def _members(count: int) -> list[bytes]:
    """``count`` member payloads: empty, one byte, short lines and a few larger texts."""
    plain = []
    for i in range(count):
        kind = i % 4
        plain.append(b"" if kind == 0 else b"%d" % (i % 10) if kind == 1 else b"line %d\n" % i if kind == 2 else TEXT[: 500 + i])
    return plain


def _served(server, payload: bytes, chunked: bool = False, piece: int = 0):
    """A server answering every request with ``payload`` as a gzip-encoded body, framed by
    Content-Length or chunked, sent whole or ``piece`` bytes at a time."""

    def handler(conn):
        for _ in conn.requests():
            if chunked:
                body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in _split(payload, piece or 65536)) + b"0\r\n\r\n"
                head = respond(200, b"", [("Content-Encoding", "gzip"), ("Transfer-Encoding", "chunked")])
            else:
                body, head = payload, respond(200, b"", [("Content-Encoding", "gzip"), ("Content-Length", str(len(payload)))])
            conn.send(head)
            for part in _split(body, piece or len(body) or 1):
                conn.send(part)

    return server(handler)


def _split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _read_all(resp, amt) -> bytes:
    pieces = []
    for _ in range(10**6):
        piece = resp.read(amt)
        if not piece:
            return b"".join(pieces)
        assert amt is None or len(piece) <= amt
        pieces.append(piece)
    raise AssertionError("the body did not end")


def _read_until_error(resp, amt):
    """The bytes read before the read that raised, and what it raised."""
    pieces = []
    for _ in range(10**6):
        try:
            piece = resp.read(amt)
        except roundtrip.ProtocolError as exc:
            return b"".join(pieces), exc
        assert piece, "the body ended without an error"
        pieces.append(piece)
    raise AssertionError("the body did not end")


@pytest.mark.parametrize("count", [1, 2, 100, 1000])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_every_gzip_member_is_decoded(transport, server, count, chunked):
    plain = _members(count)
    payload = b"".join(gzip.compress(p) for p in plain)
    srv = _served(server, payload, chunked=chunked)
    with transport.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        assert resp.read() == b"".join(plain)
    with transport.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        assert _read_all(resp, 7) == b"".join(plain)
    assert transport.pool_stats()["total"]["idle"] == 1


@pytest.mark.parametrize("amt", [None, 1, 5, 4096])
def test_gzip_members_sent_in_small_pieces_are_all_decoded(transport, server, amt):
    plain = _members(40)
    payload = b"".join(gzip.compress(p) for p in plain)
    srv = _served(server, payload, chunked=True, piece=3)
    with transport.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        assert _read_all(resp, amt) == b"".join(plain)


def test_an_empty_gzip_body_reads_as_empty(transport, server):
    # Go's gzip.NewReader reports io.EOF on an empty body, and its transport reads that as the end.
    srv = _served(server, b"", chunked=True)
    with transport.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        assert resp.read() == b""
    assert transport.pool_stats()["total"]["idle"] == 1


@pytest.mark.parametrize("garbage", [b"trailing garbage after the member", b"\0" * 16])
def test_bytes_after_a_gzip_member_that_are_no_member_are_a_protocol_error(transport, server, garbage):
    # Go's gzip.Reader reads a header after each member; anything else is ErrHeader.
    first = TEXT[:3000]
    srv = _served(server, gzip.compress(first) + gzip.compress(b"x") + garbage)
    with transport.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        with pytest.raises(roundtrip.ProtocolError, match="invalid gzip body"):
            resp.read()
    with transport.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        data, error = _read_until_error(resp, 1000)
        assert data == first + b"x"  # what decoded cleanly comes first
        assert "invalid gzip body" in str(error)
        with pytest.raises(roundtrip.ProtocolError, match="invalid gzip body"):
            resp.read(10)  # and the error stays


@pytest.mark.parametrize("cut", [1, 8, 12, 30], ids=lambda cut: f"last-{cut}-bytes-missing")
def test_truncated_last_gzip_member_is_a_protocol_error(transport, server, cut):
    plain = _members(50)
    payload = b"".join(gzip.compress(p) for p in plain)
    srv = _served(server, payload[:-cut])
    with transport.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        with pytest.raises(roundtrip.ProtocolError, match="^gzip body is truncated$"):
            resp.read()


def test_half_a_gzip_header_after_a_member_is_truncated(transport, server):
    srv = _served(server, gzip.compress(TEXT) + gzip.compress(b"next")[:5])
    with transport.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        data, error = _read_until_error(resp, 1000)
        assert data == TEXT and str(error) == "gzip body is truncated"


# -- GzipBody alone, over a body that hands out exactly the pieces a test chooses ---------------


class _Pieces:
    """Stands for a wire body: each read returns the next scripted piece (at most what was asked)."""

    conn_reused = False
    bytes_written = 0

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = [p for p in pieces if p]
        self.closed = False

    def read(self, amt: int) -> bytes:
        if not self.pieces:
            return b""
        piece = self.pieces[0][:amt]
        self.pieces[0] = self.pieces[0][amt:]
        if not self.pieces[0]:
            self.pieces.pop(0)
        return piece

    def close(self) -> None:
        self.closed = True


def _decode(pieces: list[bytes], amt) -> bytes:
    body = GzipBody(_Pieces(pieces))
    return _read_all(body, amt)


@pytest.mark.once(impl="py")  # GzipBody is plain Python under both implementations
def test_gzip_members_split_at_every_offset_are_decoded():
    plain = [TEXT[:40], b"", b"z", TEXT[:300]]
    payload = b"".join(gzip.compress(p) for p in plain)
    for at in range(len(payload) + 1):
        for amt in (None, 1, 64):
            assert _decode([payload[:at], payload[at:]], amt) == b"".join(plain), (at, amt)


@pytest.mark.once(impl="py")
@pytest.mark.parametrize("count", [1, 2, 100, 1000])
def test_gzip_members_read_one_byte_at_a_time_are_decoded(count):
    plain = _members(count)
    payload = b"".join(gzip.compress(p) for p in plain)
    assert _decode(_split(payload, 1), None) == b"".join(plain)
    assert _decode(_split(payload, 1), 3) == b"".join(plain)
    assert _decode([payload], 2) == b"".join(plain)


@pytest.mark.once(impl="py")
def test_gzip_errors_alone():
    member = gzip.compress(TEXT)
    body = GzipBody(_Pieces(_split(member + member[:-4], 1)))
    data, error = _read_until_error(body, 100)
    assert data == TEXT + TEXT and str(error) == "gzip body is truncated"
    with pytest.raises(ProtocolError, match="^gzip body is truncated$"):
        body.read(None)
    inner = _Pieces([member, b"not gzip at all, not at all"])
    with pytest.raises(ProtocolError, match="invalid gzip body"):
        GzipBody(inner).read(None)
    assert inner.closed
    assert _decode([], None) == b""


@pytest.mark.once(impl="py")
def test_gzip_bomb_in_members_costs_no_more_than_the_reads_ask():
    body = GzipBody(_Pieces([gzip.compress(b"\0" * (1 << 20)) * 256]))  # 256 MiB
    tracemalloc.start()
    try:
        for _ in range(64):
            assert len(body.read(65536)) == 65536
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak
