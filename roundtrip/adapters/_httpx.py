"""``HTTPXTransport``: roundtrip as the transport under an ``httpx.Client``."""

from __future__ import annotations

import io
from typing import Any, Iterator, Optional

import httpx

import roundtrip

from ._timeouts import PHASE_NAMES, READ, WRITE, PhaseTimer, TimedFile, Watchdog, timed_chunks, timeout_phase

__all__ = ("HTTPXTransport",)

_READ_SIZE = 65536
# Bodies up to this size go out with the head in one send; larger ones are fed to the
# transport a file read at a time, so that each piece restarts the write clock.
_SMALL_BODY = 65536
_TIMEOUT_ERRORS = (httpx.PoolTimeout, httpx.ConnectTimeout, httpx.WriteTimeout, httpx.ReadTimeout)


class HTTPXTransport(httpx.BaseTransport):
    """An ``httpx.BaseTransport`` that sends requests with a ``roundtrip.Transport``.

        client = httpx.Client(transport=HTTPXTransport())

    Args:
        transport: the ``roundtrip.Transport`` to use, shared and never closed by this adapter.
            ``None`` (the default) makes a new one that this adapter owns and closes, with
            roundtrip's defaults except ``disable_compression=True`` (httpx decodes
            ``Content-Encoding`` itself, so roundtrip must never gunzip underneath it).

    The request goes out as httpx built it: method, URL, every header field in order and
    spelling (``Host``, ``User-Agent`` and ``Accept-Encoding`` included, so roundtrip adds none
    of its own and never decompresses), and the body streamed from ``request.stream``. The
    response streams: httpx reads it through an ``httpx.SyncByteStream`` whose ``close()``
    closes the roundtrip response (returning a fully read connection to the pool, closing a
    half-read one). What this adapter does not do is left to httpx, as with its own transport:
    redirects, cookies, auth, decoding. httpx's ``proxy=``/``mounts=`` never reach this
    transport; an owned Transport chooses proxies with ``roundtrip.proxy_from_environment``.

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
    ``InvalidRequest``: scheme, no host                          ``UnsupportedProtocol``
    ``InvalidRequest``: anything else                            ``LocalProtocolError``
    ``ProtocolError``, ``IncompleteBody``, ``HeaderTooLarge``,   ``RemoteProtocolError``
    ``ServerDisconnected``, ``UnrewindableBody``
    ``ResponseClosed``                                           ``StreamClosed``
    ``TransportClosed``                                          ``RuntimeError`` (as a closed
                                                                 ``httpx.Client`` raises)
    any other ``roundtrip.Error``                                ``TransportError``
    ==========================================================  ==============================
    """

    def __init__(self, transport: Optional[roundtrip.Transport] = None) -> None:
        self._owned = transport is None
        self._transport = roundtrip.Transport(disable_compression=True) if transport is None else transport
        self._watchdog = Watchdog()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and return its response with the body still to be read.

        Raises the ``httpx`` exceptions of the table in the class docstring.
        """
        timer = _timer_for(request, self._watchdog)
        body, get_body = _request_body(request, timer)
        outgoing = roundtrip.Request(
            request.method,
            str(request.url),
            request.headers.raw,
            body,
            get_body=get_body,
            context=timer.context if timer is not None else None,
            trace=timer.trace if timer is not None else None,
        )
        try:
            response = self._transport.round_trip(outgoing)
        except roundtrip.Error as exc:
            if timer is not None:
                timer.stop()
            raise _httpx_error(exc, timer, request) from exc
        except BaseException:
            if timer is not None:
                timer.stop()
            raise
        if timer is not None:
            timer.pause()  # the body's clock runs only while httpx reads
        return httpx.Response(
            response.status_code,
            headers=[(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers.items()],
            stream=_ResponseStream(response, timer, request),
            extensions={
                "http_version": response.http_version.encode("ascii", "replace"),
                "reason_phrase": response.reason.encode("latin-1", "replace"),
            },
        )

    def close(self) -> None:
        """Stop the timeout watchdog, and close the roundtrip Transport if this adapter made it."""
        self._watchdog.close()
        if self._owned:
            self._transport.close()


class _ResponseStream(httpx.SyncByteStream):
    """The body of a roundtrip response as httpx reads it."""

    def __init__(self, response: roundtrip.Response, timer: Optional[PhaseTimer], request: httpx.Request) -> None:
        self._response = response
        self._timer = timer
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        response, timer = self._response, self._timer
        try:
            if timer is None:
                while True:
                    data = response.read(_READ_SIZE)
                    if not data:
                        return
                    yield data
            while True:
                timer.enter(READ)
                data = response.read(_READ_SIZE)
                timer.pause()
                if not data:
                    timer.stop()
                    return
                yield data
        except roundtrip.Error as exc:
            if timer is not None:
                timer.stop()
            raise _httpx_error(exc, timer, self._request) from exc

    def close(self) -> None:
        self._response.close()
        if self._timer is not None:
            self._timer.stop()


def _timer_for(request: httpx.Request, watchdog: Watchdog) -> Optional[PhaseTimer]:
    timeout = request.extensions.get("timeout")
    if not timeout:
        return None
    limits = (timeout.get("pool"), timeout.get("connect"), timeout.get("write"), timeout.get("read"))
    if limits == (None, None, None, None):
        return None
    return PhaseTimer(watchdog, limits)


def _request_body(request: httpx.Request, timer: Optional[PhaseTimer]) -> tuple[Any, Any]:
    """The body for roundtrip and its ``get_body`` (``None`` lets roundtrip decide)."""
    try:
        content = request.content  # bytes content, or a stream the caller has read
    except httpx.RequestNotRead:
        stream = request.stream
        if timer is not None and timer.limits[WRITE] is not None:
            return timed_chunks(stream, timer), None  # type: ignore[arg-type]
        return stream, None
    if not content:
        return None, None
    if len(content) > _SMALL_BODY and timer is not None and timer.limits[WRITE] is not None:
        return TimedFile(io.BytesIO(content), timer), None  # seekable: roundtrip can replay it
    return content, None


def _httpx_error(exc: roundtrip.Error, timer: Optional[PhaseTimer], request: httpx.Request) -> Exception:
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
        if message.startswith("unsupported protocol scheme") or message == "no Host in request URL":
            return httpx.UnsupportedProtocol(message, request=request)
        return httpx.LocalProtocolError(message, request=request)
    if isinstance(exc, (roundtrip.ProtocolError, roundtrip.ServerDisconnected, roundtrip.UnrewindableBody)):
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(exc, roundtrip.ResponseClosed):
        return httpx.StreamClosed()
    if isinstance(exc, roundtrip.TransportClosed):
        return RuntimeError(f"cannot send a request: {message}")
    return httpx.TransportError(message, request=request)
