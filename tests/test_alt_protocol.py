"""Alternate protocols (``register_protocol``, validation, errors): Go's
``Transport.RegisterProtocol`` and ``ErrSkipAltProtocol``."""

from __future__ import annotations

import io
from typing import Callable

import pytest

import roundtrip
from roundtrip import InvalidRequest, Request, Response, SkipAltProtocol, UnrewindableBody

from servers import keep_alive_handler


class Alternate:
    """A registered round tripper: records each request, reads its body if told to, then
    answers with ``answer(request)`` (which may raise ``SkipAltProtocol``)."""

    def __init__(self, answer: Callable[[Request], Response], read_body: bool = False) -> None:
        self.answer = answer
        self.read_body = read_body
        self.requests: list[Request] = []
        self.bodies: list[bytes] = []

    def round_trip(self, request: Request) -> Response:
        self.requests.append(request)
        if self.read_body:
            body = request.body
            if hasattr(body, "read"):
                self.bodies.append(body.read())
            elif body is not None and not isinstance(body, (bytes, bytearray, memoryview)):
                self.bodies.append(b"".join(body))
        return self.answer(request)


def skip(request: Request) -> Response:
    raise SkipAltProtocol()


def assert_pool_empty(transport: roundtrip.Transport) -> None:
    assert transport.pool_stats()["total"] == {"idle": 0, "active": 0, "dialing": 0, "waiting": 0}


def test_requests_for_a_registered_scheme_go_to_its_round_tripper(make_transport, counting_dial):
    transport = make_transport(dial=counting_dial)
    answer = Response(201, headers={"X-Alt": "yes"}, body=b"from myproto")
    alt = Alternate(lambda request: answer)
    transport.register_protocol("myproto", alt)
    req = Request("POST", "myproto://somewhere/path?q=1", headers={"A": "b"}, body=b"data")
    resp = transport.round_trip(req)
    assert resp is answer, "the round tripper's Response is returned as it is"
    assert alt.requests == [req] and alt.requests[0] is req
    assert resp.read() == b"from myproto"
    assert counting_dial.calls == []
    assert_pool_empty(transport)


def test_a_registered_round_trippers_error_propagates(make_transport, counting_dial):
    transport = make_transport(dial=counting_dial)

    class Refused(Exception):
        pass

    def refuse(request: Request) -> Response:
        raise Refused("no")

    transport.register_protocol("myproto", Alternate(refuse))
    with pytest.raises(Refused):
        transport.round_trip(Request("GET", "myproto://x/"))
    assert counting_dial.calls == []


def test_scheme_matching_is_case_insensitive(make_transport):
    transport = make_transport()
    answer = Response(200, body=b"ok")
    transport.register_protocol("MyProto", Alternate(lambda request: answer))
    assert transport.round_trip(Request("GET", "MYPROTO://x/")) is answer


def test_registering_a_scheme_twice_is_a_value_error(make_transport):
    transport = make_transport()
    first = Alternate(skip)
    transport.register_protocol("myproto", first)
    with pytest.raises(ValueError):
        transport.register_protocol("myproto", Alternate(skip))
    with pytest.raises(ValueError):
        transport.register_protocol("MYPROTO", Alternate(skip))
    other = make_transport()
    other.register_protocol("myproto", Alternate(skip))  # per Transport, not global


def test_an_unregistered_scheme_is_unsupported(make_transport, counting_dial):
    transport = make_transport(dial=counting_dial)
    with pytest.raises(InvalidRequest) as info:
        transport.round_trip(Request("GET", "myproto://x/"))
    assert str(info.value) == 'unsupported protocol scheme "myproto"'
    assert counting_dial.calls == []


def test_skip_for_a_scheme_the_transport_does_not_speak_is_unsupported(make_transport, counting_dial):
    transport = make_transport(dial=counting_dial)
    alt = Alternate(skip)
    transport.register_protocol("myproto", alt)
    with pytest.raises(InvalidRequest) as info:
        transport.round_trip(Request("GET", "myproto://x/"))
    assert str(info.value) == 'unsupported protocol scheme "myproto"'
    assert len(alt.requests) == 1
    assert counting_dial.calls == []


def test_skip_alt_protocol_is_not_a_roundtrip_error():
    assert issubclass(SkipAltProtocol, Exception)
    assert not issubclass(SkipAltProtocol, roundtrip.Error)


# -- falling back to HTTP -------------------------------------------------------------------


def test_skip_falls_back_to_the_transport(transport, server):
    srv = server(keep_alive_handler(b"from the wire"))
    alt = Alternate(skip)
    transport.register_protocol("http", alt)
    req = Request("GET", srv.url("/fallback"))
    with transport.round_trip(req) as resp:
        assert resp.read() == b"from the wire"
        assert resp.request is req
    assert len(alt.requests) == 1
    assert srv.received[0].request_line == "GET /fallback HTTP/1.1"


def test_a_file_body_read_by_the_alternate_is_rewound_before_the_fallback(transport, server):
    srv = server(keep_alive_handler())
    payload = b"0123456789" * 1000
    body = io.BytesIO(b"ignored:" + payload)
    body.seek(len(b"ignored:"))  # the body starts where the file stands when the Request is made
    alt = Alternate(skip, read_body=True)
    transport.register_protocol("http", alt)
    with transport.round_trip(Request("PUT", srv.url("/file"), body=body)) as resp:
        assert resp.status_code == 200
        resp.read()
    assert alt.bodies == [payload], "the alternate consumed the body"
    assert srv.received[0].body == payload, "the server gets the whole body again"
    assert srv.received[0].header("content-length") == str(len(payload))


def test_a_generator_body_with_get_body_is_replayed_whole(transport, server):
    srv = server(keep_alive_handler())

    def chunks():
        yield b"alpha-"
        yield b"beta-"
        yield b"gamma"

    alt = Alternate(skip, read_body=True)
    transport.register_protocol("http", alt)
    with transport.round_trip(Request("POST", srv.url("/gen"), body=chunks(), get_body=chunks)) as resp:
        resp.read()
    assert alt.bodies == [b"alpha-beta-gamma"]
    assert srv.received[0].body == b"alpha-beta-gamma"


def test_a_consumed_generator_body_without_get_body_is_unrewindable(make_transport, server, counting_dial):
    transport = make_transport(dial=counting_dial)
    srv = server(keep_alive_handler())
    alt = Alternate(skip, read_body=True)
    transport.register_protocol("http", alt)
    body = (piece for piece in (b"once", b"only"))
    with pytest.raises(UnrewindableBody):
        transport.round_trip(Request("POST", srv.url("/gen"), body=body))
    assert alt.bodies == [b"onceonly"]
    assert counting_dial.calls == [] and srv.accepted == 0
    assert_pool_empty(transport)


def test_an_untouched_generator_body_needs_no_rewind(transport, server):
    srv = server(keep_alive_handler())
    alt = Alternate(skip)  # looks at the request, not at its body
    transport.register_protocol("http", alt)
    body = (piece for piece in (b"sent ", b"once"))
    with transport.round_trip(Request("POST", srv.url("/gen"), body=body)) as resp:
        resp.read()
    assert srv.received[0].body == b"sent once"


def test_an_https_alternate_sees_https_requests_only(transport, server):
    srv = server(keep_alive_handler(b"plain"))
    answer = Response(200, body=b"alt-https")
    alt = Alternate(lambda request: answer)
    transport.register_protocol("https", alt)
    assert transport.round_trip(Request("GET", "https://example.invalid/")) is answer
    with transport.round_trip(Request("GET", srv.url("/"))) as resp:
        assert resp.read() == b"plain"
    assert [r.url for r in alt.requests] == ["https://example.invalid/"]


# -- validation order -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers, message",
    [
        ({"bad name": "v"}, 'invalid header field name "bad name"'),
        ({"X-Ok": "line\r\nInjected: 1"}, 'invalid header field value for key "X-Ok"'),
    ],
    ids=["name", "value"],
)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_header_validation_happens_before_an_http_alternate(make_transport, counting_dial, scheme, headers, message):
    transport = make_transport(dial=counting_dial)
    alt = Alternate(lambda request: Response(200))
    transport.register_protocol(scheme, alt)
    with pytest.raises(InvalidRequest) as info:
        transport.round_trip(Request("GET", f"{scheme}://127.0.0.1:1/", headers=headers))
    assert str(info.value) == message
    assert alt.requests == [], "an invalid request never reaches the alternate"
    assert counting_dial.calls == []


def test_headers_of_other_schemes_are_left_to_their_round_tripper(make_transport):
    """Go checks header fields only for http and https; another scheme's round tripper gets
    the request as it is."""
    transport = make_transport()
    answer = Response(200)
    alt = Alternate(lambda request: answer)
    transport.register_protocol("myproto", alt)
    assert transport.round_trip(Request("GET", "myproto://x/", headers={"bad name": "v"})) is answer
    assert len(alt.requests) == 1
