"""The default dialer races address families (Happy Eyeballs, Go's ``dialParallel``) on
loopback: a stand-in resolver gives a name one IPv4 and one IPv6 address, one of which hangs
(a listener with a full accept queue drops further SYNs)."""

from __future__ import annotations

import select
import socket
import threading
import time
from typing import Any, Callable, Iterator, Optional

import pytest

import roundtrip
from roundtrip import Cancelled, ConnectError, ConnectTimeout, Context, Request, Trace
from roundtrip import _tcp

from servers import keep_alive_handler

NAME = "dual.test"  # answered by the stand-in resolver only
HANG = 2.0  # a cancelled round trip returning later than this is a hang, not slowness


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")


def loopback(family: int) -> str:
    return "::1" if family == socket.AF_INET6 else "127.0.0.1"


class Hanging:
    """A listener whose accept queue is full: a further connect to it hangs in SYN-SENT."""

    def __init__(self, family: int) -> None:
        self.listener = socket.socket(family)
        self.fillers: list[socket.socket] = []
        try:
            self.listener.bind((loopback(family), 0))
            self.listener.listen(0)
            for _ in range(64):
                sock = socket.socket(family)
                self.fillers.append(sock)
                sock.setblocking(False)
                sock.connect_ex(self.listener.getsockname()[:2])
                _, writable, _ = select.select([], [sock], [], 0.2)
                if not writable:
                    return  # this one hangs: the queue is full
        except BaseException:
            self.close()
            raise
        self.close()
        pytest.skip("the kernel completes every connect to a listener with a full accept queue")

    @property
    def port(self) -> int:
        return self.listener.getsockname()[1]

    def close(self) -> None:
        for sock in self.fillers:
            sock.close()
        self.listener.close()


def refusing_port(family: int) -> int:
    """A loopback port nothing listens on (bound, never listening, then closed)."""
    with socket.socket(family) as sock:
        sock.bind((loopback(family), 0))
        return sock.getsockname()[1]


def info(family: int, port: int) -> tuple:
    sockaddr = (loopback(family), port) if family == socket.AF_INET else (loopback(family), port, 0, 0)
    return (family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)


@pytest.fixture
def resolve(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[tuple]], None]:
    """``resolve(infos)``: from now on ``NAME`` resolves to ``infos`` (getaddrinfo's form)."""
    answers: list[tuple] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[tuple]:
        if host == NAME:
            return list(answers)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(_tcp, "_getaddrinfo", getaddrinfo)
    return lambda infos: answers.extend(infos)


@pytest.fixture
def hanging() -> Iterator[Callable[[int], Hanging]]:
    made: list[Hanging] = []

    def make(family: int) -> Hanging:
        made.append(Hanging(family))
        return made[-1]

    yield make
    for item in made:
        item.close()


class Connects:
    """Records connect_start / connect_done; ``both_started`` is set at the second start."""

    def __init__(self) -> None:
        self.starts: list[tuple] = []
        self.dones: list[tuple[tuple, Optional[BaseException]]] = []
        self.both_started = threading.Event()
        self.trace = Trace(connect_start=self.start, connect_done=self.done)

    def start(self, addr: tuple) -> None:
        self.starts.append(addr)
        if len(self.starts) == 2:
            self.both_started.set()

    def done(self, addr: tuple, error: Optional[BaseException]) -> None:
        self.dones.append((addr, error))


@needs_ipv6
@pytest.mark.parametrize("first", [socket.AF_INET, socket.AF_INET6], ids=["ipv4-hangs", "ipv6-hangs"])
def test_the_other_family_wins_when_the_first_address_hangs(make_transport, server, resolve, hanging, first):
    second = socket.AF_INET6 if first == socket.AF_INET else socket.AF_INET
    stuck = hanging(first)
    srv = server(keep_alive_handler(b"raced"), family=second)
    resolve([info(first, stuck.port), info(second, srv.port)])
    transport = make_transport(connect_timeout=30, proxy=None)
    connects = Connects()
    request = Request("GET", f"http://{NAME}:{srv.port}/", trace=connects.trace, context=Context(timeout=15))
    began = time.monotonic()
    with transport.round_trip(request) as resp:
        assert resp.read() == b"raced"
    took = time.monotonic() - began
    assert took < 10, "the fallback family waited for the first address's connect timeout"
    assert connects.starts == [(loopback(first), stuck.port), (loopback(second), srv.port)]
    assert ((loopback(second), srv.port), None) in connects.dones
    (loser,) = [error for addr, error in connects.dones if addr == (loopback(first), stuck.port)]
    assert isinstance(loser, ConnectError) and "canceled" in str(loser)
    assert srv.received[0].header("host") == f"{NAME}:{srv.port}"


@needs_ipv6
def test_every_address_failing_raises_the_first_families_first_error(make_transport, resolve, hanging):
    """The IPv4 address is refused at once, which starts the IPv6 one at once; that one then
    times out. The error is the refusal: Go's dialParallel returns the primary's error."""
    refused, stuck = refusing_port(socket.AF_INET), hanging(socket.AF_INET6)
    resolve([info(socket.AF_INET, refused), info(socket.AF_INET6, stuck.port)])
    transport = make_transport(connect_timeout=0.3, proxy=None)
    connects = Connects()
    with pytest.raises(ConnectError) as caught:
        transport.round_trip(Request("GET", f"http://{NAME}:{refused}/", trace=connects.trace, context=Context(timeout=15)))
    assert str(caught.value) == f"dial tcp 127.0.0.1:{refused}: connect: connection refused"
    assert connects.starts == [("127.0.0.1", refused), ("::1", stuck.port)]
    errors = [error for _, error in connects.dones]
    assert len(errors) == 2 and isinstance(errors[1], ConnectTimeout), "both addresses were tried"


@pytest.mark.parametrize("order", ["refused-first", "timeout-first"])
def test_within_one_family_the_first_error_is_raised(make_transport, resolve, hanging, order):
    refused, stuck = refusing_port(socket.AF_INET), hanging(socket.AF_INET)
    addresses = [info(socket.AF_INET, refused), info(socket.AF_INET, stuck.port)]
    if order == "timeout-first":
        addresses.reverse()
    resolve(addresses)
    transport = make_transport(connect_timeout=0.3, proxy=None)
    connects = Connects()
    with pytest.raises(ConnectError if order == "refused-first" else ConnectTimeout) as caught:
        transport.round_trip(Request("GET", f"http://{NAME}:{refused}/", trace=connects.trace, context=Context(timeout=15)))
    first = addresses[0][4][1]
    assert f"dial tcp 127.0.0.1:{first}: " in str(caught.value)
    assert len(connects.starts) == 2, "the second address was tried too"


def test_a_refused_address_is_followed_by_the_next_one(make_transport, server, resolve):
    srv = server(keep_alive_handler(b"second"))
    refused = refusing_port(socket.AF_INET)
    resolve([info(socket.AF_INET, refused), info(socket.AF_INET, srv.port)])
    transport = make_transport(proxy=None)
    connects = Connects()
    with transport.round_trip(Request("GET", f"http://{NAME}:{srv.port}/", trace=connects.trace)) as resp:
        assert resp.read() == b"second"
    assert connects.starts == [("127.0.0.1", refused), ("127.0.0.1", srv.port)]
    assert connects.dones[-1] == (("127.0.0.1", srv.port), None)


@needs_ipv6
def test_cancel_while_both_families_hang_cancels_promptly_and_closes_every_socket(make_transport, resolve, hanging):
    v4, v6 = hanging(socket.AF_INET), hanging(socket.AF_INET6)
    resolve([info(socket.AF_INET6, v6.port), info(socket.AF_INET, v4.port)])
    transport = make_transport(connect_timeout=30, proxy=None)
    connects = Connects()
    ctx = Context(timeout=15)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            transport.round_trip(Request("GET", f"http://{NAME}:{v4.port}/", trace=connects.trace, context=ctx))
        except BaseException as exc:
            outcome["error"] = exc
        outcome["ended"] = time.monotonic()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    assert connects.both_started.wait(10.0), "the second family never started"
    cancelled_at = time.monotonic()
    ctx.cancel()
    worker.join(5.0)
    assert not worker.is_alive(), "the round trip hung"
    assert isinstance(outcome.get("error"), Cancelled), repr(outcome.get("error"))
    assert outcome["ended"] - cancelled_at < HANG
    deadline = time.monotonic() + 5.0
    while transport.pool_stats()["total"]["dialing"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert transport.pool_stats()["total"]["dialing"] == 0, "the dial did not stop"
    # The autouse leak check then proves both connecting sockets were closed.
