"""Request preparation, with no I/O: validation in Go's order, the head as it goes on the wire
(Go's ``Request.write`` and ``transferWriter``), the body's framing, the route, and whether
the request may be replayed (Go's ``rewindBody`` and ``isReplayable``)."""

from __future__ import annotations

import inspect
import json
from typing import TYPE_CHECKING, Any, Callable, Optional

from ._request_body import BYTES_LIKE, OutgoingBody, plan_body
from ._errors import InvalidRequest, UnrewindableBody
from ._messages import invalid_method
from ._models import BodyType, Request
from ._options import Options
from ._proxy import EnvironmentProxy, FixedProxy, ProxyChooser
from ._route import Route, route_for
from ._trace import Trace
from ._urls import split_scheme, split_target
from ._version import USER_AGENT

if TYPE_CHECKING:
    from ._context import Context
    from ._events import Parser
    from ._speedups import Speedups

__all__ = ("BodyMark", "PreparedRequest", "PrepareCache", "check_fields", "prepare", "prepare_cache", "rewound_body", "HTTP_SCHEMES")

HTTP_SCHEMES = ("http", "https")
# RFC 9110 §9.2.2: methods whose requests may be replayed (Go's isReplayable).
_IDEMPOTENT = frozenset(("GET", "HEAD", "OPTIONS", "TRACE"))
_COMMON_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"))
_FRAMING = frozenset(("content-length", "transfer-encoding"))
_NOTED = frozenset(("user-agent", "accept-encoding", "range", "expect", "connection", "idempotency-key", "x-idempotency-key"))
# (method, scheme, rest of the URL, body length: -1 without a body, None for chunked) ->
# (route, head, gzip_requested) of a request without header fields.
PrepareCache = dict[tuple[str, str, str, Optional[int]], tuple[Route, bytes, bool]]
_CACHE_LIMIT = 256  # entries; a cache that fills up starts again


class PreparedRequest:
    """A validated request, ready for the wire; shared by its attempts."""

    __slots__ = (
        "request",
        "method",
        "head",
        "body",
        "context",
        "trace",
        "route",
        "options",
        "expect_continue",
        "gzip_requested",
        "replayable",
        "rewindable",
        "close_after",
        "wants_close",
        "parser_class",
        "declared_length",
    )

    request: Request
    method: str
    head: bytes
    body: Optional[OutgoingBody]
    context: Optional[Context]
    trace: Optional[Trace]
    route: Route
    options: Options
    expect_continue: bool  # wait for 100 before the body (RFC 9110 §10.1.1)
    gzip_requested: bool  # the transport asked for gzip and decodes it (Go's DisableCompression)
    replayable: bool  # may go again after it was written (Go's isReplayable)
    rewindable: bool  # its body can be sent again (Go's rewindBody)
    close_after: bool  # the connection is not reused after this attempt
    wants_close: bool  # the caller or the Transport asked for Connection: close
    parser_class: Callable[[str, int], Parser]
    declared_length: Optional[int]  # the caller's Content-Length, for bodies of unknown size

    def new_parser(self) -> Parser:
        return self.parser_class(self.method, self.options.max_response_header_bytes)

    def rewind(self) -> None:
        """Make the request ready for another attempt: a body from a file or an iterable is
        taken again from ``get_body`` (``UnrewindableBody`` if it cannot be)."""
        self.close_after = self.wants_close
        if self.body is None or self.body.source is None:
            return  # no body, or one held in memory: it goes again as it is
        self.body = plan_body(self.method, rewound_body(self.request), self.declared_length)


def check_fields(request: Request, impl: Speedups) -> tuple[str, str]:
    """Go's first checks, before a registered round tripper sees the request: the URL is a
    str, and an http(s) request's header fields are valid. Returns ``(scheme, rest)``."""
    url = request.url
    if not isinstance(url, str):
        raise InvalidRequest(f"request URL must be str, not {type(url).__name__}", "url")
    scheme, rest = split_scheme(url)
    if scheme in HTTP_SCHEMES:
        fields = request.headers._items
        if fields:  # none is the usual case, and always valid
            impl.validate_header_fields(fields)
    return scheme, rest


def rewound_body(request: Request) -> BodyType:
    """A fresh copy of the request's body for another attempt (Go's ``rewindBody``)."""
    body = request.body
    if body is None or isinstance(body, BYTES_LIKE):
        return body
    if request.get_body is None:
        raise UnrewindableBody("request body cannot be rewound: set get_body")
    try:
        return request.get_body()
    except Exception as exc:
        raise UnrewindableBody(f"get_body failed: {exc}") from exc


def prepare_cache(proxy: Optional[ProxyChooser]) -> Optional[PrepareCache]:
    """A Transport's ``PrepareCache``, or None when its proxy chooser is one of the caller's
    own: that one is asked about every request, so no request can be prepared from memory."""
    if proxy is None or type(proxy) in (FixedProxy, EnvironmentProxy):
        return {}
    return None


def prepare(
    request: Request,
    scheme: str,
    rest: str,
    body: BodyType,
    options: Options,
    impl: Speedups,
    proxy: Optional[ProxyChooser],
    cache: Optional[PrepareCache] = None,
) -> PreparedRequest:
    """The rest of Go's validation (scheme, method, URL) and everything the wire needs.

    ``body`` is the request's body, or a rewound copy when a registered round tripper used it.
    ``cache`` (``prepare_cache``) remembers the route and the head of requests without header
    fields, for the options and the proxy chooser it is always given with.
    Raises ``InvalidRequest`` (no I/O has happened), ``UnrewindableBody`` or ``ProxyError``.
    """
    if scheme not in HTTP_SCHEMES:
        raise InvalidRequest(f"unsupported protocol scheme {json.dumps(scheme)}", "scheme")
    method = request.method
    if not isinstance(method, str):
        raise invalid_method(str(method))
    if not method:
        method = "GET"
    elif method not in _COMMON_METHODS:
        impl.validate_method(method)

    prepared = PreparedRequest()
    prepared.request = request
    prepared.method = method
    prepared.context = request.context
    prepared.trace = request.trace
    prepared.options = options
    prepared.parser_class = impl.ResponseParser

    user_agent = accept_encoding = expect_continue = wants_close = idempotency_key = False
    declared_length: Optional[int] = None
    fields = request.headers._items
    known = cache_key = None
    if cache is not None and not fields and (body is None or isinstance(body, BYTES_LIKE)):
        # The same method, URL and body length as an earlier request without header fields:
        # the same route and head (everything else they depend on is the Transport's own).
        outgoing = plan_body(method, body, None)
        cache_key = (method, scheme, rest, -1 if outgoing is None else outgoing.length)
        known = cache.get(cache_key)
    if known is not None:
        route, head, gzip_requested = known
    else:
        target = split_target(scheme, rest)
        route = route_for(proxy, request, target)
        host = target.authority
        wire: list[tuple[str, str]] = []
        for name, value in fields:
            lowered = name.lower()
            if lowered == "host":
                host = value
                continue
            if lowered in _FRAMING:
                if lowered == "content-length" and value.strip().isdigit():
                    declared_length = int(value)
                continue  # the transport frames the body itself (Go's reqWriteExcludeHeader)
            if lowered in _NOTED:
                if lowered == "user-agent":
                    user_agent = True
                elif lowered in ("accept-encoding", "range"):
                    accept_encoding = True
                elif lowered == "expect":
                    expect_continue = expect_continue or value.strip().lower() == "100-continue"
                elif lowered == "connection":
                    wants_close = wants_close or "close" in value.lower()
                else:  # Idempotency-Key, X-Idempotency-Key
                    idempotency_key = True
                    if not value:
                        continue  # an empty key marks the request replayable and is not sent
            wire.append((name, value))

        if cache_key is None:
            outgoing = plan_body(method, body, declared_length)
        head_fields = [("Host", host)]
        if not user_agent:
            head_fields.append(("User-Agent", USER_AGENT))
        head_fields.extend(wire)
        if outgoing is not None:
            if outgoing.length is None:
                head_fields.append(("Transfer-Encoding", "chunked"))
            else:
                head_fields.append(("Content-Length", str(outgoing.length)))
        gzip_requested = not (options.disable_compression or accept_encoding or method == "HEAD")
        if gzip_requested:
            head_fields.append(("Accept-Encoding", "gzip"))
        if options.disable_keep_alives and not wants_close:
            head_fields.append(("Connection", "close"))
        path = target.path if not route.absolute_form else f"{target.scheme}://{target.authority}{target.path}"
        if route.proxy_headers:
            # Go's mutateHeaderFunc: the proxy's credentials replace the caller's.
            replaced = {name.lower() for name, _ in route.proxy_headers}
            head_fields = [field for field in head_fields if field[0].lower() not in replaced]
            head_fields.extend(route.proxy_headers)
        head = impl.encode_request_head(method, path, head_fields)
        if cache is not None and cache_key is not None and route.proxy is None:
            # A proxied route is made for each request (route_for); a direct one is shared.
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[cache_key] = (route, head, gzip_requested)
    prepared.route = route
    prepared.head = head
    prepared.body = outgoing
    prepared.declared_length = declared_length
    prepared.expect_continue = expect_continue and outgoing is not None and (outgoing.length is None or outgoing.length > 0)
    prepared.gzip_requested = gzip_requested
    prepared.wants_close = wants_close or options.disable_keep_alives
    prepared.close_after = prepared.wants_close
    # Go's rewindBody and isReplayable.
    prepared.rewindable = outgoing is None or (outgoing.data is not None and not len(outgoing.data)) or request.get_body is not None
    prepared.replayable = prepared.rewindable and (method in _IDEMPOTENT or idempotency_key)
    return prepared


class BodyMark:
    """Whether a request body was used while a registered round tripper had it (Go's
    ``readTrackingBody``, without wrapping the caller's body)."""

    __slots__ = ("body", "position")

    def __init__(self, body: Any) -> None:
        self.body = body
        self.position = None
        if hasattr(body, "read") and hasattr(body, "tell"):
            try:
                self.position = body.tell()
            except (OSError, ValueError):
                pass

    def touched(self) -> bool:
        body = self.body
        if body is None or isinstance(body, BYTES_LIKE):
            return False
        if hasattr(body, "read"):
            try:
                return self.position is None or body.tell() != self.position
            except (OSError, ValueError):
                return True
        if inspect.isgenerator(body):
            return inspect.getgeneratorstate(body) != inspect.GEN_CREATED
        if inspect.isasyncgen(body):
            return _asyncgen_started(body)
        if hasattr(body, "__aiter__"):
            return body.__aiter__() is body  # an async iterator may have been advanced
        return iter(body) is body  # an iterator may have been advanced; a container replays


def _asyncgen_started(agen: Any) -> bool:
    getstate = getattr(inspect, "getasyncgenstate", None)  # Python 3.12 and later
    if getstate is not None:
        return bool(getstate(agen) != inspect.AGEN_CREATED)  # type: ignore[attr-defined]
    frame = agen.ag_frame  # before the first step its f_lasti is -1 (3.10) or 0 (3.11)
    return frame is None or frame.f_lasti > 0
