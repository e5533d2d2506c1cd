"""Cancellation and deadlines on AsyncTransport, at every stage of a round trip (waiting for a
pool slot, dialing, writing, waiting for the head, reading the body), by the three ways a
request stops: ``Context.cancel()`` from another thread, ``task.cancel()``, and the Context
deadline. Each closes the connection (the server sees it), pools nothing, and leaves the
transport serving the next request.

A stage is reached by an event (a server script step), never by a sleep alone.
"""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

import roundtrip
from roundtrip import Context, Request

from aio import afetch_body
from servers import keep_alive_handler, respond

HOWS = ["context", "task", "deadline"]
DEADLINE = 0.5  # the deadline of the "deadline" cases: longer than reaching any stage takes


async def event_set(event: threading.Event, what: str = "the stage") -> None:
    """Wait (boundedly) on the loop for a server thread's event."""
    for _ in range(1000):
        if event.is_set():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


async def stop_at(how: str, ctx: Context, task: asyncio.Future, reached: threading.Event) -> BaseException:
    """Stop ``task`` once ``reached`` is set, as ``how`` says; what the task raised."""
    await event_set(reached)
    if how == "context":
        canceller = threading.Thread(target=lambda: (ctx.cancel(), ctx.cancel()))
        canceller.start()
        canceller.join()
    elif how == "task":
        task.cancel()
    try:
        await task
    except BaseException as exc:
        return exc
    raise AssertionError("the round trip was not stopped")


def expected(how: str) -> type[BaseException]:
    return {"context": roundtrip.Cancelled, "task": asyncio.CancelledError, "deadline": roundtrip.DeadlineExceeded}[how]


def new_context(how: str) -> Context:
    return Context(timeout=DEADLINE) if how == "deadline" else Context()


class CloseWatch:
    """Server side: ``reached`` once the script is at its stage, then whether the client closed."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.closed = threading.Event()

    def wait_close(self, conn) -> None:
        self.reached.set()
        if conn.wait_closed(5.0):
            self.closed.set()


def fresh_handler(stage):
    """Connection 0 runs ``stage``; later ones answer normally."""

    def later(conn):
        for _ in conn.requests():
            conn.send(respond(200, b"next"))

    return [stage, later]


async def then_next_request_works(t, srv):
    body = await afetch_body(t, srv.url("/next"))
    stats = t.pool_stats()["total"]
    return body, stats


def check(error, how, watch, result, srv):
    assert isinstance(error, expected(how)), repr(error)
    assert watch.closed.wait(5.0), "the client did not close the stopped connection"
    body, stats = result
    assert body == b"next"
    assert stats == {"idle": 1, "active": 0, "dialing": 0, "waiting": 0}
    assert srv.accepted == 2


@pytest.mark.parametrize("how", HOWS)
def test_stop_while_waiting_for_headers(run, server, atransport, how):
    watch = CloseWatch()

    def stage(conn):
        conn.read_request()
        watch.wait_close(conn)

    srv = server(fresh_handler(stage))
    t = atransport()

    async def main():
        async with t:
            ctx = new_context(how)
            task = asyncio.ensure_future(t.round_trip(Request("GET", srv.url(), context=ctx)))
            error = await stop_at(how, ctx, task, watch.reached)
            return error, await then_next_request_works(t, srv)

    error, result = run(main())
    check(error, how, watch, result, srv)


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_stop_while_reading_the_body(run, server, atransport, how, framing):
    watch = CloseWatch()

    def stage(conn):
        conn.read_request()
        if framing == "length":
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
        else:
            conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\npart\r\n")
        watch.wait_close(conn)

    srv = server(fresh_handler(stage))
    t = atransport()

    async def main():
        async with t:
            ctx = new_context(how)
            resp = await t.round_trip(Request("GET", srv.url(), context=ctx))
            assert await resp.read(4) == b"part"
            task = asyncio.ensure_future(resp.read())
            error = await stop_at(how, ctx, task, watch.reached)
            with pytest.raises(roundtrip.ResponseClosed):
                await resp.aclose()
                await resp.read()
            return error, await then_next_request_works(t, srv)

    error, result = run(main())
    check(error, how, watch, result, srv)


@pytest.mark.parametrize("how", HOWS)
def test_stop_while_writing_a_large_body(run, server, atransport, how):
    watch = CloseWatch()

    def stage(conn):
        conn.read_head()  # and never the body: the client's writes back up
        watch.wait_close(conn)

    srv = server(fresh_handler(stage))
    t = atransport()
    body = b"x" * (64 << 20)

    async def main():
        async with t:
            ctx = new_context(how)
            task = asyncio.ensure_future(t.round_trip(Request("POST", srv.url(), body=body, context=ctx)))
            error = await stop_at(how, ctx, task, watch.reached)
            return error, await then_next_request_works(t, srv)

    error, result = run(main())
    check(error, how, watch, result, srv)


@pytest.mark.parametrize("how", HOWS)
def test_stop_while_writing_an_endless_async_body(run, server, atransport, how):
    watch = CloseWatch()

    def stage(conn):
        conn.read_head()
        watch.wait_close(conn)

    srv = server(fresh_handler(stage))
    t = atransport()

    async def endless():
        for _ in range(1_000_000):
            yield b"y" * 65536

    async def main():
        async with t:
            ctx = new_context(how)
            task = asyncio.ensure_future(t.round_trip(Request("POST", srv.url(), body=endless(), context=ctx)))
            error = await stop_at(how, ctx, task, watch.reached)
            return error, await then_next_request_works(t, srv)

    error, result = run(main())
    check(error, how, watch, result, srv)


@pytest.mark.parametrize("how", HOWS)
def test_stop_while_waiting_for_a_pool_slot(run, server, atransport, how):
    srv = server(keep_alive_handler(b"next"))
    t = atransport(max_conns_per_host=1)

    async def main():
        async with t:
            holder = await t.round_trip(Request("GET", srv.url("/hold")))
            ctx = new_context(how)
            task = asyncio.ensure_future(t.round_trip(Request("GET", srv.url("/wait"), context=ctx)))
            waiting = threading.Event()
            for _ in range(100):
                await asyncio.sleep(0)
                if t.pool_stats()["total"]["waiting"] == 1:
                    waiting.set()
                    break
            error = await stop_at(how, ctx, task, waiting)
            stats = t.pool_stats()["total"]
            assert await holder.read() == b"next"
            await holder.aclose()
            return error, stats, await then_next_request_works(t, srv)

    error, stats, (body, after) = run(main())
    assert isinstance(error, expected(how)), repr(error)
    assert stats == {"idle": 0, "active": 1, "dialing": 0, "waiting": 0}
    assert body == b"next" and after == {"idle": 1, "active": 0, "dialing": 0, "waiting": 0}
    assert srv.accepted == 1


@pytest.mark.parametrize("how", HOWS)
def test_stop_while_a_custom_dial_waits(run, server, atransport, how):
    srv = server(keep_alive_handler(b"next"))
    entered = threading.Event()
    dials = []

    async def dial(host, port, timeout):
        dials.append(port)
        if len(dials) == 1:
            entered.set()
            await asyncio.sleep(30)  # cancelled with its request
        return socket.create_connection((host, port))

    t = atransport(dial=dial)

    async def main():
        async with t:
            ctx = new_context(how)
            task = asyncio.ensure_future(t.round_trip(Request("GET", srv.url(), context=ctx)))
            error = await stop_at(how, ctx, task, entered)
            for _ in range(100):
                if t.pool_stats()["total"]["dialing"] == 0:
                    break
                await asyncio.sleep(0.01)
            stats = t.pool_stats()["total"]
            return error, stats, await afetch_body(t, srv.url())

    error, stats, body = run(main())
    assert isinstance(error, expected(how)), repr(error)
    assert stats == {"idle": 0, "active": 0, "dialing": 0, "waiting": 0}
    assert body == b"next" and len(dials) == 2


@pytest.mark.parametrize("how", ["context", "task"])
def test_stop_while_the_default_dialer_connects(run, atransport, unreachable, how):
    t = atransport()
    host, port = unreachable

    async def main():
        async with t:
            ctx = new_context(how)
            task = asyncio.ensure_future(t.round_trip(Request("GET", f"http://{host}:{port}/", context=ctx)))
            dialing = threading.Event()
            for _ in range(200):
                await asyncio.sleep(0.005)
                if t.pool_stats()["total"]["dialing"] == 1:
                    dialing.set()
                    break
            error = await stop_at(how, ctx, task, dialing)
            for _ in range(100):
                if t.pool_stats()["total"]["dialing"] == 0:
                    break
                await asyncio.sleep(0.01)
            return error, t.pool_stats()["total"]

    error, stats = run(main())
    assert isinstance(error, expected(how)), repr(error)
    assert stats == {"idle": 0, "active": 0, "dialing": 0, "waiting": 0}


def test_cancelled_context_before_round_trip_dials_nothing(run, server, atransport):
    srv = server(keep_alive_handler())
    t = atransport()
    ctx = Context()
    ctx.cancel()

    async def main():
        async with t:
            with pytest.raises(roundtrip.Cancelled):
                await t.round_trip(Request("GET", srv.url(), context=ctx))

    run(main())
    assert srv.accepted == 0


def test_thousand_cancelled_waiters_leave_no_trace(run, server, atransport):
    srv = server(keep_alive_handler(b"served"))
    t = atransport(max_conns_per_host=1)

    async def main():
        async with t:
            holder = await t.round_trip(Request("GET", srv.url("/hold")))
            contexts = [Context() for _ in range(1000)]
            tasks = [asyncio.ensure_future(t.round_trip(Request("GET", srv.url("/w"), context=ctx))) for ctx in contexts]
            for _ in range(100):
                await asyncio.sleep(0)
                if t.pool_stats()["total"]["waiting"] == 1000:
                    break
            waiting = t.pool_stats()["total"]["waiting"]
            # Half by their task, half by their Context from another thread.
            for task in tasks[::2]:
                task.cancel()
            canceller = threading.Thread(target=lambda: [ctx.cancel() for ctx in contexts[1::2]])
            canceller.start()
            canceller.join()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            after_cancel = t.pool_stats()["total"]
            assert await holder.read() == b"served"
            await holder.aclose()
            body = await afetch_body(t, srv.url("/next"))
            return waiting, results, after_cancel, body, t.pool_stats()["total"]

    waiting, results, after_cancel, body, final = run(main())
    assert waiting == 1000
    assert all(isinstance(r, asyncio.CancelledError) for r in results[::2])
    assert all(isinstance(r, roundtrip.Cancelled) for r in results[1::2])
    assert after_cancel == {"idle": 0, "active": 1, "dialing": 0, "waiting": 0}
    assert body == b"served" and final == {"idle": 1, "active": 0, "dialing": 0, "waiting": 0}
    assert srv.accepted == 1


def test_aclose_while_a_response_is_read(run, server, atransport):
    watch = CloseWatch()
    go_on = threading.Event()

    def stage(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nfirst")
        go_on.wait(5.0)
        conn.send(b"end")
        watch.wait_close(conn)

    srv = server(stage)
    t = atransport()

    async def main():
        resp = await t.round_trip(Request("GET", srv.url()))
        assert await resp.read(5) == b"first"
        await t.aclose()
        go_on.set()
        rest = await resp.read()
        return rest, t.pool_stats()["total"]

    rest, stats = run(main())
    assert rest == b"end"
    assert stats == {"idle": 0, "active": 0, "dialing": 0, "waiting": 0}
    assert watch.closed.wait(5.0), "a connection finished after aclose() must be closed"
