"""AsyncTransport's round trip on the default loop and uvloop: bodies both ways, keep-alive
reuse, pool_stats(), and the one-loop rule."""

from __future__ import annotations

import asyncio
import threading

import pytest

import roundtrip

from aio import afetch, afetch_body, agen, new_loop, run_on
from servers import keep_alive_handler, respond

ZERO = {"idle": 0, "active": 0, "dialing": 0, "waiting": 0}


def key(srv):
    return f"http://127.0.0.1:{srv.port}"


def test_get_reads_the_body_and_pools_the_connection(run, server, atransport):
    srv = server(keep_alive_handler(b"hello" * 3000))
    t = atransport()

    async def main():
        async with t:
            bodies = [await afetch_body(t, srv.url("/x")) for _ in range(5)]
            return bodies, t.pool_stats()

    bodies, stats = run(main())
    assert bodies == [b"hello" * 3000] * 5
    assert srv.accepted == 1
    assert stats[key(srv)] == {"idle": 1, "active": 0, "dialing": 0, "waiting": 0}


def test_response_attributes(run, server, atransport):
    srv = server(keep_alive_handler(b"abc", [("X-Thing", "1")]))
    t = atransport()

    async def main():
        async with t:
            return await afetch(t, srv.url())

    resp, body = run(main())
    assert isinstance(resp, roundtrip.AsyncResponse)
    assert (resp.status_code, resp.reason, resp.http_version, resp.content_length, body) == (200, "OK", "HTTP/1.1", 3, b"abc")
    assert resp.headers["x-thing"] == "1" and resp.closed


def test_connection_goes_back_before_the_last_read_returns(run, server, atransport):
    srv = server(keep_alive_handler(b"0123456789"))
    t = atransport()

    async def main():
        async with t:
            resp = await t.round_trip(roundtrip.Request("GET", srv.url()))
            first = await resp.read(4)
            during = t.pool_stats()["total"]["active"]
            rest = await resp.read(6)
            after = t.pool_stats()["total"]
            await resp.aclose()
            return first + rest, during, after

    body, during, after = run(main())
    assert body == b"0123456789"
    assert during == 1
    assert after == {"idle": 1, "active": 0, "dialing": 0, "waiting": 0}


def test_early_close_closes_the_connection(run, server, atransport):
    srv = server(keep_alive_handler(b"x" * 100000))
    t = atransport()

    async def main():
        async with t:
            resp = await t.round_trip(roundtrip.Request("GET", srv.url()))
            await resp.read(10)
            await resp.aclose()
            stats = t.pool_stats()["total"]
            with pytest.raises(roundtrip.ResponseClosed):
                await resp.read()
            await afetch_body(t, srv.url())
            return stats

    assert run(main()) == ZERO
    assert srv.accepted == 2


def test_request_bodies_bytes_file_iterable_and_async_iterable(run, server, atransport, tmp_path):
    def handler(conn):
        for request in conn.requests():
            conn.send(respond(200, request.body))

    srv = server(handler)
    path = tmp_path / "body"
    path.write_bytes(b"from a file")
    t = atransport()

    async def main():
        async with t:
            with open(path, "rb") as f:
                return [
                    await afetch_body(t, srv.url(), "POST", body=b"bytes"),
                    await afetch_body(t, srv.url(), "PUT", body=f),
                    await afetch_body(t, srv.url(), "POST", body=iter([b"it", b"er"])),
                    await afetch_body(t, srv.url(), "POST", body=agen(b"as", b"", b"ync")),
                    await afetch_body(t, srv.url(), "POST"),
                ]

    assert run(main()) == [b"bytes", b"from a file", b"iter", b"async", b""]
    framing = [(r.header("content-length"), r.header("transfer-encoding")) for r in srv.received]
    assert framing == [("5", None), ("11", None), (None, "chunked"), (None, "chunked"), ("0", None)]
    assert srv.accepted == 1


def test_large_upload_and_download(run, server, atransport):
    payload = bytes(range(256)) * 8192  # 2 MiB: flow control both ways

    def handler(conn):
        for request in conn.requests():
            conn.send(respond(200, request.body))

    srv = server(handler)
    t = atransport()

    async def main():
        async with t:
            whole = await afetch_body(t, srv.url(), "POST", body=payload)
            resp = await t.round_trip(roundtrip.Request("POST", srv.url(), body=payload))
            pieces = [piece async for piece in resp.iter_bytes(100000)]
            await resp.aclose()
            return whole, pieces

    whole, pieces = run(main())
    assert whole == payload
    assert b"".join(pieces) == payload and max(map(len, pieces)) <= 100000


def test_chunked_response_with_trailers(run, server, atransport):
    def handler(conn):
        for _ in conn.requests():
            conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n")

    srv = server(handler)
    t = atransport()

    async def main():
        async with t:
            resp, body = await afetch(t, srv.url())
            return resp, body, t.pool_stats()["total"]["idle"]

    resp, body, idle = run(main())
    assert body == b"abcde" and resp.trailers["x-sum"] == "5" and resp.content_length is None
    assert idle == 1


def test_until_close_body(run, server, atransport):
    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
        conn.close()

    srv = server(handler)
    t = atransport()

    async def main():
        async with t:
            return await afetch_body(t, srv.url()), t.pool_stats()["total"]

    assert run(main()) == (b"all of it", ZERO)


def test_concurrent_tasks_share_the_pool(run, server, atransport):
    srv = server(keep_alive_handler(b"ok"))
    t = atransport(max_conns_per_host=4)

    async def main():
        async with t:
            bodies = await asyncio.gather(*(afetch_body(t, srv.url()) for _ in range(40)))
            return bodies, t.pool_stats()["total"]

    bodies, stats = run(main())
    assert bodies == [b"ok"] * 40
    assert srv.accepted <= 4 and stats["active"] == 0 and 1 <= stats["idle"] <= 4


def test_another_loop_gets_runtime_error(loop_kind, server, atransport):
    srv = server(keep_alive_handler(b"ok"))
    t = atransport()
    first, second = new_loop(loop_kind), new_loop(loop_kind)
    try:
        assert run_on(first, afetch_body(t, srv.url())) == b"ok"
        with pytest.raises(RuntimeError, match="another event loop"):
            run_on(second, t.round_trip(roundtrip.Request("GET", srv.url())))

        async def close_there():
            t.close_idle_connections()

        with pytest.raises(RuntimeError, match="another event loop"):
            run_on(second, close_there())
        with pytest.raises(RuntimeError, match="another event loop"):
            run_on(second, t.aclose())
        stats: list = []
        thread = threading.Thread(target=lambda: stats.append(t.pool_stats()))
        thread.start()
        thread.join()
        assert stats[0]["total"]["idle"] == 1
        run_on(first, t.aclose())
    finally:
        first.close()
        second.close()


def test_round_trip_after_aclose_raises_transport_closed(run, server, atransport):
    srv = server(keep_alive_handler(b"ok"))
    t = atransport()

    async def main():
        await afetch_body(t, srv.url())
        await t.aclose()
        with pytest.raises(roundtrip.TransportClosed):
            await t.round_trip(roundtrip.Request("GET", srv.url()))
        return t.pool_stats()["total"]

    assert run(main()) == ZERO
