"""Running coroutines in tests, under the default asyncio loop and under uvloop, with no
pytest plugin: the ``run`` fixture (ids ``asyncio`` and ``uvloop``) combines with ``impl``.

``run(coro)`` runs ``coro`` to its end on a fresh loop of the fixture's kind, bounded in
time, and fails if it leaves a task running behind it.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Coroutine, Iterator, TypeVar

import pytest

import roundtrip

try:
    import uvloop
except ImportError:  # an optional loop
    uvloop = None
else:
    # uvloop's first loop opens a pipe the process keeps: open it now, before the fd checks.
    _first = uvloop.new_event_loop()
    _first.run_until_complete(asyncio.sleep(0))
    _first.close()

T = TypeVar("T")

RUN_TIMEOUT = 30.0  # no coroutine of a test runs longer


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        assert uvloop is not None
        return uvloop.new_event_loop()  # type: ignore[no-any-return]
    return asyncio.new_event_loop()


def run_on(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on ``loop``; every other task must have ended when it does."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, RUN_TIMEOUT)

    result = loop.run_until_complete(bounded())
    # Callbacks scheduled by the last steps (closing transports) run before the check.
    loop.run_until_complete(asyncio.sleep(0))
    left = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in left:
        task.cancel()
    if left:
        loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
    assert not left, f"tasks left running: {left}"
    return result


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_kind(request: Any) -> str:
    if request.param == "uvloop" and uvloop is None:
        pytest.skip("uvloop is not installed")
    return str(request.param)


@pytest.fixture
def run(loop_kind: str) -> Iterator[Callable[[Coroutine[Any, Any, Any]], Any]]:
    """``run(coro)``: the coroutine's result, run on a loop of this test's kind."""
    loop = new_loop(loop_kind)
    try:
        yield lambda coro: run_on(loop, coro)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


@pytest.fixture
def atransport() -> Iterator[Callable[..., roundtrip.AsyncTransport]]:
    """Build AsyncTransports with options; after the test, each must have nothing active,
    dialing or waiting (the test closes them with ``aclose`` or ``async with``)."""
    made: list[roundtrip.AsyncTransport] = []

    def make(**options: Any) -> roundtrip.AsyncTransport:
        options.setdefault("proxy", None)
        t = roundtrip.AsyncTransport(**options)
        made.append(t)
        return t

    yield make
    for t in made:
        stats = t.pool_stats()["total"]
        assert stats["active"] == 0 and stats["waiting"] == 0 and stats["dialing"] == 0, stats


async def afetch(t: roundtrip.AsyncTransport, url: str, method: str = "GET", **kwargs: Any) -> tuple[roundtrip.AsyncResponse, bytes]:
    """One request with its body read whole: the (closed) response and the body."""
    async with await t.round_trip(roundtrip.Request(method, url, **kwargs)) as resp:
        return resp, await resp.read()


async def afetch_body(t: roundtrip.AsyncTransport, url: str, method: str = "GET", **kwargs: Any) -> bytes:
    return (await afetch(t, url, method, **kwargs))[1]


async def agen(*chunks: bytes) -> Any:
    """An async iterable request body."""
    for chunk in chunks:
        await asyncio.sleep(0)
        yield chunk


__all__ = ("afetch", "afetch_body", "agen", "new_loop", "run_on", "Awaitable")
