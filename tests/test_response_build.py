"""The I/O-free step from a parsed head to a ``Response`` (``ResponseParser.build_response``).

The compiled parser works out a head's facts (keep-alive, gzip, a Content-Length field) while
it parses; the py twin applies ``response_facts`` to the parsed fields. On the same bytes, fed
whole or in pieces, both twins must build the same Response: status, reason, version, header
fields, content length, body, and the same hand-back of the connection.
"""

from __future__ import annotations

import gzip
import random
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import roundtrip
from roundtrip._headers import response_facts

H = b"HTTP/1.1 "


class WireStub:
    """A connection whose every byte is already in the parser: a read past them is EOF."""

    def __init__(self) -> None:
        self.reused = False
        self.bytes_written = 0
        self.orphans = None
        self.buf = bytearray(64)
        self.view = memoryview(self.buf)
        self.closed = False

    def recv_into(self, view: memoryview) -> int:
        return 0

    def close(self) -> None:
        self.closed = True


def pieces_of(data: bytes, how: str, rng: random.Random) -> list[bytes]:
    if how == "whole":
        return [data]
    if how == "bytes":
        return [data[i : i + 1] for i in range(len(data))]
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, 4)))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]


def final_head(module: Any, pieces: list[bytes], method: str) -> tuple[Any, Any]:
    parser = module.ResponseParser(method)
    head = None
    for piece in pieces:
        parser.feed(piece)
        while head is None or head.status_code < 200 and head.status_code != 101:
            event = parser.next_event()
            if event is None:
                break
            head = event
    assert head is not None and (head.status_code >= 200 or head.status_code == 101)
    return parser, head


def build(module: Any, data: bytes, how: str = "whole", method: str = "GET", gzip_requested: bool = False,
          close_after: bool = False, seed: int = 0) -> dict[str, Any]:
    """Everything a caller can see of the Response the twin builds, its body read to the end."""
    parser, head = final_head(module, pieces_of(data, how, random.Random(seed)), method)
    finished: list[tuple[Any, bool]] = []
    conn = WireStub()
    request = roundtrip.Request(method, "http://example.test/")
    prepared = SimpleNamespace(request=request, close_after=close_after, gzip_requested=gzip_requested, method=method)
    response = parser.build_response(conn, prepared, head, lambda c, reusable: finished.append((c, reusable)))
    seen = {
        "facts": parser.head_facts(),
        "status": response.status_code,
        "reason": response.reason,
        "version": response.http_version,
        "headers": response.headers.items(),
        "content_length": response.content_length,
        "uncompressed": response.uncompressed,
        "request": response.request is request,
        "finished_before_read": [(c is conn, reusable) for c, reusable in finished],
    }
    try:
        seen["body"] = response.read()
    except roundtrip.Error as exc:
        seen["body"] = (type(exc), str(exc))
    response.close()
    seen["trailers"] = response.trailers.items()
    seen["finished"] = [(c is conn, reusable) for c, reusable in finished]
    return seen


GZIPPED = gzip.compress(b"hello")

# (id, response bytes, method)
CASES = [
    ("nginx-small", H + b"200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 30 Nov 2026 19:29:24 GMT\r\n"
     b"Content-Type: application/octet-stream\r\nContent-Length: 13\r\nConnection: keep-alive\r\n"
     b"ETag: \"6b0dce94-d\"\r\nAccept-Ranges: bytes\r\n\r\nHello, World!", "GET"),
    ("close", H + b"200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "GET"),
    ("close-in-a-list", H + b"200 OK\r\nconnection: Upgrade, CLOSE \r\nContent-Length: 2\r\n\r\nok", "GET"),
    ("close-after-nbsp", H + b"200 OK\r\nConnection: \xa0close\r\nContent-Length: 2\r\n\r\nok", "GET"),
    ("close-second-field", H + b"200 OK\r\nConnection: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "GET"),
    ("http10", b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "GET"),
    ("http10-keep-alive", b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok", "GET"),
    ("http10-keep-alive-and-close", b"HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\nok", "GET"),
    ("gzip", H + b"200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(GZIPPED) + GZIPPED, "GET"),
    ("gzip-any-case", H + b"200 OK\r\ncontent-encoding:  GZip \r\nContent-Length: %d\r\n\r\n" % len(GZIPPED) + GZIPPED, "GET"),
    ("gzip-then-br", H + b"200 OK\r\nContent-Encoding: gzip, br\r\nContent-Length: 2\r\n\r\nok", "GET"),
    ("first-encoding-counts", H + b"200 OK\r\nContent-Encoding: identity\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\nok", "GET"),
    ("cl-list", H + b"200 OK\r\nContent-Length: 2 , 2\r\ncontent-length: 2\r\n\r\nok", "GET"),
    ("cl-zero", H + b"200 OK\r\nContent-Length: 0\r\n\r\n", "GET"),
    ("cl-zero-then-stray-bytes", H + b"200 OK\r\nContent-Length: 0\r\n\r\nstray", "GET"),
    ("cl-short", H + b"200 OK\r\nContent-Length: 5\r\n\r\nok", "GET"),
    ("cl-long", H + b"200 OK\r\nContent-Length: 2\r\n\r\nokextra", "GET"),
    ("cl-19-digits", H + b"200 OK\r\nContent-Length: 0000000000000000002\r\n\r\nok", "GET"),
    ("chunked", H + b"200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 1\r\n\r\n", "GET"),
    ("chunked-and-cl", H + b"200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", "GET"),
    ("chunked-gzip", H + b"200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % len(GZIPPED) + GZIPPED + b"\r\n0\r\n\r\n", "GET"),
    ("until-close", H + b"200 OK\r\nServer: x\r\n\r\nbody", "GET"),
    ("head-with-cl", H + b"200 OK\r\nContent-Length: 99\r\nContent-Encoding: gzip\r\n\r\n", "HEAD"),
    ("head-without-cl", H + b"200 OK\r\nServer: x\r\n\r\n", "HEAD"),
    ("204", H + b"204 No Content\r\nConnection: close\r\n\r\n", "GET"),
    ("101", H + b"101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x00", "GET"),
    ("1xx-first", H + b"100 Continue\r\nConnection: close\r\n\r\n" + H + b"200 OK\r\nContent-Length: 2\r\n\r\nok", "GET"),
    ("no-reason", H + b"200\r\nContent-Length: 2\r\n\r\nok", "GET"),
    ("latin-1-value", H + b"200 OK\r\nX-Name: caf\xe9\r\nContent-Length: 2\r\n\r\nok", "GET"),
    ("obs-fold", H + b"200 OK\r\nX-Long: a\r\n  b\r\nConnection:\r\n close\r\nContent-Length: 2\r\n\r\nok", "GET"),
]


@pytest.mark.parametrize("gzip_requested", [False, True])
@pytest.mark.parametrize("how", ["whole", "bytes", "random"])
@pytest.mark.parametrize(("data", "method"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_both_twins_build_the_same_response(twins, data, method, how, gzip_requested):
    c, py = twins
    for seed in range(2 if how == "random" else 1):
        built_c = build(c, data, how, method, gzip_requested, seed=seed)
        built_py = build(py, data, how, method, gzip_requested, seed=seed)
        assert built_c == built_py


@pytest.mark.parametrize(("data", "method"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_head_facts_follow_the_rule_over_the_parsed_fields(impl, data, method):
    parser, head = final_head(impl, [data], method)
    assert parser.head_facts() == response_facts(head.http_version, head.headers)


def test_nginx_response_is_built_as_expected(impl):
    built = build(impl, CASES[0][1])
    assert built["facts"] == (True, False, True)
    assert (built["status"], built["reason"], built["version"]) == (200, "OK", "HTTP/1.1")
    assert built["headers"][3] == ("Content-Length", "13")
    assert built["content_length"] == 13
    assert built["body"] == b"Hello, World!"
    assert built["finished"] == [(True, True)]
    assert built["trailers"] == []


@pytest.mark.parametrize(("name", "expected"), [
    ("close", (False, False, True)),
    ("close-after-nbsp", (False, False, True)),
    ("http10", (False, False, True)),
    ("http10-keep-alive", (True, False, True)),
    ("http10-keep-alive-and-close", (False, False, True)),
    ("gzip-any-case", (True, True, True)),
    ("gzip-then-br", (True, False, True)),
    ("first-encoding-counts", (True, False, True)),
    ("until-close", (True, False, False)),
    ("obs-fold", (False, False, True)),
])
def test_head_facts(impl, name, expected):
    data, method = next(case[1:] for case in CASES if case[0] == name)
    assert final_head(impl, [data], method)[0].head_facts() == expected


def test_an_empty_body_hands_the_connection_back_at_once(impl):
    built = build(impl, H + b"200 OK\r\nContent-Length: 0\r\n\r\n")
    assert built["finished_before_read"] != [] and built["finished"] == [(True, True)]
    assert build(impl, H + b"200 OK\r\nContent-Length: 0\r\n\r\nstray")["finished"] == [(True, False)]


def test_a_closing_request_makes_the_connection_not_reusable(impl):
    assert build(impl, CASES[0][1], close_after=True)["finished"] == [(True, False)]


def test_head_response_reports_the_declared_length(impl):
    assert build(impl, H + b"200 OK\r\nContent-Length: 99\r\n\r\n", method="HEAD")["content_length"] == 99
    assert build(impl, H + b"200 OK\r\n\r\n", method="HEAD")["content_length"] is None


@pytest.mark.parametrize("which", ["informational", "other-parser", "none-yet"])
def test_build_response_takes_only_the_final_head_its_parser_returned(impl, which):
    parser = impl.ResponseParser("GET")
    parser.feed(H + b"100 Continue\r\n\r\n")
    head = parser.next_event()
    if which == "other-parser":
        head = final_head(impl, [CASES[0][1]], "GET")[1]
    elif which == "none-yet":
        parser = impl.ResponseParser("GET")
    prepared = SimpleNamespace(request=None, close_after=False, gzip_requested=False, method="GET")
    with pytest.raises(ValueError, match="^head is not the final head this parser returned last$"):
        parser.build_response(WireStub(), prepared, head, lambda conn, reusable: None)


def test_facts_are_all_false_before_any_head(impl):
    assert impl.ResponseParser("GET").head_facts() == (False, False, False)


# Field values that reach the facts: token lists, spaces str.strip() removes, any case.
FACT_VALUES = st.lists(
    st.sampled_from([b"close", b"Close", b"keep-alive", b"KEEP-ALIVE", b"gzip", b"GZIP", b"br",
                     b"upgrade", b"", b" ", b"\t", b"\xa0", b"\x85", b"\x1f", b"x"]),
    max_size=4,
).map(lambda parts: b"".join(part + (b"," if i % 2 else b"") for i, part in enumerate(parts)).strip(b" \t"))
FACT_NAMES = st.sampled_from([b"Connection", b"connection", b"Content-Encoding", b"CONTENT-ENCODING",
                              b"Content-Length", b"X-Other", b"Connections"])


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    version=st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/1.2"]),
    fields=st.lists(st.tuples(FACT_NAMES, FACT_VALUES), max_size=5),
)
def test_random_heads_give_the_facts_of_the_rule(twins, version, fields):
    lines = [name + b": " + (b"3" if name == b"Content-Length" else value) for name, value in fields]
    data = b"\r\n".join([version + b" 200 OK", *lines]) + b"\r\n\r\n"
    for module in twins:
        parser, head = final_head(module, [data], "GET")
        assert parser.head_facts() == response_facts(head.http_version, head.headers), module.__name__


def test_trailers_are_a_headers_made_when_asked_for():
    response = roundtrip.Response(200)
    trailers = response.trailers
    assert isinstance(trailers, roundtrip.Headers) and len(trailers) == 0
    assert response.trailers is trailers
    trailers.add("X-Sum", "1")
    assert response.trailers.get("x-sum") == "1"
    response.trailers = roundtrip.Headers([("A", "b")])
    assert response.trailers.items() == [("A", "b")]


def test_each_response_has_the_field_values_it_was_sent(impl):
    # The compiled parser hands out one shared pair for a line it saw last time: a line that
    # differs in any byte, of any length, must still come out as sent.
    values = [b"nginx", b"nginx", b"nginy", b"caf\xe9", b"caf\xe8", b"caf\xe8", b"x" * 97, b"x" * 96 + b"y",
              b"x" * 97, b"", b"nginx"]
    for value in values:
        data = H + b"200 OK\r\nServer: " + value + b"\r\nserver: " + value[::-1] + b"\r\nContent-Length: 0\r\n\r\n"
        head = final_head(impl, [data], "GET")[1]
        expected = value.decode("latin-1")
        assert head.headers == [("Server", expected), ("server", expected[::-1]), ("Content-Length", "0")]


def test_a_body_already_received_is_read_without_a_copy(impl):
    import tracemalloc

    size = 1 << 20
    data = H + b"200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"x" * size
    parser, head = final_head(impl, [data], "GET")
    prepared = SimpleNamespace(request=None, close_after=False, gzip_requested=False, method="GET")
    tracemalloc.start()
    try:
        response = parser.build_response(WireStub(), prepared, head, lambda conn, reusable: None)
        body = response.read()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert body == b"x" * size
    # The body's one bytes object, taken from the parser, is what read() returns: no second copy.
    assert size <= peak < size + size // 4


@pytest.mark.parametrize("name", [b"Set-Cookie", b"set-cookie", b"Location", b"Content-Security-Policy"])
def test_session_and_location_values_do_not_outlive_their_response(impl, name):
    import sys

    parser, head = final_head(impl, [H + b"200 OK\r\n" + name + b": sid=s3cr3t\r\nContent-Length: 0\r\n\r\n"], "GET")
    value = head.headers[0][1]
    assert value == "sid=s3cr3t"
    del parser, head
    assert sys.getrefcount(value) == 2  # this name and getrefcount's argument: nothing keeps it
