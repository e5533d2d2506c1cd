"""Transparent gzip (SPEC ``disable_compression``; Go's ``gzipReader``)."""

from __future__ import annotations

import gzip
import zlib

import pytest

import roundtrip

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


def test_gzip_bomb_is_inflated_in_bounded_steps(transport, server):
    bomb = gzip.compress(b"\0" * (64 << 20))  # 64 MiB of zeros in ~64 KiB
    srv = _gzip_server(server, payload=bomb)
    with transport.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        first = resp.read(65536)
        assert len(first) == 65536
        resp.close()


def test_concatenated_gzip_members_are_all_decoded(transport, server):
    srv = _gzip_server(server, payload=gzip.compress(TEXT[:100]) + gzip.compress(TEXT[100:]))
    with transport.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        assert resp.read() == TEXT
    assert zlib  # the decoder is zlib's gzip mode
