"""IPv6 zone identifiers in request URLs (RFC 6874): ``http://[fe80::1%25eth0]:8080/``.

The zone is written "%25" + zone (percent-encoded) in the URL, dialed unescaped
("fe80::1%eth0"), kept in the pool key (Go's connectMethodKey holds it), and never sent: the
Host field is ``[fe80::1]:8080`` (Go's removeZone)."""

from __future__ import annotations

import socket
from typing import Any, Optional

import pytest

from roundtrip import ConnectError, InvalidRequest, Request, Trace, proxy_url
from roundtrip._proxy import parse_proxy_url
from roundtrip._urls import split_target

from servers import keep_alive_handler


def target(url: str) -> Any:
    scheme, _, rest = url.partition(":")
    return split_target(scheme, rest)


# -- splitting the URL ----------------------------------------------------------------------


def test_the_zone_is_unescaped_for_dialing():
    t = target("http://[fe80::1%25eth0]:8080/p")
    assert (t.host, t.zone, t.dial_host, t.port) == ("fe80::1", "eth0", "fe80::1%eth0", 8080)


def test_the_zone_never_reaches_the_host_field():
    assert target("http://[fe80::1%25eth0]:8080/").authority == "[fe80::1]:8080"
    assert target("http://[fe80::1%25eth0]/").authority == "[fe80::1]"


def test_the_pool_key_keeps_the_zone_escaped():
    assert target("http://[fe80::1%25eth0]:8080/").key == "http://[fe80::1%25eth0]:8080"
    assert target("https://[FE80::1%25eth0]/").key == "https://[fe80::1%25eth0]:443"


def test_different_zones_make_different_keys():
    keys = {target(f"http://[fe80::1{zone}]/").key for zone in ("", "%25eth0", "%25eth1", "%25ETH0")}
    assert len(keys) == 4, "interface names are case-sensitive, and each zone is its own route"


def test_percent_escapes_inside_the_zone_are_decoded():
    t = target("http://[fe80::1%25%65th0]/")
    assert t.zone == "eth0" and t.key == "http://[fe80::1%25eth0]:80"
    assert target("http://[fe80::1%25a%25b]/").zone == "a%b"


def test_a_numeric_zone_is_kept_as_written():
    assert target("http://[fe80::1%252]/").dial_host == "fe80::1%2"


def test_an_address_without_a_zone_is_unchanged():
    t = target("http://[::1]:81/")
    assert (t.host, t.zone, t.dial_host, t.authority, t.key) == ("::1", "", "::1", "[::1]:81", "http://[::1]:81")


@pytest.mark.parametrize(
    "url",
    [
        "http://[fe80::1%25]/",  # empty zone
        "http://[fe80::1%eth0]/",  # "%" not written as %25 (Go: invalid URL escape)
        "http://[fe80::1%]/",
        "http://[fe80::1%25eth%zz]/",  # bad percent-escape
        "http://[fe80::1%25eth%4]/",
        "http://[fe80::1%25eth%0A0]/",  # an escaped control character
        "http://[fe80::1%25eth%200]/",  # an escaped space
        "http://[fe80::1%25eth 0]/",  # a raw space
        "http://[fe80::1%25%FF]/",  # escapes that are not UTF-8
        "http://[fe80::1%25\u00e9]/",  # non-ASCII must be escaped
    ],
)
def test_an_invalid_zone_is_refused_naming_the_url_host(url):
    with pytest.raises(InvalidRequest) as caught:
        target(url)
    assert "URL host" in str(caught.value) and "zone" in str(caught.value)


def test_an_invalid_zone_is_refused_before_anything_is_dialed(make_transport, counting_dial):
    transport = make_transport(dial=counting_dial, proxy=None)
    with pytest.raises(InvalidRequest, match="zone"):
        transport.round_trip(Request("GET", "http://[fe80::1%25]:8080/"))
    assert counting_dial.calls == []


# -- on the wire ----------------------------------------------------------------------------


def loopback_interface() -> Optional[str]:
    """The name of the loopback interface, if ::1 can be listened on."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return None
    names = [name for _, name in socket.if_nameindex() if name.startswith("lo")]
    return names[0] if names else None


LO = loopback_interface()
needs_ipv6 = pytest.mark.skipif(LO is None, reason="no IPv6 loopback (::1 on a 'lo' interface) on this machine")


@needs_ipv6
@pytest.mark.parametrize("zone", ["name", "index"])
def test_a_request_to_a_zoned_address_connects_and_sends_host_without_the_zone(make_transport, server, zone):
    assert LO is not None
    written = LO if zone == "name" else str(socket.if_nametoindex(LO))
    srv = server(keep_alive_handler(b"zoned"), family=socket.AF_INET6)
    transport = make_transport(proxy=None)
    starts: list[tuple] = []
    url = f"http://[::1%25{written}]:{srv.port}/z"
    with transport.round_trip(Request("GET", url, trace=Trace(connect_start=starts.append))) as resp:
        assert resp.read() == b"zoned"
    received = srv.received[0]
    assert received.header("host") == f"[::1]:{srv.port}"
    assert received.request_line == "GET /z HTTP/1.1"
    assert starts == [(f"::1%{written}", srv.port)]
    assert set(transport.pool_stats()) == {f"http://[::1%25{written}]:{srv.port}", "total"}


@needs_ipv6
def test_connections_to_different_zones_are_kept_apart(make_transport, server):
    srv = server(keep_alive_handler(), family=socket.AF_INET6)
    transport = make_transport(proxy=None)
    for url in (f"http://[::1]:{srv.port}/", f"http://[::1%25{LO}]:{srv.port}/", f"http://[::1]:{srv.port}/"):
        with transport.round_trip(Request("GET", url)) as resp:
            resp.read()
    assert srv.accepted == 2, "the zoned request must not reuse the unzoned connection, nor the reverse"


@needs_ipv6
def test_a_custom_dial_is_given_the_zone(make_transport, server):
    srv = server(keep_alive_handler(), family=socket.AF_INET6)
    calls: list[tuple[str, int]] = []

    def dial(host: str, port: int, timeout: Any) -> socket.socket:
        calls.append((host, port))
        return socket.create_connection(("::1", port), timeout=timeout)

    transport = make_transport(dial=dial, proxy=None)
    with transport.round_trip(Request("GET", f"http://[::1%25{LO}]:{srv.port}/")) as resp:
        resp.read()
    assert calls == [(f"::1%{LO}", srv.port)]
    assert srv.received[0].header("host") == f"[::1]:{srv.port}"


def test_an_unknown_interface_is_a_connect_error_naming_it(make_transport):
    names = {name for _, name in socket.if_nameindex()}
    missing = next(f"nosuch{n}" for n in range(100) if f"nosuch{n}" not in names)
    transport = make_transport(proxy=None)
    with pytest.raises(ConnectError) as caught:
        transport.round_trip(Request("GET", f"http://[fe80::1%25{missing}]:9/"))
    assert missing in str(caught.value)


# -- proxies --------------------------------------------------------------------------------


def test_a_proxy_url_with_a_zone_dials_the_zone_and_shows_it_escaped():
    proxy = parse_proxy_url("http://user:pw@[FE80::1%25eth0]:3128")
    assert (proxy.host, proxy.dial_host, proxy.port) == ("fe80::1", "fe80::1%eth0", 3128)
    assert proxy.display == "http://[fe80::1%25eth0]:3128"


@pytest.mark.parametrize("url", ["http://[fe80::1%25]:3128", "http://[fe80::1%eth0]:3128", "socks5://[fe80::1%25a%zz]"])
def test_a_proxy_url_with_an_invalid_zone_is_refused(url):
    with pytest.raises(ValueError, match="invalid proxy URL: invalid IPv6 zone"):
        parse_proxy_url(url)


@needs_ipv6
def test_a_request_through_a_proxy_at_a_zoned_address(make_transport, server):
    srv = server(keep_alive_handler(b"proxied"), family=socket.AF_INET6)
    transport = make_transport(proxy=proxy_url(f"http://[::1%25{LO}]:{srv.port}"))
    with transport.round_trip(Request("GET", "http://origin.test/p")) as resp:
        assert resp.read() == b"proxied"
    assert srv.received[0].request_line == "GET http://origin.test/p HTTP/1.1"
    assert f"http://[::1]:{srv.port} via http://[::1%25{LO}]:{srv.port}" in transport.pool_stats()
