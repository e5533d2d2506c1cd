"""roundtrip: a fast, careful HTTP/1.1 client transport with the semantics of Go's
``net/http.Transport.RoundTrip``.

    t = roundtrip.Transport()
    with t.round_trip(roundtrip.Request("GET", "http://127.0.0.1:8080/")) as resp:
        data = resp.read()
"""

from ._async_response import AsyncResponse
from ._async_transport import AsyncTransport
from ._context import Context
from ._errors import (
    Cancelled,
    ConnectError,
    ConnectTimeout,
    DeadlineExceeded,
    Error,
    HeaderTooLarge,
    IncompleteBody,
    InvalidRequest,
    ProtocolError,
    ProxyError,
    ResponseClosed,
    ResponseHeaderTimeout,
    ServerDisconnected,
    SkipAltProtocol,
    Timeout,
    TLSError,
    TLSHandshakeTimeout,
    TransportClosed,
    UnrewindableBody,
)
from ._headers import Headers
from ._models import Request, Response
from ._proxy import proxy_from_environment, proxy_url
from ._speedups import IMPLEMENTATION
from ._trace import Trace
from ._transport import RoundTripper, Transport
from ._version import __version__ as __version__

__all__ = (
    "IMPLEMENTATION",
    "AsyncResponse",
    "AsyncTransport",
    "Cancelled",
    "ConnectError",
    "ConnectTimeout",
    "Context",
    "DeadlineExceeded",
    "Error",
    "HeaderTooLarge",
    "Headers",
    "IncompleteBody",
    "InvalidRequest",
    "ProtocolError",
    "ProxyError",
    "Request",
    "Response",
    "ResponseClosed",
    "ResponseHeaderTimeout",
    "RoundTripper",
    "ServerDisconnected",
    "SkipAltProtocol",
    "TLSError",
    "TLSHandshakeTimeout",
    "Timeout",
    "Trace",
    "Transport",
    "TransportClosed",
    "UnrewindableBody",
    "proxy_from_environment",
    "proxy_url",
)
