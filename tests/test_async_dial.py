"""AsyncTransport's default dialer: names through the loop's resolver, and the addresses
raced as the threaded dialer races them (Happy Eyeballs, Go's ``dialParallel``), with a stand-in
resolver giving a name one IPv4 and one IPv6 address on loopback."""

from __future__ import annotations

import socket
from typing import Any, Callable

import pytest

from roundtrip import ConnectError, ConnectTimeout, Context, Request, _async_dial

from aio import afetch_body
from servers import keep_alive_handler
from test_dial_fallback import NAME, Connects, hanging, info, loopback, needs_ipv6, refusing_port  # noqa: F401 (fixture)


@pytest.fixture
def resolve(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[tuple]], None]:
    """``resolve(infos)``: from now on ``NAME`` resolves to ``infos`` on the loop."""
    answers: list[tuple] = []
    real = _async_dial._resolve

    async def stand_in(loop: Any, host: str, port: int) -> list[tuple]:
        if host == NAME:
            return list(answers)
        return await real(loop, host, port)

    monkeypatch.setattr(_async_dial, "_resolve", stand_in)
    return lambda infos: answers.extend(infos)


def fetch(run, t, url, **kwargs):
    async def main():
        async with t:
            return await afetch_body(t, url, **kwargs)

    return run(main())


@needs_ipv6
@pytest.mark.parametrize("first", [socket.AF_INET, socket.AF_INET6], ids=["ipv4-hangs", "ipv6-hangs"])
def test_the_other_family_wins_when_the_first_address_hangs(run, server, atransport, resolve, hanging, first):
    second = socket.AF_INET6 if first == socket.AF_INET else socket.AF_INET
    stuck = hanging(first)
    srv = server(keep_alive_handler(b"raced"), family=second)
    resolve([info(first, stuck.port), info(second, srv.port)])
    connects = Connects()
    t = atransport(connect_timeout=30)
    assert fetch(run, t, f"http://{NAME}:{srv.port}/", trace=connects.trace, context=Context(timeout=15)) == b"raced"
    assert connects.starts == [(loopback(first), stuck.port), (loopback(second), srv.port)]
    assert ((loopback(second), srv.port), None) in connects.dones
    (loser,) = [error for addr, error in connects.dones if addr == (loopback(first), stuck.port)]
    assert isinstance(loser, ConnectError) and "canceled" in str(loser)


@needs_ipv6
def test_every_address_failing_raises_the_first_families_first_error(run, atransport, resolve, hanging):
    refused, stuck = refusing_port(socket.AF_INET), hanging(socket.AF_INET6)
    resolve([info(socket.AF_INET, refused), info(socket.AF_INET6, stuck.port)])
    connects = Connects()
    t = atransport(connect_timeout=0.3)
    with pytest.raises(ConnectError) as caught:
        fetch(run, t, f"http://{NAME}:{refused}/", trace=connects.trace, context=Context(timeout=15))
    assert str(caught.value) == f"dial tcp 127.0.0.1:{refused}: connect: connection refused"
    assert connects.starts == [("127.0.0.1", refused), ("::1", stuck.port)]
    errors = [error for _, error in connects.dones]
    assert len(errors) == 2 and isinstance(errors[1], ConnectTimeout), "both addresses were tried"


def test_a_refused_address_is_followed_by_the_next_one(run, server, atransport, resolve):
    srv = server(keep_alive_handler(b"second"))
    refused = refusing_port(socket.AF_INET)
    resolve([info(socket.AF_INET, refused), info(socket.AF_INET, srv.port)])
    connects = Connects()
    assert fetch(run, atransport(), f"http://{NAME}:{srv.port}/", trace=connects.trace) == b"second"
    assert connects.starts == [("127.0.0.1", refused), ("127.0.0.1", srv.port)]
    assert connects.dones[-1] == (("127.0.0.1", srv.port), None)


def test_connect_timeout_per_address(run, atransport, resolve, hanging):
    stuck = hanging(socket.AF_INET)
    resolve([info(socket.AF_INET, stuck.port)])
    with pytest.raises(ConnectTimeout, match="i/o timeout"):
        fetch(run, atransport(connect_timeout=0.2), f"http://{NAME}:{stuck.port}/")


def test_a_failed_lookup_is_a_connect_error_reported_to_dns_done(run, atransport):
    events: list = []
    from roundtrip import Trace

    trace = Trace(dns_start=lambda host: events.append(("start", host)), dns_done=lambda addrs, error: events.append(("done", addrs, type(error))))
    with pytest.raises(ConnectError, match="lookup no-such-host.invalid"):
        fetch(run, atransport(), "http://no-such-host.invalid/", trace=trace)
    assert events == [("start", "no-such-host.invalid"), ("done", [], ConnectError)]
