"""The other libraries in the blocking scenarios, each used in its fastest documented way: one
client (or handle) reused for every request, keep-alive on, the whole body read. They come with
``pip install 'roundtrip-http[bench]'``; each is imported in its worker process only, and typed
as ``Any`` (not every one ships type information).
"""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any, Optional

from .base import AsyncCall, Call, Client, Measurement, _adrive, library, process_cpu
from .scenarios import Scenario

__all__ = ("PycurlClient", "CurlCffiClient", "HttprClient", "RnetClient", "PyreqwestClient", "AiohttpClient")


class PycurlClient(Client):
    """One ``pycurl.Curl`` handle (libcurl keeps the connection); a handle per thread, since
    a handle must not be used by two threads at once."""

    shared_across_threads = False

    def __init__(self, host: str, port: int, **options: Any) -> None:
        super().__init__(host, port, **options)
        self.pycurl = library("pycurl")
        self.curl = self.pycurl.Curl()

    def version(self) -> str:
        return str(self.pycurl.version.split()[0])

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


def curl_cffi_handle(curl: Any, url: str, method: str, body: Optional[bytes]) -> None:
    """Set up a ``curl_cffi.Curl`` handle for one kind of request (shared with the async client)."""
    CurlOpt = library("curl_cffi").CurlOpt
    curl.setopt(CurlOpt.URL, url.encode("ascii"))
    curl.setopt(CurlOpt.NOSIGNAL, 1)
    if body is not None:
        curl.setopt(CurlOpt.POSTFIELDS, body)
        curl.setopt(CurlOpt.POSTFIELDSIZE, len(body))
        curl.setopt(CurlOpt.HTTPHEADER, [b"Expect:"])  # no 100-continue round trip
    if method not in ("GET", "POST"):
        curl.setopt(CurlOpt.CUSTOMREQUEST, method.encode("ascii"))


class CurlCffiClient(Client):
    """curl_cffi's low-level ``Curl`` handle (libcurl through cffi), as pycurl: one handle per
    thread, the connection kept in the handle."""

    shared_across_threads = False

    def __init__(self, host: str, port: int, **options: Any) -> None:
        super().__init__(host, port, **options)
        self.curl_cffi = library("curl_cffi")
        self.curl = self.curl_cffi.Curl()

    def version(self) -> str:
        return f"{self.curl_cffi.__version__}, {self.curl.version().decode().split()[0]}"

    def bind(self, method: str, path: str, body: Optional[bytes]) -> Call:
        CurlInfo, CurlOpt = self.curl_cffi.CurlInfo, self.curl_cffi.CurlOpt
        curl = self.curl
        curl.reset()  # keeps the connection cache
        curl_cffi_handle(curl, self.base + path, method, body)
        WRITEDATA, RESPONSE_CODE = CurlOpt.WRITEDATA, CurlInfo.RESPONSE_CODE
        setopt, perform, getinfo = curl.setopt, curl.perform, curl.getinfo
        BytesIO = io.BytesIO

        def call() -> "tuple[int, int]":
            out = BytesIO()
            setopt(WRITEDATA, out)  # curl_cffi forgets it after each perform
            perform(clear_headers=False)  # keep the header list for the next request
            return getinfo(RESPONSE_CODE), len(out.getvalue())

        return call

    def close(self) -> None:
        self.curl.close()


class HttprClient(Client):
    """``httpr.Client`` (Rust, shared by the threads)."""

    def __init__(self, host: str, port: int, **options: Any) -> None:
        super().__init__(host, port, **options)
        self.client = library("httpr").Client()

    def version(self) -> str:
        from importlib.metadata import version

        return version("httpr")

    def bind(self, method: str, path: str, body: Optional[bytes]) -> Call:
        url = self.base + path
        request = self.client.request
        kwargs = {} if body is None else {"content": body}

        def call() -> "tuple[int, int]":
            resp = request(method, url, **kwargs)
            return resp.status_code, len(resp.content)

        return call

    def close(self) -> None:
        self.client.close()


class RnetClient(Client):
    """``rnet.BlockingClient(http1_only=True)`` (Rust, shared by the threads)."""

    def __init__(self, host: str, port: int, **options: Any) -> None:
        super().__init__(host, port, **options)
        self.rnet = library("rnet")
        self.client = self.rnet.BlockingClient(http1_only=True, no_proxy=True, pool_max_idle_per_host=64)

    def version(self) -> str:
        from importlib.metadata import version

        return version("rnet")

    def bind(self, method: str, path: str, body: Optional[bytes]) -> Call:
        url = self.base + path
        request = self.client.request
        verb = getattr(self.rnet.Method, method)
        kwargs = {} if body is None else {"body": body}

        def call() -> "tuple[int, int]":
            resp = request(verb, url, **kwargs)
            return resp.status, len(resp.bytes())

        return call

    def close(self) -> None:
        pass  # the client has no close; its pool goes with the process


class PyreqwestClient(Client):
    """``pyreqwest``'s ``SyncClientBuilder().http1_only().build()`` (Rust reqwest, shared by
    the threads); the body is read whole into its ``Bytes`` buffer."""

    def __init__(self, host: str, port: int, **options: Any) -> None:
        super().__init__(host, port, **options)
        self.pyreqwest = library("pyreqwest")
        self.client = library("pyreqwest.client").SyncClientBuilder().http1_only().build()

    def version(self) -> str:
        return str(self.pyreqwest.__version__)

    def bind(self, method: str, path: str, body: Optional[bytes]) -> Call:
        url = self.base + path
        request = self.client.request

        if body is None:

            def call() -> "tuple[int, int]":
                resp = request(method, url).build().send()
                return resp.status, len(resp.bytes())

        else:

            def call() -> "tuple[int, int]":
                resp = request(method, url).body_bytes(body).build().send()
                return resp.status, len(resp.bytes())

        return call

    def close(self) -> None:
        self.client.close()


class AiohttpClient(Client):
    """``aiohttp.ClientSession`` on one event loop; the threads scenario runs 8 concurrent
    tasks on that loop instead of 8 threads (the way aiohttp is meant to be used)."""

    def __init__(self, host: str, port: int, **options: Any) -> None:
        super().__init__(host, port, **options)
        aiohttp = self.aiohttp = library("aiohttp")
        self.loop = asyncio.new_event_loop()

        async def make() -> Any:
            return aiohttp.ClientSession()

        self.session = self.loop.run_until_complete(make())

    def version(self) -> str:
        return str(self.aiohttp.__version__)

    def _bind_async(self, method: str, path: str, body: Optional[bytes]) -> AsyncCall:
        url = self.base + path
        request = self.session.request

        async def call() -> "tuple[int, int]":
            async with request(method, url, data=body) as resp:
                data = await resp.read()
            return resp.status, len(data)

        return call

    def measure(self, scenario: Scenario, duration: float, warmup: float, minimum: int) -> Measurement:
        call = self._bind_async(scenario.method, scenario.path, scenario.body)
        expect, batch, tasks = scenario.expect, scenario.batch, scenario.threads
        perf_counter = time.perf_counter

        async def run() -> Measurement:
            warm = await asyncio.gather(*(_adrive(call, expect, batch, perf_counter() + warmup, 1) for _ in range(tasks)))
            cpu0, t0 = process_cpu(), perf_counter()
            sent = await asyncio.gather(*(_adrive(call, expect, batch, t0 + duration, max(1, minimum // tasks)) for _ in range(tasks)))
            t1, cpu1 = perf_counter(), process_cpu()
            return Measurement(sum(sent), cpu1 - cpu0, t1 - t0, sum(sent) + sum(warm))

        return self.loop.run_until_complete(run())

    def close(self) -> None:
        self.loop.run_until_complete(self.session.close())
        self.loop.close()
