"""Micro-benchmarks of roundtrip's hot paths, compiled (``_speedups_c``) against pure Python
(``_speedups_py``): header validation, method check, request head serialization, response head
parsing, idle-pool get/put, and a whole request preparation.

As a script (plain ``timeit``, median of repeats, one table with the py/c ratio)::

    python benchmarks/micro.py [--repeat 7] [--json FILE] [CASE ...]

With pytest-benchmark (one benchmark per case and implementation)::

    python -m pytest benchmarks/micro.py -p no:cacheprovider --benchmark-group-by=param:case
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import timeit
from pathlib import Path
from types import ModuleType
from typing import Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from roundtrip import _speedups, _speedups_py  # noqa: E402

try:
    from roundtrip import _speedups_c
except ImportError:  # not built: the table says so
    _speedups_c = None  # type: ignore[assignment]

FIELDS = [
    ("Host", "example.com:8080"),
    ("User-Agent", "roundtrip/0.1"),
    ("Accept", "application/json, text/plain, */*"),
    ("Authorization", "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.signature"),
    ("Accept-Encoding", "gzip"),
]
# What nginx sends for GET /small.
NGINX_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Server: nginx/1.22.1\r\n"
    b"Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Length: 13\r\n"
    b"Last-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
    b"Connection: keep-alive\r\n"
    b'ETag: "65920080-d"\r\n'
    b"Accept-Ranges: bytes\r\n"
    b"\r\n"
    b"Hello, World!"
)


class _Conn:
    __slots__ = ("idle_since",)

    def __init__(self) -> None:
        self.idle_since = 0.0


def cases(impl: ModuleType) -> dict[str, Callable[[], object]]:
    """Each case as a zero-argument callable doing one operation with ``impl``."""
    validate_header_fields = impl.validate_header_fields
    validate_method = impl.validate_method
    encode_request_head = impl.encode_request_head
    ResponseParser = impl.ResponseParser
    idle = impl.IdleConnections(100, 16)
    conn = _Conn()
    key = "http://127.0.0.1:8080"
    head_fields = [("Host", "127.0.0.1:8080"), ("User-Agent", "roundtrip/0.1"), ("Accept-Encoding", "gzip")]

    def parse_head() -> object:
        parser = ResponseParser("GET", 1 << 20)
        parser.feed(NGINX_HEAD)
        head = parser.next_event()
        parser.take_unparsed()
        return head

    def pool_put_get() -> object:
        idle.put(key, conn)
        return idle.get(key)

    return {
        "validate_header_fields (5 fields)": lambda: validate_header_fields(FIELDS),
        "validate_method (PROPFIND)": lambda: validate_method("PROPFIND"),
        "encode_request_head (GET, 3 fields)": lambda: encode_request_head("GET", "/small", head_fields),
        "parse response head (nginx, 9 fields)": parse_head,
        "idle pool put + get": pool_put_get,
        "prepare request (Transport._prepare)": _prepare_case(impl),
    }


def _prepare_case(impl: ModuleType) -> Callable[[], object]:
    """Validation, routing and head building of a whole request, with ``impl`` live."""
    import roundtrip

    saved = _speedups.impl
    _speedups.impl = impl  # a Transport takes the implementation live when it is built
    try:
        transport = roundtrip.Transport(proxy=None)
    finally:
        _speedups.impl = saved
    request = roundtrip.Request("GET", "http://127.0.0.1:8080/small", headers={"Accept": "*/*"})
    return lambda: transport._prepare(request)


def measure(fn: Callable[[], object], repeat: int, target: float = 0.1) -> float:
    """Median seconds per call over ``repeat`` timings of about ``target`` seconds each."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    number = max(1, int(number * target / 0.2))
    return statistics.median(t / number for t in timer.repeat(repeat=repeat, number=number))


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case", nargs="*", help="substring of the case names to run (default: all)")
    parser.add_argument("--repeat", type=int, default=7, help="timings per case; the median is reported")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    opts = parser.parse_args(argv)
    impls = {"py": _speedups_py}
    if _speedups_c is not None:
        impls["c"] = _speedups_c
    else:
        print("roundtrip._speedups_c is NOT built: pure Python only", file=sys.stderr)
    table = {name: cases(module) for name, module in impls.items()}
    results: dict[str, dict[str, float]] = {}
    names = [n for n in table["py"] if not opts.case or any(s.lower() in n.lower() for s in opts.case)]
    print(f"{'case':<40} {'c ns/op':>10} {'py ns/op':>10} {'py/c':>7}")
    for name in names:
        row = {impl: measure(table[impl][name], opts.repeat) * 1e9 for impl in table}
        results[name] = row
        c = row.get("c")
        ratio = f"{row['py'] / c:6.1f}x" if c else "     —"
        print(f"{name:<40} {c if c else float('nan'):>10.0f} {row['py']:>10.0f} {ratio:>7}", flush=True)
    if opts.json:
        Path(opts.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


# -- pytest-benchmark -------------------------------------------------------------------------

try:
    import pytest
except ImportError:  # the script does not need it
    pytest = None  # type: ignore[assignment]

if pytest is not None:
    _IMPLS = [("py", _speedups_py)] + ([("c", _speedups_c)] if _speedups_c is not None else [])
    _CASES = list(cases(_speedups_py))

    @pytest.mark.parametrize("case", _CASES)
    @pytest.mark.parametrize("impl", [module for _, module in _IMPLS], ids=[name for name, _ in _IMPLS])
    def test_micro(benchmark, impl: ModuleType, case: str) -> None:  # type: ignore[no-untyped-def]
        benchmark(cases(impl)[case])


if __name__ == "__main__":
    sys.exit(main())
