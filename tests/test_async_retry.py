"""Go's retry rules on AsyncTransport: the scenarios of the threaded transport's retry tests
(a server that answers once, then fails the next request on the same connection)."""

from __future__ import annotations

import asyncio
import io
import threading

import pytest

import roundtrip

from aio import afetch_body, agen
from servers import respond
from test_retry import _answer_then, _close_after_reading_request, _reset_after_reading_request


def _retries(log):
    return roundtrip.Trace(retried=lambda reason, attempt: log.append((reason, attempt)))


async def _wait_for(predicate, what):
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize(
    "method, headers, retried",
    [
        ("GET", {}, True),
        ("HEAD", {}, True),
        ("POST", {}, False),
        ("DELETE", {}, False),
        ("POST", {"Idempotency-Key": "k1"}, True),
        ("PATCH", {"Idempotency-Key": ""}, True),
    ],
)
def test_server_closing_a_reused_connection_retries_only_replayable_requests(run, server, atransport, method, headers, retried):
    srv = server(_answer_then(_close_after_reading_request))
    t = atransport()
    log: list = []
    body = b"payload" if method in ("POST", "PATCH") else None

    async def main():
        async with t:
            assert await afetch_body(t, srv.url("/prime")) == b"first"
            request = roundtrip.Request(method, srv.url("/second"), headers=headers, body=body, trace=_retries(log))
            if retried:
                return await afetch_body(t, request.url, method, headers=headers, body=body, trace=_retries(log))
            with pytest.raises(roundtrip.ServerDisconnected) as info:
                await t.round_trip(request)
            return info.value

    result = run(main())
    if retried:
        assert result == (b"" if method == "HEAD" else b"again")
        assert log == [("read_from_server_failed", 1)]
        first_try, replay = srv.received[1], srv.received[2]
        assert first_try.raw == replay.raw and (first_try.connection, replay.connection) == (0, 1)
    else:
        assert log == [] and srv.accepted == 1
        assert result.conn_reused is True and result.bytes_written == len(srv.received[1].raw)


def test_reset_before_any_response_byte_is_retried_as_read_failure(run, server, atransport):
    srv = server(_answer_then(_reset_after_reading_request))
    t = atransport()
    log: list = []

    async def main():
        async with t:
            await afetch_body(t, srv.url("/prime"))
            return await afetch_body(t, srv.url("/r"), trace=_retries(log))

    assert run(main()) == b"again"
    assert log == [("read_from_server_failed", 1)]


def test_failure_after_a_response_byte_is_never_retried(run, server, atransport):
    def partial_head(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-")
        conn.close()

    srv = server(_answer_then(partial_head))
    t = atransport()
    log: list = []

    async def main():
        async with t:
            await afetch_body(t, srv.url("/prime"))
            with pytest.raises(roundtrip.ProtocolError):
                await t.round_trip(roundtrip.Request("GET", srv.url("/p"), trace=_retries(log)))

    run(main())
    assert log == [] and srv.accepted == 1


def test_failure_on_a_fresh_connection_is_never_retried(run, server, atransport):
    srv = server(_close_after_reading_request)
    t = atransport()
    log: list = []

    async def main():
        async with t:
            with pytest.raises(roundtrip.ServerDisconnected) as info:
                await t.round_trip(roundtrip.Request("GET", srv.url("/"), trace=_retries(log)))
            return info.value

    error = run(main())
    assert log == [] and srv.accepted == 1
    assert error.conn_reused is False and error.bytes_written == len(srv.received[0].raw)


def test_idle_connection_closed_by_server_leaves_the_pool_at_once(run, server, atransport):
    def answer_and_close(conn):
        conn.read_request()
        conn.send(respond(200, b"first"))
        conn.close()

    def later(conn):
        for _ in conn.requests():
            conn.send(respond(200, b"fresh"))

    srv = server([answer_and_close, later])
    t = atransport()
    log: list = []

    async def main():
        async with t:
            await afetch_body(t, srv.url("/prime"))
            # No request needed: the connection's protocol hears the close and leaves the pool.
            await _wait_for(lambda: t.pool_stats()["total"]["idle"] == 0, "the closed connection to leave the pool")
            # Even a POST, which may never be retried, must not go out on the dead socket.
            return await afetch_body(t, srv.url("/p"), "POST", body=b"data", trace=_retries(log))

    assert run(main()) == b"fresh"
    assert log == [] and [r.method for r in srv.received] == ["GET", "POST"]
    assert srv.received[1].connection == 1


def test_unsolicited_408_on_an_idle_connection_closes_it_silently(run, server, atransport):
    sent = threading.Event()

    def answer_then_408(conn):
        conn.read_request()
        conn.send(respond(200, b"first"))
        conn.send(respond(408, b"", [("Connection", "close")], reason="Request Timeout"))
        sent.set()
        conn.wait_closed()

    def later(conn):
        for _ in conn.requests():
            conn.send(respond(200, b"fresh"))

    srv = server([answer_then_408, later])
    t = atransport()

    async def main():
        async with t:
            resp = await t.round_trip(roundtrip.Request("GET", srv.url("/prime")))
            assert await resp.read() == b"first"
            await _wait_for(lambda: t.pool_stats()["total"]["idle"] == 0, "the connection to be dropped")
            return await afetch_body(t, srv.url("/x"))

    assert run(main()) == b"fresh"
    assert sent.is_set() and srv.accepted == 2


def test_replay_rewinds_a_file_body_with_get_body(run, server, atransport):
    srv = server(_answer_then(_close_after_reading_request))
    t = atransport()
    body = io.BytesIO(b"skip:file-body")
    body.seek(5)

    async def main():
        async with t:
            await afetch_body(t, srv.url("/prime"))
            return await afetch_body(t, srv.url("/f"), "PUT", headers={"Idempotency-Key": "abc"}, body=body)

    assert run(main()) == b"again"
    assert [r.body for r in srv.received[1:]] == [b"file-body", b"file-body"]
    assert not body.closed


def test_get_body_may_return_an_async_iterable(run, server, atransport):
    srv = server(_answer_then(_close_after_reading_request))
    t = atransport()
    log: list = []

    async def main():
        async with t:
            await afetch_body(t, srv.url("/prime"))
            request_body = agen(b"as", b"ync")
            return await afetch_body(
                t, srv.url("/f"), "PUT", headers={"Idempotency-Key": "abc"}, body=request_body, get_body=lambda: agen(b"as", b"ync"), trace=_retries(log)
            )

    assert run(main()) == b"again"
    assert log == [("read_from_server_failed", 1)]
    assert [r.body for r in srv.received[1:]] == [b"async", b"async"]
    assert srv.received[2].header("transfer-encoding") == "chunked"


def test_get_body_failure_raises_unrewindable_body(run, server, atransport):
    srv = server(_answer_then(_close_after_reading_request))
    t = atransport()

    def broken_get_body():
        raise OSError("gone")

    async def main():
        async with t:
            await afetch_body(t, srv.url("/prime"))
            request = roundtrip.Request("PUT", srv.url("/f"), headers={"Idempotency-Key": "abc"}, body=agen(b"abc"), get_body=broken_get_body)
            with pytest.raises(roundtrip.UnrewindableBody):
                await t.round_trip(request)

    run(main())
