"""AsyncTransport and the protocol details it shares with the threaded transport: validation
before I/O, 100-continue, 1xx and 101, head limits, gzip, registered round trippers, trace
hooks in order on the loop's thread, timeouts, and the attempt facts errors carry."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading

import pytest

import roundtrip
from roundtrip import Request, Response, SkipAltProtocol

from aio import afetch, afetch_body, agen
from servers import body_cut_short, respond
from test_trace import FRESH, REUSED, TLS_FRESH, Boom, Observed, Recorder, tls_contexts, tls_server  # noqa: F401 (fixture)

EXPECT = {"Expect": "100-continue"}
ZERO = {"idle": 0, "active": 0, "dialing": 0, "waiting": 0}


def once(run, t, url, method="GET", **kwargs):
    """``(response, body)`` of one request on ``t``, which is closed after it."""

    async def main():
        async with t:
            return await afetch(t, url, method, **kwargs)

    return run(main())


def raises(run, t, error, request):
    """The ``error`` one ``round_trip`` of ``request`` raises on ``t``."""

    async def main():
        async with t:
            with pytest.raises(error) as info:
                await t.round_trip(request)
            return info.value

    return run(main())


# -- validation ----------------------------------------------------------------------------------


class AsyncRecordingDial:
    def __init__(self) -> None:
        self.calls: list = []

    async def __call__(self, host, port, timeout):
        self.calls.append((host, port))
        raise AssertionError("nothing may be dialed")


@pytest.mark.parametrize(
    "method, url, headers, message",
    [
        ("GET", "http://127.0.0.1:9/", {"Bad Name": "x"}, 'invalid header field name "Bad Name"'),
        ("GET", "http://127.0.0.1:9/", {"X": "a\r\nb"}, 'invalid header field value for key "X"'),
        ("GE T", "http://127.0.0.1:9/", None, 'invalid method "GE T"'),
        ("GET", "ftp://127.0.0.1:9/", None, 'unsupported protocol scheme "ftp"'),
        ("GET", "http:///path", None, "no Host in request URL"),
    ],
)
def test_validation_happens_before_any_io(run, atransport, method, url, headers, message):
    dial = AsyncRecordingDial()
    t = atransport(dial=dial)
    body = agen(b"never")
    error = raises(run, t, roundtrip.InvalidRequest, Request(method, url, headers=headers, body=body))
    assert str(error) == message
    assert dial.calls == []
    assert body.ag_frame is not None and body.ag_running is False  # the body was not started


# -- 100-continue and 1xx --------------------------------------------------------------------------


def _events(log):
    return roundtrip.Trace(
        wait_100_continue=lambda: log.append("wait"),
        got_100_continue=lambda: log.append("100"),
        got_1xx_response=lambda status, headers: log.append(status),
    )


def test_body_is_sent_after_100_continue(run, server, atransport):
    def handler(conn):
        conn.read_head()
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        assert conn.read_exactly(4) == b"data"
        conn.send(respond(200, b"stored"))

    srv = server(handler)
    log: list = []
    resp, body = once(run, atransport(), srv.url(), "PUT", headers=EXPECT, body=b"data", trace=_events(log))
    assert (resp.status_code, body) == (200, b"stored")
    assert log == ["wait", "100", 100]


def test_body_is_sent_anyway_when_no_answer_comes_in_time(run, server, atransport):
    def handler(conn):
        conn.read_head()
        assert conn.read_exactly(4) == b"data"
        conn.send(respond(200, b"ok"))

    srv = server(handler)
    resp, body = once(run, atransport(expect_continue_timeout=0.05), srv.url(), "PUT", headers=EXPECT, body=b"data")
    assert body == b"ok"


def test_final_answer_that_closes_skips_the_body(run, server, atransport):
    def handler(conn):
        conn.read_head()
        conn.send(respond(401, b"no", [("Connection", "close")], reason="Unauthorized"))
        conn.close()

    srv = server(handler)
    started = []

    async def body():
        started.append(True)
        yield b"data"

    t = atransport()
    resp, data = once(run, t, srv.url(), "PUT", headers=EXPECT, body=body())
    assert (resp.status_code, data) == (401, b"no")
    assert started == [] and t.pool_stats()["total"] == ZERO


def test_final_answer_that_keeps_the_connection_still_gets_the_body(run, server, atransport):
    def handler(conn):
        conn.read_head()
        conn.send(respond(417, b"nope", reason="Expectation Failed"))
        assert conn.read_exactly(4) == b"data"
        for _ in conn.requests():
            conn.send(respond(200, b"next"))

    srv = server(handler)
    t = atransport()

    async def main():
        async with t:
            first = await afetch(t, srv.url(), "PUT", headers=EXPECT, body=b"data")
            return first[0].status_code, first[1], await afetch_body(t, srv.url())

    assert run(main()) == (417, b"nope", b"next")
    assert srv.accepted == 1


def test_early_response_while_writing_a_large_body_is_returned(run, server, atransport):
    def handler(conn):
        conn.read_head()
        conn.send(respond(413, b"too big", [("Connection", "close")], reason="Payload Too Large"))
        conn.close()

    srv = server(handler)

    async def body():
        for _ in range(4096):
            yield b"x" * 65536  # 256 MiB: far more than the socket buffers hold

    t = atransport()
    resp, data = once(run, t, srv.url(), "POST", body=body())
    assert (resp.status_code, data) == (413, b"too big")
    assert t.pool_stats()["total"] == ZERO


@pytest.mark.parametrize("closes", [False, True], ids=["keep-alive", "close"])
def test_a_final_answer_in_the_same_read_as_the_100_is_returned(run, server, atransport, closes):
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
    t = atransport()
    resp, data = once(run, t, srv.url(), "PUT", headers=EXPECT, body=b"data", trace=_events(log))
    assert (resp.status_code, data) == (401, b"no")
    assert log == ["wait", "100", 100] and t.pool_stats()["total"] == ZERO


def _upload(said: threading.Event, pieces: int = 8):
    """A chunked async body: one piece, then (once the server has ``said`` its piece) the rest."""

    async def body():
        yield b"a" * 1000
        for _ in range(1000):
            if said.is_set():
                break
            await asyncio.sleep(0.005)
        for _ in range(pieces - 1):
            yield b"a" * 1000

    return body()


def test_a_100_continue_after_the_wait_ended_does_not_stop_the_upload(run, server, atransport):
    said_continue = threading.Event()

    def handler(conn):
        conn.read_head()
        conn.read_until(b"\r\n")  # the first chunk's size line: the body has started
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        said_continue.set()
        conn.read_until(b"\r\n0\r\n\r\n")
        conn.send(respond(200, b"stored"))

    srv = server(handler)
    log: list = []
    t = atransport(expect_continue_timeout=0.05)

    async def main():
        async with t:
            resp = await afetch(t, srv.url(), "PUT", headers=EXPECT, body=_upload(said_continue), trace=_events(log))
            return resp, t.pool_stats()["total"]["idle"]

    (resp, body), idle = run(main())
    assert (resp.status_code, body) == (200, b"stored")
    assert log == ["wait", "100", 100] and idle == 1


def test_early_hints_during_the_upload_do_not_stop_it(run, server, atransport):
    said_hints = threading.Event()

    def handler(conn):
        conn.read_head()
        conn.read_until(b"\r\n")
        conn.send(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
        said_hints.set()
        conn.read_until(b"\r\n0\r\n\r\n")
        conn.send(respond(200, b"stored"))

    srv = server(handler)
    log: list = []
    resp, body = once(run, atransport(), srv.url(), "POST", body=_upload(said_hints), trace=_events(log))
    assert (resp.status_code, body) == (200, b"stored") and log == [103]


def test_informational_responses_are_skipped_and_reported(run, server, atransport):
    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
        conn.send(b"HTTP/1.1 102 Processing\r\n\r\n")
        conn.send(respond(200, b"final"))

    srv = server(handler)
    seen = []
    trace = roundtrip.Trace(got_1xx_response=lambda status, headers: seen.append((status, headers.get_all("link"))))
    resp, body = once(run, atransport(), srv.url(), trace=trace)
    assert (resp.status_code, body) == (200, b"final")
    assert seen == [(103, ["</a.css>; rel=preload"]), (102, [])]


def test_a_flood_of_1xx_counts_against_max_response_header_bytes(run, server, atransport):
    def handler(conn):
        conn.read_request()
        for _ in range(1000):
            conn.send(b"HTTP/1.1 102 Processing\r\nX-Pad: " + b"p" * 40 + b"\r\n\r\n")

    srv = server(handler)
    raises(run, atransport(max_response_header_bytes=4096), roundtrip.HeaderTooLarge, Request("GET", srv.url()))


def test_101_is_final_and_the_connection_is_not_pooled(run, server, atransport):
    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: upgrade\r\n\r\n")
        conn.close()

    srv = server(handler)
    t = atransport()
    resp, _ = once(run, t, srv.url(), headers={"Upgrade": "echo", "Connection": "upgrade"})
    assert resp.status_code == 101 and t.pool_stats()["total"] == ZERO


# -- gzip ----------------------------------------------------------------------------------------

TEXT = b"roundtrip " * 5000


def _gzip_handler(payload):
    def handler(conn):
        for request in conn.requests():
            wants_gzip = "gzip" in (request.header("accept-encoding") or "")
            conn.send(respond(200, payload if wants_gzip else TEXT, [("Content-Encoding", "gzip")] if wants_gzip else []))

    return handler


def test_gzip_is_requested_and_decoded_transparently(run, server, atransport):
    srv = server(_gzip_handler(gzip.compress(TEXT) + gzip.compress(b"and more")))
    t = atransport()

    async def main():
        async with t:
            resp = await t.round_trip(Request("GET", srv.url()))
            pieces = [piece async for piece in resp.iter_bytes(1000)]
            await resp.aclose()
            whole = await afetch_body(t, srv.url())
            return resp, pieces, whole, t.pool_stats()["total"]["idle"]

    resp, pieces, whole, idle = run(main())
    assert resp.uncompressed and resp.content_length is None and "content-encoding" not in resp.headers
    assert b"".join(pieces) == TEXT + b"and more" and max(map(len, pieces)) <= 1000
    assert whole == TEXT + b"and more" and idle == 1
    assert srv.received[0].header("accept-encoding") == "gzip"


@pytest.mark.parametrize("payload", [gzip.compress(TEXT)[:-10], b"\x1f\x8b\x08not gzip at all"], ids=["truncated", "corrupt"])
def test_bad_gzip_is_a_protocol_error(run, server, atransport, payload):
    srv = server(_gzip_handler(payload))
    t = atransport()

    async def main():
        async with t:
            resp = await t.round_trip(Request("GET", srv.url()))
            with pytest.raises(roundtrip.ProtocolError):
                await resp.read()
            await resp.aclose()
            return t.pool_stats()["total"]

    assert run(main())["active"] == 0


# -- registered round trippers -------------------------------------------------------------------


class AsyncAlternate:
    def __init__(self, answer) -> None:
        self.answer = answer
        self.requests: list = []

    async def round_trip(self, request):
        self.requests.append(request)
        await asyncio.sleep(0)
        if hasattr(request.body, "read"):
            request.body.read()
        return self.answer(request)


def test_registered_coroutine_round_tripper_answers_and_plain_responses_are_wrapped(run, atransport):
    t = atransport()
    alt = AsyncAlternate(lambda request: Response(203, body=b"from the alternate", request=request))
    t.register_protocol("Mem", alt)
    with pytest.raises(ValueError):
        t.register_protocol("mem", alt)
    resp, body = once(run, t, "mem://anything/x")
    assert isinstance(resp, roundtrip.AsyncResponse)
    assert (resp.status_code, body) == (203, b"from the alternate") and len(alt.requests) == 1


def test_skip_alt_protocol_falls_back_with_the_body_rewound(run, server, atransport):
    import io

    def handler(conn):
        for request in conn.requests():
            conn.send(respond(200, request.body))

    def skip(request):
        raise SkipAltProtocol()

    srv = server(handler)
    t = atransport()
    alt = AsyncAlternate(skip)
    t.register_protocol("http", alt)
    body = io.BytesIO(b"the whole body")
    resp, data = once(run, t, srv.url(), "PUT", body=body)
    assert data == b"the whole body" and len(alt.requests) == 1


def test_skip_alt_protocol_sends_an_async_body_it_never_touched(run, server, atransport):
    def handler(conn):
        for request in conn.requests():
            conn.send(respond(200, request.body))

    srv = server(handler)
    t = atransport()
    alt = AsyncAlternate(lambda request: (_ for _ in ()).throw(SkipAltProtocol()))
    t.register_protocol("http", alt)
    # No get_body: an async generator the round tripper did not start needs no rewinding.
    resp, data = once(run, t, srv.url(), "PUT", body=agen(b"async ", b"body"))
    assert data == b"async body" and len(alt.requests) == 1


def test_skip_alt_protocol_after_an_async_body_was_started_asks_for_a_rewind(run, server, atransport):
    srv = server(lambda conn: None)  # never reached: the error comes first
    t = atransport()

    class Starter(AsyncAlternate):
        async def round_trip(self, request):
            await request.body.__anext__()
            raise SkipAltProtocol()

    t.register_protocol("http", Starter(None))
    raises(run, t, roundtrip.UnrewindableBody, Request("PUT", srv.url(), body=agen(b"a", b"b")))
    assert srv.accepted == 0


# -- trace hooks ---------------------------------------------------------------------------------


def traced(run, t, urls, body=None):
    """Fetch each URL with a fresh Recorder; return the recorders, and the loop's thread."""

    async def main():
        recorders = []
        async with t:
            for url in urls:
                rec = Recorder()
                resp = await t.round_trip(Request("GET" if body is None else "POST", url, body=body, trace=rec.trace))
                await resp.read()
                rec.calls.append(("read_returned", (), threading.get_ident()))
                await resp.aclose()
                recorders.append(rec)
        return recorders, threading.get_ident()

    return run(main())


def test_trace_hooks_in_order_on_the_loops_thread(run, server, atransport):
    srv = server(Observed())
    (fresh, reused), loop_thread = traced(run, atransport(), [srv.url("/a"), srv.url("/b")])
    assert fresh.names == FRESH + ["read_returned"], "put_idle_conn fires before the last read returns"
    assert reused.names == REUSED + ["read_returned"]
    assert fresh.args("connect_done") == (("127.0.0.1", srv.port), None)
    assert (fresh.args("got_conn")[0].reused, reused.args("got_conn")[0].reused) == (False, True)
    assert {thread for rec in (fresh, reused) for _, _, thread in rec.calls} == {loop_thread}


def test_dns_and_tls_events_in_order(run, server, atransport, tls_contexts):
    server_context, client_context = tls_contexts
    srv = server(tls_server(Observed(b"secure"), server_context))
    (rec,), _ = traced(run, atransport(ssl_context=client_context), [f"https://localhost:{srv.port}/"])
    names = rec.names_without_failed_connects()
    assert names == TLS_FRESH[:1] + ["dns_start", "dns_done"] + TLS_FRESH[1:] + ["read_returned"]
    assert rec.args("dns_start") == ("localhost",)
    assert rec.args("tls_handshake_done") == (None,)


@pytest.mark.parametrize("hook", ["get_conn", "got_conn", "connect_done", "wrote_headers", "got_first_response_byte", "got_1xx_response"])
def test_a_raising_hook_fails_the_round_trip_and_closes_the_connection(run, server, atransport, hook):
    observed = Observed(before=b"HTTP/1.1 103 Early Hints\r\n\r\n")
    srv = server(observed)
    rec = Recorder(raise_in=hook)
    t = atransport()
    raises(run, t, Boom, Request("GET", srv.url(), trace=rec.trace))
    assert t.pool_stats()["total"] == ZERO
    if srv.accepted:
        assert observed.closed.wait(5.0)


# -- timeouts and the facts errors carry ---------------------------------------------------------


def test_response_header_timeout(run, server, atransport):
    srv = server(lambda conn: (conn.read_request(), conn.wait_closed(5)))
    t = atransport(response_header_timeout=0.1)
    error = raises(run, t, roundtrip.ResponseHeaderTimeout, Request("GET", srv.url()))
    assert str(error) == "timeout awaiting response headers"
    assert error.conn_reused is False and error.bytes_written == len(srv.received[0].raw)


def test_connect_error_for_a_refused_port(run, atransport):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = raises(run, atransport(), roundtrip.ConnectError, Request("GET", f"http://127.0.0.1:{port}/"))
    assert f"dial tcp 127.0.0.1:{port}: connect:" in str(error)


def test_body_errors_carry_conn_reused_and_bytes_written(run, server, atransport):
    def handler(conn):
        conn.read_request()
        conn.send(respond(200, b"first"))
        body_cut_short(conn)

    srv = server(handler)
    t = atransport()

    async def main():
        async with t:
            await afetch_body(t, srv.url())
            resp = await t.round_trip(Request("GET", srv.url("/second")))
            with pytest.raises(roundtrip.IncompleteBody) as info:
                await resp.read()
            return info.value

    error = run(main())
    assert error.conn_reused is True and error.bytes_written == len(srv.received[1].raw)
    assert t.pool_stats()["total"] == ZERO


def test_errors_carry_what_was_written(run, server, atransport):
    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n")

    srv = server(handler)
    error = raises(run, atransport(), roundtrip.ProtocolError, Request("POST", srv.url(), body=b"payload"))
    assert error.conn_reused is False and error.bytes_written == len(srv.received[0].raw)
    assert json.dumps(str(error))
