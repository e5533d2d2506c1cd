"""Against a real nginx: exact bodies, uploads, error statuses, transparent gzip and keep-alive
as nginx itself logs it."""

from __future__ import annotations

import gzip
import time

import pytest

import roundtrip

from helpers import fetch

GZ_TEXT = b"compress me please " * 2000


def log_mark(nginx):
    """Where the access log stands now; ``logged`` looks only at lines written after it."""
    return len(nginx.access_log())


def logged(nginx, mark, uri, count):
    """The first ``count`` access-log lines for ``uri`` written after ``mark``. nginx writes a
    line once it has sent the response, so the lines are polled for (up to a deadline)."""
    deadline = time.monotonic() + 5.0
    while True:
        lines = [line for line in nginx.access_log()[mark:] if line[3] == uri]
        if len(lines) >= count or time.monotonic() > deadline:
            assert len(lines) == count, lines
            return lines
        time.sleep(0.01)


@pytest.mark.parametrize("name", ["small", "64k", "1m"])
def test_static_files_arrive_exactly(transport, nginx, name):
    resp, data = fetch(transport, nginx.url(f"/{name}"))
    assert resp.status_code == 200
    assert data == nginx.files[name]
    assert resp.content_length == len(nginx.files[name])
    assert resp.uncompressed is False


def test_large_file_read_in_pieces(transport, nginx):
    with transport.round_trip(roundtrip.Request("GET", nginx.url("/1m"))) as resp:
        pieces = list(resp.iter_bytes(10000))
    assert b"".join(pieces) == nginx.files["1m"]
    assert max(len(p) for p in pieces) <= 10000


def test_head_gives_headers_without_body(transport, nginx):
    resp, data = fetch(transport, nginx.url("/64k"), "HEAD")
    assert resp.status_code == 200
    assert data == b""
    assert resp.headers["content-length"] == str(len(nginx.files["64k"]))
    resp, data = fetch(transport, nginx.url("/small"))
    assert data == nginx.files["small"]


def test_post_1kib(transport, nginx):
    mark = log_mark(nginx)
    body = bytes(range(256)) * 4
    resp, data = fetch(transport, nginx.url("/post"), "POST", body=body)
    assert (resp.status_code, data) == (200, b"posted\n")
    # nginx discards the body of /post; a request after it on the same connection parses only
    # if exactly the 1 KiB announced was sent.
    resp, data = fetch(transport, nginx.url("/small"))
    assert data == nginx.files["small"]
    (post,) = logged(nginx, mark, "/post", 1)
    (after,) = logged(nginx, mark, "/small", 1)
    assert post[2] == "POST" and post[4] == "200"
    assert after[0] == post[0] and int(after[1]) == int(post[1]) + 1


def test_chunked_post(transport, nginx):
    resp, data = fetch(transport, nginx.url("/post"), "POST", body=iter([b"a" * 100, b"b" * 2000]))
    assert (resp.status_code, data) == (200, b"posted\n")
    resp, data = fetch(transport, nginx.url("/64k"))
    assert data == nginx.files["64k"]


def test_404_is_a_normal_response(transport, nginx):
    resp, data = fetch(transport, nginx.url("/notfound"))
    assert resp.status_code == 404
    assert resp.reason == "Not Found"
    assert b"404" in data
    resp, data = fetch(transport, nginx.url("/no-such-file"))
    assert resp.status_code == 404


def test_gzip_is_requested_and_decoded_transparently(transport, nginx):
    resp, data = fetch(transport, nginx.url("/gz/text"))
    assert data == GZ_TEXT
    assert resp.uncompressed is True
    assert "content-encoding" not in resp.headers
    assert "content-length" not in resp.headers
    assert resp.content_length is None


def test_gzip_body_read_in_small_pieces(transport, nginx):
    with transport.round_trip(roundtrip.Request("GET", nginx.url("/gz/text"))) as resp:
        pieces = list(resp.iter_bytes(1000))
        assert resp.uncompressed is True
    assert b"".join(pieces) == GZ_TEXT
    assert max(len(p) for p in pieces) <= 1000


def test_gzip_connection_is_reused(transport, nginx):
    mark = log_mark(nginx)
    for _ in range(3):
        resp, data = fetch(transport, nginx.url("/gz/text"))
        assert data == GZ_TEXT
    lines = logged(nginx, mark, "/gz/text", 3)
    assert len({line[0] for line in lines}) == 1


def test_default_accept_encoding_is_gzip(transport, nginx):
    resp, data = fetch(transport, nginx.url("/echo-headers"))
    assert data.rstrip(b"\n").split(b"|")[1] == b"gzip"


def test_accept_encoding_is_not_added_when_the_caller_sets_one(transport, nginx):
    resp, data = fetch(transport, nginx.url("/echo-headers"), headers={"Accept-Encoding": "identity"})
    assert data.rstrip(b"\n").split(b"|")[1] == b"identity"


def test_caller_asking_for_gzip_gets_the_raw_gzip_body(transport, nginx):
    resp, data = fetch(transport, nginx.url("/gz/text"), headers={"Accept-Encoding": "gzip"})
    assert resp.headers["content-encoding"] == "gzip"
    assert resp.uncompressed is False
    assert gzip.decompress(data) == GZ_TEXT


def test_range_request_gets_no_accept_encoding(transport, nginx):
    resp, data = fetch(transport, nginx.url("/echo-headers"), headers={"Range": "bytes=0-"})
    assert data.rstrip(b"\n").split(b"|")[1] == b""


def test_head_request_gets_no_accept_encoding(transport, nginx):
    resp, _ = fetch(transport, nginx.url("/gz/text"), "HEAD")
    assert "content-encoding" not in resp.headers
    assert resp.uncompressed is False


def test_disable_compression_sends_no_accept_encoding(make_transport, nginx):
    t = make_transport(disable_compression=True)
    resp, data = fetch(t, nginx.url("/echo-headers"))
    assert data.rstrip(b"\n").split(b"|")[1] == b""
    resp, data = fetch(t, nginx.url("/gz/text"))
    assert data == GZ_TEXT
    assert resp.uncompressed is False


def test_user_agent_header_set_by_the_caller_is_sent_alone(transport, nginx):
    resp, data = fetch(transport, nginx.url("/echo-headers"), headers={"User-Agent": "tester/1"})
    assert data.split(b"|")[0] == b"tester/1"


def test_keep_alive_in_the_access_log(transport, nginx):
    mark = log_mark(nginx)
    for _ in range(5):
        resp, data = fetch(transport, nginx.url("/small"))
        assert data == nginx.files["small"]
    lines = logged(nginx, mark, "/small", 5)
    assert len({line[0] for line in lines}) == 1, "one nginx connection for all five"
    numbers = [int(line[1]) for line in lines]
    assert numbers == list(range(numbers[0], numbers[0] + 5))


def test_disable_keep_alives_uses_a_new_nginx_connection_each_time(make_transport, nginx):
    mark = log_mark(nginx)
    t = make_transport(disable_keep_alives=True)
    for _ in range(3):
        resp, data = fetch(t, nginx.url("/64k"))
        assert data == nginx.files["64k"]
    lines = logged(nginx, mark, "/64k", 3)
    assert len({line[0] for line in lines}) == 3
    assert [line[1] for line in lines] == ["1", "1", "1"]
    assert t.pool_stats()["total"]["idle"] == 0
