"""The basic promise: a request goes out, a response comes back, the connection is reused."""

import time

import roundtrip

from servers import keep_alive_handler


def test_get_returns_status_headers_and_body(transport, server):
    srv = server(keep_alive_handler(b"hello", [("Content-Type", "text/plain")]))
    with transport.round_trip(roundtrip.Request("GET", srv.url("/x"))) as resp:
        assert (resp.status_code, resp.reason) == (200, "OK")
        assert resp.headers["content-type"] == "text/plain"
        assert resp.read() == b"hello"
    assert srv.received[0].request_line == "GET /x HTTP/1.1"


def test_nginx_get_and_post_share_one_connection(transport, nginx):
    with transport.round_trip(roundtrip.Request("GET", nginx.url("/small"))) as resp:
        assert resp.read() == nginx.files["small"]
    with transport.round_trip(roundtrip.Request("POST", nginx.url("/post"), body=b"x" * 1024)) as resp:
        assert resp.status_code == 200
        assert resp.read() == b"posted\n"
    # nginx writes its log line just after answering: wait for it.
    deadline = time.monotonic() + 5
    while True:
        log = [line for line in nginx.access_log() if line[3] in ("/small", "/post")][-2:]
        if (len(log) == 2 and log[-1][2] == "POST") or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert [line[2] for line in log] == ["GET", "POST"]
    assert log[0][0] == log[1][0], "both requests must arrive on one connection"
    assert [int(line[1]) for line in log] == [int(log[0][1]), int(log[0][1]) + 1]
