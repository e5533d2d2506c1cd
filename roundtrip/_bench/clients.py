"""The blocking clients that need nothing beyond the standard library, roundtrip and its adapter
targets: the raw-socket floor, roundtrip (compiled and pure), ``http.client``, urllib3,
requests, httpx, httpx and requests over roundtrip, and the do-nothing adapters that show what
httpx and requests cost on their own. Each is written the way its documentation says to use it.
The other libraries are in ``peers.py``, the asyncio clients in ``aclients.py``.
"""

from __future__ import annotations

import io
import socket
from typing import Any, Callable, Optional

from .base import Call, Client

__all__ = (
    "RawClient",
    "RoundtripClient",
    "HTTPClientClient",
    "Urllib3Client",
    "RequestsClient",
    "RequestsRoundtripClient",
    "HTTPXClient",
    "HTTPXRoundtripClient",
    "HTTPXNullClient",
    "RequestsNullClient",
    "Replies",
)


# -- the raw-socket floor ---------------------------------------------------------------------


class RawClient(Client):
    """The floor: one blocking socket, the request bytes built once, and the least parsing that
    can still check a response (status, Content-Length, exact body length)."""

    shared_across_threads = False  # a socket carries one exchange at a time: one per thread

    def __init__(self, host: str, port: int, **options: Any) -> None:
        super().__init__(host, port, **options)
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def version(self) -> str:
        return "socket"

    def bind(self, method: str, path: str, body: Optional[bytes]) -> Call:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if body is not None:
            head += f"Content-Length: {len(body)}\r\n"
        request = (head + "\r\n").encode("latin-1") + (body or b"")
        sock = self.sock
        sendall, recv, recv_into = sock.sendall, sock.recv, sock.recv_into

        def call() -> "tuple[int, int]":
            sendall(request)
            buf = recv(65536)
            end = buf.find(b"\r\n\r\n")
            while end < 0:
                more = recv(65536)
                if not more:
                    raise ConnectionError("server closed the connection")
                buf += more
                end = buf.find(b"\r\n\r\n")
            at = buf.find(b"\r\nContent-Length: ", 0, end)
            if at < 0:
                at = buf[:end].lower().find(b"\r\ncontent-length: ")
            length = int(buf[at + 18 : buf.find(b"\r\n", at + 18)])
            have = len(buf) - end - 4
            if have == length:
                return int(buf[9:12]), len(buf[end + 4 :])  # the body, as bytes
            if have < length:
                body_buf = bytearray(length)
                body_buf[:have] = memoryview(buf)[end + 4 :]
                view = memoryview(body_buf)
                while have < length:
                    got = recv_into(view[have:])
                    if not got:
                        raise ConnectionError("server closed the connection")
                    have += got
            return int(buf[9:12]), have

        return call

    def close(self) -> None:
        self.sock.close()


# -- roundtrip --------------------------------------------------------------------------------


class RoundtripClient(Client):
    """One shared ``roundtrip.Transport``, used as its documentation shows."""

    def __init__(self, host: str, port: int, **options: Any) -> None:
        super().__init__(host, port, **options)
        import roundtrip

        expected = options.get("impl")
        if expected and roundtrip.IMPLEMENTATION != expected:
            raise RuntimeError(f"roundtrip implementation is {roundtrip.IMPLEMENTATION!r}, expected {expected!r}")
        self.roundtrip = roundtrip
        self.transport = roundtrip.Transport()

    def version(self) -> str:
        return f"{self.roundtrip.__version__} ({self.roundtrip.IMPLEMENTATION})"

    def bind(self, method: str, path: str, body: Optional[bytes]) -> Call:
        url = self.base + path
        round_trip = self.transport.round_trip
        Request = self.roundtrip.Request

        def call() -> "tuple[int, int]":
            with round_trip(Request(method, url, body=body)) as resp:
                data = resp.read()
            return resp.status_code, len(data)

        return call

    def close(self) -> None:
        self.transport.close()


# -- peers ------------------------------------------------------------------------------------


class HTTPClientClient(Client):
    """The standard library's ``http.client.HTTPConnection`` (one connection per thread)."""

    shared_across_threads = False

    def __init__(self, host: str, port: int, **options: Any) -> None:
        super().__init__(host, port, **options)
        import http.client

        self.conn = http.client.HTTPConnection(host, port)

    def version(self) -> str:
        import platform

        return f"stdlib {platform.python_version()}"

    def bind(self, method: str, path: str, body: Optional[bytes]) -> Call:
        conn = self.conn

        def call() -> "tuple[int, int]":
            conn.request(method, path, body=body)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, len(data)

        return call

    def close(self) -> None:
        self.conn.close()


class Urllib3Client(Client):
    """``urllib3.PoolManager`` (``maxsize=8`` so eight threads keep their connections)."""

    def __init__(self, host: str, port: int, **options: Any) -> None:
        super().__init__(host, port, **options)
        import urllib3

        self.urllib3 = urllib3
        self.pool = urllib3.PoolManager(maxsize=8)

    def version(self) -> str:
        return self.urllib3.__version__  # type: ignore[attr-defined]  # set by urllib3, not listed in its __all__

    def bind(self, method: str, path: str, body: Optional[bytes]) -> Call:
        url = self.base + path
        request = self.pool.request

        def call() -> "tuple[int, int]":
            resp = request(method, url, body=body)
            return resp.status, len(resp.data)

        return call

    def close(self) -> None:
        self.pool.clear()


class RequestsClient(Client):
    """``requests.Session`` with an ``HTTPAdapter(pool_maxsize=8)``."""

    adapter_factory: Optional[Callable[[], Any]] = None

    def __init__(self, host: str, port: int, **options: Any) -> None:
        super().__init__(host, port, **options)
        import requests

        self.requests = requests
        self.session = requests.Session()
        self.session.mount("http://", self._adapter())

    def _adapter(self) -> Any:
        return self.requests.adapters.HTTPAdapter(pool_maxsize=8)

    def version(self) -> str:
        return self.requests.__version__

    def bind(self, method: str, path: str, body: Optional[bytes]) -> Call:
        url = self.base + path
        request = self.session.request

        def call() -> "tuple[int, int]":
            resp = request(method, url, data=body)
            return resp.status_code, len(resp.content)

        return call

    def close(self) -> None:
        self.session.close()


class RequestsRoundtripClient(RequestsClient):
    """``requests`` with ``roundtrip.adapters.RequestsAdapter`` mounted for http://."""

    def _adapter(self) -> Any:
        from roundtrip import adapters

        return adapters.RequestsAdapter()

    def version(self) -> str:
        import roundtrip

        return f"{self.requests.__version__} + roundtrip {roundtrip.__version__} ({roundtrip.IMPLEMENTATION})"


class HTTPXClient(Client):
    """``httpx.Client`` (thread-safe, shared)."""

    def __init__(self, host: str, port: int, **options: Any) -> None:
        super().__init__(host, port, **options)
        import httpx

        self.httpx = httpx
        self.client = httpx.Client(**self._client_options())

    def _client_options(self) -> dict[str, Any]:
        return {}

    def version(self) -> str:
        return self.httpx.__version__

    def bind(self, method: str, path: str, body: Optional[bytes]) -> Call:
        url = self.base + path
        request = self.client.request

        def call() -> "tuple[int, int]":
            resp = request(method, url, content=body)
            return resp.status_code, len(resp.content)

        return call

    def close(self) -> None:
        self.client.close()


class HTTPXRoundtripClient(HTTPXClient):
    """``httpx.Client(transport=roundtrip.adapters.HTTPXTransport())``."""

    def _client_options(self) -> dict[str, Any]:
        from roundtrip import adapters

        return {"transport": adapters.HTTPXTransport()}

    def version(self) -> str:
        import roundtrip

        return f"{self.httpx.__version__} + roundtrip {roundtrip.__version__} ({roundtrip.IMPLEMENTATION})"


# -- the adapters' own cost ---------------------------------------------------------------------


def _recorded_response(host: str, port: int, method: str, path: str, body: Optional[bytes]) -> "tuple[int, str, list[tuple[str, str]], bytes]":
    """One real exchange with the bench server: (status, reason, header fields, body)."""
    import http.client

    conn = http.client.HTTPConnection(host, port)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.reason, resp.getheaders(), data
    finally:
        conn.close()


class Replies:
    """The server's answer to each (method, path), recorded once, for the do-nothing clients
(the blocking ones here, httpx's asyncio one in ``aclients.py``)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.recorded: dict[tuple[str, str], Any] = {}

    def get(self, method: str, path: str, body: Optional[bytes]) -> Any:
        key = (method, path)
        if key not in self.recorded:
            self.recorded[key] = _recorded_response(self.host, self.port, method, path, body)
        return self.recorded[key]


class HTTPXNullClient(HTTPXClient):
    """``httpx.Client`` over a transport that sends nothing: it answers each request with the
    server's recorded response (status, headers, body), so what is left is httpx's own cost."""

    def _client_options(self) -> dict[str, Any]:
        import httpx

        replies = Replies(self.host, self.port)

        class NullTransport(httpx.BaseTransport):
            def handle_request(self, request: Any) -> Any:
                path = request.url.raw_path.decode("ascii")
                content = request.read() if request.method == "POST" else None
                status, reason, headers, data = replies.get(request.method, path, content)
                return httpx.Response(
                    status,
                    headers=headers,
                    stream=httpx.ByteStream(data),
                    extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason.encode("latin-1")},
                )

        return {"transport": NullTransport()}

    def version(self) -> str:
        return f"{self.httpx.__version__}, do-nothing transport"


class RequestsNullClient(RequestsClient):
    """``requests.Session`` with an adapter that sends nothing: it answers each request with
    the server's recorded response, so what is left is requests' own cost."""

    def _adapter(self) -> Any:
        requests = self.requests
        from requests.structures import CaseInsensitiveDict
        from requests.utils import get_encoding_from_headers

        replies = Replies(self.host, self.port)

        class NullAdapter(requests.adapters.BaseAdapter):  # type: ignore[name-defined, misc]  # requests is a run-time local
            def send(self, request: Any, stream: bool = False, timeout: Any = None, verify: Any = True,
                     cert: Any = None, proxies: Any = None) -> Any:
                path = request.path_url
                status, reason, headers, data = replies.get(request.method, path, request.body)
                response = requests.Response()
                response.status_code = status
                response.headers = CaseInsensitiveDict(headers)
                response.encoding = get_encoding_from_headers(response.headers)
                response.raw = io.BytesIO(data)
                response.reason = reason
                response.url = request.url
                response.request = request
                response.connection = self
                return response

            def close(self) -> None:
                pass

        return NullAdapter()

    def version(self) -> str:
        return f"{self.requests.__version__}, do-nothing adapter"

