"""httpx's ``trace`` request extension, fed from roundtrip's ``Trace`` hooks.

httpx (its command line's ``-v``, and its users) read events named as httpcore names them,
each called as ``trace(name, info)`` on the requesting thread:

=========================================  ===========================================  ===================
event                                      ``info`` of ``.started``                     ``.complete``
=========================================  ===========================================  ===================
``connection.connect_tcp``                 ``host``, ``port``, ``local_address``,       ``return_value``:
                                           ``timeout``, ``socket_options``              a stream
``connection.start_tls``                   ``ssl_context``, ``server_hostname``,        ``return_value``:
                                           ``timeout``                                  a stream
``http11.send_request_headers``            ``request`` (an ``httpcore.Request``)        ``return_value``: None
``http11.send_request_body``               ``request``                                  ``return_value``: None
``http11.receive_response_headers``        ``request``                                  ``return_value``:
                                                                                        ``(http_version, status,
                                                                                        reason_phrase, headers)``
``http11.receive_response_body``           ``request``                                  ``return_value``: None
``http11.response_closed``                 ``{}``                                       ``return_value``: None
=========================================  ===========================================  ===================

A step that fails gives ``.failed`` with ``{"exception": exc}`` instead of ``.complete``. The
streams answer ``get_extra_info("server_addr")``; roundtrip's hooks do not hand out the TLS
object, so ``get_extra_info("ssl_object")`` is ``None``.

Under ``httpx.AsyncClient`` the callback is usually a coroutine function, and httpcore awaits
each event before going on. roundtrip's hooks are plain calls on the event loop's thread, so
``AsyncEventTrace`` calls the callback there and awaits what it returns at the adapter's next
step (when the response head has arrived or the request has failed, around each body read, at
close): every event is delivered, in order, but an event from inside the round trip is awaited
a little later than httpcore would await it. roundtrip reports no connect steps
around a custom ``dial`` (``uds``, ``local_address``, ``socket_options``), so those
connections give no ``connection.*`` events.
"""

from __future__ import annotations

import inspect
from typing import Any, Awaitable, Callable, Optional, TypeVar

__all__ = ("EventTrace", "AsyncEventTrace")

_T = TypeVar("_T", bound="EventTrace")


class _Stream:
    """What httpcore's ``connection.*.complete`` events carry: a stream that answers
    ``get_extra_info``."""

    __slots__ = ("_info",)

    def __init__(self, **info: Any) -> None:
        self._info = info

    def get_extra_info(self, name: str) -> Any:
        return self._info.get(name)


class EventTrace:
    """Turns roundtrip's hooks for one request into httpcore-named calls of ``callback``."""

    __slots__ = ("callback", "request", "connect_timeout", "ssl_context", "server_hostname", "local_address",
                 "socket_options", "_core_request", "_connecting", "_server_addr", "_tls", "_step")

    def __init__(self, callback: Callable[[str, dict[str, Any]], Any], request: Any, connect_timeout: Optional[float],
                 ssl_context: Any, server_hostname: str, local_address: Optional[str], socket_options: Any) -> None:
        self.callback = callback
        self.request = request  # the httpx.Request
        self.connect_timeout = connect_timeout
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self.local_address = local_address
        self.socket_options = socket_options
        self._core_request: Any = None
        self._connecting: Optional[str] = None  # the host of a connect_tcp that has started
        self._server_addr: Any = None
        self._tls = False
        self._step: Optional[str] = None  # the http11 step that has started and not completed

    @classmethod
    def for_request(cls: type[_T], callback: Callable[[str, dict[str, Any]], Any], request: Any, timeouts: Any,
                    options: Optional[dict[str, Any]], sni_hostname: Optional[str], local_address: Optional[str],
                    socket_options: Any) -> _T:
        """The events of one httpx request sent with a Transport made with ``options``."""
        connect = timeouts.get("connect") if timeouts else None
        ssl_context = (options or {}).get("ssl_context")
        return cls(callback, request, connect, ssl_context, sni_hostname or request.url.host, local_address, socket_options)

    def hooks(self) -> dict[str, Callable[..., Any]]:
        return {
            "dns_start": self._dns_start,
            "dns_done": self._dns_done,
            "connect_start": self._connect_start,
            "connect_done": self._connect_done,
            "tls_handshake_start": self._tls_start,
            "tls_handshake_done": self._tls_done,
            "got_conn": self._got_conn,
            "wrote_headers": self._wrote_headers,
            "wrote_request": self._wrote_request,
        }

    def core_request(self) -> Any:
        """The request as httpcore would have handed it to its trace (made on first use)."""
        if self._core_request is None:
            import httpcore

            url = self.request.url
            self._core_request = httpcore.Request(
                method=self.request.method.encode("ascii"),
                url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
                headers=self.request.headers.raw,
                extensions=self.request.extensions,
            )
        return self._core_request

    def emit(self, name: str, info: dict[str, Any]) -> None:
        self.callback(name, info)

    def _start(self, step: str) -> None:
        self._step = step
        self.emit(f"http11.{step}.started", {"request": self.core_request()})

    def _complete(self, step: str) -> None:
        if self._step == step:
            self._step = None
            self.emit(f"http11.{step}.complete", {"return_value": None})

    # -- roundtrip hooks ----------------------------------------------------------------------

    def _begin_connect(self, host: str, port: int) -> None:
        if self._connecting is None:
            self._connecting = host
            self.emit("connection.connect_tcp.started", {
                "host": host, "port": port, "local_address": self.local_address,
                "timeout": self.connect_timeout, "socket_options": self.socket_options,
            })

    def _dns_start(self, host: str) -> None:
        port = self.request.url.port or (443 if self.request.url.scheme == "https" else 80)
        self._begin_connect(host, port)

    def _dns_done(self, addrs: list[Any], error: Optional[BaseException]) -> None:
        if error is not None:
            self.fail(error)

    def _connect_start(self, addr: tuple[Any, ...]) -> None:
        self._begin_connect(addr[0], addr[1])

    def _connect_done(self, addr: tuple[Any, ...], error: Optional[BaseException]) -> None:
        if error is None and self._connecting is not None:
            self._connecting = None
            self._server_addr = addr
            self.emit("connection.connect_tcp.complete", {"return_value": _Stream(server_addr=addr)})

    def _tls_start(self) -> None:
        self._tls = True
        self.emit("connection.start_tls.started", {
            "ssl_context": self.ssl_context, "server_hostname": self.server_hostname, "timeout": self.connect_timeout,
        })

    def _tls_done(self, error: Optional[BaseException]) -> None:
        if error is None:
            self._tls = False
            self.emit("connection.start_tls.complete", {"return_value": _Stream(server_addr=self._server_addr, ssl_object=None)})
        else:
            self.fail(error)

    def _got_conn(self, info: Any) -> None:
        self._start("send_request_headers")

    def _wrote_headers(self) -> None:
        self._complete("send_request_headers")
        self._start("send_request_body")

    def _wrote_request(self, error: Optional[BaseException]) -> None:
        if error is not None:
            self.fail(error)
            return
        self._complete("send_request_headers")  # no wrote_headers hook came (head and body sent at once)
        if self._step is None:
            self._start("send_request_body")
        self._complete("send_request_body")
        self._start("receive_response_headers")

    # -- steps the adapter reports --------------------------------------------------------------

    def fail(self, error: BaseException) -> None:
        """The step in progress (if any) failed with ``error``."""
        if self._connecting is not None:
            self._connecting = None
            self.emit("connection.connect_tcp.failed", {"exception": error})
        elif self._tls:
            self._tls = False
            self.emit("connection.start_tls.failed", {"exception": error})
        elif self._step is not None:
            step, self._step = self._step, None
            self.emit(f"http11.{step}.failed", {"exception": error})

    def got_response(self, response: Any, headers: list[Any]) -> None:
        if self._step != "receive_response_headers":
            self._start("receive_response_headers")
        self._step = None
        self.emit("http11.receive_response_headers.complete", {"return_value": (
            response.http_version.encode("ascii", "replace"), response.status_code,
            response.reason.encode("latin-1", "replace"), headers,
        )})

    def body_started(self) -> None:
        self._start("receive_response_body")

    def body_done(self) -> None:
        self._complete("receive_response_body")

    def closed(self) -> None:
        self.emit("http11.response_closed.started", {})
        self.emit("http11.response_closed.complete", {"return_value": None})


class AsyncEventTrace(EventTrace):
    """``EventTrace`` for ``httpx.AsyncClient``: a callback's coroutines are kept in order and
    awaited by ``flush()``; ``discard()`` closes those never awaited (the request was cancelled)."""

    __slots__ = ("_pending",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._pending: list[Awaitable[Any]] = []

    def emit(self, name: str, info: dict[str, Any]) -> None:
        result = self.callback(name, info)
        if inspect.isawaitable(result):
            self._pending.append(result)

    async def flush(self) -> None:
        """Await the callback's coroutines, oldest first."""
        while self._pending:
            pending = self._pending.pop(0)
            try:
                await pending
            except BaseException:
                self.discard()
                raise

    def discard(self) -> None:
        pending, self._pending = self._pending, []
        for awaitable in pending:
            close = getattr(awaitable, "close", None)
            if close is not None:
                close()  # no "never awaited" warning for an event nobody will see
