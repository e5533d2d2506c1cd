"""What every benchmarked client shares: the response check, the measuring loops, and the two
base classes (``Client`` for blocking clients, ``AsyncClient`` for asyncio ones).

A blocking client's ``bind(method, path, body)`` returns a function that sends one request,
reads the whole body, and returns ``(status, body length)``; an async client's ``bind`` is a
coroutine returning such a coroutine function. ``measure`` drives it and checks every response.
Each client runs in its own process (``worker.py``), so a library only has to be importable there.
"""

from __future__ import annotations

import asyncio
import importlib
import resource
import threading
import time
from typing import Any, Awaitable, Callable, NamedTuple, Optional

from .scenarios import Scenario

__all__ = ("Call", "AsyncCall", "CheckFailed", "Measurement", "Client", "AsyncClient", "process_cpu", "library")

Call = Callable[[], "tuple[int, int]"]
AsyncCall = Callable[[], Awaitable["tuple[int, int]"]]


class CheckFailed(Exception):
    """A response was not 200 with the exact expected body length."""


class Measurement(NamedTuple):
    requests: int  # measured requests (all checked)
    cpu_s: float  # this process's user + system CPU over the measured requests (all threads)
    wall_s: float
    checked: int  # responses checked, warm-up included


def process_cpu() -> float:
    """User + system CPU seconds of this process, every thread included (a client's own
    threads and runtimes count against it)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def library(name: str) -> Any:
    """Import another library for a client. Typed ``Any``: not every one ships type information,
    and the type check must not depend on which are installed."""
    return importlib.import_module(name)


def _check(status: int, length: int, expect: int, sent: int) -> None:
    if status != 200 or length != expect:
        raise CheckFailed(f"response {sent + 1}: status {status} with a {length}-byte body (expected 200 and {expect} bytes)")


def _drive(call: Call, expect: int, batch: int, deadline: float, minimum: int) -> int:
    """Send requests in batches until ``deadline`` has passed and at least ``minimum`` were
    sent; check each response. Returns how many were sent."""
    perf_counter = time.perf_counter
    sent = 0
    while True:
        for _ in range(batch):
            status, length = call()
            if status != 200 or length != expect:
                _check(status, length, expect, sent)
            sent += 1
        if sent >= minimum and perf_counter() >= deadline:
            return sent


async def _adrive(call: AsyncCall, expect: int, batch: int, deadline: float, minimum: int) -> int:
    """``_drive`` for one task of an async client."""
    perf_counter = time.perf_counter
    sent = 0
    while True:
        for _ in range(batch):
            status, length = await call()
            if status != 200 or length != expect:
                _check(status, length, expect, sent)
            sent += 1
        if sent >= minimum and perf_counter() >= deadline:
            return sent


class Client:
    """A blocking client under test; subclasses implement ``bind`` (and may override ``measure``)."""

    #: False when one client object cannot be used by several threads at once: the threads
    #: scenario then gives each thread its own (noted in the output).
    shared_across_threads = True

    def __init__(self, host: str, port: int, **options: Any) -> None:
        self.host = host
        self.port = port
        self.base = f"http://{host}:{port}"
        self.options = options

    def version(self) -> str:
        return ""

    def bind(self, method: str, path: str, body: Optional[bytes]) -> Call:
        raise NotImplementedError

    def fresh(self) -> "Client":
        """Another client like this one (for threads that cannot share it)."""
        return type(self)(self.host, self.port, **self.options)

    def close(self) -> None:
        pass

    def measure(self, scenario: Scenario, duration: float, warmup: float, minimum: int) -> Measurement:
        """Warm up, then run ``scenario`` for ``duration`` seconds (and at least ``minimum``
        requests), measuring this process's CPU time and the wall time."""
        if scenario.threads > 1:
            return self._measure_threads(scenario, duration, warmup, minimum)
        call = self.bind(scenario.method, scenario.path, scenario.body)
        perf_counter = time.perf_counter
        warm = _drive(call, scenario.expect, scenario.batch, perf_counter() + warmup, 1)
        cpu0, t0 = process_cpu(), perf_counter()
        sent = _drive(call, scenario.expect, scenario.batch, t0 + duration, minimum)
        t1, cpu1 = perf_counter(), process_cpu()
        return Measurement(sent, cpu1 - cpu0, t1 - t0, sent + warm)

    def _measure_threads(self, scenario: Scenario, duration: float, warmup: float, minimum: int) -> Measurement:
        count = scenario.threads
        clients = [self] * count if self.shared_across_threads else [self] + [self.fresh() for _ in range(count - 1)]
        calls = [client.bind(scenario.method, scenario.path, scenario.body) for client in clients]
        start = threading.Barrier(count + 1)
        deadline = [0.0]
        sent = [0] * count
        warm = [0] * count
        errors: list[BaseException] = []
        per_thread = max(1, minimum // count)

        def worker(index: int) -> None:
            call = calls[index]
            try:
                # Warm-up runs in parallel, so every thread holds a connection before the start.
                warm[index] = _drive(call, scenario.expect, scenario.batch, time.perf_counter() + warmup, 1)
                start.wait()
                sent[index] = _drive(call, scenario.expect, scenario.batch, deadline[0], per_thread)
            except threading.BrokenBarrierError:
                pass
            except BaseException as exc:
                errors.append(exc)
                start.abort()

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(count)]
        for thread in threads:
            thread.start()
        try:
            start.wait()
        except threading.BrokenBarrierError:
            pass
        # Measure from the release of the barrier to the last thread's end.
        cpu0, t0 = process_cpu(), time.perf_counter()
        deadline[0] = t0 + duration
        for thread in threads:
            thread.join()
        t1, cpu1 = time.perf_counter(), process_cpu()
        for client in clients[1:]:
            client.close()
        if errors:
            raise errors[0]
        return Measurement(sum(sent), cpu1 - cpu0, t1 - t0, sum(sent) + sum(warm))


class AsyncClient:
    """An asyncio client under test, built and used inside the running loop: ``open`` once,
    ``bind`` once per task (a client that one task at a time can use opens what that task needs
    there), ``aclose`` at the end."""

    def __init__(self, host: str, port: int, **options: Any) -> None:
        self.host = host
        self.port = port
        self.base = f"http://{host}:{port}"
        self.options = options

    def version(self) -> str:
        return ""

    async def open(self) -> None:
        pass

    async def bind(self, method: str, path: str, body: Optional[bytes]) -> AsyncCall:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass

    async def measure(self, scenario: Scenario, duration: float, warmup: float, minimum: int) -> Measurement:
        """Every task warms up (so each holds a connection), then all run together for
        ``duration`` seconds and at least ``minimum`` requests in all; CPU is the whole
        process's, over the measured window."""
        count = max(1, scenario.tasks)
        calls = [await self.bind(scenario.method, scenario.path, scenario.body) for _ in range(count)]
        expect, batch = scenario.expect, scenario.batch
        perf_counter = time.perf_counter
        warm_until = perf_counter() + warmup
        warm = await asyncio.gather(*(_adrive(call, expect, batch, warm_until, 1) for call in calls))
        per_task = max(1, minimum // count)
        cpu0, t0 = process_cpu(), perf_counter()
        sent = await asyncio.gather(*(_adrive(call, expect, batch, t0 + duration, per_task) for call in calls))
        t1, cpu1 = perf_counter(), process_cpu()
        return Measurement(sum(sent), cpu1 - cpu0, t1 - t0, sum(sent) + sum(warm))
