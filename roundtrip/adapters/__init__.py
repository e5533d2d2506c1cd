"""Drop-in adapters that put roundtrip under httpx and requests.

    import httpx, requests
    from roundtrip.adapters import HTTPXAsyncTransport, HTTPXTransport, RequestsAdapter

    client = httpx.Client(transport=HTTPXTransport())
    async_client = httpx.AsyncClient(transport=HTTPXAsyncTransport())
    session = requests.Session()
    session.mount("http://", RequestsAdapter())
    session.mount("https://", RequestsAdapter())

httpx and requests are optional dependencies: this package imports neither until one of its
adapters is looked up, and looking one up without its library raises an ``ImportError`` that
names the extra to install (``pip install "roundtrip-http[httpx]"``, ``pip install "roundtrip-http[requests]"``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ("HTTPXAsyncTransport", "HTTPXTransport", "RequestsAdapter")

if TYPE_CHECKING:  # pragma: no cover
    from ._httpx import HTTPXTransport
    from ._httpx_async import HTTPXAsyncTransport
    from ._requests import RequestsAdapter

# name -> (module that defines it, the library it needs, the extra that installs it)
_LAZY = {
    "HTTPXTransport": ("._httpx", "httpx", "httpx"),
    "HTTPXAsyncTransport": ("._httpx_async", "httpx", "httpx"),
    "RequestsAdapter": ("._requests", "requests", "requests"),
}


def __getattr__(name: str) -> Any:
    try:
        module_name, library, extra = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    try:
        importlib.import_module(library)
    except ImportError as exc:
        raise ImportError(
            f"roundtrip.adapters.{name} needs the {library!r} package: pip install \"roundtrip-http[{extra}]\"",
            name=library,
        ) from exc
    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
