"""Build the compiled hot paths; without a compiler, stop and say how to accept pure Python.

A failed compile fails the build, with a message that names ``ROUNDTRIP_NO_EXTENSIONS=1``
(pip prints a failed build's output, but hides a successful one's, and caches the wheel it
built: a silent pure-Python wheel would stay slow even after a compiler is installed).
``ROUNDTRIP_NO_EXTENSIONS=1`` builds the pure-Python package on purpose (unless
``ROUNDTRIP_REQUIRE_EXTENSIONS=1`` is set, as in any cibuildwheel run);
``ROUNDTRIP_PORTABLE_IO=1`` compiles the system calls through the code path Windows uses
(``csrc/rt_io.h``), so it is tested on Linux too; ``ROUNDTRIP_DEBUG_BUILD=1`` compiles with
``-O0 -g``, bounds checks and the address and undefined-behaviour sanitizers. Such a module
loads only with the ASan runtime preloaded: run it through ``python3 tools/sanitize.py``,
which builds it, runs the parser tests and a fuzz run, and builds the normal module again.
Release builds carry no debug information.
"""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import BaseError


def env_flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


REQUIRE = env_flag("ROUNDTRIP_REQUIRE_EXTENSIONS") or env_flag("CIBUILDWHEEL")
SKIP = env_flag("ROUNDTRIP_NO_EXTENSIONS") and not REQUIRE
PORTABLE_IO = env_flag("ROUNDTRIP_PORTABLE_IO")
DEBUG = env_flag("ROUNDTRIP_DEBUG_BUILD")

FAILED = """
***********************************************************************
roundtrip-http: the compiled extension could not be built:
  {reason}

It makes roundtrip about twice as fast. Either
  - install a C compiler and the Python headers (on Debian/Ubuntu:
    apt install gcc python3-dev; on Windows: the Microsoft C++ Build
    Tools), then install again; or
  - accept the slower pure-Python implementation:
    ROUNDTRIP_NO_EXTENSIONS=1 pip install roundtrip-http
    (Windows: set ROUNDTRIP_NO_EXTENSIONS=1, then pip install)
***********************************************************************
"""


class ExtensionBuildFailed(BaseError):
    """The compile failed and pure Python was not asked for. A setuptools error: it ends the
    build with its message alone, no traceback."""


def fail(reason):
    """Stop the build: pip shows a failed build's output (it hides a successful one's), and
    caches no wheel, so the next attempt after installing a compiler compiles."""
    raise ExtensionBuildFailed(FAILED.format(reason=str(reason).strip() or type(reason).__name__)) from reason


# Flags for GCC and Clang; MSVC gets its own (build_extensions below).
RELEASE_CFLAGS = ["-g0"]  # after Python's own CFLAGS, which carry -g: no debug information
if sys.platform == "darwin":
    RELEASE_LDFLAGS = ["-Wl,-S"]  # ld64: strip debugging symbols
else:
    RELEASE_LDFLAGS = ["-s"]  # GNU ld and lld: strip all symbols (the .so is ~5x smaller)


class strict_build_ext(build_ext):
    """Compile the extension; any failure stops the build with a message that names the
    way to accept pure Python."""

    def run(self):
        try:
            super().run()
        except ExtensionBuildFailed:
            raise
        except Exception as exc:  # no compiler, no Python headers, ...
            fail(exc)
        if not self.inplace:
            # pip builds in the source tree: put the compiled module beside its sources too
            # (as build_ext --inplace and editable installs do), so that a Python started in
            # the checkout, which imports ./roundtrip before site-packages, gets it as well.
            try:
                self.copy_extensions_to_source()
            except Exception as exc:  # a read-only tree: the installed wheel is unaffected
                sys.stderr.write(f"roundtrip: compiled module not copied into the source tree: {exc}\n")

    def build_extensions(self):
        for ext in self.extensions:
            if self.compiler.compiler_type == "msvc":
                ext.extra_compile_args = ["/O2"]
                ext.extra_link_args = []
                ext.libraries = [*ext.libraries, "ws2_32"]  # Winsock: csrc/rt_io.h
            elif not DEBUG:
                ext.extra_compile_args = [*ext.extra_compile_args, *RELEASE_CFLAGS]
                ext.extra_link_args = [*ext.extra_link_args, *RELEASE_LDFLAGS]
        super().build_extensions()

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            fail(exc)
        sys.stderr.write(f"roundtrip: built compiled extension {ext.name}\n")


def extensions():
    if SKIP:
        sys.stderr.write("roundtrip: ROUNDTRIP_NO_EXTENSIONS is set; pure Python only\n")
        return []
    try:
        from Cython.Build import cythonize
    except ImportError as exc:  # only without build isolation: pyproject.toml requires Cython
        fail(exc)
    sanitizers = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
    compile_args = ["-O0", "-g", "-fno-omit-frame-pointer", *sanitizers] if DEBUG else ["-O2"]
    link_args = sanitizers if DEBUG else []
    ext = Extension(
        "roundtrip._speedups_c",
        ["roundtrip/_speedups_c.pyx"],
        depends=["roundtrip/_parser_c.pxi", "roundtrip/_idle_c.pxi", "roundtrip/_exchange_c.pxi", "csrc/rt_bytes.h", "csrc/rt_io.h"],
        include_dirs=["csrc"],
        define_macros=[("RT_IO_PORTABLE", "1")] if PORTABLE_IO else [],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    try:
        return cythonize(
            [ext],
            # The debug C (bounds checks on) lives apart, so neither build reuses the other's.
            build_dir="build/debug-c" if DEBUG else None,
            language_level=3,
            compiler_directives={
                "boundscheck": DEBUG,
                "wraparound": False,
                "cdivision": True,
                "embedsignature": True,
            },
        )
    except Exception as exc:  # a Cython error in the .pyx
        fail(exc)


setup(ext_modules=extensions(), cmdclass={"build_ext": strict_build_ext})
