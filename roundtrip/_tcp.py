"""TCP connections: DNS and connect, bounded by ``connect_timeout`` (Go's ``net.Dialer``).

Dials run on their own thread so that a waiting request can take whichever comes first, a
returned connection or its dial. Trace events are posted to the waiting request, whose thread
runs the hooks. A dial whose request has gone stops at the next 50 ms tick (``ticks``, which
every wait of a dial uses: connect, TLS, proxy handshakes).

A name's addresses are tried as ``_dial_schedule`` says (Happy Eyeballs, as Go dials): the
connects in flight are non-blocking sockets waited on together by the dial's one thread;
``connect_timeout`` bounds each address tried.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import selectors
import socket
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator, NamedTuple, Optional

from ._dial_schedule import Attempt, DialSchedule
from ._errors import ConnectError, ConnectTimeout, Error
from ._urls import join_host_port

if TYPE_CHECKING:
    from ._options import Dial

__all__ = ("open_socket", "lookup", "ticks", "wait_for", "Abandoned", "Candidate", "Post", "TICK")

TICK = 0.05  # how often a dial looks whether its request still wants it


class Abandoned(Exception):
    """The request this dial was for has gone; the dial stops."""


Post = Callable[..., None]  # post(hook_name, *args): run a trace hook on the caller's thread


def _is_ip(host: str) -> bool:
    """An IPv4 or IPv6 address; an IPv6 one may carry a ``%zone`` (which may hold "%" itself)."""
    address, percent, _ = host.partition("%")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return not percent or ip.version == 6


def ticks(deadline: Optional[float], gone: Callable[[], bool], timeout_error: Callable[[], Error]) -> Iterator[float]:
    """The waits of a dial step: at most ``TICK`` seconds each, until ``deadline`` (then
    ``timeout_error()`` is raised); after each wait, a request that has gone stops the step
    with ``Abandoned``. The caller stops iterating when its step is done."""
    while True:
        tick = TICK
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise timeout_error()
            tick = min(tick, left)
        yield tick
        if gone():
            raise Abandoned()


def wait_for(sock: socket.socket, events: int, tick: float) -> bool:
    """Whether ``sock`` is ready for ``events`` (``selectors.EVENT_READ`` or ``EVENT_WRITE``;
    hung up or in error counts as ready) within ``tick`` seconds."""
    with selectors.DefaultSelector() as selector:
        selector.register(sock, events)
        return bool(selector.select(tick))


class Candidate(NamedTuple):
    """An address to connect to: ``host`` names it in trace events and messages (an IPv6
    address with its ``%zone``)."""

    family: int
    sockaddr: Any
    host: str


# The resolver; a module attribute so that tests can stand in for DNS.
_getaddrinfo = socket.getaddrinfo


def _strerror(err: int) -> str:
    return os.strerror(err).lower()


def _scope_id(host: str, zone: str, port: int) -> int:
    """The interface index for an IPv6 zone: a name (``lo``) or a number (Go's
    ``ipv6ZoneCache.index``). Done here, not by getaddrinfo: glibc takes names only for
    link-local addresses."""
    try:
        return socket.if_nametoindex(zone)
    except (OSError, ValueError):
        if zone.isascii() and zone.isdigit() and int(zone) < 1 << 32:
            return int(zone)
    raise ConnectError(f"dial tcp {join_host_port(host, port)}: no network interface {zone!r}")


def _candidate(family: int, sockaddr: Any) -> Candidate:
    host = sockaddr[0]
    if family == socket.AF_INET6 and sockaddr[3]:
        try:
            host = f"{host}%{socket.if_indextoname(sockaddr[3])}"
        except OSError:
            host = f"{host}%{sockaddr[3]}"
    return Candidate(family, sockaddr, host)


def lookup(host: str, port: int, post: Post) -> list[Candidate]:
    """The addresses to try for ``host``, in the resolver's order. An IP literal (an IPv6
    one with a ``%zone``, RFC 6874) needs no lookup, and gets no DNS trace events."""
    if _is_ip(host):
        if ":" not in host:
            return [Candidate(socket.AF_INET, (host, port), host)]
        address, _, zone = host.partition("%")
        return [Candidate(socket.AF_INET6, (address, port, 0, _scope_id(host, zone, port) if zone else 0), host)]
    post("dns_start", host)
    try:
        infos = _getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        error = ConnectError(f"dial tcp: lookup {host}: {exc}")
        post("dns_done", [], error)
        raise error from exc
    candidates = [
        _candidate(family, sockaddr)
        for family, _, _, _, sockaddr in infos
        if family in (socket.AF_INET, socket.AF_INET6)
    ]
    if not candidates:
        error = ConnectError(f"dial tcp: lookup {host}: no IPv4 or IPv6 address")
        post("dns_done", [], error)
        raise error
    post("dns_done", [candidate.host for candidate in candidates], None)
    return candidates


class _Connecting:
    """One connect in flight during a dial."""

    __slots__ = ("attempt", "sock", "addr", "deadline")

    def __init__(self, attempt: Attempt, deadline: Optional[float]) -> None:
        self.attempt = attempt
        self.sock: Optional[socket.socket] = None
        candidate: Candidate = attempt.address
        self.addr = (candidate.host, candidate.sockaddr[1])
        self.deadline = deadline

    def error(self, what: str) -> ConnectError:
        return ConnectError(f"dial tcp {join_host_port(*self.addr)}: {what}")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


def _start(attempt: Attempt, timeout: Optional[float], now: float) -> tuple[_Connecting, int]:
    """Open a non-blocking socket for ``attempt`` and begin its connect: the attempt and
    ``connect_ex``'s errno (0: connected already)."""
    candidate: Candidate = attempt.address
    connecting = _Connecting(attempt, None if timeout is None else now + timeout)
    try:
        connecting.sock = socket.socket(candidate.family, socket.SOCK_STREAM)
        connecting.sock.setblocking(False)
        return connecting, connecting.sock.connect_ex(candidate.sockaddr)
    except OSError as exc:  # no such family here, out of descriptors, ...
        return connecting, exc.errno or errno.EINVAL


_IN_PROGRESS = (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY)


class _Race:
    """The connects of one dial, run as its ``DialSchedule`` says, on one thread: every
    connect is non-blocking, and one selector waits for whichever finishes first."""

    __slots__ = ("schedule", "timeout", "post", "selector", "flying")

    def __init__(self, candidates: list[Candidate], timeout: Optional[float], post: Post) -> None:
        self.schedule = DialSchedule(candidates, lambda candidate: candidate.family, time.monotonic())
        self.timeout = timeout
        self.post = post
        self.selector = selectors.DefaultSelector()  # epoll, kqueue, or select on Windows
        self.flying: dict[int, _Connecting] = {}  # by file descriptor

    def start_due(self) -> Optional[_Connecting]:
        """Start every connect due now; one that connects at once wins."""
        now = time.monotonic()
        attempts = self.schedule.due(now)
        while attempts:  # a connect refused at once lets the next address start now
            for attempt in attempts:
                self.post("connect_start", (attempt.address.host, attempt.address.sockaddr[1]))
                connecting, err = _start(attempt, self.timeout, now)
                if err == 0:
                    return connecting
                if err in _IN_PROGRESS:
                    assert connecting.sock is not None
                    self.flying[connecting.sock.fileno()] = connecting
                    self.selector.register(connecting.sock, selectors.EVENT_WRITE)
                else:
                    self._fail(connecting, connecting.error(f"connect: {_strerror(err)}"), now)
            attempts = self.schedule.due(now)
        return None

    def wait(self) -> Optional[_Connecting]:
        """Wait at most a tick for a connect to finish; the first to succeed wins. Raises
        the dial's error once every address has failed."""
        if self.schedule.exhausted:
            raise self.schedule.error
        now = time.monotonic()
        wait = TICK
        wake = self.schedule.wake_at()
        if wake is not None:
            wait = min(wait, wake - now)
        for connecting in self.flying.values():
            if connecting.deadline is not None:
                wait = min(wait, connecting.deadline - now)
        ready = [key.fd for key, _ in self.selector.select(max(wait, 0.0))]
        now = time.monotonic()
        for fd in ready:
            connecting = self._land(fd)
            assert connecting.sock is not None
            err = connecting.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if not err:
                return connecting
            self._fail(connecting, connecting.error(f"connect: {_strerror(err)}"), now)
        for fd, connecting in list(self.flying.items()):
            if connecting.deadline is not None and now >= connecting.deadline:
                self._land(fd)
                self._fail(connecting, ConnectTimeout(f"dial tcp {join_host_port(*connecting.addr)}: i/o timeout"), now)
        return None

    def _land(self, fd: int) -> _Connecting:
        self.selector.unregister(fd)
        return self.flying.pop(fd)

    def _fail(self, connecting: _Connecting, error: Error, now: float) -> None:
        connecting.close()
        self.post("connect_done", connecting.addr, error)
        self.schedule.failed(connecting.attempt, error, now)

    def cancel_losers(self) -> None:
        """Close the connects still in flight once one has won (Go's ``dialParallel`` cancels
        the losing racer, whose dial reports the cancellation)."""
        for connecting in self.flying.values():
            connecting.close()
            self.post("connect_done", connecting.addr, connecting.error("operation was canceled"))
        self.flying.clear()
        self.selector.close()

    def close(self) -> None:
        """Close every connect in flight: the request has gone."""
        for connecting in self.flying.values():
            connecting.close()
        self.flying.clear()
        self.selector.close()


def _race(candidates: list[Candidate], timeout: Optional[float], post: Post, gone: Callable[[], bool]) -> socket.socket:
    """Connect to one of ``candidates`` (Happy Eyeballs, see ``_dial_schedule``): a connected,
    blocking socket with TCP_NODELAY. Every other socket opened on the way is closed.

    Raises the primary family's first error when every address fails, or ``Abandoned``
    within a tick of the request going.
    """
    race = _Race(candidates, timeout, post)
    try:
        while True:
            if gone():
                raise Abandoned()
            winner = race.start_due() or race.wait()
            if winner is not None:
                break
    except BaseException:
        race.close()
        raise
    post("connect_done", winner.addr, None)
    race.cancel_losers()
    sock = winner.sock
    assert sock is not None
    try:
        sock.setblocking(True)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        sock.close()
        raise
    return sock


def open_socket(host: str, port: int, timeout: Optional[float], dial: Optional[Dial], post: Post, gone: Callable[[], bool]) -> socket.socket:
    """A connected TCP socket to ``host:port`` (an IPv6 address may carry ``%zone``), by the
    caller's ``dial`` or the default one. ``timeout`` bounds each address tried."""
    if dial is not None:
        try:
            sock = dial(host, port, timeout)
        except Error:
            raise
        except socket.timeout as exc:
            raise ConnectTimeout(f"dial {join_host_port(host, port)}: {exc}") from exc
        except OSError as exc:
            raise ConnectError(f"dial {join_host_port(host, port)}: {exc}") from exc
        sock.settimeout(None)
        return sock
    candidates = lookup(host, port, post)
    if gone():
        raise Abandoned()
    return _race(candidates, timeout, post, gone)
