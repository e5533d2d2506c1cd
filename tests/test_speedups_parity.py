"""The compiled twin and the pure-Python twin agree: names, results, exception classes, messages.

Tests taking ``impl`` check one implementation against the specification (they run once per
twin). Tests taking ``twins`` compare the two directly; they run under the ``c`` parameter only.
"""

from __future__ import annotations

import array
import inspect
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roundtrip._errors import HeaderTooLarge, InvalidRequest, ProtocolError

TCHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Every latin-1 character, then a few that are not: BMP (kind 2) and astral (kind 4) strings.
CHARS = [chr(i) for i in range(256)] + ["\u0100", "\u2028", "\ufeff", "\uffff", "\U0001f600"]
HYPOTHESIS = settings(
    max_examples=200, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)




def outcome(fn, *args):
    """What a call did: its result, or the class and message of what it raised."""
    try:
        return ("returned", fn(*args))
    except Exception as exc:  # noqa: BLE001 - any difference counts
        return ("raised", type(exc), str(exc))


# --- names and signatures --------------------------------------------------------------------


def test_same_public_names(twins):
    c, py = twins
    assert c.__all__ == py.__all__
    assert {name for name in dir(c) if not name.startswith("_")} >= set(py.__all__)
    for name in py.__all__:
        assert callable(getattr(c, name))


def _params(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def test_same_signatures(twins):
    c, py = twins
    for name in ("is_token", "validate_method", "validate_header_fields", "encode_request_head"):
        assert _params(getattr(c, name)) == _params(getattr(py, name)), name
    for cls in ("ResponseParser", "IdleConnections"):
        methods = [m for m in vars(getattr(py, cls)) if not m.startswith("_")]
        assert methods, cls
        for method in methods:
            c_fn, py_fn = getattr(getattr(c, cls), method), getattr(getattr(py, cls), method)
            assert _params(c_fn) == _params(py_fn), f"{cls}.{method}"


def test_constructors_take_keyword_arguments(impl):
    parser = impl.ResponseParser(method="GET", max_head_bytes=10)
    parser.feed(b"HTTP/1.1 200")
    with pytest.raises(HeaderTooLarge):
        parser.next_event()
    pool = impl.IdleConnections(max_idle=1, max_idle_per_key=1)
    assert len(pool) == 0


# --- every byte, in methods, field names and field values ----------------------------------


def test_every_char_same_outcome(twins):
    c, py = twins
    for ch in CHARS:
        assert_same_outcome(c, py, ch)


def assert_same_outcome(c, py, ch):
    calls = [
        ("is_token", (ch,)),
        ("is_token", ("GET" + ch,)),
        ("is_token", (ch + "x",)),
        ("validate_method", (ch,)),
        ("validate_method", ("PO" + ch + "ST",)),
        ("validate_header_fields", ([("X-" + ch, "v")],)),
        ("validate_header_fields", ([(ch, "")],)),
        ("validate_header_fields", ([("X", ch)],)),
        ("validate_header_fields", ([("X", "a " + ch + " b")],)),
        ("validate_header_fields", ([("X", "\u20ac" + ch)],)),  # past latin-1 and maybe a CTL
        ("validate_header_fields", ([("Ok", "fine"), ("X" + ch, "a" + ch)],)),
        ("encode_request_head", ("GET", "/" + ch, [("X", "a" + ch)])),
        ("encode_request_head", (ch, ch, [(ch, ch), ("A", "b")])),
    ]
    for name, args in calls:
        assert outcome(getattr(c, name), *args) == outcome(getattr(py, name), *args), (ch, name, args)


@pytest.mark.parametrize("ch", CHARS, ids=[f"U+{ord(ch):04X}" for ch in CHARS])
def test_every_char_follows_the_rfc(impl, ch):
    is_tchar = ch in TCHARS
    assert impl.is_token(ch) is is_tchar
    assert impl.is_token("a" + ch + "b") is is_tchar
    if is_tchar:
        impl.validate_method("M" + ch)
        impl.validate_header_fields([("X" + ch, "v")])
    else:
        with pytest.raises(InvalidRequest) as info:
            impl.validate_method("M" + ch)
        assert str(info.value) == f"invalid method {json.dumps('M' + ch)}"
        with pytest.raises(InvalidRequest) as info:
            impl.validate_header_fields([("X" + ch, "v")])
        assert str(info.value) == f"invalid header field name {json.dumps('X' + ch)}"
    # Field values: Go's rule, any byte but the CTLs where HTAB is fine; and only latin-1.
    code = ord(ch)
    if code < 0x20 and ch != "\t" or code == 0x7F:
        with pytest.raises(InvalidRequest, match="^invalid header field value for key \"X\"$"):
            impl.validate_header_fields([("X", "a" + ch)])
    elif code > 0xFF:
        with pytest.raises(InvalidRequest) as info:
            impl.validate_header_fields([("X", "a" + ch)])
        assert str(info.value) == 'header field value for key "X" cannot be encoded as latin-1'
    else:
        assert impl.validate_header_fields([("X", "a" + ch)]) is None


def test_value_checks_run_in_order(impl):
    # A CTL anywhere wins over a non-latin-1 char earlier in the same value.
    with pytest.raises(InvalidRequest, match="invalid header field value"):
        impl.validate_header_fields([("X", "\u0100 \x00")])
    # The first bad field is reported; the value is never echoed.
    with pytest.raises(InvalidRequest) as info:
        impl.validate_header_fields(iter([("A", "ok"), ("B", "secret\r\n"), ("C d", "x")]))
    assert str(info.value) == 'invalid header field value for key "B"'
    assert "secret" not in str(info.value)
    with pytest.raises(InvalidRequest) as info:
        impl.validate_header_fields([("A\u00e9", "x")])
    assert str(info.value) == 'invalid header field name "A\\u00e9"'
    assert impl.is_token("") is False
    impl.validate_header_fields([])
    impl.validate_header_fields((x for x in [("A", ""), ("B", "\t\x80\xff")]))


def test_bad_argument_types_raise_the_same_classes(twins):
    c, py = twins
    for name, args in [
        ("is_token", (b"GET",)),
        ("is_token", (None,)),
        ("validate_method", (5,)),
        ("validate_header_fields", ([("X", b"v")],)),
        ("validate_header_fields", ([(b"X", "v")],)),
        ("validate_header_fields", ([("X", "v", "w")],)),
        ("validate_header_fields", ([("bad name", 5)],)),
        ("validate_header_fields", (None,)),
        ("encode_request_head", ("GET", "/", [("X",)])),
        ("encode_request_head", ("GET", "/", None)),
    ]:
        c_out, py_out = outcome(getattr(c, name), *args), outcome(getattr(py, name), *args)
        assert c_out[:2] == py_out[:2], (name, args, c_out, py_out)
        if py_out[1] is InvalidRequest:  # (Cython words its unpacking errors its own way)
            assert c_out == py_out


# --- encode_request_head ---------------------------------------------------------------------


def test_encode_request_head_layout(impl):
    head = impl.encode_request_head("GET", "/a?b=c", [("Host", "h:1"), ("X-E", ""), ("Y", "\xe9\t")])
    assert head == b"GET /a?b=c HTTP/1.1\r\nHost: h:1\r\nX-E: \r\nY: \xe9\t\r\n\r\n"
    assert type(head) is bytes
    assert impl.encode_request_head("OPTIONS", "*", iter([])) == b"OPTIONS * HTTP/1.1\r\n\r\n"


def test_encode_request_head_same_bytes_and_errors(twins):
    c, py = twins

    class Target:
        def __format__(self, spec):
            return "/formatted"

    for args in [
        ("GET", "/", []),
        ("GET", "/", (("A", "1") for _ in range(3))),
        ("CONNECT", "example.com:443", [("Host", "example.com:443")]),
        ("GET", Target(), [("N", 5)]),
        ("GET", 7, [(1, 2.5)]),
        ("GET", "/\u20ac", []),
        ("GET", "/", [("X", "ok"), ("Y", "\U0001f600")]),
        ("\u0100", "/", []),
        ("GET", "/", [("X", "a" * 10_000)] * 20),
    ]:
        materialized = [list(a) if inspect.isgenerator(a) else a for a in args]
        assert outcome(c.encode_request_head, *materialized) == outcome(
            py.encode_request_head, *materialized
        ), args
    # The UnicodeEncodeError carries the same details too.
    errors = []
    for twin in twins:
        with pytest.raises(UnicodeEncodeError) as info:
            twin.encode_request_head("GET", "/", [("X", "ok"), ("Y", "a\u0100b")])
        errors.append((info.value.start, info.value.end, info.value.object, info.value.reason))
    assert errors[0] == errors[1]


latin1_text = st.text(st.characters(max_codepoint=0xFF), max_size=12)
any_text = st.text(st.characters(codec="utf-8"), max_size=8)


@HYPOTHESIS
@given(
    method=st.one_of(latin1_text, any_text),
    target=st.one_of(latin1_text, any_text),
    fields=st.lists(st.tuples(st.one_of(latin1_text, any_text), latin1_text), max_size=6),
)
def test_encode_and_validate_agree_on_random_input(twins, method, target, fields):
    c, py = twins
    assert outcome(c.encode_request_head, method, target, fields) == outcome(
        py.encode_request_head, method, target, fields
    )
    assert outcome(c.validate_header_fields, fields) == outcome(py.validate_header_fields, fields)
    assert outcome(c.validate_method, method) == outcome(py.validate_method, method)
    assert c.is_token(target) == py.is_token(target)


# --- ResponseParser API ------------------------------------------------------------------------


def test_parser_accepts_bytes_like_objects(impl):
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
    for pieces in (
        [response],
        [bytearray(response)],
        [memoryview(response)],
        [memoryview(response)[:10], memoryview(response)[10:]],
        [memoryview(b"x" + response)[1:]],
        [array.array("B", response)],
    ):
        parser = impl.ResponseParser("GET")
        for piece in pieces:
            parser.feed(piece)
        head = parser.next_event()
        assert (head.status_code, head.body_length, head.head_size) == (200, 2, len(response) - 2)
        assert parser.next_event() is None
        assert parser.take_unparsed() == b"hi"
        assert parser.take_unparsed() == b""


def test_parser_feed_odd_arguments_same_as_py(twins):
    c, py = twins
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
    wide = memoryview(array.array("H", [0x4848, 0x5454]))
    for data in (memoryview(response)[::2], wide, "text", 12, [72, 84], None):
        results = []
        for twin in twins:
            parser = twin.ResponseParser("GET")
            results.append((outcome(parser.feed, data), parser.take_unparsed()))
        assert results[0] == results[1], data


def test_parser_eof_rules(twins):
    c, py = twins
    for twin in twins:
        parser = twin.ResponseParser("GET")
        parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nh")
        parser.feed_eof()
        parser.feed_eof()
        with pytest.raises(RuntimeError):
            parser.feed(b"i")
        assert parser.next_event().status_code == 200
        assert parser.next_event() is None
        assert parser.take_unparsed() == b"h"
    # Feeding b"" is not the end of the stream (only feed_eof() is); both twins agree.
    out = []
    for twin in twins:
        parser = twin.ResponseParser("GET")
        parser.feed(b"HTTP/1.1 2")
        parser.feed(b"")
        out.append((outcome(parser.feed, b"00 OK\r\n\r\n"), outcome(parser.next_event)))
    assert out[0] == out[1]
    assert out[0][0] == ("returned", None) and out[0][1][1].status_code == 200


def test_parser_keeps_raising_after_an_error(impl):
    parser = impl.ResponseParser("GET")
    parser.feed(b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n")
    for _ in range(2):
        with pytest.raises(ProtocolError) as info:
            parser.next_event()
        assert str(info.value) == "malformed response head"


# --- IdleConnections -------------------------------------------------------------------------


class Conn:
    def __init__(self, name):
        self.name = name
        self.idle_since = 0.0

    def __repr__(self):
        return f"Conn({self.name!r})"


def test_idle_connections_semantics(impl):
    pool = impl.IdleConnections(max_idle=3, max_idle_per_key=2)
    a1, a2, a3, b1, c1 = (Conn(n) for n in ("a1", "a2", "a3", "b1", "c1"))
    for t, (key, conn) in enumerate([("a", a1), ("a", a2), ("b", b1)]):
        conn.idle_since = float(t)
        assert pool.put(key, conn) == []
    assert pool.put("a", a3) == [a3]  # the key is full: close the newcomer
    assert (len(pool), pool.count("a"), pool.count("b"), pool.count("zz")) == (3, 2, 1, 0)
    assert pool.keys() == ["a", "b"]
    assert pool.oldest_idle_since() == 0.0
    c1.idle_since = 3.0
    assert pool.put("c", c1) == [a1]  # over max_idle: the least recently used goes
    assert pool.get("a") is a2 and pool.get("a") is None
    assert pool.keys() == ["b", "c"]
    assert pool.remove("c", c1) is True and pool.remove("c", c1) is False
    a2.idle_since, a1.idle_since = 4.0, 5.0
    assert pool.put("a", a2) == [] and pool.put("a", a1) == []
    assert pool.get("a") is a1  # most recently used first within a key
    assert pool.oldest_idle_since() == 2.0
    assert pool.pop_expired(2.0) == []  # idle since 2.0 is not before 2.0
    assert pool.pop_expired(3.0) == [b1] and pool.pop_expired(3.0) == []
    assert pool.pop_all() == [a2] and len(pool) == 0 and pool.oldest_idle_since() is None
    assert impl.IdleConnections(0, 0).put("k", a1) == [a1]
    unlimited = impl.IdleConnections(0, 100)
    assert all(unlimited.put(i % 3, Conn(i)) == [] for i in range(50)) and len(unlimited) == 50


def test_idle_connections_put_twice_refreshes(impl):
    pool = impl.IdleConnections(max_idle=0, max_idle_per_key=2)
    a, b = Conn("a"), Conn("b")
    assert pool.put("k", a) == [] and pool.put("k", b) == []
    assert pool.put("k", a) == []  # not "full": a was already one of the two
    assert (len(pool), pool.count("k")) == (2, 2)
    assert pool.pop_all() == [b, a]


keys = st.sampled_from(["a", "b", "c", ("h", 443)])
operations = st.lists(
    st.one_of(
        st.tuples(st.just("put"), keys, st.integers(0, 11)),
        st.tuples(st.just("get"), keys),
        st.tuples(st.just("remove"), keys, st.integers(0, 11)),
        st.tuples(st.just("pop_expired"), st.integers(0, 40)),
        st.tuples(st.just("oldest_idle_since")),
        st.tuples(st.just("pop_all")),
    ),
    max_size=60,
)


@HYPOTHESIS
@given(max_idle=st.integers(0, 6), max_per_key=st.integers(-1, 4), ops=operations)
def test_idle_connections_random_operations(twins, max_idle, max_per_key, ops):
    c_pool = twins[0].IdleConnections(max_idle, max_per_key)
    py_pool = twins[1].IdleConnections(max_idle, max_per_key)
    conns = [Conn(i) for i in range(12)]
    idle_under = {}  # conn index -> key, for the connections idle right now
    for clock, op in enumerate(ops):
        if op[0] == "put":
            _, key, i = op
            if i in idle_under:  # putting an idle connection again is a caller bug
                continue
            conns[i].idle_since = clock // 2  # ties too
            args = (key, conns[i])
            idle_under[i] = key
        elif op[0] == "remove":
            _, key, i = op
            args = (idle_under.get(i, key), conns[i])
        else:
            args = op[1:]
        c_result = getattr(c_pool, op[0])(*args)
        py_result = getattr(py_pool, op[0])(*args)
        assert c_result == py_result, op
        if isinstance(py_result, list):
            for conn in py_result:
                idle_under.pop(conn.name, None)
        elif op[0] == "get" and py_result is not None:
            del idle_under[py_result.name]
        elif op[0] == "remove":
            idle_under.pop(op[2], None)
        assert len(c_pool) == len(py_pool) == len(idle_under)
        assert c_pool.keys() == py_pool.keys()
        assert [c_pool.count(k) for k in "abcz"] == [py_pool.count(k) for k in "abcz"]
        assert c_pool.oldest_idle_since() == py_pool.oldest_idle_since()
    assert c_pool.pop_all() == py_pool.pop_all()


@pytest.mark.parametrize("size", [0, 1, 13, 65536, 1 << 20])
def test_new_body_buffer_gives_the_bytes_received_through_its_view(impl, size):
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    body, view = impl.new_body_buffer(size)
    assert len(view) == size and not view.readonly
    view[:] = data
    view.release()
    assert bytes(body) == data and type(bytes(body)) is bytes
    with pytest.raises(ValueError):
        impl.new_body_buffer(-1)


def test_poll_readable_and_send_nowait_on_a_socket_pair(impl):
    import socket as socket_module

    left, right = socket_module.socketpair()
    try:
        assert impl.poll_readable(right.fileno()) is False
        assert impl.send_nowait(left, b"ping") == 4
        assert impl.poll_readable(right.fileno()) is True
        assert right.recv(4) == b"ping"
        left.setblocking(False)
        sent = 0
        while (count := impl.send_nowait(left, b"x" * 65536)) > 0:  # fill the buffers
            sent += count
            assert sent < 1 << 28
        assert impl.send_nowait(left, b"more") == 0  # full: nothing fits, no error
        right.close()
        assert impl.poll_readable(left.fileno()) is True  # hung up counts as readable
        with pytest.raises(OSError):
            while True:
                impl.send_nowait(left, b"x")
    finally:
        left.close()
        right.close()
