"""Every benchmarked client, in table order, with what it needs; ``available()`` says which can
run here (and why the others cannot) without importing them.

``REGISTRY`` holds the blocking clients (the blocking scenarios), ``ASYNC_REGISTRY`` the asyncio
ones (the async scenarios, under each loop of ``LOOPS`` that is installed). A name may be in
both: ``--clients aiohttp`` selects aiohttp wherever it runs.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any, NamedTuple, Optional, Union

from .base import AsyncClient, Client

__all__ = ("ClientInfo", "REGISTRY", "ASYNC_REGISTRY", "LOOPS", "BY_NAME", "ASYNC_BY_NAME", "available", "loop_available", "load", "INSTALL_HINT")

INSTALL_HINT = "not installed: pip install 'roundtrip-http[bench]'"

#: The event loops the async scenarios run under: asyncio's own and, when installed, uvloop.
LOOPS = ("asyncio", "uvloop")


class ClientInfo(NamedTuple):
    name: str
    cls: str  # "module:Class" within this package
    needs: tuple[str, ...]  # modules that must be importable ("module:attribute" for an attribute)
    env: dict[str, Optional[str]]  # environment for its process (None = unset)
    options: dict[str, Any]
    note: str  # shown under the table
    role: str  # "floor", "roundtrip", "peer", "adapter" (a library over roundtrip) or "cost" (a library's own cost)


_C: dict[str, Optional[str]] = {"ROUNDTRIP_NO_EXTENSIONS": None}

REGISTRY: tuple[ClientInfo, ...] = (
    ClientInfo("raw", "clients:RawClient", (), {}, {}, "raw socket floor: prebuilt request bytes, minimal parse; one socket per thread", "floor"),
    ClientInfo("roundtrip-c", "clients:RoundtripClient", ("roundtrip._speedups_c",), _C, {"impl": "c"}, "roundtrip.Transport, compiled hot paths", "roundtrip"),
    ClientInfo("roundtrip-py", "clients:RoundtripClient", (), {"ROUNDTRIP_NO_EXTENSIONS": "1"}, {"impl": "py"}, "roundtrip.Transport, pure Python (ROUNDTRIP_NO_EXTENSIONS=1)", "roundtrip"),
    ClientInfo("pycurl", "peers:PycurlClient", ("pycurl",), {}, {}, "pycurl: one Curl handle per thread", "peer"),
    ClientInfo("curl_cffi", "peers:CurlCffiClient", ("curl_cffi",), {}, {}, "curl_cffi's low-level Curl: one handle per thread", "peer"),
    ClientInfo("httpr", "peers:HttprClient", ("httpr",), {}, {}, "httpr.Client", "peer"),
    ClientInfo("rnet", "peers:RnetClient", ("rnet",), {}, {}, "rnet.BlockingClient(http1_only=True)", "peer"),
    ClientInfo("pyreqwest", "peers:PyreqwestClient", ("pyreqwest",), {}, {}, "pyreqwest SyncClient (http1_only)", "peer"),
    ClientInfo("http.client", "clients:HTTPClientClient", (), {}, {}, "http.client: one HTTPConnection per thread", "peer"),
    ClientInfo("urllib3", "clients:Urllib3Client", ("urllib3",), {}, {}, "urllib3.PoolManager(maxsize=8)", "peer"),
    ClientInfo("requests", "clients:RequestsClient", ("requests",), {}, {}, "requests.Session, HTTPAdapter(pool_maxsize=8)", "peer"),
    ClientInfo("httpx", "clients:HTTPXClient", ("httpx",), {}, {}, "httpx.Client", "peer"),
    ClientInfo("aiohttp", "peers:AiohttpClient", ("aiohttp",), {}, {}, "aiohttp.ClientSession; 8 tasks on one loop instead of 8 threads", "peer"),
    ClientInfo("httpx+roundtrip", "clients:HTTPXRoundtripClient", ("httpx", "roundtrip.adapters"), _C, {}, "httpx.Client over roundtrip.adapters.HTTPXTransport", "adapter"),
    ClientInfo("requests+roundtrip", "clients:RequestsRoundtripClient", ("requests", "roundtrip.adapters"), _C, {}, "requests.Session with roundtrip.adapters.RequestsAdapter", "adapter"),
    ClientInfo("httpx+nothing", "clients:HTTPXNullClient", ("httpx",), {}, {}, "httpx.Client over a do-nothing transport (replays a recorded response): httpx's own cost", "cost"),
    ClientInfo("requests+nothing", "clients:RequestsNullClient", ("requests",), {}, {}, "requests.Session with a do-nothing adapter (replays a recorded response): requests' own cost", "cost"),
)

ASYNC_REGISTRY: tuple[ClientInfo, ...] = (
    ClientInfo("raw", "aclients:RawAsyncClient", (), {}, {}, "asyncio floor: a BufferedProtocol per connection (one per task), prebuilt request bytes, minimal parse", "floor"),
    ClientInfo("roundtrip-c", "aclients:RoundtripAsyncClient", ("roundtrip._speedups_c", "roundtrip:AsyncTransport"), _C, {"impl": "c"}, "roundtrip.AsyncTransport, compiled hot paths", "roundtrip"),
    ClientInfo("aiohttp", "aclients:AiohttpAsyncClient", ("aiohttp",), {}, {}, "aiohttp.ClientSession", "peer"),
    ClientInfo("httpx", "aclients:HTTPXAsyncClient", ("httpx",), {}, {}, "httpx.AsyncClient, pool of 64", "peer"),
    ClientInfo("pyreqwest", "aclients:PyreqwestAsyncClient", ("pyreqwest",), {}, {}, "pyreqwest Client (http1_only), its own Rust runtime", "peer"),
    ClientInfo("rnet", "aclients:RnetAsyncClient", ("rnet",), {}, {}, "rnet.Client(http1_only=True), its own Rust runtime", "peer"),
    ClientInfo("curl_cffi", "aclients:CurlCffiAsyncClient", ("curl_cffi",), {}, {}, "curl_cffi AsyncCurl, one Curl handle per task", "peer"),
    ClientInfo("httpx+roundtrip", "aclients:HTTPXRoundtripAsyncClient", ("httpx", "roundtrip:AsyncTransport", "roundtrip.adapters:HTTPXAsyncTransport"), _C, {}, "httpx.AsyncClient over roundtrip.adapters.HTTPXAsyncTransport, pool of 64", "adapter"),
    ClientInfo("httpx+nothing", "aclients:HTTPXNullAsyncClient", ("httpx",), {}, {}, "httpx.AsyncClient over a do-nothing transport (replays a recorded response): httpx's own cost", "cost"),
)

BY_NAME = {info.name: info for info in REGISTRY}
ASYNC_BY_NAME = {info.name: info for info in ASYNC_REGISTRY}


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def available(info: ClientInfo) -> Optional[str]:
    """None when ``info`` can run here, else why not."""
    for need in info.needs:
        module, _, attribute = need.partition(":")
        if not _importable(module):
            if module == "roundtrip._speedups_c":
                return "compiled extension not built"
            if module.startswith("roundtrip"):
                return f"{module} is missing"
            return INSTALL_HINT
        if attribute and not hasattr(importlib.import_module(module), attribute):
            return f"this roundtrip has no {module}.{attribute}"
    return None


def loop_available(loop: str) -> Optional[str]:
    """None when the event loop ``loop`` can run here, else why not."""
    if loop == "asyncio" or _importable(loop):
        return None
    return INSTALL_HINT


def load(name: str, host: str, port: int, is_async: bool = False) -> Union[Client, AsyncClient]:
    """Build the client called ``name`` (in the worker process; an async one is built in the
    running loop, and opened by the caller)."""
    info = (ASYNC_BY_NAME if is_async else BY_NAME)[name]
    module, _, cls_name = info.cls.partition(":")
    cls = getattr(importlib.import_module(f"{__package__}.{module}"), cls_name)
    client: Union[Client, AsyncClient] = cls(host, port, **info.options)
    return client
