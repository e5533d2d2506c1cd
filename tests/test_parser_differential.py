"""The compiled response parser against the py twin (h11 behind it), on the same bytes.

Each response is fed whole, one byte at a time and at random split points; both parsers must
produce the same events (consecutive body pieces joined), then the same exception (class and
message) if any, and leave the same unparsed bytes. Both refuse a chunk size that does not fit in
64 bits (h11 alone would take 20 hex digits).
"""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roundtrip import _speedups_py
from roundtrip._errors import HeaderTooLarge, IncompleteBody, ProtocolError
from roundtrip._events import CHUNKED, UNTIL_CLOSE, EndOfBody, ResponseHead




def parse(module, pieces, method="GET", max_head_bytes=1 << 20, eof=False):
    """Feed the pieces, draining events after each; (events, error, unparsed)."""
    parser = module.ResponseParser(method, max_head_bytes)
    events = []

    def drain():
        while (event := parser.next_event()) is not None:
            if isinstance(event, bytes) and events and isinstance(events[-1], bytes):
                events[-1] += event
            else:
                events.append(event)

    try:
        for piece in pieces:
            parser.feed(piece)
            drain()
        if eof:
            parser.feed_eof()
            drain()
    except Exception as exc:  # noqa: BLE001 - any difference counts
        return events, (type(exc), str(exc)), parser.take_unparsed()
    return events, None, parser.take_unparsed()


def splits(data, how, rng=None):
    if how == "whole":
        return [data] if data else []
    if how == "bytes":
        return [data[i : i + 1] for i in range(len(data))]
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 6)))) if len(data) > 1 else []
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]


def assert_same(twins, data, method="GET", max_head_bytes=1 << 20, eof=False, seed=0):
    c, py = twins
    rng = random.Random(seed)
    results = {}
    for how in ("whole", "bytes", "random", "random"):
        pieces = splits(data, how, rng)
        c_result = parse(c, pieces, method, max_head_bytes, eof)
        py_result = parse(py, pieces, method, max_head_bytes, eof)
        assert c_result == py_result, (how, pieces)
        results[how] = py_result
    return results["whole"]


H = b"HTTP/1.1 "
CHUNKED_HEAD = H + b"200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
CONTINUE = H + b"100 Continue\r\n\r\n"
FINAL = H + b"200 OK\r\nContent-Length: 2\r\n\r\nhi"

# (id, response bytes, method, eof, expected: an exception class, or the final body_length)
CORPUS = [
    ("cl", H + b"200 OK\r\nContent-Length: 5\r\n\r\nhello", "GET", False, 5),
    ("cl-list", H + b"200 OK\r\nContent-Length: 5 , 5\r\ncontent-length: 5\r\n\r\n", "GET", False, 5),
    ("cl-20-digits", H + b"200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n", "GET", False, 1 << 64),
    ("cl-leading-zero", H + b"200 OK\r\nContent-Length: 007\r\n\r\n", "GET", False, 7),
    ("cl-conflict", H + b"200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "GET", False, ProtocolError),
    ("cl-conflict-list", H + b"200 OK\r\nContent-Length: 5, 6\r\n\r\n", "GET", False, ProtocolError),
    ("cl-05-vs-5", H + b"200 OK\r\nContent-Length: 05\r\nContent-Length: 5\r\n\r\n", "GET", False, ProtocolError),
    ("cl-trailing-comma", H + b"200 OK\r\nContent-Length: 5,\r\n\r\n", "GET", False, ProtocolError),
    ("cl-empty", H + b"200 OK\r\nContent-Length:\r\n\r\n", "GET", False, ProtocolError),
    ("cl-sign", H + b"200 OK\r\nContent-Length: +5\r\n\r\n", "GET", False, ProtocolError),
    ("cl-21-digits", H + b"200 OK\r\nContent-Length: 000000000000000000005\r\n\r\n", "GET", False, ProtocolError),
    ("until-close", H + b"200 OK\r\nServer: x\r\n\r\nbody", "GET", True, UNTIL_CLOSE),
    ("http10", b"HTTP/1.0 200 OK\r\n\r\nbody", "GET", False, UNTIL_CLOSE),
    ("http2.0-status-line", b"HTTP/2.0 200 OK\r\n\r\n", "GET", False, UNTIL_CLOSE),
    ("1xx-then-200", CONTINUE + H + b"103 Early Hints\r\nLink: </a>\r\n\r\n" + FINAL, "GET", False, 2),
    ("101", H + b"101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00", "GET", False, UNTIL_CLOSE),
    ("head-with-cl", H + b"200 OK\r\nContent-Length: 99\r\n\r\n", "HEAD", False, 0),
    ("head-with-te", CHUNKED_HEAD, "HEAD", False, 0),
    ("204", H + b"204 No Content\r\nContent-Length: 99\r\n\r\nextra", "GET", False, 0),
    ("304", H + b"304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", False, 0),
    ("connect-200", H + b"200 Connection established\r\n\r\n\x16\x03", "CONNECT", False, 0),
    ("connect-407", H + b"407 Auth\r\nContent-Length: 1\r\n\r\nx", "CONNECT", False, 1),
    ("lowercase-head-is-not-head", H + b"200 OK\r\nContent-Length: 3\r\n\r\n", "head", False, 3),
    ("te-beats-cl", H + b"200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n", "GET", False, CHUNKED),
    ("te-chunked", CHUNKED_HEAD + b"5\r\nhello\r\n1;a=b;c=\"d\"\r\n!\r\nA \t\r\n0123456789\r\n0\r\n\r\nnext", "GET", False, CHUNKED),
    ("te-trailers", CHUNKED_HEAD + b"2\r\nhi\r\n0\r\nX-Sum: 1\r\nX-Fold: a\r\n  b\r\nContent-Length: 2\r\n\r\n", "GET", False, CHUNKED),
    ("te-trailer-bad-cl", CHUNKED_HEAD + b"0\r\nContent-Length: x\r\n\r\n", "GET", False, ProtocolError),
    ("te-trailer-fold-first", CHUNKED_HEAD + b"0\r\n X: y\r\n\r\n", "GET", False, ProtocolError),
    ("te-trailer-bare-lf", CHUNKED_HEAD + b"0\r\n\n", "GET", False, CHUNKED),
    ("te-gzip", H + b"200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "GET", False, ProtocolError),
    ("te-gzip-chunked", H + b"200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "GET", False, ProtocolError),
    ("te-twice", H + b"200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", False, ProtocolError),
    ("te-empty", H + b"200 OK\r\nTransfer-Encoding:\r\n\r\n", "GET", False, ProtocolError),
    ("cl-in-1xx-only", H + b"100 Continue\r\nContent-Length: 0\r\n\r\n" + H + b"200 OK\r\n\r\n", "GET", False, UNTIL_CLOSE),
    ("te-in-1xx-only", H + b"103 Hints\r\nTransfer-Encoding: chunked\r\n\r\n" + H + b"200 OK\r\n\r\n", "GET", False, UNTIL_CLOSE),
    ("te-in-1xx", H + b"100 Continue\r\nTransfer-Encoding: gzip\r\n\r\n", "GET", False, ProtocolError),
    ("chunk-20-hex-digits", CHUNKED_HEAD + b"00000000000000000002\r\nhi\r\n0\r\n\r\n", "GET", False, CHUNKED),
    ("chunk-21-hex-digits", CHUNKED_HEAD + b"000000000000000000002\r\nhi\r\n0\r\n\r\n", "GET", False, ProtocolError),
    ("chunk-size-2**64-1", CHUNKED_HEAD + b"ffffffffffffffff\r\nhi", "GET", True, IncompleteBody),
    ("chunk-size-2**63", CHUNKED_HEAD + b"8000000000000000;x=y \r\nhi", "GET", True, IncompleteBody),
    ("chunk-size-2**63-no-data", CHUNKED_HEAD + b"8000000000000000\r\n", "GET", True, IncompleteBody),
    ("chunk-size-16-of-20-digits", CHUNKED_HEAD + b"0000FFFFFFFFFFFFFFFF\r\nhi", "GET", True, IncompleteBody),
    ("chunk-size-2**64", CHUNKED_HEAD + b"10000000000000000\r\nhi", "GET", True, ProtocolError),
    ("chunk-size-2**64-no-eof", CHUNKED_HEAD + b"10000000000000000\r\n", "GET", False, ProtocolError),
    ("chunk-size-20-significant", CHUNKED_HEAD + b"fffffffffffffffffffF \r\n", "GET", False, ProtocolError),
    ("chunk-size-2**64-second", CHUNKED_HEAD + b"2\r\nhi\r\n10000000000000000;a\r\nxy", "GET", True, ProtocolError),
    ("chunk-size-2**64-bad-ext", CHUNKED_HEAD + b"10000000000000000 x\r\n", "GET", False, ProtocolError),
    ("chunk-no-digits", CHUNKED_HEAD + b";x\r\n", "GET", False, ProtocolError),
    ("chunk-space-before-ext", CHUNKED_HEAD + b"2 ;x\r\nhi\r\n0\r\n\r\n", "GET", False, ProtocolError),
    ("chunk-ext-with-cr", CHUNKED_HEAD + b"2;x\r\r\nhi\r\n0\r\n\r\n", "GET", False, CHUNKED),
    ("chunk-ext-with-lf", CHUNKED_HEAD + b"2;x\ny\r\nhi\r\n0\r\n\r\n", "GET", False, ProtocolError),
    ("chunk-size-bare-lf", CHUNKED_HEAD + b"2\nhi\r\n0\r\n\r\n", "GET", False, ProtocolError),
    ("chunk-data-bare-lf", CHUNKED_HEAD + b"2\r\nhi\n0\r\n\r\n", "GET", False, ProtocolError),
    ("chunk-data-too-long", CHUNKED_HEAD + b"2\r\nhix\r\n0\r\n\r\n", "GET", False, ProtocolError),
    ("chunk-hex-upper", CHUNKED_HEAD + b"A\r\n0123456789\r\n0\r\n\r\n", "GET", False, CHUNKED),
    ("truncated-in-data", CHUNKED_HEAD + b"5\r\nhel", "GET", True, IncompleteBody),
    ("truncated-after-size", CHUNKED_HEAD + b"5\r\n", "GET", True, IncompleteBody),
    ("truncated-in-crlf", CHUNKED_HEAD + b"5\r\nhello\r", "GET", True, IncompleteBody),
    ("truncated-in-size", CHUNKED_HEAD + b"5", "GET", True, IncompleteBody),
    ("truncated-in-size-cr", CHUNKED_HEAD + b"5\r", "GET", True, IncompleteBody),
    ("truncated-in-ext", CHUNKED_HEAD + b"5;a=\"b", "GET", True, IncompleteBody),
    ("truncated-in-second-size", CHUNKED_HEAD + b"1\r\nx\r\n1", "GET", True, IncompleteBody),
    ("truncated-in-last-chunk", CHUNKED_HEAD + b"0", "GET", True, IncompleteBody),
    ("truncated-before-trailers", CHUNKED_HEAD + b"0\r\n", "GET", True, IncompleteBody),
    ("truncated-in-trailer-line", CHUNKED_HEAD + b"0\r\nX: y", "GET", True, IncompleteBody),
    ("truncated-in-trailers", CHUNKED_HEAD + b"0\r\nX: y\r\n", "GET", True, IncompleteBody),
    ("truncated-in-final-crlf", CHUNKED_HEAD + b"0\r\nX: y\r\n\r", "GET", True, IncompleteBody),
    ("truncated-head", H + b"200 OK\r\nServer", "GET", True, ProtocolError),
    ("eof-before-anything", b"", "GET", True, ProtocolError),
    ("eof-after-1xx", CONTINUE, "GET", True, ProtocolError),
    ("bare-lf", b"HTTP/1.1 200 OK\nContent-Length: 1\n\nx", "GET", False, 1),
    ("mixed-eol", b"HTTP/1.1 200 OK\r\nA: 1\nB: 2\r\n\n", "GET", False, UNTIL_CLOSE),
    ("lf-cr-lf", b"HTTP/1.1 200 OK\n\r\n", "GET", False, UNTIL_CLOSE),
    ("obs-fold", H + b"200 OK\r\nX: a \r\n \t b\r\n\tc\r\nY:\r\n z\r\n\r\n", "GET", False, UNTIL_CLOSE),
    ("obs-fold-first", H + b"200 OK\r\n X: a\r\n\r\n", "GET", False, ProtocolError),
    ("obs-fold-into-name", H + b"200 OK\r\nX\r\n : a\r\n\r\n", "GET", False, ProtocolError),
    ("ows", H + b"200 OK\r\nX: \t a  b \t\r\nEmpty:\r\nE2: \t \r\n\r\n", "GET", False, UNTIL_CLOSE),
    ("obs-text-and-ctl", H + b"200 OK\r\nX: \x80\xff\x01\x1f\x7f\r\n\r\n", "GET", False, UNTIL_CLOSE),
    ("nul-in-value", H + b"200 OK\r\nX: a\x00b\r\n\r\n", "GET", False, ProtocolError),
    ("cr-in-value", H + b"200 OK\r\nX: a\rb\r\n\r\n", "GET", False, ProtocolError),
    ("vt-in-value", H + b"200 OK\r\nX: a\x0bb\r\n\r\n", "GET", False, ProtocolError),
    ("ff-at-end", H + b"200 OK\r\nX: a\x0c\r\n\r\n", "GET", False, ProtocolError),
    ("space-before-colon", H + b"200 OK\r\nX : a\r\n\r\n", "GET", False, ProtocolError),
    ("empty-name", H + b"200 OK\r\n: a\r\n\r\n", "GET", False, ProtocolError),
    ("no-colon", H + b"200 OK\r\nX a\r\n\r\n", "GET", False, ProtocolError),
    ("non-token-name", H + b"200 OK\r\nX(y): a\r\n\r\n", "GET", False, ProtocolError),
    ("double-cr", H + b"200 OK\r\r\n\r\n", "GET", False, ProtocolError),
    ("no-reason", H + b"200\r\n\r\n", "GET", False, UNTIL_CLOSE),
    ("empty-reason", H + b"200 \r\n\r\n", "GET", False, UNTIL_CLOSE),
    ("reason-spaces", H + b"200  OK \t\x80\r\n\r\n", "GET", False, UNTIL_CLOSE),
    ("reason-nul", H + b"200 O\x00K\r\n\r\n", "GET", False, ProtocolError),
    ("status-2-digits", H + b"20 OK\r\n\r\n", "GET", False, ProtocolError),
    ("status-4-digits", H + b"2000 OK\r\n\r\n", "GET", False, ProtocolError),
    ("status-no-space", H + b"200OK\r\n\r\n", "GET", False, ProtocolError),
    ("status-below-100", H + b"099 Odd\r\n\r\n", "GET", False, ProtocolError),
    ("status-999", H + b"999 Odd\r\n\r\n", "GET", False, UNTIL_CLOSE),
    ("lowercase-http", b"http/1.1 200 OK\r\n\r\n", "GET", False, ProtocolError),
    ("version-2-digits", b"HTTP/1.10 200 OK\r\n\r\n", "GET", False, ProtocolError),
    ("tab-separator", b"HTTP/1.1\t200 OK\r\n\r\n", "GET", False, ProtocolError),
    ("leading-crlf", b"\r\n" + FINAL, "GET", False, ProtocolError),
    ("leading-lf", b"\n" + FINAL, "GET", False, ProtocolError),
    ("leading-space", b" " + FINAL, "GET", False, ProtocolError),
    ("tls-record", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "GET", False, ProtocolError),
    ("garbage-first-byte-ok", b"XTTP/1.1 200 OK\r\n\r\n", "GET", False, ProtocolError),
    ("incomplete-garbage", b"HELLO", "GET", False, None),
    ("nul-first", b"\x00HTTP/1.1 200 OK\r\n\r\n", "GET", False, ProtocolError),
]


@pytest.mark.parametrize(("data", "method", "eof", "expected"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_corpus_same_as_py(twins, data, method, eof, expected):
    for seed in range(3):
        assert_same(twins, data, method, eof=eof, seed=seed)
        assert_same(twins, data + b"HTTP/1.1 200 OK\r\n\r\n", method, eof=eof, seed=seed)


@pytest.mark.parametrize(("data", "method", "eof", "expected"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_corpus_expected_outcome(impl, data, method, eof, expected):
    events, error, _ = parse(impl, [data], method, eof=eof)
    if isinstance(expected, type):
        assert error is not None and error[0] is expected, (events, error)
    elif expected is None:
        assert (events, error) == ([], None)
    else:
        assert error is None, error
        heads = [e for e in events if isinstance(e, ResponseHead)]
        assert heads[-1].body_length == expected
        assert all(h.body_length == 0 for h in heads[:-1])


def test_corpus_details(impl):
    events, error, rest = parse(impl, [CORPUS[0][1].replace(b"hello", b"")], "GET")
    assert events == [ResponseHead(200, "OK", "HTTP/1.1", [("Content-Length", "5")], 5, 38)] and not error
    # h11 keeps one Content-Length (its single value) and lowercases Transfer-Encoding.
    events, _, _ = parse(impl, [H + b"200 OK\r\nContent-Length: 5 , 5\r\ncontent-length: 5\r\nTransfer-Encoding: CHUNKED\r\n\r\n"])
    assert events[0].headers == [("Content-Length", "5"), ("Transfer-Encoding", "chunked")]
    events, error, rest = parse(impl, [dict((c[0], c[1]) for c in CORPUS)["te-chunked"]])
    assert events[1:] == [b"hello!0123456789", EndOfBody([])] and rest == b"next" and not error
    events, _, _ = parse(impl, [dict((c[0], c[1]) for c in CORPUS)["te-trailers"]])
    assert events[-1] == EndOfBody([("X-Sum", "1"), ("X-Fold", "a b"), ("Content-Length", "2")])
    events, _, _ = parse(impl, [dict((c[0], c[1]) for c in CORPUS)["obs-fold"]])
    assert events[0].headers == [("X", "a  b c"), ("Y", "z")]
    events, _, _ = parse(impl, [H + b"200  OK \t\x80\r\nX: \x80\xff\x01\r\n\r\n"])
    assert (events[0].reason, events[0].headers) == (" OK \t\x80", [("X", "\x80\xff\x01")])
    events, _, _ = parse(impl, [H + b"200\r\n\r\n"])
    assert (events[0].reason, events[0].http_version) == ("", "HTTP/1.1")
    _, error, _ = parse(impl, [CHUNKED_HEAD + b"5\r\nhel"], eof=True)
    assert error == (IncompleteBody, "server closed the connection inside a chunked body")
    for cut in (b"5", b"0", b"0\r\nX: y\r\n"):  # inside a size line, the last chunk, trailers
        _, error, _ = parse(impl, [CHUNKED_HEAD + cut], eof=True)
        assert error == (IncompleteBody, "server closed the connection inside a chunked body")
    _, error, _ = parse(impl, [b"HTTP/1.1 200 OK\r\nX: \x00\r\n\r\n"])
    assert error == (ProtocolError, "malformed response head")
    _, error, _ = parse(impl, [CHUNKED_HEAD + b"g\r\n"])
    assert error == (ProtocolError, "malformed chunked body")


@pytest.mark.parametrize("eof", [False, True])
def test_chunk_sizes_fit_in_64_bits(impl, eof):
    # Go's parseHexUint: 16 significant hex digits at most; the body may then end short.
    for size in (b"ffffffffffffffff", b"0000FFFFFFFFFFFFFFFF", b"8000000000000000"):
        events, error, _ = parse(impl, [CHUNKED_HEAD + size + b"\r\nhi"], eof=eof)
        assert events[1:] == [b"hi"]
        assert error == ((IncompleteBody, "server closed the connection inside a chunked body") if eof else None)
    for size in (b"10000000000000000", b"fffffffffffffffffffF", b"00010000000000000000"):
        events, error, _ = parse(impl, [CHUNKED_HEAD + b"2\r\nhi\r\n" + size + b"\r\nhi"], eof=eof)
        assert events[1:] == [b"hi"] and error == (ProtocolError, "chunk size too large")
    # A line h11 refuses anyway stays malformed, whatever its size.
    _, error, _ = parse(impl, [CHUNKED_HEAD + b"10000000000000000 x\r\n"], eof=eof)
    assert error == (ProtocolError, "malformed chunked body")


# --- the peer's words never choose the error ------------------------------------------------

BAD_HEAD, BAD_CHUNKED = "malformed response head", "malformed chunked body"
# h11 quotes the line it refuses in its message: what a server writes there must not matter.
PEER_PHRASES = [
    ("status-line-buffer-too-long", H + b"2x0 Receive buffer too long\r\n\r\n", BAD_HEAD),
    ("status-line-peer-closed", H + b"2x0 peer closed connection\r\n\r\n", BAD_HEAD),
    ("field-buffer-too-long", H + b"200 OK\r\nReceive buffer too long: 1\r\n\r\n", BAD_HEAD),
    ("field-peer-closed", H + b"200 OK\r\nX peer closed connection\r\n\r\n", BAD_HEAD),
    ("field-closed", H + b"200 OK\r\nclosed closed\r\n\r\n", BAD_HEAD),
    ("value-closed", H + b"200 OK\r\nX: closed\x00\r\n\r\n", BAD_HEAD),
    ("chunk-line-buffer-too-long", CHUNKED_HEAD + b"z;Receive buffer too long\r\n", BAD_CHUNKED),
    ("chunk-line-peer-closed", CHUNKED_HEAD + b"z;peer closed connection\r\n", BAD_CHUNKED),
    ("trailer-peer-closed", CHUNKED_HEAD + b"0\r\nX peer closed connection\r\n\r\n", BAD_CHUNKED),
    ("trailer-buffer-too-long", CHUNKED_HEAD + b"0\r\nReceive buffer too long\r\n\r\n", BAD_CHUNKED),
]


@pytest.mark.parametrize(("data", "message"), [p[1:] for p in PEER_PHRASES], ids=[p[0] for p in PEER_PHRASES])
@pytest.mark.parametrize("eof", [False, True])
def test_peer_phrases_do_not_choose_the_error(impl, data, message, eof):
    _, error, _ = parse(impl, [data], eof=eof)
    assert error == (ProtocolError, message)


@pytest.mark.parametrize("data", [p[1] for p in PEER_PHRASES], ids=[p[0] for p in PEER_PHRASES])
def test_peer_phrases_same_as_py(twins, data):
    for eof in (False, True):
        assert_same(twins, data, eof=eof)
        assert_same(twins, data, max_head_bytes=len(data) // 2, eof=eof)


# --- the head budget, across informational heads ----------------------------------------------

TWO_HEADS = CONTINUE + H + b"200 OK\r\nX: y\r\n\r\n"


@pytest.mark.parametrize("budget", range(len(TWO_HEADS) + 3))
@pytest.mark.parametrize("tail", [b"", b"body"])
@pytest.mark.parametrize("eof", [False, True])
def test_head_budget_boundaries_same_as_py(twins, budget, tail, eof):
    assert_same(twins, TWO_HEADS + tail, max_head_bytes=budget, eof=eof)
    assert_same(twins, CONTINUE * 3 + FINAL + tail, max_head_bytes=budget * 2, eof=eof)


def test_head_budget_boundaries(impl):
    first, total = len(CONTINUE), len(TWO_HEADS)
    # The budget covers both heads: exactly enough passes, one byte less does not.
    events, error, _ = parse(impl, [TWO_HEADS], max_head_bytes=total)
    assert [e.head_size for e in events] == [first, total - first] and error is None
    _, error, _ = parse(impl, [TWO_HEADS], max_head_bytes=total - 1)
    assert error == (HeaderTooLarge, "response head too large")
    # Fed a byte at a time, an incomplete head fails once it holds the whole remaining budget.
    events, error, _ = parse(impl, [bytes([b]) for b in TWO_HEADS], max_head_bytes=first + 5)
    assert len(events) == 1 and error[0] is HeaderTooLarge
    # A budget exactly spent by the 1xx head leaves nothing, not even room to wait.
    events, error, _ = parse(impl, [CONTINUE], max_head_bytes=first)
    assert len(events) == 1 and error[0] is HeaderTooLarge


# --- chunk-size lines and trailer sections are bounded too -----------------------------------

LONG_CHUNK_LINE = CHUNKED_HEAD + b"5;ext=" + b"x" * 400
LONG_TRAILERS = CHUNKED_HEAD + b"0\r\n" + b"X-Trailer: " + b"t" * 400


@pytest.mark.parametrize("data", [LONG_CHUNK_LINE, LONG_TRAILERS], ids=["chunk-line", "trailers"])
@pytest.mark.parametrize("budget", [200, 300, 1 << 20])
def test_endless_chunk_lines_and_trailers_same_as_py(twins, data, budget):
    assert_same(twins, data, max_head_bytes=budget)


@pytest.mark.parametrize("data", [LONG_CHUNK_LINE, LONG_TRAILERS], ids=["chunk-line", "trailers"])
def test_endless_chunk_lines_and_trailers_are_refused(impl, data):
    # The limit that bounds a head also bounds what must be buffered whole later on.
    _, error, _ = parse(impl, [data[i : i + 64] for i in range(0, len(data), 64)], max_head_bytes=300)
    assert error == (ProtocolError, "chunk header or trailers too large")
    _, error, _ = parse(impl, [data], max_head_bytes=1 << 20)
    assert error is None


# --- random responses -----------------------------------------------------------------------

EOLS = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n"])
# Mostly bytes h11 takes in a value (obs-text and most CTLs included), sometimes one it refuses.
VALUE_BYTES = st.sampled_from(list(b"az09 \t,;=\"/\x80\xff\x01\x7f") * 15 + list(b"\x00\x0b\x0c\r\n"))
FIELDS = st.sampled_from(
    [(b"Server", st.sampled_from([b"nginx", b"x y", b""])), (b"X-V", st.lists(VALUE_BYTES, max_size=8).map(bytes))] * 12
    + [
        (b"Connection", st.sampled_from([b"close", b"keep-alive", b"upgrade"])),
        (b"Content-Length", st.sampled_from([b"0", b"3", b"5, 5", b" 05", b"x", b"", b"5,", b"1,2"])),
        (b"Transfer-Encoding", st.sampled_from([b"gzip", b"chunked, gzip", b"", b"chunked"])),
        (b"X Bad", st.just(b"1")),
    ]
)


@st.composite
def heads(draw, status, framing=()):
    eol = draw(EOLS)
    reason = draw(st.sampled_from([b" OK", b" OK", b"", b" ", b" Some Reason", b"  x\t"]))
    version = draw(st.sampled_from([b"HTTP/1.1 "] * 4 + [b"HTTP/1.0 ", b"HTTP/9.9 "]))
    fields = list(framing) + [
        (name, draw(values)) for name, values in draw(st.lists(FIELDS, max_size=3))
    ]
    lines = [version + status + reason]
    for name, value in draw(st.permutations(fields)):
        if name not in dict(framing) and draw(st.integers(0, 9)) == 0:  # obs-fold in the value
            value = value[:2] + draw(EOLS) + draw(st.sampled_from([b" ", b"\t", b"  "])) + value[2:]
        ows = draw(st.sampled_from([b" ", b" ", b"", b"\t "]))
        lines.append(name + b":" + ows + value + draw(st.sampled_from([b"", b"", b" "])))
    return draw(EOLS).join(lines) + eol + eol


@st.composite
def chunked_body(draw):
    out = b""
    for _ in range(draw(st.integers(0, 3))):
        data = draw(st.binary(min_size=1, max_size=12))
        size = draw(st.sampled_from(["%x", "%X", "%04x"])) % len(data)
        ext = draw(st.sampled_from([b"", b"", b";a=b", b";q=\"x y\"", b";"]))
        ows = draw(st.sampled_from([b"", b"", b" ", b"\t"]))
        end = draw(st.sampled_from([b"\r\n"] * 8 + [b"\n", b"xx"]))
        out += size.encode() + ext + ows + b"\r\n" + data + end
    out += b"0" + draw(st.sampled_from([b"", b";end"])) + b"\r\n"
    trailer = st.sampled_from([b"X-T: 1", b"X-T: 1", b"Content-Length: 9", b" fold", b"Bad Name: 1"])
    out += b"".join(t + b"\r\n" for t in draw(st.lists(trailer, max_size=2)))
    return out + draw(st.sampled_from([b"\r\n", b"\r\n", b"\n"]))


@st.composite
def responses(draw):
    out = b""
    for _ in range(draw(st.integers(0, 2))):
        out += draw(heads(draw(st.sampled_from([b"100", b"102", b"103", b"199"]))))
    framing = draw(st.sampled_from(["chunked", "chunked", "length", "none"]))
    if framing == "chunked":
        body = draw(chunked_body())
        te = draw(st.sampled_from([b"chunked", b"Chunked", b"chunked "]))
        fields = [(b"Transfer-Encoding", te)]
    else:
        body = draw(st.binary(max_size=10))
        fields = [(b"Content-Length", b"%d" % len(body))] if framing == "length" else []
    status = draw(st.sampled_from([b"200"] * 6 + [b"201", b"204", b"304", b"101", b"404", b"099", b"2x0"]))
    out += draw(heads(status, fields)) + body
    if out and draw(st.integers(0, 3)) == 0:  # one random edit anywhere
        at = draw(st.integers(0, len(out) - 1))
        edit = draw(st.sampled_from(["delete", "insert", "replace", "truncate"]))
        byte = bytes([draw(st.sampled_from(list(b"\r\n \t:0aF;,") + [0x00, 0x7F, 0xFF]))])
        out = {
            "delete": out[:at] + out[at + 1 :],
            "insert": out[:at] + byte + out[at:],
            "replace": out[:at] + byte + out[at + 1 :],
            "truncate": out[:at],
        }[edit]
    return out


@settings(
    max_examples=300, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=responses(),
    method=st.sampled_from(["GET", "GET", "HEAD", "CONNECT", "POST"]),
    eof=st.booleans(),
    budget=st.one_of(st.just(1 << 20), st.integers(0, 160)),
    seed=st.integers(0, 1000),
)
def test_random_responses_same_as_py(twins, data, method, eof, budget, seed):
    assert_same(twins, data, method, max_head_bytes=budget, eof=eof, seed=seed)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=40).map(lambda tail: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + tail), eof=st.booleans())
def test_random_chunked_bytes_same_as_py(twins, data, eof):
    assert_same(twins, data, eof=eof)


@pytest.mark.parametrize(
    ("prefix", "stray"), [(H + b"200 OK\r\n", b"\n"), (CHUNKED_HEAD + b"1;", b"\r")], ids=["head", "chunk-size"]
)
def test_byte_at_a_time_is_linear(impl, prefix, stray):
    """100 KB fed a byte at a time, every other byte a LF (CR) that does not end the head (the
    chunk-size line): rescanning from the start after each byte takes ~10**9 steps (~15 s)."""
    if impl is _speedups_py:
        pytest.skip("h11 is linear too, but this size is too slow in pure Python")
    parser = impl.ResponseParser("GET")
    parser.feed(prefix)
    while parser.next_event() is not None:  # the head of the chunked case
        pass
    started = time.perf_counter()
    for _ in range(50_000):
        parser.feed(b"a")
        assert parser.next_event() is None
        parser.feed(stray)
        assert parser.next_event() is None
    assert time.perf_counter() - started < 3.0  # linear: ~10 ms
