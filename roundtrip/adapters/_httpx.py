"""``HTTPXTransport``: roundtrip as the transport under an ``httpx.Client``."""

from __future__ import annotations

import io
import socket
import threading
import time
from typing import Any, Iterator, Optional

import httpx

import roundtrip
from roundtrip import _messages
from roundtrip._trace import HOOKS

from ._httpx_options import RETRY_BACKOFF, UNSET, Dialer, adapter_setup
from ._httpx_trace import EventTrace
from ._timeouts import (PHASE_NAMES, READ, WRITE, PhaseTimer, TimedFile, Watchdog, timed_async_chunks, timed_chunks,
                        timeout_phase)

__all__ = ("HTTPXTransport",)

_READ_SIZE = 65536
# Bodies up to this size go out with the head in one send; larger ones are fed to the
# transport a file read at a time, so that each piece restarts the write clock.
_SMALL_BODY = 65536
_from_list = roundtrip.Headers._from_list  # the fields are str already: no per-field checks
_HTTP_VERSIONS = {"HTTP/1.1": b"HTTP/1.1", "HTTP/1.0": b"HTTP/1.0"}
_TIMEOUT_ERRORS = (httpx.PoolTimeout, httpx.ConnectTimeout, httpx.WriteTimeout, httpx.ReadTimeout)


class HTTPXTransport(httpx.BaseTransport):
    """An ``httpx.BaseTransport`` that sends requests with a ``roundtrip.Transport``.

        client = httpx.Client(transport=HTTPXTransport())

    Args:
        transport: the ``roundtrip.Transport`` to use, shared and never closed by this adapter
            (none of the arguments below may be given with it). ``None`` (the default) makes
            one that this adapter owns and closes, with ``disable_compression=True`` (httpx
            decodes ``Content-Encoding`` itself) and the arguments below.

    The keyword arguments of ``httpx.HTTPTransport``, with httpx's meaning, so that switching
    is a change of class name:

    - ``verify``, ``cert``, ``trust_env``: the ``ssl_context``, made by
      ``httpx.create_ssl_context`` exactly as httpx makes it (an ``ssl.SSLContext`` as
      ``verify`` is used as it is).
    - ``http1``, ``http2``: HTTP/1.1 is the only version spoken. ``http2=True`` beside
      ``http1=True`` is accepted (HTTP/2 is an option the server may not take; here it never
      is); ``http1=False`` raises (``NotImplementedError`` with ``http2=True``).
    - ``limits``: ``max_connections`` becomes ``max_conns_per_host`` (httpcore counts the
      whole pool; roundtrip limits per host), ``max_keepalive_connections`` becomes
      ``max_idle_conns`` and ``max_idle_conns_per_host`` (0 turns keep-alive off), and
      ``keepalive_expiry`` becomes ``idle_conn_timeout``.
    - ``proxy``: a URL, ``httpx.URL`` or ``httpx.Proxy`` (its ``auth`` sent as
      ``Proxy-Authorization``) for every request; ``socks5://`` lets the proxy resolve names,
      as httpcore does. Without it every request goes direct: as with httpx's own transport,
      proxies from the environment are the ``httpx.Client``'s business (it mounts a transport
      made with ``proxy=``).
    - ``uds``, ``local_address``, ``socket_options``: a ``dial`` that connects to that Unix
      socket, from that local address, with those ``setsockopt`` triples.
    - ``retries``: connection attempts repeated after a connect error or timeout (not after a
      proxy's refusal), waiting 0 s, 0.5 s, 1 s, ... as httpcore does; only bodies that can be
      sent again (none, or bytes) are retried.

    The request goes out as httpx built it: method, URL, every header field in order and
    spelling (``Host``, ``User-Agent`` and ``Accept-Encoding`` included, so roundtrip adds none
    of its own and never decompresses), and the body streamed from ``request.stream``. The
    response streams: httpx reads it through an ``httpx.SyncByteStream`` whose ``close()``
    closes the roundtrip response (returning a fully read connection to the pool, closing a
    half-read one). What this adapter does not do is left to httpx, as with its own transport:
    redirects, cookies, auth, decoding.

    Request extensions: ``timeout`` (below); ``trace``, called with httpcore's event names and
    information (see ``_httpx_trace``), which httpx's command line and ``-v`` rely on;
    ``sni_hostname``, the name TLS presents and verifies while the connection still goes to the
    URL's host (through a Transport per such route, made on first use; not available with a
    given ``transport``).

    Timeouts: httpx's per-request ``request.extensions["timeout"]`` (``pool``, ``connect``,
    ``write``, ``read``; ``None`` = no limit) are per phase, and ``read``/``write`` limit each
    read or write, not the whole transfer. A ``Context`` deadline is a single instant for the
    whole exchange, so it cannot express them; instead each request gets a ``Context`` without
    a deadline, ``Trace`` hooks follow its phases, and the adapter's watchdog thread cancels the
    Context when a phase makes no progress within its limit (see ``_timeouts``):

    ============================================  =========  ==========================
    phase (what restarts its clock)                limit      raised
    ============================================  =========  ==========================
    waiting for a connection (``get_conn``)        pool       ``httpx.PoolTimeout``
    DNS + TCP connect + TLS (``dns_start`` /       connect    ``httpx.ConnectTimeout``
    ``connect_start``, until ``got_conn``)
    writing (``got_conn``, each body chunk)        write      ``httpx.WriteTimeout``
    awaiting the head (``wrote_request``, first    read       ``httpx.ReadTimeout``
    byte), then each body read while it waits
    ============================================  =========  ==========================

    The body is read with ``Response.read(65536)``, so ``read`` limits each such read; the
    clock runs only while a read is in progress (a streamed response left unread for a while
    does not time out). With a custom ``dial`` roundtrip reports no connect phase, so the
    dial counts as waiting for a connection (and a custom dial cannot be interrupted). The
    Transport's own ``connect_timeout``, ``tls_handshake_timeout`` and
    ``response_header_timeout`` still apply, reported as ``ConnectTimeout``, ``ConnectTimeout``
    and ``ReadTimeout``; a ``DeadlineExceeded`` counts as a timeout of the current phase.

    Errors (the roundtrip error is kept as ``__cause__``):

    ==========================================================  ==============================
    roundtrip                                                    httpx
    ==========================================================  ==============================
    ``ConnectTimeout``, ``TLSHandshakeTimeout``                  ``ConnectTimeout``
    ``ResponseHeaderTimeout``                                    ``ReadTimeout``
    ``DeadlineExceeded``, a phase limit (``Cancelled``)          by phase, as above
    ``ProxyError``                                               ``ProxyError``
    ``ConnectError``, ``TLSError``                               ``ConnectError``
    ``InvalidRequest``: scheme, no host                          ``UnsupportedProtocol`` (httpx's
                                                                 wording for a scheme)
    ``InvalidRequest``: port out of range                        ``ConnectError`` (no connection
                                                                 can be made; never wrapped)
    ``InvalidRequest``: anything else                            ``LocalProtocolError``
    ``ProtocolError``, ``IncompleteBody``, ``HeaderTooLarge``,   ``RemoteProtocolError``
    ``ServerDisconnected``, ``UnrewindableBody``
    ``ResponseClosed``                                           ``StreamClosed``
    ``TransportClosed``                                          ``RuntimeError`` (as a closed
                                                                 ``httpx.Client`` raises)
    any other ``roundtrip.Error``                                ``TransportError``
    ==========================================================  ==============================
    """

    def __init__(
        self,
        transport: Optional[roundtrip.Transport] = None,
        *,
        verify: Any = UNSET,
        cert: Any = UNSET,
        trust_env: Any = UNSET,
        http1: Any = UNSET,
        http2: Any = UNSET,
        limits: Any = UNSET,
        proxy: Any = UNSET,
        uds: Any = UNSET,
        local_address: Any = UNSET,
        retries: Any = UNSET,
        socket_options: Any = UNSET,
    ) -> None:
        given = {name: value for name, value in (
            ("verify", verify), ("cert", cert), ("trust_env", trust_env), ("http1", http1), ("http2", http2),
            ("limits", limits), ("proxy", proxy), ("uds", uds), ("local_address", local_address),
            ("retries", retries), ("socket_options", socket_options),
        ) if value is not UNSET}
        self._options, self._retries = adapter_setup("HTTPXTransport", transport, given, Dialer)
        self._owned = transport is None
        self._transport = transport if transport is not None else roundtrip.Transport(**self._options)  # type: ignore[arg-type]
        self._local_address = given.get("local_address")
        self._socket_options = given.get("socket_options")
        self._sni_transports: dict[tuple[str, int, str], roundtrip.Transport] = {}
        self._lock = threading.Lock()
        self._watchdog = Watchdog()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and return its response with the body still to be read.

        Raises the ``httpx`` exceptions of the table in the class docstring.
        """
        extensions = request.extensions
        timeouts = extensions.get("timeout")
        callback = extensions.get("trace")
        sni_hostname = extensions.get("sni_hostname")
        transport = self._transport
        url = str(request.url)
        if sni_hostname:
            transport, url = self._sni_route(request.url, sni_hostname)
        body, get_body = request_body(request)
        headers = request_headers(request)
        retries_left = self._retries
        delay = 0.0
        while True:
            timer = timer_for(timeouts, self._watchdog)
            events = self._events(callback, request, timeouts, sni_hostname) if callback is not None else None
            outgoing = roundtrip.Request(
                request.method,
                url,
                headers,
                timed_body(body, timer),
                get_body=get_body,
                context=timer.context if timer is not None else None,
                trace=combined_trace(timer, events),
            )
            try:
                response = transport.round_trip(outgoing)
                break
            except roundtrip.Error as exc:
                if timer is not None:
                    timer.stop()
                error = httpx_error(exc, timer, request)
                if retries_left > 0 and retryable(exc, error, body):
                    # httpcore's connect retries: nothing was sent; wait 0 s, 0.5 s, 1 s, ...
                    retries_left -= 1
                    time.sleep(delay)
                    delay = RETRY_BACKOFF if not delay else delay * 2
                    continue
                if events is not None:
                    events.fail(error)
                raise error from exc
            except BaseException:
                if timer is not None:
                    timer.stop()
                raise
        if timer is not None:
            timer.pause()  # the body's clock runs only while httpx reads
        fields = response_fields(response)
        if events is not None:
            events.got_response(response, fields)
        return httpx.Response(response.status_code, headers=fields, stream=_ResponseStream(response, timer, request, events),
                              extensions=response_extensions(response))

    def close(self) -> None:
        """Stop the timeout watchdog, and close the roundtrip Transports this adapter made."""
        self._watchdog.close()
        with self._lock:
            transports = list(self._sni_transports.values())
            self._sni_transports.clear()
        for transport in transports:
            transport.close()
        if self._owned:
            self._transport.close()

    def _events(self, callback: Any, request: httpx.Request, timeouts: Any, sni_hostname: Any) -> EventTrace:
        return EventTrace.for_request(callback, request, timeouts, self._options, sni_hostname, self._local_address,
                                      self._socket_options)

    def _sni_route(self, url: httpx.URL, sni_hostname: str) -> tuple[roundtrip.Transport, str]:
        """For the ``sni_hostname`` extension: a Transport whose connections go to the URL's
        host while TLS names ``sni_hostname``, and the URL it is given (that name as host; the
        ``Host`` header httpx set still names the URL's host)."""
        if self._options is None:
            raise NotImplementedError(
                "the sni_hostname extension needs a Transport made by HTTPXTransport (leave transport out)"
            )
        key, target = sni_target(url, sni_hostname)
        with self._lock:
            transport = self._sni_transports.get(key)
            if transport is None:
                options = dict(self._options)
                options["dial"] = _Redirected(key[0], key[1], options.get("dial"))
                transport = self._sni_transports[key] = roundtrip.Transport(**options)
        return transport, target


class _Redirected:
    """A ``dial`` that connects to one fixed host and port, whatever the URL names."""

    __slots__ = ("host", "port", "dial")

    def __init__(self, host: str, port: int, dial: Any) -> None:
        self.host, self.port, self.dial = host, port, dial

    def __call__(self, host: str, port: int, timeout: Optional[float]) -> socket.socket:
        if self.dial is not None:
            sock: socket.socket = self.dial(self.host, self.port, timeout)
            return sock
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


class _ResponseStream(httpx.SyncByteStream):
    """The body of a roundtrip response as httpx reads it."""

    __slots__ = ("_response", "_timer", "_request", "_events")

    def __init__(self, response: roundtrip.Response, timer: Optional[PhaseTimer], request: httpx.Request,
                 events: Optional[EventTrace]) -> None:
        self._response = response
        self._timer = timer
        self._request = request
        self._events = events

    def __iter__(self) -> Iterator[bytes]:
        response, timer, events = self._response, self._timer, self._events
        if events is not None:
            events.body_started()
        try:
            length = response.content_length
            if length is not None and length <= _READ_SIZE:
                # A small body of known length comes in one read, which also returns the
                # connection to the pool: no second read to learn that it has ended.
                if timer is not None:
                    timer.enter(READ)
                data = response.read()
                if timer is not None:
                    timer.stop()
                if data:
                    yield data
            elif timer is None:
                read = response.read
                while True:
                    data = read(_READ_SIZE)
                    if not data:
                        break
                    yield data
            else:
                while True:
                    timer.enter(READ)
                    data = response.read(_READ_SIZE)
                    timer.pause()
                    if not data:
                        timer.stop()
                        break
                    yield data
        except roundtrip.Error as exc:
            if timer is not None:
                timer.stop()
            error = httpx_error(exc, timer, self._request)
            if events is not None:
                events.fail(error)
            raise error from exc
        if events is not None:
            events.body_done()

    def close(self) -> None:
        self._response.close()
        if self._timer is not None:
            self._timer.stop()
        if self._events is not None:
            events, self._events = self._events, None
            events.closed()


# -- shared with the asyncio adapter (no I/O here) ------------------------------------------------


def request_headers(request: httpx.Request) -> roundtrip.Headers:
    """The request's header fields as httpx built them, in order and spelling."""
    return _from_list([(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw])


def response_fields(response: Any) -> list[tuple[bytes, bytes]]:
    """A roundtrip response's header fields as httpx takes them."""
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers.items()]


def response_extensions(response: Any) -> dict[str, Any]:
    """The extensions httpcore gives an HTTP/1.1 response: its version and reason phrase."""
    return {
        "http_version": _HTTP_VERSIONS.get(response.http_version) or response.http_version.encode("ascii", "replace"),
        "reason_phrase": response.reason.encode("latin-1", "replace"),
    }


def sni_target(url: httpx.URL, sni_hostname: str) -> tuple[tuple[str, int, str], str]:
    """For the ``sni_hostname`` extension: ``((host, port, sni_hostname), url)``, where the
    connection goes to ``host:port`` and the request is sent to ``url``, which names
    ``sni_hostname`` (the ``Host`` header httpx set still names the URL's host)."""
    port = url.port or (443 if url.scheme == "https" else 80)
    return (url.host, port, sni_hostname), str(url.copy_with(host=sni_hostname))


def timer_for(timeouts: Any, watchdog: Watchdog, strict: bool = False) -> Optional[PhaseTimer]:
    """A ``PhaseTimer`` for httpx's ``timeout`` extension, or ``None`` if it sets no limit
    (``strict``: see ``PhaseTimer.strict``)."""
    if not timeouts:
        return None
    limits = (timeouts.get("pool"), timeouts.get("connect"), timeouts.get("write"), timeouts.get("read"))
    if limits == (None, None, None, None):
        return None
    return PhaseTimer(watchdog, limits, strict)


def combined_trace(timer: Optional[PhaseTimer], events: Optional[EventTrace]) -> Optional[roundtrip.Trace]:
    """The request's ``Trace``: the timer's hooks, the trace extension's, or both."""
    if events is None:
        return timer.trace if timer is not None else None
    hooks = events.hooks()
    if timer is not None:
        for name in HOOKS:
            first = getattr(timer.trace, name)
            if first is None:
                continue
            second = hooks.get(name)
            hooks[name] = first if second is None else _both(first, second)
    return roundtrip.Trace(**hooks)


def _both(first: Any, second: Any) -> Any:
    def hook(*args: Any) -> None:
        first(*args)
        second(*args)

    return hook


def request_body(request: httpx.Request) -> tuple[Any, Any]:
    """The body for roundtrip and its ``get_body`` (``None`` lets roundtrip decide)."""
    try:
        content = request.content  # bytes content, or a stream the caller has read
    except httpx.RequestNotRead:
        return request.stream, None  # streamed as it is produced, never copied
    return (content or None), None


def timed_body(body: Any, timer: Optional[PhaseTimer]) -> Any:
    """``body``, with each piece handed to roundtrip restarting the write clock (an
    ``httpx.AsyncByteStream`` stays asynchronous)."""
    if body is None or timer is None or timer.limits[WRITE] is None:
        return body
    if isinstance(body, bytes):
        if len(body) > _SMALL_BODY:
            return TimedFile(io.BytesIO(body), timer)  # seekable: roundtrip can replay it
        return body
    if isinstance(body, httpx.AsyncByteStream) and not isinstance(body, httpx.SyncByteStream):
        return timed_async_chunks(body, timer)
    return timed_chunks(body, timer)


def retryable(exc: roundtrip.Error, error: Exception, body: Any) -> bool:
    """httpcore retries establishing a connection (connect errors and timeouts), not a
    refusal by a proxy; a body that cannot be sent twice is not retried."""
    if not isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout)) or isinstance(exc, roundtrip.ProxyError):
        return False
    if exc.bytes_written:
        return False
    return body is None or isinstance(body, bytes)


def httpx_error(exc: roundtrip.Error, timer: Optional[PhaseTimer], request: httpx.Request) -> Exception:
    """The httpx exception for a roundtrip error (see the table of ``HTTPXTransport``)."""
    message = str(exc)
    phase = timeout_phase(exc, timer)
    if phase is not None:
        if isinstance(exc, roundtrip.Cancelled) and timer is not None:
            message = f"{PHASE_NAMES[phase]} timed out: no progress for {timer.limits[phase]} s"
        return _TIMEOUT_ERRORS[phase](message, request=request)
    if isinstance(exc, roundtrip.ProxyError):
        return httpx.ProxyError(message, request=request)
    if isinstance(exc, roundtrip.ConnectError):
        return httpx.ConnectError(message, request=request)
    if isinstance(exc, roundtrip.InvalidRequest):
        part = exc.part
        if part == "scheme":
            # The wording httpx users see from httpx's own transport.
            scheme = request.url.scheme
            if not scheme:
                return httpx.UnsupportedProtocol("Request URL is missing an 'http://' or 'https://' protocol.", request=request)
            return httpx.UnsupportedProtocol(f"Request URL has an unsupported protocol '{scheme}://'.", request=request)
        if message == _messages.NO_HOST:
            return httpx.UnsupportedProtocol(message, request=request)
        if part == "url" and "port" in message:
            # No connection can be made to a port outside 1-65535 (httpx's own URL parsing
            # lets it through); httpx users get what a failed connect gives them.
            return httpx.ConnectError(f"cannot connect: {message}", request=request)
        return httpx.LocalProtocolError(message, request=request)
    if isinstance(exc, (roundtrip.ProtocolError, roundtrip.ServerDisconnected, roundtrip.UnrewindableBody)):
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(exc, roundtrip.ResponseClosed):
        return httpx.StreamClosed()
    if isinstance(exc, roundtrip.TransportClosed):
        return RuntimeError(f"cannot send a request: {message}")
    return httpx.TransportError(message, request=request)
