"""AsyncTransport's pool: the decisions of the threaded pool (idle limits per host and across
hosts, FIFO waiters under max_conns_per_host, late binding) carried out on the loop, and idle
expiry by a loop timer instead of a thread."""

from __future__ import annotations

import asyncio
import socket

import pytest

import roundtrip
from roundtrip import Request

from aio import afetch_body
from servers import keep_alive_handler, respond

ZERO = {"idle": 0, "active": 0, "dialing": 0, "waiting": 0}


class GatedDial:
    """An async ``dial`` whose n-th call (0-based) in ``gated`` waits for ``gate``."""

    def __init__(self, gated: set[int]) -> None:
        self.gated = gated
        self.calls = 0
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()

    async def __call__(self, host, port, timeout):
        index = self.calls
        self.calls += 1
        if index in self.gated:
            self.entered.set()
            await self.gate.wait()
        return socket.create_connection((host, port))


def test_a_waiter_takes_a_returned_connection_before_its_own_dial_ends(run, server, atransport):
    srv = server(keep_alive_handler(b"ok"))
    dial = GatedDial({1})
    t = atransport(dial=dial)

    async def main():
        async with t:
            first = await t.round_trip(Request("GET", srv.url("/first")))
            second = asyncio.ensure_future(afetch_body(t, srv.url("/second")))
            await dial.entered.wait()  # the second request dials, and that dial hangs
            assert await first.read() == b"ok"  # the first connection goes back: to the waiter
            body = await second
            during = t.pool_stats()["total"]
            dial.gate.set()
            for _ in range(100):
                if t.pool_stats()["total"]["dialing"] == 0:
                    break
                await asyncio.sleep(0.01)
            return body, during, t.pool_stats()["total"]

    body, during, after = run(main())
    assert body == b"ok"
    assert during == {"idle": 1, "active": 0, "dialing": 1, "waiting": 0}
    assert after == {"idle": 2, "active": 0, "dialing": 0, "waiting": 0}, "the late dial goes to the pool"
    assert [r.connection for r in srv.received] == [0, 0]


def test_waiters_are_served_in_fifo_order(run, server, atransport):
    srv = server(keep_alive_handler(b"ok"))
    t = atransport(max_conns_per_host=1)
    order: list[int] = []

    async def one(index):
        resp = await t.round_trip(Request("GET", srv.url(f"/{index}")))
        order.append(index)
        await resp.read()
        await resp.aclose()

    async def main():
        async with t:
            holder = await t.round_trip(Request("GET", srv.url("/hold")))
            tasks = []
            for index in range(20):
                tasks.append(asyncio.ensure_future(one(index)))
                await asyncio.sleep(0)  # queued in this order
            await holder.read()
            await asyncio.gather(*tasks)

    run(main())
    assert order == list(range(20))
    assert srv.accepted == 1


def test_max_idle_conns_per_host_closes_the_extra_connections(run, server, atransport):
    srv = server(keep_alive_handler(b"ok"))
    t = atransport(max_idle_conns_per_host=2)

    async def main():
        async with t:
            responses = [await t.round_trip(Request("GET", srv.url())) for _ in range(4)]
            for resp in responses:
                await resp.read()
                await resp.aclose()
            return t.pool_stats()["total"]

    assert run(main()) == {"idle": 2, "active": 0, "dialing": 0, "waiting": 0}
    assert srv.accepted == 4


def test_max_idle_conns_keeps_the_most_recently_used_across_hosts(run, server, atransport):
    servers = [server(keep_alive_handler(b"ok")) for _ in range(3)]
    t = atransport(max_idle_conns=2)

    async def main():
        async with t:
            for srv in servers:
                await afetch_body(t, srv.url())
            return t.pool_stats()

    stats = run(main())
    assert stats["total"]["idle"] == 2
    assert f"http://127.0.0.1:{servers[0].port}" not in stats, "the oldest idle connection is closed first"


def test_idle_connections_expire_without_a_thread(run, server, atransport):
    srv = server(keep_alive_handler(b"ok"))
    t = atransport(idle_conn_timeout=0.2)

    async def main():
        async with t:
            await afetch_body(t, srv.url())
            idle = t.pool_stats()["total"]["idle"]
            for _ in range(300):
                if t.pool_stats()["total"]["idle"] == 0:
                    break
                await asyncio.sleep(0.01)
            return idle, t.pool_stats()["total"], await afetch_body(t, srv.url())

    idle, after, body = run(main())  # the fd and thread checks of every test see no thread
    assert (idle, after, body) == (1, ZERO, b"ok")
    assert srv.accepted == 2


def test_close_idle_connections_and_disable_keep_alives(run, server, atransport):
    srv = server(keep_alive_handler(b"ok"))
    t = atransport()
    no_reuse = atransport(disable_keep_alives=True)

    async def main():
        async with t, no_reuse:
            await afetch_body(t, srv.url())
            t.close_idle_connections()
            closed = t.pool_stats()["total"]
            await afetch_body(no_reuse, srv.url())
            await afetch_body(no_reuse, srv.url())
            return closed, no_reuse.pool_stats()["total"]

    closed, no_reuse_stats = run(main())
    assert closed == ZERO and no_reuse_stats == ZERO
    assert srv.accepted == 3
    assert srv.received[-1].header("connection") == "close"


def test_a_response_dropped_unread_frees_its_slot(run, server, atransport):
    srv = server(keep_alive_handler(b"x" * 100000))
    t = atransport(max_conns_per_host=1)

    async def main():
        async with t:
            resp = await t.round_trip(Request("GET", srv.url()))
            del resp  # never read nor closed: its connection is closed when it is collected
            import gc

            gc.collect()
            return await afetch_body(t, srv.url()), t.pool_stats()["total"]

    body, stats = run(main())
    assert body == b"x" * 100000 and stats["active"] == 0
    assert srv.accepted == 2


@pytest.mark.parametrize("count", [64])
def test_many_tasks_on_few_connections(run, server, atransport, count):
    def handler(conn):
        for request in conn.requests():
            conn.send(respond(200, request.target.encode()))

    srv = server(handler)
    t = atransport(max_conns_per_host=3)

    async def main():
        async with t:
            bodies = await asyncio.gather(*(afetch_body(t, srv.url(f"/{i}")) for i in range(count)))
            return bodies, t.pool_stats()["total"]

    bodies, stats = run(main())
    assert bodies == [f"/{i}".encode() for i in range(count)]
    assert srv.accepted <= 3 and stats["active"] == 0 and stats["waiting"] == 0
