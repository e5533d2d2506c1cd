"""Choose the compiled hot paths or their pure-Python twin, once, at import.

``ROUNDTRIP_NO_EXTENSIONS`` forces pure Python; ``ROUNDTRIP_REQUIRE_EXTENSIONS`` makes a missing
compiled module an ``ImportError``. ``IMPLEMENTATION`` is ``"c"`` or ``"py"``.

``Speedups`` is what both twins offer, as a type: the type checker holds each import below to
it, and the code that uses ``impl`` sees its real signatures.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Hashable, Iterable, Protocol, TypeVar

if TYPE_CHECKING:
    import socket

    from _typeshed import ReadableBuffer

    from ._events import IdleConn, IdleTable, Parser

__all__ = ("impl", "IMPLEMENTATION", "env_flag", "Speedups")

_K = TypeVar("_K", bound=Hashable)
_C = TypeVar("_C", bound="IdleConn")


def env_flag(name: str) -> bool:
    """An environment switch as a boolean: unset, "", "0", "false", "no" and "off" are off."""
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


class Speedups(Protocol):
    """The hot paths both twins provide (``_speedups_py`` documents each)."""

    __name__: str

    def is_token(self, text: str) -> bool: ...

    def validate_method(self, method: str) -> None: ...

    def validate_header_fields(self, fields: Iterable[tuple[str, str]]) -> None: ...

    def encode_request_head(self, method: str, target: str, fields: Iterable[tuple[str, str]]) -> bytes: ...

    def ResponseParser(self, method: str, max_head_bytes: int = ...) -> Parser: ...

    def IdleConnections(self, max_idle: int, max_idle_per_key: int) -> IdleTable[_K, _C]: ...

    def new_body_buffer(self, size: int) -> tuple[bytearray | bytes, memoryview]: ...

    def poll_readable(self, fd: int) -> bool: ...

    def send_nowait(self, sock: socket.socket, data: ReadableBuffer) -> int: ...


impl: Speedups
if env_flag("ROUNDTRIP_NO_EXTENSIONS"):
    from . import _speedups_py as impl
else:
    try:
        from . import _speedups_c as impl
    except ImportError as exc:
        if env_flag("ROUNDTRIP_REQUIRE_EXTENSIONS"):
            raise ImportError(
                "ROUNDTRIP_REQUIRE_EXTENSIONS is set, but the compiled module "
                "roundtrip._speedups_c is not installed (the build fell back to pure Python)"
            ) from exc
        from . import _speedups_py as impl

IMPLEMENTATION = "c" if impl.__name__.endswith("_c") else "py"
