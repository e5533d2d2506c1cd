"""Choosing the implementation: the environment switches, parsed as booleans."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import roundtrip
from roundtrip import _speedups

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = _speedups.env_flag("ROUNDTRIP_REQUIRE_EXTENSIONS")

try:
    from roundtrip import _speedups_c  # noqa: F401
except ImportError:
    COMPILED = False
else:
    COMPILED = True

needs_compiled = pytest.mark.skipif(not COMPILED and not REQUIRED, reason="compiled extension not built")


def _implementation(env: dict[str, str], hide_compiled: bool = False) -> subprocess.CompletedProcess:
    prelude = "import sys; sys.modules['roundtrip._speedups_c'] = None\n" if hide_compiled else ""
    code = prelude + "import roundtrip; print(roundtrip.IMPLEMENTATION)"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ROUNDTRIP_")}
    clean["PYTHONPATH"] = str(ROOT)
    # From ROOT, the directory "python -c" puts first on sys.path is ROOT itself (no "-P": 3.11+).
    return subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.mark.once
def test_the_compiled_module_is_live_when_it_is_required():
    # The guard CI relies on: with ROUNDTRIP_REQUIRE_EXTENSIONS set, nothing silently fell back.
    if not REQUIRED:
        pytest.skip("ROUNDTRIP_REQUIRE_EXTENSIONS is not set")
    assert roundtrip.IMPLEMENTATION == "c"
    assert _speedups.impl.__name__ == "roundtrip._speedups_c"


@needs_compiled
@pytest.mark.once
@pytest.mark.parametrize("value, expected", [("1", "py"), ("true", "py"), ("yes", "py"), ("0", "c"), ("false", "c"), ("", "c"), ("off", "c")])
def test_no_extensions_is_parsed_as_a_boolean(value, expected):
    result = _implementation({"ROUNDTRIP_NO_EXTENSIONS": value})
    assert result.stdout.strip() == expected, result.stderr


@pytest.mark.once
def test_a_missing_compiled_module_falls_back_unless_required():
    assert _implementation({}, hide_compiled=True).stdout.strip() == "py"
    assert _implementation({"ROUNDTRIP_REQUIRE_EXTENSIONS": "0"}, hide_compiled=True).stdout.strip() == "py"
    required = _implementation({"ROUNDTRIP_REQUIRE_EXTENSIONS": "1"}, hide_compiled=True)
    assert required.returncode != 0
    assert "ImportError: ROUNDTRIP_REQUIRE_EXTENSIONS is set" in required.stderr


@pytest.mark.once
def test_no_extensions_wins_over_require():
    # Forcing pure Python is a deliberate choice: the compiled module is not "missing" then.
    result = _implementation({"ROUNDTRIP_NO_EXTENSIONS": "1", "ROUNDTRIP_REQUIRE_EXTENSIONS": "1"})
    assert result.stdout.strip() == "py", result.stderr
