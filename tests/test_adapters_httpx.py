"""``roundtrip.adapters.HTTPXTransport`` under ``httpx.Client``: requests go out as httpx built
them, responses stream, per-request timeouts hold per phase, errors become httpx's."""

from __future__ import annotations

import gzip
import socket
import subprocess
import sys
import threading
import time
from typing import Iterator

import httpx
import pytest

import roundtrip
from roundtrip.adapters import HTTPXTransport

from servers import IO_TIMEOUT, body_cut_short, close_without_answer, keep_alive_handler, malformed_status, respond, silent

FAST = httpx.Timeout(5.0)  # generous everywhere; tests narrow the phase they exercise


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(transport=HTTPXTransport(), timeout=FAST) as c:
        yield c


# -- requests and responses ----------------------------------------------------------------------


def test_get_returns_status_reason_headers_and_body(client, server):
    srv = server(keep_alive_handler(b"hello", [("Content-Type", "text/plain; charset=utf-8"), ("X-Twice", "1"), ("X-Twice", "2")]))
    r = client.get(srv.url("/x?q=1"))
    assert (r.status_code, r.reason_phrase, r.http_version) == (200, "OK", "HTTP/1.1")
    assert r.text == "hello"
    assert r.headers.get_list("x-twice") == ["1", "2"]
    assert srv.received[0].request_line == "GET /x?q=1 HTTP/1.1"


def test_request_headers_keep_httpx_fields_and_the_callers_spelling(client, server):
    srv = server(keep_alive_handler())
    client.get(srv.url("/"), headers={"X-MiXeD-CaSe": "v1"})
    received = srv.received[0]
    assert "X-MiXeD-CaSe" in received.header_names()
    assert received.header("x-mixed-case") == "v1"
    # httpx's own fields go out unchanged, so roundtrip adds no User-Agent or gzip of its own.
    assert received.header("user-agent").startswith("python-httpx/")
    assert "gzip" in received.header("accept-encoding")
    assert [name.lower() for name in received.header_names()].count("accept-encoding") == 1


def test_post_bytes_sends_content_length(client, server):
    srv = server(keep_alive_handler(b"done"))
    r = client.post(srv.url("/p"), content=b"x" * 100_000)
    assert r.text == "done"
    received = srv.received[0]
    assert received.header("content-length") == "100000"
    assert received.body == b"x" * 100_000


def test_post_from_a_generator_is_chunked(client, server):
    srv = server(keep_alive_handler())

    def pieces():
        yield b"abc"
        yield b"defg"

    client.post(srv.url("/p"), content=pieces())
    received = srv.received[0]
    assert received.header("transfer-encoding") == "chunked"
    assert received.body == b"abcdefg"


def test_json_and_form_bodies_arrive_as_httpx_encoded_them(client, server):
    srv = server(keep_alive_handler())
    client.post(srv.url("/j"), json={"a": 1})
    client.post(srv.url("/f"), data={"k": "v w"})
    assert srv.received[0].body == b'{"a":1}' and srv.received[0].header("content-type") == "application/json"
    assert srv.received[1].body == b"k=v+w"


def test_head_response_has_no_body(client, server):
    def handler(conn):
        for _ in conn.requests():
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")

    srv = server(handler)
    r = client.head(srv.url("/"))
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "1000"


def test_streamed_response_arrives_in_pieces(client, server):
    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b"one", b"two", b"three"):
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.send(b"0\r\n\r\n")
        conn.wait_closed()

    srv = server(handler)
    with client.stream("GET", srv.url("/")) as r:
        assert r.status_code == 200
        assert b"".join(r.iter_bytes()) == b"onetwothree"


def test_connection_is_reused_across_requests(server, make_transport):
    srv = server(keep_alive_handler(b"ok"))
    rt = make_transport()
    with httpx.Client(transport=HTTPXTransport(rt)) as c:
        for _ in range(3):
            assert c.get(srv.url("/")).text == "ok"
        with c.stream("GET", srv.url("/s")) as r:
            r.read()
        assert rt.pool_stats()["total"] == {"idle": 1, "active": 0, "dialing": 0, "waiting": 0}
    assert srv.accepted == 1


def test_closing_a_half_read_stream_closes_its_connection(server, make_transport):
    srv = server(keep_alive_handler(b"x" * 200_000))
    rt = make_transport()
    with httpx.Client(transport=HTTPXTransport(rt)) as c:
        with c.stream("GET", srv.url("/")) as r:
            next(r.iter_raw(1000))
        assert rt.pool_stats()["total"]["active"] == 0
        assert c.get(srv.url("/")).status_code == 200
    assert srv.accepted == 2


def test_gzip_is_decoded_by_httpx_not_by_roundtrip(client, nginx):
    r = client.get(nginx.url("/gz/text"))
    assert r.headers["content-encoding"] == "gzip"
    assert r.content == b"compress me please " * 2000
    assert r.num_bytes_downloaded < len(r.content)  # it came compressed


def test_nginx_get_and_post_share_one_connection(client, nginx):
    before = len(nginx.access_log())
    assert client.get(nginx.url("/small")).content == nginx.files["small"]
    assert client.post(nginx.url("/post"), content=b"y" * 4096).text == "posted\n"
    deadline = time.monotonic() + IO_TIMEOUT
    while len(nginx.access_log()) < before + 2 and time.monotonic() < deadline:
        time.sleep(0.01)  # nginx logs a request just after it has answered it
    log = nginx.access_log()[before:]
    assert [line[3] for line in log] == ["/small", "/post"]
    assert log[0][0] == log[1][0], "both requests must arrive on one connection"


def test_redirects_and_cookies_are_httpxs_business(server):
    def handler(conn):
        for request in conn.requests():
            if request.target == "/start":
                conn.send(respond(302, b"", [("Location", "/end"), ("Set-Cookie", "s=1; Path=/")], reason="Found"))
            else:
                conn.send(respond(200, (request.header("cookie") or "").encode()))

    srv = server(handler)
    with httpx.Client(transport=HTTPXTransport(), follow_redirects=True) as c:
        r = c.get(srv.url("/start"))
    assert (r.status_code, r.text, str(r.url)) == (200, "s=1", srv.url("/end"))
    assert srv.accepted == 1


def test_given_transport_is_shared_and_not_closed(server, make_transport):
    srv = server(keep_alive_handler())
    rt = make_transport()
    with httpx.Client(transport=HTTPXTransport(rt)) as c:
        c.get(srv.url("/"))
    with rt.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        assert resp.read() == b"ok"


def test_owned_transport_is_closed_with_the_client(server):
    srv = server(keep_alive_handler())
    adapter = HTTPXTransport()
    with httpx.Client(transport=adapter) as c:
        c.get(srv.url("/"))
    with pytest.raises(roundtrip.TransportClosed):
        adapter._transport.round_trip(roundtrip.Request("GET", srv.url("/")))


def test_owned_transport_never_gunzips(server):
    body = gzip.compress(b"zipped")

    def handler(conn):
        for _ in conn.requests():
            conn.send(respond(200, body, [("Content-Encoding", "gzip")]))

    srv = server(handler)
    with httpx.Client(transport=HTTPXTransport()) as c:
        del c.headers["accept-encoding"]  # even without the caller's Accept-Encoding
        r = c.get(srv.url("/"))
    assert srv.received[0].header("accept-encoding") is None
    assert r.headers["content-encoding"] == "gzip" and r.content == b"zipped"


# -- timeouts ------------------------------------------------------------------------------------


def test_silent_server_raises_read_timeout_quickly(client, server):
    srv = server(silent)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout) as info:
        client.get(srv.url("/"), timeout=httpx.Timeout(5.0, read=0.3))
    assert time.monotonic() - started < 2.0
    assert isinstance(info.value.__cause__, roundtrip.Cancelled)


def test_stalled_body_raises_read_timeout(client, server):
    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        conn.wait_closed()

    srv = server(handler)
    with client.stream("GET", srv.url("/"), timeout=httpx.Timeout(5.0, read=0.3)) as r:
        with pytest.raises(httpx.ReadTimeout):
            r.read()


def test_read_timeout_limits_each_read_not_the_whole_body(client, server):
    piece = b"x" * 65536

    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (4 * len(piece)))
        for _ in range(4):
            time.sleep(0.15)  # a slow but steady server: 0.6 s in all
            conn.send(piece)
        conn.wait_closed()

    srv = server(handler)
    r = client.get(srv.url("/"), timeout=httpx.Timeout(5.0, read=0.4))
    assert r.content == piece * 4


def test_stream_yields_each_chunk_as_it_arrives(client, server):
    first_seen = threading.Event()

    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n")
        first_seen.wait(1.0)  # the next event only after the client has seen the first
        conn.send(b"3\r\ntwo\r\n0\r\n\r\n")
        conn.wait_closed()

    srv = server(handler)
    with client.stream("GET", srv.url("/")) as r:
        pieces = []
        for piece in r.iter_raw():
            pieces.append(piece)
            first_seen.set()
    assert pieces == [b"one", b"two"]


def test_an_unread_stream_does_not_time_out(client, server):
    srv = server(keep_alive_handler(b"later"))
    with client.stream("GET", srv.url("/"), timeout=httpx.Timeout(5.0, read=0.1)) as r:
        time.sleep(0.3)  # the caller's own pause is not a read
        assert r.read() == b"later"


def test_connect_that_hangs_raises_connect_timeout(client, unreachable):
    host, port = unreachable
    started = time.monotonic()
    with pytest.raises(httpx.ConnectTimeout):
        client.get(f"http://{host}:{port}/", timeout=httpx.Timeout(5.0, connect=0.3))
    assert time.monotonic() - started < 2.0


def test_transport_connect_timeout_maps_to_connect_timeout(make_transport, unreachable):
    host, port = unreachable
    with httpx.Client(transport=HTTPXTransport(make_transport(connect_timeout=0.2)), timeout=None) as c:
        with pytest.raises(httpx.ConnectTimeout) as info:
            c.get(f"http://{host}:{port}/")
    assert isinstance(info.value.__cause__, roundtrip.ConnectTimeout)


def test_waiting_for_a_pool_slot_raises_pool_timeout(server, make_transport):
    srv = server(keep_alive_handler())
    rt = make_transport(max_conns_per_host=1)
    with httpx.Client(transport=HTTPXTransport(rt), timeout=FAST) as c:
        with c.stream("GET", srv.url("/")):  # holds the only connection
            with pytest.raises(httpx.PoolTimeout):
                c.get(srv.url("/"), timeout=httpx.Timeout(5.0, pool=0.2))
        assert c.get(srv.url("/")).status_code == 200


def test_server_that_stops_reading_raises_write_timeout(client, server):
    release = threading.Event()

    def handler(conn):
        conn.read_head()
        release.wait(IO_TIMEOUT)  # read nothing more: the client's send buffer fills up

    srv = server(handler)
    try:
        with pytest.raises(httpx.WriteTimeout):
            client.post(srv.url("/"), content=b"w" * (64 << 20), timeout=httpx.Timeout(5.0, write=0.3))
    finally:
        release.set()


def test_concurrent_requests_with_timeouts_share_one_watchdog(server, make_transport):
    srv = server(keep_alive_handler(b"ok"))
    rt = make_transport()
    adapter = HTTPXTransport(rt)
    results: list = []

    def worker(c):
        for _ in range(20):
            results.append(c.get(srv.url("/")).text)

    with httpx.Client(transport=adapter, timeout=FAST) as c:
        threads = [threading.Thread(target=worker, args=(c,)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == ["ok"] * 120
        assert not adapter._watchdog._timers
    assert rt.pool_stats()["total"]["active"] == 0


def test_response_header_timeout_maps_to_read_timeout(server, make_transport):
    srv = server(silent)
    with httpx.Client(transport=HTTPXTransport(make_transport(response_header_timeout=0.2)), timeout=None) as c:
        with pytest.raises(httpx.ReadTimeout) as info:
            c.get(srv.url("/"))
    assert isinstance(info.value.__cause__, roundtrip.ResponseHeaderTimeout)


def test_no_timeouts_means_no_context_and_no_watchdog(server, make_transport):
    srv = server(keep_alive_handler())
    adapter = HTTPXTransport(make_transport())
    with httpx.Client(transport=adapter, timeout=None) as c:
        assert c.get(srv.url("/")).status_code == 200
        assert adapter._watchdog._thread is None


# -- errors --------------------------------------------------------------------------------------


def test_closed_port_raises_connect_error(client):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: refused
        with pytest.raises(httpx.ConnectError) as info:
            client.get(f"http://127.0.0.1:{port}/")
    assert isinstance(info.value.__cause__, roundtrip.ConnectError)


def test_malformed_status_line_raises_remote_protocol_error(client, server):
    srv = server(malformed_status)
    with pytest.raises(httpx.RemoteProtocolError) as info:
        client.get(srv.url("/"))
    assert isinstance(info.value.__cause__, roundtrip.ProtocolError)


def test_server_closing_without_answer_raises_remote_protocol_error(client, server):
    srv = server(close_without_answer)
    with pytest.raises(httpx.RemoteProtocolError) as info:
        client.get(srv.url("/"))
    assert isinstance(info.value.__cause__, roundtrip.ServerDisconnected)


def test_body_cut_short_raises_remote_protocol_error(client, server):
    srv = server(body_cut_short)
    with pytest.raises(httpx.RemoteProtocolError) as info:
        client.get(srv.url("/"))
    assert isinstance(info.value.__cause__, roundtrip.IncompleteBody)


def test_unsupported_scheme_raises_unsupported_protocol(client):
    with pytest.raises(httpx.UnsupportedProtocol):
        client.get("ftp://127.0.0.1/x")


def test_invalid_method_raises_local_protocol_error(client, server):
    srv = server(keep_alive_handler())
    with pytest.raises(httpx.LocalProtocolError):
        client.request("BAD METHOD", srv.url("/"))
    assert srv.accepted == 0


# -- optional dependency -------------------------------------------------------------------------


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_import_roundtrip_imports_neither_httpx_nor_requests():
    result = _run(
        "import sys, roundtrip, roundtrip.adapters\n"
        "assert 'httpx' not in sys.modules and 'requests' not in sys.modules, sorted(sys.modules)\n"
        "print('ok')"
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_adapter_without_httpx_names_the_extra():
    result = _run(
        "import sys\n"
        "sys.modules['httpx'] = None  # as if not installed\n"
        "import roundtrip.adapters\n"
        "try:\n"
        "    roundtrip.adapters.HTTPXTransport\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    assert 'pip install "roundtrip-http[httpx]"' in result.stdout, result.stderr
