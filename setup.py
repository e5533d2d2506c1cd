"""Build the compiled hot paths, or fall back loudly to pure Python.

``ROUNDTRIP_REQUIRE_EXTENSIONS=1`` (and any cibuildwheel run) turns a failed compile into a
failed build; ``ROUNDTRIP_NO_EXTENSIONS=1`` skips compiling; ``ROUNDTRIP_DEBUG_BUILD=1``
compiles with ``-O0 -g``, bounds checks and the address and undefined-behaviour sanitizers.
Such a module loads only with the ASan runtime preloaded: run it through
``python3 tools/sanitize.py``, which builds it, runs the parser tests and a fuzz run, and
builds the normal module again.
"""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def env_flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


REQUIRE = env_flag("ROUNDTRIP_REQUIRE_EXTENSIONS") or env_flag("CIBUILDWHEEL")
SKIP = env_flag("ROUNDTRIP_NO_EXTENSIONS") and not REQUIRE
DEBUG = env_flag("ROUNDTRIP_DEBUG_BUILD")

BANNER = """
***********************************************************************
*  roundtrip: the compiled extension could NOT be built:              *
*  {reason:<66s} *
*  Installing the pure-Python implementation (much slower).           *
*  Set ROUNDTRIP_REQUIRE_EXTENSIONS=1 to make this an error.          *
***********************************************************************
"""


def banner(reason):
    sys.stderr.write(BANNER.format(reason=str(reason)[:66]))


class optional_build_ext(build_ext):
    """Compile the extension; unless it is required, a failure installs pure Python."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # compiler missing, Cython missing, ...
            if REQUIRE:
                raise
            banner(exc)
            return
        if not self.inplace and not getattr(self, "_failed", False):
            # pip builds in the source tree: put the compiled module beside its sources too
            # (as build_ext --inplace and editable installs do), so that a Python started in
            # the checkout, which imports ./roundtrip before site-packages, gets it as well.
            try:
                self.copy_extensions_to_source()
            except Exception as exc:  # a read-only tree: the installed wheel is unaffected
                sys.stderr.write(f"roundtrip: compiled module not copied into the source tree: {exc}\n")

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            if REQUIRE:
                raise
            self._failed = True
            banner(exc)
        else:
            sys.stderr.write(f"roundtrip: built compiled extension {ext.name}\n")


def extensions():
    if SKIP:
        sys.stderr.write("roundtrip: ROUNDTRIP_NO_EXTENSIONS is set; pure Python only\n")
        return []
    try:
        from Cython.Build import cythonize
    except ImportError as exc:
        if REQUIRE:
            raise
        banner(exc)
        return []
    sanitizers = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
    compile_args = ["-O0", "-g", "-fno-omit-frame-pointer", *sanitizers] if DEBUG else ["-O2"]
    link_args = sanitizers if DEBUG else []
    ext = Extension(
        "roundtrip._speedups_c",
        ["roundtrip/_speedups_c.pyx"],
        depends=["roundtrip/_parser_c.pxi", "roundtrip/_idle_c.pxi", "csrc/rt_bytes.h"],
        include_dirs=["csrc"],
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
    except Exception as exc:  # a Cython error in the .pyx: pure Python, loudly
        if REQUIRE:
            raise
        banner(exc)
        return []


setup(ext_modules=extensions(), cmdclass={"build_ext": optional_build_ext})
