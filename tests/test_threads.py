"""One Transport shared by many threads: every response right, connections reused, and the pool
back to no active connection at the end."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import roundtrip

from servers import respond

THREADS = 8
PER_THREAD = 50
SLACK = THREADS  # dials still in flight when a returned connection served their request (late binding)


def echo_path_handler(conn):
    """Answer each request with its own target, so a mixed-up response shows."""
    for request in conn.requests():
        conn.send(respond(200, request.target.encode()))


def run_threads(worker):
    start = threading.Barrier(THREADS)

    def task(index):
        start.wait(10)
        return worker(index)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(task, range(THREADS)))


def test_shared_transport_many_threads_scripted_server(transport, server):
    srv = server(echo_path_handler)

    def worker(index):
        wrong = []
        for n in range(PER_THREAD):
            path = f"/t{index}/r{n}"
            with transport.round_trip(roundtrip.Request("GET", srv.url(path))) as resp:
                body = resp.read()
            if resp.status_code != 200 or body != path.encode():
                wrong.append((path, resp.status_code, body))
        return wrong

    results = run_threads(worker)
    assert [w for w in results if w] == []
    assert len(srv.received) == THREADS * PER_THREAD
    total = transport.pool_stats()["total"]
    assert total["active"] == 0 and total["dialing"] == 0 and total["waiting"] == 0
    assert 1 <= total["idle"] <= srv.accepted
    assert srv.accepted <= THREADS + SLACK, f"{srv.accepted} connections for {THREADS} threads"


def test_shared_transport_many_threads_mixed_methods(transport, server):
    srv = server(echo_path_handler)

    def worker(index):
        wrong = []
        for n in range(PER_THREAD // 2):
            path = f"/m{index}/{n}"
            if n % 3 == 0:
                req = roundtrip.Request("POST", srv.url(path), body=path.encode() * 10)
            elif n % 3 == 1:
                req = roundtrip.Request("PUT", srv.url(path), body=iter([b"a", b"b"]))
            else:
                req = roundtrip.Request("GET", srv.url(path))
            with transport.round_trip(req) as resp:
                pieces = list(resp.iter_bytes(3))
            if b"".join(pieces) != path.encode():
                wrong.append(path)
        return wrong

    assert [w for w in run_threads(worker) if w] == []
    assert transport.pool_stats()["total"]["active"] == 0
    bodies = {r.target: r.body for r in srv.received}
    assert bodies["/m0/0"] == b"/m0/0" * 10
    assert bodies["/m0/1"] == b"ab"
    assert srv.accepted <= THREADS + SLACK


def test_shared_transport_many_threads_nginx(transport, nginx):
    names = ["small", "64k"]

    def worker(index):
        wrong = []
        for n in range(PER_THREAD // 2):
            name = names[(index + n) % 2]
            with transport.round_trip(roundtrip.Request("GET", nginx.url(f"/{name}"))) as resp:
                if resp.read() != nginx.files[name]:
                    wrong.append(name)
        return wrong

    assert [w for w in run_threads(worker) if w] == []
    total = transport.pool_stats()["total"]
    assert total["active"] == 0
    assert 1 <= total["idle"] <= THREADS + SLACK


def test_responses_closed_early_from_many_threads_leave_nothing_active(transport, server):
    def handler(conn):
        for _ in conn.requests():
            conn.send(respond(200, b"x" * 100000))

    srv = server(handler)

    def worker(index):
        for n in range(10):
            with transport.round_trip(roundtrip.Request("GET", srv.url(f"/{index}/{n}"))) as resp:
                assert resp.read(10) == b"x" * 10
        return index

    assert run_threads(worker) == list(range(THREADS))
    assert transport.pool_stats() == {"total": {"idle": 0, "active": 0, "dialing": 0, "waiting": 0}}
    assert srv.accepted == THREADS * 10
