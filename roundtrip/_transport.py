"""``Transport``: Go's ``Transport.RoundTrip`` for HTTP/1.1.

One round trip: validate (before any I/O), hand registered schemes to their round tripper,
get a connection (idle or dialed), exchange, and retry on another connection only where
Go's ``shouldRetryRequest`` allows it.
"""

from __future__ import annotations

import ssl
import threading
import time
from typing import TYPE_CHECKING, Callable, Optional, Protocol, runtime_checkable

from . import _speedups
from ._connection import AttemptFailed, Connection, ExchangeIO, exchange, exchange_fast, fast_request_bytes
from ._dial import connect_route
from ._errors import Cancelled, ConnectError, DeadlineExceeded, Error, SkipAltProtocol, TransportClosed
from ._models import Request, Response
from ._options import Options, check_timeout
from ._pool import idle_limits
from ._sync_pool import Pool, Want
from ._prepare import BodyMark, PreparedRequest, check_fields, prepare, prepare_cache, rewound_body
from ._proxy import PROXY_FROM_ENVIRONMENT, proxy_from_environment, proxy_option
from ._retry import should_retry
from ._tcp import Abandoned
from ._trace import GotConnInfo

if TYPE_CHECKING:
    from ._context import Context
    from ._options import Dial

__all__ = ("Transport", "RoundTripper", "FAST_PATH")

# Whether Transports made from now on send common requests through the compiled exchange
# (``exchange_fast``); ROUNDTRIP_NO_FAST_PATH=1 turns it off at import, for comparison and for
# the tests that run every case over both paths. The pure-Python twin has no compiled exchange.
FAST_PATH = not _speedups.env_flag("ROUNDTRIP_NO_FAST_PATH")



@runtime_checkable
class RoundTripper(Protocol):
    """Anything that turns one ``Request`` into one ``Response``."""

    def round_trip(self, request: Request) -> Response: ...


class Transport:
    """A thread-safe HTTP/1.1 round tripper with a keep-alive pool; share one per process.

    It sends one request and returns one response: no redirects, cookies or auth, and a 4xx
    or 5xx is a response, not an error. Every option is keyword-only; times are seconds, and
    ``None`` means no limit.

    Args:
        max_idle_conns: idle connections kept across all hosts (Go's ``MaxIdleConns``); 0 means
            no limit; the connection idle the longest is closed first.
        max_idle_conns_per_host: idle connections kept per pool key; 0 means the default (16),
            a negative value keeps none.
        max_conns_per_host: dialing, active and idle connections per pool key; 0 means no
            limit; over it, requests wait in FIFO order.
        idle_conn_timeout: how long an idle connection is kept before it is closed.
        connect_timeout: time for the TCP connect to each address tried (``ConnectTimeout``).
        tls_handshake_timeout: time for the TLS handshake (``TLSHandshakeTimeout``).
        response_header_timeout: time from the request fully written to the response head
            (``ResponseHeaderTimeout``).
        expect_continue_timeout: with ``Expect: 100-continue``, how long to wait for 100
            before sending the body anyway.
        max_response_header_bytes: bound on a response head, counted across 1xx responses;
            also bounds chunk-size lines and trailers (``HeaderTooLarge``).
        disable_keep_alives: send ``Connection: close`` and never reuse a connection.
        disable_compression: do not send ``Accept-Encoding: gzip`` nor decode gzip bodies.
        proxy: ``callable(Request) -> str or None`` giving the proxy URL (``http://``,
            ``https://``, ``socks5://``, ``socks5h://``) or None for direct; ``None`` means never
            use a proxy. The default, ``roundtrip.proxy_from_environment``, reads HTTP_PROXY,
            HTTPS_PROXY and NO_PROXY once, now, and never proxies loopback addresses.
        ssl_context: the ``ssl.SSLContext`` for https; ``None`` means the system's CAs with
            verification on.
        dial: ``callable(host, port, timeout) -> socket.socket`` to open connections instead
            of the built-in dialer; it cannot be interrupted by a cancel or deadline.

    Raises:
        ValueError: a negative time or a ``max_response_header_bytes`` below 1.
    """

    def __init__(
        self,
        *,
        max_idle_conns: int = 100,
        max_idle_conns_per_host: int = 16,
        max_conns_per_host: int = 0,
        idle_conn_timeout: Optional[float] = 90.0,
        connect_timeout: Optional[float] = 30.0,
        tls_handshake_timeout: Optional[float] = 10.0,
        response_header_timeout: Optional[float] = None,
        expect_continue_timeout: Optional[float] = 1.0,
        max_response_header_bytes: int = 1 << 20,
        disable_keep_alives: bool = False,
        disable_compression: bool = False,
        proxy: Optional[Callable[[Request], Optional[str]]] = PROXY_FROM_ENVIRONMENT,
        ssl_context: Optional[ssl.SSLContext] = None,
        dial: Optional[Dial] = None,
    ) -> None:
        self._options = Options(
            connect_timeout=connect_timeout,
            tls_handshake_timeout=tls_handshake_timeout,
            response_header_timeout=response_header_timeout,
            expect_continue_timeout=expect_continue_timeout,
            max_response_header_bytes=max_response_header_bytes,
            disable_keep_alives=disable_keep_alives,
            disable_compression=disable_compression,
            ssl_context=ssl_context,
            dial=dial,
        )
        self._impl = _speedups.impl
        self._io: Optional[ExchangeIO] = getattr(self._impl, "exchange_io", None) if FAST_PATH else None
        # Go: MaxConnsPerHost <= 0 is no limit.
        self._pool = Pool(
            self._impl.IdleConnections(*idle_limits(max_idle_conns, max_idle_conns_per_host)),
            max_conns_per_host=max_conns_per_host,
            idle_conn_timeout=check_timeout("idle_conn_timeout", idle_conn_timeout),
            keep_alive=not disable_keep_alives,
        )
        self._proxy = proxy_option(proxy_from_environment if proxy is PROXY_FROM_ENVIRONMENT else proxy)
        self._prepared = prepare_cache(self._proxy)  # routes and heads of requests seen before
        self._alternates: dict[str, RoundTripper] = {}
        self._alternates_lock = threading.Lock()
        self._closed = False

    # -- public API --------------------------------------------------------------------------

    def round_trip(self, request: Request) -> Response:
        """Send ``request`` and return its response (the body still to be read).

        Raises ``InvalidRequest`` before any I/O for a bad request, ``TransportClosed`` after
        ``close()``, and the other ``roundtrip.Error`` classes for what goes wrong on the way
        (connecting, timeouts, cancellation, a malformed response); a 4xx or 5xx is a
        response, not an error.
        """
        if self._closed:
            raise TransportClosed("transport is closed")
        # Go's roundTrip: header fields first, then a registered round tripper, then the rest.
        impl = self._impl
        scheme, rest = check_fields(request, impl)
        body = request.body
        alternate = self._alternates.get(scheme)
        if alternate is not None:
            mark = BodyMark(body)
            try:
                return alternate.round_trip(request)
            except SkipAltProtocol:
                if mark.touched():
                    body = rewound_body(request)
        prepared = prepare(request, scheme, rest, body, self._options, impl, self._proxy, self._prepared)
        io = self._io
        if io is not None:
            data = fast_request_bytes(prepared)
            if data is not None:
                return self._round_trip_fast(prepared, io, data)
        return self._attempts(prepared, None)

    def _attempts(self, prepared: PreparedRequest, conn: Optional[Connection], attempt: int = 0, announced: bool = False) -> Response:
        """Attempts until one succeeds or ``should_retry`` says no; ``conn``, if given, is the
        first attempt's connection, already checked (and its got_conn hook called);
        ``announced``: the first attempt's get_conn hook was called."""
        while True:
            if conn is None:
                conn = self._get_conn(prepared, announced)
                announced = False
            try:
                return exchange(conn, prepared, self._finish)
            except AttemptFailed as failed:
                attempt = self._failed(prepared, conn, failed, attempt)
            except BaseException:
                self._drop(conn)  # a trace hook raised, or worse: the connection is closed
                raise
            conn = None

    def _failed(self, prepared: PreparedRequest, conn: Connection, failed: AttemptFailed, attempt: int) -> int:
        """Close the failed attempt's connection; raise its error unless Go's rules let the
        request go again (then it is rewound). Returns the attempt count."""
        self._drop(conn)
        error = failed.error
        error.conn_reused = conn.reused
        error.bytes_written = conn.bytes_written
        if not should_retry(conn.reused, failed.retry_reason, prepared.rewindable, prepared.replayable):
            raise error from None
        prepared.rewind()
        attempt += 1
        trace = prepared.trace
        if trace is not None and trace.retried is not None:
            # should_retry holds only with a reason.
            trace.retried(failed.retry_reason, attempt)  # type: ignore[arg-type]
        return attempt

    def _round_trip_fast(self, prepared: PreparedRequest, io: ExchangeIO, data: bytes) -> Response:
        """The first attempt of a common request (``fast_request_bytes``) on an idle plain TCP
        connection goes through the compiled exchange; no idle connection, a TLS one, or a
        retry take the general path. A stale connection is replaced as ``_get_conn`` replaces
        one, before any attempt, with the same trace hooks."""
        context = prepared.context
        if context is not None:
            if context.cancelled:
                raise Cancelled("request cancelled")
            if context.deadline is not None and context.deadline <= time.monotonic():
                raise DeadlineExceeded("context deadline exceeded")
        trace = prepared.trace
        key = prepared.route.key
        if trace is not None and trace.get_conn is not None:
            trace.get_conn(str(key))
        pool = self._pool
        while True:
            conn = pool.take_idle(key)
            if conn is None:
                return self._attempts(prepared, None, announced=True)
            if conn.plain_fd < 0 or trace is not None:
                # The stale check here: a TLS connection takes the general exchange, and the
                # got_conn hook comes between the check and the write.
                if conn.is_stale():
                    pool.discard(conn)
                    continue
                if trace is not None and trace.got_conn is not None:
                    self._got_conn(trace.got_conn, conn, GotConnInfo(True, True, time.monotonic() - conn.idle_since, conn.stream.tls_version()))
                if conn.plain_fd < 0:
                    return self._attempts(prepared, conn)
            try:
                response = exchange_fast(conn, prepared, self._finish, io, data)
            except AttemptFailed as failed:
                return self._attempts(prepared, None, self._failed(prepared, conn, failed, 0))
            except BaseException:
                self._drop(conn)  # a trace hook or a signal handler raised
                raise
            if response is not None:
                return response
            pool.discard(conn)

    def register_protocol(self, scheme: str, round_tripper: RoundTripper) -> None:
        """Send requests for ``scheme`` to ``round_tripper`` first; it may raise
        ``SkipAltProtocol`` to hand them back. Raises ``ValueError`` if already registered."""
        scheme = scheme.lower()
        with self._alternates_lock:
            if scheme in self._alternates:
                raise ValueError(f"protocol {scheme} already registered")
            alternates = dict(self._alternates)
            alternates[scheme] = round_tripper
            self._alternates = alternates

    def close_idle_connections(self) -> None:
        """Close every idle connection now; connections in use are left alone."""
        self._pool.close_idle()

    def pool_stats(self) -> dict[str, dict[str, int]]:
        """Idle, active, dialing and waiting counts per pool key, and their total."""
        return self._pool.stats()

    def close(self) -> None:
        """Close idle connections; later ``round_trip`` calls raise ``TransportClosed``."""
        self._closed = True
        self._pool.close()

    def __enter__(self) -> "Transport":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- connections -------------------------------------------------------------------------

    def _get_conn(self, prepared: PreparedRequest, announced: bool = False) -> Connection:
        """An idle connection for the route, or the first of a returned one and a new dial;
        ``announced``: the get_conn hook was called already."""
        context = prepared.context
        if context is not None:
            if context.cancelled:
                raise Cancelled("request cancelled")
            if context.deadline is not None and context.deadline <= time.monotonic():
                raise DeadlineExceeded("context deadline exceeded")
        trace = prepared.trace
        key = prepared.route.key
        if trace is not None and trace.get_conn is not None and not announced:
            trace.get_conn(str(key))
        pool = self._pool
        while True:
            conn = pool.take_idle(key)
            if conn is None:
                break
            if conn.is_stale():
                pool.discard(conn)
                continue
            if trace is not None and trace.got_conn is not None:
                self._got_conn(trace.got_conn, conn, GotConnInfo(True, True, time.monotonic() - conn.idle_since, conn.stream.tls_version()))
            return conn
        want = pool.want(key, lambda want: self._dial(prepared, want))
        conn = self._await(want, prepared)
        if trace is not None and trace.got_conn is not None:
            self._got_conn(trace.got_conn, conn, GotConnInfo(conn.reused, False, 0.0, conn.stream.tls_version()))
        return conn

    def _got_conn(self, got_conn: Callable[[GotConnInfo], object], conn: Connection, info: GotConnInfo) -> None:
        try:
            got_conn(info)
        except BaseException:
            self._drop(conn)
            raise

    def _await(self, want: Want, prepared: PreparedRequest) -> Connection:
        """Wait for the want's connection, running posted trace hooks; honour cancel and
        deadline within 100 ms."""
        context = prepared.context
        handle = None
        if context is not None:
            handle = context._add_cancel_callback(want.wake)
        try:
            while True:
                with want.cond:
                    if not want.events and want.pending and not _stopped(context):
                        remaining = None if context is None else context.remaining()
                        want.cond.wait(_ORPHAN_TICK if remaining is None else min(remaining, _ORPHAN_TICK))
                    events = list(want.events)
                    want.events.clear()
                    conn, error = want.conn, want.error
                try:
                    for event in events:
                        event()
                except BaseException:
                    self._pool.abandon(want, close=True)  # a hook raised: the connection closes
                    raise
                if conn is not None:
                    return conn
                if error is not None:
                    raise error
                if context is not None:
                    if context.cancelled:
                        raise Cancelled("request cancelled")
                    if _past(context.deadline):
                        raise DeadlineExceeded("context deadline exceeded")
                # Not the pool lock under the want's: the pool takes them the other way round.
                self._pool.settle_orphans()  # a response dropped unfinished may free a slot
        except BaseException:
            self._pool.abandon(want)
            raise
        finally:
            if context is not None:
                context._remove_cancel_callback(handle)

    def _dial(self, prepared: PreparedRequest, want: Want) -> None:
        """Runs on a dial thread: connect along the route and hand the result to the pool."""
        trace = prepared.trace

        def post(hook_name: str, *args: object) -> None:
            hook = getattr(trace, hook_name) if trace is not None else None
            if hook is not None:
                want.post(lambda: hook(*args))

        conn = None
        error: Optional[BaseException] = None
        try:
            stream = connect_route(prepared.route, prepared.options, post, lambda: want.abandoned)
            conn = Connection(stream, want.key, self._pool.orphans)
        except Abandoned:
            error = Cancelled("request cancelled")
        except Error as exc:
            error = exc
        except Exception as exc:  # a custom dial's own failure
            error = ConnectError(f"dial failed: {exc!r}")
        self._pool.dial_finished(want, conn, error)

    def _finish(self, conn: Connection, reusable: bool) -> None:
        """The response body ended (``reusable``) or was abandoned: release the connection."""
        context = conn.context
        trace = conn.trace
        if context is not None:
            context._remove_cancel_callback(conn.cancel_handle)
            if context.cancelled:
                reusable = False
            conn.context = None
        conn.deadline = None
        conn.clear_timeout()
        conn.reused = True
        conn.trace = None
        reusable = reusable and not self._options.disable_keep_alives
        kept = self._pool.release(conn, reusable)
        # Go calls PutIdleConn only from tryPutIdleConn: for a body read to its end on a
        # connection that may live on.
        if reusable and trace is not None and trace.put_idle_conn is not None:
            try:
                trace.put_idle_conn(None if kept else Error("too many idle connections"))
            except BaseException:
                self._pool.evict(conn)
                raise

    def _drop(self, conn: Connection) -> None:
        """Close a connection whose attempt failed and free its pool slot."""
        context = conn.context
        if context is not None:
            context._remove_cancel_callback(conn.cancel_handle)
            conn.context = None
        conn.trace = None
        self._pool.discard(conn)


# How often a waiting request looks for slots freed by responses dropped unfinished.
_ORPHAN_TICK = 0.1


def _stopped(context: Optional[Context]) -> bool:
    return context is not None and (context.cancelled or _past(context.deadline))


def _past(deadline: Optional[float]) -> bool:
    return deadline is not None and time.monotonic() >= deadline
