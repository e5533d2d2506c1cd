"""One class per benchmarked client, each written the way its documentation says to use it.

A client's ``bind(method, path, body)`` returns a function that sends one request, reads the
whole body as bytes, and returns ``(status, body length)``; ``Client.measure`` drives it and
checks every response. Each client runs in its own process (see ``worker.py``), so a library
only has to be importable there.

``REGISTRY`` lists them in table order with what they need; ``available()`` says which can run
here and why the others cannot, without importing them.
"""

from __future__ import annotations

import importlib.util
import io
import resource
import socket
import threading
import time
from typing import Any, Callable, NamedTuple, Optional

from .scenarios import Scenario

__all__ = ("Client", "CheckFailed", "Measurement", "ClientInfo", "REGISTRY", "available", "load")

Call = Callable[[], "tuple[int, int]"]


class CheckFailed(Exception):
    """A response was not 200 with the exact expected body length."""


class Measurement(NamedTuple):
    requests: int  # measured requests (all checked)
    cpu_s: float  # this process's user + system CPU over the measured requests (all threads)
    wall_s: float
    checked: int  # responses checked, warm-up included


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


def _drive(call: Call, expect: int, batch: int, deadline: float, minimum: int) -> int:
    """Send requests in batches until ``deadline`` has passed and at least ``minimum`` were
    sent; check each response. Returns how many were sent."""
    perf_counter = time.perf_counter
    sent = 0
    while True:
        for _ in range(batch):
            status, length = call()
            if status != 200 or length != expect:
                raise CheckFailed(
                    f"response {sent + 1}: status {status} with a {length}-byte body (expected 200 and {expect} bytes)"
                )
            sent += 1
        if sent >= minimum and perf_counter() >= deadline:
            return sent


class Client:
    """A client under test; subclasses implement ``bind`` (and may override ``measure``)."""

    #: False when one client object cannot be used by several threads at once: the threads
    #: scenario then gives each thread its own (noted in the output).
    shared_across_threads = True

    def __init__(self, host: str, port: int, **options: Any) -> None:
        self.host = host
        self.port = port
        self.base = f"http://{host}:{port}"
        self.options = options

    def version(self) -> str:
        return ""

    def bind(self, method: str, path: str, body: Optional[bytes]) -> Call:
        raise NotImplementedError

    def fresh(self) -> "Client":
        """Another client like this one (for threads that cannot share it)."""
        return type(self)(self.host, self.port, **self.options)

    def close(self) -> None:
        pass

    def measure(self, scenario: Scenario, duration: float, warmup: float, minimum: int) -> Measurement:
        """Warm up, then run ``scenario`` for ``duration`` seconds (and at least ``minimum``
        requests), measuring this process's CPU time and the wall time."""
        if scenario.threads > 1:
            return self._measure_threads(scenario, duration, warmup, minimum)
        call = self.bind(scenario.method, scenario.path, scenario.body)
        perf_counter = time.perf_counter
        warm = _drive(call, scenario.expect, scenario.batch, perf_counter() + warmup, 1)
        cpu0, t0 = _cpu(), perf_counter()
        sent = _drive(call, scenario.expect, scenario.batch, t0 + duration, minimum)
        t1, cpu1 = perf_counter(), _cpu()
        return Measurement(sent, cpu1 - cpu0, t1 - t0, sent + warm)

    def _measure_threads(self, scenario: Scenario, duration: float, warmup: float, minimum: int) -> Measurement:
        count = scenario.threads
        clients = [self] * count if self.shared_across_threads else [self] + [self.fresh() for _ in range(count - 1)]
        calls = [client.bind(scenario.method, scenario.path, scenario.body) for client in clients]
        start = threading.Barrier(count + 1)
        deadline = [0.0]
        sent = [0] * count
        warm = [0] * count
        errors: list[BaseException] = []
        per_thread = max(1, minimum // count)

        def worker(index: int) -> None:
            call = calls[index]
            try:
                # Warm-up runs in parallel, so every thread holds a connection before the start.
                warm[index] = _drive(call, scenario.expect, scenario.batch, time.perf_counter() + warmup, 1)
                start.wait()
                sent[index] = _drive(call, scenario.expect, scenario.batch, deadline[0], per_thread)
            except threading.BrokenBarrierError:
                pass
            except BaseException as exc:
                errors.append(exc)
                start.abort()

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(count)]
        for thread in threads:
            thread.start()
        try:
            start.wait()
        except threading.BrokenBarrierError:
            pass
        # Measure from the release of the barrier to the last thread's end.
        cpu0, t0 = _cpu(), time.perf_counter()
        deadline[0] = t0 + duration
        for thread in threads:
            thread.join()
        t1, cpu1 = time.perf_counter(), _cpu()
        for client in clients[1:]:
            client.close()
        if errors:
            raise errors[0]
        return Measurement(sum(sent), cpu1 - cpu0, t1 - t0, sum(sent) + sum(warm))


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


class _Replies:
    """The server's answer to each (method, path), recorded once, for the do-nothing clients."""

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

        replies = _Replies(self.host, self.port)

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

        replies = _Replies(self.host, self.port)

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


class PycurlClient(Client):
    """One ``pycurl.Curl`` handle (libcurl keeps the connection); a handle per thread, since
    a handle must not be used by two threads at once."""

    shared_across_threads = False

    def __init__(self, host: str, port: int, **options: Any) -> None:
        super().__init__(host, port, **options)
        import pycurl

        self.pycurl = pycurl
        self.curl = pycurl.Curl()

    def version(self) -> str:
        version: str = self.pycurl.version.split()[0]
        return version

    def bind(self, method: str, path: str, body: Optional[bytes]) -> Call:
        pycurl = self.pycurl
        curl = self.curl
        curl.reset()  # keeps the connection cache
        curl.setopt(pycurl.URL, self.base + path)
        curl.setopt(pycurl.NOSIGNAL, 1)
        if body is not None:
            curl.setopt(pycurl.POSTFIELDS, body)
            curl.setopt(pycurl.HTTPHEADER, ["Expect:"])  # no 100-continue round trip
            if method != "POST":
                curl.setopt(pycurl.CUSTOMREQUEST, method)
        elif method != "GET":
            curl.setopt(pycurl.CUSTOMREQUEST, method)
        WRITEDATA, RESPONSE_CODE = pycurl.WRITEDATA, pycurl.RESPONSE_CODE
        setopt, perform, getinfo = curl.setopt, curl.perform, curl.getinfo
        BytesIO = io.BytesIO

        def call() -> "tuple[int, int]":
            out = BytesIO()
            setopt(WRITEDATA, out)
            perform()
            return getinfo(RESPONSE_CODE), len(out.getvalue())

        return call

    def close(self) -> None:
        self.curl.close()


class AiohttpClient(Client):
    """``aiohttp.ClientSession`` on one event loop; the threads scenario runs 8 concurrent
    tasks on that loop instead of 8 threads (the way aiohttp is meant to be used)."""

    def __init__(self, host: str, port: int, **options: Any) -> None:
        super().__init__(host, port, **options)
        import asyncio

        import aiohttp

        self.aiohttp = aiohttp
        self.loop = asyncio.new_event_loop()

        async def make() -> Any:
            return aiohttp.ClientSession()

        self.session = self.loop.run_until_complete(make())

    def version(self) -> str:
        version: str = self.aiohttp.__version__
        return version

    def _bind_async(self, method: str, path: str, body: Optional[bytes]) -> Callable[[], Any]:
        url = self.base + path
        request = self.session.request

        async def call() -> "tuple[int, int]":
            async with request(method, url, data=body) as resp:
                data = await resp.read()
            return resp.status, len(data)

        return call

    def measure(self, scenario: Scenario, duration: float, warmup: float, minimum: int) -> Measurement:
        import asyncio

        call = self._bind_async(scenario.method, scenario.path, scenario.body)
        expect, batch, tasks = scenario.expect, scenario.batch, scenario.threads
        perf_counter = time.perf_counter

        async def drive(deadline: float, least: int) -> int:
            sent = 0
            while True:
                for _ in range(batch):
                    status, length = await call()
                    if status != 200 or length != expect:
                        raise CheckFailed(
                            f"response {sent + 1}: status {status} with a {length}-byte body (expected 200 and {expect} bytes)"
                        )
                    sent += 1
                if sent >= least and perf_counter() >= deadline:
                    return sent

        async def run() -> Measurement:
            warm = await asyncio.gather(*(drive(perf_counter() + warmup, 1) for _ in range(tasks)))
            cpu0, t0 = _cpu(), perf_counter()
            sent = await asyncio.gather(*(drive(t0 + duration, max(1, minimum // tasks)) for _ in range(tasks)))
            t1, cpu1 = perf_counter(), _cpu()
            return Measurement(sum(sent), cpu1 - cpu0, t1 - t0, sum(sent) + sum(warm))

        return self.loop.run_until_complete(run())

    def close(self) -> None:
        self.loop.run_until_complete(self.session.close())
        self.loop.close()


# -- the registry -----------------------------------------------------------------------------


class ClientInfo(NamedTuple):
    name: str
    cls: str  # class name in this module
    needs: tuple[str, ...]  # modules that must be importable
    env: dict[str, Optional[str]]  # environment for its process (None = unset)
    options: dict[str, Any]
    note: str  # shown under the table


REGISTRY: tuple[ClientInfo, ...] = (
    ClientInfo("raw", "RawClient", (), {}, {}, "raw socket floor: prebuilt request bytes, minimal parse; one socket per thread"),
    ClientInfo("roundtrip-c", "RoundtripClient", ("roundtrip._speedups_c",), {"ROUNDTRIP_NO_EXTENSIONS": None}, {"impl": "c"}, "roundtrip, compiled hot paths"),
    ClientInfo("roundtrip-py", "RoundtripClient", (), {"ROUNDTRIP_NO_EXTENSIONS": "1"}, {"impl": "py"}, "roundtrip, pure Python (ROUNDTRIP_NO_EXTENSIONS=1)"),
    ClientInfo("pycurl", "PycurlClient", ("pycurl",), {}, {}, "pycurl: one Curl handle per thread"),
    ClientInfo("http.client", "HTTPClientClient", (), {}, {}, "http.client: one HTTPConnection per thread"),
    ClientInfo("urllib3", "Urllib3Client", ("urllib3",), {}, {}, "urllib3.PoolManager(maxsize=8)"),
    ClientInfo("requests", "RequestsClient", ("requests",), {}, {}, "requests.Session, HTTPAdapter(pool_maxsize=8)"),
    ClientInfo("httpx", "HTTPXClient", ("httpx",), {}, {}, "httpx.Client"),
    ClientInfo("aiohttp", "AiohttpClient", ("aiohttp",), {}, {}, "aiohttp.ClientSession; 8 tasks on one loop instead of 8 threads"),
    ClientInfo("httpx+roundtrip", "HTTPXRoundtripClient", ("httpx", "roundtrip.adapters"), {"ROUNDTRIP_NO_EXTENSIONS": None}, {}, "httpx.Client over roundtrip.adapters.HTTPXTransport"),
    ClientInfo("requests+roundtrip", "RequestsRoundtripClient", ("requests", "roundtrip.adapters"), {"ROUNDTRIP_NO_EXTENSIONS": None}, {}, "requests.Session with roundtrip.adapters.RequestsAdapter"),
    ClientInfo("httpx+nothing", "HTTPXNullClient", ("httpx",), {}, {}, "httpx.Client over a do-nothing transport (replays a recorded response): httpx's own cost"),
    ClientInfo("requests+nothing", "RequestsNullClient", ("requests",), {}, {}, "requests.Session with a do-nothing adapter (replays a recorded response): requests' own cost"),
)

BY_NAME = {info.name: info for info in REGISTRY}


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def available(info: ClientInfo) -> Optional[str]:
    """None when ``info`` can run here, else why not."""
    for module in info.needs:
        if not _importable(module):
            if module == "roundtrip._speedups_c":
                return "compiled extension not built"
            return f"{module} is not installed"
    return None


def load(name: str, host: str, port: int) -> Client:
    """Build the client called ``name`` (in the worker process)."""
    info = BY_NAME[name]
    cls = globals()[info.cls]
    client: Client = cls(host, port, **info.options)
    return client
