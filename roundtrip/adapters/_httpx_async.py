"""``HTTPXAsyncTransport``: roundtrip's ``AsyncTransport`` under an ``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, AsyncIterator, Optional

import httpx

import roundtrip

from ._httpx import (combined_trace, httpx_error, request_body, request_headers, response_extensions, response_fields,
                     retryable, sni_target, timed_body, timer_for)
from ._httpx_options import RETRY_BACKOFF, UNSET, AsyncDialer, adapter_setup
from ._httpx_trace import AsyncEventTrace
from ._timeouts import READ, PhaseTimer, Watchdog

__all__ = ("HTTPXAsyncTransport",)

_READ_SIZE = 65536


class HTTPXAsyncTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` that sends requests with a ``roundtrip.AsyncTransport``.

        client = httpx.AsyncClient(transport=HTTPXAsyncTransport())

    It is ``HTTPXTransport`` for asyncio, and everything that class's documentation says holds
    here too, with ``AsyncTransport`` for ``Transport``:

    - ``transport``: the ``roundtrip.AsyncTransport`` to use, shared and never closed by this
      adapter; ``None`` makes one that ``aclose()`` (and so ``AsyncClient.aclose()`` and
      ``async with``) closes, with ``disable_compression=True``.
    - The keyword arguments of ``httpx.AsyncHTTPTransport`` (``verify``, ``cert``,
      ``trust_env``, ``http1``, ``http2``, ``limits``, ``proxy``, ``uds``, ``local_address``,
      ``retries``, ``socket_options``) with httpx's meaning. ``uds``, ``local_address`` and
      ``socket_options`` become an asynchronous ``dial``, which a cancel or a deadline
      interrupts.
    - Request extensions: ``timeout`` (per phase: pool, connect, write, each read),
      ``trace`` (httpcore's event names; a coroutine the callback returns is awaited, in
      order, as httpcore awaits it, see ``_httpx_trace``), ``sni_hostname``.
    - Errors: roundtrip's errors become the same httpx exceptions, the roundtrip error kept as
      ``__cause__``. Cancelling the task that sends or reads raises ``asyncio.CancelledError``
      in it, and the connection is closed, not pooled.

    The response body is an ``httpx.AsyncByteStream`` over ``AsyncResponse.read``; its
    ``aclose()`` closes the roundtrip response (a fully read connection is back in the pool
    already; a half-read one is closed). Per-phase timeouts cancel the request's ``Context``
    from the adapter's timeout thread, as in ``HTTPXTransport``; a request without limits uses
    neither.

    An ``AsyncTransport`` belongs to the event loop of its first request, so one adapter (like
    one ``httpx.AsyncClient``) serves one event loop.
    """

    def __init__(
        self,
        transport: Optional[roundtrip.AsyncTransport] = None,
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
        self._options, self._retries = adapter_setup("HTTPXAsyncTransport", transport, given, AsyncDialer)
        self._owned = transport is None
        self._transport = transport if transport is not None else roundtrip.AsyncTransport(**self._options)  # type: ignore[arg-type]
        self._local_address = given.get("local_address")
        self._socket_options = given.get("socket_options")
        self._sni_transports: dict[tuple[str, int, str], roundtrip.AsyncTransport] = {}
        self._watchdog = Watchdog()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and return its response with the body still to be read.

        Raises the ``httpx`` exceptions of ``HTTPXTransport``'s table.
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
            timer = timer_for(timeouts, self._watchdog, strict=True)
            events = None
            if callback is not None:
                events = AsyncEventTrace.for_request(callback, request, timeouts, self._options, sni_hostname,
                                                     self._local_address, self._socket_options)
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
                response = await transport.round_trip(outgoing)
                break
            except roundtrip.Error as exc:
                if timer is not None:
                    timer.stop()
                error = httpx_error(exc, timer, request)
                if retries_left > 0 and retryable(exc, error, body):
                    # httpcore's connect retries: nothing was sent; wait 0 s, 0.5 s, 1 s, ...
                    retries_left -= 1
                    if events is not None:
                        await events.flush()
                    await asyncio.sleep(delay)
                    delay = RETRY_BACKOFF if not delay else delay * 2
                    continue
                if events is not None:
                    events.fail(error)
                    await events.flush()
                raise error from exc
            except BaseException:
                if timer is not None:
                    timer.stop()
                if events is not None:
                    events.discard()
                raise
        if timer is not None:
            timer.pause()  # the body's clock runs only while httpx reads
        fields = response_fields(response)
        stream = _AsyncResponseStream(response, timer, request, events)
        if events is not None:
            events.got_response(response, fields)
            try:
                await events.flush()
            except BaseException:
                await stream.aclose()
                raise
        return httpx.Response(response.status_code, headers=fields, stream=stream,
                              extensions=response_extensions(response))

    async def aclose(self) -> None:
        """Stop the timeout thread, and close the AsyncTransports this adapter made."""
        self._watchdog.close()
        transports = list(self._sni_transports.values())
        self._sni_transports.clear()
        for transport in transports:
            await transport.aclose()
        if self._owned:
            await self._transport.aclose()

    def _sni_route(self, url: httpx.URL, sni_hostname: str) -> tuple[roundtrip.AsyncTransport, str]:
        """As ``HTTPXTransport._sni_route``: an ``AsyncTransport`` per (host, port, name)."""
        if self._options is None:
            raise NotImplementedError(
                "the sni_hostname extension needs an AsyncTransport made by HTTPXAsyncTransport (leave transport out)"
            )
        key, target = sni_target(url, sni_hostname)
        transport = self._sni_transports.get(key)  # one event loop: no lock needed
        if transport is None:
            options = dict(self._options)
            options["dial"] = _Redirected(key[0], key[1], options.get("dial"))
            transport = self._sni_transports[key] = roundtrip.AsyncTransport(**options)
        return transport, target


class _Redirected:
    """An asynchronous ``dial`` that connects to one fixed host and port, whatever the URL names."""

    __slots__ = ("host", "port", "dial")

    def __init__(self, host: str, port: int, dial: Any) -> None:
        self.host, self.port, self.dial = host, port, dial or AsyncDialer(None, None, None)

    async def __call__(self, host: str, port: int, timeout: Optional[float]) -> socket.socket:
        sock: socket.socket = await self.dial(self.host, self.port, timeout)
        return sock


class _AsyncResponseStream(httpx.AsyncByteStream):
    """The body of a roundtrip ``AsyncResponse`` as httpx reads it."""

    __slots__ = ("_response", "_timer", "_request", "_events")

    def __init__(self, response: roundtrip.AsyncResponse, timer: Optional[PhaseTimer], request: httpx.Request,
                 events: Optional[AsyncEventTrace]) -> None:
        self._response = response
        self._timer = timer
        self._request = request
        self._events = events

    async def __aiter__(self) -> AsyncIterator[bytes]:
        response, timer, events = self._response, self._timer, self._events
        if events is not None:
            events.body_started()
            await events.flush()
        try:
            length = response.content_length
            if length is not None and length <= _READ_SIZE:
                # One read returns a small body of known length and its connection to the pool.
                if timer is not None:
                    timer.enter(READ)
                data = await response.read()
                if timer is not None:
                    timer.stop()
                if data:
                    yield data
            else:
                while True:
                    if timer is not None:
                        timer.enter(READ)
                    data = await response.read(_READ_SIZE)
                    if timer is not None:
                        timer.pause()
                    if not data:
                        break
                    yield data
                if timer is not None:
                    timer.stop()
        except roundtrip.Error as exc:
            if timer is not None:
                timer.stop()
            error = httpx_error(exc, timer, self._request)
            if events is not None:
                events.fail(error)
                await events.flush()
            raise error from exc
        if events is not None:
            events.body_done()
            await events.flush()

    async def aclose(self) -> None:
        try:
            await self._response.aclose()
        finally:
            if self._timer is not None:
                self._timer.stop()
            if self._events is not None:
                events, self._events = self._events, None
                events.closed()
                await events.flush()
