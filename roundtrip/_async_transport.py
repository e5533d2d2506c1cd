"""``AsyncTransport``: ``Transport``'s round trip on an asyncio event loop.

``round_trip`` follows ``_transport.Transport.round_trip`` step by step (field checks, a
registered round tripper, preparation, then attempts retried by Go's rules), on the same
shared core: ``_prepare``, ``_pool.PoolState``, the parser twins and ``_retry``.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, Protocol, runtime_checkable

from . import _speedups
from ._async_connection import _IDLE, AsyncConnection, _events, await_final_head, read_head, send_body, write_whole
from ._async_dial import HookFailed, connect_route
from ._async_pool import AsyncPool, AsyncWant
from ._pool import idle_limits
from ._proxy import PROXY_FROM_ENVIRONMENT
from ._async_response import AsyncResponse, build_response
from ._connection import AttemptFailed, _io_error
from ._errors import Cancelled, ConnectError, DeadlineExceeded, Error, SkipAltProtocol, TransportClosed
from ._models import Request, Response
from ._options import Options, check_timeout
from ._prepare import BodyMark, PreparedRequest, check_fields, prepare, prepare_cache, rewound_body
from ._proxy import proxy_from_environment, proxy_option
from ._async_request_body import async_pieces, async_source, rewind
from ._retry import should_retry
from ._trace import GotConnInfo

if TYPE_CHECKING:
    from ._context import Context
    from ._events import Parser

__all__ = ("AsyncTransport", "AsyncRoundTripper")

AsyncDial = Callable[[str, int, Optional[float]], Awaitable[Any]]


@runtime_checkable
class AsyncRoundTripper(Protocol):
    """Anything whose ``round_trip`` coroutine turns one ``Request`` into one response."""

    async def round_trip(self, request: Request) -> Any: ...


class AsyncTransport:
    """An HTTP/1.1 round tripper for asyncio, with a keep-alive pool; one per event loop,
    shared by any number of tasks.

    It takes every option of ``Transport`` with the same meaning, except ``dial``, which is a
    coroutine function ``dial(host, port, timeout)`` returning a connected socket; unlike a
    thread's dial, it is interrupted by a cancel or a deadline.

    The transport belongs to the event loop of its first ``round_trip``; using it from another
    loop raises ``RuntimeError``. ``pool_stats()`` works from anywhere.
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
        dial: Optional[AsyncDial] = None,
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
            dial=dial,  # type: ignore[arg-type]
        )
        self._impl = _speedups.impl
        self._pool = AsyncPool(
            self._impl.IdleConnections(*idle_limits(max_idle_conns, max_idle_conns_per_host)),
            max_conns_per_host=max_conns_per_host,
            idle_conn_timeout=check_timeout("idle_conn_timeout", idle_conn_timeout),
            keep_alive=not disable_keep_alives,
        )
        self._proxy = proxy_option(proxy_from_environment if proxy is PROXY_FROM_ENVIRONMENT else proxy)
        self._prepared = prepare_cache(self._proxy)  # routes and heads of requests seen before
        self._keep_alive = not disable_keep_alives
        self._alternates: dict[str, AsyncRoundTripper] = {}
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._closed = False

    # -- public API --------------------------------------------------------------------------

    async def round_trip(self, request: Request) -> AsyncResponse:
        """Send ``request`` and return its response (the body still to be read).

        Raises what ``Transport.round_trip`` raises; cancelling the awaiting task closes the
        connection in use and raises ``asyncio.CancelledError``.
        """
        loop = self._check_loop()
        if self._closed:
            raise TransportClosed("transport is closed")
        impl = self._impl
        scheme, rest = check_fields(request, impl)
        body = request.body
        alternate = self._alternates.get(scheme)
        if alternate is not None:
            mark = BodyMark(body)
            try:
                response = await alternate.round_trip(request)
            except SkipAltProtocol:
                if mark.touched():
                    body = rewound_body(request)
            else:
                return AsyncResponse._wrap(response) if isinstance(response, Response) else response
        prepared = prepare(request, scheme, rest, async_source(body), self._options, impl, self._proxy, self._prepared)
        guard = _Guard(loop, prepared.context) if prepared.context is not None else None
        try:
            attempt = 0
            while True:
                conn = self._idle_conn(prepared) or await self._new_conn(prepared, guard)
                try:
                    parser = prepared.new_parser()  # one per exchange: no byte received is ever dropped
                    sent = self._send(conn, prepared, guard, parser)
                    if sent and prepared.options.response_header_timeout is None and not conn.received and not conn.eof:
                        # The usual exchange without a coroutine of its own: the head is not
                        # in yet, so wait here for the first bytes; _exchange does the rest.
                        waiter = conn.waiter = loop.create_future()
                        try:
                            await waiter
                        finally:
                            conn.waiter = None
                        if conn.stopped is not None:
                            raise AttemptFailed(conn.stopped, None)
                        # mypy keeps ``received`` narrowed to False across the await.
                        if conn.received:
                            try:  # type: ignore[unreachable]
                                head = _events(conn, parser, False)
                            except Error as exc:
                                raise AttemptFailed(exc, None) from None
                            if head is not None:
                                conn.guard = guard
                                return build_response(conn, prepared.request, prepared.method, prepared.close_after, prepared.gzip_requested, parser, head, self._finish)
                    return await self._exchange(conn, prepared, guard, parser, sent)
                except AttemptFailed as failed:
                    self._drop(conn)
                    error = failed.error
                    error.conn_reused = conn.reused
                    error.bytes_written = conn.bytes_written
                    if not should_retry(conn.reused, failed.retry_reason, prepared.rewindable, prepared.replayable):
                        raise error from None
                    rewind(prepared)
                    attempt += 1
                    trace = prepared.trace
                    if trace is not None and trace.retried is not None:
                        trace.retried(failed.retry_reason, attempt)  # type: ignore[arg-type]
                except BaseException:
                    self._drop(conn)  # a trace hook raised, the task was cancelled, or worse
                    raise
        except BaseException:
            if guard is not None:
                guard.release()
            raise

    def register_protocol(self, scheme: str, round_tripper: AsyncRoundTripper) -> None:
        """Send requests for ``scheme`` to ``round_tripper`` first (its ``round_trip`` is a
        coroutine function); it may raise ``SkipAltProtocol`` to hand them back. Raises
        ``ValueError`` if already registered."""
        scheme = scheme.lower()
        if scheme in self._alternates:
            raise ValueError(f"protocol {scheme} already registered")
        alternates = dict(self._alternates)
        alternates[scheme] = round_tripper
        self._alternates = alternates

    def close_idle_connections(self) -> None:
        """Close every idle connection now; connections in use are left alone."""
        self._check_loop(bind=False)
        self._pool.close_idle()

    def pool_stats(self) -> dict[str, dict[str, int]]:
        """Idle, active, dialing and waiting counts per pool key, and their total."""
        return self._pool.stats()

    async def aclose(self) -> None:
        """Close idle connections; responses being read finish, and their connections are
        closed; later ``round_trip`` calls raise ``TransportClosed``."""
        self._check_loop(bind=False)
        self._closed = True
        self._pool.close()
        await self._pool.stop_late_dials()

    async def __aenter__(self) -> AsyncTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- the loop ----------------------------------------------------------------------------

    def _check_loop(self, bind: bool = True) -> asyncio.AbstractEventLoop:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if self._loop is None:
            if loop is None:
                if bind:
                    raise RuntimeError("AsyncTransport.round_trip must be awaited in a running event loop")
                return None  # type: ignore[return-value]
            if bind:
                self._loop = self._pool.loop = loop
            return loop
        if loop is not self._loop:
            raise RuntimeError("this AsyncTransport belongs to another event loop (it is bound to the loop of its first round_trip)")
        return loop

    # -- connections -------------------------------------------------------------------------

    def _idle_conn(self, prepared: PreparedRequest) -> Optional[AsyncConnection]:
        """Go's getConn up to the wait: an idle connection for the route, or None."""
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
                return None
            if not conn.eof:
                break
            pool.discard(conn)  # the server closed it a moment ago
        if trace is not None and trace.got_conn is not None:
            self._got_conn(trace.got_conn, conn, GotConnInfo(True, True, time.monotonic() - conn.idle_since, conn.tls_version))
        return conn

    async def _new_conn(self, prepared: PreparedRequest, guard: Optional[_Guard]) -> AsyncConnection:
        """The first of a returned connection and a new dial (Go's late binding)."""
        pool = self._pool
        want = pool.want(prepared.route.key, lambda want: self._dial(prepared, want))
        if guard is not None:
            guard.want = want
        try:
            if want.pending:
                await want.future
            conn = want.conn
            if conn is None:
                assert want.error is not None
                raise want.error
        except BaseException:
            pool.abandon(want)
            raise
        finally:
            if guard is not None:
                guard.want = None
        trace = prepared.trace
        if trace is not None and trace.got_conn is not None:
            self._got_conn(trace.got_conn, conn, GotConnInfo(conn.reused, False, 0.0, conn.tls_version))
        return conn

    def _got_conn(self, got_conn: Callable[[GotConnInfo], object], conn: AsyncConnection, info: GotConnInfo) -> None:
        try:
            got_conn(info)
        except BaseException:
            self._drop(conn)
            raise

    async def _dial(self, prepared: PreparedRequest, want: AsyncWant) -> None:
        """A dial task: connect along the route and hand the result to the pool."""
        trace = prepared.trace
        loop = self._loop
        assert loop is not None
        pool = self._pool

        def post(hook_name: str, *args: object) -> None:
            hook = getattr(trace, hook_name) if trace is not None else None
            if hook is not None and want.pending:
                try:
                    hook(*args)
                except BaseException as exc:
                    raise HookFailed(exc) from None

        def make_conn() -> AsyncConnection:
            conn = AsyncConnection(want.key, loop)
            conn.orphans = pool.orphans
            conn.on_idle_lost = pool.evict
            return conn

        conn = None
        error: Optional[BaseException] = None
        try:
            conn = await connect_route(loop, prepared.route, prepared.options, post, make_conn)
        except asyncio.CancelledError:
            error = Cancelled("request cancelled")
        except HookFailed as failed:
            error = failed.error
        except Error as exc:
            error = exc
        except Exception as exc:  # a custom dial's own failure
            error = ConnectError(f"dial failed: {exc!r}")
        pool.dial_finished(want, conn, error)

    def _send(self, conn: AsyncConnection, prepared: PreparedRequest, guard: Optional[_Guard], parser: Parser) -> bool:
        """Start an exchange on ``conn``; write the whole request when it goes in one write
        (True), else leave it to ``_exchange`` (False). Raises ``AttemptFailed``."""
        conn.begin(parser, prepared.trace)
        if guard is not None:
            conn.context = prepared.context
            guard.conn = conn
            if guard.error is not None:
                raise AttemptFailed(guard.error, None)
        try:
            return write_whole(conn, prepared)
        except Error as exc:
            raise AttemptFailed(exc, None) from None
        except OSError as exc:
            conn.check()
            raise AttemptFailed(_io_error(conn, exc), conn.failure_reason()) from None  # type: ignore[arg-type]

    async def _exchange(self, conn: AsyncConnection, prepared: PreparedRequest, guard: Optional[_Guard], parser: Parser, sent: bool) -> AsyncResponse:
        """Send the body if ``_send`` did not (``sent``) and read the response head. Raises
        ``AttemptFailed``."""
        try:
            head = None
            if not sent:
                head = await send_body(conn, prepared, parser, lambda: async_pieces(prepared.body))
            if head is None:
                if prepared.options.response_header_timeout is None:
                    head = await read_head(conn, parser)  # type: ignore[assignment]
                else:
                    head = await await_final_head(conn, prepared, parser)
        except AttemptFailed:
            raise
        except Error as exc:
            raise AttemptFailed(exc, None) from None
        except OSError as exc:
            conn.check()
            raise AttemptFailed(_io_error(conn, exc), conn.failure_reason()) from None  # type: ignore[arg-type]
        conn.guard = guard
        return build_response(conn, prepared.request, prepared.method, prepared.close_after, prepared.gzip_requested, parser, head, self._finish)  # type: ignore[arg-type]

    def _finish(self, conn: AsyncConnection, reusable: bool) -> None:
        """The response body ended (``reusable``) or was abandoned: release the connection."""
        trace = conn.trace
        guard = conn.guard
        if guard is not None:
            conn.guard = None
            guard.release()
            if guard.error is not None:
                reusable = False
        conn.context = None
        conn.reused = True
        conn.trace = None
        reusable = reusable and self._keep_alive and not conn.eof
        if reusable:
            # conn.idle() inlined: a step of every request.
            conn.mode = _IDLE
            conn.parser = None
            if conn.raw:
                conn.raw.clear()
            conn.raw_size = 0
        kept = self._pool.release(conn, reusable)
        # Go calls PutIdleConn only from tryPutIdleConn: for a body read to its end on a
        # connection that may live on.
        if reusable and trace is not None and trace.put_idle_conn is not None:
            try:
                trace.put_idle_conn(None if kept else Error("too many idle connections"))
            except BaseException:
                self._pool.evict(conn)
                raise

    def _drop(self, conn: AsyncConnection) -> None:
        """Close a connection whose attempt failed and free its slot."""
        conn.context = None
        conn.trace = None
        self._pool.discard(conn)


class _Guard:
    """A request's ``Context`` on the loop: its deadline (a ``call_later``) and ``cancel()``
    (from any thread) stop whatever the request waits on: a pool slot or its connection."""

    __slots__ = ("loop", "context", "want", "conn", "error", "timer", "handle")

    def __init__(self, loop: asyncio.AbstractEventLoop, context: Context) -> None:
        self.loop = loop
        self.context = context
        self.want: Optional[AsyncWant] = None
        self.conn: Optional[AsyncConnection] = None
        self.error: Optional[Error] = None
        self.timer: Optional[asyncio.TimerHandle] = None
        if context.deadline is not None:
            self.timer = loop.call_later(max(context.deadline - time.monotonic(), 0.0), self.fire, DeadlineExceeded)
        self.handle = context._add_cancel_callback(self._cancel)
        if self.handle is None:
            self.error = Cancelled("request cancelled")

    def _cancel(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self.fire, Cancelled)
        except RuntimeError:
            pass  # the loop is closed: nothing runs on it any more

    def fire(self, kind: type[Error]) -> None:
        if self.error is not None:
            return
        error = self.error = kind("request cancelled" if kind is Cancelled else "context deadline exceeded")
        want = self.want
        if want is not None and not want.future.done():
            want.future.set_exception(error)
        conn = self.conn
        if conn is not None:
            conn.stop(error)

    def release(self) -> None:
        self.conn = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.handle is not None:
            self.context._remove_cancel_callback(self.handle)
            self.handle = None
