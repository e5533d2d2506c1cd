"""The asyncio clients: the raw-protocol floor, roundtrip's ``AsyncTransport``, aiohttp,
``httpx.AsyncClient`` (alone, over roundtrip's adapter, and over a do-nothing transport that shows
httpx's own cost), and the async APIs of pyreqwest, rnet and curl_cffi. Each is built inside
the running loop (the worker picks the loop: asyncio's own or uvloop) and used in its fastest
documented way: one client for all tasks, a pool large enough for every task to keep its
connection, the whole body read.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any, Optional

from .base import AsyncCall, AsyncClient, library
from .scenarios import TASKS

__all__ = (
    "RawAsyncClient",
    "RoundtripAsyncClient",
    "AiohttpAsyncClient",
    "HTTPXAsyncClient",
    "HTTPXRoundtripAsyncClient",
    "HTTPXNullAsyncClient",
    "PyreqwestAsyncClient",
    "RnetAsyncClient",
    "CurlCffiAsyncClient",
)


# -- the floor ------------------------------------------------------------------------------------


class _FloorProtocol(asyncio.BufferedProtocol):
    """One connection of the floor: the loop reads straight into a buffer it owns, and the least
    parsing that can still check a response (status, Content-Length, exact body length)."""

    def __init__(self) -> None:
        self.buffer = bytearray(65536)
        self.used = 0
        self.head_end = -1
        self.total = -1  # head + body, once the head is in
        self.waiter: Optional["asyncio.Future[tuple[int, int]]"] = None
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        if len(self.buffer) - self.used < 16384:
            # A new buffer, not a resize: the loop may still hold a view of the old one.
            grown = bytearray(2 * len(self.buffer))
            grown[: self.used] = memoryview(self.buffer)[: self.used]
            self.buffer = grown
        return memoryview(self.buffer)[self.used :]

    def buffer_updated(self, nbytes: int) -> None:
        self.used += nbytes
        buffer = self.buffer
        if self.total < 0:
            end = buffer.find(b"\r\n\r\n", 0, self.used)
            if end < 0:
                return
            at = buffer.find(b"\r\nContent-Length: ", 0, end)
            if at < 0:
                at = buffer[:end].lower().find(b"\r\ncontent-length: ")
            self.head_end = end + 4
            self.total = self.head_end + int(buffer[at + 18 : buffer.find(b"\r\n", at + 18)])
        if self.used >= self.total:
            body = bytes(buffer[self.head_end : self.total])  # the body, as bytes, as a client returns it
            status = int(buffer[9:12])
            self.used, self.total = 0, -1
            waiter, self.waiter = self.waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result((status, len(body)))

    def connection_lost(self, exc: Optional[Exception]) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError("server closed the connection"))


class RawAsyncClient(AsyncClient):
    """The floor of one loop: a connection per task, the request bytes built once."""

    def __init__(self, host: str, port: int, **options: Any) -> None:
        super().__init__(host, port, **options)
        self.transports: list[Any] = []

    def version(self) -> str:
        return "asyncio.BufferedProtocol"

    async def bind(self, method: str, path: str, body: Optional[bytes]) -> AsyncCall:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if body is not None:
            head += f"Content-Length: {len(body)}\r\n"
        request = (head + "\r\n").encode("latin-1") + (body or b"")
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_connection(_FloorProtocol, self.host, self.port)
        self.transports.append(transport)
        write, create_future = transport.write, loop.create_future

        async def call() -> "tuple[int, int]":
            protocol.waiter = waiter = create_future()
            write(request)
            result: "tuple[int, int]" = await waiter
            return result

        return call

    async def aclose(self) -> None:
        for transport in self.transports:
            transport.close()
        await asyncio.sleep(0)  # let the loop run connection_lost


# -- roundtrip ------------------------------------------------------------------------------------


class RoundtripAsyncClient(AsyncClient):
    """One ``roundtrip.AsyncTransport`` shared by every task, idle pool sized for them all."""

    def __init__(self, host: str, port: int, **options: Any) -> None:
        super().__init__(host, port, **options)
        import roundtrip

        if not hasattr(roundtrip, "AsyncTransport"):
            raise ImportError("this roundtrip has no AsyncTransport")
        expected = options.get("impl")
        if expected and roundtrip.IMPLEMENTATION != expected:
            raise RuntimeError(f"roundtrip implementation is {roundtrip.IMPLEMENTATION!r}, expected {expected!r}")
        self.roundtrip: Any = roundtrip
        self.transport: Any = None

    def version(self) -> str:
        return f"{self.roundtrip.__version__} ({self.roundtrip.IMPLEMENTATION})"

    async def open(self) -> None:
        self.transport = self.roundtrip.AsyncTransport(max_idle_conns_per_host=TASKS)
        await self.transport.__aenter__()

    async def bind(self, method: str, path: str, body: Optional[bytes]) -> AsyncCall:
        url = self.base + path
        round_trip = self.transport.round_trip
        Request = self.roundtrip.Request

        async def call() -> "tuple[int, int]":
            resp = await round_trip(Request(method, url, body=body))
            data = await resp.read()
            return resp.status_code, len(data)

        return call

    async def aclose(self) -> None:
        if self.transport is not None:
            await self.transport.__aexit__(None, None, None)


# -- peers ----------------------------------------------------------------------------------------


class AiohttpAsyncClient(AsyncClient):
    """``aiohttp.ClientSession`` (its connector allows 100 connections: every task keeps one)."""

    async def open(self) -> None:
        self.aiohttp = library("aiohttp")
        self.session = self.aiohttp.ClientSession()

    def version(self) -> str:
        return str(self.aiohttp.__version__)

    async def bind(self, method: str, path: str, body: Optional[bytes]) -> AsyncCall:
        url = self.base + path
        request = self.session.request

        async def call() -> "tuple[int, int]":
            async with request(method, url, data=body) as resp:
                data = await resp.read()
            return resp.status, len(data)

        return call

    async def aclose(self) -> None:
        await self.session.close()


class HTTPXAsyncClient(AsyncClient):
    """``httpx.AsyncClient`` with its pool raised to keep a connection per task."""

    async def open(self) -> None:
        httpx = self.httpx = library("httpx")
        self.client = httpx.AsyncClient(**self._client_options())

    def _limits(self) -> Any:
        return self.httpx.Limits(max_connections=TASKS, max_keepalive_connections=TASKS)

    def _client_options(self) -> dict[str, Any]:
        return {"limits": self._limits()}

    def version(self) -> str:
        return str(self.httpx.__version__)

    async def bind(self, method: str, path: str, body: Optional[bytes]) -> AsyncCall:
        url = self.base + path
        request = self.client.request

        async def call() -> "tuple[int, int]":
            resp = await request(method, url, content=body)
            return resp.status_code, len(resp.content)

        return call

    async def aclose(self) -> None:
        await self.client.aclose()


class HTTPXRoundtripAsyncClient(HTTPXAsyncClient):
    """``httpx.AsyncClient(transport=roundtrip.adapters.HTTPXAsyncTransport(limits=...))``, the
    same pool limits as the httpx peer (the adapter turns them into roundtrip's idle pool)."""

    def _client_options(self) -> dict[str, Any]:
        from roundtrip import adapters

        if not hasattr(adapters, "HTTPXAsyncTransport"):
            raise ImportError("this roundtrip has no adapters.HTTPXAsyncTransport")
        return {"transport": adapters.HTTPXAsyncTransport(limits=self._limits())}

    def version(self) -> str:
        import roundtrip

        return f"{self.httpx.__version__} + roundtrip {roundtrip.__version__} ({roundtrip.IMPLEMENTATION})"


class HTTPXNullAsyncClient(HTTPXAsyncClient):
    """``httpx.AsyncClient`` over a transport that sends nothing: it answers each request with the
    server's recorded response (status, headers, body), so what is left is httpx's own cost.

    The recording is one blocking exchange per (method, path), made during the warm-up. The
    transport never waits, so with many tasks each runs its requests without handing the loop
    to the others; the CPU per request is still httpx's alone."""

    def _client_options(self) -> dict[str, Any]:
        from .clients import Replies

        httpx = self.httpx
        replies = Replies(self.host, self.port)

        class NullAsyncTransport(httpx.AsyncBaseTransport):  # type: ignore[misc, name-defined]  # httpx is a run-time local
            async def handle_async_request(self, request: Any) -> Any:
                path = request.url.raw_path.decode("ascii")
                content = await request.aread() if request.method == "POST" else None
                status, reason, headers, data = replies.get(request.method, path, content)
                return httpx.Response(
                    status,
                    headers=headers,
                    stream=httpx.ByteStream(data),
                    extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason.encode("latin-1")},
                )

        return {"transport": NullAsyncTransport()}

    def version(self) -> str:
        return f"{self.httpx.__version__}, do-nothing transport"


class PyreqwestAsyncClient(AsyncClient):
    """``pyreqwest``'s ``ClientBuilder().http1_only().build()`` (Rust reqwest on its own runtime)."""

    async def open(self) -> None:
        self.pyreqwest = library("pyreqwest")
        self.client = library("pyreqwest.client").ClientBuilder().http1_only().build()

    def version(self) -> str:
        return str(self.pyreqwest.__version__)

    async def bind(self, method: str, path: str, body: Optional[bytes]) -> AsyncCall:
        url = self.base + path
        request = self.client.request

        async def call() -> "tuple[int, int]":
            builder = request(method, url)
            if body is not None:
                builder = builder.body_bytes(body)
            resp = await builder.build().send()
            return resp.status, len(await resp.bytes())

        return call

    async def aclose(self) -> None:
        await self.client.close()


class RnetAsyncClient(AsyncClient):
    """``rnet.Client(http1_only=True)`` (Rust, on its own runtime)."""

    async def open(self) -> None:
        self.rnet = library("rnet")
        self.client = self.rnet.Client(http1_only=True, no_proxy=True, pool_max_idle_per_host=TASKS)

    def version(self) -> str:
        from importlib.metadata import version

        return version("rnet")

    async def bind(self, method: str, path: str, body: Optional[bytes]) -> AsyncCall:
        url = self.base + path
        request = self.client.request
        verb = getattr(self.rnet.Method, method)
        kwargs = {} if body is None else {"body": body}

        async def call() -> "tuple[int, int]":
            resp = await request(verb, url, **kwargs)
            return resp.status, len(await resp.bytes())

        return call


class CurlCffiAsyncClient(AsyncClient):
    """curl_cffi's ``AsyncCurl`` (one libcurl multi handle on the loop) with one ``Curl`` handle
    per task, as its ``AsyncSession`` pools them, without the session's request layer."""

    async def open(self) -> None:
        self.curl_cffi = library("curl_cffi")
        self.acurl = self.curl_cffi.AsyncCurl()
        self.handles: list[Any] = []

    def version(self) -> str:
        return f"{self.curl_cffi.__version__}, AsyncCurl"

    async def bind(self, method: str, path: str, body: Optional[bytes]) -> AsyncCall:
        from .peers import curl_cffi_handle

        curl = self.curl_cffi.Curl()
        self.handles.append(curl)
        curl_cffi_handle(curl, self.base + path, method, body)
        add_handle, setopt, getinfo = self.acurl.add_handle, curl.setopt, curl.getinfo
        WRITEDATA, RESPONSE_CODE = self.curl_cffi.CurlOpt.WRITEDATA, self.curl_cffi.CurlInfo.RESPONSE_CODE
        BytesIO = io.BytesIO

        async def call() -> "tuple[int, int]":
            out = BytesIO()
            setopt(WRITEDATA, out)
            await add_handle(curl)  # done: the multi handle has let go of it
            return getinfo(RESPONSE_CODE), len(out.getvalue())

        return call

    async def aclose(self) -> None:
        await self.acurl.close()
        for curl in self.handles:
            curl.close()
