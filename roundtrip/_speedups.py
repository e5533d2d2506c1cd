"""Choose the compiled hot paths or their pure-Python twin, once, at import.

``ROUNDTRIP_NO_EXTENSIONS`` forces pure Python; ``ROUNDTRIP_REQUIRE_EXTENSIONS`` makes a missing
compiled module an ``ImportError``. ``IMPLEMENTATION`` is ``"c"`` or ``"py"``."""

from __future__ import annotations

import os
from types import ModuleType

__all__ = ("impl", "IMPLEMENTATION", "env_flag")


def env_flag(name: str) -> bool:
    """An environment switch as a boolean: unset, "", "0", "false", "no" and "off" are off."""
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


impl: ModuleType
if env_flag("ROUNDTRIP_NO_EXTENSIONS"):
    from . import _speedups_py as impl
else:
    try:
        from . import _speedups_c as impl  # type: ignore[attr-defined,no-redef]  # built
    except ImportError as exc:
        if env_flag("ROUNDTRIP_REQUIRE_EXTENSIONS"):
            raise ImportError(
                "ROUNDTRIP_REQUIRE_EXTENSIONS is set, but the compiled module "
                "roundtrip._speedups_c is not installed (the build fell back to pure Python)"
            ) from exc
        from . import _speedups_py as impl  # type: ignore[no-redef]

IMPLEMENTATION = "c" if impl.__name__.endswith("_c") else "py"
