"""Choosing a proxy: ``proxy_from_environment`` (Go's ``httpproxy`` rules), ``proxy_url``, and
custom choosers. Nothing here needs a real proxy: a ``dial`` option records what was dialed."""

from __future__ import annotations

from typing import Any

import pytest

import roundtrip
from helpers import RecordingDial
from servers import keep_alive_handler

PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "REQUEST_METHOD")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def chosen(url: str) -> Any:
    return roundtrip.proxy_from_environment(roundtrip.Request("GET", url))


# -- NO_PROXY -----------------------------------------------------------------------------------

NO_PROXY_TABLE = [
    # (NO_PROXY, request URL, goes direct)
    ("example.com", "http://example.com/", True),
    ("example.com", "http://foo.example.com/", True),
    ("example.com", "http://a.b.example.com:8080/", True),
    ("ample.com", "http://example.com/", False),
    ("example.com", "http://notexample.com/", False),
    ("example.com", "http://example.com.evil.net/", False),
    (".example.com", "http://example.com/", False),
    (".example.com", "http://foo.example.com/", True),
    ("*.example.com", "http://foo.example.com/", True),
    ("*.example.com", "http://example.com/", False),
    ("EXAMPLE.com", "http://Foo.Example.COM/", True),
    (" other.org , example.com ", "http://example.com/", True),
    ("other.org,,", "http://example.com/", False),
    ("", "http://example.com/", False),
    # ports: the default port counts as written
    ("example.com:8080", "http://example.com:8080/", True),
    ("example.com:8080", "http://example.com/", False),
    ("example.com:80", "http://example.com/", True),
    ("example.com:443", "https://example.com/", True),
    ("example.com:443", "http://example.com/", False),
    # IP literals and CIDR ranges
    ("192.168.1.1", "http://192.168.1.1:8080/", True),
    ("192.168.1.1:8080", "http://192.168.1.1:8080/", True),
    ("192.168.1.1:80", "http://192.168.1.1:8080/", False),
    ("192.168.1.1", "http://192.168.1.2/", False),
    ("10.0.0.0/8", "http://10.1.2.3/", True),
    ("10.0.0.0/8", "http://11.0.0.1/", False),
    ("10.1.2.3/8", "http://10.200.0.1/", True),
    ("2001:db8::/32", "http://[2001:db8::1]/", True),
    ("2001:db8::/32", "http://[2001:db9::1]/", False),
    ("2001:db8::1", "http://[2001:db8::1]:8080/", True),
    ("[2001:db8::1]:8080", "http://[2001:db8::1]:8080/", True),
    ("[2001:db8::1]:8080", "http://[2001:db8::1]/", False),
    ("10.0.0.0/8", "http://ten.example/", False),
    # everything
    ("*", "http://example.com/", True),
    ("*", "https://10.1.2.3:8443/", True),
    ("other.org,*", "http://example.com/", True),
    # internationalized names compare in their ASCII form
    ("bücher.de", "http://xn--bcher-kva.de/", True),
    ("xn--bcher-kva.de", "http://bücher.de/", True),
    # malformed entries are ignored
    (":80", "http://example.com/", False),
]


@pytest.mark.parametrize("no_proxy, url, direct", NO_PROXY_TABLE)
def test_no_proxy_table(clean_environment, no_proxy, url, direct):
    clean_environment.setenv("HTTP_PROXY", "http://proxy.test:3128")
    clean_environment.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    clean_environment.setenv("NO_PROXY", no_proxy)
    assert chosen(url) == (None if direct else "http://proxy.test:3128")


@pytest.mark.parametrize(
    "url",
    ["http://localhost/", "http://localhost:8080/", "http://127.0.0.1/", "http://127.5.6.7:99/", "http://[::1]:8080/", "https://[::ffff:127.0.0.1]/", "https://LOCALHOST/"],
)
def test_loopback_is_never_proxied(clean_environment, url):
    clean_environment.setenv("HTTP_PROXY", "http://proxy.test:3128")
    clean_environment.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    assert chosen(url) is None


def test_names_that_only_look_local_are_proxied(clean_environment):
    clean_environment.setenv("HTTP_PROXY", "http://proxy.test:3128")
    assert chosen("http://localhost.example.com/") == "http://proxy.test:3128"
    assert chosen("http://128.0.0.1/") == "http://proxy.test:3128"


def test_lower_case_no_proxy_is_used_when_upper_case_is_unset(clean_environment):
    clean_environment.setenv("HTTP_PROXY", "http://proxy.test:3128")
    clean_environment.setenv("no_proxy", "example.com")
    assert chosen("http://example.com/") is None


def test_upper_case_no_proxy_wins_over_lower_case(clean_environment):
    clean_environment.setenv("HTTP_PROXY", "http://proxy.test:3128")
    clean_environment.setenv("NO_PROXY", "other.org")
    clean_environment.setenv("no_proxy", "example.com")
    assert chosen("http://example.com/") == "http://proxy.test:3128"


# -- which variable -----------------------------------------------------------------------------


def test_http_proxy_serves_http_and_https_proxy_serves_https(clean_environment):
    clean_environment.setenv("HTTP_PROXY", "http://plain.test:1")
    clean_environment.setenv("HTTPS_PROXY", "http://secure.test:2")
    assert chosen("http://example.com/") == "http://plain.test:1"
    assert chosen("https://example.com/") == "http://secure.test:2"


def test_https_requests_do_not_fall_back_to_http_proxy(clean_environment):
    clean_environment.setenv("HTTP_PROXY", "http://plain.test:1")
    assert chosen("https://example.com/") is None


@pytest.mark.parametrize("upper, lower", [("HTTP_PROXY", "http_proxy"), ("HTTPS_PROXY", "https_proxy")])
def test_upper_case_variable_wins_when_both_are_set(clean_environment, upper, lower):
    # Go's getEnvAny("HTTP_PROXY", "http_proxy"): the first non-empty one.
    clean_environment.setenv(upper, "http://upper.test:1")
    clean_environment.setenv(lower, "http://lower.test:2")
    scheme = "https" if "S_" in upper else "http"
    assert chosen(f"{scheme}://example.com/") == "http://upper.test:1"


@pytest.mark.parametrize("upper, lower", [("HTTP_PROXY", "http_proxy"), ("HTTPS_PROXY", "https_proxy")])
def test_lower_case_variable_is_used_when_upper_case_is_empty(clean_environment, upper, lower):
    clean_environment.setenv(upper, "")
    clean_environment.setenv(lower, "http://lower.test:2")
    scheme = "https" if "S_" in upper else "http"
    assert chosen(f"{scheme}://example.com/") == "http://lower.test:2"


def test_cgi_ignores_http_proxy_for_http_requests(clean_environment):
    # httpoxy: in a CGI script HTTP_PROXY may come from a request's "Proxy:" header.
    clean_environment.setenv("REQUEST_METHOD", "GET")
    clean_environment.setenv("HTTP_PROXY", "http://evil.test:1")
    clean_environment.setenv("http_proxy", "http://evil.test:1")
    clean_environment.setenv("HTTPS_PROXY", "http://secure.test:2")
    assert chosen("http://example.com/") is None
    assert chosen("https://example.com/") == "http://secure.test:2"


def test_empty_request_method_is_not_cgi(clean_environment):
    clean_environment.setenv("REQUEST_METHOD", "")
    clean_environment.setenv("HTTP_PROXY", "http://plain.test:1")
    assert chosen("http://example.com/") == "http://plain.test:1"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("proxy.test:3128", "http://proxy.test:3128"),
        ("127.0.0.2:3128", "http://127.0.0.2:3128"),
        ("user:pw@proxy.test:3128", "http://user:pw@proxy.test:3128"),
        ("https://proxy.test", "https://proxy.test"),
        ("socks5://proxy.test:1080", "socks5://proxy.test:1080"),
        ("socks5h://proxy.test", "socks5h://proxy.test"),
    ],
)
def test_proxy_values_without_a_scheme_are_http(clean_environment, value, expected):
    clean_environment.setenv("HTTP_PROXY", value)
    assert chosen("http://example.com/") == expected


@pytest.mark.parametrize("value", ["ftp://proxy.test", "http://", "http://proxy.test:99999", "http://proxy.test:x", "http://pro xy.test"])
def test_unusable_proxy_values_are_ignored(clean_environment, value):
    clean_environment.setenv("HTTP_PROXY", value)
    assert chosen("http://example.com/") is None


def test_direct_call_reads_the_environment_now(clean_environment):
    assert chosen("http://example.com/") is None
    clean_environment.setenv("HTTP_PROXY", "http://proxy.test:1")
    assert chosen("http://example.com/") == "http://proxy.test:1"


# -- the Transport reads the environment once ------------------------------------------------------


def test_transport_keeps_the_environment_it_was_built_with(clean_environment, make_transport, server):
    srv = server(keep_alive_handler(b"via proxy"))
    dial = RecordingDial(srv.port)
    clean_environment.setenv("HTTP_PROXY", "http://proxy.test:3128")
    t = make_transport(dial=dial)
    clean_environment.delenv("HTTP_PROXY")
    clean_environment.setenv("NO_PROXY", "*")
    with t.round_trip(roundtrip.Request("GET", "http://origin.test/x")) as resp:
        assert resp.read() == b"via proxy"
    assert dial.calls == [("proxy.test", 3128)]
    assert srv.received[0].request_line == "GET http://origin.test/x HTTP/1.1"
    assert "http://proxy.test:3128 via http://proxy.test:3128" in t.pool_stats()


def test_transport_ignores_proxy_variables_set_after_it_was_built(clean_environment, make_transport, server):
    srv = server(keep_alive_handler(b"direct"))
    dial = RecordingDial(srv.port)
    t = make_transport(dial=dial)
    clean_environment.setenv("HTTP_PROXY", "http://proxy.test:3128")
    with t.round_trip(roundtrip.Request("GET", "http://origin.test/x")) as resp:
        assert resp.read() == b"direct"
    assert dial.calls == [("origin.test", 80)]
    assert srv.received[0].request_line == "GET /x HTTP/1.1"


def test_transport_applies_no_proxy_from_its_snapshot(clean_environment, make_transport, server):
    srv = server(keep_alive_handler(b"direct"))
    dial = RecordingDial(srv.port)
    clean_environment.setenv("HTTP_PROXY", "http://proxy.test:3128")
    clean_environment.setenv("NO_PROXY", ".internal.test")
    t = make_transport(dial=dial)
    clean_environment.delenv("NO_PROXY")
    with t.round_trip(roundtrip.Request("GET", "http://api.internal.test/x")) as resp:
        assert resp.read() == b"direct"
    assert dial.calls == [("api.internal.test", 80)]


def test_proxy_none_never_uses_the_environment(clean_environment, make_transport, server):
    srv = server(keep_alive_handler(b"direct"))
    dial = RecordingDial(srv.port)
    clean_environment.setenv("HTTP_PROXY", "http://proxy.test:3128")
    t = make_transport(proxy=None, dial=dial)
    with t.round_trip(roundtrip.Request("GET", "http://origin.test/x")) as resp:
        assert resp.read() == b"direct"
    assert dial.calls == [("origin.test", 80)]


# -- proxy_url and custom choosers -----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["ftp://proxy.test", "http://", "http://user:secret@", "http://proxy.test:0", "http://proxy.test:65536", "http://[::1", "http://proxy.test\r\n:1", 42],
)
def test_proxy_url_refuses_unusable_urls(url):
    with pytest.raises(ValueError) as info:
        roundtrip.proxy_url(url)
    assert "secret" not in str(info.value)


def test_proxy_url_without_scheme_is_http():
    chooser = roundtrip.proxy_url("proxy.test:3128")
    assert chooser(roundtrip.Request("GET", "https://example.com/")) == "http://proxy.test:3128"
    assert "secret" not in repr(roundtrip.proxy_url("http://user:secret@proxy.test"))


def test_proxy_url_proxies_loopback_too(make_transport, server):
    # Only proxy_from_environment exempts loopback; a fixed proxy is used for everything.
    srv = server(keep_alive_handler(b"proxied"))
    t = make_transport(proxy=roundtrip.proxy_url(f"http://127.0.0.1:{srv.port}"))
    with t.round_trip(roundtrip.Request("GET", "http://127.0.0.1:1/x")) as resp:
        assert resp.read() == b"proxied"
    assert srv.received[0].request_line == "GET http://127.0.0.1:1/x HTTP/1.1"


def test_chooser_is_asked_per_request(make_transport, server):
    srv = server(keep_alive_handler(b"ok"))
    asked: list[str] = []

    def chooser(request: roundtrip.Request) -> Any:
        asked.append(request.url)
        return f"http://127.0.0.1:{srv.port}" if "proxied" in request.url else None

    origin = server(keep_alive_handler(b"direct"))
    t = make_transport(proxy=chooser)
    with t.round_trip(roundtrip.Request("GET", "http://proxied.test/")) as resp:
        assert resp.read() == b"ok"
    with t.round_trip(roundtrip.Request("GET", origin.url("/"))) as resp:
        assert resp.read() == b"direct"
    assert asked == ["http://proxied.test/", origin.url("/")]


@pytest.mark.parametrize("bad", ["gopher://proxy.test", "http://user:secret@:1"])
def test_chooser_naming_an_unusable_proxy_raises_proxy_error_before_dialing(make_transport, counting_dial, bad):
    t = make_transport(proxy=lambda request: bad, dial=counting_dial)
    with pytest.raises(roundtrip.ProxyError) as info:
        t.round_trip(roundtrip.Request("GET", "http://example.com/"))
    assert counting_dial.calls == []
    assert "secret" not in str(info.value)


def test_chooser_returning_empty_string_means_direct(make_transport, server):
    srv = server(keep_alive_handler(b"direct"))
    t = make_transport(proxy=lambda request: "")
    with t.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        assert resp.read() == b"direct"


def test_proxy_option_must_be_callable():
    with pytest.raises(TypeError):
        roundtrip.Transport(proxy="http://proxy.test:3128")
