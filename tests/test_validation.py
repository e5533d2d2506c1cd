"""Validation: a bad request is refused before any connection is dialed or any body byte read.

Every byte 0x00-0xff is tried as a header-name and a header-value character; each refusal is
an ``InvalidRequest`` (a ``ValueError``) with the exact message, nothing dialed, and the body
file left where it stood.
"""

from __future__ import annotations

import io
import json

import pytest

import roundtrip

from servers import keep_alive_handler

# RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
#                          "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
TCHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
# Go's httpguts.ValidHeaderFieldValue: CTLs other than HTAB are refused, DEL included.
BAD_VALUE_BYTES = frozenset(list(range(0x00, 0x09)) + list(range(0x0A, 0x20)) + [0x7F])
# Control characters (tab, CR, LF included) and space are refused in the URL.
BAD_URL_CHARS = [chr(b) for b in list(range(0x00, 0x21)) + [0x7F]]

BODY = b"0123456789abcdef"
START = 3  # the body file stands here when round_trip is called


class SpyFile(io.BytesIO):
    """A body file that records every read or seek made once it is armed."""

    def __init__(self) -> None:
        super().__init__(BODY)
        self.seek(START)
        self.armed = False
        self.touched: list[str] = []

    def read(self, *args):  # type: ignore[override]
        if self.armed:
            self.touched.append("read")
        return super().read(*args)

    def readinto(self, *args):  # type: ignore[override]
        if self.armed:
            self.touched.append("readinto")
        return super().readinto(*args)

    def seek(self, *args):  # type: ignore[override]
        if getattr(self, "armed", False):
            self.touched.append("seek")
        return super().seek(*args)


def refuse(transport, counting_dial, method="GET", url="http://127.0.0.1:9/", headers=None):
    """Run a round trip that must fail validation; return the error after checking that
    nothing was dialed and the body file was not touched."""
    body = SpyFile()
    request = roundtrip.Request(method, url, headers=headers, body=body)
    body.armed = True
    with pytest.raises(roundtrip.InvalidRequest) as info:
        transport.round_trip(request)
    body.armed = False
    assert counting_dial.calls == []
    assert body.touched == []
    assert not body.closed
    assert body.tell() == START
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, roundtrip.Error)
    return info.value


@pytest.fixture
def checked(make_transport, counting_dial):
    t = make_transport(dial=counting_dial)
    return lambda **kwargs: refuse(t, counting_dial, **kwargs)


# -- header names ------------------------------------------------------------------------------


def test_every_non_tchar_byte_is_refused_in_a_header_name(checked):
    mismatches = []
    for byte in range(256):
        char = chr(byte)
        if char in TCHARS:
            continue
        for name in (char, f"X{char}Name"):
            exc = checked(headers=[(name, "v")])
            expected = f"invalid header field name {json.dumps(name)}"
            if type(exc) is not roundtrip.InvalidRequest or str(exc) != expected:
                mismatches.append((byte, name, type(exc).__name__, str(exc)))
    assert mismatches == []


def test_empty_header_name_is_refused(checked):
    exc = checked(headers=[("", "v")])
    assert str(exc) == 'invalid header field name ""'


def test_every_tchar_is_accepted_in_a_header_name(make_transport, counting_dial, server):
    srv = server(keep_alive_handler())
    t = make_transport(dial=counting_dial)
    names = sorted(TCHARS)
    with t.round_trip(roundtrip.Request("GET", srv.url(), headers=[(n, "v") for n in names])) as resp:
        assert resp.status_code == 200
        resp.read()
    received = srv.received[0].header_names()
    for name in names:
        assert name in received
    assert len(counting_dial.calls) == 1


def test_bad_header_name_after_good_fields_is_named(checked):
    exc = checked(headers=[("Accept", "*/*"), ("Bad Name", "v"), ("Other", "x")])
    assert str(exc) == 'invalid header field name "Bad Name"'


# -- header values -----------------------------------------------------------------------------


def test_every_ctl_byte_is_refused_in_a_header_value_and_never_echoed(checked):
    mismatches = []
    for byte in sorted(BAD_VALUE_BYTES):
        char = chr(byte)
        for value in (char, f"secret{char}value", f"secret-value{char}"):
            exc = checked(headers=[("X-Token", value)])
            expected = 'invalid header field value for key "X-Token"'
            if type(exc) is not roundtrip.InvalidRequest or str(exc) != expected:
                mismatches.append((byte, value, type(exc).__name__, str(exc)))
            if "secret" in str(exc):
                mismatches.append((byte, "value echoed", str(exc)))
    assert mismatches == []


def test_every_other_byte_is_accepted_in_a_header_value(make_transport, counting_dial, server):
    srv = server(keep_alive_handler())
    t = make_transport(dial=counting_dial)
    good = [b for b in range(256) if b not in BAD_VALUE_BYTES]
    headers = [(f"X-V-{b:02x}", f"a{chr(b)}b") for b in good]
    with t.round_trip(roundtrip.Request("GET", srv.url(), headers=headers)) as resp:
        assert resp.status_code == 200
        resp.read()
    head = srv.received[0].head
    for b in good:
        assert f"X-V-{b:02x}: a".encode() + bytes([b]) + b"b\r\n" in head, hex(b)


def test_header_name_with_unicode_is_refused_with_json_quoting(checked):
    exc = checked(headers=[("Grüße", "v")])
    assert str(exc) == f"invalid header field name {json.dumps('Grüße')}"
    assert str(exc) == 'invalid header field name "Gr\\u00fc\\u00dfe"'


def test_header_value_outside_latin1_is_refused_and_not_echoed(checked):
    exc = checked(headers=[("X-Price", "10 €")])
    assert type(exc) is roundtrip.InvalidRequest
    assert "€" not in str(exc)


@pytest.mark.parametrize("value", ["\u20ac\x00", "\x7f\u0101", "\U0001f600\r\n", "\u0100" * 50 + "\n"])
def test_ctl_is_reported_before_a_char_outside_latin1(checked, value):
    exc = checked(headers=[("X-Mixed", value)])
    assert str(exc) == 'invalid header field value for key "X-Mixed"'


@pytest.mark.parametrize("name", ["\u0100", "X-\U0001f600", "\u2028", "Name\u00ff"])
def test_header_name_outside_ascii_is_quoted_like_json_dumps(checked, name):
    exc = checked(headers=[(name, "v")])
    assert str(exc) == f"invalid header field name {json.dumps(name)}"


def test_ctl_deep_inside_a_long_value_is_found(checked):
    for position in (0, 15, 16, 63, 64, 999):
        value = "v" * position + "\x1f" + "w" * (1000 - position)
        exc = checked(headers=[("X-Long", value)])
        assert str(exc) == 'invalid header field value for key "X-Long"', position


def test_bad_char_at_the_end_of_a_long_name_is_found(checked):
    name = "X" * 300 + "@"
    exc = checked(headers=[(name, "v")])
    assert str(exc) == f"invalid header field name {json.dumps(name)}"


def test_header_value_with_latin1_byte_goes_out_as_one_byte(make_transport, server):
    srv = server(keep_alive_handler())
    t = make_transport()
    with t.round_trip(roundtrip.Request("GET", srv.url(), headers={"X-Name": "café"})) as resp:
        resp.read()
    assert b"X-Name: caf\xe9\r\n" in srv.received[0].head


def test_host_header_with_crlf_is_refused(checked):
    exc = checked(headers={"Host": "example.com\r\nX-Evil: 1"})
    assert str(exc) == 'invalid header field value for key "Host"'


# -- methods -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PROPFIND", "M-SEARCH", "purge", "X_Y.Z~1"])
def test_token_methods_are_sent_as_given(make_transport, server, method):
    srv = server(keep_alive_handler())
    t = make_transport()
    with t.round_trip(roundtrip.Request(method, srv.url("/m"))) as resp:
        assert resp.status_code == 200
        resp.read()
    assert srv.received[0].request_line == f"{method} /m HTTP/1.1"


def test_empty_method_means_get(make_transport, server):
    srv = server(keep_alive_handler())
    t = make_transport()
    with t.round_trip(roundtrip.Request("", srv.url("/e"))) as resp:
        resp.read()
    assert srv.received[0].request_line == "GET /e HTTP/1.1"


@pytest.mark.parametrize("method", ["GET /", "BAD\r\n", "GÉT", "(", "a b", " ", "GET\t", "X:Y", "\x00"])
def test_non_token_methods_are_refused(checked, method):
    exc = checked(method=method)
    assert str(exc) == f"invalid method {json.dumps(method)}"


# -- schemes and hosts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, scheme",
    [
        ("ftp://127.0.0.1/file", "ftp"),
        ("file:///etc/passwd", "file"),
        ("ws://127.0.0.1/", "ws"),
        ("localhost:8080/x", "localhost"),
        ("/just/a/path", ""),
    ],
)
def test_unsupported_scheme_is_refused(checked, url, scheme):
    exc = checked(url=url)
    assert str(exc) == f"unsupported protocol scheme {json.dumps(scheme)}"


def test_scheme_is_case_insensitive(make_transport, server):
    srv = server(keep_alive_handler(b"up"))
    t = make_transport()
    with t.round_trip(roundtrip.Request("GET", f"HTTP://127.0.0.1:{srv.port}/u")) as resp:
        assert resp.read() == b"up"


@pytest.mark.parametrize("url", ["http:///path", "http://", "https:///", "http:?q", "http://user@/x"])
def test_missing_host_is_refused(checked, url):
    exc = checked(url=url)
    assert str(exc) == "no Host in request URL"


def test_missing_host_is_refused_even_with_a_host_header(checked):
    exc = checked(url="http:///x", headers={"Host": "example.com"})
    assert str(exc) == "no Host in request URL"


@pytest.mark.parametrize("part", ["path", "query", "host"])
def test_control_characters_and_space_in_the_url_are_refused_never_stripped(checked, part):
    mismatches = []
    for char in BAD_URL_CHARS:
        url = {
            "path": f"http://127.0.0.1:9/a{char}b",
            "query": f"http://127.0.0.1:9/p?q=a{char}b",
            "host": f"http://exa{char}mple.com/",
        }[part]
        exc = checked(url=url)
        if type(exc) is not roundtrip.InvalidRequest or part not in str(exc).lower():
            mismatches.append((hex(ord(char)), str(exc)))
    assert mismatches == []


@pytest.mark.parametrize("port", ["abc", "99999", "65536", "-1", "8o", "+80", "1 2", "٨٠"])
def test_bad_ports_are_refused(checked, port):
    exc = checked(url=f"http://127.0.0.1:{port}/")
    assert "port" in str(exc).lower()


def test_ipv6_host_without_brackets_is_refused(checked):
    checked(url="http://::1:8080/")


def test_unclosed_ipv6_bracket_is_refused(checked):
    checked(url="http://[::1:8080/")


# -- order (Go's Transport.roundTrip: header fields, scheme, method, host) ----------------------


def test_header_fields_are_checked_before_method_and_host(checked):
    exc = checked(method="BAD METHOD", url="http:///nohost", headers={"Bad Name": "v"})
    assert str(exc) == 'invalid header field name "Bad Name"'


def test_header_values_are_checked_before_method_and_host(checked):
    exc = checked(method="BAD METHOD", url="http:///nohost", headers={"X": "a\nb"})
    assert str(exc) == 'invalid header field value for key "X"'


def test_scheme_is_checked_before_method(checked):
    exc = checked(method="BAD METHOD", url="ftp://127.0.0.1/")
    assert str(exc) == 'unsupported protocol scheme "ftp"'


def test_header_fields_are_not_checked_for_an_unsupported_scheme(checked):
    # Go validates header fields only for http and https; the scheme error comes first.
    exc = checked(url="ftp://127.0.0.1/", headers={"Bad Name": "v"})
    assert str(exc) == 'unsupported protocol scheme "ftp"'


def test_method_is_checked_before_host(checked):
    exc = checked(method="BAD METHOD", url="http:///nohost")
    assert str(exc) == 'invalid method "BAD METHOD"'


def test_host_is_checked_before_url_characters_in_path(checked):
    exc = checked(url="http:///a b")
    assert str(exc) == "no Host in request URL"


# -- bodies ------------------------------------------------------------------------------------


def test_str_body_is_refused_before_dialing(make_transport, counting_dial):
    t = make_transport(dial=counting_dial)
    with pytest.raises(roundtrip.InvalidRequest):
        t.round_trip(roundtrip.Request("POST", "http://127.0.0.1:9/", body="text"))
    assert counting_dial.calls == []


def test_refused_request_does_not_start_an_iterable_body(make_transport, counting_dial):
    started = []

    def chunks():
        started.append(True)
        yield b"data"

    t = make_transport(dial=counting_dial)
    with pytest.raises(roundtrip.InvalidRequest):
        t.round_trip(roundtrip.Request("POST", "http://127.0.0.1:9/", headers={"X": "\r"}, body=chunks()))
    assert started == []
    assert counting_dial.calls == []


def test_constructing_a_request_validates_nothing():
    req = roundtrip.Request("BAD METHOD", "ftp://\x00", headers={"Bad Name": "\n"})
    assert (req.method, req.url) == ("BAD METHOD", "ftp://\x00")
    assert req.headers["bad name"] == "\n"


def test_valid_request_after_refusals_still_works(make_transport, counting_dial, server):
    srv = server(keep_alive_handler(b"fine"))
    t = make_transport(dial=counting_dial)
    refuse(t, counting_dial, headers={"X": "\x00"})
    with t.round_trip(roundtrip.Request("GET", srv.url())) as resp:
        assert resp.read() == b"fine"
    assert counting_dial.calls == [("127.0.0.1", srv.port)]


# -- valid URLs: what goes on the request line ------------------------------------------------


@pytest.mark.parametrize(
    "suffix, target",
    [
        ("", "/"),
        ("?x=1", "/?x=1"),
        ("/p?q=1#fragment", "/p?q=1"),
        ("/a%2Fb%20c", "/a%2Fb%20c"),
        ("/caf\u00e9", "/caf%C3%A9"),
        ("/p?", "/p?"),
    ],
)
def test_request_target_on_the_wire(make_transport, server, suffix, target):
    srv = server(keep_alive_handler())
    t = make_transport()
    with t.round_trip(roundtrip.Request("GET", f"http://127.0.0.1:{srv.port}{suffix}")) as resp:
        resp.read()
    assert srv.received[0].request_line == f"GET {target} HTTP/1.1"


# -- what was wrong, as a value ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, part",
    [
        ({"method": "BAD METHOD"}, "method"),
        ({"headers": {"Bad Name": "x"}}, "header"),
        ({"headers": {"X": "a\r\nb"}}, "header"),
        ({"headers": {"X": "\u20ac"}}, "header"),
        ({"url": "ftp://127.0.0.1/"}, "scheme"),
        ({"url": "http:///path"}, "url"),
        ({"url": "http://127.0.0.1:99999/"}, "url"),
        ({"url": "http://127.0.0.1/a b"}, "url"),
        ({"url": "http://[::1%25]/"}, "url"),
    ],
)
def test_invalid_request_says_which_part_was_wrong(checked, kwargs, part):
    assert checked(**kwargs).part == part


def test_an_unusable_body_is_the_body_part(make_transport, counting_dial):
    transport = make_transport(dial=counting_dial)
    with pytest.raises(roundtrip.InvalidRequest) as info:
        transport.round_trip(roundtrip.Request("POST", "http://127.0.0.1:9/", body="text, not bytes"))
    assert info.value.part == "body" and counting_dial.calls == []


def test_invalid_request_keeps_its_part_through_pickling():
    import pickle

    error = pickle.loads(pickle.dumps(roundtrip.InvalidRequest('invalid method "A B"', "method")))
    assert (str(error), error.part) == ('invalid method "A B"', "method")
    with pytest.raises(ValueError):
        roundtrip.InvalidRequest("no such part", "cookie")
