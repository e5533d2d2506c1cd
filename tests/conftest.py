"""Fixtures shared by the whole suite.

Every test runs against both implementations: the autouse ``impl`` fixture (ids ``c``,
``c-general`` and ``py``) installs one twin as the live implementation before the test builds
its Transport; ``c-general`` is the compiled twin with the compiled exchange turned off
(``roundtrip._transport.FAST_PATH``), so every case also runs over the general exchange.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Iterator

import pytest

import roundtrip
from roundtrip import _speedups, _speedups_py, _transport
from roundtrip._speedups import env_flag

from helpers import RecordingDial
from servers import Nginx, ScriptedServer, full_accept_queue

try:
    from roundtrip import _speedups_c
except ImportError:  # not built
    _speedups_c = None  # type: ignore[assignment]

pytest_plugins = ("proxies", "aio")  # tinyproxy, microsocks and certificate fixtures; running coroutines

REQUIRE_EXTENSIONS = env_flag("ROUNDTRIP_REQUIRE_EXTENSIONS")
IN_CI = env_flag("CI")


def pytest_report_header(config: Any) -> str:
    built = "built" if _speedups_c is not None else "NOT built"
    return f"roundtrip: compiled module {built}; default implementation {roundtrip.IMPLEMENTATION}"


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "once(impl): run under one implementation parameter only (default c)")


# Modules whose tests never reach the threaded transport's exchange (parsers, validation, proxy
# choice, the asyncio transport and its adapter, the package's own checks): under ``c-general``
# they would repeat ``c`` exactly, so that parameter is deselected there.
_ONE_COMPILED_PATH = frozenset(
    {
        "test_speedups_parity.py",
        "test_parser_differential.py",
        "test_response_build.py",
        "test_fuzz_parsers.py",
        "test_headers.py",
        "test_validation.py",
        "test_proxy_env.py",
        "test_dial_schedule.py",
        "test_core.py",
        "test_typing.py",
        "test_distribution.py",
        "test_docs_complete.py",
        "test_bench.py",
    }
)


def _one_compiled_path(item: Any) -> bool:
    name = item.path.name
    return name in _ONE_COMPILED_PATH or name.startswith(("test_async_", "test_adapters_httpx_async"))


def pytest_collection_modifyitems(config: Any, items: list) -> None:
    """Tests that cover both implementations by themselves (the differential tests compare the
    twins; the bench runs both) run once: their other parameter is deselected, not skipped.
    Tests that never reach the compiled exchange skip ``c-general`` the same way."""
    kept, dropped = [], []
    for item in items:
        marker = item.get_closest_marker("once")
        wanted = marker.kwargs.get("impl", "c") if marker else ("c" if "twins" in item.fixturenames else None)
        params = getattr(item, "callspec", None)
        impl = params.params.get("impl") if params is not None else None
        if wanted and params is not None and impl not in (None, wanted):
            dropped.append(item)
        elif impl == "c-general" and _one_compiled_path(item):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(params=["c", "c-general", "py"], autouse=True)
def impl(request: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The implementation under test; Transports built in the test use it (``c-general``: the
    compiled twin without the compiled exchange)."""
    monkeypatch.setattr(_transport, "FAST_PATH", request.param == "c")
    if request.param != "py":
        if _speedups_c is None:
            if REQUIRE_EXTENSIONS:
                pytest.fail("ROUNDTRIP_REQUIRE_EXTENSIONS is set but roundtrip._speedups_c is missing")
            pytest.skip("compiled extension not built")
        module = _speedups_c
    else:
        module = _speedups_py
    monkeypatch.setattr(_speedups, "impl", module)
    return module


@pytest.fixture
def twins(impl: Any) -> tuple[Any, Any]:
    """(compiled, pure Python) for the tests that compare them; such tests run once."""
    if _speedups_c is None:
        if REQUIRE_EXTENSIONS:
            pytest.fail("ROUNDTRIP_REQUIRE_EXTENSIONS is set but roundtrip._speedups_c is missing")
        pytest.skip("compiled extension not built")
    return _speedups_c, _speedups_py


_FD_DIR = next((path for path in ("/proc/self/fd", "/dev/fd") if os.path.isdir(path)), None)


def _open_fds() -> set[str]:
    """The process's open descriptors (Linux, macOS); nothing to compare on Windows."""
    return set(os.listdir(_FD_DIR)) if _FD_DIR is not None else set()


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Open file descriptors and threads are back to where they were after each test."""
    fds = _open_fds()
    threads = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 3.0
    while True:
        extra_threads = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
        leaked_fds = _open_fds() - fds
        if not extra_threads and not leaked_fds:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    details = {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in leaked_fds if os.path.exists(f"/proc/self/fd/{fd}")}
    assert not extra_threads and not details, f"leaked threads {extra_threads} fds {details}"


def _check_drained(t: roundtrip.Transport) -> None:
    """Nothing is left active or waiting; a dial abandoned by its request (cancel, deadline)
    may still be winding down, and must end within a few of its 50 ms ticks."""
    stats = t.pool_stats()["total"]
    deadline = time.monotonic() + 3.0
    while stats["dialing"] and time.monotonic() < deadline:
        time.sleep(0.01)
        stats = t.pool_stats()["total"]
    t.close()
    assert stats["active"] == 0 and stats["waiting"] == 0 and stats["dialing"] == 0, stats


@pytest.fixture
def transport() -> Iterator[roundtrip.Transport]:
    """A Transport closed after the test, which checks nothing is left active or waiting."""
    t = roundtrip.Transport()
    yield t
    _check_drained(t)


@pytest.fixture
def make_transport() -> Iterator[Callable[..., roundtrip.Transport]]:
    """Build Transports with options; each is checked and closed after the test."""
    made: list[roundtrip.Transport] = []

    def make(**options: Any) -> roundtrip.Transport:
        t = roundtrip.Transport(**options)
        made.append(t)
        return t

    yield make
    for t in made:
        _check_drained(t)


@pytest.fixture
def server() -> Iterator[Callable[..., ScriptedServer]]:
    """Start scripted servers: ``server(handler)`` or ``server([handler_conn0, handler_conn1])``."""
    started: list[ScriptedServer] = []

    def start(handler: Any, **kwargs: Any) -> ScriptedServer:
        srv = ScriptedServer(handler, **kwargs)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.close()


@pytest.fixture
def counting_dial() -> RecordingDial:
    """A ``dial`` option that records its calls and connects where it is asked to."""
    return RecordingDial()


@pytest.fixture
def unreachable() -> Iterator[tuple[str, int]]:
    """``(host, port)`` whose TCP connect hangs (a listener with a full accept queue)."""
    with full_accept_queue() as address:
        yield address


@pytest.fixture(scope="session")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    """A real nginx for the session (skipped where nginx is not installed, except in CI)."""
    try:
        server = Nginx(tmp_path_factory.mktemp("nginx"))
    except FileNotFoundError:
        if IN_CI:
            pytest.fail("nginx is not installed (.ci/run installs it)")
        pytest.skip("nginx is not installed")
    yield server
    server.stop()
