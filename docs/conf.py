"""Sphinx configuration: MyST Markdown pages, furo, and the API reference from docstrings."""

from __future__ import annotations

import os
import sys

# Document the checkout this file lives in, whatever is installed.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import roundtrip  # noqa: E402

project = "roundtrip"
author = "the roundtrip authors"
copyright = "the roundtrip authors"
release = roundtrip.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "requirements.txt"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = f"roundtrip {release}"
html_static_path: list[str] = []
