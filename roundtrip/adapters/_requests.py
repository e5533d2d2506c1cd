"""``RequestsAdapter``: roundtrip as the connection adapter of a ``requests.Session``."""

from __future__ import annotations

import http.client
import io
import os
import ssl
import threading
from urllib.parse import urlsplit
from typing import Any, Iterable, Iterator, Mapping, Optional

import requests
from requests import exceptions as rexc
from requests.adapters import DEFAULT_POOLBLOCK, DEFAULT_POOLSIZE, DEFAULT_RETRIES, BaseAdapter
from requests.cookies import extract_cookies_to_jar
from requests.structures import CaseInsensitiveDict
from requests.auth import _basic_auth_str
from requests.utils import (
    DEFAULT_CA_BUNDLE_PATH,
    extract_zipped_paths,
    get_auth_from_url,
    get_encoding_from_headers,
    prepend_scheme_if_needed,
    select_proxy,
)
from urllib3 import HTTPResponse
from urllib3.exceptions import ConnectTimeoutError, DecodeError, MaxRetryError, NewConnectionError, ReadTimeoutError
from urllib3.exceptions import ProtocolError as URLLib3ProtocolError
from urllib3.util import Timeout as TimeoutSauce
from urllib3.util import parse_url
from urllib3.util.retry import Retry

import roundtrip
from roundtrip import _messages
from roundtrip._headers import _text

from ._timeouts import CONNECT, POOL, READ, WRITE, PhaseTimer, TimedFile, Watchdog, timed_chunks, timeout_phase

__all__ = ("RequestsAdapter",)

_SMALL_BODY = 65536  # larger bodies go out a file read at a time (each read restarts the clock)
_PIECE = 65536  # the most one timed read of the response body asks for
_BYTES_LIKE = (bytes, bytearray, memoryview)
# roundtrip's messages for a head cut off by the end of the stream, and for a bad Content-Length
_CLOSED_IN_HEAD = "server closed the connection inside the response head"
_BAD_CONTENT_LENGTH = _messages.BAD_CONTENT_LENGTH
_INVALID_REQUEST = {"header": rexc.InvalidHeader, "scheme": rexc.InvalidSchema, "url": rexc.InvalidURL}


class _AdapterRequest(roundtrip.Request):
    """A roundtrip Request that also carries the proxy requests chose for it."""

    __slots__ = ("proxy_url",)


def _chosen_proxy(request: Any) -> Optional[str]:
    """The ``proxy`` option of the Transports this adapter owns: requests picks the proxy."""
    return getattr(request, "proxy_url", None)


class RequestsAdapter(BaseAdapter):
    """A ``requests`` transport adapter that sends requests with a ``roundtrip.Transport``.

        session = requests.Session()
        session.mount("http://", RequestsAdapter())
        session.mount("https://", RequestsAdapter())

    Args:
        transport: the ``roundtrip.Transport`` to use, shared and never closed by this adapter
            (the pool arguments below may not be given with it).
            It is used as it is: its ``ssl_context`` and ``proxy`` options decide TLS and
            proxies, requests' ``proxies`` are ignored, a CA path in ``verify`` defers to that
            ``ssl_context``, and ``verify=False`` or a ``cert`` on an https request raises
            ``NotImplementedError``. ``None`` (the
            default): the adapter makes and owns its Transports, described below.
        pool_connections, pool_maxsize, pool_block: ``HTTPAdapter``'s pool sizes. Each Transport
            keeps ``pool_maxsize`` idle connections per host and ``pool_connections *
            pool_maxsize`` in all; with ``pool_block`` it never opens more than
            ``pool_maxsize`` per host (further requests wait, as urllib3's blocking pool does).
        max_retries: an int or a ``urllib3.util.Retry``, kept as ``self.max_retries`` as
            ``HTTPAdapter`` keeps it. ``Retry.increment`` decides as for urllib3: a failed
            connect counts against ``connect``, a read timeout or a server that hung up
            against ``read`` (for the methods ``Retry`` deems idempotent), a status in
            ``status_forcelist`` against ``status`` (``RetryError`` once spent, if
            ``raise_on_status``); ``Retry.sleep`` waits between tries. Only bodies that can
            be sent again (none, or bytes) are retried.

    The adapter pickles with its Session as ``HTTPAdapter`` does: its settings travel and its
    Transports are made anew (one with a given ``transport`` refuses to pickle).

    Owned Transports have roundtrip's defaults except ``disable_compression=True`` (requests
    decodes ``Content-Encoding`` itself, through ``raw.read(decode_content=True)``) and a
    ``proxy`` that uses the proxy requests picked from its ``proxies`` (``select_proxy``, as
    ``HTTPAdapter`` does). A Transport's ``ssl_context`` is fixed when it is made, so the
    adapter keeps **one Transport per distinct TLS configuration**: one for plain http, and one
    per ``(verify, cert)`` pair seen on https requests, made on first use and kept (with its
    pool) until ``close()``. ``verify=True`` uses requests' CA bundle (certifi), as requests
    does; a path uses that file or directory; ``False`` turns verification off; ``cert`` is a
    client certificate file or a ``(cert, key)`` pair. After ``close()`` the adapter can be
    used again: new Transports are made.

    The response is a ``requests.Response`` built as ``HTTPAdapter.build_response`` builds it
    (status, reason, headers, encoding, url, cookies, request, connection); its ``raw`` is a
    ``urllib3.HTTPResponse`` over the roundtrip response, so ``stream=True``,
    ``iter_content``, ``.content``, ``raw.read(amt, decode_content=...)`` and ``raw.stream()``
    behave as with requests' own adapter. Reading the body to its end returns the connection to
    the pool; ``Response.close()`` before the end closes it.

    Timeouts: ``timeout=`` (a float, a ``(connect, read)`` tuple, or a ``urllib3.Timeout``)
    works as with urllib3. ``connect`` limits waiting for a connection and DNS + TCP + TLS
    (``ConnectTimeout``) and, as in urllib3, each write of the request (``ReadTimeout``);
    ``read`` limits each wait for the response head or for a piece (at most 64 KiB) of the
    body: a large read goes a piece at a time, each with a fresh clock. As in
    ``HTTPXTransport`` they are enforced per phase by cancelling the request's ``Context``
    from a watchdog thread (see ``_timeouts``), and the clock runs only while a read is in
    progress. A read timeout while the body is read surfaces, as with urllib3, as
    ``requests.ConnectionError`` from ``.content``/``iter_content`` (``ReadTimeoutError``
    from ``raw.read``).

    Errors (the roundtrip error is kept as the first argument and as ``__cause__``):

    ==========================================================  ==============================
    roundtrip                                                    requests.exceptions
    ==========================================================  ==============================
    ``ConnectTimeout``, ``TLSHandshakeTimeout``, a pool or       ``ConnectTimeout``
    connect phase limit
    ``ResponseHeaderTimeout``, a write or read phase limit,      ``ReadTimeout``
    ``DeadlineExceeded``
    ``ProxyError``; ``ConnectError`` through an http(s) proxy    ``ProxyError`` ("Unable to
                                                                 connect to proxy ...")
    a proxy URL without a host (before anything is sent)         ``InvalidProxyURL``
    ``TLSError``                                                 ``SSLError``
    ``ConnectError``                                             ``ConnectionError``
    ``ProtocolError``: head cut off by the end of the stream     ``ChunkedEncodingError`` (http.client
                                                                 takes it as a whole head, then
                                                                 the body is missing)
    ``ProtocolError``: invalid or conflicting Content-Length     ``InvalidHeader``
    ``ServerDisconnected``, ``ProtocolError`` (response head),   ``ConnectionError``
    ``UnrewindableBody``, other errors
    ``InvalidRequest``: header name or value                     ``InvalidHeader``
    ``InvalidRequest``: scheme                                   ``InvalidSchema``
    ``InvalidRequest``: URL, host, port                          ``InvalidURL``
    ``InvalidRequest``: method, body                             raised as is (a ``ValueError``,
                                                                 as http.client raises)
    ``TransportClosed`` (a given Transport)                      ``RuntimeError``
    while reading the body: ``IncompleteBody``, ``ProtocolError``  ``ChunkedEncodingError``
    while reading the body: bad gzip that roundtrip decoded      ``ContentDecodingError``
    ==========================================================  ==============================
    """

    __attrs__ = ["max_retries", "config", "_pool_connections", "_pool_maxsize", "_pool_block"]

    def __init__(
        self,
        transport: Optional[roundtrip.Transport] = None,
        *,
        pool_connections: int = DEFAULT_POOLSIZE,
        pool_maxsize: int = DEFAULT_POOLSIZE,
        max_retries: Any = DEFAULT_RETRIES,
        pool_block: bool = DEFAULT_POOLBLOCK,
    ) -> None:
        super().__init__()
        # As HTTPAdapter keeps them (its users and subclasses read max_retries).
        if max_retries == DEFAULT_RETRIES:
            self.max_retries = Retry(0, read=False)
        else:
            self.max_retries = Retry.from_int(max_retries)
        self.config: dict[str, Any] = {}
        self._pool_connections = pool_connections
        self._pool_maxsize = pool_maxsize
        self._pool_block = pool_block
        if transport is not None and (pool_connections, pool_maxsize, pool_block) != (DEFAULT_POOLSIZE, DEFAULT_POOLSIZE, DEFAULT_POOLBLOCK):
            raise ValueError(
                "RequestsAdapter(transport=...) uses that Transport's pool: pool_connections, pool_maxsize and "
                "pool_block cannot change it (leave transport out to have one made)"
            )
        self._given = transport
        self._setup()

    def _setup(self) -> None:
        self._transports: dict[Any, roundtrip.Transport] = {}
        self._lock = threading.Lock()
        self._watchdog = Watchdog()

    def __getstate__(self) -> dict[str, Any]:
        if self._given is not None:
            raise TypeError(
                "cannot pickle a RequestsAdapter made with transport=...: a roundtrip.Transport holds "
                "sockets and locks (leave transport out to have one made; it is made anew on unpickling)"
            )
        return {attr: getattr(self, attr, None) for attr in self.__attrs__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # As HTTPAdapter does: the settings come back, the pools are made anew.
        for attr, value in state.items():
            setattr(self, attr, value)
        self._given = None
        self._setup()

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Optional[Mapping[str, str]] = None,
    ) -> requests.Response:
        """Send a prepared request and return its ``requests.Response`` (body not yet read;
        ``Session`` reads it unless ``stream=True``).

        Raises the ``requests.exceptions`` of the table in the class docstring, ``ValueError``
        for a bad ``timeout``, ``OSError`` for a missing CA bundle or client certificate, and
        ``NotImplementedError`` for ``verify``/``cert`` with a given Transport.
        """
        url: str = request.url.decode("utf-8") if isinstance(request.url, bytes) else (request.url or "")
        transport = self._transport_for(url, verify, cert)
        proxy = self._proxy_for(url, proxies)
        self.add_headers(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)
        limits = _limits(timeout)
        method = request.method or "GET"
        body = _request_body(request.body)
        headers = _headers(request.headers)
        retries = self.max_retries
        while True:
            timer = PhaseTimer(self._watchdog, limits) if limits is not None else None
            outgoing = _AdapterRequest(
                method,
                url,
                headers,
                _timed_body(body, timer),
                context=timer.context if timer is not None else None,
                trace=timer.trace if timer is not None else None,
            )
            outgoing.proxy_url = proxy  # type: ignore[attr-defined]
            try:
                response = transport.round_trip(outgoing)
            except roundtrip.Error as exc:
                if timer is not None:
                    timer.stop()
                mapped = _requests_error(exc, timer, request, proxy)
                if mapped is None:
                    raise
                retry_as = _retry_reason(exc, timer)
                if retry_as is not None and _replayable(body):
                    try:
                        retries = retries.increment(method, url, error=retry_as)
                    except Exception:  # MaxRetryError, or the error itself when reads are not retried
                        raise mapped from exc
                    retries.sleep()
                    continue
                raise mapped from exc
            except BaseException:
                if timer is not None:
                    timer.stop()
                raise
            if timer is not None:
                timer.pause()  # the body's clock runs only while something reads
            raw = _urllib3_response(request, response, timer)
            if (retries.status_forcelist or retries.total) and _replayable(body):
                has_retry_after = "Retry-After" in response.headers
                if retries.is_retry(method, response.status_code, has_retry_after):
                    try:
                        retries = retries.increment(method, url, response=raw)
                    except MaxRetryError as exc:
                        if retries.raise_on_status:
                            raw.drain_conn()
                            raise rexc.RetryError(exc, request=request) from None
                    else:
                        raw.drain_conn()
                        retries.sleep(raw)
                        continue
            return self.build_response(request, raw)

    def build_response(self, req: requests.PreparedRequest, resp: Any) -> requests.Response:
        """A ``requests.Response`` for the ``urllib3.HTTPResponse`` ``resp``, as
        ``HTTPAdapter.build_response`` makes it (subclasses may extend it the same way)."""
        result = requests.Response()
        result.status_code = resp.status
        result.headers = CaseInsensitiveDict(resp.headers)
        result.encoding = get_encoding_from_headers(result.headers)
        result.raw = resp
        result.reason = resp.reason
        result.url = req.url.decode("utf-8") if isinstance(req.url, bytes) else req.url  # type: ignore[assignment]
        extract_cookies_to_jar(result.cookies, req, resp)  # type: ignore[no-untyped-call]  # requests.cookies has no annotations
        result.request = req
        result.connection = self  # type: ignore[assignment]
        return result

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        """Does nothing; a hook for subclasses, called before each request as by ``HTTPAdapter``."""

    def proxy_headers(self, proxy: str) -> dict[str, str]:
        """The ``Proxy-Authorization`` header for the credentials in ``proxy``, as ``HTTPAdapter``
        makes it (roundtrip sends it from the proxy URL's credentials)."""
        username, password = get_auth_from_url(proxy)
        return {"Proxy-Authorization": _basic_auth_str(username, password)} if username else {}

    def close(self) -> None:
        """Stop the timeout watchdog and close the Transports this adapter made."""
        self._watchdog.close()
        with self._lock:
            transports = list(self._transports.values())
            self._transports.clear()
        for transport in transports:
            transport.close()

    # -- helpers -------------------------------------------------------------------------------

    def _proxy_for(self, url: str, proxies: Optional[Mapping[str, str]]) -> Optional[str]:
        """The proxy requests chose for ``url``, checked as ``HTTPAdapter`` checks it."""
        if not proxies or self._given is not None:
            return None
        proxy = select_proxy(url, proxies)
        if not proxy:
            return None
        full: str = prepend_scheme_if_needed(proxy, "http")  # type: ignore[no-untyped-call]  # requests.utils has no annotations
        if not parse_url(full).host:
            raise rexc.InvalidProxyURL("Please check proxy URL. It is malformed and could be missing the host.")
        return full

    def _transport_for(self, url: str, verify: Any, cert: Any) -> roundtrip.Transport:
        https = url[:6].lower() == "https:"
        if self._given is not None:
            # A CA path (requests passes REQUESTS_CA_BUNDLE as one) still means "verify": the
            # Transport's ssl_context says against what. Turning checks off, or a client
            # certificate, cannot be honoured on a Transport made elsewhere.
            if https and (verify is False or cert):
                raise NotImplementedError(
                    "RequestsAdapter(transport=...) uses that Transport's ssl_context: requests' "
                    "verify= and cert= cannot change it; build the roundtrip.Transport with "
                    "ssl_context=... (or use RequestsAdapter() to have one made per TLS setting)"
                )
            return self._given
        if https:
            if isinstance(cert, list):
                cert = tuple(cert)
            key: Any = (verify if isinstance(verify, str) else bool(verify), cert or None)
        else:
            key = None  # plain http: TLS settings do not matter
        transport = self._transports.get(key)
        if transport is None:
            context = _ssl_context(*key) if key is not None else None  # raises before caching
            with self._lock:
                transport = self._transports.get(key)
                if transport is None:
                    transport = roundtrip.Transport(
                        disable_compression=True,
                        proxy=_chosen_proxy,
                        ssl_context=context,
                        # urllib3 keeps pool_maxsize connections per host, for pool_connections
                        # hosts; with pool_block it never opens more than pool_maxsize per host.
                        max_idle_conns_per_host=self._pool_maxsize,
                        max_idle_conns=self._pool_connections * self._pool_maxsize,
                        max_conns_per_host=self._pool_maxsize if self._pool_block else 0,
                    )
                    self._transports[key] = transport
        return transport


def _urllib3_response(request: requests.PreparedRequest, response: roundtrip.Response, timer: Optional[PhaseTimer]) -> HTTPResponse:
    """A ``urllib3.HTTPResponse`` over the roundtrip response: what ``HTTPAdapter`` gives
    ``build_response``."""
    body = _RawBody(response, timer)
    return HTTPResponse(
        body=body,  # type: ignore[arg-type]
        headers=response.headers.items(),  # type: ignore[arg-type]
        status=response.status_code,
        version=10 if response.http_version == "HTTP/1.0" else 11,
        version_string=response.http_version,
        reason=response.reason,
        preload_content=False,
        decode_content=False,
        original_response=body,  # type: ignore[arg-type]
        request_method=request.method,
        request_url=request.url,
    )


class _RawBody:
    """The roundtrip response as the file object under the ``urllib3.HTTPResponse``.

    It also stands in for urllib3's "original response" (``msg``, ``isclosed()``), which is
    how requests finds ``Set-Cookie``. Errors come out as the exceptions urllib3 turns into
    its own: a timeout as ``TimeoutError``, a broken body as ``http.client.HTTPException``.
    """

    __slots__ = ("_response", "_timer", "_closed", "_msg")

    def __init__(self, response: roundtrip.Response, timer: Optional[PhaseTimer]) -> None:
        self._response = response
        self._timer = timer
        self._closed = False
        self._msg: Any = None

    def read(self, amt: Optional[int] = None) -> bytes:
        if self._closed or amt == 0:
            return b""
        timer = self._timer
        whole = amt is None or amt < 0
        try:
            if timer is None:
                data = self._response.read(amt)
            elif not whole and amt <= _PIECE:  # type: ignore[operator]
                data = self._timed_read(timer, amt)  # type: ignore[arg-type]
            else:
                # A big read goes a piece at a time, each with a fresh clock: the read timeout
                # limits waiting, not the time a large body takes.
                parts = []
                wanted = None if whole else amt
                while wanted is None or wanted > 0:
                    piece = self._timed_read(timer, _PIECE if wanted is None else min(wanted, _PIECE))
                    if not piece:
                        break
                    parts.append(piece)
                    if wanted is not None:
                        wanted -= len(piece)
                data = b"".join(parts)
        except roundtrip.Error as exc:
            self.close()
            raise _read_error(exc, timer, self._response) from exc
        if whole or not data:
            self.close()  # at the end, as http.client's response closes itself
        return data

    def _timed_read(self, timer: PhaseTimer, amt: int) -> bytes:
        timer.enter(READ)
        data = self._response.read(amt)
        if data:
            timer.pause()
        else:
            timer.stop()  # the body is done
        return data

    def read1(self, amt: Optional[int] = None) -> bytes:
        return self.read(amt if amt is not None and amt >= 0 else 65536)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._response.close()
            if self._timer is not None:
                self._timer.stop()

    @property
    def closed(self) -> bool:
        return self._closed

    def isclosed(self) -> bool:
        return self._closed

    @property
    def msg(self) -> Any:
        """The response header fields as ``http.client`` keeps them (for cookie extraction).
        Without cookies, a light stand-in answers what ``http.cookiejar`` asks (``get_all``)."""
        if self._msg is None:
            headers = self._response.headers
            if "set-cookie" not in headers and "set-cookie2" not in headers:
                self._msg = _NoCookies
                return self._msg
            msg = http.client.HTTPMessage()
            for name, value in headers.items():
                msg[name] = value  # Message.__setitem__ appends: repeated fields stay
            self._msg = msg
        return self._msg


class _NoCookies:
    """The ``msg`` of a response without ``Set-Cookie`` fields, as ``http.cookiejar`` reads it."""

    @staticmethod
    def get_all(name: str, failobj: Any = None) -> Any:
        if name.lower() in ("set-cookie", "set-cookie2"):
            return failobj
        raise LookupError(f"only cookie fields are looked up here, not {name!r}")


def _read_error(exc: roundtrip.Error, timer: Optional[PhaseTimer], response: roundtrip.Response) -> Exception:
    """What urllib3 expects from its file object for a roundtrip error during a body read."""
    if timeout_phase(exc, timer) is not None:
        return TimeoutError("Read timed out.")  # urllib3: ReadTimeoutError
    if isinstance(exc, roundtrip.ProtocolError) and not isinstance(exc, roundtrip.IncompleteBody) and response.uncompressed:
        return DecodeError(f"Received response with content-encoding: gzip, but failed to decode it: {exc}")
    return http.client.HTTPException(str(exc))  # urllib3: ProtocolError -> ChunkedEncodingError


def _limits(timeout: Any) -> Optional[tuple[Any, Any, Any, Any]]:
    """``(pool, connect, write, read)`` seconds from requests' ``timeout``, or None for none."""
    if timeout is None:
        return None
    if isinstance(timeout, tuple):
        try:
            connect, read = timeout
            TimeoutSauce(connect=connect, read=read)
        except ValueError:
            raise ValueError(
                f"Invalid timeout {timeout}. Pass a (connect, read) timeout tuple, "
                f"or a single float to set both timeouts to the same value."
            ) from None
    elif isinstance(timeout, TimeoutSauce):
        connect, read = timeout.connect_timeout, timeout.read_timeout
    else:
        TimeoutSauce(connect=timeout, read=timeout)  # validates, as HTTPAdapter does
        connect = read = timeout
    connect = connect if isinstance(connect, (int, float)) else None  # urllib3's sentinels: none
    read = read if isinstance(read, (int, float)) else None
    if connect is None and read is None:
        return None
    # urllib3 sends the request under the connect timeout and reads under the read timeout.
    return (connect, connect, connect, read)


def _headers(fields: Mapping[Any, Any]) -> roundtrip.Headers:
    # requests allows str or bytes names and values; str (the usual) goes through untouched.
    return roundtrip.Headers._from_list([
        (name if type(name) is str else _text(name), value if type(value) is str else _text(value))
        for name, value in fields.items()
    ])


def _request_body(body: Any) -> Any:
    if isinstance(body, str):
        return body.encode("utf-8")  # the encoding requests counted for Content-Length
    if body is None or isinstance(body, _BYTES_LIKE) or hasattr(body, "read"):
        return body
    return _encoded(body)


def _timed_body(body: Any, timer: Optional[PhaseTimer]) -> Any:
    """``body``, with each piece handed to roundtrip restarting the write clock."""
    if body is None or timer is None or timer.limits[WRITE] is None:
        return body
    if isinstance(body, _BYTES_LIKE):
        return TimedFile(io.BytesIO(body), timer) if len(body) > _SMALL_BODY else body
    if hasattr(body, "read"):
        return TimedFile(body, timer)
    return timed_chunks(body, timer)


def _replayable(body: Any) -> bool:
    return body is None or isinstance(body, _BYTES_LIKE)


def _encoded(chunks: Iterable[Any]) -> Iterator[Any]:
    # urllib3 sends str chunks of a chunked body as UTF-8.
    for chunk in chunks:
        yield chunk.encode("utf-8") if isinstance(chunk, str) else chunk


def _ssl_context(verify: Any, cert: Any) -> ssl.SSLContext:
    """An SSLContext for requests' ``verify`` and ``cert``, checked as ``HTTPAdapter.cert_verify``."""
    if verify:
        location = extract_zipped_paths(DEFAULT_CA_BUNDLE_PATH) if verify is True else verify  # type: ignore[no-untyped-call]  # requests.utils has no annotations
        if not location or not os.path.exists(location):
            raise OSError(f"Could not find a suitable TLS CA certificate bundle, invalid path: {location}")
        if os.path.isdir(location):
            context = ssl.create_default_context(capath=location)
        else:
            context = ssl.create_default_context(cafile=location)
    else:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert:
        cert_file, key_file = (cert, None) if isinstance(cert, str) else cert
        if cert_file and not os.path.exists(cert_file):
            raise OSError(f"Could not find the TLS certificate file, invalid path: {cert_file}")
        if key_file and not os.path.exists(key_file):
            raise OSError(f"Could not find the TLS key file, invalid path: {key_file}")
        context.load_cert_chain(cert_file, key_file)
    return context


def _retry_reason(exc: roundtrip.Error, timer: Optional[PhaseTimer]) -> Optional[Exception]:
    """The urllib3 error ``Retry.increment`` counts for ``exc`` (connect or read), or None.
    ``Retry`` decides with it as for urllib3: connect errors from the ``connect`` budget, read
    errors from ``read`` and only for methods it deems idempotent."""
    phase = timeout_phase(exc, timer)
    if phase in (POOL, CONNECT):
        return ConnectTimeoutError(str(exc))
    if phase is not None:
        return ReadTimeoutError(None, "", str(exc))  # type: ignore[arg-type]
    if isinstance(exc, roundtrip.ConnectError):
        return NewConnectionError(None, str(exc))  # type: ignore[arg-type]
    if isinstance(exc, (roundtrip.ServerDisconnected, roundtrip.ProtocolError)):
        return URLLib3ProtocolError(str(exc))
    return None


def _requests_error(exc: roundtrip.Error, timer: Optional[PhaseTimer], request: requests.PreparedRequest,
                    proxy: Optional[str]) -> Optional[Exception]:
    """The requests exception for a roundtrip error (``None``: raise it as it is). Its first
    argument is an error whose message says what happened; ``exc`` is kept as the cause."""
    phase = timeout_phase(exc, timer)
    reason: Exception = exc
    if phase is not None:
        host = urlsplit(request.url or "").hostname
        if phase in (POOL, CONNECT):
            cls: Any = rexc.ConnectTimeout
            limit = f" (connect timeout={timer.limits[phase]})" if timer is not None and timer.limits[phase] is not None else ""
            reason = _like(exc, f"Connection to {host} timed out.{limit}", _timeout_class(exc))
        else:
            cls = rexc.ReadTimeout
            what = "waiting for the response" if phase == READ else "sending the request"
            limit = f" (read timeout={timer.limits[phase]})" if timer is not None and timer.limits[phase] is not None else ""
            reason = _like(exc, f"Read timed out{limit}: no answer from {host} while {what}", _timeout_class(exc))
    elif isinstance(exc, roundtrip.TLSError):
        cls = rexc.SSLError
    elif isinstance(exc, roundtrip.ConnectError) and proxy is not None and not proxy.lower().startswith("socks"):
        # urllib3 reports any failure to reach an http(s) proxy as a proxy error.
        cls = rexc.ProxyError
        reason = _like(exc, f"Unable to connect to proxy {_without_credentials(proxy)}: {exc}")
    elif isinstance(exc, roundtrip.ProtocolError) and str(exc) == _CLOSED_IN_HEAD:
        # http.client takes a head cut off by the end of the stream as a whole head, and the
        # body that should follow is then missing: requests reports a broken body.
        cls = rexc.ChunkedEncodingError
        reason = _like(exc, f"Response ended prematurely: {exc}")
    elif isinstance(exc, roundtrip.ProtocolError) and str(exc) == _BAD_CONTENT_LENGTH:
        cls = rexc.InvalidHeader  # urllib3: Content-Length contained multiple unmatching values
    elif isinstance(exc, roundtrip.InvalidRequest):
        # By what was wrong, never by the wording of the message.
        mapped = _INVALID_REQUEST.get(exc.part)
        if mapped is None:
            return None  # method or body: a ValueError, as http.client raises
        cls = mapped
    elif isinstance(exc, roundtrip.TransportClosed):
        return RuntimeError(f"cannot send a request: {exc}")
    else:
        cls = rexc.ConnectionError
    error: Exception = cls(reason, request=request)
    return error


def _like(exc: roundtrip.Error, message: str, cls: Any = None) -> roundtrip.Error:
    """An error of ``exc``'s class (or ``cls``) with a clearer message and the same facts."""
    error = (cls or type(exc))(message)
    error.conn_reused, error.bytes_written = exc.conn_reused, exc.bytes_written
    error.__cause__ = exc
    return error


def _timeout_class(exc: roundtrip.Error) -> Any:
    # A phase limit surfaces from roundtrip as Cancelled (the watchdog cancelled the request);
    # what the caller should see is a timeout.
    return type(exc) if isinstance(exc, roundtrip.Timeout) else roundtrip.Timeout


def _without_credentials(proxy: str) -> str:
    parsed = parse_url(proxy)
    return parsed._replace(auth=None).url
