"""pytest plugin for tools/compat.py: runs httpx's or requests' own test suite as it is, or with
roundtrip plugged in, and writes every test's outcome to a JSON file.

Loaded with ``-p compat_plugin``; configured through the environment:

- ``ROUNDTRIP_COMPAT_PLUG=1``: plug roundtrip in. ``httpx.HTTPTransport`` (the class
  ``httpx.Client`` builds its default and proxy transports from, and the one tests build
  directly) becomes ``roundtrip.adapters.HTTPXTransport``, and ``httpx.AsyncHTTPTransport``
  (the same for ``httpx.AsyncClient``) becomes ``roundtrip.adapters.HTTPXAsyncTransport``;
  ``requests.Session`` mounts ``roundtrip.adapters.RequestsAdapter`` for ``http://`` and
  ``https://``. Nothing of the suite's files is edited.
- ``ROUNDTRIP_COMPAT_RESULTS=PATH``: where to write ``{"outcomes": {nodeid: outcome},
  "async": [nodeid, ...]}``: each test's outcome (``passed``, ``failed``, ``skipped``,
  ``xfailed``, ``xpassed``, ``error``) and which tests belong to httpx's async half (coroutines,
  run by anyio's pytest plugin on asyncio, and plain tests parametrized with ``httpx.AsyncClient``).
- ``ROUNDTRIP_COMPAT_EXCLUDE=PATH``: node ids (one per line, ``#`` comments) deselected in
  both runs, such as tests that need the internet.

A coroutine test that anyio would run on trio is deselected in both runs: roundtrip's
``AsyncTransport`` is built on asyncio.
"""

from __future__ import annotations

import inspect
import json
import os
from typing import Any

import pytest

_PLUG = os.environ.get("ROUNDTRIP_COMPAT_PLUG") == "1"
_RESULTS_PATH = os.environ.get("ROUNDTRIP_COMPAT_RESULTS")
_EXCLUDE_PATH = os.environ.get("ROUNDTRIP_COMPAT_EXCLUDE")

_outcomes: dict[str, str] = {}
_async: set[str] = set()


def _plug_httpx() -> None:
    try:
        import httpx
        import httpx._client
    except ImportError:
        return
    from roundtrip.adapters import HTTPXAsyncTransport, HTTPXTransport

    httpx.HTTPTransport = HTTPXTransport  # type: ignore[misc, assignment]
    httpx._client.HTTPTransport = HTTPXTransport  # type: ignore[misc, assignment]
    httpx.AsyncHTTPTransport = HTTPXAsyncTransport  # type: ignore[misc, assignment]
    httpx._client.AsyncHTTPTransport = HTTPXAsyncTransport  # type: ignore[misc, assignment]


def _plug_requests() -> None:
    try:
        import requests
        import requests.sessions
    except ImportError:
        return
    from roundtrip.adapters import RequestsAdapter

    # Session.__init__ mounts ``HTTPAdapter()`` as looked up in requests.sessions.
    requests.sessions.HTTPAdapter = RequestsAdapter  # type: ignore[assignment]


def pytest_configure(config: Any) -> None:
    if _PLUG:
        _plug_httpx()
        _plug_requests()


def pytest_report_header(config: Any) -> str:
    if not _PLUG:
        return "roundtrip compat: unmodified run"
    import roundtrip

    return f"roundtrip compat: roundtrip plugged in ({roundtrip.__file__}, implementation {roundtrip.IMPLEMENTATION})"


def _excluded() -> set[str]:
    if not _EXCLUDE_PATH:
        return set()
    with open(_EXCLUDE_PATH, encoding="utf-8") as file:
        lines = (line.split("#", 1)[0].strip() for line in file)
        return {line for line in lines if line}


def pytest_collection_modifyitems(config: Any, items: list) -> None:
    excluded = _excluded()
    kept, dropped = [], []
    for item in items:
        coroutine = inspect.iscoroutinefunction(getattr(item, "obj", None))
        params = getattr(item, "callspec", None)
        on_trio = params is not None and params.params.get("anyio_backend") not in (None, "asyncio")
        if item.nodeid in excluded or (coroutine and on_trio):
            dropped.append(item)
            continue
        kept.append(item)
        if coroutine or _uses_async_client(params):
            _async.add(item.nodeid)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _uses_async_client(params: Any) -> bool:
    """A plain test parametrized with ``httpx.AsyncClient`` (httpx runs some sync checks,
    such as proxy selection, once per client class) belongs to the async half too."""
    if params is None:
        return False
    import httpx

    return any(value is httpx.AsyncClient for value in params.params.values())


def pytest_runtest_logreport(report: Any) -> None:
    nodeid = report.nodeid
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            outcome = "xpassed" if report.passed else "xfailed"
        else:
            outcome = report.outcome
        if _outcomes.get(nodeid) != "error":
            _outcomes[nodeid] = outcome
    elif report.failed:  # setup or teardown broke
        _outcomes[nodeid] = "error"
    elif report.when == "setup" and report.skipped:
        _outcomes[nodeid] = "xfailed" if hasattr(report, "wasxfail") else "skipped"


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    if _RESULTS_PATH:
        with open(_RESULTS_PATH, "w", encoding="utf-8") as file:
            json.dump({"outcomes": _outcomes, "async": sorted(_async)}, file, indent=0, sort_keys=True)
