"""``roundtrip.adapters.HTTPXAsyncTransport`` under ``httpx.AsyncClient``: requests go out as
httpx built them, responses stream, per-request timeouts hold per phase, errors become httpx's,
and cancelling the task closes the connection. Every test runs under the default asyncio loop
and under uvloop (the ``run`` fixture of tests/aio.py), and under both implementations."""

from __future__ import annotations

import asyncio
import gzip
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import httpx
import pytest

import roundtrip
from roundtrip.adapters import HTTPXAsyncTransport

from servers import IO_TIMEOUT, body_cut_short, close_without_answer, keep_alive_handler, malformed_status, respond, silent

FAST = httpx.Timeout(5.0)  # generous everywhere; tests narrow the phase they exercise


def client(transport: Any = None, **kwargs: Any) -> httpx.AsyncClient:
    kwargs.setdefault("timeout", FAST)
    return httpx.AsyncClient(transport=transport if transport is not None else HTTPXAsyncTransport(), **kwargs)


def closed_port() -> int:
    """A port nothing listens on: every connect is refused."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        return holder.getsockname()[1]  # type: ignore[no-any-return]


# -- requests and responses ----------------------------------------------------------------------


def test_get_returns_status_reason_headers_and_body(run, server):
    srv = server(keep_alive_handler(b"hello", [("Content-Type", "text/plain; charset=utf-8"), ("X-Twice", "1"), ("X-Twice", "2")]))

    async def main():
        async with client() as c:
            return await c.get(srv.url("/x?q=1"))

    r = run(main())
    assert (r.status_code, r.reason_phrase, r.http_version) == (200, "OK", "HTTP/1.1")
    assert r.text == "hello"
    assert r.headers.get_list("x-twice") == ["1", "2"]
    assert srv.received[0].request_line == "GET /x?q=1 HTTP/1.1"


def test_request_headers_keep_httpx_fields_and_the_callers_spelling(run, server):
    srv = server(keep_alive_handler())

    async def main():
        async with client() as c:
            await c.get(srv.url("/"), headers={"X-MiXeD-CaSe": "v1"})

    run(main())
    received = srv.received[0]
    assert "X-MiXeD-CaSe" in received.header_names()
    assert received.header("user-agent").startswith("python-httpx/")
    assert [name.lower() for name in received.header_names()].count("accept-encoding") == 1


def test_post_bytes_sends_content_length(run, server):
    srv = server(keep_alive_handler(b"done"))

    async def main():
        async with client() as c:
            return (await c.post(srv.url("/p"), content=b"x" * 100_000)).text

    assert run(main()) == "done"
    assert srv.received[0].header("content-length") == "100000"
    assert srv.received[0].body == b"x" * 100_000


def test_post_from_an_async_generator_is_chunked(run, server):
    srv = server(keep_alive_handler())

    async def pieces():
        yield b"abc"
        await asyncio.sleep(0)
        yield b"defg"

    async def main():
        async with client() as c:
            await c.post(srv.url("/p"), content=pieces())

    run(main())
    assert srv.received[0].header("transfer-encoding") == "chunked"
    assert srv.received[0].body == b"abcdefg"


def test_streamed_body_with_a_write_timeout_arrives_whole(run, server):
    srv = server(keep_alive_handler())

    async def pieces():
        for _ in range(3):
            yield b"z" * 1000

    async def main():
        async with client() as c:
            await c.post(srv.url("/p"), content=pieces(), timeout=httpx.Timeout(5.0, write=2.0))

    run(main())
    assert srv.received[0].body == b"z" * 3000


def test_json_and_form_bodies_arrive_as_httpx_encoded_them(run, server):
    srv = server(keep_alive_handler())

    async def main():
        async with client() as c:
            await c.post(srv.url("/j"), json={"a": 1})
            await c.post(srv.url("/f"), data={"k": "v w"})

    run(main())
    assert srv.received[0].body == b'{"a":1}' and srv.received[0].header("content-type") == "application/json"
    assert srv.received[1].body == b"k=v+w"


def test_head_response_has_no_body(run, server):
    def handler(conn):
        for _ in conn.requests():
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")

    srv = server(handler)

    async def main():
        async with client() as c:
            return await c.head(srv.url("/"))

    r = run(main())
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "1000"


def test_stream_yields_each_chunk_as_it_arrives(run, server):
    first_seen = threading.Event()

    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n")
        first_seen.wait(IO_TIMEOUT)  # the next chunk only after the client has seen the first
        conn.send(b"3\r\ntwo\r\n0\r\n\r\n")
        conn.wait_closed()

    srv = server(handler)

    async def main():
        pieces = []
        async with client() as c:
            async with c.stream("GET", srv.url("/")) as r:
                async for piece in r.aiter_raw():
                    pieces.append(piece)
                    first_seen.set()
        return pieces

    assert run(main()) == [b"one", b"two"]


def test_connection_is_reused_across_requests(run, server):
    srv = server(keep_alive_handler(b"ok"))

    async def main():
        rt = roundtrip.AsyncTransport()
        async with client(HTTPXAsyncTransport(rt)) as c:
            texts = [(await c.get(srv.url("/"))).text for _ in range(3)]
            async with c.stream("GET", srv.url("/s")) as r:
                await r.aread()
            stats = rt.pool_stats()["total"]
        await rt.aclose()
        return texts, stats

    texts, stats = run(main())
    assert texts == ["ok"] * 3
    assert stats == {"idle": 1, "active": 0, "dialing": 0, "waiting": 0}
    assert srv.accepted == 1


def test_closing_a_half_read_stream_closes_its_connection(run, server):
    srv = server(keep_alive_handler(b"x" * 200_000))

    async def main():
        rt = roundtrip.AsyncTransport()
        async with client(HTTPXAsyncTransport(rt)) as c:
            async with c.stream("GET", srv.url("/")) as r:
                async for _ in r.aiter_raw(1000):
                    break
            active = rt.pool_stats()["total"]["active"]
            status = (await c.get(srv.url("/"))).status_code
        await rt.aclose()
        return active, status

    assert run(main()) == (0, 200)
    assert srv.accepted == 2


def test_gzip_is_decoded_by_httpx_not_by_roundtrip(run, nginx):
    async def main():
        async with client() as c:
            return await c.get(nginx.url("/gz/text"))

    r = run(main())
    assert r.headers["content-encoding"] == "gzip"
    assert r.content == b"compress me please " * 2000
    assert r.num_bytes_downloaded < len(r.content)  # it came compressed


def test_redirects_and_cookies_are_httpxs_business(run, server):
    def handler(conn):
        for request in conn.requests():
            if request.target == "/start":
                conn.send(respond(302, b"", [("Location", "/end"), ("Set-Cookie", "s=1; Path=/")], reason="Found"))
            else:
                conn.send(respond(200, (request.header("cookie") or "").encode()))

    srv = server(handler)

    async def main():
        async with client(follow_redirects=True) as c:
            return await c.get(srv.url("/start"))

    r = run(main())
    assert (r.status_code, r.text, str(r.url)) == (200, "s=1", srv.url("/end"))
    assert srv.accepted == 1


def test_given_transport_is_shared_and_not_closed(run, server):
    srv = server(keep_alive_handler())

    async def main():
        rt = roundtrip.AsyncTransport()
        async with client(HTTPXAsyncTransport(rt)) as c:
            await c.get(srv.url("/"))
        async with await rt.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
            body = await resp.read()
        await rt.aclose()
        return body

    assert run(main()) == b"ok"


def test_owned_transport_is_closed_with_the_client(run, server):
    srv = server(keep_alive_handler())

    async def main():
        adapter = HTTPXAsyncTransport()
        async with client(adapter) as c:
            await c.get(srv.url("/"))
        with pytest.raises(roundtrip.TransportClosed):
            await adapter._transport.round_trip(roundtrip.Request("GET", srv.url("/")))

    run(main())


def test_owned_transport_never_gunzips(run, server):
    body = gzip.compress(b"zipped")

    def handler(conn):
        for _ in conn.requests():
            conn.send(respond(200, body, [("Content-Encoding", "gzip")]))

    srv = server(handler)

    async def main():
        async with client() as c:
            del c.headers["accept-encoding"]  # even without the caller's Accept-Encoding
            return await c.get(srv.url("/"))

    r = run(main())
    assert srv.received[0].header("accept-encoding") is None
    assert r.headers["content-encoding"] == "gzip" and r.content == b"zipped"


def test_many_tasks_share_one_client(run, server):
    srv = server(keep_alive_handler(b"ok"))

    async def main():
        async with client() as c:
            async def worker():
                return [(await c.get(srv.url("/"))).text for _ in range(10)]

            return await asyncio.gather(*(worker() for _ in range(5)))

    assert run(main()) == [["ok"] * 10] * 5


# -- cancellation --------------------------------------------------------------------------------


def test_cancelling_the_task_closes_the_connection(run, server):
    srv = server(silent)

    async def main():
        rt = roundtrip.AsyncTransport()
        async with client(HTTPXAsyncTransport(rt), timeout=None) as c:
            task = asyncio.ensure_future(c.get(srv.url("/")))
            for _ in range(500):  # until the request is in flight
                if srv.accepted and rt.pool_stats()["total"]["active"]:
                    break
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            stats = rt.pool_stats()["total"]
        await rt.aclose()
        return stats

    stats = run(main())
    assert stats["active"] == 0 and stats["idle"] == 0


# -- timeouts ------------------------------------------------------------------------------------


def test_silent_server_raises_read_timeout_quickly(run, server):
    srv = server(silent)

    async def main():
        async with client() as c:
            with pytest.raises(httpx.ReadTimeout) as info:
                await c.get(srv.url("/"), timeout=httpx.Timeout(5.0, read=0.3))
            return info.value

    started = time.monotonic()
    error = run(main())
    assert time.monotonic() - started < 4.0
    assert isinstance(error.__cause__, roundtrip.Cancelled)


def test_stalled_body_raises_read_timeout(run, server):
    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        conn.wait_closed()

    srv = server(handler)

    async def main():
        async with client() as c:
            async with c.stream("GET", srv.url("/"), timeout=httpx.Timeout(5.0, read=0.3)) as r:
                with pytest.raises(httpx.ReadTimeout):
                    await r.aread()

    run(main())


def test_read_timeout_limits_each_read_not_the_whole_body(run, server):
    piece = b"x" * 65536

    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (4 * len(piece)))
        for _ in range(4):
            time.sleep(0.15)  # a slow but steady server: 0.6 s in all
            conn.send(piece)
        conn.wait_closed()

    srv = server(handler)

    async def main():
        async with client() as c:
            return (await c.get(srv.url("/"), timeout=httpx.Timeout(5.0, read=0.4))).content

    assert run(main()) == piece * 4


def test_an_unread_stream_does_not_time_out(run, server):
    srv = server(keep_alive_handler(b"later"))

    async def main():
        async with client() as c:
            async with c.stream("GET", srv.url("/"), timeout=httpx.Timeout(5.0, read=0.1)) as r:
                await asyncio.sleep(0.3)  # the caller's own pause is not a read
                return await r.aread()

    assert run(main()) == b"later"


def test_connect_that_hangs_raises_connect_timeout(run, unreachable):
    host, port = unreachable

    async def main():
        async with client() as c:
            with pytest.raises(httpx.ConnectTimeout):
                await c.get(f"http://{host}:{port}/", timeout=httpx.Timeout(5.0, connect=0.3))

    run(main())


def test_transport_connect_timeout_maps_to_connect_timeout(run, unreachable):
    host, port = unreachable

    async def main():
        rt = roundtrip.AsyncTransport(connect_timeout=0.2)
        async with client(HTTPXAsyncTransport(rt), timeout=None) as c:
            with pytest.raises(httpx.ConnectTimeout) as info:
                await c.get(f"http://{host}:{port}/")
        await rt.aclose()
        return info.value

    assert isinstance(run(main()).__cause__, roundtrip.ConnectTimeout)


def test_waiting_for_a_pool_slot_raises_pool_timeout(run, server):
    srv = server(keep_alive_handler())

    async def main():
        rt = roundtrip.AsyncTransport(max_conns_per_host=1)
        async with client(HTTPXAsyncTransport(rt)) as c:
            async with c.stream("GET", srv.url("/")):  # holds the only connection
                with pytest.raises(httpx.PoolTimeout):
                    await c.get(srv.url("/"), timeout=httpx.Timeout(5.0, pool=0.2))
            status = (await c.get(srv.url("/"))).status_code
        await rt.aclose()
        return status

    assert run(main()) == 200


def test_server_that_stops_reading_raises_write_timeout(run, server):
    release = threading.Event()

    def handler(conn):
        conn.read_head()
        release.wait(IO_TIMEOUT)  # read nothing more: the client's send buffer fills up

    srv = server(handler)

    async def main():
        async with client() as c:
            with pytest.raises(httpx.WriteTimeout):
                await c.post(srv.url("/"), content=b"w" * (64 << 20), timeout=httpx.Timeout(5.0, write=0.3))

    try:
        run(main())
    finally:
        release.set()


def test_a_write_that_outlasts_its_limit_times_out_between_the_watchdogs_looks(run, server, monkeypatch):
    # httpcore's async timeouts are deadlines checked at every await: a write phase longer
    # than its limit fails even when it ends before the watchdog would look.
    from roundtrip.adapters import _timeouts

    monkeypatch.setattr(_timeouts.Watchdog, "TICK", 60.0)
    srv = server(keep_alive_handler(b"ok"))

    async def main():
        async with client() as c:
            with pytest.raises(httpx.WriteTimeout):
                await c.post(srv.url("/"), content=b"w" * (4 << 20), timeout=httpx.Timeout(None, write=1e-6))
            # A limit the write keeps to is no timeout.
            return (await c.post(srv.url("/"), content=b"w", timeout=httpx.Timeout(None, write=5.0))).status_code

    assert run(main()) == 200


def test_response_header_timeout_maps_to_read_timeout(run, server):
    srv = server(silent)

    async def main():
        rt = roundtrip.AsyncTransport(response_header_timeout=0.2)
        async with client(HTTPXAsyncTransport(rt), timeout=None) as c:
            with pytest.raises(httpx.ReadTimeout) as info:
                await c.get(srv.url("/"))
        await rt.aclose()
        return info.value

    assert isinstance(run(main()).__cause__, roundtrip.ResponseHeaderTimeout)


def test_no_timeouts_means_no_context_and_no_watchdog(run, server):
    srv = server(keep_alive_handler())
    adapter = HTTPXAsyncTransport()

    async def main():
        async with client(adapter, timeout=None) as c:
            status = (await c.get(srv.url("/"))).status_code
            return status, adapter._watchdog._thread

    assert run(main()) == (200, None)


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("handler", "cause"),
    [(malformed_status, roundtrip.ProtocolError), (close_without_answer, roundtrip.ServerDisconnected),
     (body_cut_short, roundtrip.IncompleteBody)],
    ids=["malformed_status", "close_without_answer", "body_cut_short"],
)
def test_broken_responses_raise_remote_protocol_error(run, server, handler, cause):
    srv = server(handler)

    async def main():
        async with client() as c:
            with pytest.raises(httpx.RemoteProtocolError) as info:
                await c.get(srv.url("/"))
            return info.value

    assert isinstance(run(main()).__cause__, cause)


def test_closed_port_raises_connect_error(run):
    port = closed_port()

    async def main():
        async with client() as c:
            with pytest.raises(httpx.ConnectError) as info:
                await c.get(f"http://127.0.0.1:{port}/")
            return info.value

    assert isinstance(run(main()).__cause__, roundtrip.ConnectError)


def test_unsupported_scheme_has_httpx_wording(run):
    async def main():
        adapter = HTTPXAsyncTransport()
        try:
            with pytest.raises(httpx.UnsupportedProtocol, match=r"Request URL has an unsupported protocol 'ftp://'\."):
                await adapter.handle_async_request(httpx.Request("GET", "ftp://127.0.0.1/"))
        finally:
            await adapter.aclose()

    run(main())


def test_invalid_method_raises_local_protocol_error(run, server):
    srv = server(keep_alive_handler())

    async def main():
        async with client() as c:
            with pytest.raises(httpx.LocalProtocolError):
                await c.request("BAD METHOD", srv.url("/"))

    run(main())
    assert srv.accepted == 0


# -- optional dependency -------------------------------------------------------------------------


def test_adapter_without_httpx_names_the_extra():
    code = (
        "import sys\n"
        "sys.modules['httpx'] = None  # as if not installed\n"
        "import roundtrip.adapters\n"
        "try:\n"
        "    roundtrip.adapters.HTTPXAsyncTransport\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert 'pip install "roundtrip-http[httpx]"' in result.stdout, result.stderr
