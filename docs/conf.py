"""Sphinx configuration for the funksgd documentation.

Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html`` (what ``.ci/run``
does). The build needs no network: MathJax is served from a copy installed from PyPI, the
gallery runs on generated ratings, and references to other projects are not linked.
"""

import importlib.util
import os
from pathlib import Path

import funksgd

project = "funksgd"
author = "The funksgd developers"
copyright = "2026, The funksgd developers"
release = funksgd.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py", "**.zip"]
templates_path = ["_templates"]

# ----------------------------------------------------------------------------- API reference
# Every public class gets a page with its methods (docs/_templates/autosummary/class.rst):
# the table at the top links to each method's own entry below it.
autosummary_generate = True
autodoc_default_options = {"members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False  # the class template lists the methods instead
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

# A broken cross-reference fails the build. Only other projects' objects are exempt: there
# is no network to fetch their inventories (intersphinx), so they are shown unlinked.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(sklearn|numpy|np|scipy|pandas|pd|matplotlib|joblib|dask|tqdm)(\..*)?"),
]

# ----------------------------------------------------------------------------- math offline
# MathJax 3 from the sphinx-mathjax-offline wheel, copied into _static/mathjax. The SVG output
# needs no web fonts, so equations render even from file:// pages.
_mathjax = importlib.util.find_spec("sphinx-mathjax-offline")
if _mathjax is None:
    raise ImportError("pip install 'funksgd[docs]': sphinx-mathjax-offline serves MathJax")
html_static_path = ["_static", str(Path(_mathjax.origin).parent / "static")]
mathjax_path = "mathjax/tex-svg.js"

# ----------------------------------------------------------------------------- theme
html_theme = "pydata_sphinx_theme"
html_title = f"funksgd {release}"
html_css_files = ["funksgd.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "user_guide": [], "ratings_files": [], "training": []}
html_show_sourcelink = False

# ----------------------------------------------------------------------------- gallery
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("funksgd",),
    "reference_url": {"funksgd": None},
    "backreferences_dir": "generated/backreferences",
    "remove_config_comments": True,
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "min_reported_time": 1,
    # FUNKSGD_DOCS_NO_GALLERY=1 skips running the examples, for quick edits of the text only.
    "plot_gallery": "False" if os.environ.get("FUNKSGD_DOCS_NO_GALLERY") else "True",
    "matplotlib_animations": False,
    "show_signature": False,
}
